//! Differential test of F and D against QEMU: random streams of every F/D instruction over edge
//! values (zeros, subnormals, extremes, infinities, quiet and signaling NaNs, values that round),
//! with static and dynamic rounding modes, `frm` changed on the way, singles and doubles mixed in
//! the same registers (so non-NaN-boxed inputs occur), loads and stores. Assembled by the GNU
//! toolchain and run on vmhost and `qemu-system-riscv64 -machine virt -bios none`: both must print
//! the same `x` and `f` registers and `fcsr`. Skips, saying why, when a tool is missing.

use std::process::{Command, Stdio};
use vm_tests::*;

/// A checkpoint: x1..x28, `fcsr` and f0..f31 appended to the log at x30 (x29 is a temporary).
const CHECKPOINT: &str = r#"
    .macro checkpoint
    .irp n, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28
    sd x\n, 8*(\n-1)(x30)
    .endr
    frcsr x29
    sd x29, 8*28(x30)
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\n, 8*(29+\n)(x30)
    .endr
    addi x30, x30, 8*61
    .endm
"#;

/// Prints the log (from `log` to x30), a word of 16 hex digits a line, through the UART; then
/// powers off.
const DUMP: &str = r#"
dump:
    checkpoint
    la x31, log
    li x6, 0x10000000
next_reg:
    ld x8, 0(x31)
    print_hex
    addi x31, x31, 8
    blt x31, x30, next_reg
    li x5, 0x100000
    li x6, 0x5555
    sw x6, 0(x5)
4:  j 4b
    .bss
    .balign 8
scratch: .space 256
log: .space 8*61*64
"#;

/// Words in one checkpoint: x1..x28, fcsr, f0..f31.
const WORDS: usize = 61;
/// Instructions between checkpoints.
const STRIDE: usize = 16;

const BINARY: &[&str] = &["fadd", "fsub", "fmul", "fdiv"];
const NO_RM_BINARY: &[&str] = &["fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"];
const FUSED: &[&str] = &["fmadd", "fmsub", "fnmadd", "fnmsub"];
const COMPARE: &[&str] = &["feq", "flt", "fle"];
const INTS: &[&str] = &["w", "wu", "l", "lu"];
const RMS: &[&str] = &["", ", rne", ", rtz", ", rdn", ", rup", ", rmm"];

const D_EDGES: &[u64] = &[
    0,
    1 << 63,
    0x3ff0_0000_0000_0000,
    0xbff0_0000_0000_0000,
    0x0000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0001_2345,
    0x7ff0_0000_0000_0001,
    0x43e0_0000_0000_0000, // 2^63
    0x41e0_0000_0000_0000, // 2^31
];
const S_EDGES: &[u32] = &[
    0,
    0x8000_0000,
    0x3f80_0000,
    0xbf80_0000,
    0x0000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x7f7f_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc1_2345,
    0x7f80_0001,
    0x5f00_0000,
    0x4f00_0000,
];

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// A program: x1..x30 and f0..f31 seeded, FS = Initial, then `n` random F/D instructions.
/// A seed for f register `f`: f0..f15 hold doubles, f16..f31 NaN-boxed singles (an instruction
/// mostly uses its own format's half): an edge value, a value that rounds, or a whole number
/// near an integer limit.
fn fp_value(r: &mut impl FnMut(u64) -> u64, f: u64) -> u64 {
    let boxed = |v: u64| 0xffff_ffff_0000_0000 | v;
    match (f < 16, r(3)) {
        (true, 0) => D_EDGES[r(D_EDGES.len() as u64) as usize],
        (false, 0) => boxed(u64::from(S_EDGES[r(S_EDGES.len() as u64) as usize])),
        // Near 1, so sums and products round.
        (true, 1) => r(2) << 63 | (1023 - 20 + r(40)) << 52 | r(1 << 52),
        (false, 1) => boxed(r(2) << 31 | (127 - 10 + r(20)) << 23 | r(1 << 23)),
        // Whole numbers around 2^31 and 2^63, for conversions.
        (true, _) => r(2) << 63 | (1023 + 30 + r(3) + 32 * r(2)) << 52 | (r(1 << 52) & !0xfff),
        (false, _) => boxed(r(2) << 31 | (127 + 30 + r(3) + 32 * r(2)) << 23 | (r(1 << 23) & !0xf)),
    }
}

/// A program: x1..x28 and f0..f31 seeded, FS = Initial, then `n` random F/D instructions with a
/// checkpoint every [`STRIDE`], after which a few f registers get fresh values (long chains end
/// in NaNs).
fn program(seed: u64, n: usize) -> String {
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut r = |m: u64| xorshift(&mut s) % m;
    let mut text = format!("{CHECKPOINT}.option norelax\n.text\n.globl _start\n_start:\n");
    // FS = Initial: the first F/D write sets it Dirty.
    text += "    li x5, 0x2000\n    csrs mstatus, x5\n";
    for f in 0..32 {
        text += &format!("    li x5, {:#x}\n    fmv.d.x f{f}, x5\n", fp_value(&mut r, f));
    }
    for x in 1..=28 {
        let v = match r(4) {
            0 => r(16) as i64 - 8,
            1 => i64::MIN >> r(64),
            2 => (r(1 << 32) as i64) << r(32),
            _ => r(u64::MAX) as i64,
        };
        text += &format!("    li x{x}, {v}\n");
    }
    text += "    la x31, scratch\n    la x30, log\n";
    for i in 0..n {
        if i % STRIDE == STRIDE - 1 {
            text += "    checkpoint\n";
            for _ in 0..8 {
                let f = r(32);
                text += &format!("    li x29, {:#x}\n    fmv.d.x f{f}, x29\n", fp_value(&mut r, f));
            }
        }
        let p = if r(2) == 0 { "s" } else { "d" };
        // Registers of format `p`'s half, one in ten from anywhere (a single's register then
        // usually holds a non-NaN-boxed value).
        let mut reg = |p: &str| if r(10) == 0 { r(32) } else { r(16) + if p == "s" { 16 } else { 0 } };
        let (fd, fa, fb, fc) = (reg(p), reg(p), reg(p), reg(p));
        let other = if p == "s" { "d" } else { "s" };
        let fo = reg(other);
        // x29 is the checkpoints' temporary, x30 the log pointer, x31 the scratch base.
        let (xd, xa) = (1 + r(28), 1 + r(28));
        let rm = RMS[r(RMS.len() as u64) as usize];
        let pick = |list: &[&'static str], k: u64| list[k as usize % list.len()];
        let line = match r(16) {
            0..=3 => format!("{}.{p} f{fd}, f{fa}, f{fb}{rm}", pick(BINARY, r(4))),
            4 => format!("{}.{p} f{fd}, f{fa}, f{fb}", pick(NO_RM_BINARY, r(5))),
            5 => format!("fsqrt.{p} f{fd}, f{fa}{rm}"),
            6 | 7 => format!("{}.{p} f{fd}, f{fa}, f{fb}, f{fc}{rm}", pick(FUSED, r(4))),
            8 => format!("{}.{p} x{xd}, f{fa}, f{fb}", pick(COMPARE, r(3))),
            9 => format!("fclass.{p} x{xd}, f{fa}"),
            10 => format!("fcvt.{}.{p} x{xd}, f{fa}{rm}", pick(INTS, r(4))),
            11 => {
                let int = pick(INTS, r(4));
                // Converting a word to a double is exact: GNU as takes no rounding mode for it.
                let rm = if p == "d" && int.starts_with('w') { "" } else { rm };
                format!("fcvt.{p}.{int} f{fd}, x{xa}{rm}")
            }
            12 if p == "s" => format!("fcvt.s.d f{fd}, f{fo}{rm}"),
            12 => format!("fcvt.d.s f{fd}, f{fo}"),
            13 => match r(4) {
                0 => format!("fmv.x.{} x{xd}, f{fa}", if p == "s" { "w" } else { "d" }),
                1 => format!("fmv.{}.x f{fd}, x{xa}", if p == "s" { "w" } else { "d" }),
                2 => format!("f{}{} f{fd}, {}(x31)", if p == "s" { "lw" } else { "ld" }, "", 8 * r(32)),
                _ => format!("f{} f{fa}, {}(x31)", if p == "s" { "sw" } else { "sd" }, 8 * r(32)),
            },
            14 => format!("csrwi frm, {}", r(5)),
            _ => format!("csrwi fflags, {}", r(32)),
        };
        text += &format!("    {line}\n");
    }
    text + "    j dump\n" + PRINT_HEX + DUMP
}

/// Names dump line `i`.
fn what(i: usize) -> String {
    let at = format!("checkpoint {}", i / WORDS);
    match i % WORDS {
        w @ 0..28 => format!("x{} at {at}", w + 1),
        28 => format!("fcsr at {at}"),
        w => format!("f{} at {at}", w - 29),
    }
}

/// Instructions per program.
const N: usize = 400;

#[test]
fn random_fp_streams_match_qemu() {
    let (Some(gcc), Some(qemu)) = (which("riscv64-unknown-elf-gcc"), which("qemu-system-riscv64")) else {
        eprintln!(
            "skipped: needs riscv64-unknown-elf-gcc and qemu-system-riscv64 (scripts/install-deps.sh --with-qemu)"
        );
        return;
    };
    let dir = scratch("differential-fp");
    for seed in 1..=16u64 {
        let elf = assemble(&gcc, &dir, &format!("random-{seed}"), &program(seed, N), "rv64imafdc_zicsr");
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
        let (qs, vs) = (stdout(&q).replace('\r', ""), stdout(&v).replace('\r', ""));
        let lines = WORDS * (N / STRIDE + 1);
        assert_eq!(qs.lines().count(), lines, "seed {seed}: QEMU printed {qs}");
        for (i, (a, b)) in qs.lines().zip(vs.lines()).enumerate() {
            assert_eq!(
                b,
                a,
                "seed {seed}: {} differs (vmhost vs QEMU); program in {}",
                what(i),
                dir.display()
            );
        }
        assert_eq!(vs.lines().count(), lines, "seed {seed}");
    }
}
