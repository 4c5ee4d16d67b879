//! Guest RAM as a `vm-memory` [`GuestMemoryMmap`], wrapped over the host's mapping without
//! copying, with a [`Bitmap`] that reports every write a device makes (data, status bytes, used
//! rings) to [`MemoryManager::dma_written`], so the host can drop translated code there.

use std::fmt;
use std::sync::{Arc, Mutex};
use vm_memory::{
    GuestAddress, GuestRegionMmap,
    bitmap::{Bitmap, BitmapSlice, WithBitmapSlice},
    mmap::MmapRegionBuilder,
};
use vm_plugin_api::{
    GuestRam, MemoryManager, MemoryManagerArc, MemoryOrder, RamOnly, VmError, VmResult,
    abi_stable::std_types::{RSlice, RVec},
    async_ffi::FfiFuture,
};

/// Guest memory for virtio devices: the host's RAM, writes reported to the host.
pub type GuestMem = vm_memory::GuestMemoryMmap<DmaBitmap>;

/// The protection and flags the host maps RAM with (`host/src/memory.rs`). `build_raw` maps
/// nothing; they are recorded for vm-memory's own bookkeeping.
const PROT: i32 = libc::PROT_READ | libc::PROT_WRITE;
const FLAGS: i32 = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;

/// A vm-memory bitmap that forwards "dirty" marks to the host as DMA writes.
///
/// It also owns a reference to the memory manager, which is what keeps the host's RAM mapping
/// alive: the [`GuestMem`] built over it cannot outlive the mapping.
#[derive(Clone)]
pub struct DmaBitmap {
    /// Guest physical address of the first byte this bitmap (slice) covers.
    base: u64,
    mm: Arc<MemoryManagerArc>,
}

impl fmt::Debug for DmaBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DmaBitmap({:#x})", self.base)
    }
}

impl WithBitmapSlice<'_> for DmaBitmap {
    type S = DmaBitmap;
}

impl BitmapSlice for DmaBitmap {}

impl Bitmap for DmaBitmap {
    fn mark_dirty(&self, offset: usize, len: usize) {
        if len > 0 {
            self.mm.dma_written(self.base + offset as u64, len as u64);
        }
    }
    fn dirty_at(&self, _offset: usize) -> bool {
        false
    }
    fn slice_at(&self, offset: usize) -> DmaBitmap {
        DmaBitmap { base: self.base + offset as u64, mm: Arc::clone(&self.mm) }
    }
}

/// Wraps the RAM of `memory` (its [`MemoryManager::ram`] view) for vm-memory and virtio-queue.
pub fn guest_memory(memory: MemoryManagerArc) -> Result<GuestMem, VmError> {
    let ram = memory.ram();
    let mm = Arc::new(memory);
    let size = usize::try_from(ram.size)
        .map_err(|_| VmError::memory("guest RAM is larger than the host's address space"))?;
    // SAFETY: [ram.host, ram.host + ram.size) is one live mapping of the host's, made with PROT
    // and FLAGS; the bitmap inside the region holds the memory manager, which keeps that mapping
    // mapped for as long as the region exists; a raw-pointer region is not owned, so dropping it
    // does not unmap the host's RAM.
    let region = unsafe {
        MmapRegionBuilder::new_with_bitmap(size, DmaBitmap { base: ram.base, mm })
            .with_raw_mmap_pointer(ram.host)
            .with_mmap_prot(PROT)
            .with_mmap_flags(FLAGS)
            .build()
    }
    .map_err(|e| VmError::memory(format!("cannot wrap guest RAM for virtio: {e}")))?;
    let region = GuestRegionMmap::new(region, GuestAddress(ram.base))
        .ok_or_else(|| VmError::memory("guest RAM's address range overflows"))?;
    GuestMem::from_regions(vec![region]).map_err(|e| VmError::memory(format!("guest RAM for virtio: {e}")))
}

/// Anonymous page-aligned memory standing in for the host's RAM, in tests and tools.
pub struct AnonRam {
    ptr: *mut u8,
    size: usize,
}

// SAFETY: a plain private mapping, owned by this value; access goes through raw pointers only.
unsafe impl Send for AnonRam {}
// SAFETY: as above.
unsafe impl Sync for AnonRam {}

impl AnonRam {
    /// Maps `size` bytes of zeroed memory.
    pub fn new(size: usize) -> std::io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), size, PROT, FLAGS, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(AnonRam { ptr: ptr.cast(), size })
    }

    /// The view a host would hand out for this memory at guest address `base`.
    pub fn view(&self, base: u64) -> GuestRam {
        GuestRam { base, host: self.ptr, size: self.size as u64 }
    }
}

impl Drop for AnonRam {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; users must not outlive it (tests keep
        // it alive longer than every GuestMem over it).
        unsafe { libc::munmap(self.ptr.cast(), self.size) };
    }
}

/// A memory manager over RAM alone that records the DMA writes reported to it, for tests and
/// tools: `(guest address, length)` in the order they came.
pub struct DmaRecorder(pub RamOnly, pub Arc<Mutex<Vec<(u64, u64)>>>);

impl MemoryManager for DmaRecorder {
    fn read(&self, addr: u64, len: u64) -> VmResult<RVec<u8>> {
        self.0.read(addr, len)
    }
    fn write(&self, addr: u64, data: RSlice<'_, u8>) -> VmResult<()> {
        self.0.write(addr, data)
    }
    fn read_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> VmResult<u64> {
        self.0.read_atomic(addr, size, order)
    }
    fn write_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> VmResult<()> {
        self.0.write_atomic(addr, size, value, order)
    }
    fn compare_exchange(&self, a: u64, s: u8, e: u64, n: u64, o: MemoryOrder) -> VmResult<u64> {
        self.0.compare_exchange(a, s, e, n, o)
    }
    fn read_async(&self, addr: u64, len: u64) -> FfiFuture<VmResult<RVec<u8>>> {
        self.0.read_async(addr, len)
    }
    fn write_async(&self, addr: u64, data: RVec<u8>) -> FfiFuture<VmResult<()>> {
        self.0.write_async(addr, data)
    }
    fn ram(&self) -> GuestRam {
        self.0.ram()
    }
    fn dma_written(&self, addr: u64, len: u64) {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).push((addr, len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};
    use vm_plugin_api::{
        RamOnly,
        abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
        memory::MemoryManager_TO,
    };

    #[test]
    fn guest_memory_shares_the_hosts_ram_and_reports_writes() {
        let ram = AnonRam::new(0x4000).unwrap();
        let view = ram.view(0x8000_0000);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mm =
            MemoryManager_TO::from_ptr(RArc::new(DmaRecorder(RamOnly(view), Arc::clone(&log))), TD_Opaque);
        let mem = guest_memory(mm).unwrap();

        view.write_bytes(0x8000_0010, &[1, 2, 3]).unwrap();
        let mut buf = [0u8; 3];
        mem.read_slice(&mut buf, GuestAddress(0x8000_0010)).unwrap();
        assert_eq!(buf, [1, 2, 3], "the host's bytes, not a copy");

        mem.write_slice(&[9, 8], GuestAddress(0x8000_1ffe)).unwrap();
        assert_eq!(view.load(0x8000_1ffe, 2), Some(0x0809));
        assert_eq!(*log.lock().unwrap(), [(0x8000_1ffe, 2)]);

        assert!(mem.read_slice(&mut buf, GuestAddress(0x7fff_fffe)).is_err(), "below RAM");
        assert!(mem.read_slice(&mut buf, GuestAddress(0x8000_3ffe)).is_err(), "past the end");
        assert!(!mem.check_range(GuestAddress(0x1000_1000), 4), "device space is not RAM");
        drop(mem);
        assert_eq!(view.load(0x8000_0010, 1), Some(1), "dropping the wrapper leaves the mapping");
    }
}
