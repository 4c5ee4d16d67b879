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
            "vmhost: error: {}:14:7: key `device.irq`: {irq} is above the highest line, 95 (the PLIC has sources \
             1 to 95)",
            toml.display()
        );
        assert_eq!(stderr(&out).trim_end(), want, "irq {irq}");
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

/// A guest that takes the UART's receive interrupt (IER bit 0) through PLIC source 10, then
/// waits for a byte: in `wfi` if `-DWFI`, else spinning on a flag its handler sets.
const RX_GUEST: &str = r#"
#include "runtime.h"
#define PLIC(off) (*(volatile uint32_t *)(0x0c000000UL + (off)))
#define UART(off) (*(volatile uint8_t *)(UART_BASE + (off)))
static volatile int got = -1;
__attribute__((interrupt("machine"), aligned(4))) static void on_irq(void)
{
    uint32_t id = PLIC(0x200004);
    if (id == 10) {
        got = UART(0);
        UART(1) = 0;
    }
    PLIC(0x200004) = id;
}
int main(void)
{
    __asm__ volatile("csrw mtvec, %0" ::"r"(on_irq));
    PLIC(4 * 10) = 1;
    PLIC(0x2000) = 1u << 10;
    UART(1) = 0x01;
    __asm__ volatile("csrs mie, %0" ::"r"(1u << 11));
    __asm__ volatile("csrs mstatus, %0" ::"r"(1u << 3));
    print("waiting\n");
    while (got < 0) {
#ifdef WFI
        __asm__ volatile("wfi");
#endif
    }
    printf("got %c\n", got);
    return 0;
}
"#;

/// Builds [`RX_GUEST`] with `define`, boots it with stdin as the UART's input and the slice given,
/// sends a byte once it waits, and returns its console output and exit code.
fn rx_through_stdin(name: &str, define: &str, slice: u64) -> Option<(String, Option<i32>)> {
    use std::io::{Read, Write};
    let Some(gcc) = which("riscv64-unknown-elf-gcc") else {
        eprintln!("skipped: riscv64-unknown-elf-gcc is not installed (scripts/install-deps.sh)");
        return None;
    };
    let dir = scratch(name);
    std::fs::write(dir.join("rx.c"), RX_GUEST).unwrap();
    let g = root().join("guests");
    let out = std::process::Command::new(gcc)
        .current_dir(&dir)
        .args(["-march=rv64imc_zicsr", "-mabi=lp64", "-mcmodel=medany", "-O2", "-ffreestanding"])
        .args(["-fno-builtin", "-nostdlib", "-nostartfiles", "-static", "-Wl,--no-warn-rwx-segments", define])
        .arg("-T")
        .arg(g.join("link.ld"))
        .arg("-I")
        .arg(g.join("src"))
        .args([g.join("src/start.S"), g.join("src/runtime.c")])
        .args(["rx.c", "-o", "rx.elf"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dev = format!("{UART}[device.config]\ninput = \"stdin\"\n");
    let toml = write_vm_toml(&dir, &dir.join("rx.elf"), "interp", &dev);
    let text =
        std::fs::read_to_string(&toml).unwrap().replace("[boot]", &format!("slice = {slice}\n\n[boot]"));
    std::fs::write(&toml, text).unwrap();

    let mut child = std::process::Command::new(vmhost())
        .args(["run", toml.to_str().unwrap()])
        .env_remove("VMHOST_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut console = child.stdout.take().unwrap();
    let (waiting_tx, waiting_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut byte = [0u8];
        while console.read(&mut byte).unwrap_or(0) == 1 {
            text.push(byte[0]);
            if text.ends_with(b"waiting\r\n") {
                let _ = waiting_tx.send(());
            }
        }
        String::from_utf8_lossy(&text).replace('\r', "")
    });
    if waiting_rx.recv_timeout(RUN_TIMEOUT).is_err() {
        let _ = child.kill();
        panic!("{name}: the guest never said it was waiting");
    }
    // Not needed for the result: gives the hart time to be in `wfi` (or deep in its spin loop)
    // when the byte comes, so the line rises on the stdin thread while the hart waits or runs.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    let out = wait_with_timeout(child, name);
    drop(stdin);
    let console = reader.join().unwrap();
    Some((console + &stdout(&out), out.status.code()))
}

#[test]
fn a_line_raised_on_a_device_thread_wakes_a_hart_in_wfi() {
    let Some((console, code)) = rx_through_stdin("plic-rx-wfi", "-DWFI", 1 << 22) else { return };
    assert_eq!(console, "waiting\ngot x\n");
    assert_eq!(code, Some(0));
}

#[test]
fn a_line_raised_on_a_device_thread_stops_the_running_engine() {
    // A slice the spin loop would take hours to use up: only the PLIC's exit request ends it.
    let Some((console, code)) = rx_through_stdin("plic-rx-spin", "-DSPIN", 1 << 50) else { return };
    assert_eq!(console, "waiting\ngot x\n");
    assert_eq!(code, Some(0));
}
