//! A running virtual machine: lifecycle of its components and the vCPU run loops.
//!
//! Each hart has its own CPU state, engine instance and host-call context, and runs on its own
//! vCPU thread. A hart's loop takes pending interrupts, hands the CPU state to its engine for a
//! slice, and handles the engine's exit (slice over, `wfi`, power-off, error): a synchronous
//! engine is called directly, an asynchronous one has its `FfiFuture` driven to completion there.
//! The first hart to finish (power-off, error, stop) ends the run for all.

use crate::activity::Activity;
use crate::config::VmConfig;
use crate::devices::clint::HartSignal;
use crate::devices::syscon::PowerRequest;
use crate::error::HostError;
use crate::events::EventBus;
use crate::loader::{self, Plugin, SearchPath};
use crate::machine::Machine;
use crate::riscv::hart::{Hart, PRIV_M};
use crate::riscv::tlb::Tlb;
use crate::riscv::vcpu::{SharedVcpu, VcpuContext};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use vm_plugin_api::{
    AsyncRun, CpuState, EngineBox, EngineContext, ExecutionStats, ExitReason, Invalidate, PluginKind,
    VmError, VmEvent,
    abi_stable::std_types::{RBox, RSlice},
    cpu::attn,
};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The guest powered off with this exit code.
    PowerOff(i32),
    /// The guest asked for a reset (not yet supported: treated as the end of the run).
    Reset,
    /// The instruction limit given to [`Vm::run_until`] was reached, or a [`PauseHandle`] paused
    /// it: every hart is at a block boundary and the next run goes on from there.
    Paused,
    /// Stopped from outside (Ctrl-C, [`StopHandle::stop`]).
    Stopped,
}

/// Stops a running VM from another task or thread.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    harts: Vec<HartSignal>,
}

impl StopHandle {
    /// Asks the VM to stop at the engines' next block boundary.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        exit_all(&self.harts);
    }
}

/// Pauses a running VM from another task or thread: [`Vm::run_until`] returns
/// [`Outcome::Paused`] with every hart at a block boundary, so the engines can be swapped
/// ([`Vm::swap_engine`]) before the next run.
#[derive(Clone)]
pub struct PauseHandle {
    pause: Arc<AtomicBool>,
    harts: Vec<HartSignal>,
}

impl PauseHandle {
    /// Asks the current run (or the next, if none is in progress) to pause at the engines' next
    /// block boundary.
    pub fn pause(&self) {
        self.pause.store(true, Ordering::SeqCst);
        exit_all(&self.harts);
    }
}

/// Asks every hart's engine to return and every waiting hart to look again.
fn exit_all(harts: &[HartSignal]) {
    for h in harts {
        h.attention.fetch_or(attn::EXIT, Ordering::SeqCst);
        h.wake.notify_one();
    }
}

/// A started component. By position, not name: a device may share its id with the engine's name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Component {
    /// `machine.devices[i]`.
    Device(usize),
    /// The running engine (one instance per hart).
    Engine,
}

struct EngineSlot {
    engine: EngineBox,
    plugin: Plugin,
}

/// One hart between runs: its engine instance, its state, and its host-call context.
struct HartSlot {
    engine: EngineSlot,
    cpu: RBox<CpuState>,
    vcpu: Arc<SharedVcpu>,
}

/// A machine, its engines, and the CPU states they share.
pub struct Vm {
    machine: Machine,
    /// Empty only while a run has the harts, or after a run lost them.
    harts: Vec<HartSlot>,
    events: EventBus,
    stop: Arc<AtomicBool>,
    /// Set by a [`PauseHandle`]; cleared when a run pauses for it.
    pause: Arc<AtomicBool>,
    slice: u64,
    /// Components started so far, in start order, for stopping in reverse.
    started: Vec<Component>,
    activity: Arc<Activity>,
    /// Engine runs (slices) so far: each is an exit from and re-entry into the engine.
    engine_runs: u64,
}

impl Vm {
    /// Builds the machine `config` describes and loads its engine.
    pub fn new(config: &VmConfig) -> Result<Vm, HostError> {
        let search = SearchPath::new(&config.plugin_path);
        let events = EventBus::default();
        let machine = Machine::build(config, &search, &events)?;
        let plugin = loader::resolve(&config.engine, PluginKind::Engine, &search)
            .map_err(|e| config.error_at(config.engine_position, format!("key `engine.plugin`: {e}")))?;
        let info = &plugin.info;
        tracing::info!(
            "engine: plugin '{}' {} ({}); {}",
            info.name,
            info.version,
            plugin.source,
            plugin.build
        );
        let activity = Arc::new(Activity::new(Arc::clone(&machine.bus)));
        let num_harts = machine.harts.len() as u32;
        let mut harts = Vec::new();
        for (h, signal) in machine.harts.iter().enumerate() {
            let mut engine =
                create_engine(&plugin, &config.engine_config, h as u32, num_harts).map_err(|e| {
                    // A configuration error names its key: point at it in `[engine.config]`.
                    let key = (e.kind == vm_plugin_api::ErrorKind::Config)
                        .then(|| config.engine_config_keys.locate(e.message()))
                        .flatten();
                    let at = key.unwrap_or(config.engine_position);
                    config.error_at(at, format!("engine '{}': {}", plugin.info.name, e.message()))
                })?;
            engine.subscribe(events.forwarder());

            // Every hart starts at the entry, as QEMU's reset vector sends them all there.
            let mut cpu =
                CpuState { pc: machine.entry, privilege: PRIV_M, hart_id: h as u64, ..CpuState::default() };
            cpu.x[10] = h as u64; // a0: hart id
            cpu.x[11] = machine.dtb_addr; // a1: device tree
            cpu.x[12] = machine.fw_dynamic_info; // a2: as QEMU's reset vector leaves it
            // The machine keeps the word alive for as long as the state exists.
            cpu.attention = Arc::as_ptr(&signal.attention);
            let clint = machine.clint.for_hart(h);
            let hart = Hart::new(h as u64, clint.clone(), machine.plic.hart_lines(h));
            hart.sync_context(&mut cpu);
            let mut tlb = Tlb::default();
            tlb.attach(&mut cpu);
            let vcpu = SharedVcpu::new(VcpuContext {
                hart,
                ram: machine.ram.view(),
                bus: Arc::clone(&machine.bus),
                power: machine.power.clone(),
                error: None,
                attention: Arc::clone(&signal.attention),
                activity: Arc::clone(&activity),
                clint,
                tlb,
                code: Arc::clone(&machine.code),
                hart_index: h,
                code_mappings: Default::default(),
            });
            let engine = EngineSlot { engine, plugin: plugin.clone() };
            harts.push(HartSlot { engine, cpu: RBox::new(cpu), vcpu });
        }
        let vm = Vm {
            machine,
            harts,
            events,
            stop: Arc::new(AtomicBool::new(false)),
            pause: Arc::new(AtomicBool::new(false)),
            slice: config.slice,
            started: Vec::new(),
            activity,
            engine_runs: 0,
        };
        for d in &vm.machine.devices {
            d.device.lock().unwrap_or_else(|p| p.into_inner()).0.subscribe(vm.events.forwarder());
        }
        Ok(vm)
    }

    /// The VM's events.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// A handle that stops the VM from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { stop: Arc::clone(&self.stop), harts: self.machine.harts.clone() }
    }

    /// A handle that pauses the VM from another task or thread.
    pub fn pause_handle(&self) -> PauseHandle {
        PauseHandle { pause: Arc::clone(&self.pause), harts: self.machine.harts.clone() }
    }

    /// What the VM is busy with, for naming a component that does not stop.
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// How many times the engines have been entered (one slice each, all harts together).
    /// Interrupts, `wfi` that need not wait and device writes are handled inside a run, so this
    /// grows with the slice count and real waits, not with the guest's interrupt rate.
    pub fn engine_runs(&self) -> u64 {
        self.engine_runs
    }

    /// Hart 0's CPU state (between runs).
    pub fn cpu(&self) -> &CpuState {
        self.cpu_of(0)
    }

    /// Hart `hart`'s CPU state (between runs).
    pub fn cpu_of(&self, hart: usize) -> &CpuState {
        &self.harts.get(hart).expect("CPU state is only away during an engine run").cpu
    }

    /// The engine's name and its counters, summed over the harts.
    pub fn engine_stats(&self) -> (String, ExecutionStats) {
        let name = self.harts.first().map_or_else(String::new, |h| h.engine.plugin.info.name.to_string());
        let mut total = ExecutionStats::default();
        for h in &self.harts {
            let s = h.engine.engine.stats();
            total.instructions += s.instructions;
            total.blocks_executed += s.blocks_executed;
            total.blocks_translated += s.blocks_translated;
            total.cache_flushes += s.cache_flushes;
        }
        (name, total)
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Initialises every component, then starts them in order: devices as listed, then the engine.
    pub fn start(&mut self) -> Result<(), HostError> {
        for d in &self.machine.devices {
            lock(&d.device).0.init().into_result().map_err(|e| component_error(&d.id, "init", e))?;
        }
        for h in &mut self.harts {
            let slot = &mut h.engine;
            slot.engine
                .init()
                .into_result()
                .map_err(|e| component_error(&slot.plugin.info.name, "init", e))?;
        }
        for i in 0..self.machine.devices.len() {
            let d = &self.machine.devices[i];
            lock(&d.device).0.start().into_result().map_err(|e| component_error(&d.id, "start", e))?;
            self.started(Component::Device(i));
        }
        for h in &mut self.harts {
            let name = h.engine.plugin.info.name.to_string();
            h.engine.engine.start().into_result().map_err(|e| component_error(&name, "start", e))?;
        }
        self.started(Component::Engine);
        Ok(())
    }

    fn name(&self, c: Component) -> String {
        match c {
            Component::Device(i) => self.machine.devices[i].id.clone(),
            Component::Engine => {
                self.harts.first().map_or_else(String::new, |h| h.engine.plugin.info.name.to_string())
            }
        }
    }

    fn started(&mut self, c: Component) {
        self.events.publish(&VmEvent::ComponentStarted(self.name(c).as_str().into()));
        self.started.push(c);
    }

    /// Stops every started component in reverse start order. Every component is asked even if
    /// one fails; the first failure is returned.
    pub fn shutdown(&mut self) -> Result<(), HostError> {
        let mut first_error = None;
        while let Some(c) = self.started.pop() {
            let name = self.name(c);
            let activity = Arc::clone(&self.activity);
            let kind = if c == Component::Engine { "engine" } else { "device" };
            let _busy = activity.enter(format!("{kind} '{name}' (its stop has not returned)"));
            let r = match c {
                Component::Engine => {
                    // Every instance is asked; the first failure is the one reported.
                    let results: Vec<_> =
                        self.harts.iter_mut().map(|h| h.engine.engine.stop().into_result()).collect();
                    (!results.is_empty()).then(|| results.into_iter().collect::<Result<(), _>>())
                }
                Component::Device(i) => Some(lock(&self.machine.devices[i].device).0.stop().into_result()),
            };
            match r {
                Some(Ok(())) => self.events.publish(&VmEvent::ComponentStopped(name.as_str().into())),
                Some(Err(e)) => {
                    let err = component_error(&name, "stop", e);
                    self.events.publish(&VmEvent::ErrorOccurred(err.to_string().into()));
                    first_error.get_or_insert(err);
                }
                None => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts, runs until the guest powers off or the VM is stopped, and stops every component,
    /// also after an error.
    pub async fn run(&mut self) -> Result<Outcome, HostError> {
        self.run_with(|_| false).await
    }

    /// As [`Vm::run`]; each time a [`PauseHandle`] pauses the run, calls `paused` with every hart
    /// at a block boundary (to swap the engine, say), and goes on if it returns true.
    pub async fn run_with(&mut self, mut paused: impl FnMut(&mut Vm) -> bool) -> Result<Outcome, HostError> {
        let r = match self.start() {
            Ok(()) => loop {
                match self.run_until(u64::MAX).await {
                    Ok(Outcome::Paused) if paused(self) => {}
                    r => break r,
                }
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            self.events.publish(&VmEvent::ErrorOccurred(e.to_string().into()));
        }
        let s = self.shutdown();
        let outcome = r?;
        s?;
        Ok(outcome)
    }

    /// Runs the guest until it powers off, the VM is stopped, or about `limit` instructions have
    /// retired in total (checked between slices).
    ///
    /// The hart's loop runs on a dedicated vCPU thread for the whole call, so an engine exit (an
    /// interrupt, `wfi`, a slice's end) costs a trip round that loop, not a task hand-off.
    pub async fn run_until(&mut self, limit: u64) -> Result<Outcome, HostError> {
        if self.harts.is_empty() {
            return Err(HostError::Other(
                "the guest was lost by an earlier run; the VM cannot run again".into(),
            ));
        }
        let watcher = self.spawn_timer_watcher();
        // Set when the first hart finishes: the others return at their next block boundary.
        let halt = Arc::new(AtomicBool::new(false));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let slots = std::mem::take(&mut self.harts);
        let count = slots.len();
        let mut lost = Vec::new();
        for (h, slot) in slots.into_iter().enumerate() {
            let hart = HartLoop {
                index: h,
                vcpu: Arc::clone(&slot.vcpu),
                power: self.machine.power.clone(),
                stop: Arc::clone(&self.stop),
                pause: Arc::clone(&self.pause),
                halt: Arc::clone(&halt),
                signal: self.machine.harts[h].clone(),
                clint: self.machine.clint.for_hart(h),
                activity: Arc::clone(&self.activity),
                slice: self.slice,
                runtime: tokio::runtime::Handle::current(),
            };
            // The hart goes to its thread once it runs, so a thread that cannot start loses nothing.
            let (slot_tx, slot_rx) = std::sync::mpsc::channel::<HartSlot>();
            let done = done_tx.clone();
            let spawned = std::thread::Builder::new().name(format!("vcpu{h}")).spawn(move || {
                let Ok(mut slot) = slot_rx.recv() else { return };
                crate::devices::clint::set_current_hart(h);
                let mut runs = 0;
                let r = hart.run(&mut slot.engine, &mut slot.cpu, limit, &mut runs);
                let _ = done.send((h, slot, runs, r));
            });
            let handed = match spawned {
                Ok(_) => slot_tx.send(slot).map_err(|std::sync::mpsc::SendError(s)| (s, None)),
                Err(e) => Err((slot, Some(e))),
            };
            if let Err((slot, e)) = handed {
                let why = e.map_or_else(|| "it ended at once".to_string(), |e| e.to_string());
                lost.push((h, slot, why));
            }
        }
        drop(done_tx);
        if !lost.is_empty() {
            halt.store(true, Ordering::SeqCst);
            exit_all(&self.machine.harts);
        }
        let mut back: Vec<Option<HartSlot>> = (0..count).map(|_| None).collect();
        let mut first: Option<Result<Outcome, HostError>> = None;
        for (h, slot, why) in lost {
            back[h] = Some(slot);
            first.get_or_insert(Err(HostError::Other(format!(
                "cannot start the vCPU thread of hart {h}: {why}"
            ))));
        }
        while let Some((h, slot, runs, r)) = done_rx.recv().await {
            if first.is_none() {
                halt.store(true, Ordering::SeqCst);
                exit_all(&self.machine.harts);
                first = Some(r);
            } else if let Err(e) = r {
                tracing::warn!("hart {h}: {e}");
            }
            self.engine_runs += runs;
            back[h] = Some(slot);
        }
        watcher.abort();
        let r = if back.iter().all(Option::is_some) {
            self.harts = back.into_iter().flatten().collect();
            first.unwrap_or(Ok(Outcome::Stopped))
        } else {
            Err(HostError::Other("a vCPU thread ended without handing back its hart".into()))
        };
        if matches!(r, Ok(Outcome::Paused)) {
            self.pause.store(false, Ordering::SeqCst);
        }
        // The attention words still hold the halt; the next run starts from a clean slate.
        for h in &self.machine.harts {
            h.attention.fetch_and(!attn::EXIT, Ordering::SeqCst);
        }
        if !self.harts.is_empty() {
            self.events.publish(&VmEvent::ExecutionCompleted(self.engine_stats().1));
        }
        r
    }

    /// Asks the engine to return when the guest's timer fires, so the interrupt is taken promptly.
    fn spawn_timer_watcher(&self) -> tokio::task::JoinHandle<()> {
        let clint = self.machine.clint.clone();
        let changed = clint.changed();
        tokio::spawn(async move {
            loop {
                // Harts whose timer is already due were told; wait for the next deadline ahead,
                // or for an mtimecmp write.
                clint.signal_due();
                let now = Instant::now();
                match (0..clint.harts())
                    .filter_map(|h| clint.for_hart(h).deadline())
                    .filter(|d| *d > now)
                    .min()
                {
                    Some(d) => tokio::select! {
                        _ = tokio::time::sleep_until(d.into()) => {}
                        _ = changed.notified() => {}
                    },
                    None => changed.notified().await,
                }
            }
        })
    }

    /// Replaces every hart's engine with a new instance of `plugin`, keeping the guest's state.
    /// The new engines start with no cached translations.
    pub fn swap_engine(&mut self, plugin: Plugin, config: &str) -> Result<(), HostError> {
        let to = plugin.info.name.to_string();
        let num_harts = self.harts.len() as u32;
        let mut engines = Vec::new();
        for h in 0..num_harts {
            let mut engine = create_engine(&plugin, config, h, num_harts)
                .map_err(|e| component_error(&plugin.info.name, "create", e))?;
            engine.init().into_result().map_err(|e| component_error(&to, "init", e))?;
            engine.start().into_result().map_err(|e| component_error(&to, "start", e))?;
            engine
                .invalidate(Invalidate::All)
                .into_result()
                .map_err(|e| component_error(&to, "invalidate", e))?;
            engine.subscribe(self.events.forwarder());
            engines.push(engine);
        }
        let from = self.harts.first().map_or_else(String::new, |h| h.engine.plugin.info.name.to_string());
        let mut stopped = Ok(());
        for (h, engine) in self.harts.iter_mut().zip(engines) {
            let old = std::mem::replace(&mut h.engine, EngineSlot { engine, plugin: plugin.clone() });
            let mut old_engine = old.engine;
            let r = old_engine.stop().into_result();
            if stopped.is_ok() {
                stopped = r;
            }
        }
        self.started.retain(|c| *c != Component::Engine);
        if stopped.is_ok() {
            self.events.publish(&VmEvent::ComponentStopped(from.as_str().into()));
        }
        self.events.publish(&VmEvent::EngineSwapped { from: from.as_str().into(), to: to.as_str().into() });
        self.started(Component::Engine);
        stopped.map_err(|e| component_error(&from, "stop", e))
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn component_error(name: &str, what: &str, e: VmError) -> HostError {
    VmError::new(e.kind, format!("{name}: {what} failed: {}", e.message)).into()
}

fn create_engine(plugin: &Plugin, config: &str, hart_id: u32, num_harts: u32) -> Result<EngineBox, VmError> {
    let create = plugin
        .module
        .create_engine()
        .ok_or_else(|| VmError::engine(format!("plugin '{}' has no engine factory", plugin.info.name)))?;
    create(&EngineContext { config: config.into(), hart_id, num_harts, vm_id: 0 }).into_result()
}

/// A hart's run loop and what it needs, moved onto its vCPU thread for a run.
struct HartLoop {
    index: usize,
    vcpu: Arc<SharedVcpu>,
    power: crate::devices::syscon::PowerState,
    /// A stop from outside (Ctrl-C, a stop handle).
    stop: Arc<AtomicBool>,
    /// A pause from outside (a pause handle).
    pause: Arc<AtomicBool>,
    /// Another hart finished the run.
    halt: Arc<AtomicBool>,
    signal: HartSignal,
    clint: crate::devices::clint::Clint,
    activity: Arc<Activity>,
    slice: u64,
    /// For waiting (`wfi`) and for driving an asynchronous engine's future on this thread.
    runtime: tokio::runtime::Handle,
}

impl HartLoop {
    fn run(
        &self,
        slot: &mut EngineSlot,
        cpu: &mut RBox<CpuState>,
        limit: u64,
        runs: &mut u64,
    ) -> Result<Outcome, HostError> {
        let name = slot.plugin.info.name.to_string();
        let _busy = self.activity.enter(format!("engine '{name}'"));
        let is_async = slot.engine.is_async();
        loop {
            if let Some(p) = self.power.get() {
                return Ok(match p {
                    PowerRequest::Off(code) => Outcome::PowerOff(code),
                    PowerRequest::Reset => Outcome::Reset,
                });
            }
            if self.stop.load(Ordering::SeqCst) || self.halt.load(Ordering::SeqCst) {
                return Ok(Outcome::Stopped);
            }
            if self.pause.load(Ordering::SeqCst) {
                return Ok(Outcome::Paused);
            }
            let instret = cpu.instret;
            if instret >= limit {
                return Ok(Outcome::Paused);
            }
            let attention = self.signal.attention.swap(0, Ordering::SeqCst);
            self.clint.observe_instret(instret);
            {
                // SAFETY: no engine run is in flight.
                let ctx = unsafe { self.vcpu.get() };
                // Code changed under the engine (stores, DMA): it drops those pages' code before
                // it runs on. Taken after clearing the word, so a page queued meanwhile raises it
                // again.
                if attention & attn::CODE != 0 {
                    let pages = ctx.code.take_invalidated(self.index);
                    if !pages.is_empty() {
                        let scope = Invalidate::Pages(RSlice::from_slice(&pages));
                        slot.engine
                            .invalidate(scope)
                            .into_result()
                            .map_err(|e| component_error(&name, "invalidate", e))?;
                    }
                }
                // Another hart marked code pages: re-protect them in this hart's TLB.
                if attention & attn::TLB != 0 {
                    ctx.tlb.flush();
                }
                if attention & attn::FLUSH_VIRT != 0 {
                    let scope = Invalidate::VirtualMappings;
                    slot.engine
                        .invalidate(scope)
                        .into_result()
                        .map_err(|e| component_error(&name, "invalidate", e))?;
                }
                if let Some(code) = ctx.hart.interrupt_to_take() {
                    ctx.hart.take_interrupt(cpu, code);
                }
            }
            // With the instruction clock the slice ends at the timer's deadline, so the interrupt
            // comes at the same instruction in every run.
            let budget = self.slice.min(limit - instret);
            let budget = self.clint.instructions_to_deadline().map_or(budget, |n| budget.min(n));
            let host = self.vcpu.host_calls();
            *runs += 1;
            let r = if is_async {
                let job =
                    AsyncRun { cpu: std::mem::replace(cpu, RBox::new(CpuState::default())), host, budget };
                let done = self.runtime.block_on(slot.engine.run_async(job));
                *cpu = done.cpu;
                done.result.into_result()
            } else {
                slot.engine.run(cpu, &host, budget).into_result()
            };
            match r.map_err(|e| component_error(&name, "run", e))? {
                ExitReason::BudgetExhausted | ExitReason::ExitRequested | ExitReason::Halt => {}
                ExitReason::Debug => {
                    return Err(
                        VmError::engine("the engine stopped for a debugger, but none is attached").into()
                    );
                }
                ExitReason::Wfi => self.wait_for_interrupt(),
                ExitReason::HostError => {
                    // SAFETY: no engine run is in flight.
                    let e = unsafe { self.vcpu.get() }.error.take();
                    return Err(e.unwrap_or_else(|| VmError::engine("engine reported a host error")).into());
                }
            }
        }
    }

    /// Sleeps until an interrupt is pending and enabled in `mie` (what ends `wfi`), or the VM is
    /// stopped.
    fn wait_for_interrupt(&self) {
        loop {
            // SAFETY: no engine run is in flight.
            let hart = &unsafe { self.vcpu.get() }.hart;
            let halted = [&self.stop, &self.halt, &self.pause].iter().any(|f| f.load(Ordering::SeqCst));
            if halted || self.power.get().is_some() || hart.wake_pending() {
                return;
            }
            // With the instruction clock, sleeping until the timer is skipping to it.
            if hart.mie & crate::riscv::csr::MIP_MTIP != 0 && self.clint.skip_to_deadline() {
                continue;
            }
            let wake = Arc::clone(&self.signal.wake);
            // A deadline already past cannot wake the hart (its interrupt is masked): waiting on
            // it would spin.
            match self.clint.deadline().filter(|d| *d > Instant::now()) {
                Some(d) => self.runtime.block_on(async {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep_until(d.into()) => {}
                    }
                }),
                None => self.runtime.block_on(wake.notified()),
            }
        }
    }
}
