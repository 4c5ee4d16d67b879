//! A running virtual machine: lifecycle of its components and the vCPU run loop.
//!
//! The loop takes pending interrupts, hands the CPU state to the engine for a slice, and handles
//! the engine's exit (slice over, `wfi`, power-off, error). It runs on a dedicated vCPU thread: a
//! synchronous engine is called directly, an asynchronous one has its `FfiFuture` driven to
//! completion there.

use crate::activity::Activity;
use crate::config::VmConfig;
use crate::devices::syscon::PowerRequest;
use crate::error::HostError;
use crate::events::EventBus;
use crate::loader::{self, Plugin, SearchPath};
use crate::machine::Machine;
use crate::riscv::hart::{Hart, PRIV_M};
use crate::riscv::tlb::Tlb;
use crate::riscv::vcpu::{SharedVcpu, VcpuContext};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
    /// The instruction limit given to [`Vm::run_until`] was reached.
    Paused,
    /// Stopped from outside (Ctrl-C, [`StopHandle::stop`]).
    Stopped,
}

/// Stops a running VM from another task or thread.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    attention: Arc<AtomicU32>,
    wake: Arc<tokio::sync::Notify>,
}

impl StopHandle {
    /// Asks the VM to stop at the engine's next block boundary.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.attention.fetch_or(vm_plugin_api::cpu::attn::EXIT, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// A started component. By position, not name: a device may share its id with the engine's name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Component {
    /// `machine.devices[i]`.
    Device(usize),
    /// The running engine.
    Engine,
}

struct EngineSlot {
    engine: EngineBox,
    plugin: Plugin,
}

/// A machine, its engine, and the CPU state they share.
pub struct Vm {
    machine: Machine,
    engine: Option<EngineSlot>,
    cpu: Option<RBox<CpuState>>,
    vcpu: Arc<SharedVcpu>,
    events: EventBus,
    stop: Arc<AtomicBool>,
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
        let engine = create_engine(&plugin, &config.engine_config).map_err(|e| {
            // A configuration error names its key: point at it in `[engine.config]`.
            let key = (e.kind == vm_plugin_api::ErrorKind::Config)
                .then(|| config.engine_config_keys.locate(e.message()))
                .flatten();
            let at = key.unwrap_or(config.engine_position);
            config.error_at(at, format!("engine '{}': {}", plugin.info.name, e.message()))
        })?;

        let mut cpu = CpuState { pc: machine.entry, privilege: PRIV_M, ..CpuState::default() };
        cpu.x[10] = 0; // a0: hart id
        cpu.x[11] = machine.dtb_addr; // a1: device tree
        cpu.x[12] = machine.fw_dynamic_info; // a2: as QEMU's reset vector leaves it
        // The machine keeps the word alive for as long as the state exists.
        cpu.attention = Arc::as_ptr(&machine.attention);
        let activity = Arc::new(Activity::new(Arc::clone(&machine.bus)));
        let hart = Hart::new(0, machine.clint.clone(), machine.plic.hart_lines(0));
        hart.sync_context(&mut cpu);
        let mut tlb = Tlb::default();
        tlb.attach(&mut cpu);
        let vcpu = SharedVcpu::new(VcpuContext {
            hart,
            ram: machine.ram.view(),
            bus: Arc::clone(&machine.bus),
            power: machine.power.clone(),
            error: None,
            attention: Arc::clone(&machine.attention),
            activity: Arc::clone(&activity),
            clint: machine.clint.clone(),
            tlb,
            code: Arc::clone(&machine.code),
        });
        let mut vm = Vm {
            machine,
            engine: None,
            cpu: Some(RBox::new(cpu)),
            vcpu,
            events,
            stop: Arc::new(AtomicBool::new(false)),
            slice: config.slice,
            started: Vec::new(),
            activity,
            engine_runs: 0,
        };
        vm.install_engine(engine, plugin);
        for d in &vm.machine.devices {
            d.device.lock().unwrap_or_else(|p| p.into_inner()).0.subscribe(vm.events.forwarder());
        }
        Ok(vm)
    }

    fn install_engine(&mut self, mut engine: EngineBox, plugin: Plugin) {
        engine.subscribe(self.events.forwarder());
        self.engine = Some(EngineSlot { engine, plugin });
    }

    /// The VM's events.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// A handle that stops the VM from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: Arc::clone(&self.stop),
            attention: Arc::clone(&self.machine.attention),
            wake: Arc::clone(&self.machine.wake),
        }
    }

    /// What the VM is busy with, for naming a component that does not stop.
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// How many times the engine has been entered (one slice each). Interrupts, `wfi` that need
    /// not wait and device writes are handled inside a run, so this grows with the slice count and
    /// real waits, not with the guest's interrupt rate.
    pub fn engine_runs(&self) -> u64 {
        self.engine_runs
    }

    /// The guest's CPU state (between runs).
    pub fn cpu(&self) -> &CpuState {
        self.cpu.as_deref().expect("CPU state is only away during an engine run")
    }

    /// The running engine's name and counters.
    pub fn engine_stats(&self) -> (String, ExecutionStats) {
        let slot = self.engine.as_ref().expect("engine is only away during an engine run");
        (slot.plugin.info.name.to_string(), slot.engine.stats())
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
        let slot = self.engine.as_mut().expect("engine present");
        slot.engine.init().into_result().map_err(|e| component_error(&slot.plugin.info.name, "init", e))?;
        for i in 0..self.machine.devices.len() {
            let d = &self.machine.devices[i];
            lock(&d.device).0.start().into_result().map_err(|e| component_error(&d.id, "start", e))?;
            self.started(Component::Device(i));
        }
        let slot = self.engine.as_mut().expect("engine present");
        let name = slot.plugin.info.name.to_string();
        slot.engine.start().into_result().map_err(|e| component_error(&name, "start", e))?;
        self.started(Component::Engine);
        Ok(())
    }

    fn name(&self, c: Component) -> String {
        match c {
            Component::Device(i) => self.machine.devices[i].id.clone(),
            Component::Engine => {
                self.engine.as_ref().map_or_else(String::new, |s| s.plugin.info.name.to_string())
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
                Component::Engine => self.engine.as_mut().map(|s| s.engine.stop().into_result()),
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
        let r = match self.start() {
            Ok(()) => self.run_until(u64::MAX).await,
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
        let (Some(slot), Some(cpu)) = (self.engine.take(), self.cpu.take()) else {
            return Err(HostError::Other(
                "the guest was lost by an earlier run; the VM cannot run again".into(),
            ));
        };
        let watcher = self.spawn_timer_watcher();
        let hart = HartLoop {
            vcpu: Arc::clone(&self.vcpu),
            power: self.machine.power.clone(),
            stop: Arc::clone(&self.stop),
            attention: Arc::clone(&self.machine.attention),
            wake: Arc::clone(&self.machine.wake),
            clint: self.machine.clint.clone(),
            activity: Arc::clone(&self.activity),
            slice: self.slice,
            runtime: tokio::runtime::Handle::current(),
        };
        // The guest goes to the thread once it runs, so a thread that cannot start loses nothing.
        let (guest_tx, guest_rx) = std::sync::mpsc::channel::<(EngineSlot, RBox<CpuState>)>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new().name("vcpu0".into()).spawn(move || {
            let Ok((mut slot, mut cpu)) = guest_rx.recv() else { return };
            let mut runs = 0;
            let r = hart.run(&mut slot, &mut cpu, limit, &mut runs);
            let _ = done_tx.send((slot, cpu, runs, r));
        });
        let handed = match spawned {
            Ok(_) => guest_tx.send((slot, cpu)).map_err(|std::sync::mpsc::SendError(g)| (g, None)),
            Err(e) => Err(((slot, cpu), Some(e))),
        };
        let r = match handed {
            Err(((slot, cpu), e)) => {
                self.engine = Some(slot);
                self.cpu = Some(cpu);
                let why = e.map_or_else(|| "it ended at once".to_string(), |e| e.to_string());
                Err(HostError::Other(format!("cannot start the vCPU thread: {why}")))
            }
            Ok(()) => match done_rx.await {
                Ok((slot, cpu, runs, r)) => {
                    self.engine = Some(slot);
                    self.cpu = Some(cpu);
                    self.engine_runs += runs;
                    r
                }
                Err(_) => {
                    Err(HostError::Other("the vCPU thread ended without handing back the guest".into()))
                }
            },
        };
        watcher.abort();
        if let Some(slot) = &self.engine {
            self.events.publish(&VmEvent::ExecutionCompleted(slot.engine.stats()));
        }
        r
    }

    /// Asks the engine to return when the guest's timer fires, so the interrupt is taken promptly.
    fn spawn_timer_watcher(&self) -> tokio::task::JoinHandle<()> {
        let clint = self.machine.clint.clone();
        let changed = clint.changed();
        let flag = Arc::clone(&self.machine.attention);
        tokio::spawn(async move {
            loop {
                if let Some(d) = clint.deadline() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d.into()) => {
                            flag.fetch_or(vm_plugin_api::cpu::attn::IRQ, Ordering::SeqCst);
                            changed.notified().await;
                        }
                        _ = changed.notified() => {}
                    }
                } else {
                    changed.notified().await;
                }
            }
        })
    }

    /// Replaces the running engine with a new instance of `plugin`, keeping the guest's state.
    /// The new engine starts with no cached translations.
    pub fn swap_engine(&mut self, plugin: Plugin, config: &str) -> Result<(), HostError> {
        let mut engine =
            create_engine(&plugin, config).map_err(|e| component_error(&plugin.info.name, "create", e))?;
        let to = plugin.info.name.to_string();
        engine.init().into_result().map_err(|e| component_error(&to, "init", e))?;
        engine.start().into_result().map_err(|e| component_error(&to, "start", e))?;
        engine
            .invalidate(Invalidate::All)
            .into_result()
            .map_err(|e| component_error(&to, "invalidate", e))?;
        let mut old = self.engine.take().expect("engine present between runs");
        let from = old.plugin.info.name.to_string();
        let stopped = old.engine.stop().into_result();
        self.started.retain(|c| *c != Component::Engine);
        if stopped.is_ok() {
            self.events.publish(&VmEvent::ComponentStopped(from.as_str().into()));
        }
        self.install_engine(engine, plugin);
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

fn create_engine(plugin: &Plugin, config: &str) -> Result<EngineBox, VmError> {
    let create = plugin
        .module
        .create_engine()
        .ok_or_else(|| VmError::engine(format!("plugin '{}' has no engine factory", plugin.info.name)))?;
    create(&EngineContext::single(config)).into_result()
}

/// The hart's run loop and what it needs, moved onto the vCPU thread for a run.
struct HartLoop {
    vcpu: Arc<SharedVcpu>,
    power: crate::devices::syscon::PowerState,
    stop: Arc<AtomicBool>,
    attention: Arc<AtomicU32>,
    wake: Arc<tokio::sync::Notify>,
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
            if self.stop.load(Ordering::SeqCst) {
                return Ok(Outcome::Stopped);
            }
            let instret = cpu.instret;
            if instret >= limit {
                return Ok(Outcome::Paused);
            }
            let attention = self.attention.swap(0, Ordering::SeqCst);
            self.clint.observe_instret(instret);
            {
                // SAFETY: no engine run is in flight.
                let ctx = unsafe { self.vcpu.get() };
                // Code changed under the engine (stores, DMA): it drops those pages' code before
                // it runs on. Taken after clearing the word, so a page queued meanwhile raises it
                // again.
                if attention & attn::CODE != 0 {
                    let pages = ctx.code.take_invalidated();
                    if !pages.is_empty() {
                        let scope = Invalidate::Pages(RSlice::from_slice(&pages));
                        slot.engine
                            .invalidate(scope)
                            .into_result()
                            .map_err(|e| component_error(&name, "invalidate", e))?;
                    }
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
            if self.stop.load(Ordering::SeqCst) || self.power.get().is_some() || hart.wake_pending() {
                return;
            }
            // With the instruction clock, sleeping until the timer is skipping to it.
            if hart.mie & crate::riscv::csr::MIP_MTIP != 0 && self.clint.skip_to_deadline() {
                continue;
            }
            let wake = Arc::clone(&self.wake);
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
