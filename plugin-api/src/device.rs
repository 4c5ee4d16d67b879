//! Devices: the registers they own, their device-tree node, and the device trait.
//!
//! A device declares its I/O regions as offsets from its base, with the accesses each takes;
//! `vm.toml` gives the base and the interrupt line, the host maps the regions on its bus, faults
//! the accesses a region does not take, and describes the device in the guest's device tree from
//! [`Device::fdt_node`]. A device answers an access it refuses with [`VmError::bus_fault`]: the
//! guest gets an access fault and the VM goes on; any other error stops the VM. Devices get
//! timers and a stop request from the host through [`HostServices`]. Plugin authors implement
//! [`Device`].

use crate::{
    error::{VmError, VmResult},
    lifecycle::{Component, ComponentStatus, EventSinkBox, Events, Tracker},
    memory::MemoryManagerArc,
    panic::guard,
};
use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RArc, RBox, ROption, RStr, RString, RVec},
};

/// What a device is, for listings and guests that care.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// Block storage.
    Block,
    /// Network interface.
    Network,
    /// Display.
    GPU,
    /// Keyboard, mouse, tablet.
    Input,
    /// Sound.
    Audio,
    /// Serial port / console.
    Serial,
    /// Anything else, with a device-defined code.
    Custom(u32),
}

/// How a region is reached.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// Memory-mapped I/O.
    Mmio,
}

/// A register window, relative to the device's base address, and the accesses it takes (QEMU's
/// `MemoryRegionOps.valid`): the host faults any other access without calling the device.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoRegion {
    /// Offset from the device's base.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// How it is reached.
    pub kind: RegionKind,
    /// Smallest access size in bytes (1, 2, 4 or 8).
    pub min_access: u8,
    /// Largest access size in bytes.
    pub max_access: u8,
    /// Whether an access need not be aligned to its size.
    pub unaligned: bool,
}

impl IoRegion {
    /// An MMIO region of `size` bytes at `offset` that takes naturally aligned accesses of 1 to 8
    /// bytes.
    pub fn mmio(offset: u64, size: u64) -> Self {
        IoRegion { offset, size, kind: RegionKind::Mmio, min_access: 1, max_access: 8, unaligned: false }
    }
    /// Takes only accesses of `min..=max` bytes.
    pub fn accesses(self, min: u8, max: u8) -> Self {
        IoRegion { min_access: min, max_access: max, ..self }
    }
    /// Also takes misaligned accesses.
    pub fn allow_unaligned(self) -> Self {
        IoRegion { unaligned: true, ..self }
    }
}

/// A device-tree property value.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum FdtValue {
    /// A property with no value.
    Empty,
    /// One 32-bit cell.
    U32(u32),
    /// Several 32-bit cells.
    Cells(RVec<u32>),
    /// A string.
    Str(RString),
    /// A string list.
    Strs(RVec<RString>),
    /// Raw bytes.
    Bytes(RVec<u8>),
}

/// A device-tree property.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FdtProp {
    /// Property name.
    pub name: RString,
    /// Its value.
    pub value: FdtValue,
}

/// A device's device-tree node. The host adds `reg`, `interrupts` and `interrupt-parent`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FdtNode {
    /// Node name without the unit address, e.g. `serial`.
    pub name: RString,
    /// `compatible` strings, most specific first.
    pub compatible: RVec<RString>,
    /// Other properties.
    pub props: RVec<FdtProp>,
}

impl FdtNode {
    /// A node called `name` with the given `compatible` list.
    pub fn new(name: &str, compatible: &[&str]) -> Self {
        FdtNode {
            name: name.into(),
            compatible: compatible.iter().map(|c| RString::from(*c)).collect(),
            props: RVec::new(),
        }
    }
    /// Adds a property.
    pub fn prop(mut self, name: &str, value: FdtValue) -> Self {
        self.props.push(FdtProp { name: name.into(), value });
        self
    }
}

/// An interrupt line a device drives, handed to it by the host.
#[sabi_trait]
pub trait InterruptLine: Send + Sync {
    /// Raises (`true`) or lowers (`false`) the line.
    fn set_level(&self, level: bool);
    /// The line number, as configured in `vm.toml`.
    fn number(&self) -> u32;
}

/// A shareable interrupt line.
pub type InterruptLineArc = InterruptLine_TO<'static, RArc<()>>;

/// What the host does for a device besides the bus: timers and a stop request.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Calls the device's [`Device::timer`] with `token` once, about `delay_ns` nanoseconds of host
    /// time from now (on a host thread, with the device's lock held as for a guest access; host
    /// time even when the guest's clock counts instructions). Setting a token that is already
    /// pending moves it. A machine reset cancels every pending timer.
    fn set_timer(&self, token: u64, delay_ns: u64);
    /// Cancels the pending timer `token`, if any.
    fn cancel_timer(&self, token: u64);
    /// Nanoseconds on the host's monotonic clock of this VM.
    fn now_ns(&self) -> u64;
    /// Asks the host to stop the VM, exiting with `exit_code`, and saying `reason` (a console's
    /// quit key, for example).
    fn request_stop(&self, exit_code: i32, reason: RStr<'_>);
}

/// A shareable host-services object.
pub type HostServicesArc = HostServices_TO<'static, RArc<()>>;

/// What the host gives a device plugin's factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct DeviceContext {
    /// The device's id from `vm.toml`.
    pub id: RString,
    /// The device's base guest physical address.
    pub base: u64,
    /// The device's own configuration table, as TOML.
    pub config: RString,
    /// The directory of the `vm.toml` file: relative paths in `config` are relative to it.
    pub config_dir: RString,
    /// Its interrupt line, if `vm.toml` gave one.
    pub irq: ROption<InterruptLineArc>,
    /// Guest memory, for DMA.
    pub memory: MemoryManagerArc,
    /// Timers and stop requests.
    pub host: HostServicesArc,
}

/// The FFI-safe device object the host drives. Built by the plugin-api from a [`Device`].
#[sabi_trait]
pub trait FfiDevice: Send {
    /// Plugin name.
    fn name(&self) -> RString;
    /// The id from `vm.toml`.
    fn device_id(&self) -> RString;
    /// What the device is.
    fn device_type(&self) -> DeviceType;
    /// Lifecycle: prepare.
    fn init(&mut self) -> VmResult<()>;
    /// Lifecycle: begin serving.
    fn start(&mut self) -> VmResult<()>;
    /// Lifecycle: stop serving.
    fn stop(&mut self) -> VmResult<()>;
    /// Lifecycle state (the seed's `device_status`).
    fn status(&self) -> ComponentStatus;
    /// Replaces the configuration (a TOML table).
    fn update_config(&mut self, toml: RStr<'_>) -> VmResult<()>;
    /// The configuration as TOML.
    fn get_config(&self) -> RString;
    /// Checks a configuration without applying it.
    fn validate_config(&self, toml: RStr<'_>) -> VmResult<()>;
    /// Subscribes to the device's events.
    fn subscribe(&mut self, sink: EventSinkBox) -> u64;
    /// Ends a subscription.
    fn unsubscribe(&mut self, id: u64) -> bool;
    /// Register windows, relative to the base.
    fn io_regions(&self) -> RVec<IoRegion>;
    /// Device-tree node.
    fn fdt_node(&self) -> FdtNode;
    /// A guest read of `size` bytes at `offset` from the base.
    fn handle_read(&mut self, offset: u64, size: u8) -> VmResult<u64>;
    /// A guest write of `size` bytes at `offset` from the base.
    fn handle_write(&mut self, offset: u64, value: u64, size: u8) -> VmResult<()>;
    /// A timer set through [`HostServices::set_timer`] expired.
    fn handle_timer(&mut self, token: u64) -> VmResult<()>;
    /// The machine is reset: back to the power-on state.
    #[sabi(last_prefix_field)]
    fn reset(&mut self) -> VmResult<()>;
}

/// A boxed device object.
pub type DeviceBox = FfiDevice_TO<'static, RBox<()>>;

/// What a device plugin implements (with [`Component`] for lifecycle and configuration).
pub trait Device: Component + Send + 'static {
    /// What the device is.
    fn device_type(&self) -> DeviceType;
    /// Register windows, relative to the base.
    fn io_regions(&self) -> Vec<IoRegion>;
    /// Device-tree node (the host adds `reg` and `interrupts`).
    fn fdt_node(&self) -> FdtNode;
    /// A guest read of `size` bytes at `offset` from the base (an access its region takes).
    /// [`VmError::bus_fault`] gives the guest an access fault.
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, VmError>;
    /// A guest write of `size` bytes at `offset` from the base.
    fn write(&mut self, offset: u64, value: u64, size: u8) -> Result<(), VmError>;
    /// A timer set through [`HostServices::set_timer`] expired.
    fn timer(&mut self, _token: u64) -> Result<(), VmError> {
        Ok(())
    }
    /// The machine is reset: go back to the power-on state (the default does nothing).
    fn reset(&mut self) -> Result<(), VmError> {
        Ok(())
    }
}

/// Adapts a [`Device`] to [`FfiDevice`]: tracks lifecycle, subscribers, and catches panics.
pub(crate) struct DeviceAdapter<D: Device> {
    name: String,
    id: String,
    device: D,
    tracker: Tracker,
    events: Events,
}

impl<D: Device> DeviceAdapter<D> {
    pub(crate) fn new(name: &str, id: &str, device: D, events: Events) -> Self {
        DeviceAdapter {
            name: name.to_string(),
            id: id.to_string(),
            device,
            tracker: Tracker::new(format!("device '{id}' ({name})")),
            events,
        }
    }

    fn call<T>(&mut self, what: &str, f: impl FnOnce(&mut D) -> Result<T, VmError>) -> VmResult<T> {
        let device = &mut self.device;
        self.tracker.call(what, || f(device))
    }

    fn transition(
        &mut self,
        what: &str,
        during: Option<ComponentStatus>,
        after: ComponentStatus,
        f: impl FnOnce(&mut D) -> Result<(), VmError>,
    ) -> VmResult<()> {
        let device = &mut self.device;
        self.tracker.transition(what, during, after, || f(device))
    }

    fn get<T>(&self, what: &str, default: T, f: impl FnOnce(&D) -> T) -> T {
        self.tracker.get(what, &self.events, default, || f(&self.device))
    }
}

impl<D: Device> FfiDevice for DeviceAdapter<D> {
    fn name(&self) -> RString {
        self.name.clone().into()
    }
    fn device_id(&self) -> RString {
        self.id.clone().into()
    }
    fn device_type(&self) -> DeviceType {
        self.get("device_type", DeviceType::Custom(0), |d| d.device_type())
    }
    fn init(&mut self) -> VmResult<()> {
        self.transition("init", None, ComponentStatus::Initialized, |d| d.init())
    }
    fn start(&mut self) -> VmResult<()> {
        self.transition("start", Some(ComponentStatus::Starting), ComponentStatus::Running, |d| d.start())
    }
    fn stop(&mut self) -> VmResult<()> {
        self.transition("stop", Some(ComponentStatus::Stopping), ComponentStatus::Stopped, |d| d.stop())
    }
    fn status(&self) -> ComponentStatus {
        self.tracker.status()
    }
    fn update_config(&mut self, toml: RStr<'_>) -> VmResult<()> {
        self.call("update_config", |d| d.update_config(toml.as_str()))
    }
    fn get_config(&self) -> RString {
        self.get("get_config", String::new(), |d| d.get_config()).into()
    }
    fn validate_config(&self, toml: RStr<'_>) -> VmResult<()> {
        guard("validate_config", || self.device.validate_config(toml.as_str())).into()
    }
    fn subscribe(&mut self, sink: EventSinkBox) -> u64 {
        self.events.subscribe(sink)
    }
    fn unsubscribe(&mut self, id: u64) -> bool {
        self.events.unsubscribe(id)
    }
    fn io_regions(&self) -> RVec<IoRegion> {
        self.get("io_regions", Vec::new(), |d| d.io_regions()).into()
    }
    fn fdt_node(&self) -> FdtNode {
        self.get("fdt_node", FdtNode::new("invalid", &[]), |d| d.fdt_node())
    }
    fn handle_read(&mut self, offset: u64, size: u8) -> VmResult<u64> {
        self.call("read", |d| d.read(offset, size))
    }
    fn handle_write(&mut self, offset: u64, value: u64, size: u8) -> VmResult<()> {
        self.call("write", |d| d.write(offset, value, size))
    }
    fn handle_timer(&mut self, token: u64) -> VmResult<()> {
        self.call("timer", |d| d.timer(token))
    }
    fn reset(&mut self) -> VmResult<()> {
        self.call("reset", |d| d.reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{VmEvent, event_sink};
    use std::sync::{Arc, Mutex};

    struct BadRegions;
    impl Component for BadRegions {}
    impl Device for BadRegions {
        fn device_type(&self) -> DeviceType {
            DeviceType::Custom(1)
        }
        fn io_regions(&self) -> Vec<IoRegion> {
            panic!("no regions today")
        }
        fn fdt_node(&self) -> FdtNode {
            FdtNode::new("bad", &[])
        }
        fn read(&mut self, _offset: u64, _size: u8) -> Result<u64, VmError> {
            Ok(0)
        }
        fn write(&mut self, _offset: u64, _value: u64, _size: u8) -> Result<(), VmError> {
            Ok(())
        }
    }

    #[test]
    fn a_panicking_getter_marks_the_device_failed_and_says_why() {
        let events = Events::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        events.subscribe(event_sink(move |e| s.lock().unwrap().push(e.clone())));
        let dev = DeviceAdapter::new("bad", "dev0", BadRegions, events);
        assert_eq!(dev.device_type(), DeviceType::Custom(1));
        assert_eq!(dev.status(), ComponentStatus::Uninitialized);
        assert!(FfiDevice::io_regions(&dev).is_empty());
        assert_eq!(dev.status(), ComponentStatus::Error);
        assert_eq!(
            *seen.lock().unwrap(),
            [VmEvent::ErrorOccurred("device 'dev0' (bad) io_regions panicked: no regions today".into())]
        );
    }
}
