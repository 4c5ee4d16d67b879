//! The device bus: guest physical address ranges mapped to the devices that own them.
//!
//! Devices own their registers; the bus only finds the device for an address and hands it the
//! offset from the device's base. Mappings never overlap; the bus is built before the guest runs.

use std::fmt;
use std::sync::{Arc, Mutex};
use vm_plugin_api::VmError;

/// A device as the bus sees it: reads and writes at offsets from its base.
pub trait MmioDevice: Send {
    /// A read of `size` bytes at `offset`.
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError>;
    /// A write of `size` bytes at `offset`.
    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError>;
}

/// A shared device handle on the bus.
pub type SharedDevice = Arc<Mutex<dyn MmioDevice>>;

/// One mapped range.
struct Mapping {
    start: u64,
    /// Exclusive.
    end: u64,
    device_base: u64,
    name: String,
    device: SharedDevice,
}

/// Why a bus access failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// No device answers at the address (the guest gets an access fault).
    Unmapped(u64),
    /// The device failed; the VM stops with this error. Carries the device name and address.
    Device(String, u64, VmError),
}

impl BusError {
    /// As a [`VmError`].
    pub fn into_vm_error(self) -> VmError {
        match self {
            BusError::Unmapped(a) => VmError::memory(format!("no RAM or device at guest address {a:#x}")),
            BusError::Device(name, addr, e) => {
                VmError::new(e.kind, format!("guest access to device '{name}' at {addr:#x}: {}", e.message))
            }
        }
    }
}

/// A mapping request that conflicts with an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The device already there.
    pub existing: String,
    /// Its range, exclusive end.
    pub range: (u64, u64),
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "overlaps '{}' at {:#x}..{:#x}", self.existing, self.range.0, self.range.1)
    }
}

/// Address ranges → devices.
#[derive(Default)]
pub struct Bus {
    /// Sorted by start.
    maps: Vec<Mapping>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Maps `size` bytes at `start` to `device`, whose base is `device_base`.
    pub fn map(
        &mut self,
        start: u64,
        size: u64,
        device_base: u64,
        name: &str,
        device: SharedDevice,
    ) -> Result<(), Overlap> {
        let end = start.saturating_add(size);
        if let Some(m) = self.maps.iter().find(|m| start < m.end && m.start < end) {
            return Err(Overlap { existing: m.name.clone(), range: (m.start, m.end) });
        }
        let at = self.maps.partition_point(|m| m.start < start);
        self.maps.insert(at, Mapping { start, end, device_base, name: name.to_string(), device });
        Ok(())
    }

    /// Removes the mapping that starts at `start`; returns whether there was one.
    pub fn unmap(&mut self, start: u64) -> bool {
        let before = self.maps.len();
        self.maps.retain(|m| m.start != start);
        self.maps.len() != before
    }

    /// The device name and offset from its base for `addr`, if mapped.
    pub fn translate_address(&self, addr: u64) -> Option<(&str, u64)> {
        self.find(addr, 1).map(|m| (m.name.as_str(), addr - m.device_base))
    }

    /// Every mapping as (start, exclusive end, name).
    pub fn mappings(&self) -> impl Iterator<Item = (u64, u64, &str)> {
        self.maps.iter().map(|m| (m.start, m.end, m.name.as_str()))
    }

    fn find(&self, addr: u64, size: u8) -> Option<&Mapping> {
        let i = self.maps.partition_point(|m| m.start <= addr).checked_sub(1)?;
        let m = &self.maps[i];
        (addr.checked_add(size as u64)? <= m.end).then_some(m)
    }

    /// Reads `size` bytes at `addr`.
    pub fn read(&self, addr: u64, size: u8) -> Result<u64, BusError> {
        let m = self.find(addr, size).ok_or(BusError::Unmapped(addr))?;
        let mut d = m.device.lock().unwrap_or_else(|p| p.into_inner());
        d.read(addr - m.device_base, size).map_err(|e| BusError::Device(m.name.clone(), addr, e))
    }

    /// Writes `size` bytes at `addr`.
    pub fn write(&self, addr: u64, size: u8, value: u64) -> Result<(), BusError> {
        let m = self.find(addr, size).ok_or(BusError::Unmapped(addr))?;
        let mut d = m.device.lock().unwrap_or_else(|p| p.into_inner());
        d.write(addr - m.device_base, value, size).map_err(|e| BusError::Device(m.name.clone(), addr, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reg(u64);
    impl MmioDevice for Reg {
        fn read(&mut self, offset: u64, _size: u8) -> Result<u64, VmError> {
            Ok(self.0 + offset)
        }
        fn write(&mut self, _offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
            self.0 = value;
            Ok(())
        }
    }

    fn dev(v: u64) -> SharedDevice {
        Arc::new(Mutex::new(Reg(v)))
    }

    #[test]
    fn routes_by_address_and_refuses_overlaps() {
        let mut bus = Bus::new();
        bus.map(0x1000, 0x100, 0x1000, "a", dev(100)).unwrap();
        bus.map(0x2000, 0x100, 0x1f00, "b", dev(200)).unwrap();
        assert_eq!(bus.read(0x1004, 4), Ok(104));
        assert_eq!(bus.read(0x2000, 1), Ok(200 + 0x100));
        assert_eq!(bus.translate_address(0x2010), Some(("b", 0x110)));
        assert_eq!(bus.read(0x10ff, 2), Err(BusError::Unmapped(0x10ff)), "straddles the end");
        assert_eq!(bus.read(0x1100, 1), Err(BusError::Unmapped(0x1100)));
        let e = bus.map(0x10f0, 0x20, 0x10f0, "c", dev(0)).unwrap_err();
        assert_eq!(e.to_string(), "overlaps 'a' at 0x1000..0x1100");
        assert!(bus.unmap(0x1000));
        bus.map(0x10f0, 0x20, 0x10f0, "c", dev(0)).unwrap();
        bus.write(0x10f0, 8, 7).unwrap();
        assert_eq!(bus.read(0x10f0, 8), Ok(7));
    }
}
