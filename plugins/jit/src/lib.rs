//! `vm-jit`: a Cranelift spike that compiles vmhost IR blocks to native code on plugin-api 0.2,
//! the seed of a JIT engine.
//!
//! # What it covers
//! - Ops: `Mov`, every `Bin` (RISC-V division rules included), `Un`, `Select`, `Load`/`Store` of
//!   every size and signedness, `Helper`; terminators `Jump`, `Branch`, `JumpIndirect`, `Exit`.
//!   `Amo`, `LoadReserved`, `StoreConditional` and `Fence` are refused with an error.
//! - RAM through the TLB in line, exactly as plugin-api's `cpu` module docs say (mask and table
//!   loaded from `CpuState` per access, tag compared against the page of the last byte); a miss
//!   calls `HostCalls::load_fn`/`store_fn` on a cold path with the state exact.
//! - Helpers called straight through `HostCalls::helpers[id].func`, spilling and reloading guest
//!   registers only as the op's `HelperFlags` require.
//! - Chaining: a block jumps into a linked successor by a tail call through a per-block link slot,
//!   without returning to the dispatcher ([`Jit::run`]), which links only within one guest page.
//! - The stop rule: every block starts with the attention check, then the budget check.
//!
//! # Calling convention
//! A compiled block is a Cranelift `tail`-convention function
//! `(cpu: *mut CpuState, host: *const HostCalls, budget_left: i64) -> (status: u64, budget_left: i64)`.
//! (Cranelift's x86-64 tail calls need `preserve_frame_pointers`.) Rust enters through one System V
//! trampoline, `extern "C" fn(cpu, host, budget_left, block)` returning the same pair in RAX:RDX. `budget_left` is the run's budget minus the instructions
//! retired so far (a block stops before running when it is ≤ 0, as the interp's run loop does).
//! The status's low 16 bits are a `Flow` in its C layout: `Continue` means the block completed
//! into an unlinked successor (bits 16..24 the successor slot, bits 32..64 the block id),
//! `Redirect` and `Exit` are the host's answer or the engine's own stop (see [`Outcome`]).
//! Guest registers live in Cranelift variables inside a block and are in `CpuState` at every block
//! boundary and host call; `cpu.pc` and `cpu.instret` follow the IR's accounting rules.
//!
//! # What a full JIT engine still needs
//! The `Engine` trait and plugin glue (config, stats, `execute_block`); the atomics and fences;
//! FP helpers; invalidation by page (`invalidate(Pages)` must unlink incoming links and free code,
//! which needs a code allocator of our own, as `JITModule` frees only all at once) and a jump
//! cache for indirect jumps and cross-page links; hot-code tiering behind the interp; registers
//! kept across chained blocks; `Send` for the engine (the module's raw code pointers).

mod abi;
mod codegen;

pub use abi::Outcome;

use cranelift_codegen::{
    ir::UserFuncName,
    settings::{self, Configurable},
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Module, default_libcall_names};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use vm_plugin_api::{
    CpuState, ExitReason, Fetched, Flow, HostCalls, IrBlock, Terminator, VmError, cpu::PAGE_MASK,
};

/// A compiled block's index in its [`Jit`].
pub type BlockId = u32;

/// What the trampoline returns, in RAX:RDX.
#[repr(C)]
struct RawExit {
    status: u64,
    budget_left: i64,
}

type Entry = unsafe extern "C" fn(*mut CpuState, *const HostCalls, i64, *const u8) -> RawExit;

struct Compiled {
    pc: u64,
    flags: u32,
    code: *const u8,
    /// Where each successor goes when linked: a block's code address, or 0. Boxed so the address
    /// baked into the code stays put.
    links: Box<[AtomicU64; 2]>,
    /// The constant successor pcs (`Jump`/`Branch`), the only ones that may be linked.
    targets: [Option<u64>; 2],
}

/// Counters of a [`Jit`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitStats {
    /// Blocks compiled.
    pub compiled: u64,
    /// Entries into generated code from Rust (each ends in one return to the dispatcher).
    pub dispatches: u64,
    /// Successor links made.
    pub links: u64,
}

/// The block compiler, its code, and a small dispatcher.
pub struct Jit {
    module: JITModule,
    fctx: FunctionBuilderContext,
    entry: Entry,
    blocks: Vec<Compiled>,
    by_pc: HashMap<(u64, u32), BlockId>,
    stats: JitStats,
}

fn err(what: impl std::fmt::Display) -> VmError {
    VmError::engine(format!("jit: {what}"))
}

impl Jit {
    /// A JIT for the host machine (x86-64 System V is the only target tried).
    pub fn new() -> Result<Jit, VmError> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(err)?;
        flags.set("is_pic", "false").map_err(err)?;
        // Cranelift's x86-64 tail calls need frame pointers.
        flags.set("preserve_frame_pointers", "true").map_err(err)?;
        let isa =
            cranelift_native::builder().map_err(err)?.finish(settings::Flags::new(flags)).map_err(err)?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        ctx.func.signature = codegen::entry_signature();
        let id = module.declare_anonymous_function(&ctx.func.signature).map_err(err)?;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            codegen::build_entry(&mut b);
            b.finalize(module.target_config());
        }
        module.define_function(id, &mut ctx).map_err(err)?;
        module.finalize_definitions().map_err(err)?;
        let code = module.get_finalized_function(id);
        // SAFETY: `code` was just compiled from `entry_signature`, which is this C signature:
        // four integer arguments, two integer results in RAX:RDX.
        let entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
        Ok(Jit { module, fctx, entry, blocks: Vec::new(), by_pc: HashMap::new(), stats: JitStats::default() })
    }

    /// Counters.
    pub fn stats(&self) -> JitStats {
        self.stats
    }

    /// The compiled block for `(pc, tb_flags)`, if any.
    pub fn lookup(&self, pc: u64, flags: u32) -> Option<BlockId> {
        self.by_pc.get(&(pc, flags)).copied()
    }

    /// Compiles `ir`; `host` is the table its helper ids are checked against.
    pub fn compile(&mut self, ir: &IrBlock, host: &HostCalls) -> Result<BlockId, VmError> {
        let id = BlockId::try_from(self.blocks.len()).map_err(err)?;
        let links = Box::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let mut ctx = self.module.make_context();
        ctx.func.signature = codegen::block_signature();
        let fid = self.module.declare_anonymous_function(&ctx.func.signature).map_err(err)?;
        ctx.func.name = UserFuncName::user(0, fid.as_u32());
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut self.fctx);
            let g = codegen::Gen::new(b, ir, id, links.as_ptr() as u64, host);
            if let Err(e) = g.build(self.module.target_config()) {
                // The builder stopped half way: start the next function from a clean context.
                self.fctx = FunctionBuilderContext::new();
                return Err(VmError::unsupported(format!("jit: block at pc {:#x}: {e}", ir.pc)));
            }
        }
        self.module.define_function(fid, &mut ctx).map_err(|e| err(format!("{e:?}")))?;
        self.module.finalize_definitions().map_err(err)?;
        let code = self.module.get_finalized_function(fid);
        let targets = match ir.term {
            Terminator::Jump { target } => [Some(target), None],
            Terminator::Branch { taken, not_taken, .. } => [Some(taken), Some(not_taken)],
            Terminator::JumpIndirect { .. } | Terminator::Exit { .. } => [None, None],
        };
        self.blocks.push(Compiled { pc: ir.pc, flags: ir.flags, code, links, targets });
        self.by_pc.insert((ir.pc, ir.flags), id);
        self.stats.compiled += 1;
        Ok(id)
    }

    /// Links successor `succ` of block `from` to block `to`, if `to` is that successor's constant
    /// target under the same translation context and on the same guest page as `from` (other
    /// jumps go through the dispatcher, so changed mappings need no unlinking). Says whether it did.
    pub fn link(&mut self, from: BlockId, succ: u8, to: BlockId) -> bool {
        let (Some(f), Some(t)) = (self.blocks.get(from as usize), self.blocks.get(to as usize)) else {
            return false;
        };
        let ok = f.targets.get(succ as usize).copied().flatten() == Some(t.pc)
            && f.flags == t.flags
            && (f.pc ^ t.pc) & PAGE_MASK == 0;
        if ok {
            f.links[succ as usize].store(t.code as u64, Ordering::Relaxed);
            self.stats.links += 1;
        }
        ok
    }

    /// Drops every link (blocks then return to the dispatcher at every boundary).
    pub fn unlink_all(&mut self) {
        for b in &self.blocks {
            for l in b.links.iter() {
                l.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Runs block `id` (and the blocks linked after it) with `budget_left`; gives how it ended and
    /// the budget left.
    pub fn call(
        &mut self,
        id: BlockId,
        cpu: &mut CpuState,
        host: &HostCalls,
        budget_left: i64,
    ) -> Result<(Outcome, i64), VmError> {
        let code = self.blocks.get(id as usize).ok_or_else(|| err(format!("no block {id}")))?.code;
        self.stats.dispatches += 1;
        // SAFETY: `code` is a block compiled by this JIT against `CpuState`/`HostCalls` layouts;
        // it touches only `cpu`, the TLB tables and attention word it points to (which the host
        // keeps valid), and the host functions of `host`, called as their contract says.
        let r = unsafe { (self.entry)(cpu, host, budget_left, code) };
        Ok((abi::decode(r.status)?, r.budget_left))
    }

    /// A dispatcher: runs from `cpu.pc` until an exit or until `budget` instructions retired (at
    /// most one block more), translating through the host, compiling and linking as it goes.
    pub fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> Result<ExitReason, VmError> {
        let mut left = i64::try_from(budget).unwrap_or(i64::MAX);
        let mut link_from: Option<(BlockId, u8)> = None;
        loop {
            // The same stop rule as inside the code, before a translation that could fault.
            if cpu.attention() {
                return Ok(ExitReason::ExitRequested);
            }
            if left <= 0 {
                return Ok(ExitReason::BudgetExhausted);
            }
            let pc = cpu.pc;
            let id = match self.lookup(pc, cpu.tb_flags) {
                Some(id) => id,
                None => match host.translate(cpu, pc) {
                    Fetched::Block(ir) if ir.pc == pc => self.compile(&ir, host)?,
                    Fetched::Block(ir) => {
                        return Err(err(format!("asked for the block at {pc:#x}, got one at {:#x}", ir.pc)));
                    }
                    Fetched::Flow(Flow::Redirect) => {
                        link_from = None;
                        continue;
                    }
                    Fetched::Flow(Flow::Exit(reason)) => return Ok(reason),
                    Fetched::Flow(Flow::Continue) => {
                        return Err(err(format!(
                            "the host answered the translation of {pc:#x} with Continue"
                        )));
                    }
                },
            };
            if let Some((from, succ)) = link_from.take() {
                self.link(from, succ, id);
            }
            let (outcome, l) = self.call(id, cpu, host, left)?;
            left = l;
            match outcome {
                Outcome::Next { from, succ } => link_from = succ.map(|s| (from, s)),
                Outcome::Redirect => {}
                Outcome::Exit(reason) => return Ok(reason),
            }
        }
    }
}
