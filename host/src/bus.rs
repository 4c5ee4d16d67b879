//! The device bus: guest physical address ranges mapped to the devices that own them.
//!
//! Devices own their registers; the bus only finds the device for an address and hands it the
//! offset from the device's base. Each device declares the accesses its register windows take
//! (like QEMU's `MemoryRegionOps.valid`); the bus faults the rest without calling the device.
//! Mappings never overlap; the bus is built before the guest runs.

use std::fmt;
use std::sync::{Arc, Mutex};
use vm_plugin_api::VmError;

/// The accesses a register window takes: `min..=max` bytes, misaligned ones only if `unaligned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Smallest access size in bytes.
    pub min: u8,
    /// Largest access size in bytes.
    pub max: u8,
    /// Whether an access need not be aligned to its size.
    pub unaligned: bool,
}

impl Access {
    /// Any size, any alignment (what device plugins get; they check accesses themselves).
    pub const ANY: Access = Access { min: 1, max: 8, unaligned: true };

    /// Naturally aligned accesses of `min..=max` bytes.
    pub const fn aligned(min: u8, max: u8) -> Access {
        Access { min, max, unaligned: false }
    }

    /// Whether a `size`-byte access at `addr` is allowed.
    pub fn allows(self, addr: u64, size: u8) -> bool {
        size != 0
            && (self.min..=self.max).contains(&size)
            && (self.unaligned || addr & (size as u64 - 1) == 0)
    }
}

/// A run of a device's registers that answers, and the accesses it takes. Offsets are from the
/// device's base; `last` is inclusive, so a window can reach the top of the address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First offset.
    pub first: u64,
    /// Last offset, inclusive.
    pub last: u64,
    /// What the window accepts.
    pub access: Access,
}

impl Window {
    /// Everything, any access: the default for a device.
    pub const ALL: Window = Window { first: 0, last: u64::MAX, access: Access::ANY };
}

/// A device as the bus sees it: reads and writes at offsets from its base.
pub trait MmioDevice: Send {
    /// A read of `size` bytes at `offset`.
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError>;
    /// A write of `size` bytes at `offset`.
    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError>;
    /// The register windows and their access rules, asked once when the device is mapped. An
    /// access outside every window, refused by its window's rule, or running past the window's
    /// end is an access fault in the guest and never reaches `read`/`write`.
    fn windows(&self) -> Vec<Window> {
        vec![Window::ALL]
    }
}

/// A shared device handle on the bus.
pub type SharedDevice = Arc<Mutex<dyn MmioDevice>>;

/// One mapped range.
struct Mapping {
    start: u64,
    /// Inclusive, so a range can end at the top of the address space.
    last: u64,
    device_base: u64,
    /// The device's windows clipped to the range, as absolute (first, last, rule), sorted.
    windows: Vec<(u64, u64, Access)>,
    name: String,
    device: SharedDevice,
}

/// Why a bus access failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// No device takes the access (the guest gets an access fault). Carries the faulting address:
    /// the access's own, or for one that runs past the end of a window, the first byte past it.
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

/// Why a range cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// It conflicts with the device already there, at `range` (start, inclusive last).
    Overlap { existing: String, range: (u64, u64) },
    /// It runs past the top of the address space.
    Wraps { start: u64, size: u64 },
    /// It has no bytes.
    Empty,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Printed with an exclusive end, which may be 2^64.
            MapError::Overlap { existing, range: (first, last) } => {
                write!(f, "overlaps '{existing}' at {first:#x}..{:#x}", *last as u128 + 1)
            }
            MapError::Wraps { start, size } => {
                write!(f, "at {start:#x} with size {size:#x} runs past the top of the address space")
            }
            MapError::Empty => write!(f, "maps an empty range"),
        }
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
    ) -> Result<(), MapError> {
        if size == 0 {
            return Err(MapError::Empty);
        }
        let last = start.checked_add(size - 1).ok_or(MapError::Wraps { start, size })?;
        if let Some(m) = self.maps.iter().find(|m| start <= m.last && m.start <= last) {
            return Err(MapError::Overlap { existing: m.name.clone(), range: (m.start, m.last) });
        }
        let declared = device.lock().unwrap_or_else(|p| p.into_inner()).windows();
        let mut windows: Vec<_> = declared
            .iter()
            .filter_map(|w| {
                // Window offsets past the end of the address space are clipped to it.
                let first = device_base.checked_add(w.first)?.max(start);
                let w_last = device_base.saturating_add(w.last).min(last);
                (first <= w_last && w.first <= w.last).then_some((first, w_last, w.access))
            })
            .collect();
        windows.sort_by_key(|w| w.0);
        let at = self.maps.partition_point(|m| m.start < start);
        let m = Mapping { start, last, device_base, windows, name: name.to_string(), device };
        self.maps.insert(at, m);
        Ok(())
    }

    /// Removes the mapping that starts at `start`; returns whether there was one.
    pub fn unmap(&mut self, start: u64) -> bool {
        let before = self.maps.len();
        self.maps.retain(|m| m.start != start);
        self.maps.len() != before
    }

    /// The device name and offset from its base for `addr`, if a device answers there.
    pub fn translate_address(&self, addr: u64) -> Option<(&str, u64)> {
        self.route(addr, 1).ok().map(|m| (m.name.as_str(), addr - m.device_base))
    }

    /// Every mapping as (start, inclusive last address, name).
    pub fn mappings(&self) -> impl Iterator<Item = (u64, u64, &str)> {
        self.maps.iter().map(|m| (m.start, m.last, m.name.as_str()))
    }

    /// The mapping that takes a `size`-byte access at `addr`, or the address to fault at.
    fn route(&self, addr: u64, size: u8) -> Result<&Mapping, BusError> {
        let unmapped = Err(BusError::Unmapped(addr));
        let Some(i) = self.maps.partition_point(|m| m.start <= addr).checked_sub(1) else {
            return unmapped;
        };
        let m = &self.maps[i];
        let Some(&(_, last, access)) = m.windows.iter().find(|w| w.0 <= addr && addr <= w.1) else {
            return unmapped;
        };
        // An access that runs past the window faults at the first byte past it, as on QEMU
        // (the part of the access that found nothing).
        if size > 1 && addr.checked_add(size as u64 - 1).is_none_or(|end| end > last) {
            return Err(BusError::Unmapped(last.checked_add(1).unwrap_or(addr)));
        }
        if !access.allows(addr, size) {
            return unmapped;
        }
        Ok(m)
    }

    /// Reads `size` bytes at `addr`.
    pub fn read(&self, addr: u64, size: u8) -> Result<u64, BusError> {
        let m = self.route(addr, size)?;
        let mut d = m.device.lock().unwrap_or_else(|p| p.into_inner());
        d.read(addr - m.device_base, size).map_err(|e| device_error(m, addr, e))
    }

    /// Writes `size` bytes at `addr`.
    pub fn write(&self, addr: u64, size: u8, value: u64) -> Result<(), BusError> {
        let m = self.route(addr, size)?;
        let mut d = m.device.lock().unwrap_or_else(|p| p.into_inner());
        d.write(addr - m.device_base, value, size).map_err(|e| device_error(m, addr, e))
    }
}

/// A device's refusal of an access is a fault for the guest; any other error stops the VM.
fn device_error(m: &Mapping, addr: u64, e: VmError) -> BusError {
    if e.kind == vm_plugin_api::ErrorKind::BusFault {
        tracing::debug!("device '{}' refused the access at {addr:#x}: {}", m.name, e.message);
        BusError::Unmapped(addr)
    } else {
        BusError::Device(m.name.clone(), addr, e)
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

    /// Counts the accesses that reach it; 4-byte registers at 0x0..0xfff, 8-byte ones at
    /// 0x1000..0x1fff, nothing at 0x2000.. (a hole).
    struct Strict(Arc<Mutex<u32>>);
    impl MmioDevice for Strict {
        fn read(&mut self, _offset: u64, _size: u8) -> Result<u64, VmError> {
            *self.0.lock().unwrap() += 1;
            Ok(0)
        }
        fn write(&mut self, _offset: u64, _value: u64, _size: u8) -> Result<(), VmError> {
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
        fn windows(&self) -> Vec<Window> {
            vec![
                Window { first: 0x1000, last: 0x1fff, access: Access::aligned(8, 8) },
                Window { first: 0, last: 0xfff, access: Access::aligned(4, 4) },
            ]
        }
    }

    fn strict_bus() -> (Bus, Arc<Mutex<u32>>) {
        let calls = Arc::new(Mutex::new(0));
        let mut bus = Bus::new();
        bus.map(0x10_0000, 0x4000, 0x10_0000, "strict", Arc::new(Mutex::new(Strict(calls.clone())))).unwrap();
        (bus, calls)
    }

    #[test]
    fn routes_by_address_and_refuses_overlaps() {
        let mut bus = Bus::new();
        bus.map(0x1000, 0x100, 0x1000, "a", dev(100)).unwrap();
        bus.map(0x2000, 0x100, 0x1f00, "b", dev(200)).unwrap();
        assert_eq!(bus.read(0x1004, 4), Ok(104));
        assert_eq!(bus.read(0x2000, 1), Ok(200 + 0x100));
        assert_eq!(bus.translate_address(0x2010), Some(("b", 0x110)));
        assert_eq!(bus.read(0x10ff, 2), Err(BusError::Unmapped(0x1100)), "straddles the end");
        assert_eq!(bus.read(0x1100, 1), Err(BusError::Unmapped(0x1100)));
        let e = bus.map(0x10f0, 0x20, 0x10f0, "c", dev(0)).unwrap_err();
        assert_eq!(e.to_string(), "overlaps 'a' at 0x1000..0x1100");
        assert!(bus.unmap(0x1000));
        bus.map(0x10f0, 0x20, 0x10f0, "c", dev(0)).unwrap();
        bus.write(0x10f0, 8, 7).unwrap();
        assert_eq!(bus.read(0x10f0, 8), Ok(7));
        assert_eq!(bus.read(0x10f1, 8), Ok(8), "a device without rules takes misaligned accesses");
    }

    #[test]
    fn a_device_at_the_top_of_the_address_space_keeps_its_last_bytes() {
        let mut bus = Bus::new();
        let base = 0xffff_ffff_ffff_f000;
        bus.map(base, 0x1000, base, "top", dev(0)).unwrap();
        assert_eq!(bus.read(base + 0xff, 1), Ok(0xff));
        assert_eq!(bus.read(base + 0xfff, 1), Ok(0xfff));
        assert_eq!(bus.read(base + 0xff8, 8), Ok(0xff8));
        assert_eq!(bus.translate_address(u64::MAX), Some(("top", 0xfff)));
        assert_eq!(bus.mappings().collect::<Vec<_>>(), [(base, u64::MAX, "top")]);
        // Past the top: the access wraps, so it faults where it starts.
        assert_eq!(bus.read(u64::MAX, 2), Err(BusError::Unmapped(u64::MAX)));
        assert_eq!(bus.read(u64::MAX - 3, 8), Err(BusError::Unmapped(u64::MAX - 3)));
        let e = bus.map(base + 0x800, 0x800, base, "again", dev(0)).unwrap_err();
        assert_eq!(e.to_string(), "overlaps 'top' at 0xfffffffffffff000..0x10000000000000000");
    }

    #[test]
    fn a_region_that_wraps_or_is_empty_is_refused() {
        let mut bus = Bus::new();
        let e = bus.map(0xffff_ffff_ffff_f000, 0x2000, 0, "wraps", dev(0)).unwrap_err();
        assert_eq!(e, MapError::Wraps { start: 0xffff_ffff_ffff_f000, size: 0x2000 });
        assert_eq!(
            e.to_string(),
            "at 0xfffffffffffff000 with size 0x2000 runs past the top of the address space"
        );
        assert_eq!(
            bus.map(u64::MAX, 2, 0, "wraps", dev(0)),
            Err(MapError::Wraps { start: u64::MAX, size: 2 })
        );
        assert_eq!(bus.map(0x1000, 0, 0x1000, "empty", dev(0)), Err(MapError::Empty));
        assert_eq!(bus.mappings().count(), 0, "nothing was mapped");
        bus.map(u64::MAX, 1, u64::MAX, "last byte", dev(0)).unwrap();
        assert_eq!(bus.read(u64::MAX, 1), Ok(0));
    }

    #[test]
    fn accesses_a_window_refuses_fault_without_reaching_the_device() {
        let (bus, calls) = strict_bus();
        let refused: [(u64, u8); 12] = [
            (0x10_0000, 1), // too small
            (0x10_0000, 2), // too small
            (0x10_0000, 8), // too large
            (0x10_0002, 4), // misaligned
            (0x10_0001, 4), // misaligned
            (0x10_1000, 4), // too small for the 8-byte window
            (0x10_1004, 8), // misaligned
            (0x10_1001, 8), // misaligned
            (0x10_2000, 4), // in the hole
            (0x10_3ffc, 4), // in the hole, at the end
            (0x10_0000, 0), // no size
            (0x10_0000, 3), // odd size
        ];
        for (addr, size) in refused {
            assert_eq!(bus.read(addr, size), Err(BusError::Unmapped(addr)), "read {size} at {addr:#x}");
            assert_eq!(bus.write(addr, size, 0), Err(BusError::Unmapped(addr)), "write {size} at {addr:#x}");
        }
        assert_eq!(*calls.lock().unwrap(), 0, "no refused access reached the device");
        assert_eq!(bus.translate_address(0x10_2000), None, "nothing answers in the hole");
        for (addr, size) in [(0x10_0000, 4), (0x10_0ffc, 4), (0x10_1000, 8), (0x10_1ff8, 8)] {
            assert_eq!(bus.read(addr, size), Ok(0));
            bus.write(addr, size, 0).unwrap();
        }
        assert_eq!(*calls.lock().unwrap(), 8);
    }

    #[test]
    fn an_access_running_past_a_window_faults_at_the_first_byte_past_it() {
        let (bus, calls) = strict_bus();
        // Into the next window, into the hole, past the mapping's end, and the same for a
        // device without rules.
        assert_eq!(bus.read(0x10_0ffe, 4), Err(BusError::Unmapped(0x10_1000)));
        assert_eq!(bus.read(0x10_1ffc, 8), Err(BusError::Unmapped(0x10_2000)));
        assert_eq!(bus.write(0x10_1ff9, 8, 0), Err(BusError::Unmapped(0x10_2000)));
        assert_eq!(*calls.lock().unwrap(), 0);
        let mut bus = Bus::new();
        bus.map(0x1000, 0x1000, 0x1000, "any", dev(0)).unwrap();
        assert_eq!(bus.read(0x1ffd, 4), Err(BusError::Unmapped(0x2000)));
        assert_eq!(bus.write(0x1fff, 2, 0), Err(BusError::Unmapped(0x2000)));
    }
}
