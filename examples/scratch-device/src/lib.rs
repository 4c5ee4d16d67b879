//! A complete third-party vmhost device plugin: an ID register and four scratch registers.
//!
//! The registers are 32 bits wide and take aligned 32-bit accesses only (the host faults any
//! other); the rest of the window holds no register and answers with a bus fault.
//!
//! Build with `cargo build --release`, then name `target/release/libvmhost_scratch.so` (or just
//! `scratch`, with its directory on the plugin search path) in a `[[device]]` entry of vm.toml.

use vm_plugin_api::{
    Component, Device, DeviceContext, DevicePlugin, DeviceType, Events, FdtNode, IoRegion, PluginDescription,
    VmError,
};

/// What the ID register reads: "SCRA" in little-endian ASCII.
pub const ID: u64 = 0x4152_4353;

/// The device's state: four 32-bit scratch registers after the ID register.
pub struct Scratch {
    regs: [u32; 4],
}

impl PluginDescription for Scratch {
    const NAME: &'static str = "scratch";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "an ID register and four scratch registers";
}

impl DevicePlugin for Scratch {
    fn create(ctx: DeviceContext, _events: Events) -> Result<Self, VmError> {
        vm_plugin_api::config::expect_no_keys(&ctx.config)?;
        Ok(Scratch { regs: [0; 4] })
    }
}

impl Component for Scratch {}

impl Device for Scratch {
    fn device_type(&self) -> DeviceType {
        DeviceType::Custom(0x5c)
    }
    fn io_regions(&self) -> Vec<IoRegion> {
        vec![IoRegion::mmio(0, 0x20).accesses(4, 4)]
    }
    fn fdt_node(&self) -> FdtNode {
        FdtNode::new("scratch", &["example,scratch"])
    }
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, VmError> {
        match offset {
            0 => Ok(ID),
            4..=0x13 => Ok(self.regs[(offset as usize - 4) / 4] as u64),
            _ => Err(no_register(offset)),
        }
    }
    fn write(&mut self, offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
        match offset {
            // The ID register is read-only: a write is ignored, as on most hardware.
            0 => Ok(()),
            4..=0x13 => {
                self.regs[(offset as usize - 4) / 4] = value as u32;
                Ok(())
            }
            _ => Err(no_register(offset)),
        }
    }
    fn reset(&mut self) -> Result<(), VmError> {
        self.regs = [0; 4];
        Ok(())
    }
}

/// The guest gets an access fault; the VM goes on.
fn no_register(offset: u64) -> VmError {
    VmError::bus_fault(format!("scratch: no register at offset {offset:#x}"))
}

vm_plugin_api::export_plugin!(vm_plugin_api::device_module::<Scratch>());
