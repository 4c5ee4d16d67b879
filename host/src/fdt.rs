//! The flattened device tree handed to the guest in `a1`, describing the machine as QEMU's `virt`
//! board does: memory, the hart, the board's fixed devices (syscon, CLINT, PLIC), and each device
//! plugin's own node, with `interrupts` and `interrupt-parent` (the PLIC) when it has a line.
//!
//! Built with rust-vmm's `vm-fdt`. A user's own blob (`[boot] dtb`) is read back into a tree by
//! [`edit_chosen`] so `/chosen` can be updated as QEMU updates a `-dtb`, then written again.

use crate::devices::{clint, plic, syscon};
use crate::machine::DeviceSlot;
use vm_fdt::{FdtWriter, FdtWriterResult};
use vm_plugin_api::{DeviceType, FdtValue};

/// What the device tree describes.
pub struct Board<'a> {
    /// RAM base and size.
    pub ram: (u64, u64),
    /// `riscv,isa` of every hart.
    pub isa: &'a str,
    /// Harts (0 to `harts - 1`).
    pub harts: u32,
    /// `mtime` frequency.
    pub timebase_hz: u32,
    /// Device plugins on the bus.
    pub devices: &'a [DeviceSlot],
    /// What goes into `/chosen` besides `stdout-path`.
    pub chosen: Chosen<'a>,
}

/// The boot properties of `/chosen`, as QEMU's `virt` board writes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chosen<'a> {
    /// `bootargs`, written when not empty (QEMU skips an empty `-append`).
    pub bootargs: Option<&'a str>,
    /// `linux,initrd-start` and `linux,initrd-end` (one past the last byte).
    pub initrd: Option<(u64, u64)>,
}

impl Chosen<'_> {
    /// (name, value) of each property to set, in the order QEMU sets them.
    fn properties(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut props = Vec::new();
        if let Some(args) = self.bootargs.filter(|a| !a.is_empty()) {
            props.push(("bootargs", [args.as_bytes(), &[0]].concat()));
        }
        if let Some((start, end)) = self.initrd {
            props.push(("linux,initrd-start", address_cells(start)));
            props.push(("linux,initrd-end", address_cells(end)));
        }
        props
    }
}

/// QEMU 7.2 writes the initrd range with `qemu_fdt_setprop_cell`: one 32-bit cell. An address
/// above 4 GiB would be cut short that way, so it takes two cells (Linux reads either).
fn address_cells(v: u64) -> Vec<u8> {
    match u32::try_from(v) {
        Ok(v) => v.to_be_bytes().to_vec(),
        Err(_) => v.to_be_bytes().to_vec(),
    }
}

/// Hart 0's interrupt controller; hart h > 0 has [`FIRST_OTHER_INTC`] + h.
const PHANDLE_CPU_INTC: u32 = 1;
const FIRST_OTHER_INTC: u32 = 0x10;
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
    for (name, value) in board.chosen.properties() {
        fdt.property(name, &value)?;
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
    let intcs: Vec<u32> = (0..board.harts.max(1)).map(intc_phandle).collect();
    for (h, &phandle) in intcs.iter().enumerate() {
        let cpu = fdt.begin_node(&format!("cpu@{h}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_u32("reg", h as u32)?;
        fdt.property_string("status", "okay")?;
        fdt.property_string("compatible", "riscv")?;
        fdt.property_string("riscv,isa", board.isa)?;
        // The largest translation mode `satp` takes; U-Boot refuses a CPU node without one, and
        // Linux reads it to pick its paging mode.
        fdt.property_string("mmu-type", "riscv,sv48")?;
        let intc = fdt.begin_node("interrupt-controller")?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string("compatible", "riscv,cpu-intc")?;
        fdt.property_phandle(phandle)?;
        fdt.end_node(intc)?;
        fdt.end_node(cpu)?;
    }
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
    let clint_irqs: Vec<u32> = intcs.iter().flat_map(|&p| [p, IRQ_M_SOFT, p, IRQ_M_TIMER]).collect();
    fdt.property_array_u32("interrupts-extended", &clint_irqs)?;
    fdt.end_node(clint)?;

    plic_node(&mut fdt, &intcs)?;

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

/// The phandle of hart `h`'s interrupt controller.
fn intc_phandle(h: u32) -> u32 {
    if h == 0 { PHANDLE_CPU_INTC } else { FIRST_OTHER_INTC + h }
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

/// The magic number every device tree blob starts with.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Deeper nesting than any real tree; bounds the writer's recursion on a hostile blob.
const MAX_DEPTH: usize = 64;

/// A node read back from a blob.
#[derive(Debug, Default)]
struct Node {
    name: String,
    props: Vec<(String, Vec<u8>)>,
    children: Vec<Node>,
}

/// A blob read back: its memory reservations, boot hart and tree.
struct Tree {
    reserved: Vec<(u64, u64)>,
    boot_cpuid: u32,
    root: Node,
}

/// Checks that `blob` is a device tree blob vmhost can hand over: the FDT magic, a header whose
/// sizes and offsets lie inside the blob, and a structure block that parses to one root node.
pub fn check(blob: &[u8]) -> Result<(), String> {
    parse(blob).map(|_| ())
}

/// `blob` with the properties of `chosen` set in its `/chosen` node, as QEMU 7.2 edits a `-dtb`
/// (replacing a property already there, adding the others). Memory reservations, the boot hart
/// and every other node and property are kept. Like QEMU, refuses a tree without `/chosen`.
/// With nothing to set, the blob is returned unchanged.
pub fn edit_chosen(blob: &[u8], chosen: &Chosen<'_>) -> Result<Vec<u8>, String> {
    let mut tree = parse(blob)?;
    let props = chosen.properties();
    if props.is_empty() {
        return Ok(blob.to_vec());
    }
    let node = tree.root.children.iter_mut().find(|n| n.name == "chosen").ok_or_else(|| {
        "the device tree has no /chosen node for the boot properties (QEMU refuses such a -dtb too); \
         add `chosen { };` to its root"
            .to_string()
    })?;
    for (name, value) in props {
        match node.props.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => node.props.push((name.to_string(), value)),
        }
    }
    write_tree(&tree).map_err(|e| format!("the device tree cannot be written back: {e}"))
}

fn be32(blob: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(blob.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be64(blob: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(blob.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// A NUL-terminated string at `at` in `block`.
fn c_str(block: &[u8], at: usize) -> Option<&str> {
    let rest = block.get(at..)?;
    std::str::from_utf8(&rest[..rest.iter().position(|&b| b == 0)?]).ok()
}

fn parse(blob: &[u8]) -> Result<Tree, String> {
    let bad = |what: &str| format!("not a valid device tree blob: {what}");
    let magic = be32(blob, 0).ok_or_else(|| bad("shorter than its header"))?;
    if magic != FDT_MAGIC {
        return Err(format!(
            "not a device tree blob: it starts with {magic:#010x}, not the FDT magic {FDT_MAGIC:#010x}"
        ));
    }
    let field =
        |i: usize| be32(blob, 4 * i).map(|v| v as usize).ok_or_else(|| bad("shorter than its header"));
    let (total, off_struct, off_strings, off_rsv, version) =
        (field(1)?, field(2)?, field(3)?, field(4)?, field(5)?);
    if total > blob.len() {
        return Err(bad(&format!("its header says {total} bytes, but the file has {}", blob.len())));
    }
    // Version 17 is what dtc, QEMU and vm-fdt write; 16 lacks only the structure size.
    if version < 16 {
        return Err(bad(&format!("version {version}; versions 16 and 17 are supported")));
    }
    let blob = &blob[..total];
    let (size_strings, size_struct) =
        (field(8)?, if version >= 17 { field(9)? } else { total - off_struct.min(total) });
    let block = |off: usize, size: usize, what: &str| {
        off.checked_add(size)
            .and_then(|end| blob.get(off..end))
            .ok_or_else(|| bad(&format!("its {what} block lies outside the blob")))
    };
    let strings = block(off_strings, size_strings, "strings")?;
    let structure = block(off_struct, size_struct, "structure")?;
    let mut reserved = Vec::new();
    let mut at = off_rsv;
    loop {
        let (Some(addr), Some(size)) = (be64(blob, at), be64(blob, at + 8)) else {
            return Err(bad("its memory reservation block runs past the end"));
        };
        if addr == 0 && size == 0 {
            break;
        }
        reserved.push((addr, size));
        at += 16;
    }

    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    let mut at = 0;
    loop {
        let token = be32(structure, at).ok_or_else(|| bad("its structure block ends without FDT_END"))?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name =
                    c_str(structure, at).ok_or_else(|| bad("a node name is not NUL-terminated UTF-8"))?;
                at = (at + name.len() + 1).next_multiple_of(4);
                if root.is_some() {
                    return Err(bad("a second root node"));
                }
                if stack.len() == MAX_DEPTH {
                    return Err(bad(&format!("nodes nested deeper than {MAX_DEPTH}")));
                }
                stack.push(Node { name: name.to_string(), ..Node::default() });
            }
            FDT_END_NODE => {
                let node = stack.pop().ok_or_else(|| bad("an end of node with no node open"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            FDT_PROP => {
                let (Some(len), Some(name_off)) = (be32(structure, at), be32(structure, at + 4)) else {
                    return Err(bad("a property header runs past the structure block"));
                };
                let (len, start) = (len as usize, at + 8);
                let value = start.checked_add(len).and_then(|end| structure.get(start..end));
                let value = value.ok_or_else(|| bad("a property value runs past the structure block"))?;
                let name = c_str(strings, name_off as usize)
                    .ok_or_else(|| bad("a property name lies outside the strings block"))?;
                let node = stack.last_mut().ok_or_else(|| bad("a property outside every node"))?;
                node.props.push((name.to_string(), value.to_vec()));
                at = (start + len).next_multiple_of(4);
            }
            FDT_NOP => {}
            FDT_END if stack.is_empty() => break,
            FDT_END => return Err(bad("FDT_END inside a node")),
            t => return Err(bad(&format!("unknown structure token {t:#x}"))),
        }
    }
    let root = root.ok_or_else(|| bad("no root node"))?;
    Ok(Tree { reserved, boot_cpuid: be32(blob, 28).unwrap_or(0), root })
}

fn write_tree(tree: &Tree) -> FdtWriterResult<Vec<u8>> {
    let reserved: Vec<_> =
        tree.reserved.iter().map(|&(a, s)| vm_fdt::FdtReserveEntry::new(a, s)).collect::<Result<_, _>>()?;
    let mut fdt = FdtWriter::new_with_mem_reserv(&reserved)?;
    fdt.set_boot_cpuid_phys(tree.boot_cpuid);
    write_node(&mut fdt, &tree.root)?;
    fdt.finish()
}

fn write_node(fdt: &mut FdtWriter, node: &Node) -> FdtWriterResult<()> {
    let n = fdt.begin_node(&node.name)?;
    for (name, value) in &node.props {
        fdt.property(name, value)?;
    }
    for child in &node.children {
        write_node(fdt, child)?;
    }
    fdt.end_node(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(chosen: Chosen<'_>) -> Board<'_> {
        Board {
            ram: (0x8000_0000, 64 << 20),
            isa: "rv64im",
            harts: 1,
            timebase_hz: 10_000_000,
            devices: &[],
            chosen,
        }
    }

    #[test]
    fn chosen_gets_bootargs_and_the_initrd_range() {
        let dtb = build(&board(Chosen {
            bootargs: Some("console=ttyS0"),
            initrd: Some((0x8400_0000, 0x8400_1000)),
        }))
        .unwrap();
        let tree = parse(&dtb).unwrap();
        let chosen = tree.root.children.iter().find(|n| n.name == "chosen").unwrap();
        let prop = |k: &str| chosen.props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(prop("bootargs").unwrap(), b"console=ttyS0\0");
        assert_eq!(prop("linux,initrd-start").unwrap(), [0x84, 0, 0, 0]);
        assert_eq!(prop("linux,initrd-end").unwrap(), [0x84, 0, 0x10, 0]);
        // An empty command line is left out, as QEMU leaves out an empty -append.
        let dtb = build(&board(Chosen { bootargs: Some(""), initrd: None })).unwrap();
        assert!(!String::from_utf8_lossy(&dtb).contains("bootargs"));
        assert_eq!(address_cells(0x1_0000_0000), [0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn edit_keeps_the_tree_and_replaces_bootargs() {
        let dtb = build(&board(Chosen { bootargs: Some("old"), initrd: None })).unwrap();
        let edited = edit_chosen(&dtb, &Chosen { bootargs: Some("new"), initrd: Some((1, 2)) }).unwrap();
        let (a, b) = (parse(&dtb).unwrap(), parse(&edited).unwrap());
        assert_eq!(a.root.children.len(), b.root.children.len());
        let text = String::from_utf8_lossy(&edited);
        assert!(text.contains("new") && !text.contains("old") && text.contains("plic@c000000"));
        assert_eq!(edit_chosen(&dtb, &Chosen::default()).unwrap(), dtb, "nothing to set: unchanged");
    }

    /// A version-17 blob with an empty reservation map, this structure block and no strings.
    fn raw_blob(structure: &[u32]) -> Vec<u8> {
        let size = 4 * structure.len() as u32;
        let header = [FDT_MAGIC, 56 + size, 56, 56 + size, 40, 17, 16, 0, 0, size];
        let words = header.iter().chain(&[0, 0, 0, 0]).chain(structure);
        words.flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn hostile_blobs_are_refused() {
        let dtb = build(&board(Chosen::default())).unwrap();
        let err = |b: &[u8]| check(b).unwrap_err();
        assert_eq!(
            err(b"\x7fELF...."),
            "not a device tree blob: it starts with 0x7f454c46, not the FDT magic 0xd00dfeed"
        );
        assert_eq!(err(&dtb[..3]), "not a valid device tree blob: shorter than its header");
        assert!(err(&dtb[..dtb.len() - 1]).contains("its header says"));
        let mut b = dtb.clone();
        b[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // off_dt_struct
        assert!(err(&b).contains("structure block lies outside"), "{}", err(&b));
        let mut b = dtb.clone();
        let off = be32(&dtb, 8).unwrap() as usize;
        b[off..off + 4].copy_from_slice(&0x77u32.to_be_bytes());
        assert_eq!(err(&b), "not a valid device tree blob: unknown structure token 0x77");
        // Deep nesting is bounded, not a stack overflow (vm-fdt writes at most 64 levels).
        let mut tokens: Vec<u32> = (0..=MAX_DEPTH).flat_map(|_| [FDT_BEGIN_NODE, 0]).collect();
        tokens.extend((0..=MAX_DEPTH).map(|_| FDT_END_NODE));
        tokens.push(FDT_END);
        assert!(err(&raw_blob(&tokens)).contains("nested deeper than 64"));
        assert!(err(&raw_blob(&[FDT_BEGIN_NODE, 0, FDT_END])).contains("FDT_END inside a node"));
        assert!(err(&raw_blob(&[FDT_BEGIN_NODE, 0, FDT_PROP, 100, 0])).contains("runs past"));
        assert!(err(&raw_blob(&[FDT_END_NODE, FDT_END])).contains("no node open"));
        assert!(edit_chosen(&dtb, &Chosen { bootargs: Some("x"), initrd: None }).is_ok());
    }

    #[test]
    fn blob_has_the_boards_nodes() {
        let board = board(Chosen::default());
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
