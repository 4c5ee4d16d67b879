//! The ISA-neutral intermediate representation engines execute.
//!
//! The host's guest frontend turns one guest basic block into one [`IrBlock`]: a straight-line list
//! of [`IrOp`]s over 64-bit values followed by one [`Terminator`]. The interpreter plugin is the
//! reference semantics; every other engine must agree with it.
//!
//! # Values
//! - `Reg(i)`: guest register `i` of [`CpuState::regs`](crate::CpuState::regs): `0..32` are the
//!   integer registers `x`, `32..64` the floating-point registers `f` (raw bits; single precision
//!   NaN-boxed by the frontend). The frontend never writes a register whose value is architecturally
//!   fixed (RISC-V `x0`), so engines need no special case.
//! - `Tmp(i)`: a block-local temporary, `i < MAX_TEMPS`. Undefined on block entry.
//! - `Imm(v)`: a 64-bit constant.
//!
//! # Arithmetic (all wrapping, two's complement)
//! - Shifts and rotates use the low 6 bits of the amount; the `*W` forms use the low 5 bits.
//! - `*W` forms compute on the low 32 bits of both operands and sign-extend the 32-bit result to 64.
//! - `Slt`/`Sltu` give 1 or 0 (signed / unsigned less-than).
//! - `MulH`, `MulHU`, `MulHSU`: the high 64 bits of the 128-bit product of (signed×signed,
//!   unsigned×unsigned, signed×unsigned) operands.
//! - Division by zero: `Div`/`DivU` (and `W`) give all ones (−1); `Rem`/`RemU` give the dividend.
//!   Signed overflow (`MIN / -1`): `Div` gives `MIN`, `Rem` gives 0. (RISC-V's definitions.)
//! - [`UnOp`]s and the bit-manipulation `BinOp`s are RISC-V Zbb's; [`eval_un`] and [`eval_bin`]
//!   are their reference.
//!
//! # Memory
//! Addresses are guest virtual, resolved through the TLB of mode `access.mmu` (see
//! [`crate::cpu`]). A load or store may be misaligned unless `access.flags` has
//! [`mem_flag::ALIGNED`]; the host decides what a misaligned access that reaches it does.
//! - Atomics are always naturally aligned: the frontend sets `mem_flag::ALIGNED` on them, and
//!   engines treat them as aligned whatever the flag says (a misaligned host atomic is undefined).
//! - [`IrOp::Amo`]: atomically `old = mem[addr]; mem[addr] = eval_amo(op, size, old, src)`; `dst`
//!   gets `old`, sign-extended when 4 bytes. Through the `write` tag.
//! - [`IrOp::LoadReserved`]: `dst = mem[addr]` (4 bytes sign-extended), through the `read` tag;
//!   then `cpu.resv_addr = addr`, `cpu.resv_value = dst`.
//! - [`IrOp::StoreConditional`]: if `cpu.resv_addr == addr` and a compare-exchange of
//!   `cpu.resv_value` (at `size`) to `src` succeeds, `dst = 0`, else `dst = 1`; then always
//!   `cpu.resv_addr = NO_RESERVATION`. A failed SC performs no store and raises no fault; an
//!   engine may look the address up first and leave a miss to the host, which decides the same.
//! - `order` maps `.aq`/`.rl`; on hosts whose locked instructions are full barriers it is free.
//! - [`IrOp::Fence`] orders the accesses of classes `pred` before those of `succ`.
//!
//! # Accounting
//! Every op that can leave the block early (memory ops and [`IrOp::Helper`]) carries an [`At`]:
//! the guest pc offset and the number of guest instructions of this block that retired before it.
//! Before calling the host for such an op, an engine stores `block.pc + at.pc_offset` into
//! `cpu.pc` and adds `at.insn_index` to the instructions it has counted so far, so the host sees
//! exact state. After a call answered `Continue` the block's entry count is
//! `cpu.instret - at.insn_index` (the host may have rewritten the counter); when the block
//! completes, `cpu.instret` = that entry count + `insn_count`.
//!
//! # Host calls
//! - A host call answered with `Flow::Continue` may have changed guest registers, `cpu.fcsr` and
//!   `cpu.instret` (a CSR write to `minstret`), and the TLB tables; engines reload what they
//!   cached. It never changes `pc`, `tb_flags`, `fetch_mmu` or `privilege`: a call that does
//!   answers `Flow::Redirect`.
//! - The value handed to the slow-path store holds the stored bytes; higher bits are ignored.
//! - Translation never answers `Flow::Continue`; an engine treats that as an error.
//! - The stop rule: before every block, the first included, an engine checks the attention word
//!   and then the budget (instructions retired in this run, counting those of blocks left early),
//!   and nowhere else; engines execute exactly the blocks the host translated (never merged), so
//!   two engines given the same budget stop at the same instruction. A run may retire up to one
//!   block more than its budget.

use crate::memory::MemoryOrder;
use abi_stable::{
    StableAbi,
    std_types::{ROption, RVec},
};

/// Number of block-local temporaries an engine must provide.
pub const MAX_TEMPS: usize = 32;

/// Number of IR registers: `x0..x31` then `f0..f31`.
pub const NUM_REGS: usize = 64;
/// `Reg(FP_BASE + i)` is floating-point register `f<i>`.
pub const FP_BASE: u8 = 32;

/// A value an op reads.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// Guest register, `0..64` (see the module docs).
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
    /// Guest register, `0..64`.
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
    /// `a & !b`
    Andn,
    /// `a | !b`
    Orn,
    /// `!(a ^ b)`
    Xnor,
    /// Signed minimum.
    Min,
    /// Signed maximum.
    Max,
    /// Unsigned minimum.
    MinU,
    /// Unsigned maximum.
    MaxU,
    /// Rotate left.
    Rol,
    /// Rotate right.
    Ror,
    /// Rotate the low 32 bits left, sign-extend.
    RolW,
    /// Rotate the low 32 bits right, sign-extend.
    RorW,
}

/// One-operand operations (RISC-V Zbb).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Leading zeros of 64 bits.
    Clz,
    /// Trailing zeros of 64 bits (64 for 0).
    Ctz,
    /// Set bits.
    Cpop,
    /// Leading zeros of the low 32 bits.
    ClzW,
    /// Trailing zeros of the low 32 bits (32 for 0).
    CtzW,
    /// Set bits of the low 32 bits.
    CpopW,
    /// Byte swap.
    Rev8,
    /// Each byte becomes 0xff if non-zero, else 0.
    OrcB,
    /// Sign-extend the low byte.
    SextB,
    /// Sign-extend the low halfword.
    SextH,
    /// Zero-extend the low halfword.
    ZextH,
}

/// Read-modify-write operations of [`IrOp::Amo`]; see [`eval_amo`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum AtomicOp {
    Swap,
    Add,
    And,
    Or,
    Xor,
    Min,
    Max,
    MinU,
    MaxU,
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

/// Bits of [`MemAccess::flags`].
pub mod mem_flag {
    /// The access must be naturally aligned: a misaligned one misses the TLB fast path and the
    /// host raises the fault.
    pub const ALIGNED: u8 = 1 << 0;
}

/// Width, signedness and translation mode of a memory access.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAccess {
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// Sign-extend a load narrower than 8 bytes (ignored for stores).
    pub signed: bool,
    /// The TLB mode, `< MMU_MODES` (chosen by the frontend: privilege, `MPRV`, `SUM`).
    pub mmu: u8,
    /// [`mem_flag`] bits.
    pub flags: u8,
}

impl MemAccess {
    /// A plain access of `size` bytes in mode `mmu`.
    pub const fn new(size: u8, signed: bool, mmu: u8) -> Self {
        MemAccess { size, signed, mmu, flags: 0 }
    }
    /// Whether the access must be aligned.
    pub const fn aligned(self) -> bool {
        self.flags & mem_flag::ALIGNED != 0
    }
}

/// What a helper may touch, so a code generator spills and reloads only what it must (QEMU's
/// `TCG_CALL_NO_*`). A helper with no bits set may read and write every register, raise a trap
/// and end the block.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HelperFlags(pub u32);

impl HelperFlags {
    /// Reads no guest register: cached registers need not be written back before the call
    /// (`pc` and `instret` are exact at every host call whatever the flags: a helper may trap).
    /// The op's flags are the helper table entry's.
    pub const NO_REG_READ: HelperFlags = HelperFlags(1 << 0);
    /// Writes no guest register (other than its `dst`): cached registers stay valid.
    pub const NO_REG_WRITE: HelperFlags = HelperFlags(1 << 1);
    /// Always answers `Flow::Continue`.
    pub const NO_EXIT: HelperFlags = HelperFlags(1 << 2);
    /// Reads and writes `cpu.fcsr`, and of the state nothing else (implies `NO_REG_READ` and
    /// `NO_REG_WRITE`); may still exit unless `NO_EXIT` is set too.
    pub const FP: HelperFlags = HelperFlags(1 << 3 | 1 << 1 | 1);
    /// A function of its arguments alone (implies `NO_REG_READ`, `NO_REG_WRITE` and `NO_EXIT`).
    pub const PURE: HelperFlags = HelperFlags(1 << 4 | 1 << 2 | 1 << 1 | 1);

    /// Both sets of bits.
    pub const fn union(self, other: HelperFlags) -> HelperFlags {
        HelperFlags(self.0 | other.0)
    }
    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: HelperFlags) -> bool {
        self.0 & other.0 == other.0
    }
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
    /// `dst = op(src)`.
    Un {
        /// Operation.
        op: UnOp,
        /// Destination.
        dst: Dest,
        /// Operand.
        src: Operand,
    },
    /// `dst = if cond(a, b) { t } else { f }`.
    Select {
        /// Destination.
        dst: Dest,
        /// Comparison.
        cond: Cond,
        /// Left operand of the comparison.
        a: Operand,
        /// Right operand of the comparison.
        b: Operand,
        /// Value when the condition holds.
        t: Operand,
        /// Value otherwise.
        f: Operand,
    },
    /// Atomic read-modify-write (see the module docs).
    Amo {
        /// Operation.
        op: AtomicOp,
        /// Gets the old value.
        dst: Dest,
        /// Address.
        addr: Operand,
        /// Second operand.
        src: Operand,
        /// Width (4 or 8) and mode; always aligned.
        access: MemAccess,
        /// Ordering.
        order: MemoryOrder,
        /// Position, for exact state on a fault.
        at: At,
    },
    /// Load-reserved (see the module docs).
    LoadReserved {
        /// Destination.
        dst: Dest,
        /// Address.
        addr: Operand,
        /// Width (4 or 8) and mode; always aligned.
        access: MemAccess,
        /// Ordering.
        order: MemoryOrder,
        /// Position.
        at: At,
    },
    /// Store-conditional (see the module docs).
    StoreConditional {
        /// Gets 0 on success, 1 on failure.
        dst: Dest,
        /// Address.
        addr: Operand,
        /// Value to store.
        src: Operand,
        /// Width (4 or 8) and mode; always aligned.
        access: MemAccess,
        /// Ordering.
        order: MemoryOrder,
        /// Position.
        at: At,
    },
    /// Orders memory accesses: those of the classes in `pred` before those in `succ`
    /// (bits of [`fence`]).
    Fence {
        /// Classes before.
        pred: u8,
        /// Classes after.
        succ: u8,
    },
    /// Calls host helper `id` (through [`HostCalls::helpers`](crate::HostCalls::helpers)) with
    /// three arguments and a constant; writes its value to `dst` if any.
    ///
    /// Helper ids are defined by the host's frontend; an engine passes unknown ones through the
    /// table, and may replace ids it knows with inline code of the same meaning. The host's answer
    /// may end the block (see [`Flow`](crate::Flow)) unless `flags` has `NO_EXIT`.
    Helper {
        /// Host-defined helper number: an index into the helper table.
        id: u32,
        /// What the helper may touch.
        flags: HelperFlags,
        /// Where the helper's value goes.
        dst: ROption<Dest>,
        /// Arguments.
        args: [Operand; 3],
        /// A constant argument.
        imm: u64,
        /// Position, for exact state.
        at: At,
    },
}

/// Access classes of [`IrOp::Fence`].
pub mod fence {
    /// Memory reads.
    pub const R: u8 = 1 << 0;
    /// Memory writes.
    pub const W: u8 = 1 << 1;
    /// Device input.
    pub const I: u8 = 1 << 2;
    /// Device output.
    pub const O: u8 = 1 << 3;
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
    /// End the run after this block with `cpu.pc = next`: the host has work to do before the
    /// guest goes on (a mapping or translation context changed). The engine returns
    /// `ExitReason::ExitRequested`.
    Exit {
        /// Next pc.
        next: u64,
    },
}

/// One translated guest basic block.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct IrBlock {
    /// Guest virtual pc of the first instruction.
    pub pc: u64,
    /// Guest physical address of the first byte. With `pc` and `flags`, the key of the
    /// translation: its constants and targets are virtual, so one physical block mapped at two
    /// virtual addresses is two translations.
    pub phys_pc: u64,
    /// The `cpu.tb_flags` the block was lowered under.
    pub flags: u32,
    /// Bytes of guest code covered, from `pc`.
    pub len: u32,
    /// Guest instructions covered (all retire when the block completes).
    pub insn_count: u32,
    /// Guest physical pages (page addresses) the code lies on; `pages[1]` is [`NO_PAGE`] unless
    /// an instruction crosses into a second page. `invalidate(Pages)` names these.
    pub pages: [u64; 2],
    /// The straight-line body.
    pub ops: RVec<IrOp>,
    /// How the block ends.
    pub term: Terminator,
}

/// `IrBlock::pages[1]` when the block lies on one page.
pub const NO_PAGE: u64 = u64::MAX;

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
        BinOp::Andn => a & !b,
        BinOp::Orn => a | !b,
        BinOp::Xnor => !(a ^ b),
        BinOp::Min => (a as i64).min(b as i64) as u64,
        BinOp::Max => (a as i64).max(b as i64) as u64,
        BinOp::MinU => a.min(b),
        BinOp::MaxU => a.max(b),
        BinOp::Rol => a.rotate_left((b & 63) as u32),
        BinOp::Ror => a.rotate_right((b & 63) as u32),
        BinOp::RolW => sx32((a as u32).rotate_left((b & 31) as u32)),
        BinOp::RorW => sx32((a as u32).rotate_right((b & 31) as u32)),
    }
}

/// Evaluates a one-operand op: the reference for every [`UnOp`].
#[inline(always)]
pub fn eval_un(op: UnOp, a: u64) -> u64 {
    match op {
        UnOp::Clz => a.leading_zeros() as u64,
        UnOp::Ctz => a.trailing_zeros() as u64,
        UnOp::Cpop => a.count_ones() as u64,
        UnOp::ClzW => (a as u32).leading_zeros() as u64,
        UnOp::CtzW => (a as u32).trailing_zeros() as u64,
        UnOp::CpopW => (a as u32).count_ones() as u64,
        UnOp::Rev8 => a.swap_bytes(),
        UnOp::OrcB => {
            let mut r = 0;
            for i in 0..8 {
                if (a >> (8 * i)) & 0xff != 0 {
                    r |= 0xff << (8 * i);
                }
            }
            r
        }
        UnOp::SextB => a as i8 as i64 as u64,
        UnOp::SextH => a as i16 as i64 as u64,
        UnOp::ZextH => a as u16 as u64,
    }
}

/// The value an [`IrOp::Amo`] of `size` (4 or 8) bytes stores, given the old memory value and
/// `src`. Only the low `size` bytes of the result matter; comparisons are at `size`.
#[inline]
pub fn eval_amo(op: AtomicOp, size: u8, old: u64, src: u64) -> u64 {
    let (o, s) = if size == 4 {
        (old as u32 as i32 as i64 as u64, src as u32 as i32 as i64 as u64)
    } else {
        (old, src)
    };
    let (ou, su) = if size == 4 { (old as u32 as u64, src as u32 as u64) } else { (old, src) };
    match op {
        AtomicOp::Swap => src,
        AtomicOp::Add => old.wrapping_add(src),
        AtomicOp::And => old & src,
        AtomicOp::Or => old | src,
        AtomicOp::Xor => old ^ src,
        AtomicOp::Min => (o as i64).min(s as i64) as u64,
        AtomicOp::Max => (o as i64).max(s as i64) as u64,
        AtomicOp::MinU => ou.min(su),
        AtomicOp::MaxU => ou.max(su),
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
    fn bit_manipulation_reference() {
        assert_eq!(eval_bin(BinOp::RorW, 1, 1), 0xffff_ffff_8000_0000);
        assert_eq!(eval_bin(BinOp::Rol, 1 << 63, 1), 1);
        assert_eq!(eval_bin(BinOp::Min, u64::MAX, 1), u64::MAX);
        assert_eq!(eval_bin(BinOp::MinU, u64::MAX, 1), 1);
        assert_eq!(eval_un(UnOp::Ctz, 0), 64);
        assert_eq!(eval_un(UnOp::CtzW, 1 << 40), 32);
        assert_eq!(eval_un(UnOp::OrcB, 0x0100_0000_0000_3000), 0xff00_0000_0000_ff00);
        assert_eq!(eval_un(UnOp::SextH, 0x8000), 0xffff_ffff_ffff_8000);
    }

    #[test]
    fn amo_comparisons_are_at_the_access_width() {
        assert_eq!(eval_amo(AtomicOp::Min, 4, 0x8000_0000, 1) as u32, 0x8000_0000);
        assert_eq!(eval_amo(AtomicOp::MinU, 4, 0x1_0000_0005, 7) as u32, 5);
        assert_eq!(eval_amo(AtomicOp::Max, 8, u64::MAX, 0), 0);
        assert_eq!(eval_amo(AtomicOp::Add, 4, 0xffff_ffff, 1) as u32, 0);
        assert_eq!(eval_amo(AtomicOp::Swap, 8, 1, 2), 2);
    }

    #[test]
    fn word_shifts_sign_extend() {
        assert_eq!(eval_bin(BinOp::ShlW, 1, 31), 0xffff_ffff_8000_0000);
        assert_eq!(eval_bin(BinOp::SarW, 0x8000_0000, 4), 0xffff_ffff_f800_0000);
        assert_eq!(eval_bin(BinOp::ShrW, 0x8000_0000, 36), 0x0800_0000);
    }
}
