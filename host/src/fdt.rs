//! The flattened device tree handed to the guest in `a1`, describing the machine as QEMU's `virt`
//! board does: memory, the hart, the board's fixed devices (syscon, CLINT, PLIC), and each device
//! plugin's own node, with `interrupts` and `interrupt-parent` (the PLIC) when it has a line.
//!
//! Built with rust-vmm's `vm-fdt`.

use crate::devices::{clint, plic, syscon};
use crate::machine::DeviceSlot;
use vm_fdt::{FdtWriter, FdtWriterResult};
use vm_plugin_api::{DeviceType, FdtValue};

/// What the device tree describes.
pub struct Board<'a> {
    /// RAM base and size.
    pub ram: (u64, u64),
    /// `riscv,isa` of the hart.
    pub isa: &'a str,
    /// `mtime` frequency.
    pub timebase_hz: u32,
    /// Device plugins on the bus.
    pub devices: &'a [DeviceSlot],
}

const PHANDLE_CPU_INTC: u32 = 1;
const PHANDLE_SYSCON: u32 = 2;
const PHANDLE_PLIC: u32 = 3;
/// Interrupt numbers at the hart's local interrupt controller (`mip` bits).
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;
/// Properties the host writes for a device with a line; a plugin's own are dropped.
const HOST_IRQ_PROPS: [&str; 3] = ["interrupts", "interrupt-parent", "interrupts-extended"];

fn reg(base: u64, size: u64) -> [u64; 2] {
    [base, size]
}

/// Builds the device tree blob.
pub fn build(board: &Board<'_>) -> FdtWriterResult<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "riscv-virtio")?;
    fdt.property_string("model", "vmhost,virt")?;

    let chosen = fdt.begin_node("chosen")?;
    let console = board.devices.iter().find(|d| lock(d).0.device_type() == DeviceType::Serial);
    if let Some(d) = console {
        fdt.property_string("stdout-path", &format!("/soc/{}", node_name(d)))?;
    }
    fdt.end_node(chosen)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", board.ram.0))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &reg(board.ram.0, board.ram.1))?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("timebase-frequency", board.timebase_hz)?;
    let cpu = fdt.begin_node("cpu@0")?;
    fdt.property_string("device_type", "cpu")?;
    fdt.property_u32("reg", 0)?;
    fdt.property_string("status", "okay")?;
    fdt.property_string("compatible", "riscv")?;
    fdt.property_string("riscv,isa", board.isa)?;
    let intc = fdt.begin_node("interrupt-controller")?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_string("compatible", "riscv,cpu-intc")?;
    fdt.property_phandle(PHANDLE_CPU_INTC)?;
    fdt.end_node(intc)?;
    fdt.end_node(cpu)?;
    fdt.end_node(cpus)?;

    let soc = fdt.begin_node("soc")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "simple-bus")?;
    fdt.property_null("ranges")?;

    let test = fdt.begin_node(&format!("test@{:x}", syscon::BASE))?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,test1".into(), "sifive,test0".into(), "syscon".into()],
    )?;
    fdt.property_array_u64("reg", &reg(syscon::BASE, syscon::SIZE))?;
    fdt.property_phandle(PHANDLE_SYSCON)?;
    fdt.end_node(test)?;

    let clint = fdt.begin_node(&format!("clint@{:x}", clint::BASE))?;
    fdt.property_string_list("compatible", vec!["sifive,clint0".into(), "riscv,clint0".into()])?;
    fdt.property_array_u64("reg", &reg(clint::BASE, clint::SIZE))?;
    fdt.property_array_u32(
        "interrupts-extended",
        &[PHANDLE_CPU_INTC, IRQ_M_SOFT, PHANDLE_CPU_INTC, IRQ_M_TIMER],
    )?;
    fdt.end_node(clint)?;

    plic_node(&mut fdt, &[PHANDLE_CPU_INTC])?;

    for d in board.devices {
        device_node(&mut fdt, d)?;
    }
    fdt.end_node(soc)?;

    // Outside /soc, as on QEMU's board: they have no registers of their own.
    for (name, compatible, value) in
        [("poweroff", "syscon-poweroff", 0x5555), ("reboot", "syscon-reboot", 0x7777)]
    {
        let n = fdt.begin_node(name)?;
        fdt.property_string("compatible", compatible)?;
        fdt.property_u32("regmap", PHANDLE_SYSCON)?;
        fdt.property_u32("offset", 0)?;
        fdt.property_u32("value", value)?;
        fdt.end_node(n)?;
    }
    fdt.end_node(root)?;
    fdt.finish()
}

/// The PLIC, with contexts 2h (M) and 2h + 1 (S) of hart h wired to the interrupt controller of
/// each hart in `cpu_intcs`, as QEMU's `virt` board has it.
fn plic_node(fdt: &mut FdtWriter, cpu_intcs: &[u32]) -> FdtWriterResult<()> {
    let n = fdt.begin_node(&format!("plic@{:x}", plic::BASE))?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_string_list("compatible", vec!["sifive,plic-1.0.0".into(), "riscv,plic0".into()])?;
    fdt.property_null("interrupt-controller")?;
    let contexts: Vec<u32> = cpu_intcs.iter().flat_map(|&p| [p, IRQ_M_EXT, p, IRQ_S_EXT]).collect();
    fdt.property_array_u32("interrupts-extended", &contexts)?;
    fdt.property_array_u64("reg", &reg(plic::BASE, plic::SIZE))?;
    // The highest source id (source 0 does not count), as current QEMU writes it.
    fdt.property_u32("riscv,ndev", plic::NUM_SOURCES - 1)?;
    fdt.property_phandle(PHANDLE_PLIC)?;
    fdt.end_node(n)
}

fn lock(d: &DeviceSlot) -> std::sync::MutexGuard<'_, crate::devices::plugin::PluginDevice> {
    d.device.lock().unwrap_or_else(|p| p.into_inner())
}

fn node_name(d: &DeviceSlot) -> String {
    format!("{}@{:x}", lock(d).0.fdt_node().name, d.base)
}

fn device_node(fdt: &mut FdtWriter, d: &DeviceSlot) -> FdtWriterResult<()> {
    let (node, regions) = {
        let dev = lock(d);
        (dev.0.fdt_node(), dev.0.io_regions())
    };
    let n = fdt.begin_node(&format!("{}@{:x}", node.name, d.base))?;
    let compatible: Vec<String> = node.compatible.iter().map(|c| c.to_string()).collect();
    if !compatible.is_empty() {
        fdt.property_string_list("compatible", compatible)?;
    }
    let cells: Vec<u64> = regions.iter().flat_map(|r| reg(d.base + r.offset, r.size)).collect();
    fdt.property_array_u64("reg", &cells)?;
    if let Some(irq) = d.irq {
        fdt.property_u32("interrupts", irq)?;
        fdt.property_u32("interrupt-parent", PHANDLE_PLIC)?;
    }
    for p in node.props.iter() {
        let name = p.name.as_str();
        if d.irq.is_some() && HOST_IRQ_PROPS.contains(&name) {
            continue;
        }
        match &p.value {
            FdtValue::Empty => fdt.property_null(name)?,
            FdtValue::U32(v) => fdt.property_u32(name, *v)?,
            FdtValue::Cells(v) => fdt.property_array_u32(name, v)?,
            FdtValue::Str(s) => fdt.property_string(name, s)?,
            FdtValue::Strs(v) => fdt.property_string_list(name, v.iter().map(|s| s.to_string()).collect())?,
            FdtValue::Bytes(b) => fdt.property(name, b)?,
        }
    }
    fdt.end_node(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_has_the_boards_nodes() {
        let board =
            Board { ram: (0x8000_0000, 64 << 20), isa: "rv64im", timebase_hz: 10_000_000, devices: &[] };
        let dtb = build(&board).unwrap();
        assert_eq!(dtb[..4], [0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
        let text = String::from_utf8_lossy(&dtb);
        for s in [
            "memory@80000000",
            "cpu@0",
            "riscv,cpu-intc",
            "sifive,clint0",
            "plic@c000000",
            "sifive,plic-1.0.0",
            "riscv,ndev",
            "test@100000",
            "syscon-poweroff",
        ] {
            assert!(text.contains(s), "{s} missing");
        }
    }
}
