//! The parser on hand-built chains in a fake guest RAM, hostile ones included.

use super::*;
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{RawDescriptor, split::Descriptor as SplitDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::GuestMemoryMmap;

type Mem = GuestMemoryMmap<()>;

const RAM: u64 = 0x10_0000;
const HDR: u64 = 0x1_0000;
const DATA: u64 = 0x2_0000;
const STATUS: u64 = 0x8_0000;
const W: u16 = VRING_DESC_F_WRITE as u16;
const DISK: DiskInfo = DiskInfo { sectors: 100, read_only: false };

fn mem() -> Mem {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap()
}

fn d(addr: u64, len: u32, flags: u16) -> RawDescriptor {
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags, 0))
}

/// A descriptor with its `next` field set as given (the chain is not linked for it).
fn dn(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
}

fn header(mem: &Mem, at: u64, kind: u32, sector: u64) {
    mem.write_obj(kind, GuestAddress(at)).unwrap();
    mem.write_obj(0u32, GuestAddress(at + 4)).unwrap();
    mem.write_obj(sector, GuestAddress(at + 8)).unwrap();
}

/// Parses the chain `descs` (linked in order) with a header of `kind` at `sector`.
fn parse(descs: &[RawDescriptor], kind: u32, sector: u64, disk: DiskInfo) -> Result<Request, RequestError> {
    let m = mem();
    header(&m, HDR, kind, sector);
    let q = MockSplitQueue::new(&m, 16);
    let chain = q.build_desc_chain(descs).unwrap();
    parse_request(&m, chain, disk)
}

/// Parses descriptors written as they are (the `next` links are the test's).
fn parse_raw(descs: &[RawDescriptor]) -> Result<Request, RequestError> {
    let m = mem();
    header(&m, HDR, VIRTIO_BLK_T_IN, 0);
    let q = MockSplitQueue::new(&m, 16);
    let chain = q.build_multiple_desc_chains(descs).unwrap();
    parse_request(&m, chain, DISK)
}

fn seg(addr: u64, len: u64) -> Segment {
    Segment { addr: GuestAddress(addr), len }
}

fn op(r: Result<Request, RequestError>) -> Result<Operation, RequestError> {
    let r = r.expect("answerable");
    assert_eq!(r.status, GuestAddress(STATUS));
    r.op
}

fn three(kind: u32, sector: u64, data_len: u32, data_flags: u16) -> Result<Operation, RequestError> {
    op(parse(&[d(HDR, 16, 0), d(DATA, data_len, data_flags), d(STATUS, 1, W)], kind, sector, DISK))
}

#[test]
fn read_write_flush_and_get_id_parse() {
    assert_eq!(
        three(VIRTIO_BLK_T_IN, 5, 1024, W),
        Ok(Operation::Read { sector: 5, data: vec![seg(DATA, 1024)] })
    );
    assert_eq!(
        three(VIRTIO_BLK_T_OUT, 7, 512, 0),
        Ok(Operation::Write { sector: 7, data: vec![seg(DATA, 512)] })
    );
    assert_eq!(
        op(parse(&[d(HDR, 16, 0), d(STATUS, 1, W)], VIRTIO_BLK_T_FLUSH, 0, DISK)),
        Ok(Operation::Flush)
    );
    assert_eq!(three(VIRTIO_BLK_T_GET_ID, 0, 20, W), Ok(Operation::GetId { data: vec![seg(DATA, 20)] }));
    assert_eq!(
        three(VIRTIO_BLK_T_GET_ID, 0, 64, W),
        Ok(Operation::GetId { data: vec![seg(DATA, 20)] }),
        "only the 20 id bytes are written"
    );
}

#[test]
fn any_descriptor_layout_is_taken() {
    // Header split in two; data sharing the header's descriptor; status at the end of the data's.
    let r = parse(
        &[d(HDR, 8, 0), d(HDR + 8, 8, 0), d(DATA, 512, W), d(DATA + 512, 512, W), d(STATUS, 1, W)],
        VIRTIO_BLK_T_IN,
        1,
        DISK,
    );
    assert_eq!(op(r), Ok(Operation::Read { sector: 1, data: vec![seg(DATA, 512), seg(DATA + 512, 512)] }));
    let m = mem();
    header(&m, HDR, VIRTIO_BLK_T_IN, 2);
    let q = MockSplitQueue::new(&m, 16);
    let chain = q.build_desc_chain(&[d(HDR, 16, 0), d(STATUS - 512, 513, W)]).unwrap();
    assert_eq!(
        parse_request(&m, chain, DISK),
        Ok(Request {
            status: GuestAddress(STATUS),
            op: Ok(Operation::Read { sector: 2, data: vec![seg(STATUS - 512, 512)] })
        })
    );
    m.write_obj(VIRTIO_BLK_T_OUT, GuestAddress(HDR)).unwrap();
    let chain = q.build_desc_chain(&[d(HDR, 16 + 512, 0), d(STATUS, 1, W)]).unwrap();
    assert_eq!(
        parse_request(&m, chain, DISK).unwrap().op,
        Ok(Operation::Write { sector: 2, data: vec![seg(HDR + 16, 512)] })
    );
}

#[test]
fn a_looping_chain_cannot_be_answered() {
    // 0 -> 1 -> 0 -> ...: virtio-queue stops after a queue's worth of descriptors.
    let next = VRING_DESC_F_NEXT as u16;
    assert_eq!(
        parse_raw(&[dn(HDR, 16, next, 1), dn(STATUS, 1, W | next, 0)]),
        Err(RequestError::BrokenChain)
    );
    assert_eq!(
        parse_raw(&[dn(STATUS, 1, W | next, 0)]),
        Err(RequestError::BrokenChain),
        "a descriptor naming itself"
    );
}

#[test]
fn a_next_index_past_the_table_cannot_be_answered() {
    let next = VRING_DESC_F_NEXT as u16;
    assert_eq!(parse_raw(&[dn(HDR, 16, next, 300), d(STATUS, 1, W)]), Err(RequestError::BrokenChain));
}

#[test]
fn a_chain_over_4_gib_cannot_be_answered() {
    let r = parse(
        &[d(HDR, 16, 0), d(DATA, u32::MAX, W), d(DATA, u32::MAX, W), d(STATUS, 1, W)],
        VIRTIO_BLK_T_IN,
        0,
        DISK,
    );
    assert_eq!(r, Err(RequestError::BrokenChain));
}

#[test]
fn a_missing_or_read_only_status_cannot_be_answered() {
    assert_eq!(parse(&[d(HDR, 16, 0)], VIRTIO_BLK_T_FLUSH, 0, DISK), Err(RequestError::NoStatus));
    assert_eq!(
        parse(&[d(HDR, 16, 0), d(STATUS, 1, 0)], VIRTIO_BLK_T_FLUSH, 0, DISK),
        Err(RequestError::NoStatus)
    );
    assert_eq!(
        parse(&[d(HDR, 16, 0), d(STATUS, 0, W)], VIRTIO_BLK_T_FLUSH, 0, DISK),
        Err(RequestError::NoStatus)
    );
}

#[test]
fn a_status_outside_ram_cannot_be_answered() {
    for (addr, len) in [(RAM, 1), (0x1000_1000, 1), (u64::MAX, 1), (u64::MAX - 2, 8)] {
        let r = parse(&[d(HDR, 16, 0), d(addr, len, W)], VIRTIO_BLK_T_FLUSH, 0, DISK);
        assert!(matches!(r, Err(RequestError::StatusOutsideRam(_))), "{addr:#x}: {r:?}");
    }
}

#[test]
fn buffers_outside_ram_or_at_mmio_are_io_errors() {
    for addr in [RAM - 256, 0x1000_1000, u64::MAX - 255] {
        let r = op(parse(&[d(HDR, 16, 0), d(addr, 512, W), d(STATUS, 1, W)], VIRTIO_BLK_T_IN, 0, DISK));
        assert_eq!(r, Err(RequestError::OutsideRam { addr, len: 512 }));
        assert_eq!(r.unwrap_err().status(), VIRTIO_BLK_S_IOERR as u8);
        let r = op(parse(&[d(HDR, 16, 0), d(addr, 512, 0), d(STATUS, 1, W)], VIRTIO_BLK_T_OUT, 0, DISK));
        assert_eq!(r, Err(RequestError::OutsideRam { addr, len: 512 }));
    }
    let r = op(parse(&[d(0x1000_1000, 16, 0), d(STATUS, 1, W)], VIRTIO_BLK_T_FLUSH, 0, DISK));
    assert_eq!(r, Err(RequestError::OutsideRam { addr: 0x1000_1000, len: 16 }), "the header too");
}

#[test]
fn ranges_past_the_end_or_overflowing_are_io_errors() {
    assert_eq!(
        three(VIRTIO_BLK_T_IN, 99, 1024, W),
        Err(RequestError::PastTheEnd { sector: 99, count: 2, capacity: 100 })
    );
    assert_eq!(
        three(VIRTIO_BLK_T_IN, 98, 1024, W),
        Ok(Operation::Read { sector: 98, data: vec![seg(DATA, 1024)] })
    );
    assert_eq!(
        three(VIRTIO_BLK_T_OUT, u64::MAX, 512, 0),
        Err(RequestError::SectorOverflow { sector: u64::MAX, count: 1 })
    );
    // sector * 512 would overflow: past the end first.
    assert!(matches!(
        three(VIRTIO_BLK_T_OUT, u64::MAX / 512 + 1, 512, 0),
        Err(RequestError::PastTheEnd { .. })
    ));
    assert_eq!(three(VIRTIO_BLK_T_IN, 0, 500, W), Err(RequestError::PartialSector(500)));
}

#[test]
fn writes_to_a_read_only_disk_are_io_errors() {
    let ro = DiskInfo { read_only: true, ..DISK };
    let r = op(parse(&[d(HDR, 16, 0), d(DATA, 512, 0), d(STATUS, 1, W)], VIRTIO_BLK_T_OUT, 0, ro));
    assert_eq!(r, Err(RequestError::ReadOnly));
    let r = op(parse(&[d(HDR, 16, 0), d(DATA, 512, W), d(STATUS, 1, W)], VIRTIO_BLK_T_IN, 0, ro));
    assert!(r.is_ok(), "reads are fine");
}

#[test]
fn malformed_layouts_are_io_errors() {
    assert_eq!(three(VIRTIO_BLK_T_IN, 0, 512, 0), Err(RequestError::WrongDirection));
    assert_eq!(three(VIRTIO_BLK_T_OUT, 0, 512, W), Err(RequestError::WrongDirection));
    assert_eq!(
        op(parse(&[d(HDR, 8, 0), d(STATUS, 1, W)], VIRTIO_BLK_T_FLUSH, 0, DISK)),
        Err(RequestError::ShortHeader(8))
    );
    assert_eq!(
        op(parse(
            &[d(HDR, 16, 0), d(DATA, 512, W), d(DATA, 512, 0), d(STATUS, 1, W)],
            VIRTIO_BLK_T_IN,
            0,
            DISK
        )),
        Err(RequestError::ReadableAfterWritable)
    );
}

#[test]
fn unknown_types_are_unsupported() {
    let r = op(parse(&[d(HDR, 16, 0), d(STATUS, 1, W)], 11, 0, DISK));
    assert_eq!(r, Err(RequestError::Unsupported(11)));
    assert_eq!(r.unwrap_err().status(), VIRTIO_BLK_S_UNSUPP as u8);
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        RequestError::PastTheEnd { sector: 99, count: 2, capacity: 100 }.to_string(),
        "sectors 99..+2 go past the disk's end (100 sectors)"
    );
}
