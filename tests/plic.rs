//! The PLIC seen from outside: the `plic` guest's checks on vmhost, the device tree that wires
//! each device's line to it, and the lines it has no source for.

use vm_tests::*;

fn dts(toml: &std::path::Path, dir: &std::path::Path) -> Option<(String, String)> {
    let dtb = dir.join("virt.dtb");
    let out = run(&vmhost(), &["dumpdtb", toml.to_str().unwrap(), dtb.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let Ok(d) = std::process::Command::new("dtc").args(["-I", "dtb", "-O", "dts"]).arg(&dtb).output() else {
        eprintln!("skipped the decompiled check: dtc is not installed (scripts/install-deps.sh)");
        return None;
    };
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    Some((String::from_utf8_lossy(&d.stdout).into_owned(), String::from_utf8_lossy(&d.stderr).into_owned()))
}

/// The node called `name` in decompiled `dts`, up to its closing brace.
fn node<'a>(dts: &'a str, name: &str) -> &'a str {
    let start = dts.find(&format!("{name} {{")).unwrap_or_else(|| panic!("no node {name}:\n{dts}"));
    let len = dts[start..].find("};").expect("node end");
    &dts[start..start + len]
}

#[test]
fn the_plic_guest_passes_every_check_on_vmhost() {
    let dir = scratch("plic-guest");
    let toml = write_vm_toml(&dir, &guest("plic"), "interp", UART);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    let expected = std::fs::read_to_string(root().join("guests/expected/plic.out")).unwrap();
    assert_eq!(stdout(&out).replace('\r', ""), expected, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_device_tree_has_the_plic_and_wires_the_uart_to_it() {
    let dir = scratch("plic-dtb");
    let Some((dts, warnings)) = dts(&root().join("vm.toml"), &dir) else { return };
    assert_eq!(warnings, "", "dtc warnings");
    let plic = node(&dts, "plic@c000000");
    for line in [
        "#address-cells = <0x00>;",
        "#interrupt-cells = <0x01>;",
        "compatible = \"sifive,plic-1.0.0\\0riscv,plic0\";",
        "interrupt-controller;",
        "interrupts-extended = <0x01 0x0b 0x01 0x09>;",
        "reg = <0x00 0xc000000 0x00 0x600000>;",
        "riscv,ndev = <0x5f>;",
        "phandle = <0x03>;",
    ] {
        assert!(plic.contains(line), "missing {line}:\n{plic}");
    }
    let intc = node(&dts, "interrupt-controller");
    assert!(
        intc.contains("compatible = \"riscv,cpu-intc\";") && intc.contains("phandle = <0x01>;"),
        "{intc}"
    );
    let uart = node(&dts, "serial@10000000");
    assert!(uart.contains("interrupts = <0x0a>;") && uart.contains("interrupt-parent = <0x03>;"), "{uart}");
}

#[test]
fn a_device_without_a_line_gets_no_interrupt_properties() {
    let dir = scratch("plic-dtb-no-irq");
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &UART.replace("irq = 10\n", ""));
    let Some((dts, warnings)) = dts(&toml, &dir) else { return };
    assert_eq!(warnings, "", "dtc warnings");
    assert!(!node(&dts, "serial@10000000").contains("interrupt"), "{dts}");
}

#[test]
fn a_line_the_plic_has_no_source_for_is_refused() {
    for irq in [96, 100, 127] {
        let dir = scratch(&format!("plic-irq-{irq}"));
        let toml = write_vm_toml(
            &dir,
            &guest("hello"),
            "interp",
            &UART.replace("irq = 10", &format!("irq = {irq}")),
        );
        let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "irq {irq}: {}", stderr(&out));
        let want = format!(
            "key `device.irq` of device 'uart0': line {irq} has no PLIC source (the PLIC has sources 1 to 95)"
        );
        assert!(stderr(&out).contains(&want), "irq {irq}: want `{want}` in:\n{}", stderr(&out));
        assert!(stderr(&out).contains(toml.to_str().unwrap()), "names the file: {}", stderr(&out));
    }
    // The last source is usable.
    let dir = scratch("plic-irq-95");
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &UART.replace("irq = 10", "irq = 95"));
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Makes every node a plugin builds carry its own interrupt properties.
fn own_interrupt_props(api: &std::path::Path) {
    patch_file(
        &api.join("src/device.rs"),
        "            props: RVec::new(),\n",
        "            props: vec![\n                FdtProp { name: \"interrupts\".into(), value: FdtValue::U32(99) },\n                \
         FdtProp { name: \"interrupt-parent\".into(), value: FdtValue::U32(77) },\n            ]\n            .into(),\n",
    );
}

#[test]
fn a_plugins_own_interrupt_properties_give_way_to_the_hosts() {
    let so =
        build_out_of_tree("scratch-own-interrupts", "examples/scratch-device", Some(own_interrupt_props));
    let dir = scratch("plic-dtb-plugin-props");
    let dev = format!(
        "{UART}\n[[device]]\nid = \"s0\"\nplugin = \"{}\"\nbase = 0x1000_2000\nirq = 11\n",
        so.display()
    );
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let Some((dts, warnings)) = dts(&toml, &dir) else { return };
    assert_eq!(warnings, "", "dtc warnings");
    let n = node(&dts, "scratch@10002000");
    assert_eq!(n.matches("interrupts = ").count(), 1, "{n}");
    assert!(n.contains("interrupts = <0x0b>;") && n.contains("interrupt-parent = <0x03>;"), "{n}");
}
