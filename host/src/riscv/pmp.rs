//! Physical memory protection (privileged spec 1.12, §3.7): which physical addresses each
//! privilege may read, write and execute, from the 16 `pmpcfg`/`pmpaddr` entries firmware writes.
//!
//! The lowest-numbered entry that matches any byte of an access decides: it must match every
//! byte, and grant the access (M-mode is granted unless the entry is locked). An S- or U-mode
//! access that no entry matches fails, an M-mode one succeeds; so until firmware programs an
//! entry, S and U can do nothing, as the spec says for a hart that implements PMP. (QEMU 7.2
//! refuses the `mret` into S or U itself then, with an illegal-instruction trap; the spec's fault
//! is the fetch at the target.)
//!
//! The TLB caches a page only when one answer holds for all of it ([`Pmp::uniform`]); a page
//! that an entry covers in part is checked on every access, as QEMU does for regions smaller than
//! a page.

/// `pmpcfg` bits.
const R: u8 = 1 << 0;
const W: u8 = 1 << 1;
const X: u8 = 1 << 2;
const A_SHIFT: u8 = 3;
const L: u8 = 1 << 7;
const OFF: u8 = 0;
const TOR: u8 = 1;
const NA4: u8 = 2;

/// What an access does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmpAccess {
    /// Load (and page-table reads).
    Read,
    /// Store, AMO (and A/D updates).
    Write,
    /// Instruction fetch.
    Exec,
}

/// A copy of a hart's PMP entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pmp {
    /// `pmpcfg` bytes, entry by entry.
    pub cfg: [u8; 16],
    /// `pmpaddr0..15`.
    pub addr: [u64; 16],
}

impl Pmp {
    /// The byte range entry `i` matches, as `[start, end)` in 128 bits (a NAPOT range may reach
    /// 2^64), or `None` when it is OFF or empty.
    fn range(&self, i: usize) -> Option<(u128, u128)> {
        let a = u128::from(self.addr[i]);
        let (start, end) = match (self.cfg[i] >> A_SHIFT) & 3 {
            OFF => return None,
            TOR => (if i == 0 { 0 } else { u128::from(self.addr[i - 1]) << 2 }, a << 2),
            NA4 => (a << 2, (a << 2) + 4),
            _ => {
                // NAPOT: the trailing ones of pmpaddr give the size, 2^(ones + 3) bytes.
                let ones = self.addr[i].trailing_ones();
                let size = 1u128 << (ones + 3);
                let start = (a & !((1u128 << ones) - 1)) << 2;
                (start, start + size)
            }
        };
        (start < end).then_some((start, end))
    }

    /// Whether `privilege` (0 U, 1 S, 3 M) may do `access` on `size` bytes at `paddr`.
    pub fn allows(&self, paddr: u64, size: u64, access: PmpAccess, privilege: u8) -> bool {
        // With no entry active, nothing matches: M may do anything (the common case for bare
        // M-mode guests), S and U nothing.
        if self.cfg.iter().all(|c| (c >> A_SHIFT) & 3 == OFF) {
            return privilege == 3;
        }
        let (lo, hi) = (u128::from(paddr), u128::from(paddr) + u128::from(size.max(1)));
        for i in 0..16 {
            let Some((start, end)) = self.range(i) else { continue };
            if hi <= start || end <= lo {
                continue;
            }
            if lo < start || end < hi {
                return false; // matches only part of the access
            }
            let cfg = self.cfg[i];
            if privilege == 3 && cfg & L == 0 {
                return true;
            }
            let bit = match access {
                PmpAccess::Read => R,
                PmpAccess::Write => W,
                PmpAccess::Exec => X,
            };
            return cfg & bit != 0;
        }
        privilege == 3
    }

    /// Whether every byte of the 4 KiB page at `page` gets the same answers (no entry covers part
    /// of it), so a TLB may cache the page.
    pub fn uniform(&self, page: u64) -> bool {
        let (lo, hi) = (u128::from(page), u128::from(page) + 4096);
        (0..16)
            .filter_map(|i| self.range(i))
            .all(|(start, end)| hi <= start || end <= lo || (start <= lo && hi <= end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(a: u8, perms: u8) -> u8 {
        (a << A_SHIFT) | perms
    }

    #[test]
    fn with_no_entry_active_only_m_may_access_memory() {
        let p = Pmp::default();
        assert!(p.allows(0x8000_0000, 8, PmpAccess::Write, 3));
        assert!(!p.allows(0x8000_0000, 8, PmpAccess::Read, 1));
        assert!(!p.allows(0x8000_0000, 2, PmpAccess::Exec, 0));
        assert!(p.uniform(0x8000_0000));
    }

    #[test]
    fn the_first_matching_entry_decides_and_must_cover_the_whole_access() {
        let mut p = Pmp::default();
        // Entry 0: NAPOT 0x8000_0000..+0x8_0000 with no permissions (OpenSBI's own region).
        p.cfg[0] = cfg(3, 0);
        p.addr[0] = (0x8000_0000 >> 2) | ((0x8_0000 >> 3) - 1);
        // Entry 1: TOR 0x1000_0000..0x1000_1000, read/write.
        p.addr[1] = 0x1000_0000 >> 2;
        p.cfg[2] = cfg(TOR, R | W);
        p.addr[2] = 0x1000_1000 >> 2;
        // Entry 3: NAPOT over everything, RWX.
        p.cfg[3] = cfg(3, R | W | X);
        p.addr[3] = u64::MAX >> 10;
        assert!(!p.allows(0x8000_1000, 4, PmpAccess::Read, 1), "S in the firmware's region");
        assert!(p.allows(0x8000_1000, 4, PmpAccess::Write, 3), "M, entry not locked");
        assert!(!p.allows(0x8007_fffc, 8, PmpAccess::Read, 3), "M too fails a partial match");
        assert!(p.allows(0x8008_0000, 8, PmpAccess::Exec, 1), "past it: entry 3");
        assert!(!p.allows(0x8007_fffc, 8, PmpAccess::Read, 1), "straddles entry 0's end");
        assert!(p.allows(0x1000_0ff8, 8, PmpAccess::Write, 0));
        assert!(!p.allows(0x1000_0ff8, 8, PmpAccess::Exec, 0), "entry 2 has no X");
        assert!(!p.allows(0x1000_0ffc, 8, PmpAccess::Read, 0), "straddles entry 2's end");
        // Locked: M is held to the permissions too.
        p.cfg[0] |= L;
        assert!(!p.allows(0x8000_1000, 4, PmpAccess::Read, 3));
        assert!(p.uniform(0x8000_1000) && p.uniform(0x8007_f000) && p.uniform(0x1000_0000));
    }

    #[test]
    fn no_match_denies_s_and_u_but_not_m_and_a_partial_page_is_not_uniform() {
        let mut p = Pmp::default();
        p.cfg[0] = cfg(NA4, R);
        p.addr[0] = 0x8000_0010 >> 2;
        assert!(p.allows(0x8000_0010, 4, PmpAccess::Read, 0));
        assert!(!p.allows(0x8000_0010, 4, PmpAccess::Write, 0));
        assert!(!p.allows(0x8000_0020, 4, PmpAccess::Read, 1), "no entry matches");
        assert!(p.allows(0x8000_0020, 4, PmpAccess::Read, 3), "M without a match");
        assert!(!p.uniform(0x8000_0000), "4 bytes of the page are special");
        assert!(p.uniform(0x8000_1000));
    }

    #[test]
    fn tor_entry_0_starts_at_zero_and_an_empty_range_matches_nothing() {
        let mut p = Pmp::default();
        p.cfg[0] = cfg(TOR, R | X);
        p.addr[0] = 0x2000 >> 2;
        assert!(p.allows(0, 4, PmpAccess::Exec, 1) && p.allows(0x1ffc, 4, PmpAccess::Read, 1));
        assert!(!p.allows(0x2000, 4, PmpAccess::Read, 1));
        p.cfg[1] = cfg(TOR, R | W | X);
        p.addr[1] = 0x1000 >> 2; // below entry 0's top: empty
        assert!(!p.allows(0x2000, 4, PmpAccess::Read, 1));
    }
}
