//! The virtio-mmio register file, version 2 (the modern interface; virtio 1.2 §4.2.2), generic
//! over the device behind it.
//!
//! Registers are 32-bit and take only aligned 32-bit accesses; the device's configuration space
//! from offset 0x100 takes 1-, 2- and 4-byte accesses (§4.2.2.2). The status register takes the
//! bits the driver writes, as QEMU does, with two checks (§3.1.1): FEATURES_OK is refused if
//! the driver took features the device did not offer, or not VERSION_1 (the driver reads it
//! back), and DRIVER_OK, which hands the queues to the device, needs FEATURES_OK. The order of
//! ACKNOWLEDGE and DRIVER is not enforced: U-Boot 2023.01 resets the device after setting
//! ACKNOWLEDGE and then sets DRIVER alone. A bit once set goes only with a reset (writing 0).
//! Queue set-up registers are ignored once the queue is ready or the device running, and
//! feature words once FEATURES_OK is set. Reads of write-only or absent registers give 0 and
//! writes to read-only ones are ignored, as in QEMU.

use crate::interrupt::Interrupt;
use crate::memory::GuestMem;
use std::sync::Arc;
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vm_plugin_api::VmError;

/// "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// The modern virtio-mmio interface.
pub const VERSION: u32 = 2;
/// Where the device's configuration space starts.
pub const CONFIG_OFFSET: u64 = 0x100;

/// Register offsets (virtio 1.2 §4.2.2, table "MMIO Device Register Layout").
pub mod reg {
    #![allow(missing_docs)]
    pub const MAGIC_VALUE: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

const DRIVER_OK: u32 = VIRTIO_CONFIG_S_DRIVER_OK;
const FEATURES_OK: u32 = VIRTIO_CONFIG_S_FEATURES_OK;
const NEEDS_RESET: u32 = VIRTIO_CONFIG_S_NEEDS_RESET;

/// What the transport hands a device when the driver sets DRIVER_OK.
pub struct Activation {
    /// Guest memory, for the queues and the buffers they point to.
    pub mem: Arc<GuestMem>,
    /// The queues as the driver set them up (event-index mode already set); a queue the driver
    /// did not make ready is there with `ready() == false`.
    pub queues: Vec<Queue>,
    /// The features the driver accepted.
    pub features: u64,
    /// The interrupt status to report to.
    pub interrupt: Arc<Interrupt>,
}

/// A virtio device behind the transport.
pub trait VirtioDevice: Send {
    /// The virtio device id (2 for a block device).
    fn device_id(&self) -> u32;
    /// The vendor id the driver reads.
    fn vendor_id(&self) -> u32;
    /// The feature bits offered (VERSION_1 among them).
    fn features(&self) -> u64;
    /// The maximum size of each queue (powers of two); their number is the number of queues.
    fn queue_max_sizes(&self) -> Vec<u16>;
    /// The configuration space, little-endian as the driver reads it.
    fn config(&self) -> Vec<u8>;
    /// A driver write into the configuration space (the default ignores it).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// The driver set DRIVER_OK: start serving. An error sets DEVICE_NEEDS_RESET.
    fn activate(&mut self, activation: Activation) -> Result<(), String>;
    /// The driver wrote `queue` to QueueNotify (on the vCPU thread: only wake a worker here).
    fn queue_notify(&mut self, queue: u32);
    /// Device reset: stop serving and drop the queues.
    fn reset(&mut self);
}

/// The virtio-mmio register file of one device.
pub struct MmioTransport<D: VirtioDevice> {
    device: D,
    /// How the device is named in messages, e.g. `virtio-blk device 'disk0'`.
    name: String,
    mem: Arc<GuestMem>,
    interrupt: Arc<Interrupt>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    /// Between DRIVER_OK and the next reset.
    activated: bool,
    config_generation: u32,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// A transport in the reset state for `device`.
    pub fn new(
        name: String,
        device: D,
        mem: Arc<GuestMem>,
        interrupt: Arc<Interrupt>,
    ) -> Result<Self, VmError> {
        let queues = new_queues(&device).map_err(|e| VmError::device(format!("{name}: {e}")))?;
        Ok(MmioTransport {
            device,
            name,
            mem,
            interrupt,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            activated: false,
            config_generation: 0,
        })
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The status register as the driver reads it.
    pub fn status(&self) -> u32 {
        self.status | if self.interrupt.needs_reset() { NEEDS_RESET } else { 0 }
    }

    /// Whether the device is serving (DRIVER_OK set and accepted).
    pub fn activated(&self) -> bool {
        self.activated
    }

    /// The features the driver accepted.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Tells the driver the configuration space changed (bumps ConfigGeneration).
    pub fn config_changed(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        if self.status & DRIVER_OK != 0 {
            self.interrupt.signal_config();
        }
    }

    /// Back to the state after power-on: the device stopped, queues, features and interrupts
    /// cleared (a status write of 0, or a machine reset).
    pub fn reset(&mut self) {
        self.device.reset();
        for q in &mut self.queues {
            q.reset();
        }
        self.interrupt.reset();
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.activated = false;
    }

    /// A guest read of `size` bytes at `offset`.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError> {
        if offset >= CONFIG_OFFSET {
            return Ok(self.read_config(offset - CONFIG_OFFSET, size));
        }
        self.check_register(offset, size)?;
        let features = self.device.features();
        let v = match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_id(),
            reg::VENDOR_ID => self.device.vendor_id(),
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self.queue().map_or(0, |q| q.max_size() as u32),
            reg::QUEUE_READY => self.queue().is_some_and(|q| q.ready()) as u32,
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => self.status(),
            reg::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        };
        Ok(v as u64)
    }

    /// A guest write of `size` bytes at `offset`.
    pub fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError> {
        if offset >= CONFIG_OFFSET {
            let bytes = value.to_le_bytes();
            self.device.write_config(offset - CONFIG_OFFSET, &bytes[..size.min(8) as usize]);
            return Ok(());
        }
        self.check_register(offset, size)?;
        let v = value as u32;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => self.write_driver_features(v),
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM => self.with_setup_queue(|q| q.set_size(v.min(u16::MAX as u32) as u16)),
            reg::QUEUE_READY => {
                if !self.activated
                    && let Some(q) = self.queues.get_mut(self.queue_sel as usize)
                {
                    q.set_ready(v == 1);
                }
            }
            reg::QUEUE_DESC_LOW => self.with_setup_queue(|q| q.set_desc_table_address(Some(v), None)),
            reg::QUEUE_DESC_HIGH => self.with_setup_queue(|q| q.set_desc_table_address(None, Some(v))),
            reg::QUEUE_DRIVER_LOW => self.with_setup_queue(|q| q.set_avail_ring_address(Some(v), None)),
            reg::QUEUE_DRIVER_HIGH => self.with_setup_queue(|q| q.set_avail_ring_address(None, Some(v))),
            reg::QUEUE_DEVICE_LOW => self.with_setup_queue(|q| q.set_used_ring_address(Some(v), None)),
            reg::QUEUE_DEVICE_HIGH => self.with_setup_queue(|q| q.set_used_ring_address(None, Some(v))),
            reg::QUEUE_NOTIFY => {
                // The low 16 bits name the queue (the rest is notification data, not offered).
                let queue = v & 0xffff;
                if self.activated && (queue as usize) < self.queues.len() {
                    self.device.queue_notify(queue);
                }
            }
            reg::INTERRUPT_ACK => self.interrupt.ack(v),
            reg::STATUS => self.write_status(v),
            _ => {}
        }
        Ok(())
    }

    /// Registers take aligned 32-bit accesses only (the host checks alignment).
    fn check_register(&self, offset: u64, size: u8) -> Result<(), VmError> {
        if size == 4 {
            return Ok(());
        }
        Err(VmError::bus_fault(format!(
            "{}: {size}-byte access to register {offset:#x}: virtio-mmio registers take 32-bit accesses only",
            self.name
        )))
    }

    fn read_config(&self, offset: u64, size: u8) -> u64 {
        let config = self.device.config();
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate().take(size.min(8) as usize) {
            *b = usize::try_from(offset + i as u64).ok().and_then(|o| config.get(o)).copied().unwrap_or(0);
        }
        u64::from_le_bytes(bytes)
    }

    fn queue(&self) -> Option<&Queue> {
        self.queues.get(self.queue_sel as usize)
    }

    /// Runs `f` on the selected queue while it may still be set up.
    fn with_setup_queue(&mut self, f: impl FnOnce(&mut Queue)) {
        if self.activated {
            return;
        }
        if let Some(q) = self.queues.get_mut(self.queue_sel as usize)
            && !q.ready()
        {
            f(q);
        }
    }

    fn write_driver_features(&mut self, v: u32) {
        if self.status & FEATURES_OK != 0 {
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | v as u64,
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | ((v as u64) << 32),
            _ => {}
        }
    }

    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        // DEVICE_NEEDS_RESET is the device's to set; a bit once set goes only with a reset.
        let v = v & !NEEDS_RESET;
        if v & self.status != self.status {
            return;
        }
        let added = v & !self.status;
        let mut accepted = v & !(FEATURES_OK | DRIVER_OK);
        if added & FEATURES_OK != 0 && !self.features_acceptable() {
            // The driver reads the status back and sees its features refused.
        } else {
            accepted |= v & FEATURES_OK;
        }
        if added & DRIVER_OK != 0 && accepted & FEATURES_OK != 0 {
            if !self.activate() {
                // The status still shows DRIVER_OK: the driver sees NEEDS_RESET beside it.
                self.interrupt.set_needs_reset();
            }
            accepted |= DRIVER_OK;
        } else {
            accepted |= v & self.status & DRIVER_OK;
        }
        self.status = accepted;
    }

    /// A valid subset of the offered features, with VERSION_1 (there is no legacy interface here).
    fn features_acceptable(&self) -> bool {
        let offered = self.device.features();
        self.driver_features & !offered == 0 && self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0
    }

    /// Hands the queues to the device; false if a ready queue lies outside RAM or the device refused.
    fn activate(&mut self) -> bool {
        let event_idx = self.driver_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let mut queues = Vec::with_capacity(self.queues.len());
        for q in &mut self.queues {
            q.set_event_idx(event_idx);
            if q.ready() && !q.is_valid(self.mem.as_ref()) {
                return false;
            }
            // The transport keeps its own copy for register reads; the device gets the live one.
            match Queue::try_from(q.state()) {
                Ok(copy) => queues.push(copy),
                Err(_) => return false,
            }
        }
        let activation = Activation {
            mem: Arc::clone(&self.mem),
            queues,
            features: self.driver_features,
            interrupt: Arc::clone(&self.interrupt),
        };
        match self.device.activate(activation) {
            Ok(()) => {
                self.activated = true;
                true
            }
            Err(e) => {
                eprintln!("vmhost: {}: cannot start: {e}", self.name);
                false
            }
        }
    }
}

fn new_queues<D: VirtioDevice>(device: &D) -> Result<Vec<Queue>, String> {
    device
        .queue_max_sizes()
        .into_iter()
        .map(|n| Queue::new(n).map_err(|e| format!("queue size {n}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests;
