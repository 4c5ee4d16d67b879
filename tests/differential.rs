//! Differential tests against QEMU: random RV64IMC arithmetic, and random RV64A sequences (every
//! AMO, LR/SC pairs, plain loads and stores over one memory area), assembled by the GNU toolchain,
//! run on vmhost and on `qemu-system-riscv64 -machine virt -bios none`; both must print the same
//! register file; and random privileged CSR sequences (every CSR instruction form on the WARL
//! CSRs of M and S) whose legalised values must match. Skips, saying why, when the cross toolchain
//! or QEMU is missing.

use std::process::{Command, Stdio};
use vm_tests::*;

const R_OPS: &[&str] = &[
    "add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "addw", "subw", "sllw", "srlw",
    "sraw", "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw", "divuw", "remw",
    "remuw",
];
const I_OPS: &[&str] = &["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"];
const SHIFT64: &[&str] = &["slli", "srli", "srai"];
const SHIFT32: &[&str] = &["slliw", "srliw", "sraiw"];

/// Stores x1..x30 to `buf` (x31 is reserved as its base), prints each as 16 hex digits on a line
/// through the UART, and powers off.
const DUMP: &str = r#"
dump:
    la x31, buf
    .irp n, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    sd x\n, 8*\n(x31)
    .endr
    li x5, 1
    li x6, 0x10000000
next_reg:
    slli x7, x5, 3
    add x7, x7, x31
    ld x8, 0(x7)
    print_hex
    addi x5, x5, 1
    li x11, 31
    blt x5, x11, next_reg
    li x5, 0x100000
    li x6, 0x5555
    sw x6, 0(x5)
4:  j 4b
    .bss
    .balign 8
buf: .space 256
"#;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// A program: every register but x31 seeded, then `n` random instructions over x1..x30.
fn program(seed: u64, n: usize) -> String {
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut r = |m: u64| xorshift(&mut s) % m;
    let mut text = String::from(".option norelax\n.text\n.globl _start\n_start:\n");
    for x in 1..=30 {
        // Mix small, negative and wide values: edge cases for division, shifts and W forms.
        let v = match r(4) {
            0 => r(16) as i64 - 8,
            1 => i64::MIN >> r(64),
            2 => (r(1 << 32) as i64) << 31,
            _ => r(u64::MAX) as i64,
        };
        text += &format!("    li x{x}, {v}\n");
    }
    for _ in 0..n {
        let (rd, a, b) = (1 + r(30), 1 + r(30), 1 + r(30));
        let line = match r(10) {
            0..=4 => format!("{} x{rd}, x{a}, x{b}", R_OPS[r(R_OPS.len() as u64) as usize]),
            5 | 6 => {
                format!("{} x{rd}, x{a}, {}", I_OPS[r(I_OPS.len() as u64) as usize], r(4096) as i64 - 2048)
            }
            7 => format!("{} x{rd}, x{a}, {}", SHIFT64[r(3) as usize], r(64)),
            8 => format!("{} x{rd}, x{a}, {}", SHIFT32[r(3) as usize], r(32)),
            _ => format!("{} x{rd}, {}", if r(2) == 0 { "lui" } else { "auipc" }, r(1 << 20)),
        };
        text += &format!("    {line}\n");
    }
    text + PRINT_HEX + DUMP
}

const AMOS: &[&str] =
    &["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"];
const ORDERS: &[&str] = &["", ".aq", ".rl", ".aqrl"];

/// An atomics program: x1..x28 seeded, x30 = a 512-byte area (seeded through plain stores), x29 the
/// address of each access; then `n` random AMOs, LR/SC pairs (with arithmetic between, so some SCs
/// succeed and some fail on a changed value or another address), loads, stores and arithmetic.
fn atomic_program(seed: u64, n: usize) -> String {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut r = |m: u64| xorshift(&mut s) % m;
    let mut text = String::from(".option norelax\n.text\n.globl _start\n_start:\n    la x30, area\n");
    for x in 1..=28 {
        let v = match r(3) {
            0 => r(16) as i64 - 8,
            1 => (r(1 << 32) as i64) << 31,
            _ => r(u64::MAX) as i64,
        };
        text += &format!("    li x{x}, {v}\n    sd x{x}, {}(x30)\n", 8 * (x % 64));
    }
    for _ in 0..n {
        let (rd, b) = (1 + r(28), 1 + r(28));
        let width = if r(2) == 0 { "w" } else { "d" };
        let offset = if width == "w" { 4 * r(128) } else { 8 * r(64) };
        let order = ORDERS[r(4) as usize];
        text += &format!("    addi x29, x30, {offset}\n");
        let line = match r(8) {
            0..=3 => format!("{}.{width}{order} x{rd}, x{b}, (x29)", AMOS[r(AMOS.len() as u64) as usize]),
            4 => {
                // Between LR and SC: an arithmetic op, sometimes a store to the same word.
                let between = if r(3) == 0 {
                    format!("s{width} x{b}, 0(x29)")
                } else {
                    format!("add x{}, x{}, x{}", 1 + r(28), 1 + r(28), 1 + r(28))
                };
                let other = if r(4) == 0 { "addi x29, x29, 8\n    " } else { "" };
                format!(
                    "lr.{width}{order} x{rd}, (x29)\n    {between}\n    {other}sc.{width}{order} x{}, x{b}, (x29)",
                    1 + r(28)
                )
            }
            5 => format!("l{width} x{rd}, 0(x29)"),
            6 => format!("s{width} x{b}, 0(x29)"),
            _ => format!("{} x{rd}, x{}, x{b}", R_OPS[r(R_OPS.len() as u64) as usize], 1 + r(28)),
        };
        text += &format!("    {line}\n");
    }
    // The area's first words end up in registers too, so a wrong store shows.
    for x in 1..=28 {
        text += &format!("    ld x{x}, {}(x30)\n    xor x{x}, x{x}, x{}\n", 8 * x, 1 + (x % 28));
    }
    text + PRINT_HEX + DUMP + "    .balign 8\narea: .space 520\n"
}

/// CSRs a privileged program reads and writes, with the bits its random values may set: the
/// fields RV64GC with S and U defines, but not MIE (an interrupt with no handler), MPRV (the
/// dump's own loads would be translated) or FS (a later FP CSR access would trap). QEMU's default
/// CPU also implements fields of extensions vmhost's harts lack (H's MPV and VS interrupts,
/// Sscofpmf's LCOFI, V's VS field, a 64-bit mcounteren), and keeps `mepc` bit 0, which IALIGN = 16
/// makes read-only 0: those bits are left alone. MPP and satp's mode are chosen separately, among
/// the values both keep (MPP 2 is reserved; Sv57, which QEMU has, is not offered here).
const PRIV_CSRS: &[(&str, u64)] = &[
    ("mstatus", 0x7c_01a2),
    ("sstatus", 0xc_0122),
    ("mscratch", u64::MAX),
    ("sscratch", u64::MAX),
    ("mepc", !1),
    ("sepc", !1),
    ("mtval", u64::MAX),
    ("stval", u64::MAX),
    ("mcause", u64::MAX),
    ("scause", u64::MAX),
    ("stvec", u64::MAX),
    ("medeleg", 0xb3ff),
    ("mideleg", 0x222),
    ("mie", 0xaaa),
    ("sie", 0x222),
    ("mcounteren", 0xffff_ffff),
    ("scounteren", 0xffff_ffff),
    ("satp", (1 << 60) - 1),
];

/// A privileged program: M-mode CSR instructions (all six forms) on WARL CSRs with random values,
/// each old value landing in a register, so every CSR's legalisation shows in the dump.
fn privileged_program(seed: u64, n: usize) -> String {
    let mut s = seed.wrapping_mul(0xd129_5e7a_3c6b_8e21) | 1;
    let mut r = |m: u64| xorshift(&mut s) % m;
    let mut text = String::from(".option norelax\n.text\n.globl _start\n_start:\n");
    // Reset values are the implementation's (QEMU's reset code leaves t0 and a-registers set):
    // start from zeros.
    for x in 1..=28 {
        text += &format!("    li x{x}, 0\n");
    }
    for (csr, _) in PRIV_CSRS {
        text += &format!("    csrw {csr}, zero\n");
    }
    for _ in 0..n {
        let (csr, allowed) = PRIV_CSRS[r(PRIV_CSRS.len() as u64) as usize];
        let rd = 1 + r(28);
        let op = ["csrrw", "csrrs", "csrrc"][r(3) as usize];
        let mut v = r(u64::MAX) & allowed;
        if csr == "mstatus" {
            // MPP: U, S or M when written whole; setting or clearing only both bits, so no
            // combination makes the reserved 2.
            let mpp = if op == "csrrw" { [0u64, 1, 3][r(3) as usize] } else { 3 * r(2) };
            v |= mpp << 11;
        }
        if csr == "satp" {
            // The mode: Bare, Sv39 or Sv48 written whole; no set/clear of mode bits.
            v |= if op == "csrrw" { [0u64, 8, 9][r(3) as usize] << 60 } else { 0 };
        }
        text += &format!("    li x29, {}\n", v as i64);
        // The immediate forms reach bits 0..4 only: through the same mask.
        text += &match r(4) {
            0 => format!("    {op}i x{rd}, {csr}, {}\n", r(32) & allowed),
            1 => format!("    csrr x{rd}, {csr}\n"),
            _ => format!("    {op} x{rd}, {csr}, x29\n"),
        };
    }
    // The final value of every CSR, folded into the registers.
    for (i, (csr, _)) in PRIV_CSRS.iter().enumerate() {
        text += &format!("    csrr x29, {csr}\n    xor x{0}, x{0}, x29\n", 1 + i % 28);
    }
    text + PRINT_HEX + DUMP
}

/// Runs each program on QEMU and vmhost and compares the 30 registers they print.
fn compare_with_qemu(name: &str, qemu_cpu: &str, programs: impl Iterator<Item = (u64, String)>) {
    let (Some(gcc), Some(qemu)) = (which("riscv64-unknown-elf-gcc"), which("qemu-system-riscv64")) else {
        eprintln!(
            "skipped: needs riscv64-unknown-elf-gcc and qemu-system-riscv64 (scripts/install-deps.sh --with-qemu)"
        );
        return;
    };
    let dir = scratch(name);
    for (seed, source) in programs {
        let elf = assemble(&gcc, &dir, &format!("random-{seed}"), &source, "rv64imac_zicsr");
        let child = Command::new(&qemu)
            .args(["-machine", "virt", "-cpu", qemu_cpu, "-bios", "none", "-nographic", "-kernel"])
            .arg(&elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let q = wait_with_timeout(child, &format!("qemu on seed {seed}"));
        let toml = write_vm_toml(&dir, &elf, "interp", UART);
        let v = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
        assert_eq!(v.status.code(), Some(0), "seed {seed}: {}", stderr(&v));
        let (qs, vs) = (stdout(&q), stdout(&v));
        assert_eq!(qs.lines().count(), 30, "seed {seed}: QEMU printed {qs}");
        for (i, (a, b)) in qs.lines().zip(vs.lines()).enumerate() {
            assert_eq!(
                b,
                a,
                "seed {seed}: x{} differs (vmhost vs QEMU); program in {}",
                i + 1,
                dir.display()
            );
        }
        assert_eq!(vs.lines().count(), 30, "seed {seed}");
    }
}

#[test]
fn random_arithmetic_matches_qemu() {
    compare_with_qemu("differential", "rv64", (1..=12u64).map(|seed| (seed, program(seed, 300))));
}

#[test]
fn random_privileged_csr_sequences_match_qemu() {
    // QEMU's default CPU has the H extension, whose VS interrupts are read-only ones in mideleg;
    // vmhost's harts have no H.
    let programs = (1..=12u64).map(|seed| (seed, privileged_program(seed, 200)));
    compare_with_qemu("differential-priv", "rv64,h=false", programs);
}

#[test]
fn random_atomics_match_qemu() {
    compare_with_qemu(
        "differential-atomic",
        "rv64",
        (1..=12u64).map(|seed| (seed, atomic_program(seed, 300))),
    );
}
