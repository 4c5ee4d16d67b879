//! The boot protocol of QEMU 7.2's `virt` board: `[boot] firmware`, `kernel`, `initrd`, `cmdline`
//! and `dtb`, placed where QEMU places them, the registers and `fw_dynamic` information the first
//! instruction sees, `/chosen`, and every way a boot configuration can be wrong. Where QEMU is
//! installed, the same files run on both and must print the same thing.

use std::path::{Path, PathBuf};
use vm_tests::*;

/// A raw firmware (position independent, RV64I): prints a0, a1, a2 and the six 64-bit words at
/// a2 (the `fw_dynamic_info`) as 16 hex digits each on the UART, then powers off. Assembled from:
///
/// ```text
///     mv s0, a0; mv s1, a1; mv s2, a2; li s3, 0x10000000
///     mv a0, s0; jal hex; mv a0, s1; jal hex; mv a0, s2; jal hex
///     li s4, 0
/// 1:  slli t0, s4, 3; add t0, s2, t0; ld a0, 0(t0); jal hex
///     addi s4, s4, 1; li t0, 6; blt s4, t0, 1b
///     li t0, 0x100000; li t1, 0x5555; sw t1, 0(t0)
/// 2:  j 2b
/// hex: li t0, 60
/// 3:  srl t1, a0, t0; andi t1, t1, 15; li t2, 10; blt t1, t2, 4f; addi t1, t1, 39
/// 4:  addi t1, t1, 48; sb t1, 0(s3); addi t0, t0, -4; bgez t0, 3b
///     li t1, 10; sb t1, 0(s3); ret
/// ```
const REPORT: [u32; 36] = [
    0x00050413, 0x00058493, 0x00060913, 0x100009b7, 0x00040513, 0x048000ef, 0x00048513, 0x040000ef,
    0x00090513, 0x038000ef, 0x00000a13, 0x003a1293, 0x005902b3, 0x0002b503, 0x024000ef, 0x001a0a13,
    0x00600293, 0xfe5a44e3, 0x001002b7, 0x00005337, 0x5553031b, 0x0062a023, 0x0000006f, 0x03c00293,
    0x00555333, 0x00f37313, 0x00a00393, 0x00734463, 0x02730313, 0x03030313, 0x00698023, 0xffc28293,
    0xfe02d0e3, 0x00a00313, 0x00698023, 0x00008067,
];

const RAM: u64 = 0x8000_0000;
const CMDLINE: &str = "console=ttyS0 root=/dev/ram";

fn report_bytes() -> Vec<u8> {
    REPORT.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Bytes that differ from run to run of the generator but are fixed per seed.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = scratch(name);
        std::fs::write(dir.join("fw.bin"), report_bytes()).unwrap();
        std::fs::write(dir.join("kernel.bin"), pattern(4096, 1)).unwrap();
        std::fs::write(dir.join("initrd.img"), pattern(10000, 2)).unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes vm.toml with `memory` and the `[boot]` lines `boot`; returns its path.
    fn toml(&self, memory: &str, boot: &str) -> PathBuf {
        let text = format!(
            "[machine]\nmemory = \"{memory}\"\n\n[boot]\n{boot}\n[engine]\nplugin = \"interp\"\n{UART}"
        );
        let path = self.dir.join("vm.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn vm(&self, memory: &str, boot: &str) -> vm_host::Vm {
        let config = vm_host::VmConfig::load(&self.toml(memory, boot)).unwrap();
        vm_host::Vm::new(&config).unwrap()
    }

    /// The error `Vm::new` gives, with the vm.toml path replaced by `vm.toml`.
    fn refused(&self, memory: &str, boot: &str) -> String {
        let toml = self.toml(memory, boot);
        let err = match vm_host::VmConfig::load(&toml) {
            Err(e) => e.to_string(),
            Ok(c) => match vm_host::Vm::new(&c) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("booted: {boot}"),
            },
        };
        err.replace(&toml.display().to_string(), "vm.toml").replace(&self.dir.display().to_string(), "DIR")
    }
}

const FULL: &str = "firmware = \"fw.bin\"\nkernel = \"kernel.bin\"\ninitrd = \"initrd.img\"\n\
                    cmdline = \"console=ttyS0 root=/dev/ram\"\n";

fn ram_bytes(vm: &vm_host::Vm, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    vm.machine().ram.view().read_bytes(addr, &mut buf).expect("inside RAM");
    buf
}

/// The /chosen node of `dtb` as dtc prints it, without the rng-seed QEMU adds (vmhost does
/// not); `None` when dtc is not installed.
fn chosen(dtb: &[u8], dir: &Path) -> Option<Vec<String>> {
    let file = dir.join("chosen.dtb");
    std::fs::write(&file, dtb).unwrap();
    let out = std::process::Command::new("dtc").args(["-I", "dtb", "-O", "dts"]).arg(&file).output().ok()?;
    assert!(out.status.success(), "dtc: {}", String::from_utf8_lossy(&out.stderr));
    let dts = String::from_utf8_lossy(&out.stdout).into_owned();
    let body = dts.split("chosen {").nth(1).expect("a /chosen node").split("};").next().unwrap().to_string();
    let mut props: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("rng-seed"))
        .map(String::from)
        .collect();
    props.sort();
    Some(props)
}

/// QEMU 7.2's numbers for a firmware under 2 MiB, a raw kernel and an initrd, by RAM size:
/// (memory, initrd start, device tree address) — riscv_calc_kernel_start_addr puts the kernel
/// at 0x8020_0000, riscv_load_initrd the initrd at kernel + min(RAM / 2, 128 MiB), riscv_load_fdt
/// the tree at align_down(min(RAM end, 3 GiB) - 1 MiB, 2 MiB).
const QEMU_LAYOUT: [(&str, u64, u64); 4] = [
    ("64M", 0x8220_0000, 0x83e0_0000),
    ("128M", 0x8420_0000, 0x87e0_0000),
    ("256M", 0x8820_0000, 0x8fe0_0000),
    ("1G", 0x8820_0000, 0xbfe0_0000),
];

#[test]
fn firmware_kernel_initrd_and_cmdline_are_placed_as_qemu_places_them() {
    let f = Files::new("proto-layout");
    for (memory, initrd, fdt) in QEMU_LAYOUT {
        let vm = f.vm(memory, FULL);
        let cpu = vm.cpu();
        assert_eq!(cpu.pc, RAM, "{memory}: the firmware runs first, from RAM base");
        assert_eq!([cpu.x[10], cpu.x[11], cpu.x[12]], [0, fdt, 0x1028], "{memory}: a0 hart, a1 fdt, a2 info");
        let m = vm.machine();
        assert_eq!(m.dtb_addr, fdt);
        assert_eq!(m.layout.next_addr, 0x8020_0000, "{memory}");
        assert_eq!(m.layout.initrd, Some((initrd, initrd + 10000)), "{memory}");
        assert_eq!(ram_bytes(&vm, RAM, 144), report_bytes(), "{memory}: firmware at RAM base");
        assert_eq!(ram_bytes(&vm, 0x8020_0000, 4096), pattern(4096, 1), "{memory}: kernel at 2 MiB");
        assert_eq!(ram_bytes(&vm, initrd, 10000), pattern(10000, 2), "{memory}: initrd");
        assert_eq!(ram_bytes(&vm, fdt, m.dtb.len()), m.dtb, "{memory}: the tree a1 points at");
        if let Some(props) = chosen(&m.dtb, &f.dir) {
            let mut want = vec![
                format!("bootargs = \"{CMDLINE}\";"),
                format!("linux,initrd-end = <{:#x}>;", initrd + 10000),
                format!("linux,initrd-start = <{initrd:#x}>;"),
                "stdout-path = \"/soc/serial@10000000\";".to_string(),
            ];
            want.sort();
            assert_eq!(props, want, "{memory}");
        }
    }
}

#[test]
fn the_first_instruction_finds_the_fw_dynamic_info_at_a2() {
    let f = Files::new("proto-fw-dynamic");
    let out = run(&vmhost(), &["run", f.toml("128M", FULL).to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let words: Vec<u64> =
        stdout(&out).lines().map(|l| u64::from_str_radix(l.trim(), 16).expect("a hex word")).collect();
    // a0, a1, a2, then magic "OSBI", version 2, next_addr, next_mode S, options, boot_hart.
    assert_eq!(words, [0, 0x87e0_0000, 0x1028, 0x4942_534f, 2, 0x8020_0000, 1, 0, 0]);
}

/// The same files on QEMU and vmhost print the same registers and `fw_dynamic_info`, and give the
/// same /chosen, for each RAM size and for the -bios none and firmware-only cases.
#[test]
fn registers_info_and_chosen_match_qemu() {
    let Some(qemu) = qemu() else { return };
    let f = Files::new("proto-vs-qemu");
    let (fw, kernel, initrd) = (f.path("fw.bin"), f.path("kernel.bin"), f.path("initrd.img"));
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let mut cases: Vec<(&str, String, Vec<String>)> = QEMU_LAYOUT
        .iter()
        .map(|(m, ..)| {
            let args = ["-bios", &p(&fw), "-kernel", &p(&kernel), "-initrd", &p(&initrd), "-append", CMDLINE];
            (*m, FULL.to_string(), args.map(String::from).to_vec())
        })
        .collect();
    // -bios none: the report program is the kernel, entered in M-mode; the initrd follows it.
    cases.push((
        "128M",
        "kernel = \"fw.bin\"\ninitrd = \"initrd.img\"\n".into(),
        ["-bios", "none", "-kernel", &p(&fw), "-initrd", &p(&initrd)].map(String::from).to_vec(),
    ));
    // Firmware alone: next_addr is 0, as QEMU has it without -kernel.
    cases.push(("64M", "firmware = \"fw.bin\"\n".into(), ["-bios", &p(&fw)].map(String::from).to_vec()));
    for (memory, boot, args) in cases {
        let qemu_run = |extra: &[String]| {
            let child = std::process::Command::new(&qemu)
                .args(["-machine", "virt", "-nographic", "-m", memory])
                .args(&args)
                .args(extra)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            wait_with_timeout(child, &format!("qemu {}", args.join(" ")))
        };
        let q = qemu_run(&[]);
        let toml = f.toml(memory, &boot);
        let v = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
        assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
        assert_eq!(stdout(&v), stdout(&q).replace('\r', ""), "{memory} {boot}: registers and info");

        let qdtb = f.path("qemu.dtb");
        let dumped = qemu_run(&["-machine".into(), format!("virt,dumpdtb={}", qdtb.display())]);
        assert!(dumped.status.success(), "{}", stderr(&dumped));
        let ours = vm_host::Vm::new(&vm_host::VmConfig::load(&toml).unwrap()).unwrap().machine().dtb.clone();
        let (Some(theirs), Some(ours)) =
            (chosen(&std::fs::read(&qdtb).unwrap(), &f.dir), chosen(&ours, &f.dir))
        else {
            eprintln!("skipped the /chosen comparison: dtc is not installed");
            continue;
        };
        assert_eq!(ours, theirs, "{memory} {boot}: /chosen");
    }
}

/// A minimal RV64 ELF executable: one PT_LOAD of `code` at `paddr`, entry `entry`.
fn elf(paddr: u64, entry: u64, code: &[u8]) -> Vec<u8> {
    let mut e = vec![0u8; 120];
    e[..16].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e[18..20].copy_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    e[20..24].copy_from_slice(&1u32.to_le_bytes());
    e[24..32].copy_from_slice(&entry.to_le_bytes());
    e[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    e[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    e[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    e[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let ph = 64;
    e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e[ph + 4..ph + 8].copy_from_slice(&7u32.to_le_bytes()); // RWX
    e[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
    for off in [16, 24] {
        e[ph + off..ph + off + 8].copy_from_slice(&paddr.to_le_bytes()); // p_vaddr, p_paddr
    }
    for off in [32, 40] {
        e[ph + off..ph + off + 8].copy_from_slice(&(code.len() as u64).to_le_bytes());
    }
    e.extend_from_slice(code);
    e
}

#[test]
fn an_elf_kernel_is_the_next_stage_at_its_lowest_address_not_its_entry() {
    let f = Files::new("proto-elf-kernel");
    std::fs::write(f.path("k.elf"), elf(0x8040_0000, 0x8040_0010, &pattern(64, 3))).unwrap();
    let vm = f.vm("128M", "firmware = \"fw.bin\"\nkernel = \"k.elf\"\ninitrd = \"initrd.img\"\n");
    let m = vm.machine();
    assert_eq!(m.layout.next_addr, 0x8040_0000);
    assert_eq!(m.layout.initrd, Some((0x8440_0000, 0x8440_0000 + 10000)), "kernel + 64 MiB");
    assert_eq!(ram_bytes(&vm, 0x8040_0000, 64), pattern(64, 3));
    let next_addr = m.bus.read(0x1028 + 16, 8).expect("the boot ROM answers");
    assert_eq!(next_addr, 0x8040_0000, "fw_dynamic_info.next_addr");
    assert_eq!(vm.cpu().pc, RAM);
}

#[test]
fn without_firmware_the_kernel_starts_in_m_mode_at_its_entry() {
    let f = Files::new("proto-no-firmware");
    std::fs::write(f.path("k.elf"), elf(RAM, RAM + 8, &pattern(64, 4))).unwrap();
    let vm = f.vm("64M", "kernel = \"k.elf\"\n");
    let cpu = vm.cpu();
    assert_eq!([cpu.pc, cpu.x[10], cpu.x[11], cpu.x[12]], [RAM + 8, 0, 0x83e0_0000, 0x1028]);
    assert_eq!(vm.machine().layout.next_addr, RAM);
    assert_eq!(vm.machine().bus.read(0x1028, 8).unwrap(), 0x4942_534f);
}

#[test]
fn a_user_dtb_replaces_the_generated_one_and_gets_the_boot_properties() {
    let f = Files::new("proto-user-dtb");
    // The machine's own tree, renamed, with a bootargs to be replaced: a tree vmhost did not make.
    let mut blob = f.vm("64M", "kernel = \"kernel.bin\"\ncmdline = \"old-args\"\n").machine().dtb.clone();
    let model = blob.windows(11).position(|w| w == b"vmhost,virt").expect("the model string");
    blob[model..model + 11].copy_from_slice(b"mine!,board");
    std::fs::write(f.path("my.dtb"), &blob).unwrap();

    let vm = f.vm("128M", &format!("{FULL}dtb = \"my.dtb\"\n"));
    let m = vm.machine();
    // QEMU 7.2 reserves (size + 10000) * 2 bytes below the end of RAM for a -dtb.
    let reserve = (blob.len() as u64 + 10000) * 2;
    let want = (RAM + (128 << 20) - reserve) & !0x1f_ffff;
    assert_eq!((m.dtb_addr, vm.cpu().x[11]), (want, want));
    assert_eq!(ram_bytes(&vm, want, m.dtb.len()), m.dtb);
    let text = String::from_utf8_lossy(&m.dtb);
    assert!(text.contains("mine!,board") && !text.contains("old-args"), "{text}");
    assert!(text.contains(CMDLINE));
    if let Some(props) = chosen(&m.dtb, &f.dir) {
        assert!(props.contains(&"linux,initrd-start = <0x84200000>;".to_string()), "{props:?}");
    }
    // With nothing to add, the file is handed over byte for byte.
    let vm = f.vm("64M", "kernel = \"kernel.bin\"\ndtb = \"my.dtb\"\n");
    assert_eq!(vm.machine().dtb, blob);
}

#[test]
fn bad_boot_configurations_are_refused_naming_key_and_line() {
    let f = Files::new("proto-errors");
    std::fs::write(f.path("low.elf"), elf(RAM, RAM, &pattern(64, 5))).unwrap();
    std::fs::write(f.path("big.img"), pattern(29 << 20, 6)).unwrap();
    std::fs::write(f.path("huge.img"), pattern(40 << 20, 6)).unwrap();
    std::fs::write(f.path("elf.dtb"), elf(RAM, RAM, &[0; 16])).unwrap();
    std::fs::write(f.path("short.dtb"), [0xd0, 0x0d, 0xfe, 0xed, 0, 0]).unwrap();
    std::fs::File::create(f.path("sparse.dtb")).unwrap().set_len(3 << 20).unwrap();
    let mut chosenless = f.vm("64M", "kernel = \"kernel.bin\"\n").machine().dtb.clone();
    let at = chosenless.windows(7).position(|w| w == b"chosen\0").unwrap();
    chosenless[at..at + 6].copy_from_slice(b"chosex");
    std::fs::write(f.path("nochosen.dtb"), chosenless).unwrap();

    let cases: [(&str, &str, &str); 10] = [
        (
            "64M",
            "firmware = \"fw.bin\"\nkernel = \"low.elf\"\n",
            "vm.toml:6:10: key `boot.kernel`: the kernel at 0x80000000..0x80000040 overlaps the firmware at \
             0x80000000..0x80000090; each image needs its own part of RAM",
        ),
        (
            "64M",
            "firmware = \"fw.bin\"\nkernel = \"kernel.bin\"\ninitrd = \"huge.img\"\n",
            "vm.toml:7:10: key `boot.initrd`: DIR/huge.img: the initrd (41943040 bytes) placed at 0x82200000 would \
             end at 0x84a00000, past the end of RAM (0x84000000); give the machine more memory (QEMU puts the \
             initrd at the kernel + min(RAM / 2, 128 MiB))",
        ),
        (
            "64M",
            "firmware = \"fw.bin\"\nkernel = \"kernel.bin\"\ninitrd = \"big.img\"\n",
            "vm.toml: key `machine.memory`: the device tree at 0x83e00000..",
        ),
        (
            "64M",
            "kernel = \"kernel.bin\"\ndtb = \"elf.dtb\"\n",
            "vm.toml:6:7: key `boot.dtb`: DIR/elf.dtb: not a device tree blob: it starts with 0x7f454c46, not the \
             FDT magic 0xd00dfeed",
        ),
        (
            "64M",
            "kernel = \"kernel.bin\"\ndtb = \"short.dtb\"\n",
            "vm.toml:6:7: key `boot.dtb`: DIR/short.dtb: not a valid device tree blob: shorter than its header",
        ),
        (
            "64M",
            "kernel = \"kernel.bin\"\ndtb = \"sparse.dtb\"\n",
            "vm.toml:6:7: key `boot.dtb`: DIR/sparse.dtb is 3145728 bytes, larger than 2097152 bytes (2 MiB, the \
             most Linux maps)",
        ),
        (
            "64M",
            "kernel = \"kernel.bin\"\ncmdline = \"x\"\ndtb = \"nochosen.dtb\"\n",
            "vm.toml:7:7: key `boot.dtb`: DIR/nochosen.dtb: the device tree has no /chosen node for the boot \
             properties (QEMU refuses such a -dtb too); add `chosen { };` to its root",
        ),
        (
            "512K",
            "firmware = \"fw.bin\"\n",
            "vm.toml: key `machine.memory`: 524288 bytes of RAM leave no room for the device tree: it takes \
             1048576 bytes below the end of RAM",
        ),
        ("1M", "firmware = \"fw.bin\"\n", "vm.toml: key `machine.memory`: the device tree at 0x80000000.."),
        (
            "64M",
            "firmware = \"nope.bin\"\n",
            "vm.toml:5:12: key `boot.firmware`: cannot read DIR/nope.bin: No such file or directory (os error 2)",
        ),
    ];
    for (memory, boot, want) in cases {
        let err = f.refused(memory, boot);
        if let Some(prefix) = want.strip_suffix("..") {
            assert!(err.starts_with(prefix), "{boot}:\n{err}\nwant {want}");
            assert!(err.contains("overlaps the"), "{boot}: {err}");
        } else {
            assert_eq!(err, want, "{boot}");
        }
    }
}
