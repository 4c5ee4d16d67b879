//! The interpreter's compact, pre-decoded form of an [`IrBlock`], and the decoder that builds it.
//!
//! Every operand becomes a slot of one flat register frame (guest registers, temporaries, a few
//! scratch slots), and the common ops get one variant per operand form, so executing an op is one
//! dispatch and a few loads and stores with no operand-kind branches.

use std::cell::Cell;
use vm_plugin_api::{
    At, BinOp, Cond, Dest, IrBlock, IrOp, MemAccess, Operand, Terminator, VmError, ir::MAX_TEMPS,
};

/// An index into the register frame.
pub(crate) type Slot = u8;

/// Frame slots `0..32` hold guest registers `x0..x31`.
pub(crate) const REGS: usize = 32;
/// Frame slots `32..64` hold the block temporaries.
const TMP_BASE: usize = REGS;
/// Writes to `Reg(0)` land here, so slot 0 stays 0 without a check on every write.
const SINK: Slot = (TMP_BASE + MAX_TEMPS) as Slot;
/// Immediates that an op cannot take inline are materialised into these just before the op.
const SCRATCH_A: Slot = SINK + 1;
const SCRATCH_B: Slot = SINK + 2;

/// The register frame. 256 slots so that any `u8` index is in bounds and the compiler drops the
/// bounds checks; only the first 67 are used.
pub(crate) struct Frame(pub(crate) [u64; 256]);

impl Frame {
    pub(crate) fn new() -> Box<Frame> {
        Box::new(Frame([0; 256]))
    }
    #[inline(always)]
    pub(crate) fn get(&self, s: Slot) -> u64 {
        self.0[s as usize]
    }
    #[inline(always)]
    pub(crate) fn set(&mut self, s: Slot, v: u64) {
        self.0[s as usize] = v;
    }
    /// Takes the guest registers from the host's state.
    #[inline]
    pub(crate) fn load_regs(&mut self, x: &[u64; REGS]) {
        self.0[..REGS].copy_from_slice(x);
        // Reading Reg(0) must give 0 whatever the host left there.
        self.0[0] = 0;
    }
    /// Hands the guest registers back to the host's state.
    #[inline]
    pub(crate) fn store_regs(&self, x: &mut [u64; REGS]) {
        x.copy_from_slice(&self.0[..REGS]);
    }
}

/// One pre-decoded op. Arithmetic variants read two slots, their `…I` twins a slot and an
/// immediate; the executor computes each through `eval_bin` with a constant op, so they agree with
/// the reference by construction. `at` is an index into [`Code::ats`].
// One variant per line reads as a table; rustfmt would spread each over five lines.
#[rustfmt::skip]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Mov { d: Slot, s: Slot },
    MovI { d: Slot, imm: u64 },

    Add { d: Slot, a: Slot, b: Slot },
    Sub { d: Slot, a: Slot, b: Slot },
    And { d: Slot, a: Slot, b: Slot },
    Or { d: Slot, a: Slot, b: Slot },
    Xor { d: Slot, a: Slot, b: Slot },
    Shl { d: Slot, a: Slot, b: Slot },
    Shr { d: Slot, a: Slot, b: Slot },
    Sar { d: Slot, a: Slot, b: Slot },
    Slt { d: Slot, a: Slot, b: Slot },
    Sltu { d: Slot, a: Slot, b: Slot },
    Mul { d: Slot, a: Slot, b: Slot },
    AddW { d: Slot, a: Slot, b: Slot },
    SubW { d: Slot, a: Slot, b: Slot },
    ShlW { d: Slot, a: Slot, b: Slot },
    ShrW { d: Slot, a: Slot, b: Slot },
    SarW { d: Slot, a: Slot, b: Slot },
    /// Any other op, register-register.
    Bin { op: BinOp, d: Slot, a: Slot, b: Slot },

    AddI { d: Slot, a: Slot, imm: u64 },
    AndI { d: Slot, a: Slot, imm: u64 },
    OrI { d: Slot, a: Slot, imm: u64 },
    XorI { d: Slot, a: Slot, imm: u64 },
    ShlI { d: Slot, a: Slot, imm: u64 },
    ShrI { d: Slot, a: Slot, imm: u64 },
    SarI { d: Slot, a: Slot, imm: u64 },
    SltI { d: Slot, a: Slot, imm: u64 },
    SltuI { d: Slot, a: Slot, imm: u64 },
    AddWI { d: Slot, a: Slot, imm: u64 },
    ShlWI { d: Slot, a: Slot, imm: u64 },
    ShrWI { d: Slot, a: Slot, imm: u64 },
    SarWI { d: Slot, a: Slot, imm: u64 },
    /// Any other op, register-immediate.
    BinI { op: BinOp, d: Slot, a: Slot, imm: u64 },

    LdU8 { d: Slot, base: Slot, at: u32, off: u64 },
    LdS8 { d: Slot, base: Slot, at: u32, off: u64 },
    LdU16 { d: Slot, base: Slot, at: u32, off: u64 },
    LdS16 { d: Slot, base: Slot, at: u32, off: u64 },
    LdU32 { d: Slot, base: Slot, at: u32, off: u64 },
    LdS32 { d: Slot, base: Slot, at: u32, off: u64 },
    Ld64 { d: Slot, base: Slot, at: u32, off: u64 },
    St8 { s: Slot, base: Slot, at: u32, off: u64 },
    St16 { s: Slot, base: Slot, at: u32, off: u64 },
    St32 { s: Slot, base: Slot, at: u32, off: u64 },
    St64 { s: Slot, base: Slot, at: u32, off: u64 },

    Helper { id: u32, d: Slot, a: Slot, b: Slot, at: u32 },

    // Terminators: the last op of every block. Their targets are in the block (`Block::targets`),
    // which keeps ops at two words and the block end in the same dispatch as everything else.
    /// To `targets[0]`.
    Jump,
    /// To `targets[0]` when the condition holds, else to `targets[1]`.
    BrEq { a: Slot, b: Slot },
    BrNe { a: Slot, b: Slot },
    BrLt { a: Slot, b: Slot },
    BrGe { a: Slot, b: Slot },
    BrLtu { a: Slot, b: Slot },
    BrGeu { a: Slot, b: Slot },
    /// To the pc in slot `s`.
    Indirect { s: Slot },
    /// Drop every translation, then to `targets[0]`.
    Flush,
}

// The executor's speed depends on ops staying two words.
const _: () = assert!(size_of::<Op>() == 16);

/// Marks a successor link that is not resolved yet.
pub(crate) const NO_BLOCK: u32 = u32::MAX;

/// Successor links of a block: the jump or taken branch, the not-taken branch, and the last target
/// of an indirect jump.
pub(crate) const SUCC_TAKEN: usize = 0;
pub(crate) const SUCC_NOT_TAKEN: usize = 1;
pub(crate) const SUCC_INDIRECT: usize = 2;

/// A compiled block: its ops start at `code.ops[start]` and run to its terminator op.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub pc: u64,
    pub insn_count: u32,
    pub start: u32,
    /// Constant successor pcs of the terminator (see the terminator ops).
    pub targets: [u64; 2],
    /// Indices of the blocks that followed this one, indexed by `SUCC_*`, or `NO_BLOCK`. They let
    /// the executor go from block to block without any lookup; each is checked against the pc it
    /// leads to before use (for an indirect jump it is only a guess). `Cell`, so the executor can
    /// link while it holds the cache shared.
    pub succ: [Cell<u32>; 3],
}

/// Storage shared by compiled blocks: all ops in one array, and the `At`s of ops that may call the
/// host in another (they are only read on slow paths, so they stay out of the ops).
#[derive(Default)]
pub(crate) struct Code {
    pub ops: Vec<Op>,
    pub ats: Vec<At>,
}

impl Code {
    pub(crate) fn clear(&mut self) {
        self.ops.clear();
        self.ats.clear();
    }

    /// Decodes `ir` into compact ops appended to this storage.
    ///
    /// Refuses malformed IR (register or temporary out of range, bad access size) instead of
    /// executing it wrongly; on error the storage is left as it was.
    pub(crate) fn compile(&mut self, ir: &IrBlock) -> Result<Block, VmError> {
        let (ops0, ats0) = (self.ops.len(), self.ats.len());
        let r = self.compile_inner(ir);
        if r.is_err() {
            self.ops.truncate(ops0);
            self.ats.truncate(ats0);
        }
        r
    }

    fn compile_inner(&mut self, ir: &IrBlock) -> Result<Block, VmError> {
        let start = index(self.ops.len())?;
        for op in ir.ops.iter() {
            self.op(ir, op)?;
        }
        let mut targets = [0; 2];
        let term = match ir.term {
            Terminator::Jump { target } => {
                targets[0] = target;
                Op::Jump
            }
            Terminator::Branch { cond, a, b, taken, not_taken } => {
                targets = [taken, not_taken];
                let a = self.operand(ir, a, SCRATCH_A)?;
                let b = self.operand(ir, b, SCRATCH_B)?;
                match cond {
                    Cond::Eq => Op::BrEq { a, b },
                    Cond::Ne => Op::BrNe { a, b },
                    Cond::Lt => Op::BrLt { a, b },
                    Cond::Ge => Op::BrGe { a, b },
                    Cond::Ltu => Op::BrLtu { a, b },
                    Cond::Geu => Op::BrGeu { a, b },
                }
            }
            Terminator::JumpIndirect { target } => Op::Indirect { s: self.operand(ir, target, SCRATCH_A)? },
            Terminator::FlushCode { next } => {
                targets[0] = next;
                Op::Flush
            }
        };
        self.ops.push(term);
        Ok(Block {
            pc: ir.pc,
            insn_count: ir.insn_count,
            start,
            targets,
            succ: [const { Cell::new(NO_BLOCK) }; 3],
        })
    }

    fn op(&mut self, ir: &IrBlock, op: &IrOp) -> Result<(), VmError> {
        match *op {
            IrOp::Mov { dst, src } => {
                let d = dest(ir, dst)?;
                let op = match src {
                    Operand::Imm(v) => Op::MovI { d, imm: v as u64 },
                    src => Op::Mov { d, s: source(ir, src)? },
                };
                self.ops.push(op);
            }
            IrOp::Bin { op, dst, a, b } => self.bin(ir, op, dest(ir, dst)?, a, b)?,
            IrOp::Load { dst, base, offset, access, at } => {
                let d = dest(ir, dst)?;
                let (base, off) = self.address(ir, base, offset)?;
                let at = self.at(at)?;
                self.ops.push(match (access.size, access.signed) {
                    (1, false) => Op::LdU8 { d, base, at, off },
                    (1, true) => Op::LdS8 { d, base, at, off },
                    (2, false) => Op::LdU16 { d, base, at, off },
                    (2, true) => Op::LdS16 { d, base, at, off },
                    (4, false) => Op::LdU32 { d, base, at, off },
                    (4, true) => Op::LdS32 { d, base, at, off },
                    (8, _) => Op::Ld64 { d, base, at, off },
                    _ => return Err(bad_access(ir, access)),
                });
            }
            IrOp::Store { src, base, offset, access, at } => {
                let s = self.operand(ir, src, SCRATCH_A)?;
                let (base, off) = self.address(ir, base, offset)?;
                let at = self.at(at)?;
                self.ops.push(match access.size {
                    1 => Op::St8 { s, base, at, off },
                    2 => Op::St16 { s, base, at, off },
                    4 => Op::St32 { s, base, at, off },
                    8 => Op::St64 { s, base, at, off },
                    _ => return Err(bad_access(ir, access)),
                });
            }
            IrOp::Helper { id, dst, a, b, at } => {
                let d = match dst.into_option() {
                    Some(dst) => dest(ir, dst)?,
                    None => SINK,
                };
                let a = self.operand(ir, a, SCRATCH_A)?;
                let b = self.operand(ir, b, SCRATCH_B)?;
                let at = self.at(at)?;
                self.ops.push(Op::Helper { id, d, a, b, at });
            }
        }
        Ok(())
    }

    fn bin(&mut self, ir: &IrBlock, op: BinOp, d: Slot, a: Operand, b: Operand) -> Result<(), VmError> {
        let (a, b) = match (a, b) {
            (Operand::Imm(x), Operand::Imm(y)) => {
                self.ops.push(Op::MovI { d, imm: vm_plugin_api::ir::eval_bin(op, x as u64, y as u64) });
                return Ok(());
            }
            (Operand::Imm(x), b) if commutative(op) => (b, Operand::Imm(x)),
            other => other,
        };
        let a = self.operand(ir, a, SCRATCH_A)?;
        let op = match b {
            Operand::Imm(imm) => imm_form(op, d, a, imm as u64),
            b => reg_form(op, d, a, source(ir, b)?),
        };
        self.ops.push(op);
        Ok(())
    }

    /// The slot holding `v`; an immediate is first moved into `scratch`.
    fn operand(&mut self, ir: &IrBlock, v: Operand, scratch: Slot) -> Result<Slot, VmError> {
        match v {
            Operand::Imm(imm) => {
                self.ops.push(Op::MovI { d: scratch, imm: imm as u64 });
                Ok(scratch)
            }
            v => source(ir, v),
        }
    }

    /// Base slot and displacement; a constant base folds into the displacement over slot 0 (`x0`,
    /// always 0).
    fn address(&mut self, ir: &IrBlock, base: Operand, offset: i64) -> Result<(Slot, u64), VmError> {
        match base {
            Operand::Imm(b) => Ok((0, (b as u64).wrapping_add(offset as u64))),
            base => Ok((source(ir, base)?, offset as u64)),
        }
    }

    fn at(&mut self, at: At) -> Result<u32, VmError> {
        let i = index(self.ats.len())?;
        self.ats.push(at);
        Ok(i)
    }
}

fn commutative(op: BinOp) -> bool {
    use BinOp::*;
    matches!(op, Add | And | Or | Xor | Mul | MulH | MulHU | AddW | MulW)
}

fn reg_form(op: BinOp, d: Slot, a: Slot, b: Slot) -> Op {
    match op {
        BinOp::Add => Op::Add { d, a, b },
        BinOp::Sub => Op::Sub { d, a, b },
        BinOp::And => Op::And { d, a, b },
        BinOp::Or => Op::Or { d, a, b },
        BinOp::Xor => Op::Xor { d, a, b },
        BinOp::Shl => Op::Shl { d, a, b },
        BinOp::Shr => Op::Shr { d, a, b },
        BinOp::Sar => Op::Sar { d, a, b },
        BinOp::Slt => Op::Slt { d, a, b },
        BinOp::Sltu => Op::Sltu { d, a, b },
        BinOp::Mul => Op::Mul { d, a, b },
        BinOp::AddW => Op::AddW { d, a, b },
        BinOp::SubW => Op::SubW { d, a, b },
        BinOp::ShlW => Op::ShlW { d, a, b },
        BinOp::ShrW => Op::ShrW { d, a, b },
        BinOp::SarW => Op::SarW { d, a, b },
        op => Op::Bin { op, d, a, b },
    }
}

fn imm_form(op: BinOp, d: Slot, a: Slot, imm: u64) -> Op {
    match op {
        BinOp::Add => Op::AddI { d, a, imm },
        // a - c == a + (-c) in wrapping arithmetic, also on the low 32 bits.
        BinOp::Sub => Op::AddI { d, a, imm: imm.wrapping_neg() },
        BinOp::SubW => Op::AddWI { d, a, imm: imm.wrapping_neg() },
        BinOp::And => Op::AndI { d, a, imm },
        BinOp::Or => Op::OrI { d, a, imm },
        BinOp::Xor => Op::XorI { d, a, imm },
        BinOp::Shl => Op::ShlI { d, a, imm },
        BinOp::Shr => Op::ShrI { d, a, imm },
        BinOp::Sar => Op::SarI { d, a, imm },
        BinOp::Slt => Op::SltI { d, a, imm },
        BinOp::Sltu => Op::SltuI { d, a, imm },
        BinOp::AddW => Op::AddWI { d, a, imm },
        BinOp::ShlW => Op::ShlWI { d, a, imm },
        BinOp::ShrW => Op::ShrWI { d, a, imm },
        BinOp::SarW => Op::SarWI { d, a, imm },
        op => Op::BinI { op, d, a, imm },
    }
}

fn source(ir: &IrBlock, v: Operand) -> Result<Slot, VmError> {
    match v {
        Operand::Reg(r) if (r as usize) < REGS => Ok(r),
        Operand::Tmp(t) if (t as usize) < MAX_TEMPS => Ok((TMP_BASE + t as usize) as Slot),
        other => Err(malformed(ir, format!("operand {other:?} is out of range"))),
    }
}

fn dest(ir: &IrBlock, d: Dest) -> Result<Slot, VmError> {
    match d {
        // The frontend never writes x0; if it does, the write is discarded as the ISA says.
        Dest::Reg(0) => Ok(SINK),
        Dest::Reg(r) => source(ir, Operand::Reg(r)),
        Dest::Tmp(t) => source(ir, Operand::Tmp(t)),
    }
}

fn index(n: usize) -> Result<u32, VmError> {
    u32::try_from(n)
        .ok()
        .filter(|&i| i != NO_BLOCK)
        .ok_or_else(|| VmError::engine("interp code storage is full"))
}

fn bad_access(ir: &IrBlock, access: MemAccess) -> VmError {
    malformed(ir, format!("memory access size {} is not 1, 2, 4 or 8", access.size))
}

fn malformed(ir: &IrBlock, what: String) -> VmError {
    VmError::engine(format!("malformed IR block at pc {:#x}: {what}", ir.pc))
}
