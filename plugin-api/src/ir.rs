//! The ISA-neutral intermediate representation engines execute.
//!
//! The host's guest frontend turns one guest basic block into one [`IrBlock`]: a straight-line list
//! of [`IrOp`]s over 64-bit values followed by one [`Terminator`]. The interpreter plugin is the
//! reference semantics; every other engine must agree with it.
//!
//! # Values
//! - `Reg(i)`: guest integer register `i` of [`CpuState::x`](crate::CpuState::x). The frontend never
//!   writes a register whose value is architecturally fixed (RISC-V `x0`), so engines need no special case.
//! - `Tmp(i)`: a block-local temporary, `i < MAX_TEMPS`. Undefined on block entry.
//! - `Imm(v)`: a 64-bit constant.
//!
//! # Arithmetic (all wrapping, two's complement)
//! - Shifts use the low 6 bits of the amount; the `*W` forms use the low 5 bits.
//! - `*W` forms compute on the low 32 bits of both operands and sign-extend the 32-bit result to 64.
//! - `Slt`/`Sltu` give 1 or 0 (signed / unsigned less-than).
//! - `MulH`, `MulHU`, `MulHSU`: the high 64 bits of the 128-bit product of (signed×signed,
//!   unsigned×unsigned, signed×unsigned) operands.
//! - Division by zero: `Div`/`DivU` (and `W`) give all ones (−1); `Rem`/`RemU` give the dividend.
//!   Signed overflow (`MIN / -1`): `Div` gives `MIN`, `Rem` gives 0. (RISC-V's definitions.)
//!
//! # Accounting
//! Every op that can leave the block early ([`IrOp::Load`], [`IrOp::Store`], [`IrOp::Helper`]) carries
//! an [`At`]: the guest pc offset and the number of guest instructions of this block that retired
//! before it. Before calling the host for such an op, an engine stores `block.pc + at.pc_offset` into
//! `cpu.pc` and adds `at.insn_index` to the instructions it has counted so far, so the host sees
//! exact state. When the block completes, the engine adds `insn_count` to `cpu.instret`.
//!
//! # Host calls
//! - A host call answered with `Flow::Continue` may have changed guest registers and
//!   `cpu.instret` (a CSR write to `minstret`); engines reload what they cached.
//! - The value handed to the slow-path store holds the stored bytes; higher bits are ignored.
//! - Translation never answers `Flow::Continue`; an engine treats that as an error.
//! - A run's budget is checked at block boundaries, so a run may retire up to one block more.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RVec},
};

/// Number of block-local temporaries an engine must provide.
pub const MAX_TEMPS: usize = 32;

/// A value an op reads.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// Guest integer register.
    Reg(u8),
    /// Block-local temporary.
    Tmp(u8),
    /// Constant.
    Imm(i64),
}

/// A place an op writes.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Guest integer register.
    Reg(u8),
    /// Block-local temporary.
    Tmp(u8),
}

/// Two-operand integer operations. See the module docs for exact semantics.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Sar,
    Slt,
    Sltu,
    Mul,
    MulH,
    MulHU,
    MulHSU,
    Div,
    DivU,
    Rem,
    RemU,
    AddW,
    SubW,
    ShlW,
    ShrW,
    SarW,
    MulW,
    DivW,
    DivUW,
    RemW,
    RemUW,
}

/// Branch conditions: signed and unsigned comparisons of two operands.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Cond {
    Eq,
    Ne,
    Lt,
    Ge,
    Ltu,
    Geu,
}

/// Where in the block an op that may leave it sits.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At {
    /// Byte offset of the guest instruction from the block's start pc.
    pub pc_offset: u32,
    /// Guest instructions of this block retired before this one.
    pub insn_index: u32,
}

/// Width and signedness of a memory access.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAccess {
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// Sign-extend a load narrower than 8 bytes (ignored for stores).
    pub signed: bool,
}

/// One straight-line operation.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrOp {
    /// `dst = src`.
    Mov {
        /// Destination.
        dst: Dest,
        /// Source.
        src: Operand,
    },
    /// `dst = a <op> b`.
    Bin {
        /// Operation.
        op: BinOp,
        /// Destination.
        dst: Dest,
        /// Left operand.
        a: Operand,
        /// Right operand.
        b: Operand,
    },
    /// `dst = mem[base + offset]`, little-endian, zero- or sign-extended.
    Load {
        /// Destination.
        dst: Dest,
        /// Base address.
        base: Operand,
        /// Signed displacement.
        offset: i64,
        /// Width and signedness.
        access: MemAccess,
        /// Position, for exact state on a fault.
        at: At,
    },
    /// `mem[base + offset] = low bytes of src`, little-endian.
    Store {
        /// Value to store.
        src: Operand,
        /// Base address.
        base: Operand,
        /// Signed displacement.
        offset: i64,
        /// Width.
        access: MemAccess,
        /// Position, for exact state on a fault.
        at: At,
    },
    /// Calls host helper `id` with two arguments; writes its value to `dst` if any.
    ///
    /// Helper ids are defined by the host's frontend; engines pass them through untouched.
    /// The host's answer may end the block (see [`Flow`](crate::Flow)).
    Helper {
        /// Host-defined helper number.
        id: u32,
        /// Where the helper's value goes.
        dst: ROption<Dest>,
        /// First argument.
        a: Operand,
        /// Second argument.
        b: Operand,
        /// Position, for exact state.
        at: At,
    },
}

/// How a block ends.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// Continue at a constant guest pc.
    Jump {
        /// Next pc.
        target: u64,
    },
    /// Continue at `taken` if `cond(a, b)` holds, else at `not_taken`.
    Branch {
        /// Comparison.
        cond: Cond,
        /// Left operand.
        a: Operand,
        /// Right operand.
        b: Operand,
        /// Next pc when the condition holds.
        taken: u64,
        /// Next pc otherwise.
        not_taken: u64,
    },
    /// Continue at the pc held in `target` (already aligned by the frontend).
    JumpIndirect {
        /// Next pc.
        target: Operand,
    },
    /// Drop every cached translation, then continue at `next` (guest code was changed).
    FlushCode {
        /// Next pc.
        next: u64,
    },
}

/// One translated guest basic block.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct IrBlock {
    /// Guest pc of the first instruction.
    pub pc: u64,
    /// Bytes of guest code covered, from `pc`.
    pub len: u32,
    /// Guest instructions covered (all retire when the block completes).
    pub insn_count: u32,
    /// The straight-line body.
    pub ops: RVec<IrOp>,
    /// How the block ends.
    pub term: Terminator,
}

/// Evaluates `op` on two 64-bit values with the semantics in the module docs.
///
/// Shared by engines as the reference for every [`BinOp`].
#[inline(always)]
pub fn eval_bin(op: BinOp, a: u64, b: u64) -> u64 {
    let sx32 = |v: u32| v as i32 as i64 as u64;
    match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a << (b & 63),
        BinOp::Shr => a >> (b & 63),
        BinOp::Sar => ((a as i64) >> (b & 63)) as u64,
        BinOp::Slt => ((a as i64) < (b as i64)) as u64,
        BinOp::Sltu => (a < b) as u64,
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::MulH => (((a as i64 as i128) * (b as i64 as i128)) >> 64) as u64,
        BinOp::MulHU => (((a as u128) * (b as u128)) >> 64) as u64,
        BinOp::MulHSU => (((a as i64 as i128).wrapping_mul(b as u128 as i128)) >> 64) as u64,
        BinOp::Div => {
            if b == 0 {
                u64::MAX
            } else {
                (a as i64).wrapping_div(b as i64) as u64
            }
        }
        BinOp::DivU => a.checked_div(b).unwrap_or(u64::MAX),
        BinOp::Rem => {
            if b == 0 {
                a
            } else {
                (a as i64).wrapping_rem(b as i64) as u64
            }
        }
        BinOp::RemU => a.checked_rem(b).unwrap_or(a),
        BinOp::AddW => sx32((a as u32).wrapping_add(b as u32)),
        BinOp::SubW => sx32((a as u32).wrapping_sub(b as u32)),
        BinOp::ShlW => sx32((a as u32) << (b & 31)),
        BinOp::ShrW => sx32((a as u32) >> (b & 31)),
        BinOp::SarW => sx32(((a as i32) >> (b & 31)) as u32),
        BinOp::MulW => sx32((a as u32).wrapping_mul(b as u32)),
        BinOp::DivW => {
            let (a, b) = (a as i32, b as i32);
            if b == 0 { u64::MAX } else { a.wrapping_div(b) as i64 as u64 }
        }
        BinOp::DivUW => {
            let (a, b) = (a as u32, b as u32);
            a.checked_div(b).map_or(u64::MAX, sx32)
        }
        BinOp::RemW => {
            let (a, b) = (a as i32, b as i32);
            if b == 0 { a as i64 as u64 } else { a.wrapping_rem(b) as i64 as u64 }
        }
        BinOp::RemUW => {
            let (a, b) = (a as u32, b as u32);
            if b == 0 { sx32(a) } else { sx32(a % b) }
        }
    }
}

/// Evaluates a branch condition.
#[inline(always)]
pub fn eval_cond(cond: Cond, a: u64, b: u64) -> bool {
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Lt => (a as i64) < (b as i64),
        Cond::Ge => (a as i64) >= (b as i64),
        Cond::Ltu => a < b,
        Cond::Geu => a >= b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_edge_cases_follow_riscv() {
        assert_eq!(eval_bin(BinOp::Div, 7, 0), u64::MAX);
        assert_eq!(eval_bin(BinOp::DivU, 7, 0), u64::MAX);
        assert_eq!(eval_bin(BinOp::Rem, 7, 0), 7);
        assert_eq!(eval_bin(BinOp::Div, i64::MIN as u64, u64::MAX), i64::MIN as u64);
        assert_eq!(eval_bin(BinOp::Rem, i64::MIN as u64, u64::MAX), 0);
        assert_eq!(eval_bin(BinOp::DivW, 0x8000_0000, u64::MAX), 0xffff_ffff_8000_0000);
        assert_eq!(eval_bin(BinOp::RemUW, 0x1_0000_0005, 0), 5);
        assert_eq!(eval_bin(BinOp::DivUW, 0xffff_fffe, 1), 0xffff_ffff_ffff_fffe);
    }

    #[test]
    fn high_multiplies() {
        assert_eq!(eval_bin(BinOp::MulHU, u64::MAX, u64::MAX), u64::MAX - 1);
        assert_eq!(eval_bin(BinOp::MulH, u64::MAX, u64::MAX), 0);
        assert_eq!(eval_bin(BinOp::MulHSU, u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn word_shifts_sign_extend() {
        assert_eq!(eval_bin(BinOp::ShlW, 1, 31), 0xffff_ffff_8000_0000);
        assert_eq!(eval_bin(BinOp::SarW, 0x8000_0000, 4), 0xffff_ffff_f800_0000);
        assert_eq!(eval_bin(BinOp::ShrW, 0x8000_0000, 36), 0x0800_0000);
    }
}
