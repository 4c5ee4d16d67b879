//! Builds the machine a `vm.toml` describes: RAM, the `virt` board's fixed devices (boot ROM,
//! syscon, CLINT, PLIC), the device plugins on the bus, and the boot images in memory, placed as
//! QEMU 7.2 places them (see [`crate::boot`]).

use crate::bus::{Bus, MmioDevice, SharedDevice};
use crate::code_pages::CodePages;
use crate::config::{ClockConfig, ConfigError, DeviceConfig, VmConfig};
use crate::devices::{
    clint, clint::Clint, clint::HartSignal, plic, plic::Plic, plugin, plugin::PluginDevice,
    services::StopTarget, services::Timers, syscon, syscon::PowerState, syscon::Syscon,
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
pub const ISA: &str = "rv64imafdc_zicsr_zifencei";

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

/// Where the boot images are in RAM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// The firmware, if any.
    pub firmware: Option<boot::Image>,
    /// The kernel, if any.
    pub kernel: Option<boot::Image>,
    /// The next stage's address given to the firmware (`fw_dynamic_info.next_addr`): the kernel's
    /// lowest loaded byte, as QEMU 7.2 gives it, or 0 without a kernel.
    pub next_addr: u64,
    /// The initrd, `start..end`.
    pub initrd: Option<(u64, u64)>,
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
    /// Where the guest starts: RAM base with firmware (as QEMU's reset vector jumps there), else
    /// the kernel's entry point.
    pub entry: u64,
    /// Guest address of the device tree blob (passed in `a1`).
    pub dtb_addr: u64,
    /// What `a2` holds at the start: the `fw_dynamic` information in the boot ROM.
    pub fw_dynamic_info: u64,
    /// Where each boot image went.
    pub layout: Layout,
    /// The device tree blob.
    pub dtb: Vec<u8>,
    /// Each hart's attention word (asks its running engine to return at the next block boundary)
    /// and `wfi` wake-up (rung by a PLIC output rising, an IPI, a stop request).
    pub harts: Vec<HartSignal>,
    /// Which RAM pages hold translated code.
    pub code: Arc<CodePages>,
}

impl Machine {
    /// Builds the machine for `config`, loading device plugins through `search`.
    pub fn build(config: &VmConfig, search: &SearchPath, events: &EventBus) -> Result<Machine, HostError> {
        let ram = Arc::new(GuestMemory::new(RAM_BASE, config.memory)?);
        let harts: Vec<_> = (0..config.harts)
            .map(|_| HartSignal {
                attention: Arc::new(AtomicU32::new(0)),
                wake: Arc::new(tokio::sync::Notify::new()),
            })
            .collect();
        // One hart, so one exit-request flag; hart h has PLIC contexts 2h (M) and 2h + 1 (S).
        // Hart h has PLIC contexts 2h (M) and 2h + 1 (S).
        let plic = Plic::new(&harts);
        let irqs = Arc::new(IrqState::new(plic.clone(), events.clone()));
        let clint = match config.clock {
            ClockConfig::Host => Clint::for_harts(harts.clone()),
            // One hart only (the config checks).
            ClockConfig::Instructions => Clint::virtual_time(harts[0].clone()),
        };
        let power = PowerState::default();
        let attentions = harts.iter().map(|h| Arc::clone(&h.attention)).collect();
        let code = Arc::new(CodePages::new(RAM_BASE, config.memory, attentions));
        let timers = Arc::new(Timers::default());
        let stop = StopTarget { power: power.clone(), harts: harts.clone() };
        let started_at = std::time::Instant::now();

        let mut bus = Bus::new();
        let boot_rom = Arc::new(Mutex::new(Rom(Vec::new())));
        let fixed: [(u64, u64, &str, SharedDevice); 4] = [
            (boot::MROM_BASE, boot::MROM_SIZE, "mrom", boot_rom.clone()),
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
            let memory = memory_manager(Arc::clone(&ram), Arc::clone(&late_bus), Arc::clone(&code));
            let (host, binder) = timers.services(&d.id, stop.clone(), started_at);
            let mut device = create_device(config, d, &plugin, memory, host, &irqs)?;
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
            let mut windows = Vec::new();
            for r in &regions {
                let w = plugin::window(r).map_err(|m| {
                    config.error_at(d.base_position, format!("device '{}' ({}) {m}", d.id, plugin.info.name))
                })?;
                windows.push(w);
            }
            let shared = Arc::new(Mutex::new(PluginDevice(device, windows)));
            binder.bind(&shared);
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

        let (layout, placed) = load_images(config, &ram.view())?;
        let chosen = fdt::Chosen { bootargs: config.boot.cmdline.as_deref(), initrd: layout.initrd };
        let board = fdt::Board {
            ram: (RAM_BASE, config.memory),
            isa: ISA,
            harts: config.harts,
            timebase_hz: clint::TIMEBASE_HZ as u32,
            devices: &devices,
            chosen,
        };
        let dtb =
            fdt::build(&board).map_err(|e| HostError::Other(format!("cannot build the device tree: {e}")))?;
        // The device tree asked each device for its node and type: a panic there is fatal too.
        for ((slot, watch), d) in devices.iter().zip(watches).zip(&config.devices) {
            let mut device = slot.device.lock().unwrap_or_else(|p| p.into_inner());
            watch.check(&device.0).map_err(|m| config.error_at(d.plugin_position, m))?;
            watch.stop(&mut device.0);
        }
        let (dtb, dtb_addr) = place_dtb(config, &ram.view(), dtb, &chosen, placed)?;
        let entry = match (&layout.firmware, &layout.kernel) {
            (Some(_), _) => RAM_BASE,
            (None, Some(k)) => k.entry,
            (None, None) => unreachable!("the config has a firmware or a kernel"),
        };
        lock_rom(&boot_rom).0 = boot::boot_rom(RAM_BASE, dtb_addr, layout.next_addr);
        Ok(Machine {
            ram,
            bus,
            clint,
            plic,
            power,
            irqs,
            devices,
            entry,
            dtb_addr,
            fw_dynamic_info: boot::FW_DYNAMIC_INFO_ADDR,
            layout,
            dtb,
            harts,
            code,
        })
    }
}

/// Loads firmware, kernel and initrd where QEMU 7.2's `virt_machine_done` puts them.
fn load_images(
    config: &VmConfig,
    ram: &vm_plugin_api::GuestRam,
) -> Result<(Layout, boot::Placed), ConfigError> {
    let b = &config.boot;
    let mut placed = boot::Placed::default();
    let mut layout = Layout::default();
    let mut load = |key: &'static str, file: &crate::config::BootFile, raw_at: u64, elf: bool| {
        let at = |m: String| config.error_at(file.position, format!("key `boot.{key}`: {m}"));
        let image = boot::load(&boot::Load { key, path: &file.path, raw_at, elf }, ram).map_err(at)?;
        placed.add(key, image.start, image.end).map_err(at)?;
        Ok::<_, ConfigError>(image)
    };
    // riscv_find_and_load_firmware: an ELF at its addresses, else raw at RAM base.
    if let Some(f) = &b.firmware {
        layout.firmware = Some(load("firmware", f, RAM_BASE, true)?);
    }
    if let Some(k) = &b.kernel {
        // riscv_calc_kernel_start_addr, then riscv_load_kernel: the next stage is the lowest
        // loaded byte of an ELF (not its entry point), or where a raw image went.
        let firmware_end = layout.firmware.map_or(RAM_BASE, |f| f.end);
        let kernel = load("kernel", k, boot::kernel_start(firmware_end), true)?;
        layout.next_addr = kernel.start;
        layout.kernel = Some(kernel);
    }
    if let Some(i) = &b.initrd {
        let start = boot::initrd_start(layout.next_addr, config.memory);
        let image = load("initrd", i, start, false).map_err(|mut e| {
            if e.message.contains("past the end of RAM") {
                e.message.push_str(" (QEMU puts the initrd at the kernel + min(RAM / 2, 128 MiB))");
            }
            e
        })?;
        layout.initrd = Some((image.start, image.end));
    }
    Ok((layout, placed))
}

/// Chooses the device tree (the generated one, or `[boot] dtb` with `/chosen` updated) and
/// copies it where QEMU 7.2's `riscv_load_fdt` puts it. Returns the blob and its address.
fn place_dtb(
    config: &VmConfig,
    ram: &vm_plugin_api::GuestRam,
    generated: Vec<u8>,
    chosen: &fdt::Chosen<'_>,
    mut placed: boot::Placed,
) -> Result<(Vec<u8>, u64), ConfigError> {
    let (dtb, reserve, key, position) = match &config.boot.dtb {
        None => {
            let reserve = boot::fdt_reserve(None).max(generated.len() as u64);
            (generated, reserve, "machine.memory", None)
        }
        Some(f) => {
            let at =
                |m: String| config.error_at(f.position, format!("key `boot.dtb`: {}: {m}", f.path.display()));
            let blob = crate::files::read_regular_file(&f.path, crate::config::MAX_DTB_SIZE, |size| {
                format!("{size} bytes, larger than 2 MiB (the most Linux maps)")
            })
            .map_err(|m| config.error_at(f.position, format!("key `boot.dtb`: {m}")))?;
            let reserve = boot::fdt_reserve(Some(blob.len() as u64));
            let blob = fdt::edit_chosen(&blob, chosen).map_err(at)?;
            let reserve = reserve.max(blob.len() as u64);
            (blob, reserve, "boot.dtb", Some(f.position))
        }
    };
    let error = |m: String| match position {
        Some(p) => config.error_at(p, format!("key `{key}`: {m}")),
        None => config.error(format!("key `{key}`: {m}")),
    };
    let addr = boot::fdt_addr(RAM_BASE, config.memory, reserve).ok_or_else(|| {
        error(format!(
            "{} bytes of RAM leave no room for the device tree: it takes {reserve} bytes below the end of RAM",
            config.memory
        ))
    })?;
    placed.add("device tree", addr, addr + dtb.len() as u64).map_err(error)?;
    ram.write_bytes(addr, &dtb).ok_or_else(|| error("device tree copy failed".into()))?;
    Ok((dtb, addr))
}

/// The boot ROM: read-only bytes; writes are dropped, as on QEMU's ROM regions.
struct Rom(Vec<u8>);

impl MmioDevice for Rom {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, vm_plugin_api::VmError> {
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate().take(size as usize) {
            *b = usize::try_from(offset + i as u64).ok().and_then(|o| self.0.get(o)).copied().unwrap_or(0);
        }
        Ok(u64::from_le_bytes(bytes))
    }
    fn write(&mut self, _offset: u64, _value: u64, _size: u8) -> Result<(), vm_plugin_api::VmError> {
        Ok(())
    }
}

fn lock_rom(rom: &Mutex<Rom>) -> std::sync::MutexGuard<'_, Rom> {
    rom.lock().unwrap_or_else(|p| p.into_inner())
}

fn create_device(
    config: &VmConfig,
    d: &DeviceConfig,
    plugin: &Plugin,
    memory: MemoryManagerArc,
    host: vm_plugin_api::HostServicesArc,
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
        host,
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
fn memory_manager(
    ram: Arc<GuestMemory>,
    bus: Arc<std::sync::OnceLock<Arc<Bus>>>,
    code: Arc<CodePages>,
) -> MemoryManagerArc {
    MemoryManager_TO::from_ptr(RArc::new(HostMemory::new(ram, bus, code)), TD_Opaque)
}
