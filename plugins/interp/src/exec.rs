//! Executes compiled blocks on the register frame: the interpreter's hot loop.
//!
//! Blocks follow one another through their successor links without leaving the loop; the loop
//! returns to the run loop only to look up or translate code, to obey the budget or an exit
//! request, or for a host decision. RAM accesses go straight through [`GuestRam`]; anything that
//! needs the host (device memory, faults, helpers) leaves the fast path through one cold function
//! that makes `CpuState` exact first (registers, pc, instret per the IR's accounting rules).

use crate::cache::Cache;
use crate::code::{Block, Code, Frame, Op, SUCC_INDIRECT, SUCC_NOT_TAKEN, SUCC_TAKEN, Slot};
use vm_plugin_api::{
    BinOp, Cond, CpuState, ExitReason, Flow, GuestRam, HostCalls,
    ir::{eval_bin, eval_cond},
};

/// Why [`run_blocks`] returned. In every case `cpu.pc` is where execution goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Block `from` completed through its successor `succ`, and no block is known for `cpu.pc`.
    Unlinked { from: u32, succ: usize },
    /// The block completed (only when not chaining).
    Done,
    /// A `FlushCode` block completed: drop every translation.
    Flush,
    /// The host redirected control.
    Redirect,
    /// Return to the host.
    Exit(ExitReason),
}

/// Work done, folded into the engine's statistics by the caller.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub retired: u64,
    pub executed: u64,
}

/// Not a successor link: the block ended with `FlushCode`.
const SUCC_FLUSH: usize = 3;

/// Runs block `first` of `cache` and, when `CHAIN`, the blocks after it, until there is a reason to
/// stop. Checks the exit request and `budget` (against `counts.retired`) after every block.
///
/// Guest registers live in `f` throughout (the caller loads and writes them back); `cpu.pc` and
/// `cpu.instret` are exact at every block boundary.
#[inline(always)]
pub(crate) fn run_blocks<const CHAIN: bool>(
    cache: &Cache,
    first: u32,
    f: &mut Frame,
    cpu: &mut CpuState,
    host: &HostCalls,
    budget: u64,
    counts: &mut Counts,
) -> Stop {
    let blocks = &cache.blocks[..];
    let (mut retired, mut executed) = (counts.retired, counts.executed);
    let mut index = first;
    let mut block = &blocks[index as usize];
    let stop = loop {
        let (pc, succ) = match run_block(&cache.code, block, f, cpu, host) {
            Ok(next) => next,
            Err(left) => {
                retired += left.retired;
                break left.stop();
            }
        };
        cpu.pc = pc;
        cpu.instret = cpu.instret.wrapping_add(block.insn_count as u64);
        retired += block.insn_count as u64;
        executed += 1;
        if succ == SUCC_FLUSH {
            break Stop::Flush;
        }
        if !CHAIN {
            break Stop::Done;
        }
        if host.exit_requested() {
            break Stop::Exit(ExitReason::ExitRequested);
        }
        if retired >= budget {
            break Stop::Exit(ExitReason::BudgetExhausted);
        }
        let link = &block.succ[succ];
        match blocks.get(link.get() as usize) {
            Some(next) if next.pc == pc => {
                index = link.get();
                block = next;
            }
            _ => match cache.find_fast(pc) {
                Some(next) => {
                    link.set(next);
                    index = next;
                    block = &blocks[next as usize];
                }
                None => break Stop::Unlinked { from: index, succ },
            },
        }
    };
    counts.retired = retired;
    counts.executed = executed;
    stop
}

/// What a block needs besides the frame and the CPU state.
struct Env<'a> {
    code: &'a Code,
    block: &'a Block,
    host: &'a HostCalls,
}

/// Runs one block's ops; on completion gives the next pc and the successor link that leads there.
#[inline(always)]
fn run_block(
    code: &Code,
    block: &Block,
    f: &mut Frame,
    cpu: &mut CpuState,
    host: &HostCalls,
) -> Result<(u64, usize), Left> {
    let env = Env { code, block, host };
    // A local copy keeps the RAM bounds in registers.
    let ram = host.ram;
    let ops = &code.ops[..];
    let mut ip = block.start as usize;
    loop {
        let op = ops[ip];
        ip += 1;
        match op {
            Op::Mov { d, s } => f.set(d, f.get(s)),
            Op::MovI { d, imm } => f.set(d, imm),

            Op::Add { d, a, b } => rr(f, BinOp::Add, d, a, b),
            Op::Sub { d, a, b } => rr(f, BinOp::Sub, d, a, b),
            Op::And { d, a, b } => rr(f, BinOp::And, d, a, b),
            Op::Or { d, a, b } => rr(f, BinOp::Or, d, a, b),
            Op::Xor { d, a, b } => rr(f, BinOp::Xor, d, a, b),
            Op::Shl { d, a, b } => rr(f, BinOp::Shl, d, a, b),
            Op::Shr { d, a, b } => rr(f, BinOp::Shr, d, a, b),
            Op::Sar { d, a, b } => rr(f, BinOp::Sar, d, a, b),
            Op::Slt { d, a, b } => rr(f, BinOp::Slt, d, a, b),
            Op::Sltu { d, a, b } => rr(f, BinOp::Sltu, d, a, b),
            Op::Mul { d, a, b } => rr(f, BinOp::Mul, d, a, b),
            Op::AddW { d, a, b } => rr(f, BinOp::AddW, d, a, b),
            Op::SubW { d, a, b } => rr(f, BinOp::SubW, d, a, b),
            Op::ShlW { d, a, b } => rr(f, BinOp::ShlW, d, a, b),
            Op::ShrW { d, a, b } => rr(f, BinOp::ShrW, d, a, b),
            Op::SarW { d, a, b } => rr(f, BinOp::SarW, d, a, b),
            Op::Bin { op, d, a, b } => f.set(d, generic(op, f.get(a), f.get(b))),

            Op::AddI { d, a, imm } => ri(f, BinOp::Add, d, a, imm),
            Op::AndI { d, a, imm } => ri(f, BinOp::And, d, a, imm),
            Op::OrI { d, a, imm } => ri(f, BinOp::Or, d, a, imm),
            Op::XorI { d, a, imm } => ri(f, BinOp::Xor, d, a, imm),
            Op::ShlI { d, a, imm } => ri(f, BinOp::Shl, d, a, imm),
            Op::ShrI { d, a, imm } => ri(f, BinOp::Shr, d, a, imm),
            Op::SarI { d, a, imm } => ri(f, BinOp::Sar, d, a, imm),
            Op::SltI { d, a, imm } => ri(f, BinOp::Slt, d, a, imm),
            Op::SltuI { d, a, imm } => ri(f, BinOp::Sltu, d, a, imm),
            Op::AddWI { d, a, imm } => ri(f, BinOp::AddW, d, a, imm),
            Op::ShlWI { d, a, imm } => ri(f, BinOp::ShlW, d, a, imm),
            Op::ShrWI { d, a, imm } => ri(f, BinOp::ShrW, d, a, imm),
            Op::SarWI { d, a, imm } => ri(f, BinOp::SarW, d, a, imm),
            Op::BinI { op, d, a, imm } => f.set(d, generic(op, f.get(a), imm)),

            Op::LdU8 { d, base, at, off } => load::<1, false>(&env, f, cpu, ram, d, base, off, at)?,
            Op::LdS8 { d, base, at, off } => load::<1, true>(&env, f, cpu, ram, d, base, off, at)?,
            Op::LdU16 { d, base, at, off } => load::<2, false>(&env, f, cpu, ram, d, base, off, at)?,
            Op::LdS16 { d, base, at, off } => load::<2, true>(&env, f, cpu, ram, d, base, off, at)?,
            Op::LdU32 { d, base, at, off } => load::<4, false>(&env, f, cpu, ram, d, base, off, at)?,
            Op::LdS32 { d, base, at, off } => load::<4, true>(&env, f, cpu, ram, d, base, off, at)?,
            Op::Ld64 { d, base, at, off } => load::<8, false>(&env, f, cpu, ram, d, base, off, at)?,
            Op::St8 { s, base, at, off } => store::<1>(&env, f, cpu, ram, s, base, off, at)?,
            Op::St16 { s, base, at, off } => store::<2>(&env, f, cpu, ram, s, base, off, at)?,
            Op::St32 { s, base, at, off } => store::<4>(&env, f, cpu, ram, s, base, off, at)?,
            Op::St64 { s, base, at, off } => store::<8>(&env, f, cpu, ram, s, base, off, at)?,

            Op::Helper { id, d, a, b, at } => {
                let v = host_call(&env, f, cpu, at, Call::Helper { id, a: f.get(a), b: f.get(b) })?;
                f.set(d, v);
            }

            Op::Jump => return Ok((block.targets[0], SUCC_TAKEN)),
            Op::BrEq { a, b } => return Ok(branch(f, block, Cond::Eq, a, b)),
            Op::BrNe { a, b } => return Ok(branch(f, block, Cond::Ne, a, b)),
            Op::BrLt { a, b } => return Ok(branch(f, block, Cond::Lt, a, b)),
            Op::BrGe { a, b } => return Ok(branch(f, block, Cond::Ge, a, b)),
            Op::BrLtu { a, b } => return Ok(branch(f, block, Cond::Ltu, a, b)),
            Op::BrGeu { a, b } => return Ok(branch(f, block, Cond::Geu, a, b)),
            Op::Indirect { s } => return Ok((f.get(s), SUCC_INDIRECT)),
            Op::Flush => return Ok((block.targets[0], SUCC_FLUSH)),
        }
    }
}

/// `cond` is a constant at every call, so `eval_cond` folds to one comparison.
#[inline(always)]
fn branch(f: &Frame, block: &Block, cond: Cond, a: Slot, b: Slot) -> (u64, usize) {
    if eval_cond(cond, f.get(a), f.get(b)) {
        (block.targets[0], SUCC_TAKEN)
    } else {
        (block.targets[1], SUCC_NOT_TAKEN)
    }
}

/// Register-register form; `op` is a constant at every call, so `eval_bin` folds to one operation.
#[inline(always)]
fn rr(f: &mut Frame, op: BinOp, d: Slot, a: Slot, b: Slot) {
    f.set(d, eval_bin(op, f.get(a), f.get(b)));
}

/// Register-immediate form, as [`rr`].
#[inline(always)]
fn ri(f: &mut Frame, op: BinOp, d: Slot, a: Slot, imm: u64) {
    f.set(d, eval_bin(op, f.get(a), imm));
}

/// The rare ops (multiply-high, division, ...): kept out of line so the hot loop stays small.
#[inline(never)]
fn generic(op: BinOp, a: u64, b: u64) -> u64 {
    eval_bin(op, a, b)
}

#[inline(always)]
fn extend<const N: u8, const SIGNED: bool>(v: u64) -> u64 {
    match (N, SIGNED) {
        (1, true) => v as i8 as i64 as u64,
        (2, true) => v as i16 as i64 as u64,
        (4, true) => v as i32 as i64 as u64,
        (1, false) => v as u8 as u64,
        (2, false) => v as u16 as u64,
        (4, false) => v as u32 as u64,
        _ => v,
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn load<const N: u8, const SIGNED: bool>(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    ram: GuestRam,
    d: Slot,
    base: Slot,
    off: u64,
    at: u32,
) -> Result<(), Left> {
    let addr = f.get(base).wrapping_add(off);
    let v = match ram.load(addr, N) {
        Some(v) => v,
        None => host_call(env, f, cpu, at, Call::Load { addr, size: N })?,
    };
    // The host's value is extended too: device registers answer with the raw bytes.
    f.set(d, extend::<N, SIGNED>(v));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store<const N: u8>(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    ram: GuestRam,
    s: Slot,
    base: Slot,
    off: u64,
    at: u32,
) -> Result<(), Left> {
    let addr = f.get(base).wrapping_add(off);
    let value = f.get(s);
    if ram.store(addr, N, value).is_none() {
        // Devices get exactly the bytes stored, not the register's upper bits.
        host_call(env, f, cpu, at, Call::Store { addr, size: N, value: extend::<N, false>(value) })?;
    }
    Ok(())
}

/// A call into the host from the middle of a block.
enum Call {
    Load { addr: u64, size: u8 },
    Store { addr: u64, size: u8, value: u64 },
    Helper { id: u32, a: u64, b: u64 },
}

/// A block left early on the host's word.
pub(crate) struct Left {
    /// Redirect or Exit.
    flow: Flow,
    /// Instructions of the block that retired before it left.
    retired: u64,
}

impl Left {
    fn stop(&self) -> Stop {
        match self.flow {
            Flow::Exit(reason) => Stop::Exit(reason),
            // `host_call` never gives Continue here.
            Flow::Redirect | Flow::Continue => Stop::Redirect,
        }
    }
}

/// Makes `cpu` exact for the op at `at` (registers, pc, instret as the IR's accounting rules say),
/// calls the host, and takes the registers back: the host may read or change any of them.
#[cold]
#[inline(never)]
fn host_call(env: &Env<'_>, f: &mut Frame, cpu: &mut CpuState, at: u32, call: Call) -> Result<u64, Left> {
    let at = env.code.ats[at as usize];
    let entry_instret = cpu.instret;
    f.store_regs(&mut cpu.x);
    cpu.pc = env.block.pc.wrapping_add(at.pc_offset as u64);
    cpu.instret = entry_instret.wrapping_add(at.insn_index as u64);
    let r = match call {
        Call::Load { addr, size } => env.host.load(cpu, addr, size),
        Call::Store { addr, size, value } => env.host.store(cpu, addr, size, value),
        Call::Helper { id, a, b } => env.host.helper(cpu, id, a, b),
    };
    f.load_regs(&cpu.x);
    match r.flow {
        Flow::Continue => {
            // The block goes on and adds its whole count when it completes, so take back the part
            // counted here; measured from the host's value, so a helper that rewrote the counter
            // (a CSR write) keeps its effect.
            cpu.instret = cpu.instret.wrapping_sub(at.insn_index as u64);
            Ok(r.value)
        }
        flow => Err(Left { flow, retired: retired_before_exit(cpu.instret, entry_instret, env.block) }),
    }
}

/// Instructions a block retired before it left early: the host's count when it is plausible, else
/// none (a helper that rewrote the counter must not inflate the budget or the statistics).
fn retired_before_exit(instret: u64, entry_instret: u64, block: &Block) -> u64 {
    let n = instret.wrapping_sub(entry_instret);
    if n <= block.insn_count as u64 { n } else { 0 }
}
