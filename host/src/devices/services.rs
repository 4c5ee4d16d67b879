//! What the host does for device plugins besides the bus (`HostServices`): one-shot timers and a
//! stop request.
//!
//! All devices' timers share one host thread, started with the first timer: it sleeps until the
//! earliest deadline and calls the device's `handle_timer` with the device's bus lock held, as a
//! guest access would be, so a device needs no thread and no locking of its own for a tick.

use crate::devices::clint::HartSignal;
use crate::devices::plugin::PluginDevice;
use crate::devices::syscon::{PowerRequest, PowerState};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use vm_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use vm_plugin_api::abi_stable::std_types::{RArc, RStr};
use vm_plugin_api::cpu::attn;
use vm_plugin_api::device::HostServices_TO;
use vm_plugin_api::{HostServices, HostServicesArc};

/// Where a stop request goes: the power state the run loops watch, and every hart.
#[derive(Clone)]
pub struct StopTarget {
    /// Set to `Off(code)`.
    pub power: PowerState,
    /// Each raised, so every engine returns and every waiting hart notices.
    pub harts: Vec<HartSignal>,
}

type DeviceRef = Arc<OnceLock<Weak<Mutex<PluginDevice>>>>;

#[derive(Default)]
struct Pending {
    /// (device, token) → deadline.
    due: HashMap<(usize, u64), Instant>,
    devices: Vec<(String, DeviceRef)>,
    started: bool,
}

/// The timer thread's state, shared by every device's services object.
#[derive(Default)]
pub struct Timers {
    pending: Mutex<Pending>,
    changed: Condvar,
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The services object for a device that is not built yet: `bind` hands it the device.
    pub fn services(
        self: &Arc<Self>,
        id: &str,
        stop: StopTarget,
        start: Instant,
    ) -> (HostServicesArc, Binder) {
        let device = DeviceRef::default();
        let index = {
            let mut p = self.lock();
            p.devices.push((id.to_string(), Arc::clone(&device)));
            p.devices.len() - 1
        };
        let s = Services { timers: Arc::clone(self), index, stop, start, id: id.to_string() };
        (HostServices_TO::from_ptr(RArc::new(s), TD_Opaque), Binder(device))
    }

    fn run(self: Arc<Self>) {
        let mut p = self.lock();
        loop {
            let now = Instant::now();
            let expired: Vec<(usize, u64)> =
                p.due.iter().filter(|(_, d)| **d <= now).map(|(k, _)| *k).collect();
            if expired.is_empty() {
                let next = p.due.values().min().copied();
                p = match next {
                    Some(d) => self.changed.wait_timeout(p, d - now).unwrap_or_else(|e| e.into_inner()).0,
                    None => self.changed.wait(p).unwrap_or_else(|e| e.into_inner()),
                };
                continue;
            }
            for key in &expired {
                p.due.remove(key);
            }
            let targets: Vec<_> = expired
                .iter()
                .map(|&(i, token)| (p.devices[i].0.clone(), Arc::clone(&p.devices[i].1), token))
                .collect();
            // Unlocked while devices run: a device may set its next timer from the callback.
            drop(p);
            for (id, device, token) in targets {
                let Some(d) = device.get().and_then(Weak::upgrade) else { continue };
                let mut d = d.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = d.0.handle_timer(token).into_result() {
                    tracing::warn!("device '{id}': timer {token}: {e}");
                }
            }
            p = self.lock();
        }
    }
}

/// Gives a services object its device once the device exists.
pub struct Binder(DeviceRef);

impl Binder {
    /// Timers now call `device`.
    pub fn bind(self, device: &Arc<Mutex<PluginDevice>>) {
        let _ = self.0.set(Arc::downgrade(device));
    }
}

struct Services {
    timers: Arc<Timers>,
    index: usize,
    stop: StopTarget,
    start: Instant,
    id: String,
}

impl HostServices for Services {
    fn set_timer(&self, token: u64, delay_ns: u64) {
        let mut p = self.timers.lock();
        p.due.insert((self.index, token), Instant::now() + Duration::from_nanos(delay_ns));
        if !p.started {
            let timers = Arc::clone(&self.timers);
            match std::thread::Builder::new().name("vmhost-timers".into()).spawn(move || timers.run()) {
                Ok(_) => p.started = true,
                Err(e) => tracing::error!("device '{}': cannot start the timer thread: {e}", self.id),
            }
        }
        self.timers.changed.notify_one();
    }
    fn cancel_timer(&self, token: u64) {
        self.timers.lock().due.remove(&(self.index, token));
        self.timers.changed.notify_one();
    }
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    fn request_stop(&self, exit_code: i32, reason: RStr<'_>) {
        tracing::info!("device '{}' stops the VM: {reason}", self.id);
        self.stop.power.request(PowerRequest::Off(exit_code));
        for h in &self.stop.harts {
            h.attention.fetch_or(attn::EXIT, Ordering::SeqCst);
            h.wake.notify_one();
        }
    }
}
