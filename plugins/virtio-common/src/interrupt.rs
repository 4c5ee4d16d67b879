//! The virtio-mmio interrupt status, shared by the transport (the vCPU thread: InterruptStatus
//! reads, InterruptACK writes, reset) and a device's worker threads (used-buffer and
//! configuration-change notifications).
//!
//! A bit is set before the line is raised, and the line is lowered only once the driver has
//! acknowledged every bit. The status update and the line change happen under one small lock,
//! so a worker raising the line cannot interleave with an ACK lowering it and leave the line low
//! with a bit pending (lock order: this lock, then the host's interrupt line).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use vm_plugin_api::InterruptLineArc;

/// InterruptStatus bit: the device used a buffer in at least one virtqueue.
pub const INT_VRING: u32 = 1;
/// InterruptStatus bit: the device's configuration (or DEVICE_NEEDS_RESET) changed.
pub const INT_CONFIG: u32 = 2;

/// A device's interrupt status and line.
pub struct Interrupt {
    status: Arc<AtomicU32>,
    needs_reset: AtomicBool,
    line: Option<InterruptLineArc>,
    /// Orders status updates with the line changes that follow them.
    lock: Mutex<()>,
}

impl Interrupt {
    /// The status for a device driving `line` (none: the driver polls).
    pub fn new(line: Option<InterruptLineArc>) -> Arc<Self> {
        Arc::new(Interrupt {
            status: Arc::new(AtomicU32::new(0)),
            needs_reset: AtomicBool::new(false),
            line,
            lock: Mutex::new(()),
        })
    }

    /// InterruptStatus as the driver reads it.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// The status word itself, for code that wants to watch it.
    pub fn status_word(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.status)
    }

    /// Tells the driver the device used buffers.
    pub fn signal_used(&self) {
        self.raise(INT_VRING);
    }

    /// Tells the driver the configuration changed.
    pub fn signal_config(&self) {
        self.raise(INT_CONFIG);
    }

    /// The device hit an error only a reset cures (a broken ring): Status shows DEVICE_NEEDS_RESET
    /// from now until the reset, and the driver gets a configuration-change interrupt, as the
    /// virtio spec (2.1.2) asks.
    pub fn set_needs_reset(&self) {
        if !self.needs_reset.swap(true, Ordering::SeqCst) {
            self.signal_config();
        }
    }

    /// Whether [`set_needs_reset`](Self::set_needs_reset) was called since the last reset.
    pub fn needs_reset(&self) -> bool {
        self.needs_reset.load(Ordering::SeqCst)
    }

    /// InterruptACK: clears `bits`; lowers the line when nothing is left pending.
    pub fn ack(&self, bits: u32) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let left = self.status.fetch_and(!bits, Ordering::SeqCst) & !bits;
        if left == 0 {
            self.set_level(false);
        }
    }

    /// Device reset: nothing pending, line low, no reset needed.
    pub fn reset(&self) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.status.store(0, Ordering::SeqCst);
        self.needs_reset.store(false, Ordering::SeqCst);
        self.set_level(false);
    }

    fn raise(&self, bits: u32) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.status.fetch_or(bits, Ordering::SeqCst);
        self.set_level(true);
    }

    fn set_level(&self, level: bool) {
        if let Some(line) = &self.line {
            line.set_level(level);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vm_plugin_api::{
        InterruptLine,
        abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
        device::InterruptLine_TO,
    };

    /// An interrupt line that records its levels.
    #[derive(Clone, Default)]
    pub(crate) struct TestLine(pub(crate) Arc<Mutex<Vec<bool>>>);

    impl InterruptLine for TestLine {
        fn set_level(&self, level: bool) {
            self.0.lock().unwrap().push(level);
        }
        fn number(&self) -> u32 {
            1
        }
    }

    impl TestLine {
        pub(crate) fn arc(&self) -> InterruptLineArc {
            InterruptLine_TO::from_ptr(RArc::new(self.clone()), TD_Opaque)
        }
        pub(crate) fn take(&self) -> Vec<bool> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn the_line_stays_up_until_every_bit_is_acknowledged() {
        let line = TestLine::default();
        let irq = Interrupt::new(Some(line.arc()));
        irq.signal_used();
        irq.signal_config();
        assert_eq!(irq.status(), INT_VRING | INT_CONFIG);
        assert_eq!(line.take(), [true, true]);
        irq.ack(INT_VRING);
        assert_eq!(irq.status(), INT_CONFIG);
        assert_eq!(line.take(), Vec::<bool>::new(), "a bit is still pending");
        irq.ack(INT_CONFIG);
        assert_eq!(irq.status(), 0);
        assert_eq!(line.take(), [false]);
    }

    #[test]
    fn needs_reset_signals_once_and_reset_clears_everything() {
        let line = TestLine::default();
        let irq = Interrupt::new(Some(line.arc()));
        irq.set_needs_reset();
        irq.set_needs_reset();
        assert!(irq.needs_reset());
        assert_eq!(irq.status(), INT_CONFIG);
        assert_eq!(line.take(), [true]);
        irq.reset();
        assert!(!irq.needs_reset());
        assert_eq!(irq.status(), 0);
        assert_eq!(line.take(), [false]);
    }
}
