//! Parsing and validating one virtio-blk request from its descriptor chain (virtio 1.2 §5.2.6).
//!
//! A request is a 16-byte header (type, reserved, sector) the device reads, the data, and a
//! status byte the device writes: the last byte of the last descriptor. Any arrangement of
//! descriptors is taken (the header and data may share or split descriptors), provided every
//! device-readable descriptor comes before every device-writable one.
//!
//! Two kinds of failure: a chain with no status byte the device may write cannot be answered at
//! all (the outer `Err` of [`parse_request`]: the caller completes it with `used.len` 0 and flags
//! DEVICE_NEEDS_RESET); any other malformed or refused request is answered with
//! [`RequestError::status`] (IOERR, or UNSUPP for an unknown type). Every guest address is checked
//! to lie in RAM here, before any I/O starts, so a rejected write never touches the image, and
//! ranges are checked against the disk's end with overflow-checked arithmetic.

use crate::image::SECTOR_SIZE;
use std::fmt;
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use virtio_queue::DescriptorChain;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

/// Bytes in a request header.
pub const HEADER_SIZE: u64 = 16;

/// What the parser needs to know about the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskInfo {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Whether writes are refused.
    pub read_only: bool,
}

/// A guest buffer: `len` bytes at `addr`, checked to lie in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u64,
}

/// A valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Read sectors from `sector` into the buffers (their total length, a multiple of 512).
    Read {
        /// First sector.
        sector: u64,
        /// Device-writable buffers.
        data: Vec<Segment>,
    },
    /// Write sectors from the buffers to `sector`.
    Write {
        /// First sector.
        sector: u64,
        /// Device-readable buffers.
        data: Vec<Segment>,
    },
    /// Make every completed write durable.
    Flush,
    /// Write the device's serial number (up to 20 bytes) into the buffers.
    GetId {
        /// Device-writable buffers.
        data: Vec<Segment>,
    },
}

/// A request with a place to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where the status byte goes (checked to be in RAM).
    pub status: GuestAddress,
    /// What to do, or why it is refused.
    pub op: Result<Operation, RequestError>,
}

/// Why a request is malformed or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The chain is cut short: it loops, names a descriptor outside the table, lies outside RAM,
    /// totals more than 4 GiB or has a bad indirect table (virtio-queue stops walking it).
    BrokenChain,
    /// The last descriptor is not device-writable or is empty: there is no status byte.
    NoStatus,
    /// The status byte is outside RAM.
    StatusOutsideRam(u64),
    /// A device-readable descriptor follows a device-writable one.
    ReadableAfterWritable,
    /// Fewer than 16 device-readable bytes: no complete header.
    ShortHeader(u64),
    /// A buffer lies (partly) outside RAM.
    OutsideRam {
        /// Its guest address.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// A read or write whose data is not a whole number of sectors.
    PartialSector(u64),
    /// A read or write past the disk's end.
    PastTheEnd {
        /// First sector.
        sector: u64,
        /// Sectors asked for.
        count: u64,
        /// The disk's capacity.
        capacity: u64,
    },
    /// `sector + count` overflows.
    SectorOverflow {
        /// First sector.
        sector: u64,
        /// Sectors asked for.
        count: u64,
    },
    /// A write to a read-only disk.
    ReadOnly,
    /// A read with device-readable data, or a write with device-writable data.
    WrongDirection,
    /// A request type this device does not implement.
    Unsupported(u32),
}

impl RequestError {
    /// The status byte that answers the request.
    pub fn status(&self) -> u8 {
        match self {
            RequestError::Unsupported(_) => VIRTIO_BLK_S_UNSUPP as u8,
            _ => VIRTIO_BLK_S_IOERR as u8,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BrokenChain => {
                write!(f, "the descriptor chain is broken (a loop, a bad index or address, or over 4 GiB)")
            }
            RequestError::NoStatus => write!(f, "the last descriptor is not a device-writable status byte"),
            RequestError::StatusOutsideRam(a) => write!(f, "the status byte at {a:#x} is outside RAM"),
            RequestError::ReadableAfterWritable => {
                write!(f, "a device-readable descriptor follows a device-writable one")
            }
            RequestError::ShortHeader(n) => write!(f, "the request header is {n} bytes, not 16"),
            RequestError::OutsideRam { addr, len } => {
                write!(f, "a {len}-byte buffer at {addr:#x} is outside RAM")
            }
            RequestError::PartialSector(n) => {
                write!(f, "{n} data bytes are not a whole number of 512-byte sectors")
            }
            RequestError::PastTheEnd { sector, count, capacity } => {
                write!(f, "sectors {sector}..+{count} go past the disk's end ({capacity} sectors)")
            }
            RequestError::SectorOverflow { sector, count } => {
                write!(f, "sector {sector} + {count} overflows")
            }
            RequestError::ReadOnly => write!(f, "a write to a read-only disk"),
            RequestError::WrongDirection => {
                write!(f, "the data buffers go the wrong way for the request type")
            }
            RequestError::Unsupported(t) => write!(f, "request type {t} is not supported"),
        }
    }
}

/// Parses the request in `chain` (from a queue over `mem`) for a disk described by `disk`.
///
/// `Err` means the request cannot be answered (no usable status byte); `Ok` carries where to
/// write the status and either the operation or the error to answer with.
pub fn parse_request<M: GuestMemoryBackend>(
    mem: &M,
    chain: DescriptorChain<&M>,
    disk: DiskInfo,
) -> Result<Request, RequestError> {
    // The walk is bounded by the queue (or indirect table) size, so a loop ends; virtio-queue
    // then stops on a descriptor that still says another follows.
    let descs: Vec<_> = chain.collect();
    let last = descs.last().ok_or(RequestError::BrokenChain)?;
    if last.has_next() {
        return Err(RequestError::BrokenChain);
    }
    if !last.is_write_only() || last.len() == 0 {
        return Err(RequestError::NoStatus);
    }
    let status = last
        .addr()
        .0
        .checked_add(last.len() as u64 - 1)
        .filter(|&a| mem.check_range(GuestAddress(a), 1))
        .ok_or(RequestError::StatusOutsideRam(last.addr().0.wrapping_add(last.len() as u64 - 1)))?;
    let status = GuestAddress(status);

    let mut readable = Vec::new();
    let mut writable = Vec::new();
    let mut order_ok = true;
    for (i, d) in descs.iter().enumerate() {
        // The status byte is not data.
        let len = d.len() as u64 - (i == descs.len() - 1) as u64;
        let seg = Segment { addr: d.addr(), len };
        if d.is_write_only() {
            writable.push(seg);
        } else {
            order_ok &= writable.is_empty();
            readable.push(seg);
        }
    }
    let op = if order_ok {
        operation(mem, &readable, &writable, disk)
    } else {
        Err(RequestError::ReadableAfterWritable)
    };
    Ok(Request { status, op })
}

fn operation<M: GuestMemoryBackend>(
    mem: &M,
    readable: &[Segment],
    writable: &[Segment],
    disk: DiskInfo,
) -> Result<Operation, RequestError> {
    let (header, readable) = split(readable, HEADER_SIZE);
    let header_len = total(&header);
    if header_len < HEADER_SIZE {
        return Err(RequestError::ShortHeader(header_len));
    }
    check_in_ram(mem, &header)?;
    let mut bytes = [0u8; HEADER_SIZE as usize];
    let mut at = 0;
    for s in &header {
        let piece = &mut bytes[at..at + s.len as usize];
        mem.read_slice(piece, s.addr).map_err(|_| RequestError::OutsideRam { addr: s.addr.0, len: s.len })?;
        at += s.len as usize;
    }
    let kind = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let sector = u64::from_le_bytes([
        bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
    ]);
    let writable: Vec<Segment> = writable.iter().copied().filter(|s| s.len > 0).collect();
    match kind {
        VIRTIO_BLK_T_IN => {
            if !readable.is_empty() {
                return Err(RequestError::WrongDirection);
            }
            check_range(sector, &writable, disk)?;
            check_in_ram(mem, &writable)?;
            Ok(Operation::Read { sector, data: writable })
        }
        VIRTIO_BLK_T_OUT => {
            if !writable.is_empty() {
                return Err(RequestError::WrongDirection);
            }
            if disk.read_only {
                return Err(RequestError::ReadOnly);
            }
            check_range(sector, &readable, disk)?;
            check_in_ram(mem, &readable)?;
            Ok(Operation::Write { sector, data: readable })
        }
        VIRTIO_BLK_T_FLUSH => Ok(Operation::Flush),
        VIRTIO_BLK_T_GET_ID => {
            let (data, _) = split(&writable, virtio_bindings::virtio_blk::VIRTIO_BLK_ID_BYTES as u64);
            check_in_ram(mem, &data)?;
            Ok(Operation::GetId { data })
        }
        other => Err(RequestError::Unsupported(other)),
    }
}

/// The data must be whole sectors, all inside the disk.
fn check_range(sector: u64, data: &[Segment], disk: DiskInfo) -> Result<(), RequestError> {
    let len = total(data);
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(RequestError::PartialSector(len));
    }
    let count = len / SECTOR_SIZE;
    let end = sector.checked_add(count).ok_or(RequestError::SectorOverflow { sector, count })?;
    if end > disk.sectors {
        return Err(RequestError::PastTheEnd { sector, count, capacity: disk.sectors });
    }
    Ok(())
}

fn check_in_ram<M: GuestMemoryBackend>(mem: &M, segs: &[Segment]) -> Result<(), RequestError> {
    for s in segs {
        if !usize::try_from(s.len).is_ok_and(|len| mem.check_range(s.addr, len)) {
            return Err(RequestError::OutsideRam { addr: s.addr.0, len: s.len });
        }
    }
    Ok(())
}

/// Sums lengths: at most a queue's worth of u32s, far from overflowing a u64.
fn total(segs: &[Segment]) -> u64 {
    segs.iter().map(|s| s.len).sum()
}

/// The first `n` bytes of `segs`, and the rest (empty segments dropped).
fn split(segs: &[Segment], n: u64) -> (Vec<Segment>, Vec<Segment>) {
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    let mut left = n;
    for s in segs {
        let take = s.len.min(left);
        if take > 0 {
            head.push(Segment { addr: s.addr, len: take });
        }
        if s.len > take {
            tail.push(Segment { addr: GuestAddress(s.addr.0.wrapping_add(take)), len: s.len - take });
        }
        left -= take;
    }
    (head, tail)
}

#[cfg(test)]
mod tests;
