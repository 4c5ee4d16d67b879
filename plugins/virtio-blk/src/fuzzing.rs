//! A fuzzing harness: arbitrary bytes become a guest (RAM with a request queue in it, a disk
//! image), whose requests are parsed and served exactly as the I/O worker does, with the
//! device's promises checked after every step. A panic is a finding.
//!
//! The input: a 14-byte control block, then the first bytes of guest RAM (64 KiB at
//! [`RAM_BASE`]), so descriptors, rings and headers may point anywhere, loop, nest indirect
//! tables or overlap one another. See [`Input`]. The fuzz target (`fuzz/`) and the corpus
//! regression test (`tests/fuzz_corpus.rs`) call [`parse_from_bytes`].
//!
//! Always compiled (doc-hidden) rather than behind a feature, so the regression test runs in a
//! plain `cargo test` on stable; it adds no dependency.

use crate::config::CacheMode;
use crate::image::{DiskImage, SECTOR_SIZE};
use crate::io::{Backend, DeviceId, drain, execute, process_queue};
use crate::request::{DiskInfo, HEADER_SIZE, Operation, Request, RequestError, Segment, parse_request};
use crate::{Interrupt, QUEUE_SIZE};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueState, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};
use vm_plugin_api::{
    RamOnly,
    abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
    memory::MemoryManager_TO,
};
use vm_virtio_common::GuestMem;
use vm_virtio_common::memory::{AnonRam, DmaRecorder};

/// Where guest RAM starts (the `virt` machine's RAM base).
pub const RAM_BASE: u64 = 0x8000_0000;
/// Bytes of guest RAM.
pub const RAM_SIZE: usize = 0x1_0000;
/// Bytes of the control block before the RAM image.
pub const CONTROL_SIZE: usize = 14;
/// The largest disk, in sectors (small: the whole image is compared after every request).
pub const MAX_SECTORS: u64 = 64;
/// Requests served per input at most (a read into the available ring can feed the loop).
const MAX_REQUESTS: usize = 1024;
/// What GET_ID answers.
const SERIAL: &[u8] = b"fuzz-serial-0123";

/// The guest an input describes. [`Input::parse`] reads it and [`Input::to_bytes`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Byte 0: the queue size is `1 << (byte % 9)` (1 to 256).
    pub size_log2: u8,
    /// Byte 1, bit 0.
    pub read_only: bool,
    /// Byte 1, bit 1: VIRTIO_RING_F_EVENT_IDX negotiated.
    pub event_idx: bool,
    /// Byte 2: whole sectors, modulo `MAX_SECTORS + 1`.
    pub sectors: u8,
    /// Byte 3: bytes past the last whole sector (not part of the disk, never to be written).
    pub tail: u8,
    /// Bytes 4-5: where the device starts in the available ring (as after a pause).
    pub next_avail: u16,
    /// Bytes 6-7: where it starts in the used ring.
    pub next_used: u16,
    /// Bytes 8-9: the descriptor table's offset in RAM (rounded down to 16).
    pub desc: u16,
    /// Bytes 10-11: the available ring's offset (rounded down to 2).
    pub avail: u16,
    /// Bytes 12-13: the used ring's offset (rounded down to 4).
    pub used: u16,
    /// The rest: RAM from its first byte on (the rest of RAM is zero).
    pub ram: Vec<u8>,
}

impl Input {
    /// Reads an input; a short one is padded with zeros.
    pub fn parse(data: &[u8]) -> Input {
        let mut c = [0u8; CONTROL_SIZE];
        let n = data.len().min(CONTROL_SIZE);
        c[..n].copy_from_slice(&data[..n]);
        let u16_at = |i: usize| u16::from_le_bytes([c[i], c[i + 1]]);
        Input {
            size_log2: c[0] % 9,
            read_only: c[1] & 1 != 0,
            event_idx: c[1] & 2 != 0,
            sectors: (c[2] as u64 % (MAX_SECTORS + 1)) as u8,
            tail: c[3],
            next_avail: u16_at(4),
            next_used: u16_at(6),
            desc: u16_at(8) & !15,
            avail: u16_at(10) & !1,
            used: u16_at(12) & !3,
            ram: data[n..data.len().min(n + RAM_SIZE)].to_vec(),
        }
    }

    /// The bytes [`parse`](Self::parse) reads back as this input.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v =
            vec![self.size_log2, self.read_only as u8 | (self.event_idx as u8) << 1, self.sectors, self.tail];
        for x in [self.next_avail, self.next_used, self.desc, self.avail, self.used] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&self.ram);
        v
    }

    fn queue_size(&self) -> u16 {
        1 << self.size_log2
    }

    fn disk_len(&self) -> usize {
        self.sectors as usize * SECTOR_SIZE as usize + self.tail as usize
    }
}

/// What serving an input came to, for tests that check the harness reaches deep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Whether the queue was valid (the transport would have started the device).
    pub started: bool,
    /// The status byte of every answered request, in order (`None`: it could not be answered).
    pub statuses: Vec<Option<u8>>,
    /// Whether the device flagged DEVICE_NEEDS_RESET.
    pub needs_reset: bool,
}

/// Runs one input: parses and serves every available request, checking each step. Panics on a
/// broken promise.
pub fn parse_from_bytes(data: &[u8]) -> Summary {
    let input = Input::parse(data);
    let rig = Rig::new(&input);
    let Some(mut q) = rig.queue(&input) else {
        return Summary::default();
    };
    let initial = rig.ram();
    let mut summary = Summary { started: true, ..Summary::default() };
    let capped = match serve_checked(&mut q, &rig, &mut summary) {
        Ok(capped) => capped,
        Err(_) => {
            rig.backend.interrupt.set_needs_reset();
            false
        }
    };
    summary.needs_reset = rig.backend.interrupt.needs_reset();
    let (ram, disk) = (rig.ram(), rig.disk());
    assert_eq!(disk.len(), input.disk_len(), "the image changed size");
    let log = rig.log.lock().unwrap().clone();
    for i in diff(&initial, &ram) {
        let addr = RAM_BASE + i as u64;
        assert!(
            log.iter().any(|&(a, n)| (a..a + n).contains(&addr)),
            "a write to {addr:#x} was not reported as a DMA write"
        );
    }

    // The worker's own loop on a fresh copy of the guest ends in the same state.
    if !capped {
        drop(rig);
        let rig = Rig::new(&input);
        let mut q = rig.queue(&input).expect("the same queue");
        if process_queue(&mut q, &rig.backend, &AtomicBool::new(false)).is_err() {
            rig.backend.interrupt.set_needs_reset();
        }
        assert!(rig.ram() == ram, "the worker's loop left guest memory different from the harness's");
        assert!(rig.disk() == disk, "the worker's loop left the image different from the harness's");
        assert_eq!(rig.backend.interrupt.needs_reset(), summary.needs_reset);
    }
    summary
}

/// A guest: RAM, guest memory over it with DMA writes logged, a disk. Fields drop in order.
struct Rig {
    backend: Backend,
    disk_len: usize,
    log: Arc<Mutex<Vec<(u64, u64)>>>,
    /// Backs guest memory: dropped last.
    _ram: AnonRam,
}

/// Distinguishes the images of concurrent runs in one process.
static RUN: AtomicU64 = AtomicU64::new(0);

impl Rig {
    fn new(input: &Input) -> Rig {
        let ram = AnonRam::new(RAM_SIZE).expect("anonymous memory for guest RAM");
        let view = ram.view(RAM_BASE);
        view.write_bytes(RAM_BASE, &input.ram).expect("the image fits in RAM");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mm =
            MemoryManager_TO::from_ptr(RArc::new(DmaRecorder(RamOnly(view), Arc::clone(&log))), TD_Opaque);
        let mem = Arc::new(vm_virtio_common::guest_memory(mm).expect("guest memory over RAM"));

        // The image is unlinked once open: nothing is left behind, whatever happens next.
        let path = image_dir().join(format!(
            "vm-virtio-blk-fuzz-{}-{}.img",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, &pattern()[..input.disk_len()]).expect("a scratch disk image");
        let disk = DiskImage::open(&path, input.read_only, CacheMode::Writeback);
        let _ = std::fs::remove_file(&path);
        let disk = disk.expect("the scratch disk image opens");

        let mut id = DeviceId::default();
        id[..SERIAL.len()].copy_from_slice(SERIAL);
        let interrupt = Interrupt::new(None);
        let backend = Backend { mem, disk: Arc::new(disk), interrupt, id };
        Rig { backend, disk_len: input.disk_len(), log, _ram: ram }
    }

    /// The queue as the transport hands it over, or `None` where the transport refuses to start.
    fn queue(&self, input: &Input) -> Option<Queue> {
        let q = Queue::try_from(QueueState {
            max_size: QUEUE_SIZE,
            next_avail: input.next_avail,
            next_used: input.next_used,
            event_idx_enabled: input.event_idx,
            size: input.queue_size(),
            ready: true,
            desc_table: RAM_BASE + input.desc as u64,
            avail_ring: RAM_BASE + input.avail as u64,
            used_ring: RAM_BASE + input.used as u64,
        })
        .ok()?;
        q.is_valid(self.backend.mem.as_ref()).then_some(q)
    }

    fn ram(&self) -> Vec<u8> {
        let mut v = vec![0; RAM_SIZE];
        self.backend.mem.read_slice(&mut v, GuestAddress(RAM_BASE)).expect("RAM reads back");
        v
    }

    /// The whole image file, the partial sector past the disk's end included.
    fn disk(&self) -> Vec<u8> {
        let mut v = vec![0; self.disk_len];
        self.backend.disk.read_exact_at(&mut v, 0).expect("the image reads back");
        v
    }
}

/// tmpfs where there is one: a guest FLUSH is an fdatasync.
fn image_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() { shm } else { std::env::temp_dir() }
}

/// What the largest image holds before any write: sector numbers and offsets mixed.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..(MAX_SECTORS + 1) as usize * SECTOR_SIZE as usize).map(|i| (i * 7 + i / 512 + 3) as u8).collect()
    })
}

/// `process_queue`'s loop with every request checked: returns whether it stopped at the cap.
fn serve_checked(q: &mut Queue, rig: &Rig, summary: &mut Summary) -> Result<bool, virtio_queue::Error> {
    let b = &rig.backend;
    let mem = b.mem.as_ref();
    let info = DiskInfo { sectors: b.disk.sectors(), read_only: b.disk.read_only() };
    drain(q, b, |chain| {
        if summary.statuses.len() == MAX_REQUESTS {
            return None;
        }
        let descs: Vec<Descriptor> = chain.clone().collect();
        // The parser alone, on a disk as large as a u64 allows.
        let huge = DiskInfo { sectors: u64::MAX, read_only: info.read_only };
        check_parse(mem, &descs, huge, &parse_request(mem, chain.clone(), huge));

        let parsed = parse_request(mem, chain, info);
        check_parse(mem, &descs, info, &parsed);
        Some(match parsed {
            Ok(req) => {
                let status = check_served(rig, &descs, &req);
                summary.statuses.push(Some(status.0));
                status.1
            }
            Err(_) => {
                b.interrupt.set_needs_reset();
                summary.statuses.push(None);
                0
            }
        })
    })
}

fn in_ram(mem: &GuestMem, addr: u64, len: u64) -> bool {
    usize::try_from(len).is_ok_and(|n| mem.check_range(GuestAddress(addr), n))
}

fn total(segs: &[Segment]) -> u64 {
    segs.iter().map(|s| s.len).sum()
}

/// The parse result agrees with the chain it came from.
fn check_parse(mem: &GuestMem, descs: &[Descriptor], disk: DiskInfo, parsed: &Result<Request, RequestError>) {
    let Some(last) = descs.last().filter(|d| !d.has_next()) else {
        assert_eq!(parsed, &Err(RequestError::BrokenChain), "a cut-short chain: {descs:?}");
        return;
    };
    if !last.is_write_only() || last.len() == 0 {
        assert_eq!(parsed, &Err(RequestError::NoStatus), "{descs:?}");
        return;
    }
    let status = last.addr().0.checked_add(last.len() as u64 - 1).filter(|&a| in_ram(mem, a, 1));
    let Some(status) = status else {
        assert!(matches!(parsed, Err(RequestError::StatusOutsideRam(_))), "{parsed:?} for {descs:?}");
        return;
    };
    let req = parsed.as_ref().expect("an answerable request");
    assert_eq!(req.status, GuestAddress(status), "the status byte is the chain's last byte");

    let sum = |w: bool| descs.iter().filter(|d| d.is_write_only() == w).map(|d| d.len() as u64).sum::<u64>();
    let (readable, writable) = (sum(false), sum(true) - 1);
    let ordered = descs.iter().skip_while(|d| !d.is_write_only()).all(|d| d.is_write_only());
    let op = match &req.op {
        Ok(op) => op,
        Err(e) => {
            let s = e.status();
            assert!(s == VIRTIO_BLK_S_IOERR as u8 || s == VIRTIO_BLK_S_UNSUPP as u8);
            assert_eq!(s == VIRTIO_BLK_S_UNSUPP as u8, matches!(e, RequestError::Unsupported(_)));
            assert_eq!(!ordered, e == &RequestError::ReadableAfterWritable, "{e:?} for {descs:?}");
            if let RequestError::ShortHeader(n) = e {
                assert!(*n == readable && readable < HEADER_SIZE);
            }
            if e == &RequestError::ReadOnly {
                assert!(disk.read_only);
            }
            return;
        }
    };
    assert!(ordered, "an accepted request with readable after writable: {descs:?}");
    assert!(readable >= HEADER_SIZE, "an accepted request with a {readable}-byte header");
    let data = match op {
        Operation::Flush => return,
        Operation::Read { data, .. } | Operation::Write { data, .. } | Operation::GetId { data } => data,
    };
    for s in data {
        assert!(s.len > 0 && in_ram(mem, s.addr.0, s.len), "a data segment {s:?} outside RAM or empty");
    }
    let len = total(data);
    match op {
        Operation::Read { sector, .. } => {
            assert_eq!((readable, len), (HEADER_SIZE, writable), "a read's lengths don't add up");
            check_range(*sector, len, disk);
        }
        Operation::Write { sector, .. } => {
            assert!(!disk.read_only, "a write accepted on a read-only disk");
            assert_eq!((readable, writable), (HEADER_SIZE + len, 0), "a write's lengths don't add up");
            check_range(*sector, len, disk);
        }
        Operation::GetId { .. } => assert_eq!(len, writable.min(VIRTIO_BLK_ID_BYTES as u64)),
        Operation::Flush => unreachable!(),
    }
}

fn check_range(sector: u64, len: u64, disk: DiskInfo) {
    assert!(len.is_multiple_of(SECTOR_SIZE), "{len} bytes are not whole sectors");
    let end = sector.checked_add(len / SECTOR_SIZE);
    assert!(end.is_some_and(|e| e <= disk.sectors), "sectors {sector}..+{} past {}", len / 512, disk.sectors);
}

/// Serves `req` as the worker does; checks what changed in RAM and on the disk. Returns the
/// status byte and `used.len`.
fn check_served(rig: &Rig, descs: &[Descriptor], req: &Request) -> (u8, u32) {
    let (ram0, disk0) = (rig.ram(), rig.disk());
    let logged = rig.log.lock().unwrap().len();
    let used_len = execute(req, &rig.backend);
    let (ram1, disk1) = (rig.ram(), rig.disk());
    let at = |a: GuestAddress| (a.0 - RAM_BASE) as usize;
    let status = ram1[at(req.status)];

    // Guest memory: only the data the device fills and the status byte, each write reported.
    let mut allowed = vec![(req.status.0, 1)];
    let mut filled = 0;
    if let Ok(Operation::Read { data, .. } | Operation::GetId { data }) = &req.op {
        allowed.extend(data.iter().map(|s| (s.addr.0, s.len)));
        filled = if status == VIRTIO_BLK_S_OK as u8 { total(data) } else { 0 };
    }
    let inside = |addr: u64, len: u64, ranges: &[(u64, u64)]| {
        ranges.iter().any(|&(a, n)| addr >= a && addr - a < n && len <= n - (addr - a))
    };
    let log = rig.log.lock().unwrap()[logged..].to_vec();
    for &(a, n) in &log {
        assert!(inside(a, n, &allowed), "a DMA write {a:#x}+{n} outside the request's writable buffers");
    }
    for i in diff(&ram0, &ram1) {
        let addr = RAM_BASE + i as u64;
        assert!(inside(addr, 1, &log), "guest byte {addr:#x} changed without a DMA write");
    }
    let writable: u64 = descs.iter().filter(|d| d.is_write_only()).map(|d| d.len() as u64).sum();
    assert_eq!(used_len as u64, filled + 1, "used.len is the bytes written");
    assert!(used_len as u64 <= writable, "used.len beyond the writable buffers");

    // The disk: only a write's own sectors change, to the guest's data.
    match &req.op {
        Ok(Operation::Write { sector, data }) if status == VIRTIO_BLK_S_OK as u8 => {
            let start = (*sector * SECTOR_SIZE) as usize;
            let end = start + total(data) as usize;
            let written: Vec<u8> =
                data.iter().flat_map(|s| ram0[at(s.addr)..][..s.len as usize].to_vec()).collect();
            assert!(disk1[start..end] == written[..], "the image does not hold the written data");
            assert!(
                disk1[..start] == disk0[..start] && disk1[end..] == disk0[end..],
                "a write outside its sectors"
            );
        }
        Ok(Operation::Write { sector, data }) => {
            let (start, end) =
                ((*sector * SECTOR_SIZE) as usize, (*sector * SECTOR_SIZE + total(data)) as usize);
            for i in diff(&disk0, &disk1) {
                assert!(
                    (start..end).contains(&i),
                    "a failed write changed image byte {i} outside its sectors"
                );
            }
        }
        _ => assert!(disk0 == disk1, "a request other than a write changed the image"),
    }
    if let Ok(Operation::Read { sector, data }) = &req.op
        && status == VIRTIO_BLK_S_OK as u8
        && disjoint(data, req.status)
    {
        let mut off = (*sector * SECTOR_SIZE) as usize;
        for s in data {
            let n = s.len as usize;
            assert!(ram1[at(s.addr)..][..n] == disk1[off..off + n], "a read did not bring the image's bytes");
            off += n;
        }
    }
    (status, used_len)
}

/// Whether no two data segments, nor a segment and the status byte, share a byte.
fn disjoint(data: &[Segment], status: GuestAddress) -> bool {
    let mut r: Vec<(u64, u64)> = data.iter().map(|s| (s.addr.0, s.addr.0 + s.len)).collect();
    r.push((status.0, status.0 + 1));
    r.sort();
    r.windows(2).all(|w| w[0].1 <= w[1].0)
}

/// The indices where `a` and `b` differ (compared a block at a time: this runs on all of RAM
/// after every request).
fn diff<'a>(a: &'a [u8], b: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    const BLOCK: usize = 256;
    a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate().filter(|(_, (x, y))| x != y).flat_map(|(k, (x, y))| {
        x.iter().zip(y.iter()).enumerate().filter(|(_, (p, q))| p != q).map(move |(i, _)| k * BLOCK + i)
    })
}

/// Builds well-formed guests, the fuzzer's starting points: a queue at the start of RAM
/// (table, available ring, used ring), requests further on.
pub mod seeds {
    use super::*;
    use virtio_bindings::virtio_blk::{
        VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
    };
    use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

    /// Device-writable.
    pub const W: u16 = VRING_DESC_F_WRITE as u16;
    /// An indirect table.
    pub const I: u16 = VRING_DESC_F_INDIRECT as u16;
    /// A guest with a queue of `1 << size_log2` entries (table, available and used rings from
    /// the start of RAM) and a disk of `sectors`.
    pub fn guest(size_log2: u8, sectors: u8) -> Input {
        let size = 1u16 << size_log2;
        let avail = size * 16;
        let used = (avail + 6 + 2 * size + 3) & !3;
        let mut g = Input {
            size_log2,
            read_only: false,
            event_idx: false,
            sectors,
            tail: 0,
            next_avail: 0,
            next_used: 0,
            desc: 0,
            avail,
            used,
            ram: Vec::new(),
        };
        g.ram = vec![0; g.buffers() as usize];
        g
    }

    impl Input {
        /// Where buffers may go: the first 16-byte boundary after the used ring.
        pub fn buffers(&self) -> u16 {
            (self.used + 6 + 8 * self.queue_size() + 15) & !15
        }

        /// Puts `bytes` at RAM offset `at`, growing the image as needed.
        pub fn put(&mut self, at: u16, bytes: &[u8]) {
            let end = at as usize + bytes.len();
            if self.ram.len() < end {
                self.ram.resize(end, 0);
            }
            self.ram[at as usize..end].copy_from_slice(bytes);
        }

        /// Writes descriptor `i` of the table at RAM offset `table`.
        pub fn desc(&mut self, table: u16, i: u16, addr: u16, len: u32, flags: u16, next: u16) {
            let mut d = (RAM_BASE + addr as u64).to_le_bytes().to_vec();
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            self.put(table + 16 * i, &d);
        }

        /// Writes `descs` (address offset, length, flags) as one chain from table index `first`.
        pub fn chain(&mut self, table: u16, first: u16, descs: &[(u16, u32, u16)]) {
            for (k, &(addr, len, flags)) in descs.iter().enumerate() {
                let i = first + k as u16;
                let more = k + 1 < descs.len();
                let flags = if more { flags | VRING_DESC_F_NEXT as u16 } else { flags };
                self.desc(table, i, addr, len, flags, if more { i + 1 } else { 0 });
            }
        }

        /// Makes the chains starting at `heads` available (after `next_avail`).
        pub fn offer(&mut self, heads: &[u16]) {
            let size = self.queue_size();
            for (k, &h) in heads.iter().enumerate() {
                let slot = (self.next_avail.wrapping_add(k as u16) % size) * 2;
                self.put(self.avail + 4 + slot, &h.to_le_bytes());
            }
            let idx = self.next_avail.wrapping_add(heads.len() as u16);
            self.put(self.avail + 2, &idx.to_le_bytes());
        }

        /// A request header at `at`.
        pub fn header(&mut self, at: u16, kind: u32, sector: u64) {
            let mut h = kind.to_le_bytes().to_vec();
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&sector.to_le_bytes());
            self.put(at, &h);
        }
    }

    /// One guest per kind of request, as drivers make them; named for the corpus files.
    pub fn all() -> Vec<(&'static str, Input)> {
        // Buffers after the rings of a 16-entry queue, the largest here.
        let hdr = guest(4, 0).buffers();
        let (data, data2, status) = (hdr + 0x40, hdr + 0x440, hdr + 0x840);
        let three = |kind: u32, sector: u64, len: u32, flags: u16| {
            let mut g = guest(4, 16);
            g.header(hdr, kind, sector);
            g.put(data, &[0xc3; 1024]);
            g.chain(0, 0, &[(hdr, 16, 0), (data, len, flags), (status, 1, W)]);
            g.offer(&[0]);
            g
        };
        let mut out = vec![
            ("read", three(VIRTIO_BLK_T_IN, 3, 1024, W)),
            ("write", three(VIRTIO_BLK_T_OUT, 5, 512, 0)),
            ("get-id", three(VIRTIO_BLK_T_GET_ID, 0, 20, W)),
            ("past-the-end", three(VIRTIO_BLK_T_IN, 15, 1024, W)),
            ("partial-sector", three(VIRTIO_BLK_T_OUT, 0, 100, 0)),
        ];
        let mut ro = three(VIRTIO_BLK_T_OUT, 1, 512, 0);
        ro.read_only = true;
        out.push(("read-only-write", ro));

        let mut flush = guest(4, 16);
        flush.header(hdr, VIRTIO_BLK_T_FLUSH, 0);
        flush.chain(0, 0, &[(hdr, 16, 0), (status, 1, W)]);
        flush.offer(&[0]);
        out.push(("flush", flush));

        // Linux's layout: header, data split over two buffers, status; three requests at once,
        // event index on, the ring wrapping.
        let mut many = guest(4, 16);
        many.event_idx = true;
        many.next_avail = 0xfffe;
        many.next_used = 0xfffe;
        many.header(hdr, VIRTIO_BLK_T_OUT, 2);
        many.header(hdr + 16, VIRTIO_BLK_T_IN, 2);
        many.header(hdr + 32, VIRTIO_BLK_T_FLUSH, 0);
        many.put(data, &[0x5a; 1024]);
        many.chain(0, 0, &[(hdr, 16, 0), (data, 512, 0), (data + 512, 512, 0), (status, 1, W)]);
        many.chain(0, 4, &[(hdr + 16, 16, 0), (data2, 1024, W), (status + 1, 1, W)]);
        many.chain(0, 7, &[(hdr + 32, 16, 0), (status + 2, 1, W)]);
        many.offer(&[0, 4, 7]);
        out.push(("three-requests", many));

        // U-Boot and Linux with INDIRECT_DESC: one ring slot, a table of three.
        let mut ind = guest(3, 16);
        let table = hdr + 0x20;
        ind.header(hdr, VIRTIO_BLK_T_IN, 7);
        ind.chain(table, 0, &[(hdr, 16, 0), (data, 512, W), (status, 1, W)]);
        ind.desc(0, 2, table, 48, I, 0);
        ind.offer(&[2]);
        out.push(("indirect-read", ind));

        // Header and data in one descriptor; data and status in another.
        let mut merged = guest(1, 16);
        merged.header(hdr, VIRTIO_BLK_T_OUT, 1);
        merged.chain(0, 0, &[(hdr, 16 + 512, 0), (status, 1, W)]);
        merged.offer(&[0]);
        out.push(("merged-write", merged));
        let mut merged = guest(1, 16);
        merged.header(hdr, VIRTIO_BLK_T_IN, 1);
        merged.chain(0, 0, &[(hdr, 16, 0), (status - 512, 513, W)]);
        merged.offer(&[0]);
        out.push(("merged-read", merged));
        out
    }
}
