//! The host's event bus: lifecycle transitions and plugin events, fanned out to subscribers and
//! logged through `tracing`.

use std::sync::{Arc, Mutex};
use vm_plugin_api::{EventSinkBox, VmEvent, event_sink};

/// Subscribers to the VM's events. Cheap to clone; clones share the subscriber list.
#[derive(Clone, Default)]
pub struct EventBus {
    sinks: Arc<Mutex<Vec<(u64, EventSinkBox)>>>,
    next: Arc<Mutex<u64>>,
}

impl EventBus {
    /// Adds a subscriber; returns its id.
    pub fn subscribe(&self, sink: EventSinkBox) -> u64 {
        let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        self.sinks.lock().unwrap_or_else(|p| p.into_inner()).push((*n, sink));
        *n
    }

    /// Adds a closure as a subscriber.
    pub fn subscribe_fn(&self, f: impl Fn(&VmEvent) + Send + Sync + 'static) -> u64 {
        self.subscribe(event_sink(f))
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut s = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        let before = s.len();
        s.retain(|(i, _)| *i != id);
        s.len() != before
    }

    /// Logs `event` and delivers it to every subscriber.
    pub fn publish(&self, event: &VmEvent) {
        match event {
            VmEvent::ComponentStarted(n) => tracing::info!(component = %n, "started"),
            VmEvent::ComponentStopped(n) => tracing::info!(component = %n, "stopped"),
            // The front end reports errors to the user itself; this is for following the sequence.
            VmEvent::ErrorOccurred(m) => tracing::debug!("error: {m}"),
            VmEvent::EngineSwapped { from, to } => tracing::info!(%from, %to, "engine swapped"),
            other => tracing::trace!(?other, "event"),
        }
        for (_, s) in self.sinks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            s.on_event(event);
        }
    }

    /// A sink that forwards into this bus, to subscribe to a plugin's own events.
    pub fn forwarder(&self) -> EventSinkBox {
        let bus = self.clone();
        event_sink(move |e| {
            // Per-slice statistics are too frequent to pass on (the VM publishes totals when a run
            // ends), and interrupt lines are published by the host for every device already.
            if !matches!(e, VmEvent::ExecutionCompleted(_) | VmEvent::DeviceInterrupt { .. }) {
                bus.publish(e)
            }
        })
    }
}
