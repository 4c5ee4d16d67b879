//! The core-local interruptor (`sifive,clint0`): `mtime` at 10 MHz, and `msip` and `mtimecmp`
//! for each hart (at `4·h` and `0x4000 + 8·h`, as QEMU's ACLINT lays them out).
//!
//! `mtime` comes from the host's monotonic clock, or, for runs that must repeat exactly, from the
//! hart's instructions retired ([`Clint::virtual_time`], QEMU's `-icount` idea): one tick per
//! [`INSNS_PER_TICK`] instructions, plus the time skipped while the hart sleeps in `wfi` until its
//! timer (nothing else could wake it sooner without outside input).
//!
//! Its register windows take what QEMU's `virt` CLINT takes: `msip` only aligned 4-byte accesses,
//! `mtimecmp`/`mtime` aligned 4- or 8-byte ones, and nothing answers past `mtime` (0xc000..).
//!
//! A [`Clint`] is one hart's view ([`Clint::for_hart`]): the run loop asks it for that hart's
//! timer and software interrupt bits ([`Clint::pending`]) and for when to wake the hart or
//! interrupt the engine ([`Clint::deadline`]). A write to another hart's `msip` raises that hart's
//! attention and wakes it (an IPI); the writing hart takes its own interrupts in the store.

use crate::bus::{Access, MmioDevice, Window};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vm_plugin_api::VmError;

/// Base address on the `virt` board.
pub const BASE: u64 = 0x200_0000;
/// Register window size.
pub const SIZE: u64 = 0x1_0000;
/// `mtime` frequency (the device tree's `timebase-frequency`).
pub const TIMEBASE_HZ: u64 = 10_000_000;
/// Host nanoseconds per `mtime` tick: a whole number, so the conversions are exact.
const NS_PER_TICK: u64 = 1_000_000_000 / TIMEBASE_HZ;
const _: () = assert!(1_000_000_000 % TIMEBASE_HZ == 0);

/// With the instruction clock: 100 instructions per 100 ns tick, one instruction per nanosecond.
pub const INSNS_PER_TICK: u64 = 100;

const MSIP: u64 = 0x0;
const MTIMECMP: u64 = 0x4000;
const MTIME: u64 = 0xbff8;

/// The software-interrupt window (`msip` per hart) and the timer window (`mtimecmp` per hart,
/// `mtime`), as QEMU's ACLINT `swi` and `mtimer` regions declare them.
const WINDOWS: [Window; 2] = [
    Window { first: MSIP, last: MTIMECMP - 1, access: Access::aligned(4, 4) },
    Window { first: MTIMECMP, last: MTIME + 7, access: Access::aligned(4, 8) },
];

#[derive(Clone, Copy)]
struct Regs {
    msip: bool,
    mtimecmp: u64,
}

/// What `mtime` counts.
#[derive(Clone)]
enum Clock {
    /// Host time since this instant.
    Host(Instant),
    /// Instructions retired and time skipped.
    Instructions(Arc<VirtualTime>),
}

/// The instruction clock's state: what the hart last reported, and the ticks skipped in `wfi`.
struct VirtualTime {
    instret: AtomicU64,
    skipped: AtomicU64,
    /// Raised when `mtimecmp` changes, so the run loop re-plans the engine's budget to end at the
    /// new deadline.
    attention: Arc<AtomicU32>,
}

/// How the CLINT reaches a hart: its attention word and its `wfi` wake-up.
#[derive(Clone)]
pub struct HartSignal {
    /// The hart's attention word.
    pub attention: Arc<AtomicU32>,
    /// Rung to end the hart's `wfi` wait.
    pub wake: Arc<tokio::sync::Notify>,
}

impl HartSignal {
    /// Asks the hart to look at its interrupts: return from the engine, or stop waiting.
    pub fn raise(&self) {
        self.attention.fetch_or(vm_plugin_api::cpu::attn::IRQ, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

thread_local! {
    /// The hart this thread runs (set by the vCPU threads), so a write to the CLINT knows whether
    /// it targets another hart.
    static CURRENT_HART: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Records that this thread runs hart `hart`.
pub fn set_current_hart(hart: usize) {
    CURRENT_HART.with(|c| c.set(Some(hart)));
}

struct Shared {
    clock: Clock,
    regs: Mutex<Vec<Regs>>,
    /// Woken when an `mtimecmp` changes, so the timer watcher can re-plan its wake-up.
    changed: Arc<tokio::sync::Notify>,
    /// Per hart; empty when the harts are not wired up (unit tests).
    signals: Vec<HartSignal>,
}

/// One hart's view of the CLINT, which all harts share. The bus device serves every hart's
/// registers through any view.
#[derive(Clone)]
pub struct Clint {
    shared: Arc<Shared>,
    hart: usize,
}

impl Default for Clint {
    fn default() -> Self {
        Self::new()
    }
}

impl Clint {
    /// A one-hart CLINT whose `mtime` starts at 0 now and follows the host's clock.
    pub fn new() -> Clint {
        Self::with_clock(Clock::Host(Instant::now()), Vec::new(), 1)
    }

    /// A CLINT for the harts `signals` reach (one each), with the host's clock.
    pub fn for_harts(signals: Vec<HartSignal>) -> Clint {
        let n = signals.len();
        Self::with_clock(Clock::Host(Instant::now()), signals, n)
    }

    /// A one-hart CLINT whose `mtime` follows the hart's instructions retired (reported through
    /// [`Clint::observe_instret`]); `signal`'s attention is raised when `mtimecmp` changes.
    pub fn virtual_time(signal: HartSignal) -> Clint {
        let time = VirtualTime {
            instret: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            attention: Arc::clone(&signal.attention),
        };
        Self::with_clock(Clock::Instructions(Arc::new(time)), vec![signal], 1)
    }

    fn with_clock(clock: Clock, signals: Vec<HartSignal>, harts: usize) -> Clint {
        let regs = (0..harts.max(1)).map(|_| Regs { msip: false, mtimecmp: u64::MAX }).collect();
        let changed = Arc::new(tokio::sync::Notify::new());
        let shared = Shared { clock, regs: Mutex::new(regs), changed, signals };
        Clint { shared: Arc::new(shared), hart: 0 }
    }

    /// Hart `hart`'s view.
    pub fn for_hart(&self, hart: usize) -> Clint {
        Clint { shared: Arc::clone(&self.shared), hart }
    }

    /// Harts served.
    pub fn harts(&self) -> usize {
        self.all_regs().len()
    }

    fn all_regs(&self) -> std::sync::MutexGuard<'_, Vec<Regs>> {
        self.shared.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This hart's registers, as they are now.
    fn regs(&self) -> Regs {
        self.all_regs()[self.hart]
    }

    /// Current `mtime`.
    pub fn mtime(&self) -> u64 {
        match &self.shared.clock {
            // In u64 (584 years of nanoseconds): a u128 division cost as much as the clock read.
            Clock::Host(start) => u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX) / NS_PER_TICK,
            Clock::Instructions(t) => {
                t.instret.load(Ordering::Relaxed) / INSNS_PER_TICK + t.skipped.load(Ordering::Relaxed)
            }
        }
    }

    /// Whether `mtime` follows instructions retired.
    pub fn is_virtual(&self) -> bool {
        matches!(self.shared.clock, Clock::Instructions(_))
    }

    /// The hart's instructions retired so far (exact at every host call); moves the instruction
    /// clock. Nothing with the host clock.
    #[inline]
    pub fn observe_instret(&self, instret: u64) {
        if let Clock::Instructions(t) = &self.shared.clock {
            t.instret.store(instret, Ordering::Relaxed);
        }
    }

    /// With the instruction clock: how many more instructions until the timer interrupt becomes
    /// pending, if it is armed and not pending yet. `None` with the host clock.
    pub fn instructions_to_deadline(&self) -> Option<u64> {
        let Clock::Instructions(t) = &self.shared.clock else { return None };
        let cmp = self.regs().mtimecmp;
        let skipped = t.skipped.load(Ordering::Relaxed);
        let at = cmp.checked_sub(skipped)?.checked_mul(INSNS_PER_TICK)?;
        at.checked_sub(t.instret.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    /// With the instruction clock, a hart that sleeps until its timer skips the time in between:
    /// `mtime` jumps to `mtimecmp`. Returns whether it did (`false` with the host clock, or with no
    /// deadline ahead).
    pub fn skip_to_deadline(&self) -> bool {
        let Clock::Instructions(t) = &self.shared.clock else { return false };
        let cmp = self.regs().mtimecmp;
        let now = self.mtime();
        if cmp == u64::MAX || cmp <= now {
            return false;
        }
        t.skipped.fetch_add(cmp - now, Ordering::Relaxed);
        true
    }

    /// (software interrupt pending, timer interrupt pending).
    pub fn pending(&self) -> (bool, bool) {
        self.pending_of(true)
    }

    /// Like [`Clint::pending`], reading the clock only if `timer` (the clock read is most of what
    /// a check costs); without it the timer bit is `false`.
    pub fn pending_of(&self, timer: bool) -> (bool, bool) {
        let r = self.regs();
        let mtip = timer
            && match r.mtimecmp {
                0 => true,
                u64::MAX => false,
                cmp => self.mtime() >= cmp,
            };
        (r.msip, mtip)
    }

    /// The host instant at which the timer interrupt becomes pending, if it is armed and `mtime`
    /// follows the host's clock.
    pub fn deadline(&self) -> Option<Instant> {
        let Clock::Host(start) = &self.shared.clock else { return None };
        let cmp = self.regs().mtimecmp;
        if cmp == u64::MAX {
            return None;
        }
        Some(*start + Duration::from_nanos(cmp.saturating_mul(NS_PER_TICK)))
    }

    /// Notified whenever the guest changes an `mtimecmp`.
    pub fn changed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.shared.changed)
    }

    /// Raises the attention of every hart whose timer is due (for the timer watcher). Nothing
    /// with the instruction clock: there the run loop ends each slice at the deadline itself, and
    /// a signal from a host thread would make runs differ.
    pub fn signal_due(&self) {
        if self.is_virtual() {
            return;
        }
        for (h, s) in self.shared.signals.iter().enumerate() {
            if self.for_hart(h).pending_of(true).1 {
                s.raise();
            }
        }
    }

    /// The earliest host instant at which some hart's timer becomes pending.
    pub fn earliest_deadline(&self) -> Option<Instant> {
        (0..self.harts()).filter_map(|h| self.for_hart(h).deadline()).min()
    }
}

/// Reads `size` bytes at byte `off` of a 64-bit register value.
fn part(value: u64, off: u64, size: u8) -> u64 {
    let v = value >> (8 * (off & 7));
    if size >= 8 { v } else { v & ((1u64 << (8 * size as u32)) - 1) }
}

/// Replaces `size` bytes at byte `off` of a 64-bit register value; bytes past the register's end
/// are dropped.
fn merge(old: u64, off: u64, size: u8, value: u64) -> u64 {
    let shift = 8 * (off & 7);
    let bytes = if size >= 8 { u64::MAX } else { (1u64 << (8 * size as u32)) - 1 };
    let mask = bytes << shift;
    (old & !mask) | ((value << shift) & mask)
}

/// The hart whose `msip` (`true`) or `mtimecmp` (`false`) `offset` falls in, if that hart exists.
fn hart_of(offset: u64, harts: usize) -> Option<(usize, bool)> {
    let (h, msip) = match offset {
        MSIP..MTIMECMP => (offset / 4, true),
        MTIMECMP..MTIME => ((offset - MTIMECMP) / 8, false),
        _ => return None,
    };
    usize::try_from(h).ok().filter(|&h| h < harts).map(|h| (h, msip))
}

impl MmioDevice for Clint {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        if let MTIME..=0xbfff = offset {
            return Ok(part(self.mtime(), offset, size));
        }
        // Registers of harts that do not exist read 0, as on QEMU.
        let regs = self.all_regs();
        Ok(match hart_of(offset, regs.len()) {
            Some((h, true)) => regs[h].msip as u64,
            Some((h, false)) => part(regs[h].mtimecmp, offset, size),
            None => 0,
        })
    }

    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        let mut regs = self.all_regs();
        match hart_of(offset, regs.len()) {
            Some((h, true)) => {
                let raised = value & 1 != 0 && !regs[h].msip;
                regs[h].msip = value & 1 != 0;
                drop(regs);
                // An IPI: the target hart must notice. The writing hart takes its own interrupt
                // in the store (see vcpu.rs), without leaving its engine.
                let remote = CURRENT_HART.with(|c| c.get()) != Some(h);
                if raised
                    && remote
                    && let Some(s) = self.shared.signals.get(h)
                {
                    s.raise();
                }
            }
            Some((h, false)) => {
                regs[h].mtimecmp = merge(regs[h].mtimecmp, offset, size, value);
                drop(regs);
                // Only the deadline needs re-planning; `msip` is read where it matters.
                self.shared.changed.notify_one();
                if let Clock::Instructions(t) = &self.shared.clock {
                    t.attention.fetch_or(vm_plugin_api::cpu::attn::IRQ, Ordering::SeqCst);
                }
            }
            // mtime is read-only here: the host clock drives it.
            None => {}
        }
        Ok(())
    }

    fn windows(&self) -> Vec<Window> {
        WINDOWS.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, BusError};

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
        // 8 bytes at byte 4: the low half of the value lands in the high half, the low half of
        // the register stays (the mask used to be unshifted and cleared it).
        assert_eq!(merge(0x1122_3344_5566_7788, 4, 8, 0x5566_7788), 0x5566_7788_5566_7788);
        assert_eq!(merge(0x1122_3344_5566_7788, 0, 8, 0), 0);
        assert_eq!(merge(0x1122_3344_5566_7788, 6, 2, 0xaabb), 0xaabb_3344_5566_7788);
    }

    fn on_bus() -> (Bus, Clint) {
        let clint = Clint::new();
        let mut bus = Bus::new();
        bus.map(BASE, SIZE, BASE, "clint", Arc::new(Mutex::new(clint.clone()))).unwrap();
        bus.write(BASE + MTIMECMP, 8, 0x1122_3344_5566_7788).unwrap();
        (bus, clint)
    }

    #[test]
    fn misaligned_8_byte_store_to_mtimecmp_faults_and_leaves_it_alone() {
        let (bus, clint) = on_bus();
        assert_eq!(
            bus.write(BASE + MTIMECMP + 4, 8, 0x5566_7788),
            Err(BusError::Unmapped(BASE + MTIMECMP + 4))
        );
        assert_eq!(clint.regs().mtimecmp, 0x1122_3344_5566_7788);
        // The 4-byte halves are registers of their own.
        bus.write(BASE + MTIMECMP + 4, 4, 0xaabb_ccdd).unwrap();
        assert_eq!(bus.read(BASE + MTIMECMP, 8), Ok(0xaabb_ccdd_5566_7788));
        bus.write(BASE + MTIMECMP, 4, 0x0102_0304).unwrap();
        assert_eq!(bus.read(BASE + MTIMECMP, 8), Ok(0xaabb_ccdd_0102_0304));
        assert_eq!(bus.read(BASE + MTIMECMP + 4, 4), Ok(0xaabb_ccdd));
    }

    #[test]
    fn wrong_sized_and_misaligned_accesses_fault_as_on_qemu() {
        let (bus, clint) = on_bus();
        let m = BASE + MSIP;
        let c = BASE + MTIMECMP;
        let t = BASE + MTIME;
        for (addr, size) in [
            (m, 1),
            (m, 2),
            (m, 8),
            (m + 2, 4),
            (c, 1),
            (c, 2),
            (c + 2, 4),
            (c + 1, 8),
            (c + 4, 8),
            (t, 1),
            (t + 6, 2),
            (BASE + 0xc000, 4),
            (BASE + SIZE - 8, 8),
        ] {
            assert_eq!(bus.read(addr, size), Err(BusError::Unmapped(addr)), "read {size} at {addr:#x}");
            assert_eq!(bus.write(addr, size, 1), Err(BusError::Unmapped(addr)), "write {size} at {addr:#x}");
        }
        assert_eq!(clint.regs().mtimecmp, 0x1122_3344_5566_7788);
        assert!(!clint.regs().msip);
        // Past the end of the timer window: the fault is at the first byte past it.
        assert_eq!(bus.read(t + 4, 8), Err(BusError::Unmapped(BASE + 0xc000)));
        assert_eq!(bus.read(t + 6, 4), Err(BusError::Unmapped(BASE + 0xc000)));
        // What QEMU takes.
        assert_eq!(bus.read(m, 4), Ok(0));
        bus.write(m, 4, 1).unwrap();
        assert!(clint.regs().msip);
        assert!(bus.read(t, 8).is_ok() && bus.read(t, 4).is_ok() && bus.read(t + 4, 4).is_ok());
        assert_eq!(bus.read(c + 8, 4), Ok(0), "another hart's mtimecmp reads 0, as on QEMU");
    }

    #[test]
    fn each_hart_has_its_own_registers_and_a_remote_msip_is_an_ipi() {
        let signals: Vec<_> = (0..3)
            .map(|_| HartSignal { attention: Arc::default(), wake: Arc::new(tokio::sync::Notify::new()) })
            .collect();
        let mut c = Clint::for_harts(signals.clone());
        set_current_hart(0);
        c.write(MSIP + 8, 1, 4).unwrap();
        assert_eq!(c.for_hart(2).pending(), (true, false));
        assert_eq!(c.for_hart(0).pending(), (false, false));
        assert_eq!(signals[2].attention.load(Ordering::SeqCst), vm_plugin_api::cpu::attn::IRQ);
        c.write(MSIP, 1, 4).unwrap();
        assert_eq!(signals[0].attention.load(Ordering::SeqCst), 0, "the writer takes its own in the store");
        c.write(MTIMECMP + 8, 0, 8).unwrap();
        assert_eq!(c.read(MTIMECMP + 8, 8).unwrap(), 0);
        assert_eq!(c.for_hart(1).pending(), (false, true));
        assert_eq!(c.read(MTIMECMP + 24, 8).unwrap(), 0, "a fourth hart's register reads 0");
        assert_eq!(c.read(MSIP + 12, 4).unwrap(), 0);
        c.signal_due();
        assert_ne!(signals[1].attention.load(Ordering::SeqCst), 0);
    }
}
