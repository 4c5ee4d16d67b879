//! The `virt` board's test/poweroff device (`sifive,test0`): the guest writes a magic value to
//! power off, exit with a code, or reset. Like QEMU's, it takes only aligned 2- and 4-byte
//! accesses.

use crate::bus::{Access, MmioDevice, Window};
use std::sync::{Arc, Mutex};
use vm_plugin_api::VmError;

/// Base address on the `virt` board.
pub const BASE: u64 = 0x10_0000;
/// Register window size.
pub const SIZE: u64 = 0x1000;

const FINISHER_PASS: u64 = 0x5555;
const FINISHER_FAIL: u64 = 0x3333;
const FINISHER_RESET: u64 = 0x7777;

/// What the guest asked the machine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRequest {
    /// Power off; the VM exits with this code.
    Off(i32),
    /// Reset the machine.
    Reset,
}

/// The latest power request, shared between the device and the run loop.
#[derive(Clone, Default)]
pub struct PowerState(Arc<Mutex<Option<PowerRequest>>>);

impl PowerState {
    /// Records a request (the first one wins).
    pub fn request(&self, r: PowerRequest) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.get_or_insert(r);
    }
    /// The pending request, if any.
    pub fn get(&self) -> Option<PowerRequest> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The test/poweroff device.
pub struct Syscon {
    power: PowerState,
}

impl Syscon {
    /// A device that reports to `power`.
    pub fn new(power: PowerState) -> Self {
        Syscon { power }
    }
}

impl MmioDevice for Syscon {
    fn read(&mut self, _offset: u64, _size: u8) -> Result<u64, VmError> {
        Ok(0)
    }
    fn write(&mut self, offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
        if offset != 0 {
            return Ok(());
        }
        let value = value & 0xffff_ffff;
        match value & 0xffff {
            FINISHER_PASS => self.power.request(PowerRequest::Off(0)),
            FINISHER_FAIL => self.power.request(PowerRequest::Off((value >> 16) as i32)),
            FINISHER_RESET => self.power.request(PowerRequest::Reset),
            _ => {}
        }
        Ok(())
    }
    fn windows(&self) -> Vec<Window> {
        vec![Window { first: 0, last: SIZE - 1, access: Access::aligned(2, 4) }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, BusError};

    #[test]
    fn magic_values() {
        let p = PowerState::default();
        let mut s = Syscon::new(p.clone());
        s.write(0, 0x1234, 4).unwrap();
        assert_eq!(p.get(), None);
        s.write(0, (3 << 16) | 0x3333, 4).unwrap();
        assert_eq!(p.get(), Some(PowerRequest::Off(3)));
        let p = PowerState::default();
        Syscon::new(p.clone()).write(0, 0x5555, 4).unwrap();
        assert_eq!(p.get(), Some(PowerRequest::Off(0)));
    }

    #[test]
    fn takes_only_aligned_2_and_4_byte_accesses() {
        let p = PowerState::default();
        let mut bus = Bus::new();
        bus.map(BASE, SIZE, BASE, "syscon", Arc::new(Mutex::new(Syscon::new(p.clone())))).unwrap();
        // An `sd` or `sb` of the pass value, or a misaligned one, faults and does not power off.
        for (addr, size) in [(BASE, 8), (BASE, 1), (BASE + 2, 4), (BASE + 1, 2)] {
            assert_eq!(bus.write(addr, size, 0x5555), Err(BusError::Unmapped(addr)), "{size} at {addr:#x}");
            assert_eq!(bus.read(addr, size), Err(BusError::Unmapped(addr)), "{size} at {addr:#x}");
        }
        assert_eq!(p.get(), None);
        assert_eq!(bus.read(BASE + SIZE - 2, 4), Err(BusError::Unmapped(BASE + SIZE)), "past the end");
        assert_eq!(bus.read(BASE, 2), Ok(0));
        assert_eq!(bus.read(BASE + SIZE - 4, 4), Ok(0));
        bus.write(BASE, 4, 0).unwrap();
        bus.write(BASE + 2, 2, 0x5555).unwrap();
        assert_eq!(p.get(), None, "only offset 0 powers off");
        bus.write(BASE, 2, 0x5555).unwrap();
        assert_eq!(p.get(), Some(PowerRequest::Off(0)));
    }
}
