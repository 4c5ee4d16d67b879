//! Debian's OpenSBI (`fw_jump.bin`) boots on vmhost and hands over to Debian's U-Boot
//! (`qemu-riscv64_smode`), which reaches its prompt and answers commands typed on stdin through
//! the serial plugin. Skips with a reason when the packages are not installed
//! (`scripts/install-deps.sh` installs them; `.ci/run` runs it).

use std::path::Path;
use vm_tests::*;

const FW_JUMP: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
const UBOOT: &str = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin";
const PROMPT: &str = "=> ";

/// Boots the README's U-Boot machine with `harts` harts and drives U-Boot's prompt.
fn boot_u_boot(harts: u32) {
    if !Path::new(FW_JUMP).exists() || !Path::new(UBOOT).exists() {
        eprintln!("skipped: Debian's opensbi and u-boot-qemu are not installed (scripts/install-deps.sh)");
        return;
    }
    // The machine the README boots U-Boot with, with `harts` harts.
    let text = std::fs::read_to_string(root().join("examples/u-boot.toml")).unwrap();
    assert!(text.contains(FW_JUMP) && text.contains(UBOOT), "{text}");
    let text = text.replace("memory = \"256M\"", &format!("memory = \"256M\"\nharts = {harts}"));
    let toml = scratch(&format!("uboot-{harts}")).join("vm.toml");
    std::fs::write(&toml, text).unwrap();
    let mut c = Console::vmhost(&toml);

    let banner = c.wait_for("U-Boot 20");
    assert!(banner.contains("OpenSBI v"), "{banner}");
    let count = format!("Platform HART Count       : {harts}");
    for line in [
        "Platform Console Device   : uart8250",
        &count,
        "Boot HART Base ISA        : rv64imafdc",
        "Domain0 Next Address      : 0x0000000080200000",
        "Domain0 Next Mode         : S-mode",
    ] {
        assert!(banner.contains(line), "missing {line:?} in:\n{banner}");
    }
    let boot = c.wait_for("Hit any key to stop autoboot");
    assert!(boot.contains("CPU:   rv64imafdc_zicsr_zifencei"), "{boot}");
    assert!(boot.contains("DRAM:  256 MiB"), "{boot}");
    c.type_line("");
    c.wait_for(PROMPT);

    let version = c.command("version", PROMPT);
    assert!(version.starts_with("U-Boot 20"), "{version}");
    let bdinfo = c.command("bdinfo", PROMPT);
    assert!(bdinfo.contains("-> start    = 0x0000000080000000"), "{bdinfo}");
    assert!(bdinfo.contains("-> size     = 0x0000000010000000"), "{bdinfo}");
    let cpus = c.command("fdt print /cpus", PROMPT);
    assert!(cpus.contains("riscv,isa = \"rv64imafdc_zicsr_zifencei\""), "{cpus}");
    assert!(cpus.contains("mmu-type = \"riscv,sv48\""), "{cpus}");
    assert!(cpus.contains("timebase-frequency = <0x00989680>"), "{cpus}");
    for h in 0..harts {
        assert!(cpus.contains(&format!("cpu@{h} {{")), "no cpu@{h} in:\n{cpus}");
    }
    assert!(!cpus.contains(&format!("cpu@{harts} {{")), "{cpus}");

    // U-Boot powers off through SBI's system reset, which OpenSBI does with the test device.
    c.type_line("poweroff");
    let out = wait_with_timeout(c.into_child(), "vmhost running U-Boot");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn opensbi_hands_over_to_u_boot_which_answers_commands_on_the_serial_console() {
    boot_u_boot(1);
}

#[test]
fn the_same_with_four_harts() {
    boot_u_boot(4);
}
