//! The platform-level interrupt controller (`sifive,plic-1.0.0`) as QEMU's `virt` board has it:
//! 96 sources (0 is reserved), priorities 0..=7, and two contexts per hart, `2h` for machine mode
//! (driving the hart's MEIP) and `2h + 1` for supervisor mode (SEIP).
//!
//! Register map (offsets from [`BASE`]), aligned 4-byte accesses only, as QEMU's `valid` rule;
//! every other offset in the window reads 0 and ignores writes:
//!
//! | offset | register |
//! |---|---|
//! | `0x0 + 4n` | priority of source n (1..=95; WARL, the value modulo 8) |
//! | `0x1000 + 4w` | pending bits of sources 32w..32w+31 (w = 0..=2; read-only) |
//! | `0x2000 + 0x80c + 4w` | enable bits of context c |
//! | `0x20_0000 + 0x1000c` | priority threshold of context c (WARL, modulo 8) |
//! | `0x20_0004 + 0x1000c` | claim (read) / complete (write) of context c |
//!
//! Behaviour follows QEMU's `hw/intc/sifive_plic.c`: a context asserts its output when an enabled,
//! pending, unclaimed source has a priority above its threshold (the highest wins, the lowest id on
//! a tie); a claim answers that source (0 if none) and clears its pending bit; a claimed source
//! reaches no context until it is completed, and a completion names any source, enabled or not.
//! The gateway is level-triggered: a line that rises sets the pending bit, one that falls clears
//! it, and a source completed while its line is still high is pending again at once. Two
//! differences, both toward the spec: an enable write re-evaluates the outputs at once (QEMU's
//! waits for the next event), and source 0's priority stays 0.
//!
//! Lines arrive from any thread (device workers, the vCPU thread in a device access); the state
//! sits behind one uncontended mutex, and each hart reads its MEIP/SEIP bits from an atomic word,
//! so the hart's `mip` never locks. A rising MEIP asks the engine to return at its next block
//! boundary and wakes a hart in `wfi`; a change that asserts nothing costs neither.

use crate::bus::{Access, MmioDevice, Window};
use crate::devices::clint::HartSignal;
use crate::riscv::csr::MIP_MEIP;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vm_plugin_api::VmError;

/// Base address on the `virt` board.
pub const BASE: u64 = 0x0c00_0000;
/// Register window size: room for QEMU's most harts (`VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2)`).
pub const SIZE: u64 = 0x60_0000;
/// Sources including the reserved source 0 (`VIRT_IRQCHIP_NUM_SOURCES`).
pub const NUM_SOURCES: u32 = 96;
/// Highest priority (`VIRT_IRQCHIP_NUM_PRIO_BITS` = 3).
pub const MAX_PRIORITY: u32 = 7;
/// `mip.SEIP`: the supervisor external interrupt, driven by each hart's S context.
pub const MIP_SEIP: u64 = 1 << 9;

const PENDING: u64 = 0x1000;
const ENABLE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
/// 32-bit words of one bit per source.
const WORDS: usize = NUM_SOURCES.div_ceil(32) as usize;

/// One hart's external interrupt inputs as the PLIC drives them: its `mip.MEIP` and `mip.SEIP`.
#[derive(Clone, Default)]
pub struct ExternalIrq(Arc<AtomicU64>);

impl ExternalIrq {
    /// The `mip` bits asserted now (`MIP_MEIP`, `MIP_SEIP`).
    pub fn bits(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the PLIC tells a hart.
struct HartPort {
    lines: ExternalIrq,
    /// The hart's attention word and `wfi` wake-up.
    signal: HartSignal,
}

struct Regs {
    priority: [u32; NUM_SOURCES as usize],
    /// Line levels (the gateways' inputs).
    level: [u32; WORDS],
    pending: [u32; WORDS],
    claimed: [u32; WORDS],
    /// Per context.
    enable: Vec<[u32; WORDS]>,
    threshold: Vec<u32>,
}

impl Regs {
    /// The source context `c` would be given by a claim now, if any.
    fn best(&self, c: usize) -> Option<u32> {
        let mut best = None;
        let mut max = self.threshold[c];
        for w in 0..WORDS {
            let mut bits = self.pending[w] & !self.claimed[w] & self.enable[c][w];
            while bits != 0 {
                let n = 32 * w as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                let p = self.priority.get(n as usize).copied().unwrap_or(0);
                if p > max {
                    (best, max) = (Some(n), p);
                }
            }
        }
        best
    }
}

/// The PLIC, shared by the bus, the interrupt lines and the harts.
#[derive(Clone)]
pub struct Plic {
    regs: Arc<Mutex<Regs>>,
    harts: Arc<[HartPort]>,
}

fn bit(n: u32) -> (usize, u32) {
    ((n / 32) as usize, 1 << (n % 32))
}

impl Plic {
    /// A PLIC for the harts `signals` reach (hart h gets contexts 2h and 2h + 1).
    pub fn new(signals: &[HartSignal]) -> Plic {
        let contexts = 2 * signals.len();
        let harts: Vec<_> =
            signals.iter().map(|s| HartPort { lines: ExternalIrq::default(), signal: s.clone() }).collect();
        let regs = Regs {
            priority: [0; NUM_SOURCES as usize],
            level: [0; WORDS],
            pending: [0; WORDS],
            claimed: [0; WORDS],
            enable: vec![[0; WORDS]; contexts],
            threshold: vec![0; contexts],
        };
        Plic { regs: Arc::new(Mutex::new(regs)), harts: harts.into() }
    }

    /// Hart `h`'s external interrupt inputs, for its `mip`.
    pub fn hart_lines(&self, h: usize) -> ExternalIrq {
        self.harts[h].lines.clone()
    }

    fn regs(&self) -> std::sync::MutexGuard<'_, Regs> {
        self.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Source `n`'s line changed to `level` (called by the interrupt lines on every change).
    pub fn set_level(&self, n: u32, level: bool) {
        if n == 0 || n >= NUM_SOURCES {
            return;
        }
        let (w, b) = bit(n);
        let mut r = self.regs();
        if level {
            r.level[w] |= b;
            r.pending[w] |= b;
        } else {
            r.level[w] &= !b;
            r.pending[w] &= !b;
        }
        self.update(r);
    }

    /// Recomputes every context's output from `r` and tells the harts what rose.
    fn update(&self, r: std::sync::MutexGuard<'_, Regs>) {
        let mut rose = Vec::new();
        for (h, port) in self.harts.iter().enumerate() {
            let meip = if r.best(2 * h).is_some() { MIP_MEIP } else { 0 };
            let seip = if r.best(2 * h + 1).is_some() { MIP_SEIP } else { 0 };
            // Under the lock, so concurrent updates leave the last state, not an older one.
            let old = port.lines.0.swap(meip | seip, Ordering::SeqCst);
            // A rising MEIP or SEIP may be takeable, so it stops the engine (the run loop decides);
            // a line change that asserts nothing leaves it running. The bit is set first: the run
            // loop, clearing the flag before it looks for interrupts, cannot miss it.
            if (meip | seip) & !old != 0 {
                rose.push(h);
            }
        }
        drop(r);
        for h in rose {
            self.harts[h].signal.raise();
        }
    }

    fn claim(&self, c: usize) -> u32 {
        let mut r = self.regs();
        let Some(n) = r.best(c) else { return 0 };
        let (w, b) = bit(n);
        r.pending[w] &= !b;
        r.claimed[w] |= b;
        self.update(r);
        n
    }

    fn complete(&self, n: u32) {
        if n >= NUM_SOURCES {
            return;
        }
        let (w, b) = bit(n);
        let mut r = self.regs();
        r.claimed[w] &= !b;
        // Level-triggered: a line still high asks again.
        let again = r.level[w] & b;
        r.pending[w] |= again;
        self.update(r);
    }

    fn contexts(&self) -> usize {
        2 * self.harts.len()
    }
}

impl MmioDevice for Plic {
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, VmError> {
        let n = self.contexts() as u64;
        let r = self.regs();
        Ok(match offset {
            0..PENDING => r.priority.get((offset / 4) as usize).copied().unwrap_or(0),
            PENDING..ENABLE => r.pending.get(((offset - PENDING) / 4) as usize).copied().unwrap_or(0),
            ENABLE..CONTEXT if offset - ENABLE < n * ENABLE_STRIDE => {
                let (c, w) = ((offset - ENABLE) / ENABLE_STRIDE, (offset % ENABLE_STRIDE) / 4);
                r.enable[c as usize].get(w as usize).copied().unwrap_or(0)
            }
            CONTEXT.. if offset - CONTEXT < n * CONTEXT_STRIDE => {
                let c = ((offset - CONTEXT) / CONTEXT_STRIDE) as usize;
                match offset % CONTEXT_STRIDE {
                    0 => r.threshold[c],
                    4 => {
                        drop(r);
                        return Ok(self.claim(c) as u64);
                    }
                    _ => 0,
                }
            }
            _ => 0,
        } as u64)
    }

    fn write(&mut self, offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
        let n = self.contexts() as u64;
        let value = value as u32;
        let mut r = self.regs();
        match offset {
            // Source 0 does not exist: its priority stays 0.
            4..PENDING => match r.priority.get_mut((offset / 4) as usize) {
                Some(p) => *p = value % (MAX_PRIORITY + 1),
                None => return Ok(()),
            },
            ENABLE..CONTEXT if offset - ENABLE < n * ENABLE_STRIDE => {
                let (c, w) = ((offset - ENABLE) / ENABLE_STRIDE, (offset % ENABLE_STRIDE) / 4);
                match r.enable[c as usize].get_mut(w as usize) {
                    Some(e) => *e = value,
                    None => return Ok(()),
                }
            }
            CONTEXT.. if offset - CONTEXT < n * CONTEXT_STRIDE => {
                let c = ((offset - CONTEXT) / CONTEXT_STRIDE) as usize;
                match offset % CONTEXT_STRIDE {
                    0 => r.threshold[c] = value % (MAX_PRIORITY + 1),
                    4 => {
                        drop(r);
                        self.complete(value);
                        return Ok(());
                    }
                    _ => return Ok(()),
                }
            }
            // Pending bits are read-only; the rest of the window has no registers.
            _ => return Ok(()),
        }
        self.update(r);
        Ok(())
    }

    fn windows(&self) -> Vec<Window> {
        vec![Window { first: 0, last: SIZE - 1, access: Access::aligned(4, 4) }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, BusError};
    use std::sync::atomic::AtomicU32;

    const M0: usize = 0;
    const S0: usize = 1;

    fn priority(n: u32) -> u64 {
        4 * n as u64
    }
    fn enable(c: usize) -> u64 {
        ENABLE + ENABLE_STRIDE * c as u64
    }
    fn threshold(c: usize) -> u64 {
        CONTEXT + CONTEXT_STRIDE * c as u64
    }
    fn claim(c: usize) -> u64 {
        threshold(c) + 4
    }

    struct Rig {
        plic: Plic,
        exit: Vec<Arc<AtomicU32>>,
        wake: Arc<tokio::sync::Notify>,
    }

    impl Rig {
        fn new(harts: usize) -> Rig {
            let exit: Vec<_> = (0..harts).map(|_| Arc::new(AtomicU32::new(0))).collect();
            let wake = Arc::new(tokio::sync::Notify::new());
            let signals: Vec<_> = exit
                .iter()
                .map(|e| HartSignal { attention: Arc::clone(e), wake: Arc::clone(&wake) })
                .collect();
            Rig { plic: Plic::new(&signals), exit, wake }
        }
        fn r(&mut self, off: u64) -> u32 {
            self.plic.read(off, 4).unwrap() as u32
        }
        fn w(&mut self, off: u64, v: u32) {
            self.plic.write(off, v as u64, 4).unwrap()
        }
        fn mip(&self, h: usize) -> u64 {
            self.plic.hart_lines(h).bits()
        }
        /// Whether the engine of hart `h` was asked to return (and clears the request).
        fn exit_asked(&self, h: usize) -> bool {
            self.exit[h].swap(0, Ordering::SeqCst) != 0
        }
        /// Whether `wake` holds a notification (and consumes it).
        fn woken(&self) -> bool {
            let n = self.wake.notified();
            let mut n = std::pin::pin!(n);
            // A stored permit completes the future on its first poll.
            n.as_mut().enable()
        }
        /// Source `n` at priority `p`, enabled for context `c`, whose threshold is 0.
        fn route(&mut self, n: u32, p: u32, c: usize) {
            self.w(priority(n), p);
            let word = enable(c) + 4 * (n / 32) as u64;
            let old = self.r(word);
            self.w(word, old | 1 << (n % 32));
        }
    }

    #[test]
    fn registers_read_back_with_priorities_and_thresholds_modulo_8() {
        let mut p = Rig::new(1);
        p.w(priority(1), 5);
        p.w(priority(95), 0xff);
        p.w(priority(10), 8);
        assert_eq!((p.r(priority(1)), p.r(priority(95)), p.r(priority(10))), (5, 7, 0));
        // Source 0 is reserved, past 95 there are no sources.
        p.w(priority(0), 3);
        p.w(priority(96), 3);
        assert_eq!((p.r(priority(0)), p.r(priority(96))), (0, 0));
        p.w(enable(M0), 0xffff_ffff);
        p.w(enable(M0) + 8, 0x8000_0001);
        p.w(enable(S0) + 4, 0x1234_5678);
        assert_eq!(p.r(enable(M0)), 0xffff_ffff);
        assert_eq!(p.r(enable(M0) + 8), 0x8000_0001);
        assert_eq!(p.r(enable(S0) + 4), 0x1234_5678);
        assert_eq!(p.r(enable(S0)), 0);
        // Word 3 of a context's enables, and a third context on a one-hart PLIC, are not there.
        p.w(enable(M0) + 12, 1);
        p.w(enable(2), 1);
        assert_eq!((p.r(enable(M0) + 12), p.r(enable(2))), (0, 0));
        p.w(threshold(M0), 0xf);
        p.w(threshold(S0), 3);
        p.w(threshold(2), 3);
        assert_eq!((p.r(threshold(M0)), p.r(threshold(S0)), p.r(threshold(2))), (7, 3, 0));
        // Pending bits are read-only, and nothing else in the window holds a value.
        p.w(PENDING, 0xffff_ffff);
        assert_eq!(p.r(PENDING), 0);
        for off in [threshold(M0) + 8, 0x1f_fffc, SIZE - 4, PENDING + 12] {
            p.w(off, 0xffff_ffff);
            assert_eq!(p.r(off), 0, "{off:#x}");
        }
        assert_eq!(p.mip(0), 0, "nothing pending, nothing asserted");
    }

    #[test]
    fn only_aligned_4_byte_accesses_reach_it() {
        let p = Rig::new(1);
        let mut bus = Bus::new();
        bus.map(BASE, SIZE, BASE, "plic", Arc::new(Mutex::new(p.plic.clone()))).unwrap();
        let a = BASE + priority(10);
        for (addr, size) in [(a, 1), (a, 2), (a, 8), (a + 2, 4), (a + 1, 4), (BASE + SIZE, 4)] {
            assert_eq!(bus.write(addr, size, 7), Err(BusError::Unmapped(addr)), "write {size} at {addr:#x}");
            assert_eq!(bus.read(addr, size), Err(BusError::Unmapped(addr)), "read {size} at {addr:#x}");
        }
        assert_eq!(bus.read(a, 4), Ok(0), "no refused write landed");
        bus.write(a, 4, 7).unwrap();
        assert_eq!(bus.read(a, 4), Ok(7));
        assert_eq!(bus.read(BASE + SIZE - 4, 4), Ok(0), "the window's last register answers");
    }

    #[test]
    fn a_raised_line_is_claimed_once_and_comes_back_only_after_completion() {
        let mut p = Rig::new(1);
        p.route(10, 1, M0);
        p.plic.set_level(10, true);
        assert_eq!(p.r(PENDING), 1 << 10);
        assert_eq!(p.mip(0), MIP_MEIP);
        assert!(p.exit_asked(0) && p.woken(), "a rising MEIP stops the engine and wakes wfi");
        assert_eq!(p.r(claim(M0)), 10);
        assert_eq!((p.r(PENDING), p.mip(0)), (0, 0), "claimed: no longer pending or asserted");
        assert_eq!(p.r(claim(M0)), 0, "nothing else to claim");
        // While claimed, the line going low and high again pends it, but it reaches no context.
        p.plic.set_level(10, false);
        p.plic.set_level(10, true);
        assert_eq!((p.r(PENDING), p.mip(0), p.r(claim(M0))), (1 << 10, 0, 0));
        assert!(!p.exit_asked(0));
        p.w(claim(M0), 10);
        assert_eq!(p.mip(0), MIP_MEIP, "completed with the line high: asserted again");
        assert!(p.exit_asked(0));
        assert_eq!(p.r(claim(M0)), 10);
        // Completed with the line low, it stays quiet; the line then rising asks again.
        p.plic.set_level(10, false);
        p.w(claim(M0), 10);
        assert_eq!((p.r(PENDING), p.mip(0)), (0, 0));
        p.plic.set_level(10, true);
        assert_eq!(p.mip(0), MIP_MEIP);
    }

    #[test]
    fn completion_is_not_checked_against_enables_as_on_qemu() {
        let mut p = Rig::new(1);
        p.route(10, 1, M0);
        p.plic.set_level(10, true);
        assert_eq!(p.r(claim(M0)), 10);
        // Disabled after the claim: QEMU still honours the completion (the spec ignores it).
        p.w(enable(M0), 0);
        p.w(claim(M0), 10);
        p.w(enable(M0), 1 << 10);
        assert_eq!(p.r(claim(M0)), 10, "completed, so claimable again");
        // Completing a source that is out of range or was never claimed changes nothing.
        p.w(claim(M0), 96);
        p.w(claim(M0), 0);
        p.w(claim(M0), 11);
        assert_eq!((p.r(claim(M0)), p.mip(0)), (0, 0));
    }

    #[test]
    fn a_line_that_falls_before_its_claim_is_no_longer_pending() {
        let mut p = Rig::new(1);
        p.route(10, 1, M0);
        p.plic.set_level(10, true);
        p.plic.set_level(10, false);
        assert_eq!((p.r(PENDING), p.mip(0), p.r(claim(M0))), (0, 0, 0));
    }

    #[test]
    fn threshold_priority_and_enables_decide_what_is_asserted_and_claimed() {
        let mut p = Rig::new(1);
        p.route(10, 3, M0);
        p.w(threshold(M0), 3);
        p.plic.set_level(10, true);
        assert_eq!(p.mip(0), 0, "priority <= threshold");
        assert!(!p.exit_asked(0) && !p.woken(), "a masked line stops nothing");
        assert_eq!(p.r(claim(M0)), 0, "QEMU's claim honours the threshold too");
        assert_eq!(p.r(PENDING), 1 << 10, "and leaves the source pending");
        p.w(threshold(M0), 2);
        assert_eq!(p.mip(0), MIP_MEIP, "lowering the threshold asserts it");
        assert!(p.exit_asked(0));
        p.w(priority(10), 0);
        p.w(threshold(M0), 0);
        assert_eq!(p.mip(0), 0, "priority 0 never interrupts");
        p.w(priority(10), 1);
        p.w(enable(M0), 0);
        assert_eq!((p.mip(0), p.r(claim(M0))), (0, 0), "disabled");
        p.w(enable(M0), 1 << 10);
        assert_eq!(p.r(claim(M0)), 10);
    }

    #[test]
    fn the_highest_priority_is_claimed_first_and_the_lowest_id_breaks_ties() {
        let mut p = Rig::new(1);
        for (n, prio) in [(3, 2), (40, 5), (70, 5), (95, 7), (1, 1)] {
            p.route(n, prio, M0);
            p.plic.set_level(n, true);
        }
        let order: Vec<u32> = (0..6).map(|_| p.r(claim(M0))).collect();
        assert_eq!(order, [95, 40, 70, 3, 1, 0]);
        assert_eq!(p.r(PENDING) | p.r(PENDING + 4) | p.r(PENDING + 8), 0, "every claim cleared its bit");
        assert_eq!(p.mip(0), 0);
    }

    #[test]
    fn contexts_2h_and_2h_plus_1_drive_meip_and_seip_of_hart_h() {
        let mut p = Rig::new(2);
        let (m1, s1) = (2, 3);
        p.route(5, 1, s1);
        p.plic.set_level(5, true);
        assert_eq!((p.mip(0), p.mip(1)), (0, MIP_SEIP));
        assert!(
            p.exit_asked(1) && !p.exit_asked(0),
            "a rising SEIP may be takeable: hart 1's engine returns"
        );
        assert!(p.woken());
        p.route(5, 1, m1);
        assert_eq!(p.mip(1), MIP_MEIP | MIP_SEIP);
        assert!(p.exit_asked(1) && !p.exit_asked(0));
        // A claim by one context takes the source from every context.
        assert_eq!(p.r(claim(s1)), 5);
        assert_eq!(p.mip(1), 0);
        p.route(6, 1, M0);
        p.plic.set_level(6, true);
        assert_eq!((p.mip(0), p.mip(1)), (MIP_MEIP, 0));
        assert_eq!((p.r(claim(m1)), p.r(claim(M0))), (0, 6));
    }

    #[test]
    fn lines_set_on_another_thread_reach_the_hart_and_wake_it() {
        let mut p = Rig::new(1);
        p.route(10, 1, M0);
        let plic = p.plic.clone();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let wake = Arc::clone(&p.wake);
        rt.block_on(async {
            let waiting = wake.notified();
            let setter = std::thread::spawn(move || plic.set_level(10, true));
            waiting.await;
            setter.join().unwrap();
        });
        assert_eq!(p.mip(0), MIP_MEIP);
        assert!(p.exit_asked(0));
    }

    #[test]
    fn toggling_a_masked_line_stops_and_wakes_nothing() {
        let mut p = Rig::new(1);
        // Enabled but at priority 0, then at a priority the threshold masks, then not enabled.
        p.route(10, 0, M0);
        for step in 0..3 {
            match step {
                1 => {
                    p.w(priority(10), 1);
                    p.w(threshold(M0), 1);
                }
                2 => {
                    p.w(threshold(M0), 0);
                    p.w(enable(M0), 0);
                }
                _ => {}
            }
            for _ in 0..1000 {
                p.plic.set_level(10, true);
                p.plic.set_level(10, false);
            }
            assert!(!p.exit_asked(0) && !p.woken() && p.mip(0) == 0, "step {step}");
        }
    }
}
