//! The `virtio-blk` device plugin: a disk on virtio-mmio (version 2), for the `virt` machine's
//! virtio slots (0x1000_1000 + n·0x1000, interrupt 1 + n), that unmodified Linux and U-Boot
//! drivers use.
//!
//! A raw image file is the disk, opened and locked when the VM is built. Requests are served on
//! the device's own I/O thread, straight between the file and guest memory; the vCPU's
//! QueueNotify write only wakes it. A guest FLUSH is an `fdatasync` before the status byte.
//!
//! Configuration (the device's table in `vm.toml`):
//!
//! ```toml
//! path = "disk.img"          # required; relative to the vm.toml's directory
//! read_only = false          # default
//! cache = "writeback"        # default; or "none"
//! serial = ""                # GET_ID's answer, at most 20 bytes
//! ```
//!
//! See [`BlkConfig`]. The modules: `config` (the table), `image` (open, lock, size), `request`
//! (parse and validate a request), `io` (the worker), `device` (features, config space).

mod config;
mod device;
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod io;
pub mod request;

pub use config::{BlkConfig, CacheMode};
pub use device::{BlkDevice, DEVICE_ID, QUEUE_SIZE, SIZE_MAX, VENDOR_ID};
pub use image::{DiskImage, SECTOR_SIZE};
pub use request::{DiskInfo, Operation, Request, RequestError, parse_request};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vm_plugin_api::{
    Component, Device, DeviceContext, DevicePlugin, DeviceType, ErrorKind, Events, FdtNode, IoRegion,
    PluginDescription, PluginModRef, VmError,
};
use vm_virtio_common::{Interrupt, MmioTransport, guest_memory};

/// The register window: a `virt` virtio slot, which the device tree's `reg` gives (as QEMU's).
pub const REGION_SIZE: u64 = 0x1000;

/// The plugin's root module, for the host's built-ins and the `.so` shim.
pub fn module() -> PluginModRef {
    vm_plugin_api::device_module::<VirtioBlk>()
}

/// A virtio-blk device on virtio-mmio.
pub struct VirtioBlk {
    config: BlkConfig,
    transport: MmioTransport<BlkDevice>,
}

impl PluginDescription for VirtioBlk {
    const NAME: &'static str = "virtio-blk";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "virtio-blk disk on virtio-mmio (version 2), backed by a raw image file";
}

impl DevicePlugin for VirtioBlk {
    fn create(ctx: DeviceContext, _events: Events) -> Result<Self, VmError> {
        let config = BlkConfig::from_toml(&ctx.config)?;
        let name = format!("virtio-blk device '{}'", ctx.id);
        let path = resolve(Path::new(ctx.config_dir.as_str()), &config.path);
        let disk = DiskImage::open(&path, config.read_only, config.cache).map_err(|e| match e.kind {
            // A missing or forbidden file: the host points at the `path` key in vm.toml.
            ErrorKind::Config => VmError::config(format!("key `path`: {}", e.message())),
            _ => e,
        })?;
        let mem = Arc::new(guest_memory(ctx.memory)?);
        let interrupt = Interrupt::new(ctx.irq.into_option());
        let device = BlkDevice::new(name.clone(), disk, &config.serial);
        let transport = MmioTransport::new(name, device, mem, interrupt)?;
        Ok(VirtioBlk { config, transport })
    }
}

/// `path` as given if absolute, else under the vm.toml's directory.
fn resolve(config_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { config_dir.join(path) }
}

impl VirtioBlk {
    /// The transport, for tests and tools.
    pub fn transport(&mut self) -> &mut MmioTransport<BlkDevice> {
        &mut self.transport
    }
}

impl Device for VirtioBlk {
    fn device_type(&self) -> DeviceType {
        DeviceType::Block
    }

    /// The node QEMU's virt machine gives a virtio-mmio slot; the host adds `reg` (the slot) and
    /// `interrupts`.
    fn fdt_node(&self) -> FdtNode {
        FdtNode::new("virtio_mmio", &["virtio,mmio"])
    }

    /// The whole slot takes aligned accesses of 1 to 4 bytes: the configuration space needs the
    /// narrow ones; the transport faults anything but 32 bits on a register. (One region, since
    /// the device tree's `reg` lists every region and drivers map only the first.)
    fn io_regions(&self) -> Vec<IoRegion> {
        vec![IoRegion::mmio(0, REGION_SIZE).accesses(1, 4)]
    }

    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        self.transport.read(offset, size)
    }

    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        self.transport.write(offset, value, size)
    }

    fn reset(&mut self) -> Result<(), VmError> {
        self.transport.reset();
        Ok(())
    }
}

impl Component for VirtioBlk {
    fn start(&mut self) -> Result<(), VmError> {
        self.transport.device_mut().resume().map_err(VmError::device)
    }

    fn stop(&mut self) -> Result<(), VmError> {
        self.transport.device_mut().pause();
        Ok(())
    }

    /// The image stays open and locked while the VM exists: only the same configuration is taken.
    fn update_config(&mut self, toml: &str) -> Result<(), VmError> {
        let config = BlkConfig::from_toml(toml)?;
        if config != self.config {
            return Err(VmError::config(
                "a virtio-blk device's configuration cannot change while the VM exists",
            ));
        }
        Ok(())
    }

    fn get_config(&self) -> String {
        self.config.to_toml()
    }

    fn validate_config(&self, toml: &str) -> Result<(), VmError> {
        BlkConfig::from_toml(toml).map(drop)
    }
}

#[cfg(test)]
mod tests;
