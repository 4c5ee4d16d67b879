//! Guest memory as plugins see it: a raw view of RAM for fast paths, and a [`MemoryManager`] object
//! that routes any guest physical address to RAM or to the device bus.

use crate::error::{VmError, VmResult};
use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RArc, RSlice, RVec},
};
use async_ffi::FfiFuture;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

/// Memory ordering for atomic guest accesses (C++11 orderings).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryOrder {
    /// No ordering constraint.
    Relaxed,
    /// Acquire (loads).
    Acquire,
    /// Release (stores).
    Release,
    /// Acquire and release.
    AcqRel,
    /// Sequentially consistent.
    SeqCst,
}

impl MemoryOrder {
    /// The ordering to use for a load.
    pub fn for_load(self) -> Ordering {
        match self {
            MemoryOrder::Relaxed | MemoryOrder::Release => Ordering::Relaxed,
            MemoryOrder::Acquire | MemoryOrder::AcqRel => Ordering::Acquire,
            MemoryOrder::SeqCst => Ordering::SeqCst,
        }
    }
    /// The ordering to use for a store.
    pub fn for_store(self) -> Ordering {
        match self {
            MemoryOrder::Relaxed | MemoryOrder::Acquire => Ordering::Relaxed,
            MemoryOrder::Release | MemoryOrder::AcqRel => Ordering::Release,
            MemoryOrder::SeqCst => Ordering::SeqCst,
        }
    }
    /// The ordering to use for a read-modify-write.
    pub fn for_rmw(self) -> Ordering {
        match self {
            MemoryOrder::Relaxed => Ordering::Relaxed,
            MemoryOrder::Acquire => Ordering::Acquire,
            MemoryOrder::Release => Ordering::Release,
            MemoryOrder::AcqRel => Ordering::AcqRel,
            MemoryOrder::SeqCst => Ordering::SeqCst,
        }
    }
}

/// A raw view of guest RAM: `size` bytes at guest physical `base`, mapped at host address `host`.
///
/// The host keeps the mapping alive for as long as any plugin holds the view. Accessors check
/// bounds, so a guest-supplied address can never reach outside RAM.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct GuestRam {
    /// Guest physical address of the first byte.
    pub base: u64,
    /// Host address of the first byte.
    pub host: *mut u8,
    /// Size in bytes.
    pub size: u64,
}

// SAFETY: the view is a plain address range into a host mapping that outlives every holder; access
// through it is bounds-checked and unsynchronised like the guest's own memory.
unsafe impl Send for GuestRam {}
// SAFETY: as above.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// The host pointer for `len` bytes at guest address `addr`, if they lie wholly inside RAM.
    #[inline(always)]
    pub fn host_ptr(&self, addr: u64, len: u64) -> Option<*mut u8> {
        let off = addr.wrapping_sub(self.base);
        if off < self.size && len <= self.size - off {
            // SAFETY: off + len <= size, so the result stays inside the mapping.
            Some(unsafe { self.host.add(off as usize) })
        } else {
            None
        }
    }

    /// Loads `size` (1, 2, 4 or 8) bytes little-endian at `addr`, zero-extended.
    #[inline(always)]
    pub fn load(&self, addr: u64, size: u8) -> Option<u64> {
        let p = self.host_ptr(addr, size as u64)?;
        // SAFETY: host_ptr checked that `size` bytes at p are inside RAM; unaligned reads are allowed.
        unsafe {
            Some(match size {
                1 => p.read() as u64,
                2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
                4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
                8 => u64::from_le(p.cast::<u64>().read_unaligned()),
                _ => return None,
            })
        }
    }

    /// Stores the low `size` (1, 2, 4 or 8) bytes of `value` little-endian at `addr`.
    #[inline(always)]
    pub fn store(&self, addr: u64, size: u8, value: u64) -> Option<()> {
        let p = self.host_ptr(addr, size as u64)?;
        // SAFETY: as in `load`.
        unsafe {
            match size {
                1 => p.write(value as u8),
                2 => p.cast::<u16>().write_unaligned((value as u16).to_le()),
                4 => p.cast::<u32>().write_unaligned((value as u32).to_le()),
                8 => p.cast::<u64>().write_unaligned(value.to_le()),
                _ => return None,
            }
        }
        Some(())
    }

    /// Copies guest bytes at `addr` into `buf`.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Option<()> {
        let p = self.host_ptr(addr, buf.len() as u64)?;
        // SAFETY: bounds checked above; `buf` cannot overlap guest RAM handed out by the host.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copies `buf` into guest memory at `addr`.
    pub fn write_bytes(&self, addr: u64, buf: &[u8]) -> Option<()> {
        let p = self.host_ptr(addr, buf.len() as u64)?;
        // SAFETY: as in `read_bytes`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), p, buf.len()) };
        Some(())
    }

    /// Atomic load of a naturally aligned `size`-byte value.
    pub fn load_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> Option<u64> {
        let p = self.aligned_ptr(addr, size)?;
        let o = order.for_load();
        // SAFETY: p is in bounds and aligned to `size`; guest RAM is only accessed as plain bytes or
        // through these atomics, which is how the guest itself sees it.
        unsafe {
            Some(match size {
                1 => AtomicU8::from_ptr(p).load(o) as u64,
                2 => AtomicU16::from_ptr(p.cast()).load(o) as u64,
                4 => AtomicU32::from_ptr(p.cast()).load(o) as u64,
                _ => AtomicU64::from_ptr(p.cast()).load(o),
            })
        }
    }

    /// Atomic store of a naturally aligned `size`-byte value.
    pub fn store_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> Option<()> {
        let p = self.aligned_ptr(addr, size)?;
        let o = order.for_store();
        // SAFETY: as in `load_atomic`.
        unsafe {
            match size {
                1 => AtomicU8::from_ptr(p).store(value as u8, o),
                2 => AtomicU16::from_ptr(p.cast()).store(value as u16, o),
                4 => AtomicU32::from_ptr(p.cast()).store(value as u32, o),
                _ => AtomicU64::from_ptr(p.cast()).store(value, o),
            }
        }
        Some(())
    }

    /// Atomic compare-and-exchange; returns the previous value (equal to `expected` on success).
    pub fn compare_exchange(
        &self,
        addr: u64,
        size: u8,
        expected: u64,
        new: u64,
        order: MemoryOrder,
    ) -> Option<u64> {
        let p = self.aligned_ptr(addr, size)?;
        let (s, f) = (order.for_rmw(), order.for_load());
        // SAFETY: as in `load_atomic`.
        unsafe {
            Some(match size {
                1 => {
                    let r = AtomicU8::from_ptr(p).compare_exchange(expected as u8, new as u8, s, f);
                    r.unwrap_or_else(|v| v) as u64
                }
                2 => {
                    let a = AtomicU16::from_ptr(p.cast());
                    a.compare_exchange(expected as u16, new as u16, s, f).unwrap_or_else(|v| v) as u64
                }
                4 => {
                    let a = AtomicU32::from_ptr(p.cast());
                    a.compare_exchange(expected as u32, new as u32, s, f).unwrap_or_else(|v| v) as u64
                }
                _ => {
                    let a = AtomicU64::from_ptr(p.cast());
                    a.compare_exchange(expected, new, s, f).unwrap_or_else(|v| v)
                }
            })
        }
    }

    fn aligned_ptr(&self, addr: u64, size: u8) -> Option<*mut u8> {
        if !matches!(size, 1 | 2 | 4 | 8) || !addr.is_multiple_of(size as u64) {
            return None;
        }
        self.host_ptr(addr, size as u64)
    }
}

/// Memory access for plugins: any guest physical address, RAM or device.
///
/// Accesses outside RAM go to the device bus; an address nothing answers gives an error.
#[sabi_trait]
pub trait MemoryManager: Send + Sync {
    /// Reads `len` bytes at `addr`. The range is checked before anything is allocated: it must lie
    /// inside RAM, or be a small range of device space (vmhost: at most 4 KiB, read byte by byte).
    fn read(&self, addr: u64, len: u64) -> VmResult<RVec<u8>>;
    /// Writes `data` at `addr`.
    fn write(&self, addr: u64, data: RSlice<'_, u8>) -> VmResult<()>;
    /// Atomically loads a naturally aligned value of `size` bytes.
    fn read_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> VmResult<u64>;
    /// Atomically stores a naturally aligned value of `size` bytes.
    fn write_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> VmResult<()>;
    /// Atomic compare-and-exchange; returns the previous value.
    fn compare_exchange(
        &self,
        addr: u64,
        size: u8,
        expected: u64,
        new: u64,
        order: MemoryOrder,
    ) -> VmResult<u64>;
    /// Reads `len` bytes at `addr`, completing on a host thread.
    fn read_async(&self, addr: u64, len: u64) -> FfiFuture<VmResult<RVec<u8>>>;
    /// Writes `data` at `addr`, completing on a host thread.
    fn write_async(&self, addr: u64, data: RVec<u8>) -> FfiFuture<VmResult<()>>;
    /// The raw RAM view, for fast paths.
    fn ram(&self) -> GuestRam;
    /// Tells the host that a device wrote `len` bytes at guest physical `addr` through the raw
    /// view (DMA), so it can drop translated code there. [`write`](MemoryManager::write) and the
    /// atomics report their own writes.
    fn dma_written(&self, addr: u64, len: u64);
}

/// A shareable memory manager object.
pub type MemoryManagerArc = MemoryManager_TO<'static, RArc<()>>;

/// A [`MemoryManager`] over RAM alone, with no device bus: accesses outside RAM fail.
///
/// Hosts that have a bus provide their own; this one serves tests and tools.
pub struct RamOnly(pub GuestRam);

impl RamOnly {
    fn miss(addr: u64) -> VmError {
        VmError::memory(format!("guest address {addr:#x} is outside RAM"))
    }
}

impl MemoryManager for RamOnly {
    fn read(&self, addr: u64, len: u64) -> VmResult<RVec<u8>> {
        // Bounds first: `len` comes from the caller (often the guest) and is allocated below.
        if self.0.host_ptr(addr, len).is_none() {
            return VmResult::RErr(VmError::memory(format!(
                "cannot read {len} bytes at guest address {addr:#x}: not inside RAM ({:#x}..{:#x})",
                self.0.base,
                self.0.base.wrapping_add(self.0.size)
            )));
        }
        let mut v = vec![0; len as usize];
        self.0.read_bytes(addr, &mut v).map(|_| RVec::from(v)).ok_or_else(|| Self::miss(addr)).into()
    }
    fn write(&self, addr: u64, data: RSlice<'_, u8>) -> VmResult<()> {
        self.0.write_bytes(addr, data.as_slice()).ok_or_else(|| Self::miss(addr)).into()
    }
    fn read_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> VmResult<u64> {
        self.0.load_atomic(addr, size, order).ok_or_else(|| Self::miss(addr)).into()
    }
    fn write_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> VmResult<()> {
        self.0.store_atomic(addr, size, value, order).ok_or_else(|| Self::miss(addr)).into()
    }
    fn compare_exchange(
        &self,
        addr: u64,
        size: u8,
        expected: u64,
        new: u64,
        order: MemoryOrder,
    ) -> VmResult<u64> {
        self.0.compare_exchange(addr, size, expected, new, order).ok_or_else(|| Self::miss(addr)).into()
    }
    fn read_async(&self, addr: u64, len: u64) -> FfiFuture<VmResult<RVec<u8>>> {
        let r = self.read(addr, len);
        async_ffi::FutureExt::into_ffi(async move { r })
    }
    fn write_async(&self, addr: u64, data: RVec<u8>) -> FfiFuture<VmResult<()>> {
        let r = self.write(addr, data.as_rslice());
        async_ffi::FutureExt::into_ffi(async move { r })
    }
    fn ram(&self) -> GuestRam {
        self.0
    }
    fn dma_written(&self, _addr: u64, _len: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_only_checks_the_range_before_allocating() {
        let mut backing = vec![0u8; 0x1000];
        let ram = GuestRam { base: 0x8000_0000, host: backing.as_mut_ptr(), size: 0x1000 };
        let m = RamOnly(ram);
        m.write(0x8000_0ffc, RSlice::from_slice(&[1, 2, 3, 4])).unwrap();
        assert_eq!(m.read(0x8000_0ffc, 4).unwrap().as_slice(), [1, 2, 3, 4]);
        for (addr, len) in [(0x8000_0000, 1 << 40), (0x8000_0000, u64::MAX), (u64::MAX, 2), (0x8000_0ffc, 5)]
        {
            let e = m.read(addr, len).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::Memory);
            assert_eq!(
                e.message(),
                format!(
                    "cannot read {len} bytes at guest address {addr:#x}: not inside RAM (0x80000000..0x80001000)"
                )
            );
        }
        assert!(m.write(u64::MAX, RSlice::from_slice(&[1, 2])).is_err());
    }
}
