//! Control and status register numbers and field masks the hart implements (machine mode).

/// `mstatus`.
pub const MSTATUS: u16 = 0x300;
/// `misa`.
pub const MISA: u16 = 0x301;
/// `mie`.
pub const MIE: u16 = 0x304;
/// `mtvec`.
pub const MTVEC: u16 = 0x305;
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
/// `mcycle`.
pub const MCYCLE: u16 = 0xb00;
/// `minstret`.
pub const MINSTRET: u16 = 0xb02;
/// `cycle` (user read-only shadow).
pub const CYCLE: u16 = 0xc00;
/// `time` (user read-only shadow of the CLINT's `mtime`).
pub const TIME: u16 = 0xc01;
/// `instret` (user read-only shadow).
pub const INSTRET: u16 = 0xc02;
/// `mvendorid`.
pub const MVENDORID: u16 = 0xf11;
/// `marchid`.
pub const MARCHID: u16 = 0xf12;
/// `mimpid`.
pub const MIMPID: u16 = 0xf13;
/// `mhartid`.
pub const MHARTID: u16 = 0xf14;

/// `mstatus.MIE`: machine interrupts enabled.
pub const MSTATUS_MIE: u64 = 1 << 3;
/// `mstatus.MPIE`: MIE before the last trap.
pub const MSTATUS_MPIE: u64 = 1 << 7;
/// `mstatus.MPP`: privilege before the last trap (hard-wired to M on an M-only hart).
pub const MSTATUS_MPP: u64 = 3 << 11;

/// Machine software, timer and external interrupt bits of `mip`/`mie`.
pub const MIP_MSIP: u64 = 1 << 3;
/// Machine timer interrupt.
pub const MIP_MTIP: u64 = 1 << 7;
/// Machine external interrupt.
pub const MIP_MEIP: u64 = 1 << 11;

/// `misa` for RV64IMC: MXL = 2 (64-bit), extensions I, M and C.
pub const MISA_VALUE: u64 = (2 << 62) | (1 << (b'C' - b'A')) | (1 << (b'I' - b'A')) | (1 << (b'M' - b'A'));
