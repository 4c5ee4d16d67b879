//! Real guests on vmhost, end to end: output on the console and the guest's exit code.

use vm_tests::*;

#[test]
fn default_vm_toml_boots_with_builtin_plugins() {
    let exe = lone_vmhost("boot-builtin");
    let out = run(&exe, &["run", root().join("vm.toml").to_str().unwrap()], &[("RUST_LOG", "info")]);
    assert_eq!(stdout(&out).replace('\r', ""), "Hello from vmhost guest!\nhart 0\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("engine: plugin 'interp' 0.1.0 (built-in)"), "{log}");
    assert!(log.contains("device 'uart0': plugin 'serial' 0.1.0 (built-in)"), "{log}");
}

#[test]
fn default_vm_toml_boots_with_so_plugins_next_to_the_binary() {
    let out = run(&vmhost(), &["run", root().join("vm.toml").to_str().unwrap()], &[("RUST_LOG", "info")]);
    assert_eq!(stdout(&out).replace('\r', ""), "Hello from vmhost guest!\nhart 0\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    let log = stderr(&out);
    let so = build_dir().join("libvmhost_interp.so");
    assert!(log.contains(&format!("engine: plugin 'interp' 0.1.0 ({})", so.display())), "{log}");
    let so = build_dir().join("libvmhost_serial.so");
    assert!(log.contains(&format!("device 'uart0': plugin 'serial' 0.1.0 ({})", so.display())), "{log}");
}

#[test]
fn plugins_are_found_through_vmhost_plugin_path() {
    let exe = lone_vmhost("boot-env-path");
    let dir = exe.parent().unwrap().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["interp", "serial"] {
        let f = format!("libvmhost_{p}.so");
        std::fs::copy(build_dir().join(&f), dir.join(&f)).unwrap();
    }
    let env = [("RUST_LOG", "info"), ("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())];
    let out = run(&exe, &["run", root().join("vm.toml").to_str().unwrap()], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let so = dir.join("libvmhost_interp.so");
    assert!(
        stderr(&out).contains(&format!("engine: plugin 'interp' 0.1.0 ({})", so.display())),
        "{}",
        stderr(&out)
    );
}

fn boot(name: &str, guest_name: &str, engine_config: &str) -> std::process::Output {
    let dir = scratch(name);
    let toml = write_vm_toml(&dir, &guest(guest_name), "interp", &format!("{engine_config}{UART}"));
    run(&vmhost(), &["run", toml.to_str().unwrap()], &[])
}

#[test]
fn exit_code_is_the_guests() {
    let out = boot("boot-exitcode", "exitcode", "");
    assert_eq!(stdout(&out).replace('\r', ""), "exiting with code 3\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn isa_edge_cases_pass_on_interp() {
    let out = boot("boot-isa", "isa", "");
    let text = stdout(&out);
    assert!(text.contains("isa: 152 checks passed"), "{text}\n{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

/// The privileged-architecture guest (M, S and U: delegation, xRET, trap CSRs, illegal accesses,
/// counter enables, S interrupts) prints what QEMU printed for it, recorded in guests/expected.
#[test]
fn privileged_guest_matches_the_output_recorded_from_qemu() {
    let out = boot("boot-priv", "priv", "");
    let want = std::fs::read_to_string(root().join("guests/expected/priv.out")).unwrap();
    assert_eq!(stdout(&out).replace('\r', ""), want, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn timer_and_software_interrupts_wake_wfi() {
    let out = boot("boot-timer", "timer", "");
    assert_eq!(
        stdout(&out).replace('\r', ""),
        "timer: 5 ticks, 1 software interrupt\ntimer: OK\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn async_engine_runs_the_guest_too() {
    let out = boot("boot-async", "hello", "[engine.config]\nasync = true\n");
    assert_eq!(stdout(&out).replace('\r', ""), "Hello from vmhost guest!\nhart 0\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn cpu_bound_benchmark_checks_its_own_answers() {
    let out = boot("boot-bench", "bench", "");
    let text = stdout(&out);
    assert!(text.contains("bench: sieve: 78498 primes below 1000000"), "{text}");
    assert!(text.contains("bench: OK"), "{text}\n{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn delegated_trap_without_an_s_handler_names_stvec() {
    // A raw image: let U reach memory (PMP entry 0: everything, RWX), delegate U ecalls to S,
    // mret into U (MPP is U at reset), ecall; stvec is 0.
    let words: [u32; 11] = [
        0xfff0_0293, // li t0, -1
        0x3b02_9073, // csrw pmpaddr0, t0
        0x01f0_0293, // li t0, 0x1f (NAPOT, RWX)
        0x3a02_9073, // csrw pmpcfg0, t0
        0x1000_0293, // li t0, 0x100
        0x3022_9073, // csrw medeleg, t0
        0x0000_0297, // auipc t0, 0
        0x0102_8293, // addi t0, t0, 16 (the ecall)
        0x3412_9073, // csrw mepc, t0
        0x3020_0073, // mret
        0x0000_0073, // ecall
    ];
    let dir = scratch("boot-raw-stvec");
    let image = dir.join("raw.bin");
    std::fs::write(&image, words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let toml = write_vm_toml(&dir, &image, "interp", UART);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "vmhost: error: guest exception EcallU at pc 0x80000028 (stval 0x0) with no trap handler: stvec 0x0 is \
         not in RAM"
    );
}

#[test]
fn guest_fault_without_a_trap_handler_stops_with_a_clear_error() {
    // A raw image (not ELF) loaded at the start of RAM: one all-zero word, an illegal instruction,
    // and mtvec still 0 at reset.
    let dir = scratch("boot-raw-fault");
    let image = dir.join("raw.bin");
    std::fs::write(&image, [0u8; 4]).unwrap();
    let toml = write_vm_toml(&dir, &image, "interp", UART);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "vmhost: error: guest exception Illegal at pc 0x80000000 (mtval 0x0) with no trap handler: \
         mtvec 0x0 is not in RAM"
    );
}

/// Masks the counter values, which differ between machines and runs.
fn comparable(console: &str) -> String {
    console
        .replace('\r', "")
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k @ ("instret" | "cycles" | "time"), _)) => format!("{k}=N"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Guest `name` on QEMU and on vmhost: (QEMU's run, vmhost's run).
fn on_qemu_and_vmhost(qemu: &std::path::Path, name: &str) -> (std::process::Output, std::process::Output) {
    let q = std::process::Command::new(qemu)
        .args(["-machine", "virt", "-bios", "none", "-nographic", "-kernel"])
        .arg(guest(name))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let q = wait_with_timeout(q, &format!("qemu on {name}"));
    (q, boot(&format!("boot-vs-qemu-{name}"), name, ""))
}

#[test]
fn guests_behave_as_on_qemu() {
    let Some(qemu) = qemu() else { return };
    for name in [
        "hello",
        "exitcode",
        "isa",
        "timer",
        "bench",
        "mmio",
        "irq_timer",
        "irq_soft",
        "irq_wfi",
        "irq_uart",
        "plic",
        "priv",
    ] {
        let (q, v) = on_qemu_and_vmhost(&qemu, name);
        assert_eq!(comparable(&stdout(&v)), comparable(&stdout(&q)), "{name}: same console output");
        assert_eq!(v.status.code(), q.status.code(), "{name}: same exit code");
    }
}

#[test]
fn device_tree_describes_the_machine_and_reaches_the_guest_in_a1() {
    let dir = scratch("boot-dtb");
    let dtb = dir.join("virt.dtb");
    let out =
        run(&vmhost(), &["dumpdtb", root().join("vm.toml").to_str().unwrap(), dtb.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let blob = std::fs::read(&dtb).unwrap();
    assert_eq!(blob[..4], [0xd0, 0x0d, 0xfe, 0xed]);

    // The guest gets the same blob, with its address in a1.
    let config = vm_host::VmConfig::load(&root().join("vm.toml")).unwrap();
    let vm = vm_host::Vm::new(&config).unwrap();
    let a1 = vm.cpu().x[11];
    assert_eq!(a1, vm.machine().dtb_addr);
    let mut in_ram = vec![0u8; blob.len()];
    vm.machine().ram.view().read_bytes(a1, &mut in_ram).unwrap();
    assert_eq!(in_ram, blob);

    let Ok(dts) = std::process::Command::new("dtc").args(["-I", "dtb", "-O", "dts"]).arg(&dtb).output()
    else {
        eprintln!("skipped the decompiled check: dtc is not installed (scripts/install-deps.sh)");
        return;
    };
    assert!(dts.status.success());
    assert!(dts.stderr.is_empty(), "dtc warnings: {}", String::from_utf8_lossy(&dts.stderr));
    let dts = String::from_utf8_lossy(&dts.stdout);
    for expected in [
        "stdout-path = \"/soc/serial@10000000\";",
        "reg = <0x00 0x80000000 0x00 0x8000000>;",
        "compatible = \"ns16550a\";",
        "reg = <0x00 0x10000000 0x00 0x100>;",
        &format!("riscv,isa = \"{}\";", vm_host::machine::ISA),
        "timebase-frequency = <0x989680>;",
        "mmu-type = \"riscv,sv48\";",
        "compatible = \"sifive,clint0\\0riscv,clint0\";",
        "compatible = \"syscon-poweroff\";",
    ] {
        assert!(dts.contains(expected), "missing {expected}:\n{dts}");
    }
}

#[test]
fn serial_output_file_is_relative_to_vm_toml() {
    let dir = scratch("boot-relative-output");
    let dev = format!("{UART}[device.config]\noutput = {{ file = \"console.log\" }}\n");
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "the console went to the file");
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert_eq!(console.replace('\r', ""), "Hello from vmhost guest!\nhart 0\n");
}
