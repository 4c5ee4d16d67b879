//! The RISC-V hart's privileged state (spec 1.12): M, S and U, CSRs, traps, delegation and
//! interrupts, `satp` with Bare, Sv39 and Sv48.
//!
//! `mip.MEIP` and `mip.SEIP` are the PLIC's outputs for the hart's M and S contexts, read from an
//! atomic the PLIC writes; `mip.SEIP` reads as that line OR a bit M-mode software may set.
//!
//! Translation is done by the host's TLB fill (`vcpu.rs` with `mmu.rs`); this module keeps the
//! translation context in `CpuState` (privilege, `tb_flags`, `fetch_mmu`) in step with the
//! privilege and `mstatus`. PMP entries are kept as QEMU keeps them and enforced by the TLB fill (`pmp.rs`).
//!
//! Engines execute IR on `CpuState`; whatever the IR cannot express (CSR access, `ecall`, xRET,
//! faults) comes here through the helper calls defined in [`super::helper`]. The current privilege
//! lives here ([`Hart::privilege`]) and is copied to `cpu.privilege` whenever it changes; only the
//! hart changes it.

use super::csr::*;
use super::helper::{CSR_NO_READ, CSR_NO_WRITE, CSR_NUMBER_MASK};
use super::mmu;
use super::tlb;
use crate::devices::clint::Clint;
use crate::devices::plic::ExternalIrq;
use vm_plugin_api::CpuState;

/// Privilege level encodings.
pub const PRIV_U: u8 = 0;
/// Supervisor.
pub const PRIV_S: u8 = 1;
/// Machine.
pub const PRIV_M: u8 = 3;

/// Synchronous exception causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Exception {
    /// Instruction access fault.
    FetchAccess = 1,
    /// Illegal instruction.
    Illegal = 2,
    /// Breakpoint.
    Breakpoint = 3,
    /// Load address misaligned (LR).
    LoadMisaligned = 4,
    /// Load access fault.
    LoadAccess = 5,
    /// Store/AMO address misaligned.
    StoreMisaligned = 6,
    /// Store/AMO access fault.
    StoreAccess = 7,
    /// Environment call from U-mode.
    EcallU = 8,
    /// Environment call from S-mode.
    EcallS = 9,
    /// Environment call from M-mode.
    EcallM = 11,
    /// Instruction page fault.
    FetchPage = 12,
    /// Load page fault.
    LoadPage = 13,
    /// Store/AMO page fault.
    StorePage = 15,
}

impl Exception {
    /// The exception a failed translation raises.
    pub fn of_fault(f: &mmu::Fault) -> Exception {
        use mmu::{Access, FaultKind};
        match (f.kind, f.access) {
            (FaultKind::Access, Access::Fetch) => Exception::FetchAccess,
            (FaultKind::Access, Access::Load) => Exception::LoadAccess,
            (FaultKind::Access, Access::Store) => Exception::StoreAccess,
            (FaultKind::Page, Access::Fetch) => Exception::FetchPage,
            (FaultKind::Page, Access::Load) => Exception::LoadPage,
            (FaultKind::Page, Access::Store) => Exception::StorePage,
        }
    }
}

const INTERRUPT: u64 = 1 << 63;

/// Exceptions `medeleg` can delegate: QEMU's set without the hypervisor's (0-9, 11, 12, 13, 15;
/// QEMU keeps bit 11 writable although an M-mode ecall is never delegated).
const DELEGABLE_EXCEPTIONS: u64 = 0xb3ff;
/// Interrupt priority (spec 1.12 §3.1.9): MEI, MSI, MTI, SEI, SSI, STI.
const PRIORITY: [u64; 6] = [11, 3, 7, 9, 1, 5];
/// `mstatus` bits M-mode can write (MPP is legalised separately).
const MSTATUS_WRITABLE: u64 = MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR
    | MSTATUS_FS;
/// `sstatus`: the fields S-mode sees (SIE, SPIE, UBE, SPP, VS, FS, XS, SUM, MXR, UXL, SD) ...
const SSTATUS_VISIBLE: u64 = 0x8000_0003_000d_e762;
/// ... and the ones it can write.
const SSTATUS_WRITABLE: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS;
/// `fcsr`'s bits: `frm` (7..5) and `fflags` (4..0).
const FCSR_MASK: u64 = 0xff;
const FFLAGS_MASK: u64 = 0x1f;
/// `menvcfg`/`senvcfg.FIOM`, their only writable bit without Zicbo*, Sstc and Svpbmt.
const ENVCFG_FIOM: u64 = 1;
/// `pmpcfg` entry bits: lock and address-matching mode.
const PMP_L: u8 = 0x80;
const PMP_A: u8 = 0x18;
const PMP_A_TOR: u8 = 0x08;

/// Privileged state of one hart.
pub struct Hart {
    /// The current privilege level (`PRIV_U`, `PRIV_S` or `PRIV_M`).
    pub privilege: u8,
    /// `mstatus` as stored (UXL/SXL and SD are added on read).
    pub mstatus: u64,
    /// `mtvec`.
    pub mtvec: u64,
    /// `medeleg`.
    pub medeleg: u64,
    /// `mideleg`.
    pub mideleg: u64,
    /// `mie`.
    pub mie: u64,
    /// `mscratch`.
    pub mscratch: u64,
    /// `mepc`.
    pub mepc: u64,
    /// `mcause`.
    pub mcause: u64,
    /// `mtval`.
    pub mtval: u64,
    /// The software-writable `mip` bits: SSIP, STIP and SEIP (ORed with the PLIC's SEIP).
    pub mip_sw: u64,
    /// `stvec`.
    pub stvec: u64,
    /// `sscratch`.
    pub sscratch: u64,
    /// `sepc`.
    pub sepc: u64,
    /// `scause`.
    pub scause: u64,
    /// `stval`.
    pub stval: u64,
    /// `satp` (Bare only for now: see the module docs).
    pub satp: u64,
    /// `mcounteren`.
    pub mcounteren: u32,
    /// `scounteren`.
    pub scounteren: u32,
    menvcfg: u64,
    senvcfg: u64,
    /// `pmpcfg` bytes and `pmpaddr0..15`.
    pmp: super::pmp::Pmp,
    /// PMP CSR writes so far, so a change is noticed without comparing the entries.
    pmp_writes: u64,
    /// `minstret` minus `cpu.instret` (set by writes to `minstret`).
    instret_offset: u64,
    /// `mcycle` minus `cpu.instret`: the hart counts one cycle per instruction.
    cycle_offset: u64,
    /// MEIP and SEIP, driven by the PLIC.
    external: ExternalIrq,
    clint: Clint,
    hartid: u64,
    /// Whether the hart has been in U-mode yet: the first entry is logged, for boot benchmarks.
    entered_user: bool,
}

/// An access or instruction the hart refuses: the instruction is illegal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalCsr;

/// An instruction not allowed at the current privilege (or by TW, TSR, TVM): illegal.
pub type IllegalInsn = IllegalCsr;

impl Hart {
    /// A hart in its reset state (M-mode), with its timer and software interrupts from `clint`
    /// and its external interrupts from the PLIC through `external`.
    pub fn new(hartid: u64, clint: Clint, external: ExternalIrq) -> Hart {
        Hart {
            privilege: PRIV_M,
            mstatus: 0,
            mtvec: 0,
            medeleg: 0,
            mideleg: 0,
            mie: 0,
            mscratch: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            mip_sw: 0,
            stvec: 0,
            sscratch: 0,
            sepc: 0,
            scause: 0,
            stval: 0,
            satp: 0,
            mcounteren: 0,
            scounteren: 0,
            menvcfg: 0,
            senvcfg: 0,
            pmp: super::pmp::Pmp::default(),
            pmp_writes: 0,
            instret_offset: 0,
            cycle_offset: 0,
            external,
            clint,
            hartid,
            entered_user: false,
        }
    }

    /// Current `mip`.
    pub fn mip(&self) -> u64 {
        self.mip_of(u64::MAX)
    }

    /// `mip`, computed only as far as `wanted` needs (the timer bit costs a clock read): bits
    /// outside `wanted` may read as 0.
    fn mip_of(&self, wanted: u64) -> u64 {
        let (msip, mtip) = self.clint.pending_of(wanted & MIP_MTIP != 0);
        (if msip { MIP_MSIP } else { 0 })
            | (if mtip { MIP_MTIP } else { 0 })
            | self.external.bits()
            | self.mip_sw
    }

    /// `mstatus` as read: UXL = SXL = 2; SD says FS is Dirty (VS and XS are read-only Off).
    pub fn mstatus(&self) -> u64 {
        let sd = if self.fs() == 3 { MSTATUS_SD } else { 0 };
        self.mstatus | MSTATUS_UXL_SXL | sd
    }

    /// `mstatus.FS`: 0 (Off) to 3 (Dirty).
    pub fn fs(&self) -> u8 {
        ((self.mstatus & MSTATUS_FS) >> MSTATUS_FS_SHIFT) as u8
    }

    /// Marks the F and D state written (FS = Dirty). The caller re-syncs the context.
    pub fn set_fs_dirty(&mut self) {
        self.mstatus |= MSTATUS_FS_DIRTY;
    }

    /// Interrupts pending and enabled in `mie`, whatever the global enables and delegation say
    /// (what wakes `wfi`).
    pub fn wake_pending(&self) -> bool {
        self.mie != 0 && self.mip_of(self.mie) & self.mie != 0
    }

    /// The interrupt to take now, if any. Non-delegated (M-level) interrupts are taken below M
    /// always and in M when MIE is set; delegated (S-level) ones in U always, in S when SIE is
    /// set, never in M. M-level ones come first, then each level by [`PRIORITY`].
    pub fn interrupt_to_take(&self) -> Option<u64> {
        let m_on = self.privilege < PRIV_M || self.mstatus & MSTATUS_MIE != 0;
        let s_on = self.privilege < PRIV_S || (self.privilege == PRIV_S && self.mstatus & MSTATUS_SIE != 0);
        // What could be taken decides what must be looked at: this runs after every CSR write,
        // `xret` and device store, mostly with nothing takeable (inside a handler).
        let takeable =
            self.mie & ((if m_on { !self.mideleg } else { 0 }) | (if s_on { self.mideleg } else { 0 }));
        if takeable == 0 {
            return None;
        }
        let pending = self.mip_of(takeable) & takeable;
        let m_level = if m_on { pending & !self.mideleg } else { 0 };
        let s_level = if s_on { pending & self.mideleg } else { 0 };
        let first = |set: u64| PRIORITY.into_iter().find(|&code| set & (1 << code) != 0);
        first(m_level).or_else(|| first(s_level))
    }

    /// Takes interrupt `code`: the interrupted instruction has not executed, so `xepc = cpu.pc`.
    pub fn take_interrupt(&mut self, cpu: &mut CpuState, code: u64) {
        self.trap(cpu, INTERRUPT | code, 0);
    }

    /// Raises exception `e` for the instruction at `cpu.pc`.
    pub fn raise(&mut self, cpu: &mut CpuState, e: Exception, tval: u64) {
        self.trap(cpu, e as u64, tval);
    }

    /// The trap vector the last trap went to, and whether it was `stvec` (for error messages).
    pub fn last_vector(&self) -> (&'static str, u64) {
        if self.privilege == PRIV_S { ("stvec", self.stvec) } else { ("mtvec", self.mtvec) }
    }

    fn trap(&mut self, cpu: &mut CpuState, cause: u64, tval: u64) {
        let code = cause & !INTERRUPT;
        let delegated = if cause & INTERRUPT != 0 { self.mideleg } else { self.medeleg };
        let from = self.privilege;
        let tvec = if from <= PRIV_S && code < 64 && delegated & (1 << code) != 0 {
            self.sepc = cpu.pc;
            self.scause = cause;
            self.stval = tval;
            let sie = self.mstatus & MSTATUS_SIE != 0;
            self.mstatus &= !(MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP);
            self.mstatus |=
                (if sie { MSTATUS_SPIE } else { 0 }) | (if from == PRIV_S { MSTATUS_SPP } else { 0 });
            self.privilege = PRIV_S;
            self.stvec
        } else {
            self.mepc = cpu.pc;
            self.mcause = cause;
            self.mtval = tval;
            let mie = self.mstatus & MSTATUS_MIE != 0;
            self.mstatus &= !(MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP);
            self.mstatus |= (if mie { MSTATUS_MPIE } else { 0 }) | u64::from(from) << MSTATUS_MPP_SHIFT;
            self.privilege = PRIV_M;
            self.mtvec
        };
        cpu.resv_addr = vm_plugin_api::cpu::NO_RESERVATION;
        self.sync_context(cpu);
        let base = tvec & !3;
        let vectored = tvec & 1 == 1 && cause & INTERRUPT != 0;
        cpu.pc = if vectored { base.wrapping_add(4 * code) } else { base };
    }

    /// `mret` (M only): back to MPP at `mepc`, MIE = MPIE, MPIE = 1, MPP = U, and MPRV = 0 when
    /// returning below M. The instruction retires.
    pub fn mret(&mut self, cpu: &mut CpuState) -> Result<(), IllegalInsn> {
        if self.privilege < PRIV_M {
            return Err(IllegalCsr);
        }
        let to = ((self.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) as u8;
        let mpie = self.mstatus & MSTATUS_MPIE != 0;
        self.mstatus &= !(MSTATUS_MIE | MSTATUS_MPP);
        self.mstatus |= MSTATUS_MPIE | (if mpie { MSTATUS_MIE } else { 0 });
        if to != PRIV_M {
            self.mstatus &= !MSTATUS_MPRV;
        }
        self.return_to(cpu, to, self.mepc);
        Ok(())
    }

    /// `sret` (S or M; not in S with TSR): back to SPP at `sepc`, SIE = SPIE, SPIE = 1, SPP = U,
    /// MPRV = 0. The instruction retires.
    pub fn sret(&mut self, cpu: &mut CpuState) -> Result<(), IllegalInsn> {
        if self.privilege == PRIV_U || (self.privilege == PRIV_S && self.mstatus & MSTATUS_TSR != 0) {
            return Err(IllegalCsr);
        }
        let to = if self.mstatus & MSTATUS_SPP != 0 { PRIV_S } else { PRIV_U };
        let spie = self.mstatus & MSTATUS_SPIE != 0;
        self.mstatus &= !(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV);
        self.mstatus |= MSTATUS_SPIE | (if spie { MSTATUS_SIE } else { 0 });
        self.return_to(cpu, to, self.sepc);
        Ok(())
    }

    fn return_to(&mut self, cpu: &mut CpuState, privilege: u8, pc: u64) {
        self.privilege = privilege;
        self.sync_context(cpu);
        cpu.pc = pc;
        cpu.instret += 1;
        if privilege == PRIV_U && !self.entered_user {
            self.entered_user = true;
            // scripts/bench_linux.py reads it: the instructions it took to reach userspace.
            tracing::info!("hart {}: first user-mode instruction after instret={}", self.hartid, cpu.instret);
        }
    }

    /// The MMU mode of loads and stores: MPRV in M makes them use MPP's; SUM lets S touch U pages.
    pub fn data_mmu(&self) -> u8 {
        let mpp = ((self.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) as u8;
        let mprv = self.mstatus & MSTATUS_MPRV != 0;
        match mmu::effective_privilege(self.privilege, mprv, mpp, mmu::Access::Load) {
            mmu::Privilege::Machine => tlb::MMU_M,
            mmu::Privilege::Supervisor if self.mstatus & MSTATUS_SUM != 0 => tlb::MMU_S_SUM,
            mmu::Privilege::Supervisor => tlb::MMU_S,
            mmu::Privilege::User => tlb::MMU_U,
        }
    }

    /// Copies the translation context to `cpu`: privilege, `tb_flags` and the fetch MMU mode.
    pub fn sync_context(&self, cpu: &mut CpuState) {
        cpu.privilege = self.privilege;
        cpu.tb_flags = tlb::tb_flags(self.privilege, self.data_mmu(), self.fs());
        cpu.fetch_mmu = tlb::fetch_mmu(self.privilege);
    }

    /// Whether `wfi` may run here: illegal in U (S exists), and in S with TW. QEMU raises it at
    /// once rather than after a timeout, which the spec allows.
    pub fn wfi_allowed(&self) -> bool {
        self.privilege == PRIV_M || (self.privilege == PRIV_S && self.mstatus & MSTATUS_TW == 0)
    }

    /// `sfence.vma`: illegal in U, and in S with TVM. Nothing is cached yet, so it does nothing
    /// else; with plugin-api 0.2's TLB this is where the flush (by address and ASID) goes.
    pub fn sfence_vma(&mut self, _vaddr: u64, _asid: u64) -> Result<(), IllegalInsn> {
        if self.privilege == PRIV_U || (self.privilege == PRIV_S && self.mstatus & MSTATUS_TVM != 0) {
            return Err(IllegalCsr);
        }
        Ok(())
    }

    /// A CSR instruction: `op` is 1 (write), 2 (set bits) or 3 (clear bits) per the helper ids;
    /// `b` carries the CSR number and flags. Returns the old value.
    pub fn csr_op(&mut self, cpu: &mut CpuState, op: u32, a: u64, b: u64) -> Result<u64, IllegalCsr> {
        let csr = (b & CSR_NUMBER_MASK) as u16;
        let read = op != 1 || b & CSR_NO_READ == 0;
        let write = op == 1 || b & CSR_NO_WRITE == 0;
        // csr[9:8] is the lowest privilege allowed; csr[11:10] == 3 means read-only.
        if (csr >> 8) as u8 & 3 > self.privilege || (write && csr >> 10 == 3) {
            return Err(IllegalCsr);
        }
        // The access checks come first, so a csrrw with rd = x0 is refused like any other.
        let old = self.read_csr(cpu, csr)?;
        if write {
            // A read-modify-write of mip uses the software SEIP bit, not the PLIC's line.
            let base = if csr == MIP { (old & !MIP_SEIP) | (self.mip_sw & MIP_SEIP) } else { old };
            let new = match op {
                1 => a,
                2 => base | a,
                _ => base & !a,
            };
            self.write_csr(cpu, csr, new)?;
        }
        Ok(if read { old } else { 0 })
    }

    /// Whether a counter CSR (`cycle` + `n`) may be read here: below M it needs its `mcounteren`
    /// bit, and in U also its `scounteren` bit.
    fn counter_allowed(&self, n: u16) -> bool {
        let bit = 1u32 << n;
        self.privilege == PRIV_M
            || (self.mcounteren & bit != 0 && (self.privilege == PRIV_S || self.scounteren & bit != 0))
    }

    fn read_csr(&self, cpu: &CpuState, csr: u16) -> Result<u64, IllegalCsr> {
        Ok(match csr {
            // With FS = Off the F and D state does not exist: its CSRs are illegal too.
            FFLAGS | FRM | FCSR if self.fs() == 0 => return Err(IllegalCsr),
            FFLAGS => cpu.fcsr & FFLAGS_MASK,
            FRM => (cpu.fcsr & FCSR_MASK) >> 5,
            FCSR => cpu.fcsr & FCSR_MASK,
            SSTATUS => self.mstatus() & SSTATUS_VISIBLE,
            SIE => self.mie & self.mideleg,
            STVEC => self.stvec,
            SCOUNTEREN => u64::from(self.scounteren),
            SENVCFG => self.senvcfg,
            SSCRATCH => self.sscratch,
            SEPC => self.sepc,
            SCAUSE => self.scause,
            STVAL => self.stval,
            SIP => self.mip() & self.mideleg & S_INTERRUPTS,
            SATP if self.privilege == PRIV_S && self.mstatus & MSTATUS_TVM != 0 => return Err(IllegalCsr),
            SATP => self.satp,
            MSTATUS => self.mstatus(),
            MISA => MISA_VALUE,
            MEDELEG => self.medeleg,
            MIDELEG => self.mideleg,
            MIE => self.mie,
            MTVEC => self.mtvec,
            MCOUNTEREN => u64::from(self.mcounteren),
            MENVCFG => self.menvcfg,
            MSCRATCH => self.mscratch,
            MEPC => self.mepc,
            MCAUSE => self.mcause,
            MTVAL => self.mtval,
            MIP => self.mip(),
            PMPCFG0 | PMPCFG2 => {
                let first = usize::from(csr - PMPCFG0) * 4;
                (0..8).fold(0, |v, i| v | u64::from(self.pmp.cfg[first + i]) << (8 * i))
            }
            PMPADDR0..=PMPADDR15 => self.pmp.addr[usize::from(csr - PMPADDR0)],
            MCYCLE => cpu.instret.wrapping_add(self.cycle_offset),
            MINSTRET => cpu.instret.wrapping_add(self.instret_offset),
            // Event counters, their events and the inhibit bits: implemented as read-only zero,
            // which the spec allows (writes are ignored).
            MCOUNTINHIBIT | MHPMEVENT3..=MHPMEVENT31 | MHPMCOUNTER3..=MHPMCOUNTER31 => 0,
            CYCLE..=HPMCOUNTER31 if !self.counter_allowed(csr - CYCLE) => return Err(IllegalCsr),
            CYCLE => cpu.instret.wrapping_add(self.cycle_offset),
            TIME => self.clint.mtime(),
            INSTRET => cpu.instret.wrapping_add(self.instret_offset),
            HPMCOUNTER3..=HPMCOUNTER31 => 0,
            MVENDORID | MARCHID | MIMPID | MCONFIGPTR => 0,
            MHARTID => self.hartid,
            _ => return Err(IllegalCsr),
        })
    }

    fn write_csr(&mut self, cpu: &mut CpuState, csr: u16, v: u64) -> Result<(), IllegalCsr> {
        match csr {
            // read_csr refused these with FS = Off. frm takes any value: an invalid one makes the
            // instructions that use it illegal, not the write.
            FFLAGS | FRM | FCSR => {
                let (mask, shift) = match csr {
                    FFLAGS => (FFLAGS_MASK, 0),
                    FRM => (FCSR_MASK & !FFLAGS_MASK, 5),
                    _ => (FCSR_MASK, 0),
                };
                cpu.fcsr = (cpu.fcsr & !mask) | ((v << shift) & mask);
                self.set_fs_dirty();
            }
            SSTATUS => self.mstatus = (self.mstatus & !SSTATUS_WRITABLE) | (v & SSTATUS_WRITABLE),
            SIE => {
                let m = self.mideleg & S_INTERRUPTS;
                self.mie = (self.mie & !m) | (v & m);
            }
            // Only SSIP is writable through sip, and only when it is delegated.
            SIP => {
                let m = self.mideleg & MIP_SSIP;
                self.mip_sw = (self.mip_sw & !m) | (v & m);
            }
            STVEC if v & 3 < 2 => self.stvec = v,
            STVEC => {}
            SCOUNTEREN => self.scounteren = v as u32,
            SENVCFG => self.senvcfg = v & ENVCFG_FIOM,
            SSCRATCH => self.sscratch = v,
            SEPC => self.sepc = v & !1,
            SCAUSE => self.scause = v,
            STVAL => self.stval = v,
            SATP => self.satp = mmu::satp_write(self.satp, v),
            MSTATUS => {
                // MPP is WARL over U, S and M: the reserved 2 leaves it unchanged.
                let mpp =
                    (if v & MSTATUS_MPP == 2 << MSTATUS_MPP_SHIFT { self.mstatus } else { v }) & MSTATUS_MPP;
                self.mstatus = (v & MSTATUS_WRITABLE) | mpp;
            }
            MISA => {} // WARL: the extension set is fixed.
            MEDELEG => self.medeleg = v & DELEGABLE_EXCEPTIONS,
            MIDELEG => self.mideleg = v & S_INTERRUPTS,
            MIE => self.mie = v & ALL_INTERRUPTS,
            // Modes 0 (direct) and 1 (vectored); the reserved modes leave mtvec unchanged.
            MTVEC if v & 3 < 2 => self.mtvec = v,
            MTVEC => {}
            MCOUNTEREN => self.mcounteren = v as u32,
            MENVCFG => self.menvcfg = v & ENVCFG_FIOM,
            MSCRATCH => self.mscratch = v,
            // IALIGN is 16 once compressed instructions exist; bit 0 is always zero.
            MEPC => self.mepc = v & !1,
            MCAUSE => self.mcause = v,
            MTVAL => self.mtval = v,
            // MSIP, MTIP and MEIP are the CLINT's and the PLIC's; SEIP ORs with the PLIC's line.
            MIP => self.mip_sw = v & S_INTERRUPTS,
            PMPCFG0 | PMPCFG2 => {
                let first = usize::from(csr - PMPCFG0) * 4;
                for i in 0..8 {
                    self.pmpcfg_write(first + i, (v >> (8 * i)) as u8);
                }
            }
            PMPADDR0..=PMPADDR15 => self.pmpaddr_write(usize::from(csr - PMPADDR0), v),
            // The write happens before the CSR instruction retires, so the count it leaves is
            // `v` plus that one instruction; cpu.instret does not yet include it.
            MCYCLE => self.cycle_offset = v.wrapping_sub(cpu.instret),
            MINSTRET => self.instret_offset = v.wrapping_sub(cpu.instret),
            MCOUNTINHIBIT | MHPMEVENT3..=MHPMEVENT31 | MHPMCOUNTER3..=MHPMCOUNTER31 => {}
            _ => return Err(IllegalCsr),
        }
        Ok(())
    }

    /// The PMP entries, for the TLB's checks.
    pub fn pmp(&self) -> &super::pmp::Pmp {
        &self.pmp
    }

    /// How many PMP CSR writes there have been: when it changes, permissions may have.
    pub fn pmp_writes(&self) -> u64 {
        self.pmp_writes
    }

    /// A `pmpcfg` byte, as QEMU 7.2 keeps it: a locked entry ignores writes; otherwise every bit
    /// is stored as written (QEMU 7.2 keeps W without R and the reserved bits too).
    fn pmpcfg_write(&mut self, i: usize, v: u8) {
        self.pmp_writes += 1;
        if self.pmp.cfg[i] & PMP_L == 0 {
            self.pmp.cfg[i] = v;
        }
    }

    /// A `pmpaddr`, as QEMU 7.2 keeps it: ignored when its entry is locked, or when the next
    /// entry is a locked TOR (whose base it is); all 64 bits are stored.
    fn pmpaddr_write(&mut self, i: usize, v: u64) {
        self.pmp_writes += 1;
        let next_locked_tor =
            self.pmp.cfg.get(i + 1).is_some_and(|&c| c & PMP_L != 0 && c & PMP_A == PMP_A_TOR);
        if self.pmp.cfg[i] & PMP_L == 0 && !next_locked_tor {
            self.pmp.addr[i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hart() -> (Hart, CpuState) {
        let cpu = CpuState { privilege: PRIV_M, ..CpuState::default() };
        (Hart::new(0, Clint::new(), ExternalIrq::default()), cpu)
    }

    /// Reads `csr` the way `csrr` does.
    fn rd(h: &mut Hart, cpu: &mut CpuState, csr: u16) -> Result<u64, IllegalCsr> {
        h.csr_op(cpu, 2, 0, u64::from(csr) | CSR_NO_WRITE)
    }

    /// Writes `csr` the way `csrw` does.
    fn wr(h: &mut Hart, cpu: &mut CpuState, csr: u16, v: u64) -> Result<u64, IllegalCsr> {
        h.csr_op(cpu, 1, v, u64::from(csr) | CSR_NO_READ)
    }

    fn at(h: &mut Hart, cpu: &mut CpuState, privilege: u8) {
        h.privilege = privilege;
        cpu.privilege = privilege;
    }

    #[test]
    fn trap_and_mret_round_trip() {
        let (mut h, mut cpu) = hart();
        h.mtvec = 0x8000_0100;
        h.mstatus |= MSTATUS_MIE;
        cpu.pc = 0x8000_0040;
        h.raise(&mut cpu, Exception::EcallM, 0);
        assert_eq!((cpu.pc, h.mepc, h.mcause), (0x8000_0100, 0x8000_0040, 11));
        assert_eq!(h.mstatus & (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP), MSTATUS_MPIE | MSTATUS_MPP);
        h.mepc += 4;
        h.mret(&mut cpu).unwrap();
        assert_eq!(cpu.pc, 0x8000_0044);
        assert_eq!(h.mstatus & (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP), MSTATUS_MIE | MSTATUS_MPIE);
        assert_eq!((cpu.instret, cpu.privilege), (1, PRIV_M));
    }

    #[test]
    fn vectored_interrupts_offset_by_cause() {
        let (mut h, mut cpu) = hart();
        h.mtvec = 0x8000_0001;
        h.take_interrupt(&mut cpu, 7);
        assert_eq!(cpu.pc, 0x8000_001c);
        assert_eq!(h.mcause, (1 << 63) | 7);
        // stvec likewise, and exceptions go to the base.
        let (mut h, mut cpu) = hart();
        at(&mut h, &mut cpu, PRIV_U);
        h.stvec = 0x8000_0201;
        h.mideleg = MIP_SSIP;
        h.medeleg = 1 << 8;
        h.take_interrupt(&mut cpu, 1);
        assert_eq!((cpu.pc, h.scause, cpu.privilege), (0x8000_0204, (1 << 63) | 1, PRIV_S));
        at(&mut h, &mut cpu, PRIV_U);
        h.raise(&mut cpu, Exception::EcallU, 0);
        assert_eq!((cpu.pc, h.scause), (0x8000_0200, 8));
    }

    #[test]
    fn csr_access_rules() {
        let (mut h, mut cpu) = hart();
        assert_eq!(h.csr_op(&mut cpu, 1, 5, MSCRATCH as u64), Ok(0));
        assert_eq!(h.csr_op(&mut cpu, 2, 2, MSCRATCH as u64), Ok(5));
        assert_eq!(h.csr_op(&mut cpu, 3, 1, MSCRATCH as u64), Ok(7));
        assert_eq!(h.mscratch, 6);
        // Reading a read-only CSR is fine; writing it is illegal.
        assert_eq!(h.csr_op(&mut cpu, 2, 0, MHARTID as u64 | CSR_NO_WRITE), Ok(0));
        assert_eq!(h.csr_op(&mut cpu, 1, 0, MHARTID as u64), Err(IllegalCsr));
        assert_eq!(h.csr_op(&mut cpu, 2, 0, 0x7c0), Err(IllegalCsr), "unimplemented CSR");
        assert_eq!(h.csr_op(&mut cpu, 2, 0, MISA as u64 | CSR_NO_WRITE), Ok(MISA_VALUE));
        // csr[9:8] is the lowest privilege: S CSRs from U, M CSRs from S are illegal, even with
        // rd = x0 (csrw); reads and writes alike.
        at(&mut h, &mut cpu, PRIV_S);
        assert_eq!(rd(&mut h, &mut cpu, SSCRATCH), Ok(0));
        assert_eq!(rd(&mut h, &mut cpu, MSTATUS), Err(IllegalCsr));
        assert_eq!(wr(&mut h, &mut cpu, MSCRATCH, 1), Err(IllegalCsr));
        assert_eq!(rd(&mut h, &mut cpu, MHARTID), Err(IllegalCsr));
        at(&mut h, &mut cpu, PRIV_U);
        assert_eq!(rd(&mut h, &mut cpu, SSTATUS), Err(IllegalCsr));
        assert_eq!(wr(&mut h, &mut cpu, SSCRATCH, 1), Err(IllegalCsr));
        assert_eq!(rd(&mut h, &mut cpu, SCOUNTEREN), Err(IllegalCsr));
        assert_eq!(h.mscratch, 6);
        assert_eq!(h.sscratch, 0);
        // Every counter shadow is read-only, even where reading it is allowed.
        at(&mut h, &mut cpu, PRIV_M);
        for csr in [CYCLE, TIME, INSTRET, 0xc03, HPMCOUNTER31] {
            assert_eq!(wr(&mut h, &mut cpu, csr, 0), Err(IllegalCsr), "{csr:#x}");
            assert!(rd(&mut h, &mut cpu, csr).is_ok(), "{csr:#x}");
        }
    }

    #[test]
    fn minstret_write_offsets_the_counter() {
        let (mut h, mut cpu) = hart();
        cpu.instret = 100;
        h.csr_op(&mut cpu, 1, 5, MINSTRET as u64).unwrap();
        cpu.instret = 110;
        assert_eq!(h.csr_op(&mut cpu, 2, 0, MINSTRET as u64 | CSR_NO_WRITE), Ok(15));
    }

    #[test]
    fn meip_and_seip_come_from_the_plic_and_seip_can_be_delegated() {
        use crate::bus::MmioDevice;
        use crate::devices::plic;
        use std::sync::{Arc, atomic::AtomicU32};
        let mut p = plic::Plic::new(&[crate::devices::clint::HartSignal {
            attention: Arc::new(AtomicU32::new(0)),
            wake: Arc::default(),
        }]);
        let mut h = Hart::new(0, Clint::new(), p.hart_lines(0));
        let mut cpu = CpuState { privilege: PRIV_M, ..CpuState::default() };
        h.mstatus |= MSTATUS_MIE;
        h.csr_op(&mut cpu, 1, u64::MAX, MIE as u64).unwrap();
        assert_eq!(h.mie, ALL_INTERRUPTS);
        // Source 10 at priority 1 for both contexts of hart 0 (M = 0, S = 1), line high.
        p.write(40, 1, 4).unwrap();
        p.write(0x2000, 1 << 10, 4).unwrap();
        p.write(0x2080, 1 << 10, 4).unwrap();
        p.set_level(10, true);
        assert_eq!(rd(&mut h, &mut cpu, MIP), Ok(MIP_MEIP | MIP_SEIP));
        assert_eq!(h.interrupt_to_take(), Some(11));
        // Claimed by the M context: both outputs drop.
        assert_eq!(p.read(0x20_0004, 4).unwrap(), 10);
        assert_eq!(h.mip(), 0);
        // The S context alone: not delegated, it is an M-level interrupt, taken in M.
        p.write(0x2000, 0, 4).unwrap();
        p.write(0x20_0004, 10, 4).unwrap();
        assert_eq!(h.mip(), MIP_SEIP);
        assert_eq!((h.interrupt_to_take(), h.wake_pending()), (Some(9), true));
        // Delegated: never taken in M, taken in S with SIE, where it traps to stvec.
        h.mideleg = MIP_SEIP;
        assert_eq!(h.interrupt_to_take(), None);
        assert!(h.wake_pending(), "wfi still wakes");
        at(&mut h, &mut cpu, PRIV_S);
        assert_eq!(h.interrupt_to_take(), None);
        h.mstatus |= MSTATUS_SIE;
        assert_eq!(h.interrupt_to_take(), Some(9));
        h.stvec = 0x8000_0400;
        h.take_interrupt(&mut cpu, 9);
        assert_eq!((cpu.pc, h.scause, cpu.privilege), (0x8000_0400, (1 << 63) | 9, PRIV_S));
        assert_eq!(rd(&mut h, &mut cpu, SIP), Ok(MIP_SEIP));
        // M software's SEIP ORs with the line; a read-modify-write of mip does not latch the
        // line into the software bit (spec 1.12 §3.1.9).
        at(&mut h, &mut cpu, PRIV_M);
        h.csr_op(&mut cpu, 3, MIP_SSIP, MIP as u64).unwrap();
        assert_eq!(h.mip_sw, 0);
        p.write(0x2080, 0, 4).unwrap();
        assert_eq!(h.mip(), 0);
        h.csr_op(&mut cpu, 2, MIP_SEIP, MIP as u64).unwrap();
        assert_eq!(h.mip(), MIP_SEIP);
    }

    #[test]
    fn exceptions_are_delegated_from_s_and_u_only() {
        let (mut h, mut cpu) = hart();
        h.mtvec = 0x8000_0100;
        h.stvec = 0x8000_0200;
        h.medeleg = (1 << 8) | (1 << 2) | (1 << 11);
        // From U, delegated: S takes it with SPP = U, SPIE = SIE, SIE = 0.
        at(&mut h, &mut cpu, PRIV_U);
        h.mstatus = MSTATUS_SIE;
        cpu.pc = 0x1000;
        h.raise(&mut cpu, Exception::EcallU, 0);
        assert_eq!((cpu.pc, cpu.privilege, h.privilege), (0x8000_0200, PRIV_S, PRIV_S));
        assert_eq!((h.sepc, h.scause, h.stval), (0x1000, 8, 0));
        assert_eq!(h.mstatus, MSTATUS_SPIE);
        assert_eq!(h.mcause, 0, "M saw nothing");
        // From S, delegated: SPP = S.
        cpu.pc = 0x2000;
        h.raise(&mut cpu, Exception::Illegal, 0x1234);
        assert_eq!((h.sepc, h.scause, h.stval), (0x2000, 2, 0x1234));
        assert_eq!(h.mstatus & (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE), MSTATUS_SPP);
        // From S, not delegated: M with MPP = S.
        h.raise(&mut cpu, Exception::EcallS, 0);
        assert_eq!((cpu.pc, cpu.privilege, h.mcause, h.mepc), (0x8000_0100, PRIV_M, 9, 0x8000_0200));
        assert_eq!(h.mstatus & MSTATUS_MPP, u64::from(PRIV_S) << MSTATUS_MPP_SHIFT);
        // From M: never delegated, whatever medeleg says.
        h.raise(&mut cpu, Exception::EcallM, 0);
        assert_eq!((cpu.privilege, h.mcause), (PRIV_M, 11));
        h.raise(&mut cpu, Exception::Illegal, 7);
        assert_eq!((cpu.privilege, h.mcause, h.mtval), (PRIV_M, 2, 7));
    }

    #[test]
    fn xret_rules() {
        let (mut h, mut cpu) = hart();
        // mret below M and sret in U are illegal; sret in S with TSR too. Nothing changes.
        at(&mut h, &mut cpu, PRIV_S);
        h.mstatus = MSTATUS_TSR | MSTATUS_SPP;
        assert_eq!(h.mret(&mut cpu), Err(IllegalCsr));
        assert_eq!(h.sret(&mut cpu), Err(IllegalCsr));
        at(&mut h, &mut cpu, PRIV_U);
        h.mstatus = MSTATUS_SPP;
        assert_eq!(h.sret(&mut cpu), Err(IllegalCsr));
        assert_eq!(h.mret(&mut cpu), Err(IllegalCsr));
        assert_eq!((cpu.instret, h.mstatus), (0, MSTATUS_SPP));
        // sret in S: to SPP, SIE = SPIE, SPIE = 1, SPP = U, MPRV = 0.
        at(&mut h, &mut cpu, PRIV_S);
        h.mstatus = MSTATUS_SPIE | MSTATUS_MPRV;
        h.sepc = 0x3000;
        h.sret(&mut cpu).unwrap();
        assert_eq!((cpu.pc, cpu.privilege, h.privilege, cpu.instret), (0x3000, PRIV_U, PRIV_U, 1));
        assert_eq!(h.mstatus, MSTATUS_SIE | MSTATUS_SPIE);
        // sret from M is allowed (to S here).
        at(&mut h, &mut cpu, PRIV_M);
        h.mstatus = MSTATUS_SPP | MSTATUS_TSR;
        h.sret(&mut cpu).unwrap();
        assert_eq!(cpu.privilege, PRIV_S);
        assert_eq!(h.mstatus, MSTATUS_SPIE | MSTATUS_TSR);
        // mret to S clears MPRV; MPP becomes U.
        at(&mut h, &mut cpu, PRIV_M);
        h.mstatus = MSTATUS_MPRV | (1 << MSTATUS_MPP_SHIFT);
        h.mepc = 0x4000;
        h.mret(&mut cpu).unwrap();
        assert_eq!((cpu.pc, cpu.privilege), (0x4000, PRIV_S));
        assert_eq!(h.mstatus, MSTATUS_MPIE);
        // mret to M keeps MPRV.
        at(&mut h, &mut cpu, PRIV_M);
        h.mstatus = MSTATUS_MPRV | MSTATUS_MPP;
        h.mret(&mut cpu).unwrap();
        assert_eq!(h.mstatus, MSTATUS_MPRV | MSTATUS_MPIE);
    }

    #[test]
    fn wfi_and_sfence_vma_rules() {
        let (mut h, mut cpu) = hart();
        assert!(h.wfi_allowed());
        h.mstatus = MSTATUS_TW | MSTATUS_TVM;
        assert!(h.wfi_allowed(), "TW and TVM do not apply to M");
        assert_eq!(h.sfence_vma(0, 0), Ok(()));
        at(&mut h, &mut cpu, PRIV_S);
        assert!(!h.wfi_allowed());
        assert_eq!(h.sfence_vma(0, 0), Err(IllegalCsr));
        h.mstatus = 0;
        assert!(h.wfi_allowed());
        assert_eq!(h.sfence_vma(0x1000, 3), Ok(()));
        at(&mut h, &mut cpu, PRIV_U);
        assert!(!h.wfi_allowed(), "wfi is illegal in U whatever TW says");
        assert_eq!(h.sfence_vma(0, 0), Err(IllegalCsr));
    }

    #[test]
    fn interrupt_priority_and_global_enables() {
        use crate::bus::MmioDevice;
        let clint = Clint::new();
        let mut h = Hart::new(0, clint.clone(), ExternalIrq::default());
        let mut cpu = CpuState { privilege: PRIV_M, ..CpuState::default() };
        // MSIP and MTIP (mtimecmp = 0 <= mtime) from the CLINT, SSIP and STIP from software.
        let mut dev = clint;
        dev.write(0, 1, 4).unwrap();
        dev.write(0x4000, 0, 8).unwrap();
        h.mip_sw = MIP_SSIP | MIP_STIP;
        h.mie = ALL_INTERRUPTS;
        // In M with MIE = 0: nothing. With MIE: MSI before MTI before SSI (not delegated).
        assert_eq!(h.interrupt_to_take(), None);
        h.mstatus = MSTATUS_MIE;
        assert_eq!(h.interrupt_to_take(), Some(3));
        h.mie &= !MIP_MSIP;
        assert_eq!(h.interrupt_to_take(), Some(7));
        h.mie &= !MIP_MTIP;
        assert_eq!(h.interrupt_to_take(), Some(1));
        // Delegated S-level interrupts are never taken in M.
        h.mideleg = MIP_SSIP | MIP_STIP;
        h.mstatus = MSTATUS_MIE | MSTATUS_SIE;
        assert_eq!(h.interrupt_to_take(), None);
        // In S: SIE gates S-level ones; SSI before STI.
        at(&mut h, &mut cpu, PRIV_S);
        h.mstatus = 0;
        assert_eq!(h.interrupt_to_take(), None);
        h.mstatus = MSTATUS_SIE;
        assert_eq!(h.interrupt_to_take(), Some(1));
        // M-level ones are taken in S whatever MIE says, and before any S-level one, even a
        // higher-priority code.
        h.mie |= MIP_MTIP;
        h.mstatus = 0;
        assert_eq!(h.interrupt_to_take(), Some(7));
        h.mideleg = MIP_STIP;
        h.mie = MIP_SSIP | MIP_STIP;
        assert_eq!(h.interrupt_to_take(), Some(1), "SSIP not delegated: M-level");
        h.mideleg = MIP_SSIP | MIP_STIP;
        // In U: S-level ones are always on.
        at(&mut h, &mut cpu, PRIV_U);
        assert_eq!(h.interrupt_to_take(), Some(1));
        h.mie = MIP_STIP;
        assert_eq!(h.interrupt_to_take(), Some(5));
        h.take_interrupt(&mut cpu, 5);
        assert_eq!((cpu.privilege, h.scause), (PRIV_S, (1 << 63) | 5));
        assert_eq!(h.mstatus & (MSTATUS_SPP | MSTATUS_SPIE), 0, "from U, SIE was 0");
    }

    #[test]
    fn status_warl() {
        let (mut h, mut cpu) = hart();
        wr(&mut h, &mut cpu, MSTATUS, u64::MAX).unwrap();
        let all = rd(&mut h, &mut cpu, MSTATUS).unwrap();
        assert_eq!(all, MSTATUS_WRITABLE | MSTATUS_MPP | MSTATUS_UXL_SXL | MSTATUS_SD, "VS, XS, xBE read 0");
        assert_eq!(all & MSTATUS_FS, MSTATUS_FS, "FS = Dirty, so SD");
        // MPP: U, S and M stick; 2 keeps the old value.
        for (v, want) in [(0, 0), (1, 1), (2, 1), (3, 3), (2, 3)] {
            wr(&mut h, &mut cpu, MSTATUS, v << MSTATUS_MPP_SHIFT).unwrap();
            assert_eq!(
                rd(&mut h, &mut cpu, MSTATUS).unwrap() >> MSTATUS_MPP_SHIFT & 3,
                want,
                "MPP write {v}"
            );
        }
        // sstatus: the S view, and writes reach only its own fields.
        wr(&mut h, &mut cpu, MSTATUS, u64::MAX).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, SSTATUS), Ok(SSTATUS_WRITABLE | (2 << 32) | MSTATUS_SD));
        wr(&mut h, &mut cpu, SSTATUS, 0).unwrap();
        assert_eq!(h.mstatus, MSTATUS_WRITABLE & !SSTATUS_WRITABLE | MSTATUS_MPP);
        wr(&mut h, &mut cpu, MSTATUS, 0).unwrap();
        wr(&mut h, &mut cpu, SSTATUS, u64::MAX).unwrap();
        assert_eq!(h.mstatus, SSTATUS_WRITABLE);
        // misa ignores writes.
        wr(&mut h, &mut cpu, MISA, 0).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, MISA), Ok(MISA_VALUE));
        assert_eq!(MISA_VALUE & 0x3ff_ffff, 0x14_112d, "A, C, D, F, I, M, S, U");
    }

    #[test]
    fn fp_csrs_need_fs_and_set_it_dirty() {
        let (mut h, mut cpu) = hart();
        // FS = Off: fflags, frm and fcsr do not exist, even to read.
        for csr in [FFLAGS, FRM, FCSR] {
            assert_eq!(rd(&mut h, &mut cpu, csr), Err(IllegalCsr), "{csr:#x}");
            assert_eq!(wr(&mut h, &mut cpu, csr, 0), Err(IllegalCsr), "{csr:#x}");
        }
        h.sync_context(&mut cpu);
        assert_eq!(cpu.tb_flags & (tlb::TB_FP | tlb::TB_FP_DIRTY), 0);
        // Initial: reads leave FS alone; each write makes it Dirty (and SD set).
        h.mstatus |= 1 << MSTATUS_FS_SHIFT;
        cpu.fcsr = 0b101_10011;
        assert_eq!(rd(&mut h, &mut cpu, FFLAGS), Ok(0b10011));
        assert_eq!(rd(&mut h, &mut cpu, FRM), Ok(0b101));
        assert_eq!(rd(&mut h, &mut cpu, FCSR), Ok(0b101_10011));
        assert_eq!((h.fs(), rd(&mut h, &mut cpu, MSTATUS).unwrap() & MSTATUS_SD), (1, 0));
        h.sync_context(&mut cpu);
        assert_eq!(cpu.tb_flags & (tlb::TB_FP | tlb::TB_FP_DIRTY), tlb::TB_FP);
        wr(&mut h, &mut cpu, FFLAGS, u64::MAX).unwrap();
        assert_eq!((cpu.fcsr, h.fs()), (0b101_11111, 3));
        assert_eq!(rd(&mut h, &mut cpu, MSTATUS).unwrap() & MSTATUS_SD, MSTATUS_SD);
        assert_eq!(
            rd(&mut h, &mut cpu, SSTATUS).unwrap() & (MSTATUS_SD | MSTATUS_FS),
            MSTATUS_SD | MSTATUS_FS
        );
        h.sync_context(&mut cpu);
        assert_eq!(cpu.tb_flags & (tlb::TB_FP | tlb::TB_FP_DIRTY), tlb::TB_FP | tlb::TB_FP_DIRTY);
        wr(&mut h, &mut cpu, FRM, 0xff).unwrap();
        assert_eq!(cpu.fcsr, 0xff, "frm keeps 3 bits, even an invalid mode");
        wr(&mut h, &mut cpu, FCSR, 0x1234).unwrap();
        assert_eq!(cpu.fcsr, 0x34);
        // csrrs fflags, x0 only reads: FS stays Clean.
        h.mstatus = 2 << MSTATUS_FS_SHIFT;
        assert_eq!(h.csr_op(&mut cpu, 2, 0, u64::from(FFLAGS) | CSR_NO_WRITE), Ok(0x14));
        assert_eq!(h.fs(), 2);
        // S and U reach them too.
        at(&mut h, &mut cpu, PRIV_U);
        assert_eq!(rd(&mut h, &mut cpu, FCSR), Ok(0x34));
    }

    #[test]
    fn delegation_and_interrupt_register_warl() {
        let (mut h, mut cpu) = hart();
        for (csr, want) in [
            (MEDELEG, 0xb3ff),
            (MIDELEG, 0x222),
            (MIE, 0xaaa),
            (MIP, 0x222),
            (MCOUNTEREN, 0xffff_ffff),
            (SCOUNTEREN, 0xffff_ffff),
            (MENVCFG, 1),
            (SENVCFG, 1),
            (MCOUNTINHIBIT, 0),
            (MHPMCOUNTER3, 0),
            (MHPMEVENT31, 0),
            (SEPC, !1),
            (MEPC, !1),
            (SCAUSE, u64::MAX),
        ] {
            wr(&mut h, &mut cpu, csr, u64::MAX).unwrap();
            assert_eq!(rd(&mut h, &mut cpu, csr), Ok(want), "{csr:#x}");
        }
        assert_eq!(rd(&mut h, &mut cpu, MCONFIGPTR), Ok(0));
        // sie/sip show only delegated S interrupts; sip writes only a delegated SSIP.
        wr(&mut h, &mut cpu, MIDELEG, MIP_SSIP).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, SIE), Ok(MIP_SSIP));
        assert_eq!(rd(&mut h, &mut cpu, SIP), Ok(MIP_SSIP));
        wr(&mut h, &mut cpu, SIP, 0).unwrap();
        wr(&mut h, &mut cpu, SIE, 0).unwrap();
        assert_eq!((h.mip_sw, h.mie), (MIP_STIP | MIP_SEIP, 0xaaa & !MIP_SSIP));
        wr(&mut h, &mut cpu, MIDELEG, 0).unwrap();
        wr(&mut h, &mut cpu, SIP, u64::MAX).unwrap();
        wr(&mut h, &mut cpu, SIE, u64::MAX).unwrap();
        assert_eq!((h.mip_sw, h.mie), (MIP_STIP | MIP_SEIP, 0xaaa & !MIP_SSIP), "nothing delegated");
        // tvec reserved modes keep the old value.
        wr(&mut h, &mut cpu, STVEC, 0x8000_1001).unwrap();
        wr(&mut h, &mut cpu, STVEC, 0x8000_2002).unwrap();
        assert_eq!(h.stvec, 0x8000_1001);
    }

    #[test]
    fn satp_keeps_bare_sv39_and_sv48_and_refuses_other_modes() {
        let (mut h, mut cpu) = hart();
        wr(&mut h, &mut cpu, SATP, 0x0000_1000_0008_0000).unwrap();
        assert_eq!(h.satp, 0x0000_1000_0008_0000, "Bare with other fields: kept, as QEMU");
        wr(&mut h, &mut cpu, SATP, 0).unwrap();
        // Sv57 and the reserved modes do not stick (Linux probes Sv57, then Sv48, then Sv39).
        for mode in [10u64, 1, 15] {
            wr(&mut h, &mut cpu, SATP, mode << 60 | 0x8_0000).unwrap();
            assert_eq!(rd(&mut h, &mut cpu, SATP), Ok(0), "mode {mode}");
        }
        for mode in [8u64, 9] {
            wr(&mut h, &mut cpu, SATP, mode << 60 | 0x8_0000).unwrap();
            assert_eq!(rd(&mut h, &mut cpu, SATP), Ok(mode << 60 | 0x8_0000), "mode {mode}");
        }
        wr(&mut h, &mut cpu, SATP, 0).unwrap();
        // TVM makes satp illegal in S, not in M.
        h.mstatus = MSTATUS_TVM;
        assert_eq!(rd(&mut h, &mut cpu, SATP), Ok(0));
        at(&mut h, &mut cpu, PRIV_S);
        assert_eq!(rd(&mut h, &mut cpu, SATP), Err(IllegalCsr));
        assert_eq!(wr(&mut h, &mut cpu, SATP, 0), Err(IllegalCsr));
        h.mstatus = 0;
        assert_eq!(rd(&mut h, &mut cpu, SATP), Ok(0));
        at(&mut h, &mut cpu, PRIV_U);
        assert_eq!(rd(&mut h, &mut cpu, SATP), Err(IllegalCsr));
    }

    #[test]
    fn counter_enables() {
        let (mut h, mut cpu) = hart();
        for (m, s, privilege, csr, ok) in [
            (0, 0, PRIV_M, CYCLE, true),
            (0, 7, PRIV_S, CYCLE, false),
            (1, 0, PRIV_S, CYCLE, true),
            (1, 0, PRIV_S, TIME, false),
            (2, 0, PRIV_S, TIME, true),
            (4, 0, PRIV_S, INSTRET, true),
            (7, 0, PRIV_U, CYCLE, false),
            (7, 1, PRIV_U, CYCLE, true),
            (5, 2, PRIV_U, TIME, false),
            (2, 2, PRIV_U, TIME, true),
            (1 << 3, 1 << 3, PRIV_U, 0xc03, true),
            (0, 1 << 3, PRIV_S, 0xc03, false),
        ] {
            h.mcounteren = m;
            h.scounteren = s;
            at(&mut h, &mut cpu, privilege);
            assert_eq!(rd(&mut h, &mut cpu, csr).is_ok(), ok, "{csr:#x} in {privilege} with {m:#x}/{s:#x}");
        }
    }

    #[test]
    fn pmp_csrs_keep_what_qemu_keeps() {
        let (mut h, mut cpu) = hart();
        wr(&mut h, &mut cpu, PMPADDR0, u64::MAX).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, PMPADDR0), Ok(u64::MAX));
        // W without R and the reserved bits are kept, as QEMU 7.2 keeps them.
        wr(&mut h, &mut cpu, PMPCFG0, 0x0d00_601e_001f).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, PMPCFG0), Ok(0x0d00_601e_001f));
        wr(&mut h, &mut cpu, PMPCFG2, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, PMPCFG2), Ok(0x0102_0304_0506_0708));
        // Entry 7 locked as TOR: its cfg byte, its address and pmpaddr6 (its base) are frozen.
        wr(&mut h, &mut cpu, PMPADDR0 + 6, 0x1000).unwrap();
        h.csr_op(&mut cpu, 2, 0x88 << 56, u64::from(PMPCFG0)).unwrap();
        wr(&mut h, &mut cpu, PMPADDR0 + 6, 0x2000).unwrap();
        wr(&mut h, &mut cpu, PMPADDR0 + 7, 0x5000).unwrap();
        wr(&mut h, &mut cpu, PMPCFG0, 0x000d_0000_0000_001f).unwrap();
        assert_eq!(rd(&mut h, &mut cpu, PMPCFG0), Ok(0x880d_0000_0000_001f));
        assert_eq!((h.pmp.addr[6], h.pmp.addr[7]), (0x1000, 0));
        // Entry 15 locked but OFF: pmpaddr14 stays writable; pmpaddr15 does not.
        wr(&mut h, &mut cpu, PMPCFG2, 0x80 << 56).unwrap();
        wr(&mut h, &mut cpu, PMPADDR15, 1).unwrap();
        wr(&mut h, &mut cpu, PMPADDR0 + 14, 2).unwrap();
        assert_eq!((h.pmp.addr[14], h.pmp.addr[15]), (2, 0));
        // RV64 has no odd pmpcfg, and only 16 entries; PMP CSRs are M-only.
        for csr in [0x3a1, 0x3a3, 0x3a4, 0x3c0] {
            assert_eq!(rd(&mut h, &mut cpu, csr), Err(IllegalCsr), "{csr:#x}");
        }
        at(&mut h, &mut cpu, PRIV_S);
        assert_eq!(rd(&mut h, &mut cpu, PMPCFG0), Err(IllegalCsr));
    }
}
