//! What the VM is busy with right now, so a shutdown that does not finish can name the component
//! at fault (a device whose register access never returns, a `stop` that hangs).

use crate::bus::Bus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The component call in progress, and the guest device access in progress, if any.
pub struct Activity {
    component: Mutex<Option<String>>,
    /// Set while a guest access to a device is in the device's hands: a hung device call shows
    /// here, not as the engine that made it.
    in_mmio: AtomicBool,
    mmio_addr: AtomicU64,
    bus: Arc<Bus>,
}

/// Clears the component call when dropped.
pub struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

impl Activity {
    /// Nothing in progress, on a machine with `bus`.
    pub fn new(bus: Arc<Bus>) -> Activity {
        Activity {
            component: Mutex::new(None),
            in_mmio: AtomicBool::new(false),
            mmio_addr: AtomicU64::new(0),
            bus,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.component.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `what` (e.g. "device 'uart0' stop") is being called until the guard drops.
    pub fn enter(&self, what: String) -> Busy<'_> {
        *self.lock() = Some(what);
        Busy(self)
    }

    /// A guest access at `addr` is being handed to a device.
    #[inline]
    pub fn mmio_begin(&self, addr: u64) {
        self.mmio_addr.store(addr, Ordering::Relaxed);
        self.in_mmio.store(true, Ordering::Release);
    }

    /// The device access has returned.
    #[inline]
    pub fn mmio_end(&self) {
        self.in_mmio.store(false, Ordering::Release);
    }

    /// What is in progress, in words, if anything.
    pub fn describe(&self) -> Option<String> {
        if self.in_mmio.load(Ordering::Acquire) {
            let addr = self.mmio_addr.load(Ordering::Relaxed);
            let name = self.bus.translate_address(addr).map_or("?", |(n, _)| n);
            return Some(format!("device '{name}' (a guest access at {addr:#x} has not returned)"));
        }
        self.lock().clone()
    }
}
