//! The architectural state engines run on, owned by the host, and the software TLB every engine's
//! RAM fast path goes through.
//!
//! One `#[repr(C)]` struct holds everything an engine touches on its fast paths. Swapping engines is
//! handing the same `CpuState` to another engine, so an engine keeps no guest state of its own: it
//! writes back every value it cached before it returns or calls the host.
//!
//! # The TLB fast path
//! Engines never address guest RAM directly. For an access of `size` bytes at guest virtual address
//! `vaddr` in MMU mode `m` (given by the IR's `MemAccess::mmu`, or [`CpuState::fetch_mmu`] for code):
//!
//! ```text
//! e    = tlb[m].table + ((vaddr >> (PAGE_BITS - TLB_ENTRY_BITS)) & tlb[m].mask)   // byte offset
//! want = (vaddr + size - 1 - align_mask) & (PAGE_MASK | align_mask)
//! if e.read != want → slow path (HostCalls::load), else host address = vaddr + e.addend
//! ```
//!
//! `align_mask` is `size - 1` for accesses that must be aligned (`mem_flag::ALIGNED`), else 0; the
//! page compared is the page of the access's last byte, so a page-crossing access misses without a
//! separate test. Stores compare `write`, fetches `exec`. [`CpuState::tlb_lookup`] is this sequence
//! in Rust. The host fills entries in its slow paths; an entry whose tag has any
//! [`tlb_flag`] bit set never matches, so every access to it takes the slow path.

use abi_stable::StableAbi;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, Ordering};

/// Guest page size, as a shift.
pub const PAGE_BITS: u32 = 12;
/// Guest page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_BITS;
/// Mask of the page number part of an address.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// log2 of `size_of::<TlbEntry>()`: the index computation yields a byte offset directly.
pub const TLB_ENTRY_BITS: u32 = 5;
/// Number of MMU modes, each with its own TLB table. For RISC-V (the host's frontend chooses the
/// mode of each access at translation time): 0 = U, 1 = S, 2 = S with `SUM`, 3 = M or no paging.
pub const MMU_MODES: usize = 4;

/// Low bits of a TLB tag. They sit below the page size and above the alignment bits, so any of
/// them makes the fast-path comparison fail and the access goes to the host.
pub mod tlb_flag {
    /// The entry is empty. An empty entry's tags are all ones ([`TLB_EMPTY`](super::TLB_EMPTY)).
    pub const INVALID: u64 = 1 << 11;
    /// Write tag only: the page holds translated code, so a store must tell the host.
    pub const NOTDIRTY: u64 = 1 << 10;
    /// Anything else that needs the host on every access (device memory, a PMP region smaller
    /// than a page, a watchpoint).
    pub const SLOW: u64 = 1 << 9;
}

/// The tag value of an empty TLB entry: it matches no address.
pub const TLB_EMPTY: u64 = u64::MAX;

/// Which tag of a [`TlbEntry`] an access compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlbAccess {
    /// A load.
    Read,
    /// A store or an atomic read-modify-write.
    Write,
    /// An instruction fetch.
    Exec,
}

/// One page of one MMU mode (QEMU's `CPUTLBEntry` layout on 64-bit hosts). The host fills it;
/// only the thread that runs the owning hart writes it.
#[repr(C, align(32))]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbEntry {
    /// Guest virtual page address, with [`tlb_flag`] bits, for loads.
    pub read: u64,
    /// The same for stores and AMOs. Filled only for pages that are writable and dirty.
    pub write: u64,
    /// The same for instruction fetch.
    pub exec: u64,
    /// Host address = guest virtual address + `addend` (wrapping). A multiple of `PAGE_SIZE`, so a
    /// host address is as aligned as its guest address (engines do atomics in place).
    pub addend: u64,
}

impl TlbEntry {
    /// An entry that matches nothing.
    pub const EMPTY: TlbEntry = TlbEntry { read: TLB_EMPTY, write: TLB_EMPTY, exec: TLB_EMPTY, addend: 0 };
}

/// The TLB table of one MMU mode (QEMU's `CPUTLBDescFast`).
#[repr(C, align(16))]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbFast {
    /// `(entries - 1) << TLB_ENTRY_BITS`: masks a shifted address to the byte offset of its entry.
    pub mask: u64,
    /// The entries, owned by the host and outside `CpuState`. The host may replace the table (and
    /// `mask`) in any host call; engines reload both after one.
    pub table: *mut TlbEntry,
}

/// Bits of the attention word. Engines treat any non-zero value as "return
/// [`ExitReason::ExitRequested`](crate::ExitReason::ExitRequested) at the next block boundary";
/// only the host interprets and clears the bits, so new bits need no layout change.
pub mod attn {
    /// Stop, swap, or any other host request.
    pub const EXIT: u32 = 1 << 0;
    /// An enabled interrupt became takeable on this hart.
    pub const IRQ: u32 = 1 << 1;
    /// Code-page invalidations are queued for this hart's engine.
    pub const CODE: u32 = 1 << 2;
    /// Another thread asked for a flush of this hart's TLB.
    pub const TLB: u32 = 1 << 3;
    /// Virtual-to-physical mappings changed (`sfence.vma`, `satp`).
    pub const FLUSH_VIRT: u32 = 1 << 4;
}

/// The one-entry table every TLB points at until the host installs its own: it matches nothing.
static EMPTY_TABLE: TlbEntry = TlbEntry::EMPTY;
/// The attention word of a state the host has not attached to a hart: never set.
static NO_ATTENTION: AtomicU32 = AtomicU32::new(0);

impl TlbFast {
    /// A table that matches nothing (every access takes the slow path).
    pub fn empty() -> TlbFast {
        // The static is never written: hosts write only tables they own.
        TlbFast { mask: 0, table: (&raw const EMPTY_TABLE).cast_mut() }
    }
}

/// Guest CPU state shared between the host and the running engine.
///
/// The architectural part (`pc`, `x`, `f`, `instret`, `privilege`, `resv_*`, `fcsr`) is what two
/// engines must agree on; `PartialEq` compares only that part. The rest is the host's wiring: the
/// translation context, the attention word and the TLB.
#[repr(C, align(64))]
#[derive(StableAbi)]
pub struct CpuState {
    /// Program counter of the next instruction to execute (guest virtual).
    pub pc: u64,
    /// Integer registers, IR `Reg(0..32)`. Entry 0 is always 0; the frontend never writes it.
    pub x: [u64; 32],
    /// Floating-point registers as raw bits (single precision NaN-boxed), IR `Reg(32..64)`.
    /// Directly follows `x`, so `Reg(i)` is word `i` from `x`.
    pub f: [u64; 32],
    /// Guest instructions retired since reset.
    pub instret: u64,
    /// The host's translation context: with the virtual and physical pc, the key of every
    /// translation. Engines compare it, never interpret it. Changed only by host calls that answer
    /// `Redirect`.
    pub tb_flags: u32,
    /// Current privilege level, in the guest ISA's encoding.
    pub privilege: u8,
    /// The TLB mode instruction fetch uses.
    pub fetch_mmu: u8,
    /// Zero.
    pub _pad: [u8; 2],
    /// This hart's id.
    pub hart_id: u64,
    /// Guest virtual address of the LR reservation, [`NO_RESERVATION`] if none. The host clears it
    /// on every trap.
    pub resv_addr: u64,
    /// The value the LR read; SC succeeds only if memory still holds it.
    pub resv_value: u64,
    /// Floating-point control and status: `frm << 5 | fflags`. FP helpers OR into `fflags`.
    pub fcsr: u64,
    /// The hart's attention word (see [`attn`]), written by any thread: a pointer, because the
    /// engine holds `&mut CpuState` while others write it.
    pub attention: *const AtomicU32,
    /// One TLB table per MMU mode.
    pub tlb: [TlbFast; MMU_MODES],
}

/// `resv_addr` when no reservation is held.
pub const NO_RESERVATION: u64 = u64::MAX;

const _: () = assert!(offset_of!(CpuState, f) == offset_of!(CpuState, x) + 32 * 8);
const _: () = assert!(size_of::<TlbEntry>() == 1 << TLB_ENTRY_BITS);

// SAFETY: the pointers are to host-owned data that outlives the state (`attention` is an atomic;
// the TLB tables are written only by the thread running the hart, which is the one holding the
// state), so moving the state to that thread is sound.
unsafe impl Send for CpuState {}

impl Default for CpuState {
    fn default() -> Self {
        CpuState {
            pc: 0,
            x: [0; 32],
            f: [0; 32],
            instret: 0,
            tb_flags: 0,
            privilege: 0,
            fetch_mmu: 0,
            _pad: [0; 2],
            hart_id: 0,
            resv_addr: NO_RESERVATION,
            resv_value: 0,
            fcsr: 0,
            attention: &raw const NO_ATTENTION,
            tlb: [TlbFast::empty(); MMU_MODES],
        }
    }
}

impl Clone for CpuState {
    /// Copies everything, including the wiring: the clone shares the attention word and TLB tables.
    fn clone(&self) -> Self {
        CpuState { x: self.x, f: self.f, tlb: self.tlb, _pad: self._pad, ..*self }
    }
}

impl PartialEq for CpuState {
    /// Architectural state only (what lockstep compares), never the TLB or the wiring.
    fn eq(&self, o: &Self) -> bool {
        self.pc == o.pc
            && self.x == o.x
            && self.f == o.f
            && self.instret == o.instret
            && self.privilege == o.privilege
            && self.resv_addr == o.resv_addr
            && self.resv_value == o.resv_value
            && self.fcsr == o.fcsr
    }
}

impl Eq for CpuState {}

impl std::fmt::Debug for CpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuState")
            .field("pc", &format_args!("{:#x}", self.pc))
            .field("x", &self.x)
            .field("f", &self.f)
            .field("instret", &self.instret)
            .field("privilege", &self.privilege)
            .field("tb_flags", &format_args!("{:#x}", self.tb_flags))
            .field("hart_id", &self.hart_id)
            .field("resv_addr", &format_args!("{:#x}", self.resv_addr))
            .field("fcsr", &format_args!("{:#x}", self.fcsr))
            .finish_non_exhaustive()
    }
}

impl CpuState {
    /// Reads register `index` in the IR's numbering (0..32 integer, 32..64 FP; others give 0).
    pub fn get_register(&self, index: usize) -> u64 {
        match index {
            0..32 => self.x[index],
            32..64 => self.f[index - 32],
            _ => 0,
        }
    }
    /// Writes register `index` in the IR's numbering; writes to `x0` or out of range are ignored.
    pub fn set_register(&mut self, index: usize, value: u64) {
        match index {
            1..32 => self.x[index] = value,
            32..64 => self.f[index - 32] = value,
            _ => {}
        }
    }
    /// The program counter.
    pub fn get_pc(&self) -> u64 {
        self.pc
    }
    /// Sets the program counter.
    pub fn set_pc(&mut self, pc: u64) {
        self.pc = pc;
    }
    /// The 64 IR registers (`x` then `f`) as one array.
    #[inline(always)]
    pub fn regs(&self) -> &[u64; 64] {
        // SAFETY: `f` directly follows `x` (asserted above) and both are arrays of u64, so the 64
        // words from `x` are initialised and inside `self`.
        unsafe { &*(&raw const self.x).cast::<[u64; 64]>() }
    }
    /// The 64 IR registers, mutably.
    #[inline(always)]
    pub fn regs_mut(&mut self) -> &mut [u64; 64] {
        // SAFETY: as in `regs`.
        unsafe { &mut *(&raw mut self.x).cast::<[u64; 64]>() }
    }
    /// Whether the attention word is non-zero: the engine must return at the next block boundary.
    #[inline(always)]
    pub fn attention(&self) -> bool {
        // SAFETY: the host keeps the word alive for as long as the state refers to it.
        unsafe { (*self.attention).load(Ordering::Relaxed) != 0 }
    }

    /// The TLB fast path (see the module docs): the host address of a `size`-byte access at `vaddr`
    /// in MMU mode `mmu`, or `None` when the access must go to the host. `aligned` makes a
    /// misaligned access miss. `size` must be 1, 2, 4 or 8 and `mmu < MMU_MODES`.
    #[inline(always)]
    pub fn tlb_lookup(
        &self,
        mmu: u8,
        kind: TlbAccess,
        vaddr: u64,
        size: u8,
        aligned: bool,
    ) -> Option<*mut u8> {
        let t = self.tlb[mmu as usize & (MMU_MODES - 1)];
        let offset = (vaddr >> (PAGE_BITS - TLB_ENTRY_BITS)) & t.mask;
        // SAFETY: the host guarantees `table` has `mask / 32 + 1` entries, and `offset` is masked.
        let e = unsafe { &*t.table.byte_add(offset as usize) };
        let tag = match kind {
            TlbAccess::Read => e.read,
            TlbAccess::Write => e.write,
            TlbAccess::Exec => e.exec,
        };
        let align_mask = if aligned { size as u64 - 1 } else { 0 };
        let want = vaddr.wrapping_add(size as u64 - 1 - align_mask) & (PAGE_MASK | align_mask);
        (tag == want).then(|| vaddr.wrapping_add(e.addend) as *mut u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_hits_only_whole_aligned_accesses_in_a_filled_page() {
        let mut page = vec![0u8; PAGE_SIZE as usize];
        let mut table = vec![TlbEntry::EMPTY; 4];
        let vpage = 0x4000_3000u64;
        let index = ((vpage >> PAGE_BITS) & 3) as usize;
        let addend = (page.as_mut_ptr() as u64).wrapping_sub(vpage);
        table[index] = TlbEntry { read: vpage, write: vpage | tlb_flag::NOTDIRTY, exec: TLB_EMPTY, addend };
        let mut cpu = CpuState::default();
        cpu.tlb[1] = TlbFast { mask: 3 << TLB_ENTRY_BITS, table: table.as_mut_ptr() };
        let host = cpu.tlb_lookup(1, TlbAccess::Read, vpage + 8, 8, true).unwrap();
        assert_eq!(host as usize, page.as_ptr() as usize + 8);
        assert!(cpu.tlb_lookup(1, TlbAccess::Read, vpage + 0xffd, 4, false).is_none(), "crosses the page");
        assert!(cpu.tlb_lookup(1, TlbAccess::Read, vpage + 0xffc, 4, false).is_some());
        assert!(cpu.tlb_lookup(1, TlbAccess::Read, vpage + 2, 4, false).is_some(), "misaligned allowed");
        assert!(cpu.tlb_lookup(1, TlbAccess::Read, vpage + 2, 4, true).is_none(), "misaligned refused");
        assert!(cpu.tlb_lookup(1, TlbAccess::Write, vpage, 4, false).is_none(), "NOTDIRTY");
        assert!(cpu.tlb_lookup(1, TlbAccess::Exec, vpage, 4, false).is_none(), "empty tag");
        assert!(cpu.tlb_lookup(0, TlbAccess::Read, vpage, 4, false).is_none(), "other mode");
        assert!(CpuState::default().tlb_lookup(3, TlbAccess::Read, 0, 1, false).is_none());
        assert!(!CpuState::default().attention());
    }

    #[test]
    fn ir_register_numbering_covers_x_then_f() {
        let mut cpu = CpuState::default();
        cpu.set_register(0, 5);
        cpu.set_register(3, 7);
        cpu.set_register(33, 9);
        assert_eq!((cpu.x[0], cpu.x[3], cpu.f[1]), (0, 7, 9));
        assert_eq!((cpu.regs()[3], cpu.regs()[33]), (7, 9));
        assert_eq!(cpu.get_register(64), 0);
        let mut other = cpu.clone();
        assert_eq!(other, cpu);
        other.tlb[0].mask = 99;
        assert_eq!(other, cpu, "the TLB is not architectural state");
    }
}
