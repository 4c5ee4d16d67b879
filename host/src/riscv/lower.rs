//! Lowering: one guest basic block to one [`IrBlock`].
//!
//! [`translate`] decodes instructions from a start pc until one that changes control flow, the
//! instruction cap, the end of the start page, or a fetch fault, and emits the IR for each. Complex
//! instructions become helper calls (see [`helper`](crate::riscv::helper)); the rules engines rely
//! on (no writes to `x0`, exact [`At`]s) are kept here. Instructions are 2 or 4 bytes long (the C
//! extension), so offsets, fall-through pcs and link values all come from each one's own length.
//!
//! F and D: `f` registers are `Reg(FP_BASE + n)`. Loads, stores, moves and double sign injection
//! are plain IR (a loaded or moved single is NaN-boxed by ORing in the high ones); the arithmetic
//! is the `Fp` helper (`FpDyn` for the dynamic rounding mode). The context says whether FS is Off
//! (every F/D instruction is illegal) or Dirty; when it is not, the first instruction that writes
//! F/D state ends the block with `FpDirty`, which sets FS and redirects to it.

use vm_plugin_api::abi_stable::std_types::{ROption, RVec};
use vm_plugin_api::ir::{
    At, AtomicOp, BinOp, Dest, FP_BASE, IrOp, MemAccess, NO_PAGE, Operand, Terminator, fence, mem_flag,
};
use vm_plugin_api::{IrBlock, MemoryOrder};

use crate::riscv::decode::{
    self, AmoOp, CsrOp, Decoded, FpArithOp, FpCond, FpFmt, FusedOp, Insn, IntFmt, Rounding, SignOp,
};
use crate::riscv::fpu::{self, FpOp};
use crate::riscv::helper::{CSR_NO_READ, CSR_NO_WRITE, CSR_RD_SHIFT, Helper};
use crate::riscv::tlb;

/// Most guest instructions in one block (bounds interrupt latency).
pub const MAX_BLOCK_INSNS: u32 = 64;

/// A block never starts an instruction on a page other than its first: that page's mapping or
/// contents may change independently of the first's. Only a 4-byte instruction in the page's last
/// halfword reads the next page, as its own fetch must; if that faults, the block ends before it.
const PAGE_SHIFT: u32 = 12;

/// Translates the block at `pc` under translation context `flags` (see [`tlb::data_mmu`]).
/// `fetch16(addr)` returns the 16-bit halfword at guest virtual address `addr`, or None if fetching
/// there faults. Returns None only when the first instruction cannot be fetched; a fetch failure
/// later ends the block before that instruction (with a Jump to it, so the fault is raised when it
/// is executed). The caller fills in `phys_pc` and `pages`.
pub fn translate(pc: u64, flags: u32, fetch16: &mut dyn FnMut(u64) -> Option<u16>) -> Option<IrBlock> {
    let mut ops = RVec::new();
    let mut len = 0u32;
    let mut insn_count = 0u32;
    let term = loop {
        let insn_pc = pc.wrapping_add(u64::from(len));
        if insn_count > 0 && (insn_count == MAX_BLOCK_INSNS || insn_pc >> PAGE_SHIFT != pc >> PAGE_SHIFT) {
            break Terminator::Jump { target: insn_pc };
        }
        let Some(decoded) = decode::fetch(insn_pc, fetch16) else {
            if insn_count == 0 {
                return None;
            }
            break Terminator::Jump { target: insn_pc };
        };
        let at = At { pc_offset: len, insn_index: insn_count };
        len += u32::from(decoded.len);
        insn_count += 1;
        let next_pc = insn_pc.wrapping_add(u64::from(decoded.len));
        if let Some(term) = lower(&mut ops, decoded, insn_pc, next_pc, at, flags) {
            break term;
        }
    };
    Some(IrBlock { pc, phys_pc: pc, flags, len, insn_count, pages: [pc & !0xfff, NO_PAGE], ops, term })
}

/// The IR ordering of an atomic's `aq`/`rl` bits.
fn order(aq: bool, rl: bool) -> MemoryOrder {
    match (aq, rl) {
        (true, true) => MemoryOrder::SeqCst,
        (true, false) => MemoryOrder::Acquire,
        (false, true) => MemoryOrder::Release,
        (false, false) => MemoryOrder::Relaxed,
    }
}

fn atomic_op(op: AmoOp) -> AtomicOp {
    match op {
        AmoOp::Swap => AtomicOp::Swap,
        AmoOp::Add => AtomicOp::Add,
        AmoOp::Xor => AtomicOp::Xor,
        AmoOp::And => AtomicOp::And,
        AmoOp::Or => AtomicOp::Or,
        AmoOp::Min => AtomicOp::Min,
        AmoOp::Max => AtomicOp::Max,
        AmoOp::MinU => AtomicOp::MinU,
        AmoOp::MaxU => AtomicOp::MaxU,
    }
}

/// The IR access classes of a `fence` set (the instruction's bits are I, O, R, W from 3 to 0).
fn fence_set(set: u8) -> u8 {
    let bit = |b: u8, class: u8| if set & b != 0 { class } else { 0 };
    bit(8, fence::I) | bit(4, fence::O) | bit(2, fence::R) | bit(1, fence::W)
}

/// Emits the ops of one instruction; returns the terminator if it ends the block.
fn lower(
    ops: &mut RVec<IrOp>,
    decoded: Decoded,
    pc: u64,
    next_pc: u64,
    at: At,
    flags: u32,
) -> Option<Terminator> {
    let mmu = tlb::data_mmu(flags);
    // A temporary for values with nowhere else to go; each instruction uses at most this one.
    const TMP: u8 = 0;
    let reg = Operand::Reg;
    let target = |imm: i64| pc.wrapping_add(imm as u64);
    match decoded.insn {
        Insn::Lui { rd, imm } => mov(ops, rd, Operand::Imm(imm)),
        Insn::Auipc { rd, imm } => mov(ops, rd, Operand::Imm(target(imm) as i64)),
        Insn::Jal { rd, imm } => {
            mov(ops, rd, Operand::Imm(next_pc as i64));
            return Some(Terminator::Jump { target: target(imm) });
        }
        Insn::Jalr { rd, rs1, imm } => {
            // The target is computed before rd is written, since rd may be rs1.
            let t = Dest::Tmp(TMP);
            ops.push(IrOp::Bin { op: BinOp::Add, dst: t, a: reg(rs1), b: Operand::Imm(imm) });
            ops.push(IrOp::Bin { op: BinOp::And, dst: t, a: Operand::Tmp(TMP), b: Operand::Imm(!1) });
            mov(ops, rd, Operand::Imm(next_pc as i64));
            return Some(Terminator::JumpIndirect { target: Operand::Tmp(TMP) });
        }
        Insn::Branch { cond, rs1, rs2, imm } => {
            return Some(Terminator::Branch {
                cond,
                a: reg(rs1),
                b: reg(rs2),
                taken: target(imm),
                not_taken: next_pc,
            });
        }
        Insn::Load { rd, rs1, imm, access } => {
            // A load into x0 still accesses memory (it may fault or touch a device).
            let dst = if rd == 0 { Dest::Tmp(TMP) } else { Dest::Reg(rd) };
            let access = MemAccess { mmu, ..access };
            ops.push(IrOp::Load { dst, base: reg(rs1), offset: imm, access, at });
        }
        Insn::Store { rs1, rs2, imm, size } => {
            let access = MemAccess::new(size, false, mmu);
            ops.push(IrOp::Store { src: reg(rs2), base: reg(rs1), offset: imm, access, at });
        }
        // Atomics access memory even when rd is x0 (the result goes to a temporary then).
        Insn::LoadReserved { size, rd, rs1, aq, rl } => {
            let dst = if rd == 0 { Dest::Tmp(TMP) } else { Dest::Reg(rd) };
            let access = MemAccess { size, signed: true, mmu, flags: mem_flag::ALIGNED };
            ops.push(IrOp::LoadReserved { dst, addr: reg(rs1), access, order: order(aq, rl), at });
        }
        Insn::StoreConditional { size, rd, rs1, rs2, aq, rl } => {
            let dst = if rd == 0 { Dest::Tmp(TMP) } else { Dest::Reg(rd) };
            let access = MemAccess { size, signed: true, mmu, flags: mem_flag::ALIGNED };
            let order = order(aq, rl);
            ops.push(IrOp::StoreConditional { dst, addr: reg(rs1), src: reg(rs2), access, order, at });
        }
        Insn::Amo { op, size, rd, rs1, rs2, aq, rl } => {
            let dst = if rd == 0 { Dest::Tmp(TMP) } else { Dest::Reg(rd) };
            let access = MemAccess { size, signed: true, mmu, flags: mem_flag::ALIGNED };
            let (op, order) = (atomic_op(op), order(aq, rl));
            ops.push(IrOp::Amo { op, dst, addr: reg(rs1), src: reg(rs2), access, order, at });
        }
        Insn::OpImm { op, rd, rs1, imm } if rd != 0 => {
            ops.push(IrOp::Bin { op, dst: Dest::Reg(rd), a: reg(rs1), b: Operand::Imm(imm) });
        }
        Insn::Op { op, rd, rs1, rs2 } if rd != 0 => {
            ops.push(IrOp::Bin { op, dst: Dest::Reg(rd), a: reg(rs1), b: reg(rs2) });
        }
        Insn::OpImm { .. } | Insn::Op { .. } => {}
        // `pause` and other fences with an empty set order nothing.
        Insn::Fence { pred, succ, .. } if pred & succ == 0 && (pred == 0 || succ == 0) => {}
        Insn::Fence { pred, succ, .. } => {
            ops.push(IrOp::Fence { pred: fence_set(pred), succ: fence_set(succ) })
        }
        // Stores to pages holding translated code invalidate it as they happen (see the host's
        // code-page tracking), so `fence.i` only has to end the block, as on QEMU.
        Insn::FenceI => return Some(Terminator::Jump { target: next_pc }),
        // A CSR write can enable a pending interrupt (mstatus, mie), which must be taken before
        // the next instruction: the block ends there so the engine checks for it.
        Insn::Csr { op, rd, rs1, csr } => {
            if csr_op(ops, op, rd, reg(rs1), rs1 == 0, csr, decoded.bits, at) {
                return Some(Terminator::Jump { target: next_pc });
            }
        }
        Insn::CsrImm { op, rd, zimm, csr } => {
            if csr_op(ops, op, rd, Operand::Imm(i64::from(zimm)), zimm == 0, csr, decoded.bits, at) {
                return Some(Terminator::Jump { target: next_pc });
            }
        }
        // The mappings the rest of the block was fetched under may be gone: the block ends, and the
        // host makes the engine drop what it keyed by virtual address before the next one.
        Insn::SfenceVma { rs1, rs2 } => {
            let imm = u64::from(decoded.bits) | u64::from(rs1 == 0) << 32 | u64::from(rs2 == 0) << 33;
            helper(ops, Helper::SfenceVma, [reg(rs1), reg(rs2)], imm, at);
            return Some(Terminator::Jump { target: next_pc });
        }
        Insn::Ecall => return Some(end_with_helper(ops, Helper::Ecall, decoded.bits, next_pc, at)),
        Insn::Ebreak => return Some(end_with_helper(ops, Helper::Ebreak, decoded.bits, next_pc, at)),
        Insn::Mret => return Some(end_with_helper(ops, Helper::Mret, decoded.bits, next_pc, at)),
        Insn::Sret => return Some(end_with_helper(ops, Helper::Sret, decoded.bits, next_pc, at)),
        Insn::Wfi => return Some(end_with_helper(ops, Helper::Wfi, decoded.bits, next_pc, at)),
        Insn::Illegal { bits } => return Some(end_with_helper(ops, Helper::Illegal, bits, next_pc, at)),
        insn @ (Insn::FpLoad { .. }
        | Insn::FpStore { .. }
        | Insn::FpFused { .. }
        | Insn::FpArith { .. }
        | Insn::FpSqrt { .. }
        | Insn::FpSign { .. }
        | Insn::FpMinMax { .. }
        | Insn::FpCompare { .. }
        | Insn::FpClass { .. }
        | Insn::FpToInt { .. }
        | Insn::IntToFp { .. }
        | Insn::FpConvert { .. }
        | Insn::FpMoveToInt { .. }
        | Insn::FpMoveFromInt { .. }) => return lower_fp(ops, insn, decoded.bits, pc, next_pc, at, flags),
    }
    None
}

/// The high half of a NaN-boxed single.
const BOX: i64 = 0xffff_ffff_0000_0000_u64 as i64;

/// Emits an F or D instruction under context `flags`; returns the terminator if it ends the block.
fn lower_fp(
    ops: &mut RVec<IrOp>,
    insn: Insn,
    bits: u32,
    pc: u64,
    next_pc: u64,
    at: At,
    flags: u32,
) -> Option<Terminator> {
    // FS = Off: every F and D instruction traps as an unknown encoding does, with the fetched
    // bits (16 for a compressed one) for mtval.
    if flags & tlb::TB_FP == 0 {
        return Some(end_with_helper(ops, Helper::Illegal, bits, next_pc, at));
    }
    // Only stores, fmv.x and fclass leave the F/D state alone (compares and conversions to an
    // integer may set fflags).
    let writes_state =
        !matches!(insn, Insn::FpStore { .. } | Insn::FpMoveToInt { .. } | Insn::FpClass { .. });
    if writes_state && flags & tlb::TB_FP_DIRTY == 0 {
        helper(ops, Helper::FpDirty, [Operand::Imm(0), Operand::Imm(0)], u64::from(bits), at);
        return Some(Terminator::Jump { target: pc });
    }
    let mmu = tlb::data_mmu(flags);
    let (f, fdst, x) = (|r: u8| Operand::Reg(FP_BASE + r), |r: u8| Dest::Reg(FP_BASE + r), Operand::Reg);
    let xdst = |rd: u8| if rd == 0 { ROption::RNone } else { ROption::RSome(Dest::Reg(rd)) };
    let zero = Operand::Imm(0);
    let size = |fmt| if fmt == FpFmt::S { 4 } else { 8 };
    let call = |ops: &mut RVec<IrOp>, op, fmt, rm, dst, args| {
        fp_helper(ops, op, fmt == FpFmt::D, rm, dst, args, bits, at)
    };
    match insn {
        Insn::FpLoad { fmt, fd, rs1, imm } => {
            let access = MemAccess::new(size(fmt), false, mmu);
            ops.push(IrOp::Load { dst: fdst(fd), base: x(rs1), offset: imm, access, at });
            if fmt == FpFmt::S {
                ops.push(IrOp::Bin { op: BinOp::Or, dst: fdst(fd), a: f(fd), b: Operand::Imm(BOX) });
            }
        }
        Insn::FpStore { fmt, rs1, fs2, imm } => {
            let access = MemAccess::new(size(fmt), false, mmu);
            ops.push(IrOp::Store { src: f(fs2), base: x(rs1), offset: imm, access, at });
        }
        Insn::FpFused { op, fmt, fd, fs1, fs2, fs3, rm } => {
            let op = match op {
                FusedOp::MAdd => FpOp::MAdd,
                FusedOp::MSub => FpOp::MSub,
                FusedOp::NMSub => FpOp::NMSub,
                FusedOp::NMAdd => FpOp::NMAdd,
            };
            call(ops, op, fmt, rm, ROption::RSome(fdst(fd)), [f(fs1), f(fs2), f(fs3)]);
        }
        Insn::FpArith { op, fmt, fd, fs1, fs2, rm } => {
            let op = match op {
                FpArithOp::Add => FpOp::Add,
                FpArithOp::Sub => FpOp::Sub,
                FpArithOp::Mul => FpOp::Mul,
                FpArithOp::Div => FpOp::Div,
            };
            call(ops, op, fmt, rm, ROption::RSome(fdst(fd)), [f(fs1), f(fs2), zero]);
        }
        Insn::FpSqrt { fmt, fd, fs1, rm } => {
            call(ops, FpOp::Sqrt, fmt, rm, ROption::RSome(fdst(fd)), [f(fs1), zero, zero]);
        }
        // Doubles need no unboxing: the sign bit is moved with masks (through temporaries, as fd
        // may be fs1 or fs2).
        Insn::FpSign { op, fmt: FpFmt::D, fd, fs1, fs2 } => {
            let (t0, t1) = (Dest::Tmp(0), Dest::Tmp(1));
            let sign = Operand::Imm(i64::MIN);
            ops.push(IrOp::Bin { op: BinOp::And, dst: t1, a: f(fs2), b: sign });
            if op == SignOp::Sgnjn {
                ops.push(IrOp::Bin { op: BinOp::Xor, dst: t1, a: Operand::Tmp(1), b: sign });
            }
            if op == SignOp::Sgnjx {
                ops.push(IrOp::Bin { op: BinOp::Xor, dst: fdst(fd), a: f(fs1), b: Operand::Tmp(1) });
            } else {
                ops.push(IrOp::Bin { op: BinOp::And, dst: t0, a: f(fs1), b: Operand::Imm(i64::MAX) });
                ops.push(IrOp::Bin { op: BinOp::Or, dst: fdst(fd), a: Operand::Tmp(0), b: Operand::Tmp(1) });
            }
        }
        Insn::FpSign { op, fmt, fd, fs1, fs2 } => {
            let op = match op {
                SignOp::Sgnj => FpOp::Sgnj,
                SignOp::Sgnjn => FpOp::Sgnjn,
                SignOp::Sgnjx => FpOp::Sgnjx,
            };
            call(ops, op, fmt, Rounding::Rne, ROption::RSome(fdst(fd)), [f(fs1), f(fs2), zero]);
        }
        Insn::FpMinMax { max, fmt, fd, fs1, fs2 } => {
            let op = if max { FpOp::Max } else { FpOp::Min };
            call(ops, op, fmt, Rounding::Rne, ROption::RSome(fdst(fd)), [f(fs1), f(fs2), zero]);
        }
        // With rd = x0 the call still happens: it may set fflags.
        Insn::FpCompare { cond, fmt, rd, fs1, fs2 } => {
            let op = match cond {
                FpCond::Eq => FpOp::Eq,
                FpCond::Lt => FpOp::Lt,
                FpCond::Le => FpOp::Le,
            };
            call(ops, op, fmt, Rounding::Rne, xdst(rd), [f(fs1), f(fs2), zero]);
        }
        Insn::FpClass { rd: 0, .. } => {}
        Insn::FpClass { fmt, rd, fs1 } => {
            call(ops, FpOp::Class, fmt, Rounding::Rne, xdst(rd), [f(fs1), zero, zero])
        }
        Insn::FpToInt { fmt, int, rd, fs1, rm } => {
            let op = match int {
                IntFmt::W => FpOp::ToW,
                IntFmt::Wu => FpOp::ToWu,
                IntFmt::L => FpOp::ToL,
                IntFmt::Lu => FpOp::ToLu,
            };
            call(ops, op, fmt, rm, xdst(rd), [f(fs1), zero, zero]);
        }
        Insn::IntToFp { fmt, int, fd, rs1, rm } => {
            let op = match int {
                IntFmt::W => FpOp::FromW,
                IntFmt::Wu => FpOp::FromWu,
                IntFmt::L => FpOp::FromL,
                IntFmt::Lu => FpOp::FromLu,
            };
            let exact = fmt == FpFmt::D && matches!(int, IntFmt::W | IntFmt::Wu);
            call(ops, op, fmt, exact_rm(exact, rm), ROption::RSome(fdst(fd)), [x(rs1), zero, zero]);
        }
        Insn::FpConvert { to, fd, fs1, rm } => {
            let rm = exact_rm(to == FpFmt::D, rm);
            call(ops, FpOp::Convert, to, rm, ROption::RSome(fdst(fd)), [f(fs1), zero, zero]);
        }
        Insn::FpMoveToInt { rd: 0, .. } => {}
        Insn::FpMoveToInt { fmt: FpFmt::S, rd, fs1 } => {
            ops.push(IrOp::Bin { op: BinOp::AddW, dst: Dest::Reg(rd), a: f(fs1), b: zero });
        }
        Insn::FpMoveToInt { rd, fs1, .. } => ops.push(IrOp::Mov { dst: Dest::Reg(rd), src: f(fs1) }),
        Insn::FpMoveFromInt { fmt: FpFmt::S, fd, rs1 } => {
            ops.push(IrOp::Bin { op: BinOp::Or, dst: fdst(fd), a: x(rs1), b: Operand::Imm(BOX) });
        }
        Insn::FpMoveFromInt { fd, rs1, .. } => ops.push(IrOp::Mov { dst: fdst(fd), src: x(rs1) }),
        _ => unreachable!("not an F or D instruction: {insn:?}"),
    }
    None
}

/// The rounding mode of a conversion that is `exact` (to D from a word or from S): such a one
/// never reads `frm`, so an invalid one does not make it illegal (as on QEMU and Spike).
fn exact_rm(exact: bool, rm: Rounding) -> Rounding {
    if exact && rm == Rounding::Dyn { Rounding::Rne } else { rm }
}

/// An `Fp` helper call (`FpDyn` for the dynamic rounding mode).
#[allow(clippy::too_many_arguments)]
fn fp_helper(
    ops: &mut RVec<IrOp>,
    op: FpOp,
    double: bool,
    rm: Rounding,
    dst: ROption<Dest>,
    args: [Operand; 3],
    bits: u32,
    at: At,
) {
    let (id, rm) = match rm {
        Rounding::Rne => (Helper::Fp, 0),
        Rounding::Rtz => (Helper::Fp, 1),
        Rounding::Rdn => (Helper::Fp, 2),
        Rounding::Rup => (Helper::Fp, 3),
        Rounding::Rmm => (Helper::Fp, 4),
        Rounding::Dyn => (Helper::FpDyn, 0),
    };
    let imm = fpu::imm(op, double, rm, bits);
    ops.push(IrOp::Helper { id: id.id(), flags: id.flags(), dst, args, imm, at });
}

/// `rd = src`, dropped when rd is x0.
fn mov(ops: &mut RVec<IrOp>, rd: u8, src: Operand) {
    if rd != 0 {
        ops.push(IrOp::Mov { dst: Dest::Reg(rd), src });
    }
}

/// A CSR access. `src_is_zero` says the source field is x0 or a zero immediate, which for
/// `csrrs`/`csrrc` means the CSR is not written (so reading a read-only CSR is legal). Returns
/// whether the instruction writes the CSR.
#[allow(clippy::too_many_arguments)]
fn csr_op(
    ops: &mut RVec<IrOp>,
    op: CsrOp,
    rd: u8,
    src: Operand,
    src_is_zero: bool,
    csr: u16,
    bits: u32,
    at: At,
) -> bool {
    let (id, flags) = match op {
        // csrrw with rd = x0 must not read the CSR (reads can have side effects).
        CsrOp::Rw => (Helper::CsrRw, if rd == 0 { CSR_NO_READ } else { 0 }),
        CsrOp::Rs => (Helper::CsrRs, if src_is_zero { CSR_NO_WRITE } else { 0 }),
        CsrOp::Rc => (Helper::CsrRc, if src_is_zero { CSR_NO_WRITE } else { 0 }),
    };
    let dst = if rd == 0 { ROption::RNone } else { ROption::RSome(Dest::Reg(rd)) };
    // The helper gets rd too: when the write changes the translation context it completes the
    // instruction itself (rd, pc) and redirects.
    let imm = u64::from(csr) | flags | u64::from(rd) << CSR_RD_SHIFT | u64::from(bits) << 32;
    let args = [src, Operand::Imm(0), Operand::Imm(0)];
    ops.push(IrOp::Helper { id: id.id(), flags: id.flags(), dst, args, imm, at });
    flags & CSR_NO_WRITE == 0
}

/// A helper call with no result that continues the block.
fn helper(ops: &mut RVec<IrOp>, id: Helper, args: [Operand; 2], imm: u64, at: At) {
    let args = [args[0], args[1], Operand::Imm(0)];
    ops.push(IrOp::Helper { id: id.id(), flags: id.flags(), dst: ROption::RNone, args, imm, at });
}

/// A helper call that ends the block, given the instruction's bits. The helper redirects or
/// exits, so the Jump is only the terminator the IR requires.
fn end_with_helper(ops: &mut RVec<IrOp>, id: Helper, bits: u32, next_pc: u64, at: At) -> Terminator {
    helper(ops, id, [Operand::Imm(0), Operand::Imm(0)], u64::from(bits), at);
    Terminator::Jump { target: next_pc }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_plugin_api::ir::{Cond, HelperFlags, MAX_TEMPS};

    /// Machine mode, no translation: the context of every test block unless it says otherwise.
    const M: u32 = 3 | (tlb::MMU_M as u32) << 2;

    const NOP: u32 = 0x0000_0013; // addi x0, x0, 0
    const ECALL: u32 = 0x0000_0073;
    const BASE: u64 = 0x8000_0000;

    /// Translates `words` placed at `base`; fetching anywhere else faults.
    fn translate_at(base: u64, words: &[u32]) -> Option<IrBlock> {
        let halves: Vec<u16> = words.iter().flat_map(|&w| [w as u16, (w >> 16) as u16]).collect();
        translate_halves(base, &halves)
    }

    /// Translates `halves` (16-bit parcels, so 2- and 4-byte instructions mix) placed at `base`;
    /// fetching anywhere else faults.
    fn translate_halves(base: u64, halves: &[u16]) -> Option<IrBlock> {
        translate_under(M, base, halves)
    }

    /// As `translate_halves`, under context `flags`.
    fn translate_under(flags: u32, base: u64, halves: &[u16]) -> Option<IrBlock> {
        let mut fetch16 = |addr: u64| {
            let offset = addr.checked_sub(base)?;
            assert!(offset.is_multiple_of(2), "odd fetch at {addr:#x}");
            halves.get(usize::try_from(offset / 2).ok()?).copied()
        };
        let block = translate(base, flags, &mut fetch16)?;
        check_invariants(&block);
        Some(block)
    }

    fn block(words: &[u32]) -> IrBlock {
        translate_at(BASE, words).unwrap()
    }

    /// The rules every block must keep, whatever the guest code.
    fn check_invariants(block: &IrBlock) {
        assert!(block.insn_count >= 1 && block.insn_count <= MAX_BLOCK_INSNS);
        let tmp_ok = |i: u8| usize::from(i) < MAX_TEMPS;
        let operand_ok = |o: Operand| match o {
            Operand::Reg(r) => r < 64,
            Operand::Tmp(t) => tmp_ok(t),
            Operand::Imm(_) => true,
        };
        let dest_ok = |d: Dest| match d {
            Dest::Reg(r) => r != 0 && r < 64,
            Dest::Tmp(t) => tmp_ok(t),
        };
        let at_ok = |at: At| at.pc_offset < block.len && at.insn_index < block.insn_count;
        for op in block.ops.iter() {
            let ok = match *op {
                IrOp::Mov { dst, src } => dest_ok(dst) && operand_ok(src),
                IrOp::Bin { dst, a, b, .. } => dest_ok(dst) && operand_ok(a) && operand_ok(b),
                IrOp::Load { dst, base, at, .. } => dest_ok(dst) && operand_ok(base) && at_ok(at),
                IrOp::Store { src, base, at, .. } => operand_ok(src) && operand_ok(base) && at_ok(at),
                IrOp::Helper { dst, args, at, .. } => {
                    dst.into_option().is_none_or(dest_ok) && args.iter().all(|&a| operand_ok(a)) && at_ok(at)
                }
                IrOp::LoadReserved { dst, addr, at, .. } => dest_ok(dst) && operand_ok(addr) && at_ok(at),
                IrOp::StoreConditional { dst, addr, src, at, .. } | IrOp::Amo { dst, addr, src, at, .. } => {
                    dest_ok(dst) && operand_ok(addr) && operand_ok(src) && at_ok(at)
                }
                IrOp::Fence { .. } => true,
                IrOp::Un { .. } | IrOp::Select { .. } => false,
            };
            assert!(ok, "{op:?} in {block:?}");
        }
    }

    fn at(insn_index: u32) -> At {
        At { pc_offset: insn_index * 4, insn_index }
    }

    fn helper_op(id: Helper, dst: Option<u8>, args: [Operand; 2], imm: u64, at: At) -> IrOp {
        let dst = dst.map(Dest::Reg).into();
        let args = [args[0], args[1], Operand::Imm(0)];
        IrOp::Helper { id: id.id(), flags: id.flags(), dst, args, imm, at }
    }

    /// A system instruction's helper: no arguments, its bits in `imm`.
    fn sys(id: Helper, bits: u32, at: At) -> IrOp {
        helper_op(id, None, [Operand::Imm(0); 2], u64::from(bits), at)
    }

    #[test]
    fn straight_line_code_ends_at_a_branch() {
        let b = block(&[
            0x0050_0093, // addi x1, x0, 5
            0x0010_8133, // add x2, x1, x1
            0xfe20_8ce3, // beq x1, x2, .-8
            NOP,
        ]);
        assert_eq!((b.pc, b.len, b.insn_count), (BASE, 12, 3));
        let ops: &[IrOp] = &[
            IrOp::Bin { op: BinOp::Add, dst: Dest::Reg(1), a: Operand::Reg(0), b: Operand::Imm(5) },
            IrOp::Bin { op: BinOp::Add, dst: Dest::Reg(2), a: Operand::Reg(1), b: Operand::Reg(1) },
        ];
        assert_eq!(b.ops.as_slice(), ops);
        let branch = Terminator::Branch {
            cond: Cond::Eq,
            a: Operand::Reg(1),
            b: Operand::Reg(2),
            taken: BASE,
            not_taken: BASE + 12,
        };
        assert_eq!(b.term, branch);
    }

    #[test]
    fn jal_writes_the_link_register_unless_x0() {
        let b = block(&[0x0100_006f]); // jal x0, .+16
        assert_eq!((b.len, b.insn_count), (4, 1));
        assert!(b.ops.is_empty());
        assert_eq!(b.term, Terminator::Jump { target: BASE + 16 });

        let b = block(&[NOP, 0xff1f_f0ef]); // nop; jal x1, .-16
        let link = IrOp::Mov { dst: Dest::Reg(1), src: Operand::Imm(BASE as i64 + 8) };
        assert_eq!(b.ops.as_slice(), [link]);
        assert_eq!(b.term, Terminator::Jump { target: BASE + 4 - 16 });
    }

    #[test]
    fn jalr_computes_the_target_before_writing_rd() {
        let b = block(&[0x7ff2_82e7]); // jalr x5, 2047(x5)
        let ops: &[IrOp] = &[
            IrOp::Bin { op: BinOp::Add, dst: Dest::Tmp(0), a: Operand::Reg(5), b: Operand::Imm(2047) },
            IrOp::Bin { op: BinOp::And, dst: Dest::Tmp(0), a: Operand::Tmp(0), b: Operand::Imm(!1) },
            IrOp::Mov { dst: Dest::Reg(5), src: Operand::Imm(BASE as i64 + 4) },
        ];
        assert_eq!(b.ops.as_slice(), ops);
        assert_eq!(b.term, Terminator::JumpIndirect { target: Operand::Tmp(0) });
    }

    #[test]
    fn writes_to_x0_are_dropped_but_loads_still_happen() {
        let b = block(&[
            NOP,
            0x0020_8033, // add x0, x1, x2
            0x0000_1037, // lui x0, 1
            0x0000_1017, // auipc x0, 1
            0x0000_a003, // lw x0, 0(x1)
            ECALL,
        ]);
        assert_eq!(b.insn_count, 6);
        let load = IrOp::Load {
            dst: Dest::Tmp(0),
            base: Operand::Reg(1),
            offset: 0,
            access: MemAccess::new(4, true, tlb::MMU_M),
            at: at(4),
        };
        let ecall = sys(Helper::Ecall, ECALL, at(5));
        assert_eq!(b.ops.as_slice(), [load, ecall]);
        assert_eq!(b.term, Terminator::Jump { target: BASE + 24 });
    }

    #[test]
    fn lowers_each_operation_kind() {
        let pc = BASE;
        let b = block(&[
            0x8001_009b, // addiw x1, x2, -2048
            0xfff3_3293, // sltiu x5, x6, -1
            0x43f1_5093, // srai x1, x2, 63
            0x0252_31b3, // mulhu x3, x4, x5
            0x8000_00b7, // lui x1, 0x80000
            0xfffff117,  // auipc x2, 0xfffff
            0x0000_000f, // fence
            0x0000_100f, // fence.i
        ]);
        let bin = |op, rd, a, b| IrOp::Bin { op, dst: Dest::Reg(rd), a, b };
        let ops: &[IrOp] = &[
            bin(BinOp::AddW, 1, Operand::Reg(2), Operand::Imm(-2048)),
            bin(BinOp::Sltu, 5, Operand::Reg(6), Operand::Imm(-1)),
            bin(BinOp::Sar, 1, Operand::Reg(2), Operand::Imm(63)),
            bin(BinOp::MulHU, 3, Operand::Reg(4), Operand::Reg(5)),
            IrOp::Mov { dst: Dest::Reg(1), src: Operand::Imm(-0x8000_0000) },
            IrOp::Mov { dst: Dest::Reg(2), src: Operand::Imm((pc + 20 - 0x1000) as i64) },
        ];
        assert_eq!(b.ops.as_slice(), ops);
        assert_eq!((b.len, b.insn_count), (32, 8));
        assert_eq!(b.term, Terminator::Jump { target: pc + 32 }, "fence.i ends the block");
    }

    #[test]
    fn memory_ops_carry_width_signedness_and_position() {
        let b = block(&[
            0x0011_4083, // lbu x1, 1(x2)
            0x0021_5083, // lhu x1, 2(x2)
            NOP,
            0x0041_6083, // lwu x1, 4(x2)
            0x0081_3083, // ld x1, 8(x2)
            0x0011_00a3, // sb x1, 1(x2)
            0x0011_1123, // sh x1, 2(x2)
            0xfe31_2e23, // sw x3, -4(x2)
            0xfe11_3c23, // sd x1, -8(x2)
            ECALL,
        ]);
        let load = |size, offset, i| IrOp::Load {
            dst: Dest::Reg(1),
            base: Operand::Reg(2),
            offset,
            access: MemAccess::new(size, false, tlb::MMU_M),
            at: at(i),
        };
        let store = |src, size, offset, i| IrOp::Store {
            src: Operand::Reg(src),
            base: Operand::Reg(2),
            offset,
            access: MemAccess::new(size, false, tlb::MMU_M),
            at: at(i),
        };
        let mut ld = load(8, 8, 4);
        if let IrOp::Load { access, .. } = &mut ld {
            access.signed = true;
        }
        let ops: &[IrOp] = &[
            load(1, 1, 0),
            load(2, 2, 1),
            load(4, 4, 3),
            ld,
            store(1, 1, 1, 5),
            store(1, 2, 2, 6),
            store(3, 4, -4, 7),
            store(1, 8, -8, 8),
            sys(Helper::Ecall, ECALL, at(9)),
        ];
        assert_eq!(b.ops.as_slice(), ops);
    }

    #[test]
    fn csr_instructions_pass_flags_and_end_the_block_when_they_write() {
        let (r, i) = (Operand::Reg, |v: i64| Operand::Imm(v));
        let cases = [
            (0x3051_9073, Helper::CsrRw, None, r(3), 0x305 | CSR_NO_READ, true), // csrrw x0, 0x305, x3
            (0x3401_10f3, Helper::CsrRw, Some(1), r(2), 0x340, true),            // csrrw x1, 0x340, x2
            (0xc000_2273, Helper::CsrRs, Some(4), r(0), 0xc00 | CSR_NO_WRITE, false), // csrrs x4, 0xc00, x0
            (0xfff3_22f3, Helper::CsrRs, Some(5), r(6), 0xfff, true),            // csrrs x5, 0xfff, x6
            (0x3000_33f3, Helper::CsrRc, Some(7), r(0), 0x300 | CSR_NO_WRITE, false), // csrrc x7, 0x300, x0
            (0x3000_b3f3, Helper::CsrRc, Some(7), r(1), 0x300, true),            // csrrc x7, 0x300, x1
            (0x180f_d4f3, Helper::CsrRw, Some(9), i(31), 0x180, true),           // csrrwi x9, 0x180, 31
            (0x0000_5073, Helper::CsrRw, None, i(0), CSR_NO_READ, true),         // csrrwi x0, 0x000, 0
            (0x3440_6573, Helper::CsrRs, Some(10), i(0), 0x344 | CSR_NO_WRITE, false), // csrrsi x10, 0x344, 0
            (0x1004_7073, Helper::CsrRc, None, i(8), 0x100, true),               // csrrci x0, 0x100, 8
            (0x1000_7073, Helper::CsrRc, None, i(0), 0x100 | CSR_NO_WRITE, false), // csrrci x0, 0x100, 0
        ];
        for (bits, id, dst, src, csr, writes) in cases {
            let b = block(&[bits, ECALL]);
            // rd and the instruction's bits travel in imm, for the helper's redirect and traps.
            let imm = csr | u64::from(dst.unwrap_or(0)) << CSR_RD_SHIFT | u64::from(bits) << 32;
            assert_eq!(b.ops[0], helper_op(id, dst, [src, Operand::Imm(0)], imm, at(0)), "{bits:#x}");
            if writes {
                assert_eq!((b.insn_count, b.term), (1, Terminator::Jump { target: BASE + 4 }), "{bits:#x}");
            } else {
                assert_eq!(b.insn_count, 2, "{bits:#x} continues the block");
            }
        }
    }

    #[test]
    fn sfence_vma_is_a_helper_that_ends_the_block() {
        let b = block(&[0x12c5_8073, NOP]); // sfence.vma x11, x12
        let sfence =
            helper_op(Helper::SfenceVma, None, [Operand::Reg(11), Operand::Reg(12)], 0x12c5_8073, at(0));
        assert_eq!(b.ops.as_slice(), [sfence]);
        assert_eq!((b.insn_count, b.term), (1, Terminator::Jump { target: BASE + 4 }));
        // With rs1 = x0 (all addresses) and rs2 = x0 (all address spaces), imm says so.
        let b = block(&[0x1200_0073]); // sfence.vma
        let all =
            helper_op(Helper::SfenceVma, None, [Operand::Reg(0), Operand::Reg(0)], 0x3_1200_0073, at(0));
        assert_eq!(b.ops.as_slice(), [all]);
    }

    #[test]
    fn system_instructions_end_the_block() {
        let cases = [
            (ECALL, Helper::Ecall),
            (0x0010_0073, Helper::Ebreak),
            (0x3020_0073, Helper::Mret),
            (0x1020_0073, Helper::Sret),
            (0x1050_0073, Helper::Wfi),
            (0xffff_ffff, Helper::Illegal),
            (0x0200_109b, Helper::Illegal),
        ];
        for (word, id) in cases {
            let b = block(&[NOP, word, NOP]);
            assert_eq!((b.len, b.insn_count), (8, 2), "{word:#x}");
            assert_eq!(b.ops.as_slice(), [sys(id, word, at(1))]);
            assert_eq!(b.term, Terminator::Jump { target: BASE + 8 });
        }
    }

    #[test]
    fn f_d_instructions_trap_as_illegal_with_their_bits_while_fs_is_off() {
        // One of each kind; with FS = Off each must lower exactly as an unknown encoding does.
        let words = [
            0x8001_2087, // flw f1,-2048(x2)
            0x7ff0_3fa7, // fsd f31,2047(x0)
            0xfbff_cec7, // fmsub.d f29,f31,f31,f31,rmm
            0x0031_70d3, // fadd.s f1,f2,f3
            0x5a00_1fd3, // fsqrt.d f31,f0,rtz
            0x2231_20d3, // fsgnjx.d f1,f2,f3
            0x2831_00d3, // fmin.s f1,f2,f3
            0xa231_20d3, // feq.d x1,f2,f3
            0xe201_10d3, // fclass.d x1,f2
            0xc231_00d3, // fcvt.lu.d x1,f2,rne
            0xd011_70d3, // fcvt.s.wu f1,x2
            0x4011_30d3, // fcvt.s.d f1,f2,rup
            0xe20f_80d3, // fmv.x.d x1,f31
            0xf000_00d3, // fmv.w.x f1,x0
        ];
        for word in words {
            assert!(!matches!(decode::decode(word), Insn::Illegal { .. }), "{word:#x} decodes");
            let b = block(&[NOP, word, NOP]);
            assert_eq!((b.len, b.insn_count), (8, 2), "{word:#x}");
            assert_eq!(b.ops.as_slice(), [sys(Helper::Illegal, word, at(1))], "{word:#x}");
            assert_eq!(b.term, Terminator::Jump { target: BASE + 8 });
            // With FS on, none of them is illegal.
            let halves = [NOP as u16, 0, word as u16, (word >> 16) as u16, NOP as u16, 0];
            let b = translate_under(M_FP_DIRTY, BASE, &halves).unwrap();
            assert!(!b.ops.iter().any(|op| *op == sys(Helper::Illegal, word, at(1))), "{word:#x}: {b:?}");
        }
        // The compressed ones pass their 16 bits, as a reserved compressed encoding does.
        let second = At { pc_offset: 2, insn_index: 1 };
        for half in [0x2000, 0xbf7c, 0x3ffe, 0xa002] {
            // c.fld f8,0(x8); c.fsd f15,248(x14); c.fldsp f31,504(x2); c.fsdsp f0,0(x2)
            assert!(!matches!(decode::decode16(half), Insn::Illegal { .. }), "{half:#x} decodes");
            let b = translate_halves(BASE, &[C_NOP, half, C_NOP]).unwrap();
            assert_eq!(b.ops.as_slice(), [sys(Helper::Illegal, u32::from(half), second)], "{half:#x}");
            assert_eq!((b.len, b.insn_count, b.term), (4, 2, Terminator::Jump { target: BASE + 4 }));
        }
    }

    /// Machine mode with FS = Dirty, and with FS = Initial or Clean.
    const M_FP_DIRTY: u32 = M | tlb::TB_FP | tlb::TB_FP_DIRTY;
    const M_FP_CLEAN: u32 = M | tlb::TB_FP;

    fn words_under(flags: u32, words: &[u32]) -> IrBlock {
        let halves: Vec<u16> = words.iter().flat_map(|&w| [w as u16, (w >> 16) as u16]).collect();
        translate_under(flags, BASE, &halves).unwrap()
    }

    const FP: u8 = vm_plugin_api::ir::FP_BASE;

    #[test]
    fn fp_loads_stores_moves_and_double_signs_are_plain_ir() {
        let b = words_under(
            M_FP_DIRTY,
            &[
                0x8001_2087, // flw f1,-2048(x2)
                0x7ff0_3fa7, // fsd f31,2047(x0)
                0xe00f_80d3, // fmv.x.w x1,f31
                0xf000_00d3, // fmv.w.x f1,x0
                0x2231_10d3, // fsgnjn.d f1,f2,f3
                0x2273_8353, // fmv.d f6,f7 (fsgnj.d)
                ECALL,
            ],
        );
        let (r, d, t) = (Operand::Reg, Dest::Reg, Operand::Tmp);
        let bin = |op, dst, a, b| IrOp::Bin { op, dst, a, b };
        let (sign, boxed) = (Operand::Imm(i64::MIN), Operand::Imm(0xffff_ffff_0000_0000_u64 as i64));
        let access = |size| MemAccess::new(size, false, tlb::MMU_M);
        assert_eq!(
            b.ops.as_slice(),
            [
                IrOp::Load { dst: d(FP + 1), base: r(2), offset: -2048, access: access(4), at: at(0) },
                bin(BinOp::Or, d(FP + 1), r(FP + 1), boxed),
                IrOp::Store { src: r(FP + 31), base: r(0), offset: 2047, access: access(8), at: at(1) },
                bin(BinOp::AddW, d(1), r(FP + 31), Operand::Imm(0)),
                bin(BinOp::Or, d(FP + 1), r(0), boxed),
                bin(BinOp::And, Dest::Tmp(1), r(FP + 3), sign),
                bin(BinOp::Xor, Dest::Tmp(1), t(1), sign),
                bin(BinOp::And, Dest::Tmp(0), r(FP + 2), Operand::Imm(i64::MAX)),
                bin(BinOp::Or, d(FP + 1), t(0), t(1)),
                bin(BinOp::And, Dest::Tmp(1), r(FP + 7), sign),
                bin(BinOp::And, Dest::Tmp(0), r(FP + 7), Operand::Imm(i64::MAX)),
                bin(BinOp::Or, d(FP + 6), t(0), t(1)),
                sys(Helper::Ecall, ECALL, at(6)),
            ]
        );
    }

    #[test]
    fn fp_arithmetic_calls_the_fp_helper_with_its_rounding_mode() {
        let b = words_under(
            M_FP_DIRTY,
            &[
                0x0031_70d3, // fadd.s f1,f2,f3 (dyn)
                0x5a00_1fd3, // fsqrt.d f31,f0,rtz
                0xfbff_cec7, // fmsub.d f29,f31,f31,f31,rmm
                0xa231_20d3, // feq.d x1,f2,f3
                0xc201_1053, // fcvt.w.d x0,f2,rtz
                0xd011_70d3, // fcvt.s.wu f1,x2
                0xe201_10d3, // fclass.d x1,f2
                ECALL,
            ],
        );
        let (r, d) = (Operand::Reg, Dest::Reg);
        let zero = Operand::Imm(0);
        let call = |id: Helper, dst: Option<Dest>, args, imm, at| IrOp::Helper {
            id: id.id(),
            flags: id.flags(),
            dst: dst.into(),
            args,
            imm,
            at,
        };
        assert_eq!(Helper::Fp.flags(), HelperFlags::FP.union(HelperFlags::NO_EXIT));
        assert_eq!(Helper::FpDyn.flags(), HelperFlags::FP);
        assert_eq!(
            b.ops.as_slice(),
            [
                call(
                    Helper::FpDyn,
                    Some(d(FP + 1)),
                    [r(FP + 2), r(FP + 3), zero],
                    fpu::imm(FpOp::Add, false, 0, 0x0031_70d3),
                    at(0)
                ),
                call(
                    Helper::Fp,
                    Some(d(FP + 31)),
                    [r(FP), zero, zero],
                    fpu::imm(FpOp::Sqrt, true, 1, 0x5a00_1fd3),
                    at(1)
                ),
                call(
                    Helper::Fp,
                    Some(d(FP + 29)),
                    [r(FP + 31); 3],
                    fpu::imm(FpOp::MSub, true, 4, 0xfbff_cec7),
                    at(2)
                ),
                call(
                    Helper::Fp,
                    Some(d(1)),
                    [r(FP + 2), r(FP + 3), zero],
                    fpu::imm(FpOp::Eq, true, 0, 0xa231_20d3),
                    at(3)
                ),
                // rd = x0: still called, for fflags.
                call(
                    Helper::Fp,
                    None,
                    [r(FP + 2), zero, zero],
                    fpu::imm(FpOp::ToW, true, 1, 0xc201_1053),
                    at(4)
                ),
                call(
                    Helper::FpDyn,
                    Some(d(FP + 1)),
                    [r(2), zero, zero],
                    fpu::imm(FpOp::FromWu, false, 0, 0xd011_70d3),
                    at(5)
                ),
                call(
                    Helper::Fp,
                    Some(d(1)),
                    [r(FP + 2), zero, zero],
                    fpu::imm(FpOp::Class, true, 0, 0xe201_10d3),
                    at(6)
                ),
                sys(Helper::Ecall, ECALL, at(7)),
            ]
        );
    }

    #[test]
    fn the_first_fp_state_write_under_clean_fs_sets_dirty_and_redirects_to_itself() {
        // Stores, fmv.x and fclass leave FS alone; fadd.s is the first write.
        let words = [NOP, 0x7ff0_3fa7, 0xe00f_80d3, 0xe201_10d3, 0x0031_70d3, NOP];
        let b = words_under(M_FP_CLEAN, &words);
        assert_eq!((b.len, b.insn_count), (20, 5));
        assert_eq!(b.ops.len(), 4, "{b:?}");
        assert_eq!(b.ops[3], sys(Helper::FpDirty, 0x0031_70d3, at(4)));
        assert_eq!(b.term, Terminator::Jump { target: BASE + 16 });
        // A load or a compare is a write too (of an f register, of fflags).
        for word in [0x8001_2087, 0xa231_20d3, 0xf000_00d3] {
            let b = words_under(M_FP_CLEAN, &[word, NOP]);
            assert_eq!(b.ops.as_slice(), [sys(Helper::FpDirty, word, at(0))], "{word:#x}");
            assert_eq!((b.insn_count, b.term), (1, Terminator::Jump { target: BASE }));
        }
        // Under Dirty the same block runs on.
        assert_eq!(words_under(M_FP_DIRTY, &words).insn_count, 6);
    }

    #[test]
    fn fences_keep_their_sets_and_empty_ones_vanish() {
        // fence iorw,iorw; fence.tso; pause; a reserved fm with rd and rs1 set (r,rw); then ecall.
        let b = block(&[0x0ff0_000f, 0x8330_000f, 0x0100_000f, 0x1234_800f, ECALL]);
        assert_eq!(b.insn_count, 5);
        let all = fence::R | fence::W | fence::I | fence::O;
        let rw = fence::R | fence::W;
        assert_eq!(
            b.ops.as_slice(),
            [
                IrOp::Fence { pred: all, succ: all },
                IrOp::Fence { pred: rw, succ: rw },
                IrOp::Fence { pred: fence::R, succ: rw },
                sys(Helper::Ecall, ECALL, at(4)),
            ]
        );
    }

    #[test]
    fn atomics_lower_to_aligned_atomic_ops_with_their_ordering() {
        let b = block(&[
            0x1601_20af, // lr.w.aqrl x1,(x2)
            0x1c31_30af, // sc.d.aq x1,x3,(x2)
            0xe7ee_bfaf, // amomaxu.d.aqrl x31,x30,(x29)
            0x0831_202f, // amoswap.w x0,x3,(x2)
            ECALL,
        ]);
        let access = |size| MemAccess { size, signed: true, mmu: tlb::MMU_M, flags: mem_flag::ALIGNED };
        let (r, d) = (Operand::Reg, Dest::Reg);
        assert_eq!(
            b.ops.as_slice(),
            [
                IrOp::LoadReserved {
                    dst: d(1),
                    addr: r(2),
                    access: access(4),
                    order: MemoryOrder::SeqCst,
                    at: at(0)
                },
                IrOp::StoreConditional {
                    dst: d(1),
                    addr: r(2),
                    src: r(3),
                    access: access(8),
                    order: MemoryOrder::Acquire,
                    at: at(1),
                },
                IrOp::Amo {
                    op: AtomicOp::MaxU,
                    dst: d(31),
                    addr: r(29),
                    src: r(30),
                    access: access(8),
                    order: MemoryOrder::SeqCst,
                    at: at(2),
                },
                // rd = x0: the old value goes to a temporary, the memory access still happens.
                IrOp::Amo {
                    op: AtomicOp::Swap,
                    dst: Dest::Tmp(0),
                    addr: r(2),
                    src: r(3),
                    access: access(4),
                    order: MemoryOrder::Relaxed,
                    at: at(3),
                },
                sys(Helper::Ecall, ECALL, at(4)),
            ]
        );
    }

    #[test]
    fn accesses_use_the_data_mode_of_the_context() {
        // S-mode with SUM: loads and stores go through the S+SUM tables.
        let flags = 1 | (tlb::MMU_S_SUM as u32) << 2;
        let mut fetch16 = |a: u64| match a - BASE {
            0 => Some(0xa083u16), // lw x1, 0(x2)
            2 => Some(0x0001),
            _ => Some(0x0073), // ecall
        };
        let b = translate(BASE, flags, &mut fetch16).unwrap();
        assert_eq!(b.flags, flags);
        let IrOp::Load { access, .. } = b.ops[0] else { panic!("{:?}", b.ops[0]) };
        assert_eq!(access.mmu, tlb::MMU_S_SUM);
    }

    #[test]
    fn the_all_zero_halfword_is_a_two_byte_illegal_instruction() {
        // 0x00000000 is the canonical illegal instruction; only its first halfword is consumed.
        let b = block(&[NOP, 0]);
        assert_eq!((b.len, b.insn_count), (6, 2));
        let illegal = sys(Helper::Illegal, 0, at(1));
        assert_eq!(b.ops.as_slice(), [illegal]);
        assert_eq!(b.term, Terminator::Jump { target: BASE + 6 });
    }

    const C_NOP: u16 = 0x0001;
    /// `addi x1, x0, 5` as halfwords, low half first.
    const ADDI_X1_5: [u16; 2] = [0x0093, 0x0050];

    #[test]
    fn mixed_lengths_keep_offsets_and_counts() {
        let halves = [
            0x4515, // +0: c.li x10, 5
            ADDI_X1_5[0],
            ADDI_X1_5[1],
            0x4144, // +6: c.lw x9, 4(x10)
            0x2023, // +8: sw x1, 0(x2)
            0x0011,
            0xc044, // +12: c.sw x9, 4(x8)
            0x9082, // +14: c.jalr x1
            C_NOP,
        ];
        let b = translate_halves(BASE, &halves).unwrap();
        assert_eq!((b.pc, b.len, b.insn_count), (BASE, 16, 6));
        let at = |pc_offset, insn_index| At { pc_offset, insn_index };
        let word = MemAccess::new(4, true, tlb::MMU_M);
        let ops: &[IrOp] = &[
            IrOp::Bin { op: BinOp::Add, dst: Dest::Reg(10), a: Operand::Reg(0), b: Operand::Imm(5) },
            IrOp::Bin { op: BinOp::Add, dst: Dest::Reg(1), a: Operand::Reg(0), b: Operand::Imm(5) },
            IrOp::Load { dst: Dest::Reg(9), base: Operand::Reg(10), offset: 4, access: word, at: at(6, 2) },
            IrOp::Store {
                src: Operand::Reg(1),
                base: Operand::Reg(2),
                offset: 0,
                access: MemAccess::new(4, false, tlb::MMU_M),
                at: at(8, 3),
            },
            IrOp::Store {
                src: Operand::Reg(9),
                base: Operand::Reg(8),
                offset: 4,
                access: MemAccess::new(4, false, tlb::MMU_M),
                at: at(12, 4),
            },
            // c.jalr x1: the target is read before x1 is overwritten with pc + 2.
            IrOp::Bin { op: BinOp::Add, dst: Dest::Tmp(0), a: Operand::Reg(1), b: Operand::Imm(0) },
            IrOp::Bin { op: BinOp::And, dst: Dest::Tmp(0), a: Operand::Tmp(0), b: Operand::Imm(!1) },
            IrOp::Mov { dst: Dest::Reg(1), src: Operand::Imm(BASE as i64 + 16) },
        ];
        assert_eq!(b.ops.as_slice(), ops);
        assert_eq!(b.term, Terminator::JumpIndirect { target: Operand::Tmp(0) });
    }

    #[test]
    fn mixed_lengths_link_and_branch_from_each_instruction() {
        // jal after a 2-byte instruction links pc + 4 from its own odd-halfword pc.
        let b = translate_halves(BASE, &[C_NOP, 0x00ef, 0x0100]).unwrap(); // c.nop; jal x1, .+16
        assert_eq!((b.len, b.insn_count), (6, 2));
        assert_eq!(b.ops.as_slice(), [IrOp::Mov { dst: Dest::Reg(1), src: Operand::Imm(BASE as i64 + 6) }]);
        assert_eq!(b.term, Terminator::Jump { target: BASE + 2 + 16 });

        // jalr likewise.
        let b = translate_halves(BASE, &[C_NOP, 0x82e7, 0x7ff2]).unwrap(); // c.nop; jalr x5, 2047(x5)
        assert_eq!(b.ops[2], IrOp::Mov { dst: Dest::Reg(5), src: Operand::Imm(BASE as i64 + 6) });

        // c.j and c.jr write no link.
        let b = translate_halves(BASE, &[C_NOP, 0xaffd]).unwrap(); // c.nop; c.j .+2046
        assert_eq!((b.len, b.insn_count), (4, 2));
        assert!(b.ops.is_empty());
        assert_eq!(b.term, Terminator::Jump { target: BASE + 2 + 2046 });
        let b = translate_halves(BASE, &[0x8082]).unwrap(); // c.jr x1
        assert_eq!((b.len, b.insn_count), (2, 1));
        assert_eq!(b.ops.len(), 2, "target only, no link: {b:?}");
        assert_eq!(b.term, Terminator::JumpIndirect { target: Operand::Tmp(0) });

        // A 4-byte branch after two 2-byte instructions; a compressed one falls through to pc + 2.
        let b = translate_halves(BASE, &[C_NOP, C_NOP, 0x8ce3, 0xfe20]).unwrap(); // beq x1, x2, .-8
        let branch = |cond, rs1, rs2, taken, not_taken| Terminator::Branch {
            cond,
            a: Operand::Reg(rs1),
            b: Operand::Reg(rs2),
            taken,
            not_taken,
        };
        assert_eq!((b.len, b.insn_count), (8, 3));
        assert_eq!(b.term, branch(Cond::Eq, 1, 2, BASE + 4 - 8, BASE + 8));
        let b = translate_halves(BASE, &[ADDI_X1_5[0], ADDI_X1_5[1], 0xfd7d]).unwrap(); // c.bnez x10, .-2
        assert_eq!((b.len, b.insn_count), (6, 2));
        assert_eq!(b.term, branch(Cond::Ne, 10, 0, BASE + 4 - 2, BASE + 6));

        // Traps end the block with the next pc after a 2-byte instruction; an illegal one passes
        // its 16 bits.
        let second = At { pc_offset: 2, insn_index: 1 };
        let b = translate_halves(BASE, &[C_NOP, 0x9002, C_NOP]).unwrap(); // c.nop; c.ebreak
        assert_eq!(b.ops.as_slice(), [sys(Helper::Ebreak, 0x9002, second)]);
        assert_eq!((b.len, b.insn_count, b.term), (4, 2, Terminator::Jump { target: BASE + 4 }));
        let b = translate_halves(BASE, &[C_NOP, 0x8002]).unwrap(); // c.nop; c.jr x0 (reserved)
        let illegal = sys(Helper::Illegal, 0x8002, second);
        assert_eq!(b.ops.as_slice(), [illegal]);
        assert_eq!((b.len, b.term), (4, Terminator::Jump { target: BASE + 4 }));
    }

    #[test]
    fn compressed_hints_lower_to_nothing() {
        // c.addi x1, 0; c.li x0, 1; c.srli64 x8; c.slli x0, 1; c.mv x0, x1; c.add x0, x5;
        // c.lui x0, 1; c.ebreak
        let halves = [0x0081, 0x4005, 0x8001, 0x0006, 0x8006, 0x9016, 0x6005, 0x9002];
        let b = translate_halves(BASE, &halves).unwrap();
        assert_eq!((b.len, b.insn_count), (16, 8));
        assert_eq!(b.ops.len(), 1, "only the final c.ebreak: {b:?}");
    }

    #[test]
    fn a_four_byte_instruction_may_straddle_the_page_end() {
        // c.nop at 0x1ffa and 0x1ffc, then addi x1, x0, 5 across 0x1ffe..0x2002, then more.
        let halves = [C_NOP, C_NOP, ADDI_X1_5[0], ADDI_X1_5[1], C_NOP];
        let b = translate_halves(0x1ffa, &halves).unwrap();
        assert_eq!((b.len, b.insn_count), (8, 3));
        let addi = IrOp::Bin { op: BinOp::Add, dst: Dest::Reg(1), a: Operand::Reg(0), b: Operand::Imm(5) };
        assert_eq!(b.ops.as_slice(), [addi]);
        assert_eq!(b.term, Terminator::Jump { target: 0x2002 });

        // Its second halfword faults: the block ends before it, and it cannot start a block.
        let b = translate_halves(0x1ffa, &halves[..3]).unwrap();
        assert_eq!((b.len, b.insn_count), (4, 2));
        assert_eq!(b.term, Terminator::Jump { target: 0x1ffe });
        assert_eq!(translate_halves(0x1ffe, &halves[2..3]), None);
    }

    #[test]
    fn a_two_byte_instruction_ends_the_page_without_touching_the_next() {
        let mut fetched = Vec::new();
        let mut fetch16 = |addr: u64| {
            fetched.push(addr);
            Some(if addr == 0x1ffe { 0x4515 } else { C_NOP }) // c.li x10, 5 in the last halfword
        };
        let b = translate(0x1ffc, M, &mut fetch16).unwrap();
        assert_eq!((b.len, b.insn_count), (4, 2));
        assert_eq!(b.term, Terminator::Jump { target: 0x2000 });
        assert_eq!(fetched, [0x1ffc, 0x1ffe]);
    }

    #[test]
    fn blocks_stop_at_the_instruction_cap() {
        let b = block(&[NOP; 100]);
        assert_eq!((b.len, b.insn_count), (4 * MAX_BLOCK_INSNS, MAX_BLOCK_INSNS));
        assert_eq!(b.term, Terminator::Jump { target: BASE + 4 * u64::from(MAX_BLOCK_INSNS) });
    }

    #[test]
    fn blocks_stop_at_the_end_of_the_page() {
        let b = translate_at(0x1ff8, &[NOP; 8]).unwrap();
        assert_eq!((b.len, b.insn_count), (8, 2));
        assert_eq!(b.term, Terminator::Jump { target: 0x2000 });

        // The top of the address space: the next pc wraps to 0, which is another page.
        let b = translate_at(u64::MAX - 3, &[NOP]).unwrap();
        assert_eq!((b.len, b.insn_count), (4, 1));
        assert_eq!(b.term, Terminator::Jump { target: 0 });
    }

    #[test]
    fn fetch_faults_end_the_block_before_the_faulting_instruction() {
        let b = block(&[NOP, NOP, NOP]);
        assert_eq!((b.len, b.insn_count), (12, 3));
        assert!(b.ops.is_empty());
        assert_eq!(b.term, Terminator::Jump { target: BASE + 12 });

        assert_eq!(translate(BASE, M, &mut |_| None), None);
        // The second halfword of the first instruction faults: nothing can be translated.
        assert_eq!(translate(BASE, M, &mut |addr| (addr == BASE).then_some(0x0013)), None);
    }

    #[test]
    fn random_code_keeps_the_block_rules() {
        // xorshift over words, two in three forced into the 32-bit encoding space so that blocks
        // run on past the first instruction; the rest mostly start with a compressed one, which
        // shifts what follows onto odd halfwords.
        let mut x = 0x2545_f491_u32;
        let mut words = [0u32; 80];
        for _ in 0..20_000 {
            for w in &mut words {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *w = if x.is_multiple_of(3) { x } else { x | 3 };
            }
            let b = translate_at(0x1f40, &words).unwrap();
            // Only a 4-byte instruction in the page's last halfword reaches past it.
            assert!(b.len <= 0xc2, "ran past the page: {b:?}");
        }
    }
}
