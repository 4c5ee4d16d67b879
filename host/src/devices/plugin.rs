//! Puts a device plugin on the bus: forwards guest accesses to its `handle_read`/`handle_write`.

use crate::bus::MmioDevice;
use vm_plugin_api::{DeviceBox, VmError};

/// A plugin device as a bus device.
pub struct PluginDevice(pub DeviceBox);

impl MmioDevice for PluginDevice {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        self.0.handle_read(offset, size).into_result()
    }
    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        self.0.handle_write(offset, value, size).into_result()
    }
}
