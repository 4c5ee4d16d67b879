//! The host's stdin as a serial input, with QEMU's escape keys.
//!
//! A process has one stdin, so there is one reader thread, started by the first device that asks
//! for it, and at most one device receiving from it at a time. The thread blocks in `read`, which
//! cannot be interrupted: it outlives the devices and ends at end of input, which is not an
//! error (the guest goes on with no more input, as in QEMU).

use crate::escape::{Escape, HELP, Key};
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

/// Makes `shared` (device `id`) the receiver of stdin, starting the reader if needed; an error
/// if another device has it.
pub(crate) fn claim(id: &str, shared: &Arc<Shared>) -> Result<(), VmError> {
    match try_claim(id, shared)? {
        Ok(()) => Ok(()),
        Err(other) => Err(VmError::config(format!("stdin is already the input of serial device '{other}'"))),
    }
}

/// As [`claim`], but another device having stdin is not an error: gives back that device's id.
pub(crate) fn try_claim(id: &str, shared: &Arc<Shared>) -> Result<Result<(), String>, VmError> {
    let mut hub = hub();
    if let Some((other, owner)) = &hub.target
        && owner.strong_count() > 0
        && !Weak::ptr_eq(owner, &Arc::downgrade(shared))
    {
        return Ok(Err(other.clone()));
    }
    if !hub.reader_started {
        start_reader()
            .map_err(|e| VmError::new(ErrorKind::Io, format!("cannot start the stdin reader thread: {e}")))?;
        hub.reader_started = true;
    }
    hub.target = Some((id.to_string(), Arc::downgrade(shared)));
    shared.set_accepting_input(true);
    Ok(Ok(()))
}

/// Stops delivering stdin to `shared`, if it is the receiver.
pub(crate) fn release(shared: &Arc<Shared>) {
    let mut hub = hub();
    if hub.target.as_ref().is_some_and(|(_, owner)| Weak::ptr_eq(owner, &Arc::downgrade(shared))) {
        hub.target = None;
    }
    shared.set_accepting_input(false);
}

/// The device stdin goes to now, if any.
fn current_target() -> Option<Arc<Shared>> {
    hub().target.as_ref().and_then(|(_, owner)| owner.upgrade())
}

#[cfg(not(test))]
fn start_reader() -> io::Result<()> {
    std::thread::Builder::new().name("serial-stdin".into()).spawn(read_stdin).map(drop)
}

// Unit tests must not consume the test harness's stdin; they drive `pump` with their own pipes.
#[cfg(test)]
fn start_reader() -> io::Result<()> {
    Ok(())
}

#[cfg_attr(test, allow(dead_code))]
fn read_stdin() {
    if let Err(e) = pump(&mut io::stdin(), &current_target) {
        eprintln!("vmhost: serial: reading stdin failed ({e}); the console gets no more input");
    }
}

/// Reads `src` to its end, passing each byte through the escape keys: data goes to the device
/// `target` names at that moment (nowhere if none, like typing into an unplugged port),
/// Ctrl-A X asks that device's host to stop the VM, Ctrl-A H prints the keys on stderr.
/// End of input returns `Ok`; a read error other than an interrupted call is returned.
pub(crate) fn pump(src: &mut dyn Read, target: &dyn Fn() -> Option<Arc<Shared>>) -> io::Result<()> {
    let mut escape = Escape::default();
    let mut buf = [0u8; 512];
    let mut data = Vec::with_capacity(buf.len());
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            match escape.key(b) {
                Key::Byte(b) => data.push(b),
                Key::Nothing => {}
                key => {
                    // Bytes typed before the command reach the guest first.
                    deliver(target, &mut data);
                    command(target, key);
                }
            }
        }
        deliver(target, &mut data);
    }
}

fn deliver(target: &dyn Fn() -> Option<Arc<Shared>>, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    // Delivering may wait for the guest to drain the queue; no hub lock is held here.
    if let Some(shared) = target() {
        shared.deliver(data);
    }
    data.clear();
}

fn command(target: &dyn Fn() -> Option<Arc<Shared>>, key: Key) {
    match key {
        Key::Quit => {
            if let Some(shared) = target() {
                eprintln!("vmhost: Ctrl-A X: stopping");
                shared.host.request_stop(0, "Ctrl-A X".into());
            }
        }
        Key::Help => eprint!("{HELP}"),
        Key::Byte(_) | Key::Nothing => {}
    }
}
