//! What vmhost's virtio device plugins share: the virtio-mmio (version 2) register file
//! ([`transport`]), guest memory as rust-vmm's `vm-memory` sees it, over the host's RAM and with
//! every device write reported to the host ([`memory`]), and the interrupt status the transport
//! and a device's worker threads share ([`interrupt`]).
//!
//! A device implements [`VirtioDevice`] (features, config space, activate, notify, reset); the
//! transport does the rest of the virtio-mmio protocol and hands it its queues as `virtio-queue`
//! [`Queue`](virtio_queue::Queue)s when the driver sets `DRIVER_OK`.
#![warn(missing_docs)]

pub mod interrupt;
pub mod memory;
pub mod transport;

pub use interrupt::Interrupt;
pub use memory::{DmaBitmap, GuestMem, guest_memory};
pub use transport::{Activation, MmioTransport, VirtioDevice};
