//! The device state that the guest's MMIO accesses and the stdin reader thread both touch.
//!
//! Lock order: the state mutex, then the host's interrupt line (`set_level` is called with the
//! state locked, so level changes reach the host in the order they happened), then the event
//! subscribers. The host must not call into this device from inside `set_level`.

use crate::uart::Uart;
use std::sync::{Condvar, Mutex, MutexGuard};
use vm_plugin_api::{Events, InterruptLineArc, VmEvent};

/// The UART and everything needed to keep its interrupt line and its input in step.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when received bytes are consumed or input is detached, for a waiting reader.
    rx_space: Condvar,
    irq: Option<InterruptLineArc>,
    events: Events,
}

pub(crate) struct State {
    pub(crate) uart: Uart,
    /// The level last given to the interrupt line.
    level: bool,
    /// Whether the stdin reader may deliver here; cleared to release a reader waiting for space.
    pub(crate) accepting_input: bool,
}

impl Shared {
    pub(crate) fn new(irq: Option<InterruptLineArc>, events: Events) -> Self {
        Shared {
            state: Mutex::new(State { uart: Uart::default(), level: false, accepting_input: false }),
            rx_space: Condvar::new(),
            irq,
            events,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain registers; one left half-updated by a panic is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the UART, then brings the interrupt line and any waiting reader up to date.
    pub(crate) fn with_uart<T>(&self, f: impl FnOnce(&mut Uart) -> T) -> T {
        let mut st = self.lock();
        let before = st.uart.rx_len();
        let r = f(&mut st.uart);
        if st.uart.rx_len() < before {
            self.rx_space.notify_all();
        }
        self.sync_irq(&mut st);
        r
    }

    /// Sets whether input is delivered; turning it off frees a reader waiting for space.
    pub(crate) fn set_accepting_input(&self, on: bool) {
        self.lock().accepting_input = on;
        self.rx_space.notify_all();
    }

    /// Queues received bytes, waiting while the queue is full. Gives up (dropping the rest) when
    /// input is detached, so a reader never waits on a device that is gone.
    pub(crate) fn deliver(&self, bytes: &[u8]) {
        let mut st = self.lock();
        for &b in bytes {
            while st.accepting_input && st.uart.rx_full() {
                // The guest must hear about the data before we wait for it to drain some.
                self.sync_irq(&mut st);
                st = self.rx_space.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if !st.accepting_input {
                break;
            }
            st.uart.receive(b);
        }
        self.sync_irq(&mut st);
    }

    /// Drives the interrupt line to the UART's level, calling the host only on a change.
    fn sync_irq(&self, st: &mut State) {
        let level = st.uart.irq_pending();
        if level == st.level {
            return;
        }
        st.level = level;
        if let Some(line) = &self.irq {
            line.set_level(level);
            self.events.publish(&VmEvent::DeviceInterrupt { irq: line.number(), level });
        }
    }
}
