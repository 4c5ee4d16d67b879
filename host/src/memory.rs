//! Guest RAM (one anonymous mapping) and the [`MemoryManager`] plugins use to reach any guest
//! physical address: RAM directly, everything else through the device bus.

use crate::bus::Bus;
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

/// The bus, bound once the machine is assembled (devices get their memory manager before that).
pub type BusSlot = Arc<OnceLock<Arc<Bus>>>;

/// Routes plugin memory accesses to RAM or to the bus.
pub struct HostMemory {
    /// Keeps the mapping alive for as long as any plugin holds this object.
    ram: Arc<GuestMemory>,
    bus: BusSlot,
}

impl HostMemory {
    /// A memory manager over `ram` and the bus in `bus`.
    pub fn new(ram: Arc<GuestMemory>, bus: BusSlot) -> Self {
        HostMemory { ram, bus }
    }

    fn bus(&self) -> Result<&Bus, VmError> {
        self.bus.get().map(|b| &**b).ok_or_else(|| VmError::memory("the device bus is not assembled yet"))
    }

    fn bus_read(&self, addr: u64, len: u64) -> Result<Vec<u8>, VmError> {
        // Outside RAM a byte range is read from the devices one byte at a time; callers that want
        // a whole register read it with `read_atomic`.
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            out.push(self.bus()?.read(addr + i, 1).map_err(|e| e.into_vm_error())? as u8);
        }
        Ok(out)
    }
}

impl MemoryManager for HostMemory {
    fn read(&self, addr: u64, len: u64) -> VmResult<RVec<u8>> {
        let ram = self.ram.view();
        let mut buf = vec![0u8; len as usize];
        if ram.read_bytes(addr, &mut buf).is_some() {
            return VmResult::ROk(buf.into());
        }
        self.bus_read(addr, len).map(RVec::from).into()
    }
    fn write(&self, addr: u64, data: RSlice<'_, u8>) -> VmResult<()> {
        if self.ram.view().write_bytes(addr, data.as_slice()).is_some() {
            return VmResult::ROk(());
        }
        let r = self.bus().and_then(|bus| {
            data.iter().enumerate().try_for_each(|(i, b)| {
                bus.write(addr + i as u64, 1, *b as u64).map_err(|e| e.into_vm_error())
            })
        });
        r.into()
    }
    fn read_atomic(&self, addr: u64, size: u8, order: MemoryOrder) -> VmResult<u64> {
        match self.ram.view().load_atomic(addr, size, order) {
            Some(v) => VmResult::ROk(v),
            None => self.bus().and_then(|b| b.read(addr, size).map_err(|e| e.into_vm_error())).into(),
        }
    }
    fn write_atomic(&self, addr: u64, size: u8, value: u64, order: MemoryOrder) -> VmResult<()> {
        match self.ram.view().store_atomic(addr, size, value, order) {
            Some(()) => VmResult::ROk(()),
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
        self.ram
            .view()
            .compare_exchange(addr, size, expected, new, order)
            .ok_or_else(|| {
                VmError::memory(format!("compare-exchange at {addr:#x}: not naturally aligned RAM"))
            })
            .into()
    }
    fn read_async(&self, addr: u64, len: u64) -> FfiFuture<VmResult<RVec<u8>>> {
        let me = HostMemory { ram: Arc::clone(&self.ram), bus: Arc::clone(&self.bus) };
        async move { tokio::task::spawn_blocking(move || me.read(addr, len)).await.unwrap_or_else(join_error) }
            .into_ffi()
    }
    fn write_async(&self, addr: u64, data: RVec<u8>) -> FfiFuture<VmResult<()>> {
        let me = HostMemory { ram: Arc::clone(&self.ram), bus: Arc::clone(&self.bus) };
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
}
