//! Lifecycle states, events, and the event sink every component can publish to.

use crate::error::{ErrorKind, VmError, VmResult};
use crate::panic::guard_named;
use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, RString},
};

/// Where a component is in its life.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentStatus {
    /// Created, `init` not yet called.
    Uninitialized,
    /// `init` succeeded.
    Initialized,
    /// `start` is running.
    Starting,
    /// Started and serving.
    Running,
    /// `stop` is running.
    Stopping,
    /// Stopped; may be started again.
    Stopped,
    /// A lifecycle call failed or the component panicked.
    Error,
}

/// Counters an engine keeps about its own work.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionStats {
    /// Guest instructions retired by this engine.
    pub instructions: u64,
    /// IR blocks executed.
    pub blocks_executed: u64,
    /// IR blocks translated (cache misses).
    pub blocks_translated: u64,
    /// Times the translation cache was flushed.
    pub cache_flushes: u64,
}

/// Whether a memory event was a read or a write.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// A load.
    Read,
    /// A store.
    Write,
}

/// Something that happened in the VM, published to subscribers.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum VmEvent {
    /// A component finished `start`.
    ComponentStarted(RString),
    /// A component finished `stop`.
    ComponentStopped(RString),
    /// An engine returned from a run.
    ExecutionCompleted(ExecutionStats),
    /// A device access (published by devices that choose to trace).
    MemoryAccess {
        /// Guest physical address.
        addr: u64,
        /// Access width in bytes.
        size: u8,
        /// Read or write.
        kind: AccessKind,
    },
    /// A device raised (`true`) or lowered (`false`) an interrupt line.
    DeviceInterrupt {
        /// The interrupt line.
        irq: u32,
        /// The new level.
        level: bool,
    },
    /// A component reported an error.
    ErrorOccurred(RString),
    /// The running engine was replaced: `(old, new)` plugin names.
    EngineSwapped {
        /// The engine that stopped running the guest.
        from: RString,
        /// The engine that took over.
        to: RString,
    },
    /// An engine plugin was loaded again from a rebuilt library.
    EngineReloaded {
        /// The plugin's name.
        name: RString,
        /// How many times it has been loaded in this process (1 for the first load).
        generation: u64,
    },
    /// Two engines run in lockstep disagreed.
    LockstepDiverged {
        /// Guest pc of the block after which they differ.
        pc: u64,
        /// Instructions retired at that point.
        instret: u64,
        /// What differs.
        detail: RString,
    },
    /// Anything else a plugin wants to tell subscribers.
    Custom {
        /// Who publishes it (plugin name or device id).
        source: RString,
        /// A short machine-readable kind, defined by the publisher.
        kind: RString,
        /// Free text.
        detail: RString,
    },
}

/// Receives events. Implemented by the host and by anyone who subscribes.
#[sabi_trait]
pub trait EventSink: Send + Sync {
    /// Called once per event, on the publishing thread, with the publisher's subscriber list
    /// locked: keep it short, and do not subscribe, unsubscribe or publish to the same component
    /// from here.
    fn on_event(&self, event: &VmEvent);
}

/// A boxed event sink that crosses the boundary.
pub type EventSinkBox = EventSink_TO<'static, RBox<()>>;

/// Wraps a closure as an [`EventSinkBox`].
pub fn event_sink(f: impl Fn(&VmEvent) + Send + Sync + 'static) -> EventSinkBox {
    struct F<G>(G);
    impl<G: Fn(&VmEvent) + Send + Sync> EventSink for F<G> {
        fn on_event(&self, event: &VmEvent) {
            (self.0)(event)
        }
    }
    EventSink_TO::from_value(F(f), abi_stable::sabi_trait::TD_Opaque)
}

/// A list of subscribers, for components that publish events.
#[derive(Default)]
pub struct Subscribers {
    next: u64,
    sinks: Vec<(u64, EventSinkBox)>,
}

impl Subscribers {
    /// Adds a sink and returns its subscription id.
    pub fn add(&mut self, sink: EventSinkBox) -> u64 {
        self.next += 1;
        self.sinks.push((self.next, sink));
        self.next
    }
    /// Removes a subscription; returns whether it existed.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.sinks.len();
        self.sinks.retain(|(i, _)| *i != id);
        self.sinks.len() != before
    }
    /// Sends `event` to every subscriber.
    pub fn publish(&self, event: &VmEvent) {
        for (_, s) in &self.sinks {
            s.on_event(event);
        }
    }
}

/// A component's subscriber list, shared between the plugin-api adapter (which adds and removes
/// subscribers for the host) and the plugin (which publishes).
#[derive(Clone, Default)]
pub struct Events(std::sync::Arc<std::sync::Mutex<Subscribers>>);

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Adds a sink; returns its id.
    pub fn subscribe(&self, sink: EventSinkBox) -> u64 {
        self.lock().add(sink)
    }
    /// Removes a sink.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.lock().remove(id)
    }
    /// Sends `event` to every subscriber.
    pub fn publish(&self, event: &VmEvent) {
        self.lock().publish(event)
    }
}

/// Lifecycle and configuration, shared by engines and devices. Every method has a default, so a
/// plugin with nothing to do here writes `impl Component for MyPlugin {}`.
pub trait Component {
    /// Prepare (after creation, before start).
    fn init(&mut self) -> Result<(), VmError> {
        Ok(())
    }
    /// Begin serving.
    fn start(&mut self) -> Result<(), VmError> {
        Ok(())
    }
    /// Stop serving; flush anything buffered.
    fn stop(&mut self) -> Result<(), VmError> {
        Ok(())
    }
    /// Replaces the configuration (a TOML table).
    fn update_config(&mut self, toml: &str) -> Result<(), VmError> {
        self.validate_config(toml)
    }
    /// The configuration as TOML.
    fn get_config(&self) -> String {
        String::new()
    }
    /// Checks a configuration without applying it. By default only an empty table is valid.
    fn validate_config(&self, toml: &str) -> Result<(), VmError> {
        crate::config::expect_no_keys(toml)
    }
}

/// The adapters' bookkeeping: the component's status, and plugin calls with panics caught.
pub(crate) struct Tracker {
    label: String,
    /// A cell so a getter (`&self` across the ABI) can still mark the component failed.
    status: std::cell::Cell<ComponentStatus>,
}

impl Tracker {
    /// A tracker for the component described by `label` (used in panic messages).
    pub(crate) fn new(label: String) -> Self {
        Tracker { label, status: std::cell::Cell::new(ComponentStatus::Uninitialized) }
    }

    pub(crate) fn status(&self) -> ComponentStatus {
        self.status.get()
    }

    /// Runs a getter, which has no error channel across the ABI: a panic marks the component
    /// failed, is published to `events` as [`VmEvent::ErrorOccurred`] (so the host can say what
    /// happened), and gives `default`.
    pub(crate) fn get<T>(&self, what: &str, events: &Events, default: T, f: impl FnOnce() -> T) -> T {
        match guard_named(|| format!("{} {what}", self.label), || Ok(f())) {
            Ok(v) => v,
            Err(e) => {
                self.status.set(ComponentStatus::Error);
                events.publish(&VmEvent::ErrorOccurred(e.message));
                default
            }
        }
    }

    /// Runs plugin code; a panic becomes an error and marks the component failed.
    pub(crate) fn call<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T, VmError>) -> VmResult<T> {
        let r = guard_named(|| format!("{} {what}", self.label), f);
        if matches!(r, Err(VmError { kind: ErrorKind::Panic, .. })) {
            self.status.set(ComponentStatus::Error);
        }
        r.into()
    }

    /// Runs a lifecycle call: `during` while it runs, `after` if it succeeds, `Error` if not.
    pub(crate) fn transition(
        &mut self,
        what: &str,
        during: Option<ComponentStatus>,
        after: ComponentStatus,
        f: impl FnOnce() -> Result<(), VmError>,
    ) -> VmResult<()> {
        if let Some(s) = during {
            self.status.set(s);
        }
        let r = self.call(what, f);
        self.status.set(if r.is_ok() { after } else { ComponentStatus::Error });
        r
    }
}
