//! The block device behind the virtio-mmio transport: what it offers (features, configuration
//! space), and starting, pausing and resetting its I/O worker.
//!
//! One request queue of 256 entries. Offered: VERSION_1, SEG_MAX (queue size - 2: a header
//! and a status descriptor around the data), SIZE_MAX, BLK_SIZE (512), FLUSH, GET_ID (by
//! request type; it has no feature bit), RO for a read-only image, and from virtio-queue
//! EVENT_IDX (fewer notifications and interrupts) and INDIRECT_DESC (a request in one ring
//! slot). Not offered: MQ, DISCARD, WRITE_ZEROES, CONFIG_WCE (the cache mode is the host's
//! choice), packed rings (virtio-queue has split rings only).

use crate::image::{DiskImage, SECTOR_SIZE};
use crate::io::{Backend, DeviceId, Worker};
use std::sync::Arc;
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX,
};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::{Queue, QueueT};
use vm_virtio_common::{Activation, VirtioDevice};

/// virtio device id of a block device.
pub const DEVICE_ID: u32 = 2;
/// "QEMU": guests see the ids they see under QEMU, so the two behave the same for them.
pub const VENDOR_ID: u32 = 0x554d_4551;
/// Entries in the request queue (QEMU's default).
pub const QUEUE_SIZE: u16 = 256;
/// The largest buffer a descriptor may carry (1 MiB): a bound Linux and U-Boot honour, large
/// enough that it never splits their requests.
pub const SIZE_MAX: u32 = 1 << 20;

/// The virtio-blk device.
pub struct BlkDevice {
    name: String,
    disk: Arc<DiskImage>,
    id: DeviceId,
    /// From activation to reset.
    running: Option<Running>,
}

struct Running {
    backend: Arc<Backend>,
    /// None while paused (between `pause` and `resume`), or if the queue was never made ready.
    worker: Option<Worker>,
    /// The queue while paused.
    parked: Option<Queue>,
}

impl BlkDevice {
    /// A device serving `disk`, answering GET_ID with `serial` (at most 20 bytes; checked by the
    /// configuration).
    pub fn new(name: String, disk: DiskImage, serial: &str) -> Self {
        let mut id = DeviceId::default();
        let n = serial.len().min(id.len());
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        BlkDevice { name, disk: Arc::new(disk), id, running: None }
    }

    /// The image.
    pub fn disk(&self) -> &DiskImage {
        &self.disk
    }

    /// Stops the worker, keeping the queue (the VM is stopping or pausing).
    pub fn pause(&mut self) {
        if let Some(r) = &mut self.running
            && let Some(w) = r.worker.take()
        {
            r.parked = w.stop();
        }
    }

    /// Restarts the worker stopped by [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<(), String> {
        if let Some(r) = &mut self.running
            && let Some(q) = r.parked.take()
        {
            r.worker = Some(Worker::spawn(&self.name, q, Arc::clone(&r.backend)).map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    /// Whether a worker thread is serving the queue.
    pub fn serving(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.worker.is_some())
    }
}

impl VirtioDevice for BlkDevice {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn vendor_id(&self) -> u32 {
        VENDOR_ID
    }

    fn features(&self) -> u64 {
        let mut f = 1 << VIRTIO_F_VERSION_1
            | 1 << VIRTIO_BLK_F_SIZE_MAX
            | 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_BLK_SIZE
            | 1 << VIRTIO_BLK_F_FLUSH
            | 1 << VIRTIO_RING_F_EVENT_IDX
            | 1 << VIRTIO_RING_F_INDIRECT_DESC;
        if self.disk.read_only() {
            f |= 1 << VIRTIO_BLK_F_RO;
        }
        f
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    /// `struct virtio_blk_config` up to `blk_size`: capacity, size_max, seg_max, geometry (not
    /// offered: zero), blk_size; later fields belong to features not offered and read as 0.
    fn config(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(24);
        c.extend_from_slice(&self.disk.sectors().to_le_bytes());
        c.extend_from_slice(&SIZE_MAX.to_le_bytes());
        c.extend_from_slice(&(QUEUE_SIZE as u32 - 2).to_le_bytes());
        c.extend_from_slice(&[0; 4]);
        c.extend_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        c
    }

    fn activate(&mut self, a: Activation) -> Result<(), String> {
        let backend = Arc::new(Backend {
            mem: a.mem,
            disk: Arc::clone(&self.disk),
            interrupt: a.interrupt,
            id: self.id,
        });
        let queue = a.queues.into_iter().next().filter(|q| q.ready());
        let worker = match queue {
            Some(q) => Some(Worker::spawn(&self.name, q, Arc::clone(&backend)).map_err(|e| e.to_string())?),
            None => None,
        };
        self.running = Some(Running { backend, worker, parked: None });
        Ok(())
    }

    fn queue_notify(&mut self, _queue: u32) {
        if let Some(w) = self.running.as_ref().and_then(|r| r.worker.as_ref()) {
            w.kick();
        }
    }

    fn reset(&mut self) {
        // Dropping the worker stops and joins it.
        self.running = None;
    }
}
