//! Differential tests against QEMU: random RV64IMC arithmetic, and random RV64A sequences (every
//! AMO, LR/SC pairs, plain loads and stores over one memory area), assembled by the GNU toolchain,
//! run on vmhost and on `qemu-system-riscv64 -machine virt -bios none`; both must print the same
//! register file. Skips, saying why, when the cross toolchain or QEMU is missing.

use std::path::{Path, PathBuf};
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
    li x9, 60
next_digit:
    srl x10, x8, x9
    andi x10, x10, 15
    li x11, 10
    blt x10, x11, 1f
    addi x10, x10, 39
1:  addi x10, x10, 48
2:  lbu x12, 5(x6)
    andi x12, x12, 0x20
    beqz x12, 2b
    sb x10, 0(x6)
    addi x9, x9, -4
    bgez x9, next_digit
3:  lbu x12, 5(x6)
    andi x12, x12, 0x20
    beqz x12, 3b
    li x10, 10
    sb x10, 0(x6)
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
    text + DUMP
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
    text + DUMP + "    .balign 8\narea: .space 520\n"
}

fn assemble(gcc: &Path, dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.S"));
    let elf = dir.join(format!("{name}.elf"));
    std::fs::write(&src, source).unwrap();
    // _start first at the start of RAM: where QEMU's -bios none starts, whatever the ELF entry.
    let script = dir.join("link.ld");
    std::fs::write(
        &script,
        "ENTRY(_start)\nSECTIONS {\n . = 0x80000000;\n .text : { *(.text) }\n .bss : { *(.bss) }\n}\n",
    )
    .unwrap();
    let out = Command::new(gcc)
        .args([
            "-march=rv64imac_zicsr",
            "-mabi=lp64",
            "-mcmodel=medany",
            "-nostdlib",
            "-nostartfiles",
            "-static",
        ])
        .arg("-T")
        .arg(&script)
        .args(["-Wl,--no-warn-rwx-segments", "-o"])
        .arg(&elf)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "assembling {name}: {}", String::from_utf8_lossy(&out.stderr));
    elf
}

/// Runs each program on QEMU and vmhost and compares the 30 registers they print.
fn compare_with_qemu(name: &str, programs: impl Iterator<Item = (u64, String)>) {
    let (Some(gcc), Some(qemu)) = (which("riscv64-unknown-elf-gcc"), which("qemu-system-riscv64")) else {
        eprintln!(
            "skipped: needs riscv64-unknown-elf-gcc and qemu-system-riscv64 (scripts/install-deps.sh --with-qemu)"
        );
        return;
    };
    let dir = scratch(name);
    for (seed, source) in programs {
        let elf = assemble(&gcc, &dir, &format!("random-{seed}"), &source);
        let child = Command::new(&qemu)
            .args(["-machine", "virt", "-bios", "none", "-nographic", "-kernel"])
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
    compare_with_qemu("differential", (1..=12u64).map(|seed| (seed, program(seed, 300))));
}

#[test]
fn random_atomics_match_qemu() {
    compare_with_qemu("differential-atomic", (1..=12u64).map(|seed| (seed, atomic_program(seed, 300))));
}
