//! The device state that the guest's MMIO accesses, the host's timers and the stdin reader thread
//! all touch.
//!
//! Received bytes wait in a host-side queue, as in QEMU's character devices, and move into the
//! UART whenever it can take them ([`Uart::can_receive`]), so input is held back, not lost,
//! while the guest is busy.
//!
//! Lock order: the state mutex, then the host's interrupt line (`set_level` is called with the
//! state locked, so level changes reach the host in the order they happened), then the event
//! subscribers. Timer requests go to the host after the state lock is released. The host must
//! not call into this device from inside `set_level`, `set_timer` or `cancel_timer`.

use crate::uart::{Timer, Uart};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use vm_plugin_api::{Events, HostServicesArc, InterruptLineArc, VmEvent};

/// How many received bytes wait on the host side before the input reader waits for the guest.
pub(crate) const PENDING_CAPACITY: usize = 4096;

/// The token of the UART's one timer, the character timeout.
pub(crate) const TIMEOUT_TOKEN: u64 = 1;

/// The UART and everything needed to keep its interrupt line and its input in step.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when queued input moves into the UART or input is detached, for a waiting reader.
    rx_space: Condvar,
    irq: Option<InterruptLineArc>,
    pub(crate) host: HostServicesArc,
    events: Events,
}

pub(crate) struct State {
    pub(crate) uart: Uart,
    /// Received bytes the UART has no room for yet.
    pending: VecDeque<u8>,
    /// The level last given to the interrupt line.
    level: bool,
    /// Whether input may be delivered here; cleared to release a reader waiting for space.
    accepting_input: bool,
}

impl Shared {
    pub(crate) fn new(irq: Option<InterruptLineArc>, host: HostServicesArc, events: Events) -> Self {
        Shared {
            state: Mutex::new(State {
                uart: Uart::new(),
                pending: VecDeque::new(),
                level: false,
                accepting_input: false,
            }),
            rx_space: Condvar::new(),
            irq,
            host,
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain registers; one left half-updated by a panic is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the UART, then moves queued input in and brings the interrupt line, the
    /// timer and any waiting reader up to date.
    pub(crate) fn with_uart<T>(&self, f: impl FnOnce(&mut Uart) -> T) -> T {
        let mut st = self.lock();
        let r = f(&mut st.uart);
        drop(self.settle(st));
        r
    }

    /// Sets whether input is delivered; turning it off drops queued input and frees a reader
    /// waiting for space.
    pub(crate) fn set_accepting_input(&self, on: bool) {
        let mut st = self.lock();
        st.accepting_input = on;
        if !on {
            st.pending.clear();
        }
        drop(st);
        self.rx_space.notify_all();
    }

    /// Queues received bytes, waiting while the queue is full. Gives up (dropping the rest) when
    /// input is detached, so a reader never waits on a device that is gone.
    pub(crate) fn deliver(&self, bytes: &[u8]) {
        let mut st = self.lock();
        for &b in bytes {
            while st.accepting_input && st.pending.len() >= PENDING_CAPACITY {
                // The guest must hear about the data before we wait for it to drain some.
                st = self.settle(st);
                if st.pending.len() < PENDING_CAPACITY {
                    break;
                }
                st = self.rx_space.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if !st.accepting_input {
                break;
            }
            st.pending.push_back(b);
        }
        drop(self.settle(st));
    }

    /// Moves queued input into the UART, drives the interrupt line to the UART's level (calling
    /// the host only on a change), then passes a timer request to the host unlocked. Hands the
    /// lock back for callers that go on waiting; the timer request is then kept for later.
    fn settle<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let before = st.pending.len();
        while !st.pending.is_empty() && st.uart.can_receive() > 0 {
            let b = st.pending.pop_front().unwrap_or_default();
            st.uart.receive(b);
        }
        if st.pending.len() < before {
            self.rx_space.notify_all();
        }
        let level = st.uart.irq_pending();
        if level != st.level {
            st.level = level;
            if let Some(line) = &self.irq {
                line.set_level(level);
                self.events.publish(&VmEvent::DeviceInterrupt { irq: line.number(), level });
            }
        }
        if let Some(timer) = st.uart.take_timer() {
            drop(st);
            match timer {
                Timer::Arm(ns) => self.host.set_timer(TIMEOUT_TOKEN, ns),
                Timer::Cancel => self.host.cancel_timer(TIMEOUT_TOKEN),
            }
            st = self.lock();
        }
        st
    }
}
