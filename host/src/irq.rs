//! Interrupt lines from devices into the machine.
//!
//! Devices drive numbered lines through [`InterruptLine`] objects; the levels are kept here and
//! every change goes to the PLIC (line n is its source n). The PLIC alone decides whether a change
//! reaches a hart: only a rising MEIP stops the running engine or wakes a hart in `wfi`, so a
//! change the guest has masked in the PLIC costs a few atomics and an uncontended lock.

use crate::devices::plic::Plic;
use crate::events::EventBus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use vm_plugin_api::{
    InterruptLine, InterruptLineArc, VmEvent,
    abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
};

/// Levels of every line, and the controller they feed.
pub struct IrqState {
    /// One bit per line; vm.toml allows lines 1 to `plic::NUM_SOURCES - 1` (95).
    levels: [AtomicU64; 2],
    plic: Plic,
    events: EventBus,
}

impl IrqState {
    /// Line levels feeding `plic`.
    pub fn new(plic: Plic, events: EventBus) -> Self {
        IrqState { levels: [AtomicU64::new(0), AtomicU64::new(0)], plic, events }
    }

    /// Sets line `n`. A line belongs to one device, which orders its own calls (two racing calls
    /// for one line could reach the PLIC in the other order).
    pub fn set(&self, n: u32, level: bool) {
        let Some(word) = self.levels.get((n / 64) as usize) else { return };
        let bit = 1u64 << (n % 64);
        let old =
            if level { word.fetch_or(bit, Ordering::SeqCst) } else { word.fetch_and(!bit, Ordering::SeqCst) };
        if (old & bit != 0) != level {
            self.events.publish(&VmEvent::DeviceInterrupt { irq: n, level });
            self.plic.set_level(n, level);
        }
    }

    /// The level of line `n`.
    pub fn level(&self, n: u32) -> bool {
        self.levels.get((n / 64) as usize).is_some_and(|w| w.load(Ordering::SeqCst) & (1 << (n % 64)) != 0)
    }
}

struct Line {
    n: u32,
    state: Arc<IrqState>,
}

impl InterruptLine for Line {
    fn set_level(&self, level: bool) {
        self.state.set(self.n, level)
    }
    fn number(&self) -> u32 {
        self.n
    }
}

/// The line object handed to a device plugin.
pub fn line(state: &Arc<IrqState>, n: u32) -> InterruptLineArc {
    vm_plugin_api::device::InterruptLine_TO::from_ptr(
        RArc::new(Line { n, state: Arc::clone(state) }),
        TD_Opaque,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MmioDevice;
    use crate::riscv::csr::MIP_MEIP;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn level_changes_reach_the_plic_and_repeats_do_nothing() {
        let exit = Arc::new(AtomicU32::new(0));
        let signal = crate::devices::clint::HartSignal { attention: Arc::clone(&exit), wake: Arc::default() };
        let mut plic = Plic::new(&[signal]);
        let state = Arc::new(IrqState::new(plic.clone(), EventBus::default()));
        // Source 10 at priority 1 for hart 0's M context.
        plic.write(40, 1, 4).unwrap();
        plic.write(0x2000, 1 << 10, 4).unwrap();
        let l = line(&state, 10);
        l.set_level(true);
        assert!(state.level(10));
        assert_eq!(plic.hart_lines(0).bits(), MIP_MEIP);
        assert_eq!(plic.read(0x20_0004, 4).unwrap(), 10, "claimed");
        exit.store(0, Ordering::SeqCst);
        // The same level again is no change: the claimed source is not pended again.
        l.set_level(true);
        assert_eq!(plic.read(0x1000, 4).unwrap(), 0);
        l.set_level(false);
        assert!(!state.level(10));
        plic.write(0x20_0004, 10, 4).unwrap();
        assert_eq!((plic.hart_lines(0).bits(), exit.load(Ordering::SeqCst)), (0, 0));
        // Lines past the PLIC's sources keep their level and reach nothing.
        line(&state, 100).set_level(true);
        assert!(state.level(100));
        assert_eq!(plic.hart_lines(0).bits(), 0);
    }
}
