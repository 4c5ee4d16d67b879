//! Guest RAM (one anonymous mapping) and the [`MemoryManager`] plugins use to reach any guest
//! physical address: RAM directly, everything else through the device bus.

use crate::bus::Bus;
use crate::code_pages::CodePages;
use std::sync::{Arc, OnceLock};
use vm_plugin_api::{
    GuestRam, MemoryManager, MemoryOrder, VmError, VmResult,
    abi_stable::std_types::{RSlice, RVec},
    async_ffi::{FfiFuture, FutureExt},
};

/// Guest RAM: one private anonymous mapping, unmapped on drop.
pub struct GuestMemory {
    view: GuestRam,
}

// SAFETY: the mapping is plain memory owned by this value; see GuestRam's Send/Sync.
unsafe impl Send for GuestMemory {}
// SAFETY: as above.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Maps `size` bytes of zeroed RAM at guest physical `base`.
    pub fn new(base: u64, size: u64) -> Result<GuestMemory, VmError> {
        let len = usize::try_from(size).map_err(|_| VmError::memory("RAM size does not fit the host"))?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(VmError::memory(format!("cannot map {size} bytes of guest RAM: {e}")));
        }
        Ok(GuestMemory { view: GuestRam { base, host: p.cast(), size } })
    }

    /// The raw view handed to engines and devices.
    pub fn view(&self) -> GuestRam {
        self.view
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; every holder of the view is gone by
        // now because the machine drops RAM last.
        unsafe { libc::munmap(self.view.host.cast(), self.view.size as usize) };
    }
}

/// Most bytes one byte-range access may move to or from device space (outside RAM).
pub const MAX_DEVICE_BYTES: u64 = 4096;

/// The bus, bound once the machine is assembled (devices get their memory manager before that).
pub type BusSlot = Arc<OnceLock<Arc<Bus>>>;

/// Routes plugin memory accesses to RAM or to the bus.
pub struct HostMemory {
    /// Keeps the mapping alive for as long as any plugin holds this object.
    ram: Arc<GuestMemory>,
    bus: BusSlot,
    /// Told of every write to RAM, so translated code there is dropped.
    code: Arc<CodePages>,
}

impl HostMemory {
    /// A memory manager over `ram` and the bus in `bus`; writes to RAM are reported to `code`.
    pub fn new(ram: Arc<GuestMemory>, bus: BusSlot, code: Arc<CodePages>) -> Self {
        HostMemory { ram, bus, code }
    }

    fn copy(&self) -> HostMemory {
        HostMemory { ram: Arc::clone(&self.ram), bus: Arc::clone(&self.bus), code: Arc::clone(&self.code) }
    }

    fn bus(&self) -> Result<&Bus, VmError> {
        self.bus.get().map(|b| &**b).ok_or_else(|| VmError::memory("the device bus is not assembled yet"))
    }

    /// Checks a plugin's byte-range access outside RAM: device space is reached one byte at a
    /// time, so the range is capped (a guest-chosen length must not make the host allocate or
    /// loop without bound) and must not wrap.
    fn check_device_range(&self, what: &str, addr: u64, len: u64) -> Result<(), VmError> {
        let ram = self.ram.view();
        let fail = |why: String| {
            Err(VmError::memory(format!("cannot {what} {len} bytes at guest address {addr:#x}: {why}")))
        };
        if len > MAX_DEVICE_BYTES {
            return fail(format!(
                "not inside RAM ({:#x}..{:#x}), and device space is reached at most {MAX_DEVICE_BYTES} bytes at a time",
                ram.base,
                ram.base + ram.size
            ));
        }
        // The last byte of the address space may be read; one past it may not.
        if len > 0 && addr.checked_add(len - 1).is_none() {
            return fail("the range wraps past the top of the address space".into());
        }
        Ok(())
    }

    fn bus_read(&self, addr: u64, len: u64) -> Result<Vec<u8>, VmError> {
        self.check_device_range("read", addr, len)?;
        // Outside RAM a byte range is read from the devices one byte at a time; callers that want
        // a whole register read it with `read_atomic`.
        let bus = self.bus()?;
        (0..len).map(|i| bus.read(addr + i, 1).map(|b| b as u8).map_err(|e| e.into_vm_error())).collect()
    }

    fn bus_write(&self, addr: u64, data: &[u8]) -> Result<(), VmError> {
        self.check_device_range("write", addr, data.len() as u64)?;
        let bus = self.bus()?;
        (0..)
            .zip(data)
            .try_for_each(|(i, b)| bus.write(addr + i, 1, *b as u64).map_err(|e| e.into_vm_error()))
    }
}

impl MemoryManager for HostMemory {
    fn read(&self, addr: u64, len: u64) -> VmResult<RVec<u8>> {
        let ram = self.ram.view();
        // Allocate only once the range is known to be inside RAM (so at most RAM's size) or a
        // capped device range.
        if ram.host_ptr(addr, len).is_some() {
            let mut buf = vec![0u8; len as usize];
            if ram.read_bytes(addr, &mut buf).is_some() {
                return VmResult::ROk(buf.into());
            }
        }
        self.bus_read(addr, len).map(RVec::from).into()
    }
    fn write(&self, addr: u64, data: RSlice<'_, u8>) -> VmResult<()> {
        if self.ram.view().write_bytes(addr, data.as_slice()).is_some() {
            self.code.written(addr, data.len() as u64);
            return VmResult::ROk(());
        }
        self.bus_write(addr, data.as_slice()).into()
    }
    fn read_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> VmResult<u64> {
        match self.ram.view().load_atomic(addr, size, order) {
            Some(v) => VmResult::ROk(v),
            None => self.bus().and_then(|b| b.read(addr, size).map_err(|e| e.into_vm_error())).into(),
        }
    }
    fn write_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> VmResult<()> {
        match self.ram.view().store_atomic(addr, size, value, order) {
            Some(()) => {
                self.code.written(addr, u64::from(size));
                VmResult::ROk(())
            }
            None => self.bus().and_then(|b| b.write(addr, size, value).map_err(|e| e.into_vm_error())).into(),
        }
    }
    fn compare_exchange(
        &self,
        addr: u64,
        size: u8,
        expected: u64,
        new: u64,
        order: MemoryOrder,
    ) -> VmResult<u64> {
        let old = self.ram.view().compare_exchange(addr, size, expected, new, order).ok_or_else(|| {
            VmError::memory(format!("compare-exchange at {addr:#x}: not naturally aligned RAM"))
        });
        if old == Ok(expected) {
            self.code.written(addr, u64::from(size));
        }
        old.into()
    }
    fn read_async(&self, addr: u64, len: u64) -> FfiFuture<VmResult<RVec<u8>>> {
        let me = self.copy();
        async move { tokio::task::spawn_blocking(move || me.read(addr, len)).await.unwrap_or_else(join_error) }
            .into_ffi()
    }
    fn write_async(&self, addr: u64, data: RVec<u8>) -> FfiFuture<VmResult<()>> {
        let me = self.copy();
        async move {
            tokio::task::spawn_blocking(move || me.write(addr, data.as_rslice()))
                .await
                .unwrap_or_else(join_error)
        }
        .into_ffi()
    }
    fn ram(&self) -> GuestRam {
        self.ram.view()
    }
    fn dma_written(&self, addr: u64, len: u64) {
        self.code.written(addr, len);
    }
}

fn join_error<T>(e: tokio::task::JoinError) -> VmResult<T> {
    VmResult::RErr(VmError::memory(format!("memory task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_is_zeroed_and_bounds_checked() {
        let m = GuestMemory::new(0x8000_0000, 0x10000).unwrap();
        let v = m.view();
        assert_eq!(v.load(0x8000_0000, 8), Some(0));
        assert_eq!(v.store(0x8000_fffc, 4, 0xdead_beef), Some(()));
        assert_eq!(v.load(0x8000_fffc, 4), Some(0xdead_beef));
        assert_eq!(v.load(0x8000_fffd, 4), None, "straddles the end");
        assert_eq!(v.load(0x7fff_ffff, 1), None, "below the base");
        assert_eq!(v.load(u64::MAX, 8), None);
    }

    #[test]
    fn byte_range_accesses_are_checked_before_allocating() {
        let ram = Arc::new(GuestMemory::new(0x8000_0000, 0x10000).unwrap());
        let code = Arc::new(CodePages::new(0x8000_0000, 0x10000, vec![Arc::default()]));
        let m = HostMemory::new(ram, Arc::new(OnceLock::from(Arc::new(Bus::new()))), Arc::clone(&code));
        assert!(code.mark(0x8000_fffc, 4));
        m.write(0x8000_fffc, RSlice::from_slice(&[1, 2, 3, 4])).unwrap();
        assert_eq!(m.read(0x8000_fffc, 4).unwrap().as_slice(), [1, 2, 3, 4]);
        assert_eq!(code.take_invalidated(0), [0x8000_f000], "a plugin's write drops code on the page");
        let err = |r: VmResult<RVec<u8>>| r.unwrap_err().message().to_string();
        assert_eq!(
            err(m.read(0x8000_0000, 1 << 40)),
            "cannot read 1099511627776 bytes at guest address 0x80000000: not inside RAM (0x80000000..0x80010000), \
             and device space is reached at most 4096 bytes at a time"
        );
        assert!(
            err(m.read(0, u64::MAX))
                .starts_with("cannot read 18446744073709551615 bytes at guest address 0x0: ")
        );
        assert_eq!(
            err(m.read(u64::MAX - 1, 4)),
            "cannot read 4 bytes at guest address 0xfffffffffffffffe: the range wraps past the top of the address space"
        );
        assert_eq!(err(m.read(0x1000, 4)), "no RAM or device at guest address 0x1000");
        let e = m.write(u64::MAX, RSlice::from_slice(&[1, 2])).unwrap_err();
        assert!(e.message().contains("wraps past the top"), "{e}");
        let big = vec![0u8; 4097];
        let e = m.write(0x1000, RSlice::from_slice(&big)).unwrap_err();
        assert!(e.message().contains("at most 4096 bytes at a time"), "{e}");
    }
}
