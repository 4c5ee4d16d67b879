//! Execution engines: the host-call table they run against, and the engine trait.
//!
//! An engine executes IR on a host-owned [`CpuState`]. It asks the host for code through
//! [`HostCalls::translate`], does RAM accesses itself through [`GuestRam`], and calls the host for
//! everything else (device memory, faults, helpers). Plugin authors implement [`Engine`]; the
//! plugin-api adapts it to the FFI-safe [`FfiEngine`] and keeps panics on the plugin's side.

use crate::{
    cpu::CpuState,
    error::{VmError, VmResult},
    ir::IrBlock,
    lifecycle::{Component, ComponentStatus, EventSinkBox, Events, ExecutionStats, Tracker},
    memory::GuestRam,
    panic::guard,
};
use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};
use async_ffi::FfiFuture;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
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
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostResult {
    /// What to do next.
    pub flow: Flow,
    /// The loaded value or the helper's result (meaningful with [`Flow::Continue`]).
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

/// The table of host entry points an engine runs against.
///
/// Plain `extern "C"` function pointers with an opaque context, so a JIT can call them directly.
/// Engines use the safe methods; the fields are for code generators.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostCalls {
    /// Opaque host context, passed back to every call.
    pub ctx: *mut c_void,
    /// Guest RAM, for direct access on fast paths.
    pub ram: GuestRam,
    /// Non-zero when the host wants the engine to return at the next block boundary.
    pub exit_request: *const AtomicU32,
    /// Translates the block at a guest pc.
    pub translate_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64) -> Fetched,
    /// Slow-path load: device memory, faults. Arguments: address, size.
    pub load_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u8) -> HostResult,
    /// Slow-path store. Arguments: address, size, value.
    pub store_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u8, u64) -> HostResult,
    /// Helper call. Arguments: helper id, two values.
    pub helper_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u32, u64, u64) -> HostResult,
}

// SAFETY: the host that builds a HostCalls guarantees (see `HostCalls::new`) that its context may
// be used from whichever thread runs the engine, one call at a time.
unsafe impl Send for HostCalls {}

impl HostCalls {
    /// Builds a call table.
    ///
    /// # Safety
    /// `ctx` must stay valid, and `exit_request` must point to a live atomic, for as long as any copy
    /// of the table is used; the functions must be safe to call with `ctx` from the engine's thread.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn new(
        ctx: *mut c_void,
        ram: GuestRam,
        exit_request: *const AtomicU32,
        translate_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64) -> Fetched,
        load_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u8) -> HostResult,
        store_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u64, u8, u64) -> HostResult,
        helper_fn: unsafe extern "C" fn(*mut c_void, &mut CpuState, u32, u64, u64) -> HostResult,
    ) -> Self {
        HostCalls { ctx, ram, exit_request, translate_fn, load_fn, store_fn, helper_fn }
    }

    /// Asks the host for the IR block at `pc`.
    #[inline]
    pub fn translate(&self, cpu: &mut CpuState, pc: u64) -> Fetched {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.translate_fn)(self.ctx, cpu, pc) }
    }
    /// Slow-path load of `size` bytes at `addr` (set `cpu.pc`/`cpu.instret` first, see the IR docs).
    #[inline]
    pub fn load(&self, cpu: &mut CpuState, addr: u64, size: u8) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.load_fn)(self.ctx, cpu, addr, size) }
    }
    /// Slow-path store.
    #[inline]
    pub fn store(&self, cpu: &mut CpuState, addr: u64, size: u8, value: u64) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.store_fn)(self.ctx, cpu, addr, size, value) }
    }
    /// Calls host helper `id`.
    #[inline]
    pub fn helper(&self, cpu: &mut CpuState, id: u32, a: u64, b: u64) -> HostResult {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (self.helper_fn)(self.ctx, cpu, id, a, b) }
    }
    /// Whether the host asked the engine to return.
    #[inline(always)]
    pub fn exit_requested(&self) -> bool {
        // SAFETY: upheld by the contract of `HostCalls::new`.
        unsafe { (*self.exit_request).load(Ordering::Relaxed) != 0 }
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
    /// Runs from `cpu.pc` until an exit or until about `budget` instructions retired.
    fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> VmResult<ExitReason>;
    /// Executes exactly one IR block; leaves `cpu.pc` at the next pc.
    fn execute_block(&mut self, cpu: &mut CpuState, host: &HostCalls, block: &IrBlock) -> VmResult<Flow>;
    /// Whether `run_async` should be preferred to `run`.
    fn is_async(&self) -> bool;
    /// Runs like `run`, completing as a future.
    fn run_async(&mut self, job: AsyncRun) -> FfiFuture<AsyncRunDone>;
    /// Counters.
    fn stats(&self) -> ExecutionStats;
    /// Drops all cached translations and counters.
    fn reset(&mut self) -> VmResult<()>;
    /// Drops all cached translations (guest code changed, or the engine was swapped in).
    fn invalidate(&mut self);
    /// Whether the engine compiles hot code (the methods below work).
    fn has_hot_compilation(&self) -> bool;
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
    /// Drops cached translations.
    fn invalidate(&mut self);
    /// Drops cached translations and counters.
    fn reset(&mut self) -> Result<(), VmError> {
        self.invalidate();
        Ok(())
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
        guard("get_config", || Ok(lock(&self.engine).get_config())).unwrap_or_default().into()
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
        guard("is_async", || Ok(lock(&self.engine).prefers_async())).unwrap_or(false)
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
        guard("stats", || Ok(lock(&self.engine).stats())).unwrap_or_default()
    }
    fn reset(&mut self) -> VmResult<()> {
        self.call("reset", |e| e.reset())
    }
    fn invalidate(&mut self) {
        let _ = self.call("invalidate", |e| {
            e.invalidate();
            Ok(())
        });
    }
    fn has_hot_compilation(&self) -> bool {
        guard("hot_compilation", || Ok(lock(&self.engine).hot_compilation().is_some())).unwrap_or(false)
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
