//! Execution engines: the host-call table they run against, and the engine trait.
//!
//! An engine executes IR on a host-owned [`CpuState`]. It asks the host for code through
//! [`HostCalls::translate`], does RAM accesses itself through the TLB in the state (see
//! [`crate::cpu`]), and calls the host for everything else (TLB misses, device memory, faults,
//! atomics that miss, helpers). Plugin authors implement [`Engine`]; the plugin-api adapts it to
//! the FFI-safe [`FfiEngine`] and keeps panics on the plugin's side. `docs/abi.md` states the
//! whole contract.

use crate::{
    cpu::CpuState,
    error::{VmError, VmResult},
    ir::{AtomicOp, HelperFlags, IrBlock, MemAccess},
    lifecycle::{Component, ComponentStatus, EventSinkBox, Events, ExecutionStats, Tracker},
    memory::MemoryOrder,
    panic::guard,
};
use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, RResult, RSlice, RStr, RString},
};
use async_ffi::FfiFuture;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// Why an engine returned to the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The instruction budget was used up.
    BudgetExhausted,
    /// The host asked the engine to return (interrupt pending, stop, swap).
    ExitRequested,
    /// The guest is waiting for an interrupt.
    Wfi,
    /// The guest halted the machine.
    Halt,
    /// A host call failed; the host holds the error.
    HostError,
    /// A breakpoint or single step the host asked for was reached (for a debugger).
    Debug,
}

/// What an engine does after a host call.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Carry on with the block.
    Continue,
    /// The host changed control flow (trap, return from trap, redirect); `cpu.pc` and `cpu.instret`
    /// are already correct. Leave the block and continue at `cpu.pc`.
    Redirect,
    /// Return to the host with this reason; `cpu.pc` and `cpu.instret` are already correct.
    Exit(ExitReason),
}

/// A host call's flow decision and value.
///
/// 16 bytes, returned in RAX:RDX on x86-64 System V. `flow` is 2 bytes: the tag (0 `Continue`,
/// 1 `Redirect`, 2 `Exit`), then the `ExitReason` for `Exit` only; otherwise the second byte is
/// undefined, so generated code tests the low byte alone.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostResult {
    /// What to do next.
    pub flow: Flow,
    /// The loaded value (the low `size` bytes, zero- or sign-extended as `access.signed` says;
    /// an engine may extend again) or the helper's result, meaningful with [`Flow::Continue`].
    pub value: u64,
}

impl HostResult {
    /// Continue with `value`.
    pub fn value(value: u64) -> Self {
        HostResult { flow: Flow::Continue, value }
    }
    /// Leave with `flow` and no value.
    pub fn flow(flow: Flow) -> Self {
        HostResult { flow, value: 0 }
    }
}

/// The host's answer to a translation request.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The block at the requested pc.
    Block(IrBlock),
    /// Fetching faulted or must stop; follow the flow (never [`Flow::Continue`]).
    Flow(Flow),
}

/// A host helper: `(ctx, cpu, a, b, c, imm)`. Six integer-class arguments and a 16-byte result, so
/// on x86-64 System V every argument travels in a register and the result comes back in RAX:RDX.
pub type HelperFn = unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u64, u64, u64) -> HostResult;

/// One entry of the host's helper table.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HelperEntry {
    /// The helper (a [`HelperFn`], spelled out so the layout check sees the signature).
    pub func: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u64, u64, u64) -> HostResult,
    /// What it may touch. The frontend copies these into each `IrOp::Helper`; engines use the op's.
    pub flags: HelperFlags,
}

/// Which atomic operation an [`AtomicReq`] is.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicKind {
    /// [`IrOp::Amo`](crate::IrOp::Amo) with [`AtomicReq::op`].
    Amo,
    /// [`IrOp::LoadReserved`](crate::IrOp::LoadReserved).
    LoadReserved,
    /// [`IrOp::StoreConditional`](crate::IrOp::StoreConditional).
    StoreConditional,
}

/// An atomic access that missed the TLB fast path (or that an engine does not do inline): the
/// host performs the whole operation, including the reservation update, and answers in
/// `HostResult::value` the value for `dst`: the old value (`Amo`) or the loaded one
/// (`LoadReserved`), 4-byte ones sign-extended (an engine may extend again), or 0/1
/// (`StoreConditional`). An SC whose address is not the reservation's fails without faulting.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicReq {
    /// The operation.
    pub kind: AtomicKind,
    /// The read-modify-write (for `Amo`).
    pub op: AtomicOp,
    /// Width and mode.
    pub access: MemAccess,
    /// Ordering.
    pub order: MemoryOrder,
    /// Guest virtual address.
    pub addr: u64,
    /// The stored operand (`Amo`, `StoreConditional`).
    pub src: u64,
}

/// The table of host entry points an engine runs against.
///
/// Plain `extern "C"` function pointers with an opaque context, so a JIT can call them directly.
/// Engines use the safe methods; the fields are for code generators. There is no way to RAM that
/// bypasses the TLB, and none to the attention word but through the state.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostCalls {
    /// Opaque host context, passed back to every call.
    pub ctx: *mut c_void,
    /// Translates the block at a guest virtual pc (fills the fetch TLB entry for its page).
    pub translate_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64) -> Fetched,
    /// Slow-path load: TLB miss (the host walks, fills `cpu.tlb` and loads), device memory, or a
    /// fault. Arguments: guest virtual address, access (four bytes: size, signed, mmu, flags,
    /// passed by value in one integer register).
    pub load_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, MemAccess) -> HostResult,
    /// Slow-path store. Arguments: address, access, value.
    pub store_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, MemAccess, u64) -> HostResult,
    /// Slow-path atomic.
    pub atomic_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, &AtomicReq) -> HostResult,
    /// The helper table, indexed by the IR's helper id; valid for the life of the process. Every
    /// `HostCalls` the host gives one engine has the same table length and meaning of ids, so an
    /// engine checks ids once, when it compiles.
    pub helpers: *const HelperEntry,
    /// Entries in `helpers`.
    pub n_helpers: u32,
}

// SAFETY: the host that builds a HostCalls guarantees (see `HostCalls::new`) that its context may
// be used from whichever thread runs the engine, one call at a time.
unsafe impl Send for HostCalls {}

impl HostCalls {
    /// Builds a call table.
    ///
    /// # Safety
    /// `ctx` must stay valid for as long as any copy of the table is used, and the functions
    /// (including the helpers) must be safe to call with `ctx` from the engine's thread.
    pub unsafe fn new(
        ctx: *mut c_void,
        translate_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64) -> Fetched,
        load_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, MemAccess) -> HostResult,
        store_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, MemAccess, u64) -> HostResult,
        atomic_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, &AtomicReq) -> HostResult,
        helpers: &'static [HelperEntry],
    ) -> Self {
        let n_helpers = u32::try_from(helpers.len()).unwrap_or(u32::MAX);
        HostCalls { ctx, translate_fn, load_fn, store_fn, atomic_fn, helpers: helpers.as_ptr(), n_helpers }
    }

    /// Asks the host for the IR block at `pc`.
    #[inline]
    pub fn translate(&self, cpu: &mut CpuState, pc: u64) -> Fetched {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.translate_fn)(self.ctx, cpu, pc) }
    }
    /// Slow-path load at guest virtual `addr` (set `cpu.pc`/`cpu.instret` first, see the IR docs).
    #[inline]
    pub fn load(&self, cpu: &mut CpuState, addr: u64, access: MemAccess) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.load_fn)(self.ctx, cpu, addr, access) }
    }
    /// Slow-path store.
    #[inline]
    pub fn store(&self, cpu: &mut CpuState, addr: u64, access: MemAccess, value: u64) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.store_fn)(self.ctx, cpu, addr, access, value) }
    }
    /// Slow-path atomic.
    #[inline]
    pub fn atomic(&self, cpu: &mut CpuState, req: &AtomicReq) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.atomic_fn)(self.ctx, cpu, req) }
    }
    /// The helper table.
    #[inline]
    pub fn helper_table(&self) -> &[HelperEntry] {
        // SAFETY: `new` built the pointer and length from a 'static slice.
        unsafe { std::slice::from_raw_parts(self.helpers, self.n_helpers as usize) }
    }
    /// Calls host helper `id`; `None` if the table has no such helper.
    #[inline]
    pub fn helper(&self, cpu: &mut CpuState, id: u32, args: [u64; 3], imm: u64) -> Option<HostResult> {
        let entry = self.helper_table().get(id as usize)?;
        // SAFETY: upheld by the contract of `HostCalls::new`.
        Some(unsafe { (entry.func)(self.ctx, cpu, args[0], args[1], args[2], imm) })
    }
}

/// What an engine must drop from its caches, told between runs.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidate<'a> {
    /// Everything.
    All,
    /// Every virtual-to-physical assumption: jump caches keyed by virtual pc and links between
    /// blocks on different virtual pages. Code keyed by physical pc stays valid.
    VirtualMappings,
    /// The code on these guest physical pages (page addresses) changed.
    Pages(RSlice<'a, u64>),
}

/// Optional abilities of an engine, as bits.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineCaps(pub u64);

impl EngineCaps {
    /// No optional ability.
    pub const NONE: EngineCaps = EngineCaps(0);
    /// The hot-code methods work ([`Engine::hot_compilation`] is `Some`).
    pub const HOT_COMPILATION: EngineCaps = EngineCaps(1 << 0);
    /// Generates native code.
    pub const JIT: EngineCaps = EngineCaps(1 << 1);
    /// Instances of one VM share translated code.
    pub const SHARES_CODE: EngineCaps = EngineCaps(1 << 2);

    /// Both sets of bits.
    pub const fn union(self, other: EngineCaps) -> EngineCaps {
        EngineCaps(self.0 | other.0)
    }
    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: EngineCaps) -> bool {
        self.0 & other.0 == other.0
    }
}

/// What an engine factory is told.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineContext<'a> {
    /// The engine's configuration table, as TOML.
    pub config: RStr<'a>,
    /// The hart this instance runs.
    pub hart_id: u32,
    /// Harts in the VM (one engine instance each).
    pub num_harts: u32,
    /// Identifies the VM within the process: instances with the same id may share code.
    pub vm_id: u64,
}

impl<'a> EngineContext<'a> {
    /// The context of a one-hart VM with configuration `config`.
    pub fn single(config: &'a str) -> Self {
        EngineContext { config: config.into(), hart_id: 0, num_harts: 1, vm_id: 0 }
    }
}

/// Counters of an engine's hot-code compiler.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotStats {
    /// Blocks compiled to native code.
    pub compiled_blocks: u64,
    /// Blocks being counted but not yet hot.
    pub warm_blocks: u64,
    /// Current threshold range.
    pub min_threshold: u32,
    /// Current threshold range.
    pub max_threshold: u32,
}

/// An engine run handed over whole, for [`FfiEngine::run_async`].
#[repr(C)]
#[derive(StableAbi)]
pub struct AsyncRun {
    /// The state to run on; handed back in [`AsyncRunDone`].
    pub cpu: RBox<CpuState>,
    /// The host-call table (the host keeps its context alive until the future completes).
    pub host: HostCalls,
    /// Instruction budget.
    pub budget: u64,
}

/// The result of an asynchronous run: the state back, and why the run ended.
#[repr(C)]
#[derive(StableAbi)]
pub struct AsyncRunDone {
    /// The state, as the run left it.
    pub cpu: RBox<CpuState>,
    /// Why it returned.
    pub result: VmResult<ExitReason>,
}

/// The FFI-safe engine object the host drives. Built by the plugin-api from an [`Engine`].
#[sabi_trait]
pub trait FfiEngine: Send {
    /// The engine's name.
    fn name(&self) -> RString;
    /// Lifecycle: prepare.
    fn init(&mut self) -> VmResult<()>;
    /// Lifecycle: begin serving.
    fn start(&mut self) -> VmResult<()>;
    /// Lifecycle: stop serving.
    fn stop(&mut self) -> VmResult<()>;
    /// Lifecycle state.
    fn status(&self) -> ComponentStatus;
    /// Replaces the engine's configuration (a TOML table).
    fn update_config(&mut self, toml: RStr<'_>) -> VmResult<()>;
    /// The current configuration as TOML.
    fn get_config(&self) -> RString;
    /// Checks a configuration without applying it.
    fn validate_config(&self, toml: RStr<'_>) -> VmResult<()>;
    /// Subscribes to the engine's events; returns the subscription id.
    fn subscribe(&mut self, sink: EventSinkBox) -> u64;
    /// Ends a subscription.
    fn unsubscribe(&mut self, id: u64) -> bool;
    /// Runs from `cpu.pc` until an exit, or until at least `budget` instructions retired (at most
    /// one block more; see the stop rule in [`crate::ir`]).
    fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> VmResult<ExitReason>;
    /// Executes exactly one IR block. `Continue` when it ran to its end (`cpu.pc` = the next pc,
    /// `cpu.instret` += `insn_count`), else the host's `Redirect` or `Exit`; a block ending in
    /// `Terminator::Exit` gives `Exit(ExitRequested)`.
    fn execute_block(&mut self, cpu: &mut CpuState, host: &HostCalls, block: &IrBlock) -> VmResult<Flow>;
    /// Whether `run_async` should be preferred to `run`.
    fn is_async(&self) -> bool;
    /// Runs like `run`, completing as a future.
    fn run_async(&mut self, job: AsyncRun) -> FfiFuture<AsyncRunDone>;
    /// Counters.
    fn stats(&self) -> ExecutionStats;
    /// Drops all cached translations and counters.
    fn reset(&mut self) -> VmResult<()>;
    /// Drops what `scope` names from the engine's caches. An error means the engine may still hold
    /// stale code: the host must not run it again.
    fn invalidate(&mut self, scope: Invalidate<'_>) -> VmResult<()>;
    /// Optional abilities; the hot-code methods below work only with `HOT_COMPILATION`.
    fn capabilities(&self) -> EngineCaps;
    /// Sets the execution counts between which a block becomes hot.
    fn set_hot_threshold(&mut self, min: u32, max: u32) -> VmResult<()>;
    /// Hot-code counters.
    fn hot_stats(&self) -> HotStats;
    /// Drops compiled hot code.
    fn clear_hot(&mut self) -> VmResult<()>;
    /// Compiles the block at `pc` now.
    #[sabi(last_prefix_field)]
    fn precompile(&mut self, cpu: &mut CpuState, host: &HostCalls, pc: u64) -> VmResult<()>;
}

/// A boxed engine object.
pub type EngineBox = FfiEngine_TO<'static, RBox<()>>;

/// Optional hot-code compilation, for engines that have it (see [`Engine::hot_compilation`]).
pub trait HotCompilation {
    /// Sets the execution counts between which a block becomes hot.
    fn set_hot_threshold(&mut self, min: u32, max: u32) -> Result<(), VmError>;
    /// Counters.
    fn hot_stats(&self) -> HotStats;
    /// Drops compiled code.
    fn clear(&mut self) -> Result<(), VmError>;
    /// Compiles the block at `pc` now.
    fn precompile(&mut self, cpu: &mut CpuState, host: &HostCalls, pc: u64) -> Result<(), VmError>;
}

/// What an engine plugin implements (with [`Component`] for lifecycle and configuration).
pub trait Engine: Component + Send + 'static {
    /// Runs from `cpu.pc` until an exit or until about `budget` instructions retired.
    fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> Result<ExitReason, VmError>;
    /// Executes exactly one IR block; leaves `cpu.pc` at the next pc.
    fn execute_block(
        &mut self,
        cpu: &mut CpuState,
        host: &HostCalls,
        block: &IrBlock,
    ) -> Result<Flow, VmError>;
    /// Counters.
    fn stats(&self) -> ExecutionStats;
    /// Drops what `scope` names from the caches (see [`Invalidate`]).
    fn invalidate(&mut self, scope: Invalidate<'_>);
    /// Drops cached translations and counters.
    fn reset(&mut self) -> Result<(), VmError> {
        self.invalidate(Invalidate::All);
        Ok(())
    }
    /// Optional abilities besides hot compilation (which the adapter adds when
    /// [`Engine::hot_compilation`] is `Some`).
    fn capabilities(&self) -> EngineCaps {
        EngineCaps::NONE
    }
    /// Whether the host should drive this engine through `run_async` (a run on its own thread).
    fn prefers_async(&self) -> bool {
        false
    }
    /// Hot-code compilation, if the engine has it.
    fn hot_compilation(&mut self) -> Option<&mut dyn HotCompilation> {
        None
    }
}

/// Adapts an [`Engine`] to [`FfiEngine`]: tracks lifecycle, subscribers, and catches panics.
pub(crate) struct EngineAdapter<E: Engine> {
    name: String,
    engine: Arc<Mutex<E>>,
    tracker: Tracker,
    events: Events,
    /// Where `run_async` runs the engine: one thread for all its runs.
    worker: crate::oneshot::Worker,
}

impl<E: Engine> EngineAdapter<E> {
    pub(crate) fn new(name: &str, engine: E, events: Events) -> Self {
        EngineAdapter {
            name: name.to_string(),
            engine: Arc::new(Mutex::new(engine)),
            tracker: Tracker::new(format!("engine '{name}'")),
            events,
            worker: crate::oneshot::Worker::default(),
        }
    }

    fn call<T>(&mut self, what: &str, f: impl FnOnce(&mut E) -> Result<T, VmError>) -> VmResult<T> {
        let engine = &self.engine;
        self.tracker.call(what, || f(&mut lock(engine)))
    }

    fn transition(
        &mut self,
        what: &str,
        during: Option<ComponentStatus>,
        after: ComponentStatus,
        f: impl FnOnce(&mut E) -> Result<(), VmError>,
    ) -> VmResult<()> {
        let engine = &self.engine;
        self.tracker.transition(what, during, after, || f(&mut lock(engine)))
    }
}

fn lock<E>(m: &Mutex<E>) -> std::sync::MutexGuard<'_, E> {
    // A poisoned lock means a previous call panicked; that call already reported it, and the state
    // is as usable as after any error.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<E: Engine> FfiEngine for EngineAdapter<E> {
    fn name(&self) -> RString {
        self.name.clone().into()
    }
    fn init(&mut self) -> VmResult<()> {
        self.transition("init", None, ComponentStatus::Initialized, |e| e.init())
    }
    fn start(&mut self) -> VmResult<()> {
        self.transition("start", Some(ComponentStatus::Starting), ComponentStatus::Running, |e| e.start())
    }
    fn stop(&mut self) -> VmResult<()> {
        self.transition("stop", Some(ComponentStatus::Stopping), ComponentStatus::Stopped, |e| e.stop())
    }
    fn status(&self) -> ComponentStatus {
        self.tracker.status()
    }
    fn update_config(&mut self, toml: RStr<'_>) -> VmResult<()> {
        self.call("update_config", |e| e.update_config(toml.as_str()))
    }
    fn get_config(&self) -> RString {
        self.tracker.get("get_config", &self.events, String::new(), || lock(&self.engine).get_config()).into()
    }
    fn validate_config(&self, toml: RStr<'_>) -> VmResult<()> {
        guard("validate_config", || lock(&self.engine).validate_config(toml.as_str())).into()
    }
    fn subscribe(&mut self, sink: EventSinkBox) -> u64 {
        self.events.subscribe(sink)
    }
    fn unsubscribe(&mut self, id: u64) -> bool {
        self.events.unsubscribe(id)
    }
    fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> VmResult<ExitReason> {
        let r = self.call("run", |e| e.run(cpu, host, budget));
        if let RResult::ROk(_) = &r {
            let stats = lock(&self.engine).stats();
            self.events.publish(&crate::VmEvent::ExecutionCompleted(stats));
        }
        r
    }
    fn execute_block(&mut self, cpu: &mut CpuState, host: &HostCalls, block: &IrBlock) -> VmResult<Flow> {
        self.call("execute_block", |e| e.execute_block(cpu, host, block))
    }
    fn is_async(&self) -> bool {
        self.tracker.get("is_async", &self.events, false, || lock(&self.engine).prefers_async())
    }
    fn run_async(&mut self, job: AsyncRun) -> FfiFuture<AsyncRunDone> {
        let engine = Arc::clone(&self.engine);
        let label = format!("engine '{}' run_async", self.name);
        self.worker.run(move || {
            let AsyncRun { mut cpu, host, budget } = job;
            let result = guard(&label, || lock(&engine).run(&mut cpu, &host, budget)).into();
            AsyncRunDone { cpu, result }
        })
    }
    fn stats(&self) -> ExecutionStats {
        self.tracker.get("stats", &self.events, ExecutionStats::default(), || lock(&self.engine).stats())
    }
    fn reset(&mut self) -> VmResult<()> {
        self.call("reset", |e| e.reset())
    }
    fn invalidate(&mut self, scope: Invalidate<'_>) -> VmResult<()> {
        self.call("invalidate", |e| {
            e.invalidate(scope);
            Ok(())
        })
    }
    fn capabilities(&self) -> EngineCaps {
        self.tracker.get("capabilities", &self.events, EngineCaps::NONE, || {
            let mut e = lock(&self.engine);
            let hot =
                if e.hot_compilation().is_some() { EngineCaps::HOT_COMPILATION } else { EngineCaps::NONE };
            e.capabilities().union(hot)
        })
    }
    fn set_hot_threshold(&mut self, min: u32, max: u32) -> VmResult<()> {
        self.call("set_hot_threshold", |e| hot(e)?.set_hot_threshold(min, max))
    }
    fn hot_stats(&self) -> HotStats {
        guard("hot_stats", || Ok(hot(&mut *lock(&self.engine))?.hot_stats())).unwrap_or_default()
    }
    fn clear_hot(&mut self) -> VmResult<()> {
        self.call("clear_hot", |e| hot(e)?.clear())
    }
    fn precompile(&mut self, cpu: &mut CpuState, host: &HostCalls, pc: u64) -> VmResult<()> {
        self.call("precompile", |e| hot(e)?.precompile(cpu, host, pc))
    }
}

fn hot<E: Engine>(e: &mut E) -> Result<&mut dyn HotCompilation, VmError> {
    e.hot_compilation().ok_or_else(|| VmError::unsupported("this engine has no hot-code compiler"))
}
