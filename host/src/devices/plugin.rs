//! Puts a device plugin on the bus: forwards guest accesses to its `handle_read`/`handle_write`,
//! with the access rules its regions declare.

use crate::bus::{Access, MmioDevice, Window};
use vm_plugin_api::{DeviceBox, IoRegion, VmError};

/// A plugin device as a bus device, and the windows its regions declare.
pub struct PluginDevice(pub DeviceBox, pub Vec<Window>);

/// The bus window of a region, or why the region's access rule is malformed.
pub fn window(r: &IoRegion) -> Result<Window, String> {
    let size_ok = |s: u8| matches!(s, 1 | 2 | 4 | 8);
    if !size_ok(r.min_access) || !size_ok(r.max_access) || r.min_access > r.max_access {
        return Err(format!(
            "declares the region at offset {:#x} with access sizes {}..={} (each must be 1, 2, 4 or 8, \
             smallest first)",
            r.offset, r.min_access, r.max_access
        ));
    }
    let last =
        r.offset.checked_add(r.size - 1).ok_or_else(|| format!("region at offset {:#x} wraps", r.offset))?;
    Ok(Window {
        first: r.offset,
        last,
        access: Access { min: r.min_access, max: r.max_access, unaligned: r.unaligned },
    })
}

impl MmioDevice for PluginDevice {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        self.0.handle_read(offset, size).into_result()
    }
    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        self.0.handle_write(offset, value, size).into_result()
    }
    fn windows(&self) -> Vec<Window> {
        self.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_becomes_a_window_with_its_access_rule_and_bad_rules_are_refused() {
        let w = window(&IoRegion::mmio(0x10, 0x20).accesses(4, 4)).unwrap();
        assert_eq!((w.first, w.last), (0x10, 0x2f));
        assert!(w.access.allows(0x14, 4) && !w.access.allows(0x14, 2) && !w.access.allows(0x12, 4));
        assert!(window(&IoRegion::mmio(0, 8).allow_unaligned()).unwrap().access.allows(3, 4));
        for (min, max) in [(0, 8), (3, 4), (8, 4), (1, 16)] {
            let e = window(&IoRegion::mmio(0x40, 8).accesses(min, max)).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "declares the region at offset 0x40 with access sizes {min}..={max} (each must be 1, 2, 4 or 8, smallest first)"
                )
            );
        }
        assert!(window(&IoRegion::mmio(u64::MAX, 2)).is_err(), "wraps");
    }
}
