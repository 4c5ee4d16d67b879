//! The device as a guest driver and the host see it: requests through a real virtio-queue
//! `Queue` in a fake guest RAM, served by the I/O code against a real image file; hostile chains;
//! the plugin's registers, worker thread, interrupt, locking and errors.

use super::*;
use crate::image::tests::TempImage;
use crate::io::{Backend, DeviceId, more_within, process_queue};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_config::*;
use virtio_bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
};
use virtio_queue::desc::{RawDescriptor, split::Descriptor as SplitDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vm_plugin_api::{
    ErrorKind, FdtValue, HostServices, InterruptLine, RamOnly,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, ROption, RStr},
    },
    device::{HostServices_TO, InterruptLine_TO},
    memory::MemoryManager_TO,
};
use vm_virtio_common::memory::{AnonRam, DmaRecorder};
use vm_virtio_common::transport::reg;
use vm_virtio_common::{GuestMem, VirtioDevice, interrupt::INT_VRING};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 0x10_0000;
const HDR: u64 = RAM_BASE + 0x1_0000;
const DATA: u64 = RAM_BASE + 0x2_0000;
const DATA2: u64 = RAM_BASE + 0x4_0000;
const STATUS: u64 = RAM_BASE + 0x8_0000;
const W: u16 = VRING_DESC_F_WRITE as u16;
const N: u16 = VRING_DESC_F_NEXT as u16;
/// Sectors in the test image.
const SECTORS: u64 = 64;
const QSIZE: u16 = 16;

/// The byte the test image holds at `offset` before any write.
fn pattern(offset: usize) -> u8 {
    (offset * 7 + offset / 512 + 3) as u8
}

/// A fake guest: RAM, guest memory over it, an image file. Fields drop in order, RAM last.
struct Guest {
    mem: Arc<GuestMem>,
    img: TempImage,
    ram: AnonRam,
}

impl Guest {
    fn new(name: &str) -> Self {
        let img = TempImage::new(name, SECTORS * 512);
        let bytes: Vec<u8> = (0..SECTORS as usize * 512).map(pattern).collect();
        std::fs::write(&img.0, bytes).unwrap();
        let ram = AnonRam::new(RAM_SIZE).unwrap();
        let mem = Arc::new(guest_memory(Self::manager(&ram)).unwrap());
        Guest { mem, img, ram }
    }

    fn manager(ram: &AnonRam) -> vm_plugin_api::MemoryManagerArc {
        MemoryManager_TO::from_ptr(RArc::new(RamOnly(ram.view(RAM_BASE))), TD_Opaque)
    }

    fn backend(&self, read_only: bool, serial: &str) -> (Arc<Backend>, Arc<Interrupt>) {
        self.backend_with(read_only, serial, None, Arc::clone(&self.mem))
    }

    fn backend_with(
        &self,
        read_only: bool,
        serial: &str,
        line: Option<&TestLine>,
        mem: Arc<GuestMem>,
    ) -> (Arc<Backend>, Arc<Interrupt>) {
        let disk = DiskImage::open(&self.img.0, read_only, CacheMode::Writeback).unwrap();
        let line = line.map(|l| InterruptLine_TO::from_ptr(RArc::new(l.clone()), TD_Opaque));
        let interrupt = Interrupt::new(line);
        let mut id = DeviceId::default();
        id[..serial.len()].copy_from_slice(serial.as_bytes());
        let b = Backend { mem, disk: Arc::new(disk), interrupt: Arc::clone(&interrupt), id };
        (Arc::new(b), interrupt)
    }

    fn mock(&self) -> MockSplitQueue<'_, GuestMem> {
        MockSplitQueue::create(self.mem.as_ref(), GuestAddress(RAM_BASE), QSIZE)
    }

    fn header(&self, at: u64, kind: u32, sector: u64) {
        self.mem.write_obj(kind, GuestAddress(at)).unwrap();
        self.mem.write_obj(0u32, GuestAddress(at + 4)).unwrap();
        self.mem.write_obj(sector, GuestAddress(at + 8)).unwrap();
    }

    fn status(&self, at: u64) -> u8 {
        self.mem.read_obj(GuestAddress(at)).unwrap()
    }

    fn image(&self) -> Vec<u8> {
        std::fs::read(&self.img.0).unwrap()
    }
}

/// A descriptor; `chain` links it to the next one in the table.
fn d(addr: u64, len: u32, flags: u16) -> RawDescriptor {
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags, 0))
}

/// Links `descs` as one chain starting at table index `at`.
fn chain(descs: &[RawDescriptor], at: u16) -> Vec<RawDescriptor> {
    let n = descs.len();
    descs
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let s = SplitDescriptor::from(*raw);
            let (flags, next) =
                if i + 1 < n { (s.flags() | N, at + i as u16 + 1) } else { (s.flags() & !N, 0) };
            RawDescriptor::from(SplitDescriptor::new(s.addr().0, s.len(), flags, next))
        })
        .collect()
}

/// The used ring's entries, as (head, len).
fn used(mock: &MockSplitQueue<'_, GuestMem>) -> Vec<(u32, u32)> {
    let n = mock.used().idx().load();
    (0..n as usize)
        .map(|i| {
            let e = mock.used().ring().ref_at(i).unwrap().load();
            (e.id(), e.len())
        })
        .collect()
}

#[test]
fn write_flush_read_and_get_id_round_trip() {
    let g = Guest::new("round-trip");
    let (b, irq) = g.backend(false, "SERIAL-0042");
    let mock = g.mock();
    let data: Vec<u8> = (0..1024).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    g.mem.write_slice(&data, GuestAddress(DATA)).unwrap();
    // OUT 2 sectors at 3; FLUSH; IN them back, split over two buffers; GET_ID.
    g.header(HDR, VIRTIO_BLK_T_OUT, 3);
    g.header(HDR + 16, VIRTIO_BLK_T_FLUSH, 0);
    g.header(HDR + 32, VIRTIO_BLK_T_IN, 3);
    g.header(HDR + 48, VIRTIO_BLK_T_GET_ID, 0);
    let mut descs = chain(&[d(HDR, 16, 0), d(DATA, 1024, 0), d(STATUS, 1, W)], 0);
    descs.extend(chain(&[d(HDR + 16, 16, 0), d(STATUS + 1, 1, W)], 3));
    descs.extend(chain(
        &[d(HDR + 32, 16, 0), d(DATA2, 512, W), d(DATA2 + 0x1000, 512, W), d(STATUS + 2, 1, W)],
        5,
    ));
    descs.extend(chain(&[d(HDR + 48, 16, 0), d(DATA2 + 0x2000, 20, W), d(STATUS + 3, 1, W)], 9));
    for s in 0..4 {
        g.mem.write_obj(0xffu8, GuestAddress(STATUS + s)).unwrap();
    }
    mock.add_desc_chains(&descs, 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();

    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();

    assert_eq!(used(&mock), [(0, 1), (3, 1), (5, 1025), (9, 21)]);
    for s in 0..4 {
        assert_eq!(g.status(STATUS + s), VIRTIO_BLK_S_OK as u8, "request {s}");
    }
    let image = g.image();
    for (i, &byte) in image.iter().enumerate() {
        let want = if (3 * 512..5 * 512).contains(&i) { data[i - 3 * 512] } else { pattern(i) };
        assert_eq!(byte, want, "image byte {i}");
    }
    let mut back = vec![0u8; 1024];
    g.mem.read_slice(&mut back[..512], GuestAddress(DATA2)).unwrap();
    g.mem.read_slice(&mut back[512..], GuestAddress(DATA2 + 0x1000)).unwrap();
    assert_eq!(back, data);
    let mut id = [0u8; 20];
    g.mem.read_slice(&mut id, GuestAddress(DATA2 + 0x2000)).unwrap();
    assert_eq!(&id, b"SERIAL-0042\0\0\0\0\0\0\0\0\0");
    assert_eq!(irq.status(), INT_VRING, "the driver was told");
    assert!(!irq.needs_reset());
}

/// Runs the chains `descs` (already linked) through the queue; returns the used ring.
fn serve(g: &Guest, read_only: bool, descs: &[RawDescriptor]) -> (Vec<(u32, u32)>, Arc<Interrupt>) {
    let (b, irq) = g.backend(read_only, "");
    let mock = g.mock();
    mock.add_desc_chains(descs, 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();
    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();
    (used(&mock), irq)
}

#[test]
fn refused_writes_leave_the_image_alone() {
    let g = Guest::new("refused");
    let before = g.image();
    g.mem.write_slice(&[0xee; 2048], GuestAddress(DATA)).unwrap();
    g.header(HDR, VIRTIO_BLK_T_OUT, SECTORS - 1); // 2 sectors: one past the end
    g.header(HDR + 16, VIRTIO_BLK_T_OUT, u64::MAX); // overflows
    g.header(HDR + 32, VIRTIO_BLK_T_OUT, 0); // data partly at MMIO
    g.header(HDR + 48, VIRTIO_BLK_T_OUT, 0); // not whole sectors
    let mut descs = chain(&[d(HDR, 16, 0), d(DATA, 1024, 0), d(STATUS, 1, W)], 0);
    descs.extend(chain(&[d(HDR + 16, 16, 0), d(DATA, 512, 0), d(STATUS + 1, 1, W)], 3));
    descs.extend(chain(
        &[d(HDR + 32, 16, 0), d(DATA, 512, 0), d(0x1000_1000, 512, 0), d(STATUS + 2, 1, W)],
        6,
    ));
    descs.extend(chain(&[d(HDR + 48, 16, 0), d(DATA, 700, 0), d(STATUS + 3, 1, W)], 10));
    let (used, irq) = serve(&g, false, &descs);
    assert_eq!(used, [(0, 1), (3, 1), (6, 1), (10, 1)]);
    for s in 0..4 {
        assert_eq!(g.status(STATUS + s), VIRTIO_BLK_S_IOERR as u8, "request {s}");
    }
    assert!(g.image() == before, "no byte of the image changed");
    assert!(!irq.needs_reset(), "answered requests need no reset");
}

#[test]
fn a_read_only_disk_refuses_writes_and_serves_reads() {
    let g = Guest::new("ro");
    let before = g.image();
    g.header(HDR, VIRTIO_BLK_T_OUT, 0);
    g.header(HDR + 16, VIRTIO_BLK_T_IN, 1);
    let mut descs = chain(&[d(HDR, 16, 0), d(DATA, 512, 0), d(STATUS, 1, W)], 0);
    descs.extend(chain(&[d(HDR + 16, 16, 0), d(DATA2, 512, W), d(STATUS + 1, 1, W)], 3));
    let (used, _) = serve(&g, true, &descs);
    assert_eq!(used, [(0, 1), (3, 513)]);
    assert_eq!(g.status(STATUS), VIRTIO_BLK_S_IOERR as u8);
    assert_eq!(g.status(STATUS + 1), VIRTIO_BLK_S_OK as u8);
    assert!(g.image() == before);
    let mut back = [0u8; 512];
    g.mem.read_slice(&mut back, GuestAddress(DATA2)).unwrap();
    assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(512 + i)));
}

#[test]
fn a_read_past_the_end_writes_nothing_into_the_guest() {
    let g = Guest::new("read-past");
    g.mem.write_slice(&[0x11; 1024], GuestAddress(DATA2)).unwrap();
    g.header(HDR, VIRTIO_BLK_T_IN, SECTORS - 1);
    let (used, _) = serve(&g, false, &chain(&[d(HDR, 16, 0), d(DATA2, 1024, W), d(STATUS, 1, W)], 0));
    assert_eq!(used, [(0, 1)]);
    assert_eq!(g.status(STATUS), VIRTIO_BLK_S_IOERR as u8);
    let mut back = [0u8; 1024];
    g.mem.read_slice(&mut back, GuestAddress(DATA2)).unwrap();
    assert!(back.iter().all(|&b| b == 0x11));
}

#[test]
fn unanswerable_chains_are_given_back_empty_and_flag_a_reset() {
    let g = Guest::new("unanswerable");
    let before = g.image();
    g.header(HDR, VIRTIO_BLK_T_OUT, 0);
    // A read-only status, a status at MMIO, a good flush, then a loop (8 <-> 9).
    let mut descs = chain(&[d(HDR, 16, 0), d(DATA, 512, 0), d(STATUS, 1, 0)], 0);
    descs.extend(chain(&[d(HDR, 16, 0), d(DATA, 512, 0), d(0x1000_1000, 1, W)], 3));
    g.header(HDR + 16, VIRTIO_BLK_T_FLUSH, 0);
    descs.extend(chain(&[d(HDR + 16, 16, 0), d(STATUS + 1, 1, W)], 6));
    descs.push(RawDescriptor::from(SplitDescriptor::new(HDR, 16, N, 9)));
    descs.push(RawDescriptor::from(SplitDescriptor::new(DATA, 512, N, 8)));
    let (used, irq) = serve(&g, false, &descs);
    assert_eq!(used, [(0, 0), (3, 0), (6, 1), (8, 0)], "the queue goes on past them");
    assert_eq!(g.status(STATUS + 1), VIRTIO_BLK_S_OK as u8);
    assert!(irq.needs_reset());
    assert!(g.image() == before);
}

#[test]
fn a_broken_ring_is_an_error_not_a_panic() {
    let g = Guest::new("broken-ring");
    let (b, _) = g.backend(false, "");
    let mock = g.mock();
    // The available index runs more than a queue ahead.
    mock.avail().idx().store(QSIZE + 1);
    let mut q: Queue = mock.create_queue().unwrap();
    assert!(matches!(
        process_queue(&mut q, &b, &AtomicBool::new(false)),
        Err(virtio_queue::Error::InvalidAvailRingIndex)
    ));
    // A head index outside the table.
    let mock = g.mock();
    mock.avail().idx().store(1);
    mock.avail().ring().ref_at(0).unwrap().store(300);
    let mut q: Queue = mock.create_queue().unwrap();
    assert!(process_queue(&mut q, &b, &AtomicBool::new(false)).is_err());
}

#[test]
fn a_used_ring_over_the_available_index_is_a_broken_ring_not_a_spin() {
    // Found by the fuzz target: with the used ring's flags on the available ring's index, every
    // notification disable and enable moves the index (1, 0, 1, ...), and the suppression loop
    // went round for ever without serving anything or seeing a stop.
    let g = Guest::new("overlap");
    let (b, irq) = g.backend(false, "");
    let mock = g.mock();
    g.header(HDR, VIRTIO_BLK_T_FLUSH, 0);
    mock.add_desc_chains(&chain(&[d(HDR, 16, 0), d(STATUS, 1, W)], 0), 0).unwrap();
    let mut state = mock.create_queue::<Queue>().unwrap().state();
    state.avail_ring += 2;
    state.used_ring = state.avail_ring + 2;
    let mut q = Queue::try_from(state).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(process_queue(&mut q, &b, &AtomicBool::new(false))));
    let Ok(result) = rx.recv_timeout(Duration::from_secs(30)) else {
        std::mem::forget(g); // the spinning thread still uses its RAM
        panic!("process_queue did not return");
    };
    assert!(matches!(result, Err(virtio_queue::Error::InvalidAvailRingIndex)), "{result:?}");
    assert_eq!(g.status(STATUS), VIRTIO_BLK_S_OK as u8, "the one request was served first");
    assert_eq!(irq.status(), INT_VRING);
}

#[test]
fn reads_report_the_guest_bytes_they_fill_as_dma_writes() {
    let g = Guest::new("dma");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mm = MemoryManager_TO::from_ptr(
        RArc::new(DmaRecorder(RamOnly(g.ram.view(RAM_BASE)), Arc::clone(&log))),
        TD_Opaque,
    );
    let (b, _) = g.backend_with(false, "", None, Arc::new(guest_memory(mm).unwrap()));
    let mock = g.mock();
    g.header(HDR, VIRTIO_BLK_T_IN, 0);
    g.header(HDR + 16, VIRTIO_BLK_T_OUT, 0);
    let mut descs = chain(&[d(HDR, 16, 0), d(DATA, 512, W), d(DATA2, 1024, W), d(STATUS, 1, W)], 0);
    descs.extend(chain(&[d(HDR + 16, 16, 0), d(DATA, 512, 0), d(STATUS + 1, 1, W)], 4));
    mock.add_desc_chains(&descs, 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();
    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();
    let log = log.lock().unwrap();
    for range in [(DATA, 512), (DATA2, 1024), (STATUS, 1), (STATUS + 1, 1)] {
        assert!(log.contains(&range), "{range:x?} in {log:x?}");
    }
    assert_eq!(log.iter().filter(|&&(a, _)| a == DATA).count(), 1, "the write's source was only read");
    let used_ring = mock.used_addr().0;
    assert!(
        log.iter().any(|&(a, _)| (used_ring..used_ring + 4 + 8 * QSIZE as u64).contains(&a)),
        "used ring"
    );
}

#[test]
fn a_request_in_an_indirect_table_is_served() {
    let g = Guest::new("indirect");
    let (b, irq) = g.backend(false, "");
    let table = RAM_BASE + 0x6000;
    g.header(HDR, VIRTIO_BLK_T_IN, 2);
    for (i, raw) in chain(&[d(HDR, 16, 0), d(DATA2, 512, W), d(STATUS, 1, W)], 0).into_iter().enumerate() {
        g.mem.write_obj(raw, GuestAddress(table + 16 * i as u64)).unwrap();
    }
    let ind = VRING_DESC_F_INDIRECT as u16;
    let mock = g.mock();
    mock.add_desc_chains(&[d(table, 48, ind)], 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();
    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();
    assert_eq!(used(&mock), [(0, 513)]);
    assert_eq!(g.status(STATUS), VIRTIO_BLK_S_OK as u8);
    let mut back = [0u8; 512];
    g.mem.read_slice(&mut back, GuestAddress(DATA2)).unwrap();
    assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(1024 + i)));
    assert!(!irq.needs_reset());
}

#[test]
fn broken_indirect_tables_cannot_be_answered() {
    let g = Guest::new("bad-indirect");
    let table = RAM_BASE + 0x6000;
    let ind = VRING_DESC_F_INDIRECT as u16;
    // Nested: the table's only entry points at another table.
    g.mem.write_obj(d(table, 16, ind), GuestAddress(table)).unwrap();
    // A length that is not a whole number of descriptors; a table outside RAM; at MMIO.
    let descs = [
        d(table, 16, ind),
        d(table, 20, ind),
        d(RAM_BASE + RAM_SIZE as u64, 32, ind),
        d(0x1000_1000, 32, ind),
    ];
    let (used, irq) = serve(&g, false, &descs);
    assert_eq!(used, [(0, 0), (1, 0), (2, 0), (3, 0)]);
    assert!(irq.needs_reset());
}

/// Flush requests at table entries 0, 2, 4, ...: (descriptors, count).
fn flushes(g: &Guest, n: u16) -> Vec<RawDescriptor> {
    (0..n)
        .flat_map(|i| {
            g.header(HDR + 16 * i as u64, VIRTIO_BLK_T_FLUSH, 0);
            chain(&[d(HDR + 16 * i as u64, 16, 0), d(STATUS + i as u64, 1, W)], 2 * i)
        })
        .collect()
}

#[test]
fn with_event_idx_the_driver_is_interrupted_only_past_its_used_event() {
    for (used_event, interrupts) in [(0u16, 1), (1, 1), (2, 0), (7, 0)] {
        let g = Guest::new("event-idx");
        let line = TestLine::default();
        let (b, _) = g.backend_with(false, "", Some(&line), Arc::clone(&g.mem));
        let mock = g.mock();
        mock.add_desc_chains(&flushes(&g, 2), 0).unwrap();
        let mut q: Queue = mock.create_queue().unwrap();
        // The mock packs its rings too tightly for the event fields: a used ring of our own.
        let used_ring = RAM_BASE + 0x3000;
        q.set_used_ring_address(Some(used_ring as u32), Some((used_ring >> 32) as u32));
        q.set_event_idx(true);
        g.mem.write_obj(used_event, GuestAddress(mock.avail_addr().0 + 4 + 2 * QSIZE as u64)).unwrap();

        process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();

        let used_idx: u16 = g.mem.read_obj(GuestAddress(used_ring + 2)).unwrap();
        assert_eq!(used_idx, 2);
        let raised = line.0.0.lock().unwrap().iter().filter(|&&l| l).count();
        assert_eq!(raised, interrupts, "used_event {used_event}");
        // The device asks to be notified at the next request it has not seen.
        let avail_event: u16 = g.mem.read_obj(GuestAddress(used_ring + 4 + 8 * QSIZE as u64)).unwrap();
        assert_eq!(avail_event, 2);
    }
}

#[test]
fn a_stop_request_ends_the_batch_and_leaves_the_rest_for_later() {
    let g = Guest::new("stop");
    let (b, _) = g.backend(false, "");
    let mock = g.mock();
    mock.add_desc_chains(&flushes(&g, 3), 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();
    process_queue(&mut q, &b, &AtomicBool::new(true)).unwrap();
    assert_eq!(used(&mock), []);
    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();
    assert_eq!(used(&mock), [(0, 1), (2, 1), (4, 1)], "nothing was skipped");
}

#[test]
fn after_a_drain_the_worker_sees_new_requests_without_a_kick_and_gives_up_on_a_stop() {
    let g = Guest::new("poll");
    let (b, _) = g.backend(false, "");
    let mock = g.mock();
    let mut q: Queue = mock.create_queue().unwrap();
    let (go, stop) = (AtomicBool::new(false), AtomicBool::new(true));
    let poll = Duration::from_millis(5);
    assert!(!more_within(&q, &g.mem, &go, poll), "an empty ring has nothing after the poll");
    mock.add_desc_chains(&flushes(&g, 2), 0).unwrap();
    assert!(more_within(&q, &g.mem, &go, poll), "a request made available is seen");
    assert!(!more_within(&q, &g.mem, &stop, Duration::from_secs(60)), "a stop ends the poll at once");
    process_queue(&mut q, &b, &go).unwrap();
    assert_eq!(used(&mock), [(0, 1), (2, 1)]);
    assert!(!more_within(&q, &g.mem, &go, poll), "served requests are not seen again");
}

/// virtio-queue 0.18 does not read VRING_AVAIL_F_NO_INTERRUPT (a "SHOULD" of the spec), so
/// without EVENT_IDX every completion interrupts.
#[test]
fn without_event_idx_every_completion_interrupts() {
    let g = Guest::new("no-event-idx");
    let line = TestLine::default();
    let (b, _) = g.backend_with(false, "", Some(&line), Arc::clone(&g.mem));
    let mock = g.mock();
    mock.add_desc_chains(&flushes(&g, 3), 0).unwrap();
    let mut q: Queue = mock.create_queue().unwrap();
    process_queue(&mut q, &b, &AtomicBool::new(false)).unwrap();
    assert_eq!(used(&mock).len(), 3);
    assert_eq!(line.0.0.lock().unwrap().iter().filter(|&&l| l).count(), 3);
}

// --- The plugin as the host drives it ---

/// An interrupt line that records levels and wakes waiters.
#[derive(Clone, Default)]
struct TestLine(Arc<(Mutex<Vec<bool>>, Condvar)>);

impl InterruptLine for TestLine {
    fn set_level(&self, level: bool) {
        self.0.0.lock().unwrap().push(level);
        self.0.1.notify_all();
    }
    fn number(&self) -> u32 {
        1
    }
}

struct NoHost;

impl HostServices for NoHost {
    fn set_timer(&self, _token: u64, _delay_ns: u64) {}
    fn cancel_timer(&self, _token: u64) {}
    fn now_ns(&self) -> u64 {
        0
    }
    fn request_stop(&self, _exit_code: i32, _reason: RStr<'_>) {}
}

fn context(config: &str, ram: &AnonRam, line: &TestLine) -> DeviceContext {
    DeviceContext {
        id: "disk0".into(),
        base: 0x1000_1000,
        config: config.into(),
        config_dir: std::env::temp_dir().to_string_lossy().into_owned().into(),
        irq: ROption::RSome(InterruptLine_TO::from_ptr(RArc::new(line.clone()), TD_Opaque)),
        memory: Guest::manager(ram),
        host: HostServices_TO::from_ptr(RArc::new(NoHost), TD_Opaque),
    }
}

fn create(g: &Guest, extra: &str, line: &TestLine) -> Result<VirtioBlk, VmError> {
    let name = g.img.0.file_name().unwrap().to_string_lossy();
    VirtioBlk::create(context(&format!("path = {name:?}\n{extra}"), &g.ram, line), Events::default())
}

fn r(dev: &mut VirtioBlk, offset: u64) -> u32 {
    dev.read(offset, 4).unwrap() as u32
}

fn w(dev: &mut VirtioBlk, offset: u64, v: u32) {
    dev.write(offset, v as u64, 4).unwrap();
}

/// The Linux driver's start-up: features, the queue, DRIVER_OK. Returns the features offered.
fn bring_up(dev: &mut VirtioBlk, mock: &MockSplitQueue<'_, GuestMem>) -> u64 {
    w(dev, reg::STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    w(dev, reg::STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    let mut offered = 0u64;
    for sel in 0..2 {
        w(dev, reg::DEVICE_FEATURES_SEL, sel);
        offered |= (r(dev, reg::DEVICE_FEATURES) as u64) << (32 * sel);
    }
    for sel in 0..2 {
        w(dev, reg::DRIVER_FEATURES_SEL, sel);
        w(dev, reg::DRIVER_FEATURES, (offered >> (32 * sel)) as u32);
    }
    let s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    w(dev, reg::STATUS, s);
    assert_eq!(r(dev, reg::STATUS), s);
    w(dev, reg::QUEUE_SEL, 0);
    assert_eq!(r(dev, reg::QUEUE_NUM_MAX), QUEUE_SIZE as u32);
    w(dev, reg::QUEUE_NUM, QSIZE as u32);
    for (low, addr) in [
        (reg::QUEUE_DESC_LOW, mock.desc_table_addr().0),
        (reg::QUEUE_DRIVER_LOW, mock.avail_addr().0),
        (reg::QUEUE_DEVICE_LOW, USED_RING),
    ] {
        w(dev, low, addr as u32);
        w(dev, low + 4, (addr >> 32) as u32);
    }
    w(dev, reg::QUEUE_READY, 1);
    w(dev, reg::STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_eq!(r(dev, reg::STATUS), s | VIRTIO_CONFIG_S_DRIVER_OK);
    offered
}

/// The used ring the plugin tests give the device: the mock packs its own too tightly for the
/// event-index fields, which these tests negotiate.
const USED_RING: u64 = RAM_BASE + 0x3000;

fn used_idx(g: &Guest) -> u16 {
    g.mem.read_obj(GuestAddress(USED_RING + 2)).unwrap()
}

/// Waits (a generous bound, for a loaded machine) until `n` buffers are used.
fn wait_used(g: &Guest, n: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while used_idx(g) < n {
        assert!(Instant::now() < deadline, "the worker never completed request {n}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn the_plugin_offers_its_features_and_config_space() {
    let g = Guest::new("plugin-config");
    let line = TestLine::default();
    let mut dev = create(&g, "", &line).unwrap();
    assert_eq!(r(&mut dev, reg::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(r(&mut dev, reg::VERSION), 2);
    assert_eq!(r(&mut dev, reg::DEVICE_ID), 2);
    assert_eq!(r(&mut dev, reg::VENDOR_ID), 0x554d_4551);
    let want = 1 << VIRTIO_F_VERSION_1
        | 1 << VIRTIO_BLK_F_SIZE_MAX
        | 1 << VIRTIO_BLK_F_SEG_MAX
        | 1 << VIRTIO_BLK_F_BLK_SIZE
        | 1 << VIRTIO_BLK_F_FLUSH
        | 1 << VIRTIO_RING_F_EVENT_IDX
        | 1 << VIRTIO_RING_F_INDIRECT_DESC;
    assert_eq!(dev.transport().device().features(), want);
    assert_eq!(dev.read(0x100, 4).unwrap(), SECTORS, "capacity, low word");
    assert_eq!(dev.read(0x104, 4).unwrap(), 0, "capacity, high word");
    assert_eq!(dev.read(0x108, 4).unwrap(), SIZE_MAX as u64);
    assert_eq!(dev.read(0x10c, 4).unwrap(), QUEUE_SIZE as u64 - 2, "seg_max");
    assert_eq!(dev.read(0x114, 4).unwrap(), 512, "blk_size");
    assert_eq!(dev.read(0x114, 2).unwrap(), 512);
    assert_eq!(dev.read(0x100, 1).unwrap(), SECTORS);
    assert_eq!(dev.read(0x2, 2).unwrap_err().kind, ErrorKind::BusFault);

    let node = dev.fdt_node();
    assert_eq!(node.name.as_str(), "virtio_mmio");
    assert_eq!(node.compatible.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["virtio,mmio"]);
    assert!(node.props.iter().all(|p| !matches!(p.value, FdtValue::Empty)));
    let regions = dev.io_regions();
    assert_eq!(regions.len(), 1);
    assert_eq!(
        (regions[0].offset, regions[0].size, regions[0].min_access, regions[0].max_access),
        (0, 0x1000, 1, 4)
    );
    assert_eq!(dev.device_type(), DeviceType::Block);
}

#[test]
fn read_only_offers_ro() {
    let g = Guest::new("plugin-ro");
    let mut dev = create(&g, "read_only = true", &TestLine::default()).unwrap();
    assert_ne!(dev.transport().device().features() & 1 << VIRTIO_BLK_F_RO, 0);
}

#[test]
fn requests_are_served_on_the_worker_thread_and_interrupt() {
    let g = Guest::new("plugin-worker");
    let line = TestLine::default();
    let mut dev = create(&g, "serial = \"abc\"", &line).unwrap();
    let mock = g.mock();
    let offered = bring_up(&mut dev, &mock);
    assert_ne!(offered & 1 << VIRTIO_RING_F_EVENT_IDX, 0);
    assert!(dev.transport().device().serving());

    g.mem.write_slice(&[0x77; 512], GuestAddress(DATA)).unwrap();
    g.header(HDR, VIRTIO_BLK_T_OUT, 10);
    mock.add_desc_chains(&chain(&[d(HDR, 16, 0), d(DATA, 512, 0), d(STATUS, 1, W)], 0), 0).unwrap();
    w(&mut dev, reg::QUEUE_NOTIFY, 0);
    wait_used(&g, 1);
    assert_eq!(g.status(STATUS), VIRTIO_BLK_S_OK as u8);
    assert!(g.image()[10 * 512..11 * 512].iter().all(|&b| b == 0x77));
    // The line went up from the worker; the driver reads and acknowledges.
    {
        let (levels, cond) = &*line.0;
        let mut l = levels.lock().unwrap();
        while !l.contains(&true) {
            l = cond.wait(l).unwrap();
        }
    }
    assert_eq!(r(&mut dev, reg::INTERRUPT_STATUS), INT_VRING);
    w(&mut dev, reg::INTERRUPT_ACK, INT_VRING);
    assert_eq!(r(&mut dev, reg::INTERRUPT_STATUS), 0);
    assert_eq!(line.0.0.lock().unwrap().last(), Some(&false));

    // Stopped, a notify waits; started again, the worker picks it up.
    dev.stop().unwrap();
    assert!(!dev.transport().device().serving());
    g.header(HDR + 16, VIRTIO_BLK_T_GET_ID, 0);
    mock.add_desc_chains(&chain(&[d(HDR + 16, 16, 0), d(DATA2, 20, W), d(STATUS + 1, 1, W)], 3), 3).unwrap();
    w(&mut dev, reg::QUEUE_NOTIFY, 0);
    assert_eq!(used_idx(&g), 1, "no worker while stopped");
    dev.start().unwrap();
    wait_used(&g, 2);
    assert_eq!(g.status(STATUS + 1), VIRTIO_BLK_S_OK as u8);
    let mut id = [0u8; 3];
    g.mem.read_slice(&mut id, GuestAddress(DATA2)).unwrap();
    assert_eq!(&id, b"abc");

    // Reset stops the worker and clears the status.
    w(&mut dev, reg::STATUS, 0);
    assert!(!dev.transport().device().serving());
    assert_eq!(r(&mut dev, reg::STATUS), 0);
}

#[test]
fn a_broken_ring_sets_device_needs_reset_through_the_worker() {
    let g = Guest::new("plugin-broken");
    let line = TestLine::default();
    let mut dev = create(&g, "", &line).unwrap();
    let mock = g.mock();
    bring_up(&mut dev, &mock);
    mock.avail().idx().store(QSIZE + 5);
    w(&mut dev, reg::QUEUE_NOTIFY, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while r(&mut dev, reg::STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET == 0 {
        assert!(Instant::now() < deadline, "DEVICE_NEEDS_RESET never came");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(r(&mut dev, reg::INTERRUPT_STATUS) & 2, 2, "a configuration-change interrupt");
    // The driver resets and starts over.
    w(&mut dev, reg::STATUS, 0);
    assert_eq!(r(&mut dev, reg::STATUS), 0);
    let mock = g.mock();
    mock.avail().idx().store(0);
    bring_up(&mut dev, &mock);
}

#[test]
fn a_missing_image_is_refused_at_creation_with_its_path() {
    let ram = AnonRam::new(RAM_SIZE).unwrap();
    let e = VirtioBlk::create(
        context("path = \"no-such-disk.img\"", &ram, &TestLine::default()),
        Events::default(),
    )
    .err()
    .unwrap();
    let path = std::env::temp_dir().join("no-such-disk.img");
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(
        e.message(),
        format!(
            "key `path`: disk image {}: cannot open it for reading and writing: No such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn a_second_device_on_a_writable_image_is_refused_and_read_only_ones_share() {
    let g = Guest::new("plugin-lock");
    let line = TestLine::default();
    let first = create(&g, "", &line).unwrap();
    let e = create(&g, "", &line).err().unwrap();
    assert!(e.message().contains("is locked: another process uses it"), "{}", e.message());
    drop(first);
    let a = create(&g, "read_only = true", &line).unwrap();
    let b = create(&g, "read_only = true", &line).unwrap();
    assert!(create(&g, "", &line).is_err());
    drop((a, b));
}

#[test]
fn the_configuration_cannot_change_but_round_trips() {
    let g = Guest::new("plugin-cfg");
    let mut dev = create(&g, "cache = \"none\"", &TestLine::default()).unwrap();
    let text = dev.get_config();
    dev.update_config(&text).unwrap();
    assert!(dev.validate_config("path = \"x\"\nbogus = 1").is_err());
    let e = dev.update_config("path = \"other.img\"").unwrap_err();
    assert_eq!(e.message(), "a virtio-blk device's configuration cannot change while the VM exists");
}
