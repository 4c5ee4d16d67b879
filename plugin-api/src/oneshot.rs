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

/// `f` as a job whose result completes the returned receiver.
fn job<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (Job, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let tx = Arc::clone(&slot);
    let job = Box::new(move || {
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
    (job, Receiver(slot))
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on a new thread; the returned future completes with its result.
pub fn spawn_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> FfiFuture<T> {
    let (job, rx) = job(f);
    std::thread::spawn(job);
    rx.into_ffi()
}

/// One thread that runs jobs in turn, started at the first job and ended when the worker is
/// dropped: an engine run per slice must not cost a thread start.
#[derive(Default)]
pub(crate) struct Worker {
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

impl Worker {
    /// Runs `f` on the worker's thread (after any job queued before it).
    pub(crate) fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> FfiFuture<T> {
        let (job, rx) = job(f);
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        // Not started yet, or gone (a job panicked past its guard): start a thread.
        let job = match jobs.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return rx.into_ffi(),
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name("engine-run".into()).spawn(move || {
            for job in jobs_rx {
                job();
            }
        });
        match started {
            Ok(_) => {
                // Cannot fail: the thread holds the receiver until this sender is dropped.
                let _ = tx.send(job);
                *jobs = Some(tx);
            }
            // No thread to be had: run it here rather than never.
            Err(_) => job(),
        }
        rx.into_ffi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: FfiFuture<T>) -> T {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_worker_runs_every_job_on_one_thread() {
        let w = Worker::default();
        let ids: Vec<_> = (0..5).map(|i| block_on(w.run(move || (i, std::thread::current().id())))).collect();
        assert_eq!(ids.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert!(ids.iter().all(|(_, t)| *t == ids[0].1), "one thread for every job");
        assert_ne!(ids[0].1, std::thread::current().id(), "not the caller's");
    }
}
