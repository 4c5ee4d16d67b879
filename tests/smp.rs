//! Several harts on their own vCPU threads: four harts add to shared counters with AMOs and
//! LR/SC loops at the same time, and every total is exact (guests/src/smp.c), on vmhost and, where
//! installed, on QEMU with `-smp 4`.

use vm_tests::*;

fn smp_toml(name: &str, extra_machine: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let text = format!(
        "[machine]\nmemory = \"64M\"\n{extra_machine}\n[boot]\nkernel = \"{}\"\n\n[engine]\nplugin = \"interp\"\n{UART}",
        guest("smp").display()
    );
    let toml = dir.join("vm.toml");
    std::fs::write(&toml, text).unwrap();
    toml
}

#[test]
fn four_harts_count_exactly_with_amos_and_lr_sc() {
    let want = std::fs::read_to_string(root().join("guests/expected/smp.out")).unwrap();
    let toml = smp_toml("smp-4", "harts = 4\n");
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(stdout(&out).replace('\r', ""), want, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));

    match qemu() {
        Some(q) => {
            let elf = guest("smp");
            let args = [
                "-machine",
                "virt",
                "-smp",
                "4",
                "-bios",
                "none",
                "-nographic",
                "-kernel",
                elf.to_str().unwrap(),
            ];
            let out = run(&q, &args, &[]);
            assert_eq!(stdout(&out).replace('\r', ""), want, "QEMU: {}", stderr(&out));
        }
        None => eprintln!("skipped the QEMU half: qemu-system-riscv64 is not installed"),
    }
}

#[test]
fn the_device_tree_lists_every_hart_with_its_interrupt_wiring() {
    let toml = smp_toml("smp-dtb", "harts = 3\n");
    let dtb = toml.with_file_name("virt.dtb");
    let out = run(&vmhost(), &["dumpdtb", toml.to_str().unwrap(), dtb.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let Some(dtc) = which("dtc") else {
        eprintln!("skipped: dtc is not installed (scripts/install-deps.sh)");
        return;
    };
    let dts = std::process::Command::new(dtc).args(["-I", "dtb", "-O", "dts"]).arg(&dtb).output().unwrap();
    let dts = String::from_utf8_lossy(&dts.stdout);
    for h in 0..3 {
        assert!(dts.contains(&format!("cpu@{h} {{")), "no cpu@{h}:\n{dts}");
        assert!(dts.contains(&format!("reg = <0x{h:02x}>;")), "{dts}");
    }
    assert!(!dts.contains("cpu@3"), "{dts}");
    // CLINT: soft and timer interrupts of each hart; PLIC: M and S external of each hart.
    assert!(
        dts.contains("interrupts-extended = <0x01 0x03 0x01 0x07 0x11 0x03 0x11 0x07 0x12 0x03 0x12 0x07>;"),
        "{dts}"
    );
    assert!(
        dts.contains("interrupts-extended = <0x01 0x0b 0x01 0x09 0x11 0x0b 0x11 0x09 0x12 0x0b 0x12 0x09>;"),
        "{dts}"
    );
}

#[test]
fn hart_counts_out_of_range_and_the_instruction_clock_with_several_harts_are_refused() {
    for (machine, want) in [
        ("harts = 0\n", "key `machine.harts`: 0 harts; use 1 to 64"),
        ("harts = 65\n", "key `machine.harts`: 65 harts; use 1 to 64"),
        (
            "harts = 2\nclock = \"instructions\"\n",
            "key `machine.clock`: \"instructions\" needs one hart (this machine has 2)",
        ),
    ] {
        let toml = smp_toml("smp-bad", machine);
        let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "{machine}");
        assert!(stderr(&out).contains(want), "{machine}: {}", stderr(&out));
    }
}
