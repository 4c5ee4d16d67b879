//! The interpreter's compact, pre-decoded form of an [`IrBlock`], and the decoder that builds it.
//!
//! Every operand becomes a slot of one flat register frame (guest registers, temporaries, a few
//! scratch slots), and the common ops get one variant per operand form, so executing an op is one
//! dispatch and a few loads and stores with no operand-kind branches. What only slow paths read
//! (positions, access descriptions, helper ids) lives in side tables, so ops stay two words.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use vm_plugin_api::{
    At, AtomicOp, BinOp, Cond, Dest, HelperFlags, IrBlock, IrOp, MemAccess, Operand, Terminator, TlbFast,
    UnOp, VmError,
    cpu::MMU_MODES,
    ir::{MAX_TEMPS, NUM_REGS, eval_bin, fence},
    memory::MemoryOrder,
};

/// An index into the register frame.
pub(crate) type Slot = u8;

/// Frame slots `0..64` hold the IR registers (`x0..x31`, then `f0..f31`).
pub(crate) const REGS: usize = NUM_REGS;
/// Frame slots `64..96` hold the block temporaries.
const TMP_BASE: usize = REGS;
/// Writes to `Reg(0)` land here, so slot 0 stays 0 without a check on every write.
const SINK: Slot = (TMP_BASE + MAX_TEMPS) as Slot;
/// Immediates that an op cannot take inline are materialised into these just before the op.
const SCRATCH: [Slot; 4] = [SINK + 1, SINK + 2, SINK + 3, SINK + 4];
/// Where `Test` leaves the condition `Pick` reads.
pub(crate) const COND: Slot = SINK + 5;

/// The register frame. 256 slots so that any `u8` index is in bounds and the compiler drops the
/// bounds checks; only the first 102 are used.
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
    pub(crate) fn load_regs(&mut self, regs: &[u64; REGS]) {
        self.0[..REGS].copy_from_slice(regs);
        // Reading Reg(0) must give 0 whatever the host left there.
        self.0[0] = 0;
    }
    /// Hands the guest registers back to the host's state.
    #[inline]
    pub(crate) fn store_regs(&self, regs: &mut [u64; REGS]) {
        regs.copy_from_slice(&self.0[..REGS]);
    }
}

/// The MMU mode of a memory op (`< MMU_MODES`, checked when compiling) times the size of a
/// `TlbFast`: the byte offset of its TLB in `CpuState::tlb`, so the fast path indexes with one
/// mask and no shift.
pub(crate) type Mode = u8;
const MODE_SHIFT: u32 = size_of::<TlbFast>().trailing_zeros();
const _: () = assert!(size_of::<TlbFast>() == 1 << MODE_SHIFT && (MMU_MODES << MODE_SHIFT) <= 256);

/// The mode byte of MMU mode `mmu`.
pub(crate) const fn mode_of(mmu: u8) -> Mode {
    mmu << MODE_SHIFT
}

/// The byte offset in `CpuState::tlb` of the `TlbFast` of a mode byte: in bounds, as every mode
/// byte in an op comes from [`mode`], which refuses modes from `MMU_MODES` on.
#[inline(always)]
pub(crate) fn tlb_offset(m: Mode) -> usize {
    debug_assert!((m >> MODE_SHIFT) < MMU_MODES as u8);
    m as usize
}

/// One pre-decoded op. Arithmetic variants read two slots, their `…I` twins a slot and an
/// immediate; the executor computes each through `eval_bin` with a constant op, so they agree with
/// the reference by construction. `site` indexes [`Code::sites`], `helper` [`Code::helpers`].
///
/// Every variant keeps its fields in bytes 1-3, the `u32` at 4 and the `u64` at 8 (rare ops keep
/// the rest in the side tables): the dispatch loads those for all ops at once, and a byte field
/// elsewhere would cost every op its extraction.
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

    Un { op: UnOp, d: Slot, s: Slot },
    /// `Select` is `Test` (the condition into `COND`) then `Pick`.
    Test { cond: Cond, a: Slot, b: Slot },
    Pick { d: Slot, t: Slot, f: Slot },

    LdU8 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    LdS8 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    LdU16 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    LdS16 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    LdU32 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    LdS32 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    Ld64 { d: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    St8 { s: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    St16 { s: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    St32 { s: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    St64 { s: Slot, base: Slot, m: Mode, site: u32, off: u64 },
    /// Loads and stores that must be aligned: rare (RISC-V's are not), so they keep the plain
    /// ops free of the alignment mask and take size and mode from their site.
    LdAligned { d: Slot, base: Slot, site: u32, off: u64 },
    StAligned { s: Slot, base: Slot, site: u32, off: u64 },

    /// Atomics: address `a`, operand `s`; operation, width, mode and ordering are in the site.
    Amo { d: Slot, a: Slot, s: Slot, site: u32 },
    Lr { d: Slot, a: Slot, site: u32 },
    Sc { d: Slot, a: Slot, s: Slot, site: u32 },
    Fence { order: Ordering },

    Helper { d: Slot, helper: u32 },

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
    /// To `targets[0]`, then back to the host.
    Exit,
    /// The whole body of a dropped block (see [`GONE`]): nothing ran, look the pc up again.
    Gone,
}

// The executor's speed depends on ops staying two words, and blocks one cache line.
const _: () = assert!(size_of::<Op>() == 16 && size_of::<Block>() == 64);

/// Where the one [`Op::Gone`] sits: a dropped block starts here.
pub(crate) const GONE: u32 = 0;

/// Marks a successor link that is not resolved yet: the index of the cache's sentinel block, a
/// dropped block that is always there, so the executor follows a link with no bounds check.
pub(crate) const NO_BLOCK: u32 = 0;

/// Successor links of a block: the jump or taken branch, the not-taken branch, and the last target
/// of an indirect jump.
pub(crate) const SUCC_TAKEN: usize = 0;
pub(crate) const SUCC_NOT_TAKEN: usize = 1;
pub(crate) const SUCC_INDIRECT: usize = 2;

/// A compiled block: its ops start at `code.ops[start]` and run to its terminator op. One cache
/// line, so a transition touches one line of the block it leaves.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub(crate) struct Block {
    pub pc: u64,
    /// Constant successor pcs of the terminator (see the terminator ops).
    pub targets: [u64; 2],
    /// The `tb_flags` it was lowered under.
    pub flags: u32,
    pub insn_count: u32,
    pub start: u32,
    /// The blocks that followed this one, indexed by `SUCC_*`. They let the executor go from block
    /// to block without any lookup; each is checked against the pc it leads to before use (for an
    /// indirect jump it is only a guess).
    pub succ: [Link; 3],
}

/// A successor link: the block's index, or `NO_BLOCK`, and a copy of its `start`, so the
/// executor can fetch the next block's first op without waiting for that block to load (on a
/// guest branch the host mispredicts, that load sat on the path to the next dispatch). `Cell`s, so
/// the executor can link while it holds the cache shared.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    block: Cell<u32>,
    start: Cell<u32>,
}

impl Link {
    /// A link to no block.
    pub(crate) const fn none() -> Link {
        Link { block: Cell::new(NO_BLOCK), start: Cell::new(GONE) }
    }

    #[inline(always)]
    pub(crate) fn block(&self) -> u32 {
        self.block.get()
    }
    #[inline(always)]
    pub(crate) fn start(&self) -> u32 {
        self.start.get()
    }
    /// Points the link at `block`, whose ops start at `start`.
    pub(crate) fn set(&self, block: u32, start: u32) {
        self.block.set(block);
        self.start.set(start);
    }
}

/// Where an op that may call the host sits, resolved against its block when compiling, so the
/// slow path needs nothing of the block itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pos {
    /// The op's guest pc: what the host sees in `cpu.pc`.
    pub pc: u64,
    /// Instructions of the block before the op: what the host sees added to `cpu.instret`.
    pub insn_index: u32,
    /// The block's length.
    pub block_insns: u32,
}

impl Pos {
    fn new(ir: &IrBlock, at: At) -> Pos {
        Pos {
            pc: ir.pc.wrapping_add(at.pc_offset as u64),
            insn_index: at.insn_index,
            block_insns: ir.insn_count,
        }
    }
}

/// What a memory op's slow path needs: its position and its access as the IR gave it (and, for
/// atomics, all of the op but its slots).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    pub at: Pos,
    pub access: MemAccess,
    /// Atomics only.
    pub op: AtomicOp,
    /// Atomics only.
    pub order: MemoryOrder,
}

/// A helper call but its destination.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HelperSite {
    pub at: Pos,
    pub id: u32,
    pub flags: HelperFlags,
    pub args: [Slot; 3],
    pub imm: u64,
}

/// Storage shared by compiled blocks: all ops in one array, and the side tables of the ops that
/// may call the host (only read on slow paths, so they stay out of the ops).
pub(crate) struct Code {
    pub ops: Vec<Op>,
    pub sites: Vec<Site>,
    pub helpers: Vec<HelperSite>,
}

impl Default for Code {
    fn default() -> Self {
        Code { ops: vec![Op::Gone], sites: Vec::new(), helpers: Vec::new() }
    }
}

impl Code {
    pub(crate) fn clear(&mut self) {
        self.ops.truncate(GONE as usize + 1);
        self.sites.clear();
        self.helpers.clear();
    }

    /// Decodes `ir` into compact ops appended to this storage.
    ///
    /// Refuses malformed IR (register or temporary out of range, bad access size or mode) instead
    /// of executing it wrongly; on error the storage is left as it was.
    pub(crate) fn compile(&mut self, ir: &IrBlock) -> Result<Block, VmError> {
        let lens = (self.ops.len(), self.sites.len(), self.helpers.len());
        let r = self.compile_inner(ir);
        if r.is_err() {
            self.ops.truncate(lens.0);
            self.sites.truncate(lens.1);
            self.helpers.truncate(lens.2);
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
                let a = self.operand(ir, a, SCRATCH[0])?;
                let b = self.operand(ir, b, SCRATCH[1])?;
                match cond {
                    Cond::Eq => Op::BrEq { a, b },
                    Cond::Ne => Op::BrNe { a, b },
                    Cond::Lt => Op::BrLt { a, b },
                    Cond::Ge => Op::BrGe { a, b },
                    Cond::Ltu => Op::BrLtu { a, b },
                    Cond::Geu => Op::BrGeu { a, b },
                }
            }
            Terminator::JumpIndirect { target } => Op::Indirect { s: self.operand(ir, target, SCRATCH[0])? },
            Terminator::Exit { next } => {
                targets[0] = next;
                Op::Exit
            }
        };
        self.ops.push(term);
        Ok(Block {
            pc: ir.pc,
            flags: ir.flags,
            insn_count: ir.insn_count,
            start,
            targets,
            succ: [const { Link::none() }; 3],
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
            IrOp::Un { op, dst, src } => {
                let d = dest(ir, dst)?;
                let op = match src {
                    Operand::Imm(v) => Op::MovI { d, imm: vm_plugin_api::ir::eval_un(op, v as u64) },
                    src => Op::Un { op, d, s: source(ir, src)? },
                };
                self.ops.push(op);
            }
            IrOp::Select { dst, cond, a, b, t, f } => {
                let d = dest(ir, dst)?;
                let a = self.operand(ir, a, SCRATCH[0])?;
                let b = self.operand(ir, b, SCRATCH[1])?;
                let t = self.operand(ir, t, SCRATCH[2])?;
                let f = self.operand(ir, f, SCRATCH[3])?;
                self.ops.push(Op::Test { cond, a, b });
                self.ops.push(Op::Pick { d, t, f });
            }
            IrOp::Load { dst, base, offset, access, at } => {
                let d = dest(ir, dst)?;
                let (base, off) = self.address(ir, base, offset)?;
                let m = mode(ir, access)?;
                let site = self.site(ir, at, access, AtomicOp::Swap, MemoryOrder::Relaxed)?;
                self.ops.push(match (access.size, access.signed) {
                    _ if access.aligned() => Op::LdAligned { d, base, site, off },
                    (1, false) => Op::LdU8 { d, base, m, site, off },
                    (1, true) => Op::LdS8 { d, base, m, site, off },
                    (2, false) => Op::LdU16 { d, base, m, site, off },
                    (2, true) => Op::LdS16 { d, base, m, site, off },
                    (4, false) => Op::LdU32 { d, base, m, site, off },
                    (4, true) => Op::LdS32 { d, base, m, site, off },
                    (8, _) => Op::Ld64 { d, base, m, site, off },
                    _ => unreachable!("`mode` checked the size"),
                });
            }
            IrOp::Store { src, base, offset, access, at } => {
                let s = self.operand(ir, src, SCRATCH[0])?;
                let (base, off) = self.address(ir, base, offset)?;
                let m = mode(ir, access)?;
                let site = self.site(ir, at, access, AtomicOp::Swap, MemoryOrder::Relaxed)?;
                self.ops.push(match access.size {
                    _ if access.aligned() => Op::StAligned { s, base, site, off },
                    1 => Op::St8 { s, base, m, site, off },
                    2 => Op::St16 { s, base, m, site, off },
                    4 => Op::St32 { s, base, m, site, off },
                    _ => Op::St64 { s, base, m, site, off },
                });
            }
            IrOp::Amo { op, dst, addr, src, access, order, at } => {
                let d = dest(ir, dst)?;
                let a = self.operand(ir, addr, SCRATCH[0])?;
                let s = self.operand(ir, src, SCRATCH[1])?;
                atomic_access(ir, access)?;
                let site = self.site(ir, at, access, op, order)?;
                self.ops.push(Op::Amo { d, a, s, site });
            }
            IrOp::LoadReserved { dst, addr, access, order, at } => {
                let d = dest(ir, dst)?;
                let a = self.operand(ir, addr, SCRATCH[0])?;
                atomic_access(ir, access)?;
                let site = self.site(ir, at, access, AtomicOp::Swap, order)?;
                self.ops.push(Op::Lr { d, a, site });
            }
            IrOp::StoreConditional { dst, addr, src, access, order, at } => {
                let d = dest(ir, dst)?;
                let a = self.operand(ir, addr, SCRATCH[0])?;
                let s = self.operand(ir, src, SCRATCH[1])?;
                atomic_access(ir, access)?;
                let site = self.site(ir, at, access, AtomicOp::Swap, order)?;
                self.ops.push(Op::Sc { d, a, s, site });
            }
            IrOp::Fence { pred, succ } => {
                if let Some(order) = fence_order(pred, succ) {
                    self.ops.push(Op::Fence { order });
                }
            }
            IrOp::Helper { id, flags, dst, args, imm, at } => {
                let d = match dst.into_option() {
                    Some(dst) => dest(ir, dst)?,
                    None => SINK,
                };
                let a = self.operand(ir, args[0], SCRATCH[0])?;
                let b = self.operand(ir, args[1], SCRATCH[1])?;
                let c = self.operand(ir, args[2], SCRATCH[2])?;
                let helper = index(self.helpers.len())?;
                self.helpers.push(HelperSite { at: Pos::new(ir, at), id, flags, args: [a, b, c], imm });
                self.ops.push(Op::Helper { d, helper });
            }
        }
        Ok(())
    }

    fn bin(&mut self, ir: &IrBlock, op: BinOp, d: Slot, a: Operand, b: Operand) -> Result<(), VmError> {
        let (a, b) = match (a, b) {
            (Operand::Imm(x), Operand::Imm(y)) => {
                self.ops.push(Op::MovI { d, imm: eval_bin(op, x as u64, y as u64) });
                return Ok(());
            }
            (Operand::Imm(x), b) if commutative(op) => (b, Operand::Imm(x)),
            other => other,
        };
        let a = self.operand(ir, a, SCRATCH[0])?;
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

    fn site(
        &mut self,
        ir: &IrBlock,
        at: At,
        access: MemAccess,
        op: AtomicOp,
        order: MemoryOrder,
    ) -> Result<u32, VmError> {
        let i = index(self.sites.len())?;
        self.sites.push(Site { at: Pos::new(ir, at), access, op, order });
        Ok(i)
    }
}

/// The host ordering that gives RISC-V `fence pred, succ` on this host, or `None` for a fence
/// that orders nothing. Device input and output (`I`, `O`) count as reads and writes: device
/// accesses are host calls, and ordering them like memory is what the guest's drivers expect.
/// Rust's acquire fence orders earlier reads before everything later, its release fence
/// everything earlier before later writes; only SeqCst also orders earlier writes before later
/// reads. So AcqRel is never the weakest fit, and on x86 only the write-before-read case costs
/// an `mfence` (the others compile to nothing there).
fn fence_order(pred: u8, succ: u8) -> Option<Ordering> {
    let fold = |s: u8| (s & (fence::R | fence::I) != 0, s & (fence::W | fence::O) != 0);
    let ((pr, pw), (sr, sw)) = (fold(pred), fold(succ));
    if !(pr || pw) || !(sr || sw) {
        None
    } else if pw && sr {
        Some(Ordering::SeqCst)
    } else if pw {
        // Then `succ` is writes only.
        Some(Ordering::Release)
    } else {
        Some(Ordering::Acquire)
    }
}

fn commutative(op: BinOp) -> bool {
    use BinOp::*;
    matches!(op, Add | And | Or | Xor | Mul | MulH | MulHU | AddW | MulW | Xnor | Min | Max | MinU | MaxU)
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

/// The mode of a load or store; refuses sizes and modes the IR does not have, which
/// [`tlb_offset`] relies on.
fn mode(ir: &IrBlock, access: MemAccess) -> Result<Mode, VmError> {
    if !matches!(access.size, 1 | 2 | 4 | 8) {
        return Err(malformed(ir, format!("memory access size {} is not 1, 2, 4 or 8", access.size)));
    }
    if access.mmu as usize >= MMU_MODES {
        return Err(malformed(ir, format!("MMU mode {} is not below {MMU_MODES}", access.mmu)));
    }
    Ok(mode_of(access.mmu))
}

/// Checks an atomic access (4 or 8 bytes, a valid mode; always aligned whatever its flags).
fn atomic_access(ir: &IrBlock, access: MemAccess) -> Result<(), VmError> {
    if !matches!(access.size, 4 | 8) {
        return Err(malformed(ir, format!("atomic access size {} is not 4 or 8", access.size)));
    }
    mode(ir, access).map(|_| ())
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
        .filter(|&i| i != u32::MAX)
        .ok_or_else(|| VmError::engine("interp code storage is full"))
}

fn malformed(ir: &IrBlock, what: String) -> VmError {
    VmError::engine(format!("malformed IR block at pc {:#x}: {what}", ir.pc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_plugin_api::ir::fence::{I, O, R, W};

    #[test]
    fn fences_map_to_the_weakest_host_ordering_that_covers_them() {
        assert_eq!(fence_order(R | W, R | W), Some(Ordering::SeqCst));
        assert_eq!(fence_order(W, R), Some(Ordering::SeqCst));
        assert_eq!(fence_order(O, I), Some(Ordering::SeqCst), "device output before input");
        assert_eq!(fence_order(R | W, W), Some(Ordering::Release));
        assert_eq!(fence_order(R, W), Some(Ordering::Acquire));
        assert_eq!(fence_order(R, R | W), Some(Ordering::Acquire));
        assert_eq!(fence_order(R, R), Some(Ordering::Acquire));
        assert_eq!(fence_order(W, W), Some(Ordering::Release));
        assert_eq!(fence_order(0, R | W), None);
        assert_eq!(fence_order(R, 0), None);
    }
}
