//! The helper calls the RISC-V frontend emits, and their calling convention.
//!
//! Helper ids are the frontend's own numbering: indices into the host's helper table (entry 0 is
//! unused). Before any helper runs, the engine has set `cpu.pc` to the instruction's pc and
//! `cpu.instret` to the count before it (see `vm_plugin_api::ir`). A helper that returns
//! `Flow::Continue` lets the instruction retire with the block; one that redirects or exits sets
//! `cpu.pc`, and bumps `cpu.instret` itself when the instruction retired (`mret`, `wfi`, a CSR
//! write that changed the translation context), but not when it trapped (`ecall`, illegal).
//! Every helper's `imm` holds the instruction's bits in its top 32 bits or, for the ones with no
//! other constant, in its low 32: that is the `tval` of an illegal-instruction trap.

use vm_plugin_api::HelperFlags;

/// Frontend helper ids.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// `csrrw`/`csrrwi`: `a` = new value, `imm` = csr number | flags | rd << 16 | bits << 32.
    /// Returns the old value.
    CsrRw = 1,
    /// `csrrs`/`csrrsi`: `a` = bits to set, `imm` as for `CsrRw`. Returns the old value.
    CsrRs = 2,
    /// `csrrc`/`csrrci`: `a` = bits to clear, `imm` as for `CsrRw`. Returns the old value.
    CsrRc = 3,
    /// `ecall`: raises the environment-call exception for the current privilege. Always redirects.
    Ecall = 4,
    /// `ebreak`: raises a breakpoint exception. Always redirects.
    Ebreak = 5,
    /// `mret`: returns from an M-mode trap. Redirects.
    Mret = 6,
    /// `sret`: returns from an S-mode trap. Redirects (or raises illegal instruction).
    Sret = 7,
    /// `wfi`: exits with `ExitReason::Wfi`, pc at the next instruction.
    Wfi = 8,
    /// `sfence.vma`: `a` = rs1 value (address), `b` = rs2 value (asid), `imm` = bits | rs1 is x0
    /// << 32 | rs2 is x0 << 33. Continues.
    SfenceVma = 9,
    /// An instruction the frontend does not implement or that is illegal: `imm` = its raw bits.
    /// Raises illegal-instruction with `mtval` = the bits. Always redirects.
    Illegal = 10,
    /// An F or D operation with a static rounding mode, or none (see [`fpu`](super::fpu)): `a`,
    /// `b`, `c` = the `rs1`, `rs2`, `rs3` values, `imm` = [`fpu::imm`](super::fpu::imm). ORs its
    /// exception flags into `cpu.fcsr` and returns the result: an `f` register value (a single
    /// NaN-boxed) or an integer. Always continues.
    Fp = 11,
    /// As [`Helper::Fp`] with the rounding mode in `frm`; an invalid `frm` (5 to 7) raises
    /// illegal-instruction instead. Continues or redirects.
    FpDyn = 12,
    /// Sets `mstatus.FS` to Dirty and redirects to the instruction at `cpu.pc`, which then runs
    /// under the new translation context; emitted before the first F or D instruction of a block
    /// that writes F or D state while FS is not Dirty. `imm` = the instruction's bits.
    FpDirty = 13,
}

/// Entries in the helper table: the largest id plus one.
pub const HELPER_COUNT: usize = 14;

/// Flag in a CSR helper's `imm`: the destination is `x0`, so the CSR must not be read (no read side
/// effects).
pub const CSR_NO_READ: u64 = 1 << 12;
/// Flag in a CSR helper's `imm`: the source is `x0` / a zero immediate for `csrrs`/`csrrc`, so the
/// CSR must not be written (reading a read-only CSR is then legal).
pub const CSR_NO_WRITE: u64 = 1 << 13;
/// Mask of the CSR number in a CSR helper's `imm`.
pub const CSR_NUMBER_MASK: u64 = 0xfff;
/// Where a CSR helper's `imm` holds `rd`.
pub const CSR_RD_SHIFT: u32 = 16;

impl Helper {
    /// What the helper may touch: the flags of its table entry and of every call to it.
    pub const fn flags(self) -> HelperFlags {
        match self {
            Helper::Fp => HelperFlags::FP.union(HelperFlags::NO_EXIT),
            // An invalid frm traps.
            Helper::FpDyn => HelperFlags::FP,
            _ => HelperFlags(0),
        }
    }

    /// The helper with id `id`, if any.
    pub fn from_id(id: u32) -> Option<Helper> {
        use Helper::*;
        Some(match id {
            1 => CsrRw,
            2 => CsrRs,
            3 => CsrRc,
            4 => Ecall,
            5 => Ebreak,
            6 => Mret,
            7 => Sret,
            8 => Wfi,
            9 => SfenceVma,
            10 => Illegal,
            11 => Fp,
            12 => FpDyn,
            13 => FpDirty,
            _ => return None,
        })
    }
    /// The id the IR carries.
    pub fn id(self) -> u32 {
        self as u32
    }
}
