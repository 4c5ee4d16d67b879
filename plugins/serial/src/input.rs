//! The host's stdin as a serial input.
//!
//! A process has one stdin, so there is one reader thread, started by the first device that asks
//! for it, and at most one device receiving from it at a time. The thread blocks in `read`, which
//! cannot be interrupted: it outlives the devices and exits at end of input.

use crate::shared::Shared;
use std::{
    io::{self, Read},
    sync::{Arc, Mutex, Weak},
};
use vm_plugin_api::{ErrorKind, VmError};

struct Hub {
    reader_started: bool,
    /// The device that receives stdin: its id (for messages) and its state. A dropped device
    /// leaves a dead `Weak`, which frees stdin for the next one.
    target: Option<(String, Weak<Shared>)>,
}

static HUB: Mutex<Hub> = Mutex::new(Hub { reader_started: false, target: None });

fn hub() -> std::sync::MutexGuard<'static, Hub> {
    HUB.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes `shared` (device `id`) the receiver of stdin, starting the reader if needed.
pub(crate) fn claim(id: &str, shared: &Arc<Shared>) -> Result<(), VmError> {
    let mut hub = hub();
    if let Some((other, owner)) = &hub.target
        && owner.strong_count() > 0
        && !Weak::ptr_eq(owner, &Arc::downgrade(shared))
    {
        return Err(VmError::config(format!("stdin is already the input of serial device '{other}'")));
    }
    if !hub.reader_started {
        start_reader()
            .map_err(|e| VmError::new(ErrorKind::Io, format!("cannot start the stdin reader thread: {e}")))?;
        hub.reader_started = true;
    }
    hub.target = Some((id.to_string(), Arc::downgrade(shared)));
    shared.set_accepting_input(true);
    Ok(())
}

/// Stops delivering stdin to `shared`, if it is the receiver.
pub(crate) fn release(shared: &Arc<Shared>) {
    let mut hub = hub();
    if hub.target.as_ref().is_some_and(|(_, owner)| Weak::ptr_eq(owner, &Arc::downgrade(shared))) {
        hub.target = None;
    }
    shared.set_accepting_input(false);
}

#[cfg(not(test))]
fn start_reader() -> io::Result<()> {
    std::thread::Builder::new().name("serial-stdin".into()).spawn(read_stdin).map(drop)
}

// Unit tests must not consume the test harness's stdin; they feed bytes through `Shared::deliver`.
#[cfg(test)]
fn start_reader() -> io::Result<()> {
    Ok(())
}

#[cfg_attr(test, allow(dead_code))]
fn read_stdin() {
    let mut stdin = io::stdin();
    let mut buf = [0u8; 512];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        // Upgrade outside the hub lock: delivering may wait for the guest to drain the queue.
        let target = hub().target.as_ref().and_then(|(_, owner)| owner.upgrade());
        // With no device listening, input goes nowhere, like typing into an unplugged port.
        if let Some(shared) = target {
            shared.deliver(&buf[..n]);
        }
    }
}
