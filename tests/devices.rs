//! The built-in devices and the bus seen from a guest: accesses the CLINT and syscon refuse fault
//! with the right address (including the misaligned loads QEMU 7.2 answers), and a device at the
//! top of the address space answers up to its last byte. Each guest is a few hand-encoded
//! instructions run with no trap handler, so the first fault stops the VM with its mcause and mtval.

use vm_tests::*;

const T0: u32 = 5;
const T1: u32 = 6;
const T2: u32 = 7;
const A0: u32 = 10;

fn lui(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x37
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x13
}
/// funct3: lb 0, lh 1, lw 2, ld 3, lbu 4, lhu 5.
fn load(funct3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x03
}
/// funct3: sb 0, sh 1, sw 2, sd 3.
fn store(funct3: u32, rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | ((imm & 0x1f) << 7) | 0x23
}

/// `t2 = 0x5555; t1 = syscon; sw t2, 0(t1)`: power off with exit code 0.
fn power_off() -> [u32; 4] {
    [lui(T2, 5), addi(T2, T2, 0x555), lui(T1, 0x100), store(2, T2, T1, 0)]
}

/// Runs `code` as a raw image at the start of RAM with `devices` added to vm.toml.
fn run_code(name: &str, code: &[u32], devices: &str) -> std::process::Output {
    let dir = scratch(name);
    let image = dir.join("code.bin");
    std::fs::write(&image, code.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let toml = write_vm_toml(&dir, &image, "interp", devices);
    run(&vmhost(), &["run", toml.to_str().unwrap()], &[])
}

fn assert_faults(out: &std::process::Output, what: &str, kind: &str, pc: u64, mtval: u64) {
    let want = format!("guest exception {kind} at pc {pc:#x} (mtval {mtval:#x}) with no trap handler");
    assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
    assert!(stderr(out).contains(&want), "{what}: want `{want}` in:\n{}", stderr(out));
}

#[test]
fn accesses_the_builtin_devices_refuse_fault_at_their_address() {
    // (what, base for t0 as a lui immediate, the access at pc 0x8000_0004, the address).
    let cases: [(&str, u32, u32, u64); 13] = [
        ("lw mtimecmp+2 (misaligned)", 0x2004, load(2, A0, T0, 2), 0x200_4002),
        ("ld mtimecmp+4 (misaligned)", 0x2004, load(3, A0, T0, 4), 0x200_4004),
        ("lh mtimecmp", 0x2004, load(1, A0, T0, 0), 0x200_4000),
        ("lb msip", 0x2000, load(0, A0, T0, 0), 0x200_0000),
        ("ld msip", 0x2000, load(3, A0, T0, 0), 0x200_0000),
        ("lw past mtime (nothing at CLINT 0xc000..)", 0x200c, load(2, A0, T0, 0), 0x200_c000),
        ("lw syscon+2 (misaligned)", 0x100, load(2, A0, T0, 2), 0x10_0002),
        ("lb syscon", 0x100, load(0, A0, T0, 0), 0x10_0000),
        ("sd mtimecmp+4 (misaligned)", 0x2004, store(3, A0, T0, 4), 0x200_4004),
        ("sb mtimecmp", 0x2004, store(0, A0, T0, 0), 0x200_4000),
        ("sd msip", 0x2000, store(3, A0, T0, 0), 0x200_0000),
        ("sb syscon", 0x100, store(0, A0, T0, 0), 0x10_0000),
        ("sw syscon+2 (misaligned)", 0x100, store(2, A0, T0, 2), 0x10_0002),
    ];
    for (i, (what, base, access, addr)) in cases.into_iter().enumerate() {
        let mut code = vec![lui(T0, base), access];
        code.extend(power_off());
        let out = run_code(&format!("devices-refused-{i}"), &code, "");
        let kind = if access & 0x7f == 0x23 { "StoreAccess" } else { "LoadAccess" };
        assert_faults(&out, what, kind, 0x8000_0004, addr);
    }
}

#[test]
fn an_sd_of_the_pass_value_to_syscon_faults_instead_of_powering_off() {
    // QEMU's test device takes 2- and 4-byte accesses only.
    let code = [lui(T2, 5), addi(T2, T2, 0x555), lui(T1, 0x100), store(3, T2, T1, 0)];
    let out = run_code("devices-syscon-sd", &code, "");
    assert_faults(&out, "sd 0x5555 to syscon", "StoreAccess", 0x8000_000c, 0x10_0000);
}

#[test]
fn a_device_at_the_top_of_the_address_space_answers_and_an_access_wrapping_past_it_faults() {
    // The UART's 0x100-byte window ends exactly at 2^64 (its registers are the first 8 bytes, as
    // on QEMU; the rest of the window is a bus fault).
    let top = "\n[[device]]\nid = \"uart0\"\nplugin = \"serial\"\nbase = 0xffff_ffff_ffff_ff00\nirq = 10\n";
    let at = |funct3, offset| [addi(T0, 0, -0x100), load(funct3, A0, T0, offset)];
    let mut code = at(4, 5).to_vec(); // lbu LSR
    code.extend(power_off());
    let out = run_code("devices-top-last", &code, top);
    assert_eq!(out.status.code(), Some(0), "lbu of LSR: {}", stderr(&out));
    // Two bytes from the last one would wrap to address 0: a fault where the access starts.
    let mut code = at(5, 0xff).to_vec();
    code.extend(power_off());
    let out = run_code("devices-top-wraps", &code, top);
    assert_faults(&out, "lhu at the last byte", "LoadAccess", 0x8000_0004, u64::MAX);
}
