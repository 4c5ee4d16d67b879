//! The hart's software TLB: the tables behind `CpuState::tlb` that every engine's RAM fast path
//! reads, the MMU modes the frontend picks for each access, and the translation context word.
//!
//! Only this hart's thread writes the tables (in host calls and between runs). The host fills an
//! entry on a miss, 4 KiB at a time whatever the leaf's size, and only for RAM: device pages are
//! never cached, so every access to them reaches the host. A page holding translated code keeps
//! `NOTDIRTY` in its write tags, so stores to it reach the host too (see `code_pages`).

use vm_plugin_api::CpuState;
use vm_plugin_api::cpu::{MMU_MODES, PAGE_MASK, TLB_ENTRY_BITS, TlbEntry, TlbFast, tlb_flag};

/// MMU mode of U-mode accesses.
pub const MMU_U: u8 = 0;
/// MMU mode of S-mode accesses with `mstatus.SUM` clear, and of S-mode fetch.
pub const MMU_S: u8 = 1;
/// MMU mode of S-mode loads and stores with `mstatus.SUM` set (may touch U pages).
pub const MMU_S_SUM: u8 = 2;
/// MMU mode of M-mode accesses: never translated.
pub const MMU_M: u8 = 3;

/// Entries per mode (QEMU starts at 256 too).
const ENTRIES: usize = 256;

/// Context bit: `mstatus.FS` is not Off, so F and D instructions execute.
pub const TB_FP: u32 = 1 << 4;
/// Context bit: `mstatus.FS` is Dirty, so writing FP state need not set it first.
pub const TB_FP_DIRTY: u32 = 1 << 5;

/// The translation context `cpu.tb_flags` holds: the privilege in bits 1..0, the MMU mode of
/// loads and stores in bits 3..2 (which folds in MPRV, MPP and SUM), and from `mstatus.FS` (`fs`)
/// [`TB_FP`] and [`TB_FP_DIRTY`]. A block lowered under one context never runs under another.
pub fn tb_flags(privilege: u8, data_mmu: u8, fs: u8) -> u32 {
    let fp = match fs & 3 {
        0 => 0,
        3 => TB_FP | TB_FP_DIRTY,
        _ => TB_FP,
    };
    u32::from(privilege & 3) | u32::from(data_mmu & 3) << 2 | fp
}

/// The MMU mode of loads and stores in context `flags`.
pub fn data_mmu(flags: u32) -> u8 {
    ((flags >> 2) & 3) as u8
}

/// The MMU mode of instruction fetch at `privilege`.
pub fn fetch_mmu(privilege: u8) -> u8 {
    match privilege {
        0 => MMU_U,
        1 => MMU_S,
        _ => MMU_M,
    }
}

/// Rights a filled entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Loads hit.
    pub read: bool,
    /// Stores hit (only for a writable page whose PTE.D is set).
    pub write: bool,
    /// Fetches hit.
    pub exec: bool,
    /// The page holds translated code: stores must still reach the host.
    pub code: bool,
}

/// The tables of one hart.
pub struct Tlb {
    /// Boxed, so the addresses handed to `CpuState` stay put when the `Tlb` moves.
    tables: [Box<[TlbEntry]>; MMU_MODES],
    /// Whether an entry came from a superpage since the last full flush: a flush by address must
    /// then drop everything, since the other 4 KiB pieces of that leaf are cached separately.
    superpages: bool,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            tables: std::array::from_fn(|_| vec![TlbEntry::EMPTY; ENTRIES].into_boxed_slice()),
            superpages: false,
        }
    }
}

fn index(vaddr: u64) -> usize {
    (vaddr >> vm_plugin_api::cpu::PAGE_BITS) as usize & (ENTRIES - 1)
}

impl Tlb {
    /// Points `cpu`'s fast path at these tables.
    pub fn attach(&mut self, cpu: &mut CpuState) {
        for (fast, table) in cpu.tlb.iter_mut().zip(self.tables.iter_mut()) {
            *fast = TlbFast { mask: ((ENTRIES - 1) << TLB_ENTRY_BITS) as u64, table: table.as_mut_ptr() };
        }
    }

    /// Drops every entry.
    pub fn flush(&mut self) {
        for t in &mut self.tables {
            t.fill(TlbEntry::EMPTY);
        }
        self.superpages = false;
    }

    /// Drops what maps virtual address `vaddr` in any mode (everything, if superpages are cached).
    pub fn flush_page(&mut self, vaddr: u64) {
        if self.superpages {
            return self.flush();
        }
        let page = vaddr & PAGE_MASK;
        for t in &mut self.tables {
            let e = &mut t[index(vaddr)];
            if [e.read, e.write, e.exec].iter().any(|&tag| tag != u64::MAX && tag & PAGE_MASK == page) {
                *e = TlbEntry::EMPTY;
            }
        }
    }

    /// Caches the 4 KiB page of `vaddr` in mode `mmu`, at host page address `host_page`.
    pub fn fill(&mut self, mmu: u8, vaddr: u64, host_page: u64, rights: Fill, superpage: bool) {
        let page = vaddr & PAGE_MASK;
        let tag = |ok: bool| if ok { page } else { u64::MAX };
        let write = if rights.write && rights.code { page | tlb_flag::NOTDIRTY } else { tag(rights.write) };
        self.tables[mmu as usize & (MMU_MODES - 1)][index(vaddr)] = TlbEntry {
            read: tag(rights.read),
            write,
            exec: tag(rights.exec),
            addend: host_page.wrapping_sub(page),
        };
        self.superpages |= superpage;
    }

    /// Makes stores to the RAM page at host address `host_page` miss (it now holds code).
    pub fn protect_code(&mut self, host_page: u64) {
        self.retag_writes(host_page, |w| w | tlb_flag::NOTDIRTY);
    }

    /// Lets stores to the RAM page at host address `host_page` hit again (its code is gone).
    pub fn unprotect_code(&mut self, host_page: u64) {
        self.retag_writes(host_page, |w| w & !tlb_flag::NOTDIRTY);
    }

    /// QEMU's `tlb_reset_dirty` match: an entry maps the page if its write tag's page plus its
    /// addend is the page's host address.
    fn retag_writes(&mut self, host_page: u64, f: impl Fn(u64) -> u64) {
        for e in self.tables.iter_mut().flat_map(|t| t.iter_mut()) {
            if e.write != u64::MAX && (e.write & PAGE_MASK).wrapping_add(e.addend) == host_page {
                e.write = f(e.write);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_plugin_api::TlbAccess;

    #[test]
    fn filled_pages_hit_and_code_pages_refuse_stores() {
        let mut ram = vec![0u8; 8192];
        let host_page = (ram.as_mut_ptr() as u64 + 4095) & PAGE_MASK;
        let mut tlb = Tlb::default();
        let mut cpu = CpuState::default();
        tlb.attach(&mut cpu);
        let rw = Fill { read: true, write: true, exec: false, code: false };
        tlb.fill(MMU_S, 0x4000_1234, host_page, rw, false);
        let hit = cpu.tlb_lookup(MMU_S, TlbAccess::Write, 0x4000_1008, 8, false);
        assert_eq!(hit.map(|p| p as u64), Some(host_page + 8));
        assert!(cpu.tlb_lookup(MMU_U, TlbAccess::Read, 0x4000_1008, 8, false).is_none());
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Exec, 0x4000_1008, 4, false).is_none());

        tlb.protect_code(host_page);
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Write, 0x4000_1008, 8, false).is_none());
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Read, 0x4000_1008, 8, false).is_some());
        tlb.unprotect_code(host_page);
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Write, 0x4000_1008, 8, false).is_some());

        tlb.flush_page(0x4000_1fff);
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Read, 0x4000_1008, 8, false).is_none());
    }

    #[test]
    fn a_superpage_makes_a_page_flush_drop_everything() {
        let mut tlb = Tlb::default();
        let mut cpu = CpuState::default();
        tlb.attach(&mut cpu);
        let r = Fill { read: true, write: false, exec: false, code: false };
        tlb.fill(MMU_S, 0x4020_0000, 0x1000, r, true);
        tlb.fill(MMU_S, 0x4020_1000, 0x2000, r, true);
        tlb.flush_page(0x4020_0000);
        assert!(cpu.tlb_lookup(MMU_S, TlbAccess::Read, 0x4020_1000, 1, false).is_none());
    }

    #[test]
    fn the_context_word_carries_privilege_and_data_mode() {
        let f = tb_flags(1, MMU_S_SUM, 0);
        assert_eq!((f & 3, data_mmu(f), f & (TB_FP | TB_FP_DIRTY)), (1, MMU_S_SUM, 0));
        let fs = |fs| tb_flags(3, MMU_M, fs) & (TB_FP | TB_FP_DIRTY);
        assert_eq!((fs(1), fs(2), fs(3)), (TB_FP, TB_FP, TB_FP | TB_FP_DIRTY));
        assert_eq!((fetch_mmu(0), fetch_mmu(1), fetch_mmu(3)), (MMU_U, MMU_S, MMU_M));
    }
}
