//! A runtime-agnostic one-shot result: work on a std thread, completion as an `FfiFuture`.
//!
//! Each plugin has its own copy of any async runtime, so plugin futures must not need one (see
//! docs/architecture.md); a thread plus a waker is the smallest thing that works with any executor.

use async_ffi::{FfiFuture, FutureExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `f` on a new thread; the returned future completes with its result.
pub fn spawn_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> FfiFuture<T> {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let tx = Arc::clone(&slot);
    std::thread::spawn(move || {
        let v = f();
        let waker = {
            let mut s = tx.lock().unwrap_or_else(|p| p.into_inner());
            s.value = Some(v);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    Receiver(slot).into_ffi()
}
