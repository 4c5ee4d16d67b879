//! Builds the machine a `vm.toml` describes: RAM, the `virt` board's fixed devices, the device
//! plugins on the bus, and the guest program in memory.

use crate::bus::{Bus, SharedDevice};
use crate::config::{ConfigError, DeviceConfig, VmConfig};
use crate::devices::{
    clint, clint::Clint, plic, plic::Plic, plugin::PluginDevice, syscon, syscon::PowerState, syscon::Syscon,
};
use crate::error::HostError;
use crate::events::EventBus;
use crate::irq::{self, IrqState};
use crate::loader::{self, Plugin, SearchPath};
use crate::memory::{GuestMemory, HostMemory};
use crate::{boot, fdt};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use vm_plugin_api::{
    ComponentStatus, DeviceBox, DeviceContext, ErrorKind, MemoryManagerArc, PluginKind, VmEvent,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, ROption},
    },
    event_sink,
    memory::MemoryManager_TO,
};

/// Guest physical address of RAM on the `virt` board.
pub const RAM_BASE: u64 = 0x8000_0000;
/// The hart's ISA string in the device tree.
pub const ISA: &str = "rv64imc_zicsr_zifencei";

/// A device plugin instance on the bus.
pub struct DeviceSlot {
    /// Its id from vm.toml.
    pub id: String,
    /// The plugin it came from.
    pub plugin: Plugin,
    /// Its base address.
    pub base: u64,
    /// Its interrupt line (PLIC source), if vm.toml gave one.
    pub irq: Option<u32>,
    /// The device (also mapped on the bus).
    pub device: Arc<Mutex<PluginDevice>>,
}

/// The assembled machine, before any engine runs on it.
pub struct Machine {
    /// Guest RAM.
    pub ram: Arc<GuestMemory>,
    /// Device bus.
    pub bus: Arc<Bus>,
    /// Timer and software interrupts.
    pub clint: Clint,
    /// The interrupt controller the device lines feed.
    pub plic: Plic,
    /// Power-off requests from the guest.
    pub power: PowerState,
    /// Device interrupt lines.
    pub irqs: Arc<IrqState>,
    /// Device plugins, in vm.toml order.
    pub devices: Vec<DeviceSlot>,
    /// Where the guest starts.
    pub entry: u64,
    /// Guest address of the device tree blob (passed in `a1`).
    pub dtb_addr: u64,
    /// The device tree blob.
    pub dtb: Vec<u8>,
    /// Rung when something may end a `wfi` wait (a PLIC output rising, a stop request).
    pub wake: Arc<tokio::sync::Notify>,
    /// Asks the running engine to return at its next block boundary.
    pub exit_request: Arc<AtomicU32>,
}

impl Machine {
    /// Builds the machine for `config`, loading device plugins through `search`.
    pub fn build(config: &VmConfig, search: &SearchPath, events: &EventBus) -> Result<Machine, HostError> {
        let ram = Arc::new(GuestMemory::new(RAM_BASE, config.memory)?);
        let wake = Arc::new(tokio::sync::Notify::new());
        let exit_request = Arc::new(AtomicU32::new(0));
        // One hart, so one exit-request flag; hart h has PLIC contexts 2h (M) and 2h + 1 (S).
        let plic = Plic::new(&[Arc::clone(&exit_request)], Arc::clone(&wake));
        let irqs = Arc::new(IrqState::new(plic.clone(), events.clone()));
        let clint = Clint::new();
        let power = PowerState::default();

        let mut bus = Bus::new();
        let fixed: [(u64, u64, &str, SharedDevice); 3] = [
            (syscon::BASE, syscon::SIZE, "syscon", Arc::new(Mutex::new(Syscon::new(power.clone())))),
            (clint::BASE, clint::SIZE, "clint", Arc::new(Mutex::new(clint.clone()))),
            (plic::BASE, plic::SIZE, "plic", Arc::new(Mutex::new(plic.clone()))),
        ];
        for (base, size, name, dev) in fixed {
            bus.map(base, size, base, name, dev).map_err(|o| HostError::Other(format!("{name}: {o}")))?;
        }
        let ram_end = RAM_BASE + config.memory;

        // Devices reach memory through the bus, but the bus is still being built: hand them a
        // memory manager over a bus that will be filled in, via a late-bound slot.
        let late_bus = Arc::new(std::sync::OnceLock::<Arc<Bus>>::new());
        let mut devices = Vec::new();
        let mut watches = Vec::new();
        for d in &config.devices {
            let plugin = loader::resolve(&d.plugin, PluginKind::Device, search).map_err(|e| {
                config.error_at(d.plugin_position, format!("key `device.plugin` of device '{}': {e}", d.id))
            })?;
            tracing::info!(
                "device '{}': plugin '{}' {} ({}); {}",
                d.id,
                plugin.info.name,
                plugin.info.version,
                plugin.source,
                plugin.build
            );
            let memory = memory_manager(Arc::clone(&ram), Arc::clone(&late_bus));
            let mut device = create_device(config, d, &plugin, memory, &irqs)?;
            let watch = Faults::watch(&mut device);
            let regions: Vec<_> = device.io_regions().into_iter().collect();
            watch.check(&device).map_err(|m| config.error_at(d.base_position, m))?;
            if regions.is_empty() || regions.iter().any(|r| r.size == 0) {
                let msg = format!(
                    "device '{}' ({}) declares no I/O region or an empty one",
                    d.id, plugin.info.name
                );
                return Err(config.error_at(d.base_position, msg).into());
            }
            let shared = Arc::new(Mutex::new(PluginDevice(device)));
            for r in regions {
                let start = d.base.checked_add(r.offset).ok_or_else(|| {
                    config
                        .error_at(d.base_position, format!("key `device.base`: device '{}' overflows", d.id))
                })?;
                let align = r.size.next_power_of_two().clamp(1, 4096);
                if start % align != 0 {
                    return Err(config
                        .error_at(
                            d.base_position,
                            format!(
                                "key `device.base`: {:#x} is not aligned to the {:#x}-byte register region of \
                                 device '{}' ({}); use a multiple of {align:#x}",
                                d.base, r.size, d.id, plugin.info.name
                            ),
                        )
                        .into());
                }
                if start < ram_end && RAM_BASE < start.saturating_add(r.size) {
                    return Err(config
                        .error_at(
                            d.base_position,
                            format!("key `device.base`: device '{}' at {start:#x} overlaps RAM", d.id),
                        )
                        .into());
                }
                let dev: SharedDevice = shared.clone();
                bus.map(start, r.size, d.base, &d.id, dev).map_err(|o| {
                    config.error_at(d.base_position, format!("key `device.base`: device '{}' {o}", d.id))
                })?;
            }
            devices.push(DeviceSlot { id: d.id.clone(), plugin, base: d.base, irq: d.irq, device: shared });
            watches.push(watch);
        }
        let bus = Arc::new(bus);
        // Cannot fail: the slot is set once, here.
        let _ = late_bus.set(Arc::clone(&bus));

        let image = boot::load_kernel(&config.kernel, &ram.view())
            .map_err(|m| config.error(format!("key `boot.kernel`: {m}")))?;
        let board = fdt::Board {
            ram: (RAM_BASE, config.memory),
            isa: ISA,
            timebase_hz: clint::TIMEBASE_HZ as u32,
            devices: &devices,
        };
        let dtb =
            fdt::build(&board).map_err(|e| HostError::Other(format!("cannot build the device tree: {e}")))?;
        // The device tree asked each device for its node and type: a panic there is fatal too.
        for ((slot, watch), d) in devices.iter().zip(watches).zip(&config.devices) {
            let mut device = slot.device.lock().unwrap_or_else(|p| p.into_inner());
            watch.check(&device.0).map_err(|m| config.error_at(d.plugin_position, m))?;
            watch.stop(&mut device.0);
        }
        let dtb_addr = boot::place_dtb(&ram.view(), image.end, &dtb)
            .map_err(|m| config.error(format!("key `machine.memory`: {m}")))?;
        Ok(Machine {
            ram,
            bus,
            clint,
            plic,
            power,
            irqs,
            devices,
            entry: image.entry,
            dtb_addr,
            dtb,
            wake,
            exit_request,
        })
    }
}

fn create_device(
    config: &VmConfig,
    d: &DeviceConfig,
    plugin: &Plugin,
    memory: MemoryManagerArc,
    irqs: &Arc<IrqState>,
) -> Result<vm_plugin_api::DeviceBox, HostError> {
    let Some(create) = plugin.module.create_device() else {
        return Err(HostError::Other(format!("plugin '{}' has no device factory", plugin.info.name)));
    };
    let ctx = DeviceContext {
        id: d.id.as_str().into(),
        base: d.base,
        config: d.config.as_str().into(),
        config_dir: config.file.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default().into(),
        irq: match d.irq {
            Some(n) => ROption::RSome(irq::line(irqs, n)),
            None => ROption::RNone,
        },
        memory,
    };
    create(ctx).into_result().map_err(|e| {
        let who = format!("device '{}' ({})", d.id, plugin.info.name);
        let msg = e.message();
        match e.kind {
            // The plugin-api's guard words it "<who> create panicked: <message>".
            ErrorKind::Panic => {
                let why = msg.split_once("panicked: ").map_or(msg, |(_, m)| m);
                config.error_at(d.plugin_position, format!("{who}: panicked while being created: {why}"))
            }
            ErrorKind::Config => ConfigError {
                file: config.file.clone(),
                position: d.config_keys.locate(msg),
                message: format!("{who} refused its configuration: {msg}"),
            },
            _ => config.error_at(d.plugin_position, format!("{who} could not be created: {e}")),
        }
        .into()
    })
}

/// Errors a device reports while the machine is built. Its getters (`io_regions`, `fdt_node`) have
/// no error channel across the ABI, so the plugin-api publishes a panic in one as an
/// `ErrorOccurred` event and marks the device failed; this keeps the message for the report.
struct Faults {
    messages: Arc<Mutex<Vec<String>>>,
    subscription: u64,
}

impl Faults {
    fn watch(device: &mut DeviceBox) -> Faults {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        let subscription = device.subscribe(event_sink(move |e| {
            if let VmEvent::ErrorOccurred(m) = e {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(m.to_string());
            }
        }));
        Faults { messages, subscription }
    }

    /// `Err` with what went wrong if the device has failed.
    fn check(&self, device: &DeviceBox) -> Result<(), String> {
        if device.status() != ComponentStatus::Error {
            return Ok(());
        }
        let messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        Err(match messages.last() {
            Some(m) => m.clone(),
            None => format!(
                "device '{}' ({}) failed while the machine was built",
                device.device_id(),
                device.name()
            ),
        })
    }

    fn stop(self, device: &mut DeviceBox) {
        device.unsubscribe(self.subscription);
    }
}

/// A memory manager for a device, over RAM and the bus once it is assembled.
fn memory_manager(ram: Arc<GuestMemory>, bus: Arc<std::sync::OnceLock<Arc<Bus>>>) -> MemoryManagerArc {
    MemoryManager_TO::from_ptr(RArc::new(HostMemory::new(ram, bus)), TD_Opaque)
}
