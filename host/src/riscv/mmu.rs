//! Sv39/Sv48 address translation: `satp` decoding and WARL, and the page-table walk of the
//! privileged spec 1.12 ("Virtual Address Translation Process"), with hardware A/D updates.
//!
//! Pure and host-internal: the walk reads and updates PTEs only through [`PteMemory`], so it runs
//! on guest RAM and fails cleanly (access fault) for page tables at MMIO or outside RAM.
//!
//! The TLB fill (plugin-api 0.2) calls [`translate`] on a miss and caches one 4 KiB page per
//! entry, even for a superpage: guest virtual page `vaddr & !0xfff` maps to `paddr & !0xfff`, with
//! the `read`/`exec` tags from [`Translation::allowed`] and the `write` tag only when
//! [`Translation::cache_write`] says so (PTE.D set), so the first store to a clean page walks
//! again and sets D. MXR is not part of the TLB mode (U, S, S+SUM, M), so changing it must flush.

/// `satp.MODE` (bits 63:60) values for RV64.
const SATP_MODE_SHIFT: u32 = 60;
const SATP_MODE_BARE: u64 = 0;
const SATP_MODE_SV39: u64 = 8;
const SATP_MODE_SV48: u64 = 9;
/// `satp.ASID` sits in bits 59:44.
const SATP_ASID_SHIFT: u32 = 44;
/// Implemented ASID bits (ASIDLEN): the maximum for Sv39/Sv48, as QEMU implements. `sfence.vma`
/// ignores `rs2` bits above it.
pub const ASIDLEN: u32 = 16;
/// `satp.PPN` is bits 43:0.
const SATP_PPN_MASK: u64 = (1 << 44) - 1;

const PAGE_BITS: u32 = 12;
const PTE_SIZE: u64 = 8;
/// Each level translates 9 bits of VPN (512 eight-byte PTEs per 4 KiB table).
const LEVEL_BITS: u32 = 9;
/// A/D update attempts before giving up with a page fault (see [`translate`]).
const MAX_AD_RETRIES: u32 = 16;

/// PTE bits.
pub mod pte {
    /// Valid.
    pub const V: u64 = 1 << 0;
    /// Readable.
    pub const R: u64 = 1 << 1;
    /// Writable.
    pub const W: u64 = 1 << 2;
    /// Executable.
    pub const X: u64 = 1 << 3;
    /// Accessible to U-mode.
    pub const U: u64 = 1 << 4;
    /// Global mapping.
    pub const G: u64 = 1 << 5;
    /// Accessed.
    pub const A: u64 = 1 << 6;
    /// Dirty.
    pub const D: u64 = 1 << 7;
    /// PPN, bits 53:10.
    pub const PPN_SHIFT: u32 = 10;
    /// Width of the PPN field.
    pub const PPN_MASK: u64 = (1 << 44) - 1;
    /// Bits 63:54: N (63, Svnapot) and PBMT (62:61, Svpbmt) are not implemented, and 60:54 are
    /// reserved, so all ten are reserved here: any of them set is a page fault.
    pub const RESERVED: u64 = !((1 << 54) - 1);
}

/// A translation scheme `satp` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No translation.
    Bare,
    /// Three levels, 39-bit virtual addresses.
    Sv39,
    /// Four levels, 48-bit virtual addresses.
    Sv48,
}

impl Mode {
    /// The mode a `satp.MODE` value selects, or `None` when this machine does not implement it
    /// (Sv57, Sv64, reserved and custom values).
    pub fn from_field(field: u64) -> Option<Mode> {
        match field {
            SATP_MODE_BARE => Some(Mode::Bare),
            SATP_MODE_SV39 => Some(Mode::Sv39),
            SATP_MODE_SV48 => Some(Mode::Sv48),
            _ => None,
        }
    }

    /// Page-table levels (0 for Bare).
    pub fn levels(self) -> u32 {
        match self {
            Mode::Bare => 0,
            Mode::Sv39 => 3,
            Mode::Sv48 => 4,
        }
    }

    /// Width of a virtual address (64 for Bare: no canonical check).
    pub fn va_bits(self) -> u32 {
        match self {
            Mode::Bare => 64,
            Mode::Sv39 => 39,
            Mode::Sv48 => 48,
        }
    }
}

/// The fields of a `satp` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Satp {
    /// Translation scheme.
    pub mode: Mode,
    /// Address-space identifier.
    pub asid: u16,
    /// Physical page number of the root page table.
    pub ppn: u64,
}

impl Satp {
    /// Splits a `satp` value; `None` if its mode is not implemented (values stored through
    /// [`satp_write`] never are).
    pub fn decode(raw: u64) -> Option<Satp> {
        Some(Satp {
            mode: Mode::from_field(raw >> SATP_MODE_SHIFT)?,
            asid: (raw >> SATP_ASID_SHIFT) as u16,
            ppn: raw & SATP_PPN_MASK,
        })
    }
}

/// The value `satp` holds after software writes `new` to it when it held `old`.
///
/// The spec: "if `satp` is written with an unsupported MODE, the entire write has no effect".
/// That is what Linux relies on when it probes Sv57, then Sv48, then Sv39 and reads `satp` back:
/// Sv57 does not stick and Sv48 does. A supported write keeps every field as written, as QEMU
/// does: all [`ASIDLEN`] = 16 ASID bits and all 44 PPN bits are writable, so together with MODE
/// they cover the register. For Bare with non-zero other fields the effect is UNSPECIFIED; keeping
/// them is harmless since Bare translation ignores them.
pub fn satp_write(old: u64, new: u64) -> u64 {
    if Mode::from_field(new >> SATP_MODE_SHIFT).is_some() { new } else { old }
}

/// What the access does, which decides the permission needed and the fault raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Instruction fetch.
    Fetch,
    /// Load, including LR.
    Load,
    /// Store, SC and AMO (AMOs never raise load faults).
    Store,
}

/// The privilege the access is translated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// U-mode: only U=1 pages.
    User,
    /// S-mode: U=1 pages only for loads and stores with SUM, never for fetch.
    Supervisor,
    /// M-mode: no translation.
    Machine,
}

/// The effective privilege of an access (the caller resolves MPRV with this before [`translate`]).
///
/// `current` and `mpp` use the ISA encodings (0 = U, 1 = S, 3 = M). With `mstatus.MPRV` set, loads
/// and stores made in M-mode are translated and protected as though the privilege were MPP;
/// instruction fetch is never affected. MPRV has no effect below M.
pub fn effective_privilege(current: u8, mprv: bool, mpp: u8, access: Access) -> Privilege {
    let level = if current == 3 && mprv && access != Access::Fetch { mpp } else { current };
    match level {
        0 => Privilege::User,
        1 => Privilege::Supervisor,
        _ => Privilege::Machine,
    }
}

/// Guest physical memory as the walker sees it: PTE reads and atomic A/D updates.
///
/// Implementations answer `None` for anything that is not RAM the walk may use (MMIO, holes, a
/// PMP denial of the implicit S-mode access, read-only memory for `cas_pte`): the walk then
/// raises an access fault. Addresses are 8-byte aligned.
pub trait PteMemory {
    /// The 64-bit little-endian word at `paddr`.
    fn read_pte(&self, paddr: u64) -> Option<u64>;
    /// Atomically: if the word at `paddr` equals `current`, replace it with `new` and answer
    /// `Ok(current)`; otherwise leave it and answer `Err(actual value)`.
    fn cas_pte(&self, paddr: u64, current: u64, new: u64) -> Option<Result<u64, u64>>;
}

/// One translation request.
pub struct Walk<'m, M: PteMemory + ?Sized> {
    /// The current `satp` value.
    pub satp: u64,
    /// What the access does.
    pub access: Access,
    /// Effective privilege (MPRV already applied, see [`effective_privilege`]).
    pub privilege: Privilege,
    /// `mstatus.SUM`.
    pub sum: bool,
    /// `mstatus.MXR`.
    pub mxr: bool,
    /// Where the page tables live.
    pub mem: &'m M,
}

/// The size of the mapping a translation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB page (also reported for Bare and M-mode).
    Size4K,
    /// 2 MiB megapage.
    Size2M,
    /// 1 GiB gigapage.
    Size1G,
    /// 512 GiB terapage (Sv48 only).
    Size512G,
}

impl PageSize {
    fn at_level(level: u32) -> PageSize {
        match level {
            0 => PageSize::Size4K,
            1 => PageSize::Size2M,
            2 => PageSize::Size1G,
            _ => PageSize::Size512G,
        }
    }

    /// Size in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
            PageSize::Size512G => 1 << 39,
        }
    }
}

/// Read/write/execute rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    /// Loads.
    pub read: bool,
    /// Stores and AMOs.
    pub write: bool,
    /// Instruction fetch.
    pub exec: bool,
}

/// A successful translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of `vaddr`.
    pub paddr: u64,
    /// Size of the leaf mapping.
    pub page_size: PageSize,
    /// The leaf PTE as memory holds it after the A/D update (R/W/X/U/G/A/D). 0 for Bare and M.
    pub pte: u64,
    /// What this privilege, SUM and MXR may do on the page (MXR folded into `read`). Bare and M
    /// allow everything (PMP is checked elsewhere).
    pub allowed: Perms,
    /// PTE.D after the walk (true for Bare and M).
    pub dirty: bool,
    /// The mapping is global (G set in the leaf or any PTE above it): not tied to `satp.ASID`.
    pub global: bool,
}

impl Translation {
    /// Whether a TLB may cache the write permission: only for a dirty page, so that the first store
    /// to a clean page misses and the walk sets D.
    pub fn cache_write(&self) -> bool {
        self.allowed.write && self.dirty
    }

    /// What no translation gives: the same address, everything allowed (PMP aside).
    pub fn identity(vaddr: u64) -> Translation {
        Translation {
            paddr: vaddr,
            page_size: PageSize::Size4K,
            pte: 0,
            allowed: Perms { read: true, write: true, exec: true },
            dirty: true,
            global: true,
        }
    }
}

/// Page fault or access fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The translation failed (causes 12, 13, 15).
    Page,
    /// A PTE access hit memory that is not usable RAM (causes 1, 5, 7).
    Access,
}

/// A failed translation: the exception to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Page or access fault.
    pub kind: FaultKind,
    /// The access that faulted (selects the cause).
    pub access: Access,
    /// The faulting virtual address, for `stval`/`mtval`.
    pub tval: u64,
}

impl Fault {
    /// The exception code for `scause`/`mcause`.
    pub fn cause(&self) -> u64 {
        match (self.kind, self.access) {
            (FaultKind::Access, Access::Fetch) => 1,
            (FaultKind::Access, Access::Load) => 5,
            (FaultKind::Access, Access::Store) => 7,
            (FaultKind::Page, Access::Fetch) => 12,
            (FaultKind::Page, Access::Load) => 13,
            (FaultKind::Page, Access::Store) => 15,
        }
    }
}

/// Translates `vaddr` as the spec's algorithm does; the step numbers below are the spec's.
///
/// A/D bits are updated by the walk ("hardware updates A/D", QEMU's default and what Linux
/// expects without Svade): A on every access, D on stores, with a compare-exchange so the update
/// is atomic against other harts. If the PTE changed in between, the walk re-reads it (step 7
/// "return to step 2"). After [`MAX_AD_RETRIES`] lost races the walk raises a page fault instead,
/// which the spec also allows for a clear A/D bit, so a hostile hart flipping a PTE cannot hang
/// this one. The PTE is updated only once the access is known to be allowed.
///
/// Deviation from QEMU: a PTE read or A/D update that hits non-RAM (MMIO, outside RAM, ROM) is an
/// access fault, as step 2 and step 7 say ("violates a PMA"); QEMU raises a page fault there.
pub fn translate<M: PteMemory + ?Sized>(walk: &Walk<'_, M>, vaddr: u64) -> Result<Translation, Fault> {
    let fault = |kind| Err(Fault { kind, access: walk.access, tval: vaddr });
    if walk.privilege == Privilege::Machine {
        return Ok(Translation::identity(vaddr));
    }
    // satp_write never stores an unsupported mode; fail closed if a caller passes one anyway.
    let Some(satp) = Satp::decode(walk.satp) else { return fault(FaultKind::Page) };
    if satp.mode == Mode::Bare {
        return Ok(Translation::identity(vaddr));
    }
    // Bits 63..VA_BITS must all equal bit VA_BITS-1.
    let unused = 64 - satp.mode.va_bits();
    if (((vaddr << unused) as i64) >> unused) as u64 != vaddr {
        return fault(FaultKind::Page);
    }

    // Step 1.
    let mut table = satp.ppn << PAGE_BITS;
    let mut level = satp.mode.levels() - 1;
    let mut global = false;
    let mut retries = 0;
    loop {
        // Step 2.
        let vpn = (vaddr >> (PAGE_BITS + LEVEL_BITS * level)) & ((1 << LEVEL_BITS) - 1);
        let pte_addr = table + vpn * PTE_SIZE;
        let Some(mut pte) = walk.mem.read_pte(pte_addr) else { return fault(FaultKind::Access) };

        // Step 3.
        if pte & pte::V == 0 || (pte & pte::R == 0 && pte & pte::W != 0) || pte & pte::RESERVED != 0 {
            return fault(FaultKind::Page);
        }
        let ppn = (pte >> pte::PPN_SHIFT) & pte::PPN_MASK;

        // Step 4: a pointer to the next level. D, A and U are reserved in non-leaf PTEs (step 3).
        if pte & (pte::R | pte::X) == 0 {
            if pte & (pte::D | pte::A | pte::U) != 0 || level == 0 {
                return fault(FaultKind::Page);
            }
            global |= pte & pte::G != 0;
            level -= 1;
            table = ppn << PAGE_BITS;
            continue;
        }

        // Step 5: a leaf. Rights by privilege and SUM, then R/W/X with MXR.
        let allowed = leaf_rights(pte, walk);
        let permitted = match walk.access {
            Access::Fetch => allowed.exec,
            Access::Load => allowed.read,
            Access::Store => allowed.write,
        };
        if !permitted {
            return fault(FaultKind::Page);
        }

        // Step 6: a superpage's PPN must be aligned to its size.
        if ppn & ((1 << (LEVEL_BITS * level)) - 1) != 0 {
            return fault(FaultKind::Page);
        }

        // Step 7: set A, and D on a store, atomically against the PTE as read.
        let updated = pte | pte::A | if walk.access == Access::Store { pte::D } else { 0 };
        if updated != pte {
            match walk.mem.cas_pte(pte_addr, pte, updated) {
                None => return fault(FaultKind::Access),
                Some(Err(_)) if retries < MAX_AD_RETRIES => {
                    retries += 1;
                    continue; // back to step 2 at the same level
                }
                Some(Err(_)) => return fault(FaultKind::Page),
                Some(Ok(_)) => pte = updated,
            }
        }

        // Step 8: the low bits of a superpage come from the virtual address.
        let page_size = PageSize::at_level(level);
        let offset_mask = page_size.bytes() - 1;
        return Ok(Translation {
            paddr: (ppn << PAGE_BITS) | (vaddr & offset_mask),
            page_size,
            pte,
            allowed,
            dirty: pte & pte::D != 0,
            global: global || pte & pte::G != 0,
        });
    }
}

/// What the walk's privilege, SUM and MXR may do on a page with this leaf PTE.
fn leaf_rights<M: PteMemory + ?Sized>(pte: u64, walk: &Walk<'_, M>) -> Perms {
    let user_page = pte & pte::U != 0;
    let (data_ok, exec_ok) = match walk.privilege {
        Privilege::User => (user_page, user_page),
        // S may read/write U pages only with SUM, and may never execute them.
        Privilege::Supervisor => (!user_page || walk.sum, !user_page),
        Privilege::Machine => (true, true),
    };
    let (r, w, x) = (pte & pte::R != 0, pte & pte::W != 0, pte & pte::X != 0);
    Perms { read: data_ok && (r || (walk.mxr && x)), write: data_ok && w, exec: exec_ok && x }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    const RAM_BASE: u64 = 0x8000_0000;
    const RAM_PAGES: u64 = 64;
    const RWX: u64 = pte::R | pte::W | pte::X;
    /// A leaf that needs no A/D update.
    const AD: u64 = pte::A | pte::D;

    /// A concurrent PTE change the fake hardware applies right before a CAS, as another hart would.
    type Race = Box<dyn Fn(u64) -> u64>;

    /// Vec<u64>-backed RAM at RAM_BASE; everything else is "not RAM".
    struct FakeRam {
        words: RefCell<Vec<u64>>,
        /// The next this many CAS calls first apply `race` to the stored word.
        races: Cell<u32>,
        race: Race,
        /// CAS answers None (read-only memory holding page tables).
        read_only: bool,
        cas_calls: Cell<u32>,
        next_free: Cell<u64>,
    }

    impl FakeRam {
        fn new() -> FakeRam {
            FakeRam {
                words: RefCell::new(vec![0; (RAM_PAGES * 512) as usize]),
                races: Cell::new(0),
                race: Box::new(|v| v),
                read_only: false,
                cas_calls: Cell::new(0),
                next_free: Cell::new(RAM_BASE),
            }
        }

        fn index(&self, paddr: u64) -> Option<usize> {
            let off = paddr.checked_sub(RAM_BASE)?;
            (off < RAM_PAGES << 12 && off % 8 == 0).then_some((off / 8) as usize)
        }

        fn get(&self, paddr: u64) -> u64 {
            self.words.borrow()[self.index(paddr).unwrap()]
        }

        fn set(&self, paddr: u64, value: u64) {
            let i = self.index(paddr).unwrap();
            self.words.borrow_mut()[i] = value;
        }

        /// A fresh zeroed page-table page.
        fn table(&self) -> u64 {
            let page = self.next_free.get();
            self.next_free.set(page + 4096);
            page
        }
    }

    impl PteMemory for FakeRam {
        fn read_pte(&self, paddr: u64) -> Option<u64> {
            self.index(paddr).map(|i| self.words.borrow()[i])
        }

        fn cas_pte(&self, paddr: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
            self.cas_calls.set(self.cas_calls.get() + 1);
            let i = self.index(paddr)?;
            if self.read_only {
                return None;
            }
            let mut words = self.words.borrow_mut();
            if self.races.get() > 0 {
                self.races.set(self.races.get() - 1);
                words[i] = (self.race)(words[i]);
            }
            if words[i] == current {
                words[i] = new;
                Some(Ok(current))
            } else {
                Some(Err(words[i]))
            }
        }
    }

    fn pointer(table: u64) -> u64 {
        (table >> 12) << pte::PPN_SHIFT | pte::V
    }

    fn leaf(pa: u64, flags: u64) -> u64 {
        (pa >> 12) << pte::PPN_SHIFT | pte::V | flags
    }

    fn vpn(va: u64, level: u32) -> u64 {
        (va >> (12 + 9 * level)) & 0x1ff
    }

    /// Page tables for one mode rooted in `ram`.
    struct Space<'r> {
        ram: &'r FakeRam,
        mode: Mode,
        root: u64,
    }

    impl<'r> Space<'r> {
        fn new(ram: &'r FakeRam, mode: Mode) -> Space<'r> {
            Space { ram, mode, root: ram.table() }
        }

        fn satp(&self) -> u64 {
            let field = if self.mode == Mode::Sv39 { SATP_MODE_SV39 } else { SATP_MODE_SV48 };
            field << 60 | (self.root >> 12)
        }

        /// Address of the PTE for `va` at `level`, creating pointer tables above it.
        fn slot(&self, va: u64, level: u32) -> u64 {
            let mut table = self.root;
            for l in (level + 1..self.mode.levels()).rev() {
                let addr = table + vpn(va, l) * 8;
                let entry = self.ram.get(addr);
                table = if entry & pte::V != 0 {
                    ((entry >> pte::PPN_SHIFT) & pte::PPN_MASK) << 12
                } else {
                    let t = self.ram.table();
                    self.ram.set(addr, pointer(t));
                    t
                };
            }
            table + vpn(va, level) * 8
        }

        /// Stores `entry` as the PTE for `va` at `level`; returns its address.
        fn put(&self, va: u64, level: u32, entry: u64) -> u64 {
            let addr = self.slot(va, level);
            self.ram.set(addr, entry);
            addr
        }

        fn walk(&self, access: Access, privilege: Privilege) -> Walk<'r, FakeRam> {
            Walk { satp: self.satp(), access, privilege, sum: false, mxr: false, mem: self.ram }
        }

        fn go(&self, access: Access, privilege: Privilege, va: u64) -> Result<Translation, Fault> {
            translate(&self.walk(access, privilege), va)
        }

        fn s_load(&self, va: u64) -> Result<Translation, Fault> {
            self.go(Access::Load, Privilege::Supervisor, va)
        }
    }

    const ALL_ACCESSES: [Access; 3] = [Access::Fetch, Access::Load, Access::Store];

    fn page_fault(access: Access, tval: u64) -> Result<Translation, Fault> {
        Err(Fault { kind: FaultKind::Page, access, tval })
    }

    fn access_fault(access: Access, tval: u64) -> Result<Translation, Fault> {
        Err(Fault { kind: FaultKind::Access, access, tval })
    }

    /// Maps one page of every size the mode has and checks address, size and offset bits.
    fn check_sizes(mode: Mode) {
        let ram = FakeRam::new();
        let s = Space::new(&ram, mode);
        let top = mode.levels() - 1;
        for level in 0..=top {
            let size = PageSize::at_level(level).bytes();
            // Distinct VPN indexes at every level, so a wrong index picks an empty PTE.
            let va_base: u64 = (level..=top).map(|l| (1 + l as u64 + 3 * level as u64) << (12 + 9 * l)).sum();
            let pa_base = (level as u64 + 1) << 40; // aligned for every page size
            s.put(va_base, level, leaf(pa_base, RWX | AD));
            let offset = (size - 1) & 0x1234_5678_9abc;
            let t = s.s_load(va_base + offset).unwrap();
            assert_eq!(t.paddr, pa_base + offset, "{mode:?} level {level}");
            assert_eq!(t.page_size, PageSize::at_level(level));
            assert_eq!(t.allowed, Perms { read: true, write: true, exec: true });
            assert!(t.cache_write());
            // The last byte of the page still maps into it.
            assert_eq!(s.s_load(va_base + size - 1).unwrap().paddr, pa_base + size - 1);
        }
    }

    #[test]
    fn sv39_maps_4k_2m_1g_pages() {
        check_sizes(Mode::Sv39);
    }

    #[test]
    fn sv48_maps_4k_2m_1g_512g_pages() {
        check_sizes(Mode::Sv48);
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv48);
        s.put(0x0000_0080_0000_0000, 3, leaf(0x100_0000_0000, pte::R | pte::A));
        let t = s.s_load(0x0000_00ff_ffff_fff8).unwrap();
        assert_eq!((t.paddr, t.page_size), (0x17f_ffff_fff8, PageSize::Size512G));
    }

    #[test]
    fn high_half_addresses_translate() {
        let ram = FakeRam::new();
        let s39 = Space::new(&ram, Mode::Sv39);
        s39.put(0xffff_ffc0_8000_0000, 0, leaf(0x8020_0000, pte::R | AD));
        assert_eq!(s39.s_load(0xffff_ffc0_8000_0010).unwrap().paddr, 0x8020_0010);
        let s48 = Space::new(&ram, Mode::Sv48);
        s48.put(0xffff_8000_0000_0000, 0, leaf(0x8030_0000, pte::R | AD));
        assert_eq!(s48.s_load(0xffff_8000_0000_0020).unwrap().paddr, 0x8030_0020);
    }

    #[test]
    fn bare_and_machine_mode_are_identity_without_touching_memory() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39); // empty tables: any walk would fault
        for access in ALL_ACCESSES {
            let m = translate(&s.walk(access, Privilege::Machine), 0x1234_5678_9abc_def0).unwrap();
            assert_eq!(m, Translation::identity(0x1234_5678_9abc_def0));
            let bare = Walk { satp: 0, ..s.walk(access, Privilege::User) };
            assert_eq!(translate(&bare, 0xdead_beef).unwrap().paddr, 0xdead_beef);
        }
        assert_eq!(ram.cas_calls.get(), 0);
    }

    #[test]
    fn unsupported_satp_mode_fails_closed() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let w = Walk { satp: 10 << 60, ..s.walk(Access::Load, Privilege::Supervisor) };
        assert_eq!(translate(&w, 0x1000), page_fault(Access::Load, 0x1000));
    }

    #[test]
    fn non_canonical_addresses_page_fault() {
        let ram = FakeRam::new();
        for (mode, bits) in [(Mode::Sv39, 39), (Mode::Sv48, 48)] {
            let s = Space::new(&ram, mode);
            // Map the lowest and highest canonical pages, so only canonicity can fail.
            let low = 0u64;
            let high = u64::MAX << 12;
            s.put(low, 0, leaf(0x8000_0000, RWX | AD));
            s.put(high, 0, leaf(0x8000_1000, RWX | AD));
            assert!(s.s_load(low).is_ok() && s.s_load(high).is_ok(), "{mode:?}");
            let bad = [
                1u64 << bits,            // a bit above the top set, top bit clear
                (1 << bits) | (1 << 63), //
                !(1u64 << (bits - 1)),   // top bit clear, upper bits set
                (u64::MAX << bits) >> 1, // bit 63 clear, others above set
                1 << (bits - 1),         // top bit set, upper bits clear
                (1 << (bits - 1)) | (1 << 63),
            ];
            for va in bad {
                for access in ALL_ACCESSES {
                    assert_eq!(
                        s.go(access, Privilege::Supervisor, va),
                        page_fault(access, va),
                        "{mode:?} {va:#x}"
                    );
                    assert_eq!(s.go(access, Privilege::User, va), page_fault(access, va));
                }
            }
        }
    }

    #[test]
    fn invalid_pte_page_faults_at_every_level() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv48);
        let va = 0x0000_1234_5678_9000;
        for level in (0..4).rev() {
            // Everything present except V at this level.
            let addr =
                s.put(va, level, if level == 0 { leaf(0x8000_0000, RWX | AD) } else { pointer(ram.table()) });
            let good = ram.get(addr);
            ram.set(addr, good & !pte::V);
            for access in ALL_ACCESSES {
                assert_eq!(s.go(access, Privilege::Supervisor, va), page_fault(access, va), "level {level}");
            }
            ram.set(addr, good);
        }
        assert!(s.s_load(va).is_ok());
    }

    #[test]
    fn write_without_read_is_reserved() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        for (level, va) in [(0, 0x4000), (1, 0x40_0000), (2, 0x4000_0000)] {
            for flags in [pte::W, pte::W | pte::X] {
                s.put(va, level, leaf(0x1_0000_0000, flags | AD | pte::U));
                for access in ALL_ACCESSES {
                    for p in [Privilege::Supervisor, Privilege::User] {
                        assert_eq!(
                            s.go(access, p, va),
                            page_fault(access, va),
                            "level {level} flags {flags:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn reserved_bits_63_to_54_page_fault_in_leaf_and_pointer() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let va = 0x1_2345_6000;
        let leaf_addr = s.put(va, 0, leaf(0x8000_0000, RWX | AD));
        let ptr_addr = s.slot(va, 1);
        for bit in 54..64 {
            for addr in [leaf_addr, ptr_addr] {
                let good = ram.get(addr);
                ram.set(addr, good | 1 << bit);
                for access in ALL_ACCESSES {
                    assert_eq!(s.go(access, Privilege::Supervisor, va), page_fault(access, va), "bit {bit}");
                }
                ram.set(addr, good);
            }
        }
        assert!(s.s_load(va).is_ok());
    }

    #[test]
    fn pointer_with_d_a_or_u_page_faults() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let va = 0x7654_3000;
        s.put(va, 0, leaf(0x8000_0000, RWX | AD | pte::U));
        let ptr = s.slot(va, 1);
        for bit in [pte::D, pte::A, pte::U] {
            let good = ram.get(ptr);
            ram.set(ptr, good | bit);
            assert_eq!(s.go(Access::Load, Privilege::User, va), page_fault(Access::Load, va), "{bit:#x}");
            ram.set(ptr, good);
        }
        // G and the RSW bits are allowed in a pointer.
        ram.set(ptr, ram.get(ptr) | pte::G | 3 << 8);
        assert!(s.go(Access::Load, Privilege::User, va).unwrap().global);
    }

    #[test]
    fn pointer_at_last_level_page_faults() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let va = 0x5000;
        s.put(va, 0, pointer(ram.table()));
        for access in ALL_ACCESSES {
            assert_eq!(s.go(access, Privilege::Supervisor, va), page_fault(access, va));
        }
    }

    #[test]
    fn self_referencing_tables_end_in_a_page_fault() {
        let ram = FakeRam::new();
        for mode in [Mode::Sv39, Mode::Sv48] {
            let s = Space::new(&ram, mode);
            // Every entry of the root points back at the root.
            for i in 0..512 {
                ram.set(s.root + i * 8, pointer(s.root));
            }
            for va in [0, 0x1234_5000, u64::MAX << 12] {
                assert_eq!(s.s_load(va), page_fault(Access::Load, va), "{mode:?}");
            }
        }
    }

    #[test]
    fn misaligned_superpages_page_fault() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv48);
        // level, a PA misaligned for that level by one 4 KiB page and by one page of the level below.
        for level in 1..4u32 {
            let va = (level as u64) << 39 | (level as u64) << 30;
            let size = PageSize::at_level(level).bytes();
            let aligned = 4 * size;
            let mut misaligned = vec![aligned + 0x1000];
            if level > 1 {
                misaligned.push(aligned + PageSize::at_level(level - 1).bytes());
            }
            for pa in misaligned {
                let addr = s.put(va, level, leaf(pa, pte::R | pte::W)); // A/D clear: must stay so
                let before = ram.get(addr);
                for access in [Access::Load, Access::Store] {
                    assert_eq!(
                        s.go(access, Privilege::Supervisor, va),
                        page_fault(access, va),
                        "level {level} pa {pa:#x}"
                    );
                }
                assert_eq!(ram.get(addr), before);
            }
            s.put(va, level, leaf(aligned, pte::R | AD));
            assert_eq!(s.s_load(va + 8).unwrap().paddr, aligned + ((va + 8) & (size - 1)));
        }
    }

    #[test]
    fn user_bit_against_privilege_and_sum() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let (upage, spage) = (0x1000, 0x2000);
        s.put(upage, 0, leaf(0x8000_0000, RWX | AD | pte::U));
        s.put(spage, 0, leaf(0x8000_1000, RWX | AD));
        let run = |access, privilege, sum, va| {
            let w = Walk { sum, ..s.walk(access, privilege) };
            translate(&w, va)
        };
        for sum in [false, true] {
            for access in ALL_ACCESSES {
                // U-mode: U pages only; SUM changes nothing.
                assert!(run(access, Privilege::User, sum, upage).is_ok());
                assert_eq!(run(access, Privilege::User, sum, spage), page_fault(access, spage));
                // S-mode: its own pages always.
                assert!(run(access, Privilege::Supervisor, sum, spage).is_ok());
            }
            // S-mode on a U page: data with SUM only, fetch never.
            for access in [Access::Load, Access::Store] {
                let r = run(access, Privilege::Supervisor, sum, upage);
                assert_eq!(r.is_ok(), sum, "{access:?} sum={sum}");
            }
            assert_eq!(
                run(Access::Fetch, Privilege::Supervisor, sum, upage),
                page_fault(Access::Fetch, upage)
            );
        }
        // What a TLB would cache for S with SUM on a U page: data, no exec.
        let t = run(Access::Load, Privilege::Supervisor, true, upage).unwrap();
        assert_eq!(t.allowed, Perms { read: true, write: true, exec: false });
    }

    #[test]
    fn rwx_permissions_and_mxr() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let cases = [
            // flags, fetch ok, load ok, load ok with MXR, store ok
            (pte::R, false, true, true, false),
            (pte::R | pte::W, false, true, true, true),
            (pte::X, true, false, true, false),
            (pte::R | pte::X, true, true, true, false),
            (RWX, true, true, true, true),
        ];
        for (i, (flags, fetch, load, load_mxr, store)) in cases.into_iter().enumerate() {
            let va = (i as u64 + 1) << 12;
            s.put(va, 0, leaf(0x8000_0000, flags | AD));
            let run = |access, mxr| translate(&Walk { mxr, ..s.walk(access, Privilege::Supervisor) }, va);
            for mxr in [false, true] {
                assert_eq!(run(Access::Fetch, mxr).is_ok(), fetch, "{flags:#x} mxr={mxr}");
                assert_eq!(run(Access::Load, mxr).is_ok(), if mxr { load_mxr } else { load }, "{flags:#x}");
                assert_eq!(run(Access::Store, mxr).is_ok(), store, "{flags:#x} mxr={mxr}");
            }
            if !store {
                assert_eq!(run(Access::Store, true), page_fault(Access::Store, va));
            }
        }
        // MXR is folded into the cached read right.
        let t =
            translate(&Walk { mxr: true, ..s.walk(Access::Fetch, Privilege::Supervisor) }, 3 << 12).unwrap();
        assert_eq!(t.allowed, Perms { read: true, write: false, exec: true });
    }

    #[test]
    fn accessed_and_dirty_bits_are_set_by_the_walk() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        for (access, want) in [(Access::Fetch, pte::A), (Access::Load, pte::A), (Access::Store, AD)] {
            let addr = s.put(0x3000, 0, leaf(0x8000_0000, RWX));
            let t = s.go(access, Privilege::Supervisor, 0x3000).unwrap();
            assert_eq!(ram.get(addr), leaf(0x8000_0000, RWX | want), "{access:?}");
            assert_eq!(t.pte, ram.get(addr));
            assert_eq!(t.dirty, access == Access::Store);
        }
        // Already set: no update at all.
        let calls = ram.cas_calls.get();
        for access in ALL_ACCESSES {
            s.go(access, Privilege::Supervisor, 0x3000).unwrap();
        }
        assert_eq!(ram.cas_calls.get(), calls);
        // Pointer PTEs are never given A/D.
        assert_eq!(ram.get(s.slot(0x3000, 1)) & AD, 0);
    }

    #[test]
    fn store_to_clean_page_sets_dirty_and_only_then_may_cache_write() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv48);
        let addr = s.put(0x20_0000, 1, leaf(0x8000_0000, pte::R | pte::W | pte::A));
        let load = s.s_load(0x20_0008).unwrap();
        assert!(load.allowed.write && !load.dirty && !load.cache_write());
        assert_eq!(ram.get(addr) & pte::D, 0);
        let store = s.go(Access::Store, Privilege::Supervisor, 0x20_0008).unwrap();
        assert!(store.dirty && store.cache_write());
        assert_eq!(ram.get(addr), leaf(0x8000_0000, pte::R | pte::W | AD));
    }

    #[test]
    fn faulting_accesses_leave_the_pte_unchanged() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let cases = [
            (pte::R, Access::Store, Privilege::Supervisor), // not writable
            (pte::R | pte::W, Access::Fetch, Privilege::Supervisor), // not executable
            (pte::X, Access::Load, Privilege::Supervisor),  // not readable, no MXR
            (RWX, Access::Load, Privilege::User),           // S page from U
            (RWX | pte::U, Access::Store, Privilege::Supervisor), // U page from S without SUM
            (RWX | pte::U, Access::Fetch, Privilege::Supervisor), // never
        ];
        for (flags, access, privilege) in cases {
            let addr = s.put(0x9000, 0, leaf(0x8000_0000, flags));
            assert_eq!(s.go(access, privilege, 0x9000), page_fault(access, 0x9000), "{flags:#x} {access:?}");
            assert_eq!(ram.get(addr), leaf(0x8000_0000, flags));
        }
        assert_eq!(ram.cas_calls.get(), 0);
    }

    #[test]
    fn lost_ad_race_rereads_the_pte() {
        let mut ram = FakeRam::new();
        // Another hart remaps the page between our read and our CAS.
        ram.race = Box::new(|old| (old & 0x3ff) | (0x9000_0000 >> 12) << pte::PPN_SHIFT);
        ram.races.set(1);
        let s = Space::new(&ram, Mode::Sv39);
        let addr = s.put(0x4000, 0, leaf(0x8000_0000, pte::R | pte::W));
        let t = s.go(Access::Store, Privilege::Supervisor, 0x4000).unwrap();
        assert_eq!(t.paddr, 0x9000_0000, "the retry uses the new PTE");
        assert_eq!(ram.get(addr), leaf(0x9000_0000, pte::R | pte::W | AD));
        assert_eq!(ram.cas_calls.get(), 2);
    }

    #[test]
    fn lost_ad_race_to_an_invalidated_pte_page_faults() {
        let mut ram = FakeRam::new();
        ram.race = Box::new(|old| old & !pte::V);
        ram.races.set(1);
        let s = Space::new(&ram, Mode::Sv39);
        let addr = s.put(0x4000, 0, leaf(0x8000_0000, pte::R));
        assert_eq!(s.s_load(0x4000), page_fault(Access::Load, 0x4000));
        assert_eq!(ram.get(addr), leaf(0x8000_0000, pte::R) & !pte::V);
    }

    #[test]
    fn endless_ad_races_give_a_page_fault_not_a_hang() {
        let mut ram = FakeRam::new();
        // Toggles an RSW bit before every CAS: the PTE stays valid but never matches.
        ram.race = Box::new(|old| old ^ 1 << 8);
        ram.races.set(u32::MAX);
        let s = Space::new(&ram, Mode::Sv39);
        s.put(0x4000, 0, leaf(0x8000_0000, pte::R));
        assert_eq!(s.s_load(0x4000), page_fault(Access::Load, 0x4000));
        assert_eq!(ram.cas_calls.get(), MAX_AD_RETRIES + 1);
    }

    #[test]
    fn page_tables_outside_ram_are_access_faults() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        let va = 0x6000;
        let outside =
            [0x0, 0x1000_0000 /* the UART */, RAM_BASE + (RAM_PAGES << 12), 0xff_ffff_ffff_f000];
        // Root table outside RAM.
        for root in outside {
            for access in ALL_ACCESSES {
                let w = Walk { satp: 8 << 60 | root >> 12, ..s.walk(access, Privilege::Supervisor) };
                assert_eq!(translate(&w, va), access_fault(access, va), "root {root:#x}");
            }
        }
        // A pointer at each level leading outside RAM.
        for level in [2, 1] {
            let s = Space::new(&ram, Mode::Sv39);
            for target in outside {
                let addr = s.slot(va, level);
                ram.set(addr, pointer(target));
                for access in ALL_ACCESSES {
                    let got = s.go(access, Privilege::Supervisor, va);
                    assert_eq!(got, access_fault(access, va), "level {level} -> {target:#x}");
                    assert_eq!(got.unwrap_err().cause(), [1, 5, 7][access as usize]);
                }
            }
        }
    }

    #[test]
    fn ad_update_in_read_only_memory_is_an_access_fault() {
        let mut ram = FakeRam::new();
        ram.read_only = true;
        let s = Space::new(&ram, Mode::Sv39);
        let addr = s.put(0x7000, 0, leaf(0x8000_0000, pte::R | pte::W));
        assert_eq!(s.s_load(0x7000), access_fault(Access::Load, 0x7000));
        ram.set(addr, leaf(0x8000_0000, pte::R | pte::W | pte::A));
        assert!(s.s_load(0x7000).is_ok(), "A preset: nothing to write");
        assert_eq!(s.go(Access::Store, Privilege::Supervisor, 0x7000), access_fault(Access::Store, 0x7000));
        ram.set(addr, leaf(0x8000_0000, pte::R | pte::W | AD));
        assert!(s.go(Access::Store, Privilege::Supervisor, 0x7000).is_ok());
    }

    #[test]
    fn global_bit_comes_from_any_level() {
        let ram = FakeRam::new();
        let s = Space::new(&ram, Mode::Sv39);
        s.put(0x8000, 0, leaf(0x8000_0000, pte::R | AD));
        assert!(!s.s_load(0x8000).unwrap().global);
        let root_slot = s.slot(0x8000, 2);
        ram.set(root_slot, ram.get(root_slot) | pte::G);
        assert!(s.s_load(0x8000).unwrap().global);
        ram.set(root_slot, ram.get(root_slot) & !pte::G);
        s.put(0x8000, 0, leaf(0x8000_0000, pte::R | AD | pte::G));
        assert!(s.s_load(0x8000).unwrap().global);
    }

    #[test]
    fn global_bit_of_a_pte_replaced_during_the_ad_race_does_not_linger() {
        let mut ram = FakeRam::new();
        ram.race = Box::new(|old| old & !pte::G);
        ram.races.set(1);
        let s = Space::new(&ram, Mode::Sv39);
        s.put(0x8000, 0, leaf(0x8000_0000, pte::R | pte::G));
        assert!(!s.s_load(0x8000).unwrap().global);
    }

    #[test]
    fn fault_causes() {
        let f = |kind, access| Fault { kind, access, tval: 0 }.cause();
        assert_eq!(f(FaultKind::Access, Access::Fetch), 1);
        assert_eq!(f(FaultKind::Access, Access::Load), 5);
        assert_eq!(f(FaultKind::Access, Access::Store), 7);
        assert_eq!(f(FaultKind::Page, Access::Fetch), 12);
        assert_eq!(f(FaultKind::Page, Access::Load), 13);
        assert_eq!(f(FaultKind::Page, Access::Store), 15);
    }

    #[test]
    fn satp_unsupported_modes_do_not_stick() {
        let old = 8 << 60 | 0x1234 << 44 | 0x8_0000;
        for mode in (1..8).chain(10..16) {
            assert_eq!(satp_write(old, mode << 60 | 0x5678 << 44 | 0x9_0000), old, "mode {mode}");
        }
        for mode in [0u64, 8, 9] {
            let new = mode << 60 | 0x5678 << 44 | 0x9_0000;
            assert_eq!(satp_write(old, new), new, "mode {mode}");
        }
    }

    #[test]
    fn satp_linux_probe_settles_on_sv48() {
        // arch/riscv/mm/init.c: write the mode, read back, step down on mismatch.
        let root = 0x8_1234;
        let mut satp = 0;
        let mut chosen = None;
        for mode in [10u64, 9, 8] {
            let want = mode << 60 | root;
            satp = satp_write(satp, want);
            if satp == want {
                chosen = Satp::decode(satp).map(|s| s.mode);
                break;
            }
            assert_eq!(satp, 0, "a refused mode leaves satp as it was");
        }
        assert_eq!(chosen, Some(Mode::Sv48));
    }

    #[test]
    fn satp_fields_and_16_bit_asid() {
        let v = satp_write(0, 8 << 60 | 0xffff << 44 | SATP_PPN_MASK);
        assert_eq!(Satp::decode(v), Some(Satp { mode: Mode::Sv39, asid: 0xffff, ppn: SATP_PPN_MASK }));
        let v = satp_write(0, 9 << 60 | 0x00a5 << 44 | 0x8_0000);
        assert_eq!(Satp::decode(v), Some(Satp { mode: Mode::Sv48, asid: 0xa5, ppn: 0x8_0000 }));
        assert_eq!(Satp::decode(0), Some(Satp { mode: Mode::Bare, asid: 0, ppn: 0 }));
        assert_eq!(Satp::decode(10 << 60), None);
        assert_eq!(ASIDLEN, 16);
    }

    #[test]
    fn mprv_resolves_to_mpp_for_data_only() {
        use Access::*;
        use Privilege::*;
        assert_eq!(effective_privilege(3, false, 1, Load), Machine);
        assert_eq!(effective_privilege(3, true, 1, Load), Supervisor);
        assert_eq!(effective_privilege(3, true, 0, Store), User);
        assert_eq!(effective_privilege(3, true, 3, Store), Machine);
        assert_eq!(effective_privilege(3, true, 0, Fetch), Machine);
        assert_eq!(effective_privilege(1, true, 0, Load), Supervisor);
        assert_eq!(effective_privilege(0, true, 3, Load), User);
    }
}
