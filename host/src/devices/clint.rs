//! The core-local interruptor (`sifive,clint0`): `mtime` at 10 MHz from the host's monotonic clock,
//! one hart's `mtimecmp` and `msip`.
//!
//! The run loop asks [`Clint::pending`] for the timer and software interrupt bits, and
//! [`Clint::deadline`] for when to wake the hart or interrupt the engine.

use crate::bus::MmioDevice;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vm_plugin_api::VmError;

/// Base address on the `virt` board.
pub const BASE: u64 = 0x200_0000;
/// Register window size.
pub const SIZE: u64 = 0x1_0000;
/// `mtime` frequency (the device tree's `timebase-frequency`).
pub const TIMEBASE_HZ: u64 = 10_000_000;

const MSIP: u64 = 0x0;
const MTIMECMP: u64 = 0x4000;
const MTIME: u64 = 0xbff8;

struct Regs {
    msip: bool,
    mtimecmp: u64,
}

/// CLINT state shared by the bus device and the hart.
#[derive(Clone)]
pub struct Clint {
    start: Instant,
    regs: Arc<Mutex<Regs>>,
    /// Woken when `mtimecmp` or `msip` changes, so the run loop can re-plan its wake-ups.
    changed: Arc<tokio::sync::Notify>,
}

impl Default for Clint {
    fn default() -> Self {
        Self::new()
    }
}

impl Clint {
    /// A CLINT whose `mtime` starts at 0 now.
    pub fn new() -> Clint {
        Clint {
            start: Instant::now(),
            regs: Arc::new(Mutex::new(Regs { msip: false, mtimecmp: u64::MAX })),
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn regs(&self) -> std::sync::MutexGuard<'_, Regs> {
        self.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current `mtime`.
    pub fn mtime(&self) -> u64 {
        let ns = self.start.elapsed().as_nanos();
        (ns * TIMEBASE_HZ as u128 / 1_000_000_000) as u64
    }

    /// (software interrupt pending, timer interrupt pending).
    pub fn pending(&self) -> (bool, bool) {
        let r = self.regs();
        (r.msip, self.mtime() >= r.mtimecmp)
    }

    /// The host instant at which the timer interrupt becomes pending, if it is armed.
    pub fn deadline(&self) -> Option<Instant> {
        let cmp = self.regs().mtimecmp;
        if cmp == u64::MAX {
            return None;
        }
        let ns = (cmp as u128 * 1_000_000_000).div_ceil(TIMEBASE_HZ as u128);
        Some(self.start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
    }

    /// Notified whenever the guest changes `mtimecmp` or `msip`.
    pub fn changed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.changed)
    }
}

/// Reads `size` bytes at byte `off` of a 64-bit register value.
fn part(value: u64, off: u64, size: u8) -> u64 {
    let v = value >> (8 * (off & 7));
    if size >= 8 { v } else { v & ((1u64 << (8 * size as u32)) - 1) }
}

/// Replaces `size` bytes at byte `off` of a 64-bit register value.
fn merge(old: u64, off: u64, size: u8, value: u64) -> u64 {
    let shift = 8 * (off & 7);
    let mask = if size >= 8 { u64::MAX } else { ((1u64 << (8 * size as u32)) - 1) << shift };
    (old & !mask) | ((value << shift) & mask)
}

impl MmioDevice for Clint {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        Ok(match offset {
            MSIP..=0x3 => self.regs().msip as u64,
            MTIMECMP..=0x4007 => part(self.regs().mtimecmp, offset, size),
            MTIME..=0xbfff => part(self.mtime(), offset, size),
            _ => 0,
        })
    }

    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        match offset {
            MSIP..=0x3 => self.regs().msip = value & 1 != 0,
            MTIMECMP..=0x4007 => {
                let mut r = self.regs();
                r.mtimecmp = merge(r.mtimecmp, offset, size, value);
            }
            // mtime is read-only here: the host clock drives it.
            _ => return Ok(()),
        }
        self.changed.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_fires_after_mtimecmp() {
        let mut c = Clint::new();
        assert_eq!(c.pending(), (false, false));
        assert_eq!(c.deadline(), None);
        c.write(MTIMECMP, 0, 4).unwrap();
        c.write(MTIMECMP + 4, 0, 4).unwrap();
        assert_eq!(c.read(MTIMECMP, 8).unwrap(), 0);
        assert_eq!(c.pending(), (false, true));
        c.write(MSIP, 1, 4).unwrap();
        assert!(c.pending().0);
        let t0 = c.read(MTIME, 8).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.read(MTIME, 8).unwrap() >= t0 + 20_000, "10 MHz clock advanced");
    }

    #[test]
    fn partial_register_access() {
        assert_eq!(merge(u64::MAX, 4, 4, 0), 0x0000_0000_ffff_ffff);
        assert_eq!(part(0x1122_3344_5566_7788, 4, 4), 0x1122_3344);
    }
}
