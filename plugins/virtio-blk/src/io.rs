//! The I/O worker: one thread per device that owns the queue once the driver starts it, serves
//! its requests with positioned reads and writes straight between the image and guest memory,
//! and raises the interrupt. The vCPU thread's QueueNotify write only wakes it ([`Worker::kick`]).
//!
//! The loop is virtio-queue's notification-suppression loop (its `Queue` docs): notifications
//! off, drain the available ring, notify the driver when `needs_notification` says so, then
//! notifications on and drain again if buffers arrived meanwhile. A broken ring (an available
//! index too far ahead, a head outside the table) sets DEVICE_NEEDS_RESET and the queue is left
//! alone until the driver resets the device.

use crate::image::{DiskImage, SECTOR_SIZE};
use crate::request::{DiskInfo, Operation, Request, Segment, parse_request};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use virtio_bindings::virtio_blk::{VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK};
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestMemoryBackend, bitmap::Bitmap};
use vm_virtio_common::{GuestMem, Interrupt};

/// The serial number GET_ID answers with, zero-padded.
pub type DeviceId = [u8; VIRTIO_BLK_ID_BYTES as usize];

/// What a worker serves.
pub struct Backend {
    /// Guest memory.
    pub mem: Arc<GuestMem>,
    /// The disk image.
    pub disk: Arc<DiskImage>,
    /// Where completions are signalled.
    pub interrupt: Arc<Interrupt>,
    /// GET_ID's answer.
    pub id: DeviceId,
}

/// Wake-ups from the vCPU thread and the stop request.
#[derive(Default)]
struct Signal {
    state: Mutex<(bool, bool)>,
    cond: Condvar,
    /// The stop request again, for the worker to see between requests: a driver that keeps the
    /// ring full must not keep a stop or reset waiting.
    stop: AtomicBool,
}

impl Signal {
    fn set(&self, kick: bool, stop: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 |= kick;
        s.1 |= stop;
        if stop {
            self.stop.store(true, Ordering::SeqCst);
        }
        self.cond.notify_one();
    }

    /// Waits for a kick; false once a stop is asked for.
    fn wait(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.0 && !s.1 {
            s = self.cond.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.0 = false;
        !s.1
    }
}

/// A running worker thread.
pub struct Worker {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<Queue>>,
}

impl Worker {
    /// Starts serving `queue`. It looks at the ring at once, for requests made before a restart.
    pub fn spawn(name: &str, queue: Queue, backend: Arc<Backend>) -> io::Result<Self> {
        let signal = Arc::new(Signal::default());
        signal.set(true, false);
        let s = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name(format!("{name} I/O"))
            .spawn(move || run(queue, &backend, &s))?;
        Ok(Worker { signal, thread: Some(thread) })
    }

    /// The driver notified the queue.
    pub fn kick(&self) {
        self.signal.set(true, false);
    }

    /// Stops the thread after the request in hand and gives the queue back (`None` if the
    /// thread panicked).
    pub fn stop(mut self) -> Option<Queue> {
        self.join()
    }

    fn join(&mut self) -> Option<Queue> {
        self.signal.set(false, true);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.join();
    }
}

/// After the ring drains, how long the worker watches it before it sleeps. A driver's next
/// requests usually come within this, and waking a sleeping thread costs more than the request
/// (tens of microseconds on a virtualised host); QEMU's event loop polls for up to 32 µs for the
/// same reason.
const POLL: Duration = Duration::from_micros(50);

fn run(mut queue: Queue, b: &Backend, signal: &Signal) -> Queue {
    let mut broken = false;
    while signal.wait() {
        while !broken {
            if let Err(e) = process_queue(&mut queue, b, &signal.stop) {
                eprintln!(
                    "vmhost: virtio-blk {}: the request queue is broken ({e}); the driver must reset the device",
                    b.disk.path().display()
                );
                b.interrupt.set_needs_reset();
                broken = true;
            } else if !more_within(&queue, b.mem.as_ref(), &signal.stop, POLL) {
                break;
            }
        }
    }
    queue
}

/// Whether the driver makes a request available within `poll` (false at once on a stop).
pub fn more_within(q: &Queue, mem: &GuestMem, stop: &AtomicBool, poll: Duration) -> bool {
    let until = Instant::now() + poll;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match q.avail_idx(mem, Ordering::Acquire) {
            Ok(idx) if idx.0 != q.next_avail() => return true,
            Ok(_) if Instant::now() < until => std::hint::spin_loop(),
            // Past the poll, or a ring process_queue will report when it is kicked.
            _ => return false,
        }
    }
}

/// Serves every available request (virtio-queue's suppression loop), or returns early once
/// `stop` is set, leaving the rest in the ring for the next start.
pub fn process_queue(q: &mut Queue, b: &Backend, stop: &AtomicBool) -> Result<(), virtio_queue::Error> {
    let info = DiskInfo { sectors: b.disk.sectors(), read_only: b.disk.read_only() };
    drain(q, b, |chain| {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        Some(match parse_request(b.mem.as_ref(), chain, info) {
            Ok(req) => execute(&req, b),
            Err(_) => {
                // Nowhere to say it failed: give the buffers back and flag the device.
                b.interrupt.set_needs_reset();
                0
            }
        })
    })
    .map(|_stopped| ())
}

/// virtio-queue's notification-suppression loop: `serve` answers each available chain with its
/// `used.len`, or with `None` to stop there, leaving that chain and the rest in the ring (then
/// this gives true).
pub fn drain(
    q: &mut Queue,
    b: &Backend,
    mut serve: impl FnMut(DescriptorChain<&GuestMem>) -> Option<u32>,
) -> Result<bool, virtio_queue::Error> {
    let mem = b.mem.as_ref();
    let mut more = false;
    loop {
        q.disable_notification(mem)?;
        let mut served = false;
        while let Some(chain) = q.iter(mem)?.next() {
            served = true;
            let head = chain.head_index();
            let Some(used_len) = serve(chain) else {
                q.go_to_previous_position();
                return Ok(true);
            };
            q.add_used(mem, head, used_len)?;
            if q.needs_notification(mem)? {
                b.interrupt.signal_used();
            }
        }
        // The last look found requests that this drain did not: the available index went
        // back, which no driver does (a used ring laid over it moves it with every flags write).
        // Going round again would spin for ever, deaf to a stop.
        if more && !served {
            return Err(virtio_queue::Error::InvalidAvailRingIndex);
        }
        if !q.enable_notification(mem)? {
            return Ok(false);
        }
        more = true;
    }
}

/// Carries out a parsed request and writes its status byte; returns `used.len`: the bytes
/// written into the chain (data and status).
pub fn execute(req: &Request, b: &Backend) -> u32 {
    let (status, written) = match &req.op {
        Err(e) => (e.status(), 0),
        Ok(op) => match perform(op, b) {
            Ok(n) => (VIRTIO_BLK_S_OK as u8, n),
            Err(_) => (VIRTIO_BLK_S_IOERR as u8, 0),
        },
    };
    // The status address was checked to be in RAM; written after the data (and the flush).
    if b.mem.write_obj(status, req.status).is_err() {
        return 0;
    }
    // At most a queue's worth of u32-long buffers were written, plus the status byte; a larger
    // figure only means "at least this much".
    u32::try_from(written + 1).unwrap_or(u32::MAX)
}

/// Returns the data bytes written into guest memory.
fn perform(op: &Operation, b: &Backend) -> io::Result<u64> {
    match op {
        Operation::Read { sector, data } => {
            transfer(&b.mem, data, sector * SECTOR_SIZE, true, |p, n, off| {
                // SAFETY: `p` is a live slice of guest RAM `n` bytes long (from get_slice).
                unsafe { b.disk.pread(p, n, off) }
            })?;
            Ok(data.iter().map(|s| s.len).sum())
        }
        Operation::Write { sector, data } => {
            transfer(&b.mem, data, sector * SECTOR_SIZE, false, |p, n, off| {
                // SAFETY: as above.
                unsafe { b.disk.pwrite(p, n, off) }
            })?;
            Ok(0)
        }
        Operation::Flush => b.disk.flush().map(|()| 0),
        Operation::GetId { data } => {
            let mut at = 0;
            for s in data {
                let piece = &b.id[at..at + s.len as usize];
                b.mem.write_slice(piece, s.addr).map_err(io::Error::other)?;
                at += piece.len();
            }
            Ok(at as u64)
        }
    }
}

/// Moves the bytes of every segment to or from the image, from byte `offset` on, with `io`
/// called on host pointers into guest RAM (zero copy). When `io` fills guest memory
/// (`into_guest`), the bytes it wrote are reported as DMA writes.
fn transfer(
    mem: &GuestMem,
    data: &[Segment],
    mut offset: u64,
    into_guest: bool,
    io: impl Fn(*mut u8, usize, u64) -> io::Result<usize>,
) -> io::Result<()> {
    for s in data {
        let slice = mem.get_slice(s.addr, s.len as usize).map_err(io::Error::other)?;
        let guard = slice.ptr_guard_mut();
        let mut done = 0;
        let result = loop {
            if done == slice.len() {
                break Ok(());
            }
            // SAFETY: done < len, so the pointer stays inside the slice.
            let p = unsafe { guard.as_ptr().add(done) };
            match io(p, slice.len() - done, offset + done as u64) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if into_guest {
            slice.bitmap().mark_dirty(0, done);
        }
        result?;
        offset += s.len;
    }
    Ok(())
}
