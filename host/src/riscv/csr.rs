//! Control and status register numbers and field masks the hart implements (M, S and U).

/// `fflags`: the accrued exception flags, `fcsr` bits 4..0.
pub const FFLAGS: u16 = 0x001;
/// `frm`: the dynamic rounding mode, `fcsr` bits 7..5.
pub const FRM: u16 = 0x002;
/// `fcsr`: `frm << 5 | fflags`.
pub const FCSR: u16 = 0x003;

/// `sstatus`.
pub const SSTATUS: u16 = 0x100;
/// `sie`.
pub const SIE: u16 = 0x104;
/// `stvec`.
pub const STVEC: u16 = 0x105;
/// `scounteren`.
pub const SCOUNTEREN: u16 = 0x106;
/// `senvcfg`.
pub const SENVCFG: u16 = 0x10a;
/// `sscratch`.
pub const SSCRATCH: u16 = 0x140;
/// `sepc`.
pub const SEPC: u16 = 0x141;
/// `scause`.
pub const SCAUSE: u16 = 0x142;
/// `stval`.
pub const STVAL: u16 = 0x143;
/// `sip`.
pub const SIP: u16 = 0x144;
/// `satp`.
pub const SATP: u16 = 0x180;

/// `mstatus`.
pub const MSTATUS: u16 = 0x300;
/// `misa`.
pub const MISA: u16 = 0x301;
/// `medeleg`.
pub const MEDELEG: u16 = 0x302;
/// `mideleg`.
pub const MIDELEG: u16 = 0x303;
/// `mie`.
pub const MIE: u16 = 0x304;
/// `mtvec`.
pub const MTVEC: u16 = 0x305;
/// `mcounteren`.
pub const MCOUNTEREN: u16 = 0x306;
/// `menvcfg`.
pub const MENVCFG: u16 = 0x30a;
/// `mcountinhibit`.
pub const MCOUNTINHIBIT: u16 = 0x320;
/// `mhpmevent3`; `mhpmevent4`..`mhpmevent31` follow.
pub const MHPMEVENT3: u16 = 0x323;
/// `mhpmevent31`.
pub const MHPMEVENT31: u16 = 0x33f;
/// `mscratch`.
pub const MSCRATCH: u16 = 0x340;
/// `mepc`.
pub const MEPC: u16 = 0x341;
/// `mcause`.
pub const MCAUSE: u16 = 0x342;
/// `mtval`.
pub const MTVAL: u16 = 0x343;
/// `mip`.
pub const MIP: u16 = 0x344;
/// `pmpcfg0` (entries 0-7 on RV64); `pmpcfg2` holds entries 8-15, odd numbers do not exist.
pub const PMPCFG0: u16 = 0x3a0;
/// `pmpcfg2`.
pub const PMPCFG2: u16 = 0x3a2;
/// `pmpaddr0`; `pmpaddr1`..`pmpaddr15` follow.
pub const PMPADDR0: u16 = 0x3b0;
/// `pmpaddr15`.
pub const PMPADDR15: u16 = 0x3bf;
/// `mcycle`.
pub const MCYCLE: u16 = 0xb00;
/// `minstret`.
pub const MINSTRET: u16 = 0xb02;
/// `mhpmcounter3`; `mhpmcounter4`..`mhpmcounter31` follow.
pub const MHPMCOUNTER3: u16 = 0xb03;
/// `mhpmcounter31`.
pub const MHPMCOUNTER31: u16 = 0xb1f;
/// `cycle` (read-only shadow of `mcycle`).
pub const CYCLE: u16 = 0xc00;
/// `time` (read-only shadow of the CLINT's `mtime`).
pub const TIME: u16 = 0xc01;
/// `instret` (read-only shadow of `minstret`).
pub const INSTRET: u16 = 0xc02;
/// `hpmcounter3`; `hpmcounter4`..`hpmcounter31` follow.
pub const HPMCOUNTER3: u16 = 0xc03;
/// `hpmcounter31`.
pub const HPMCOUNTER31: u16 = 0xc1f;
/// `mvendorid`.
pub const MVENDORID: u16 = 0xf11;
/// `marchid`.
pub const MARCHID: u16 = 0xf12;
/// `mimpid`.
pub const MIMPID: u16 = 0xf13;
/// `mhartid`.
pub const MHARTID: u16 = 0xf14;
/// `mconfigptr`.
pub const MCONFIGPTR: u16 = 0xf15;

/// `mstatus.SIE`: supervisor interrupts enabled.
pub const MSTATUS_SIE: u64 = 1 << 1;
/// `mstatus.MIE`: machine interrupts enabled.
pub const MSTATUS_MIE: u64 = 1 << 3;
/// `mstatus.SPIE`: SIE before the last trap into S.
pub const MSTATUS_SPIE: u64 = 1 << 5;
/// `mstatus.MPIE`: MIE before the last trap into M.
pub const MSTATUS_MPIE: u64 = 1 << 7;
/// `mstatus.SPP`: privilege before the last trap into S (0 = U, 1 = S).
pub const MSTATUS_SPP: u64 = 1 << 8;
/// `mstatus.MPP`: privilege before the last trap into M.
pub const MSTATUS_MPP: u64 = 3 << 11;
/// Shift of `mstatus.MPP`.
pub const MSTATUS_MPP_SHIFT: u32 = 11;
/// `mstatus.FS`: the floating-point state, Off (0), Initial (1), Clean (2) or Dirty (3).
pub const MSTATUS_FS: u64 = 3 << 13;
/// `mstatus.FS` = Dirty: F or D state was written.
pub const MSTATUS_FS_DIRTY: u64 = 3 << 13;
/// Shift of `mstatus.FS`.
pub const MSTATUS_FS_SHIFT: u32 = 13;
/// `mstatus.MPRV`: loads and stores in M use MPP's privilege.
pub const MSTATUS_MPRV: u64 = 1 << 17;
/// `mstatus.SUM`: S may access U pages.
pub const MSTATUS_SUM: u64 = 1 << 18;
/// `mstatus.MXR`: loads from executable pages.
pub const MSTATUS_MXR: u64 = 1 << 19;
/// `mstatus.TVM`: trap `satp` accesses and `sfence.vma` in S.
pub const MSTATUS_TVM: u64 = 1 << 20;
/// `mstatus.TW`: trap `wfi` below M.
pub const MSTATUS_TW: u64 = 1 << 21;
/// `mstatus.TSR`: trap `sret` in S.
pub const MSTATUS_TSR: u64 = 1 << 22;
/// `mstatus.UXL` (bits 33:32) and `mstatus.SXL` (35:34): read-only 2 (64-bit).
pub const MSTATUS_UXL_SXL: u64 = (2 << 32) | (2 << 34);
/// `mstatus.SD`: FS, VS or XS dirty (here: FS, the others are read-only Off).
pub const MSTATUS_SD: u64 = 1 << 63;

/// Machine software, timer and external interrupt bits of `mip`/`mie`.
pub const MIP_MSIP: u64 = 1 << 3;
/// Machine timer interrupt.
pub const MIP_MTIP: u64 = 1 << 7;
/// Machine external interrupt.
pub const MIP_MEIP: u64 = 1 << 11;
/// Supervisor software interrupt.
pub const MIP_SSIP: u64 = 1 << 1;
/// Supervisor timer interrupt.
pub const MIP_STIP: u64 = 1 << 5;
/// Supervisor external interrupt (the same bit as `devices::plic::MIP_SEIP`).
pub const MIP_SEIP: u64 = 1 << 9;
/// The supervisor interrupts: what `mideleg` can delegate and `sie`/`sip` can show.
pub const S_INTERRUPTS: u64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
/// Every interrupt the hart has.
pub const ALL_INTERRUPTS: u64 = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP;

/// `misa` for RV64IMAFDC with S and U: MXL = 2 (64-bit).
pub const MISA_VALUE: u64 =
    (2 << 62) | ext(b'A') | ext(b'C') | ext(b'D') | ext(b'F') | ext(b'I') | ext(b'M') | ext(b'S') | ext(b'U');

const fn ext(letter: u8) -> u64 {
    1 << (letter - b'A')
}
