//! A hostile guest: random instruction words at wild addresses must never crash, hang or panic the
//! host; the run ends with an outcome or a clean error.

use vm_host::{Outcome, Vm, VmConfig};
use vm_plugin_api::ErrorKind;
use vm_tests::*;

/// `auipc t0, 0; csrw mtvec, t0`: every trap re-enters the image from its start.
const PROLOGUE: [u32; 2] = [0x0000_0297, 0x3052_9073];

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread")]
async fn random_code_never_crashes_the_host() {
    for seed in 1..=8u64 {
        let dir = scratch(&format!("hostile-{seed}"));
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut image: Vec<u8> = PROLOGUE.iter().flat_map(|w| w.to_le_bytes()).collect();
        for _ in 0..4096 {
            // Low bits 0b11: full-width encodings, so most words decode to something.
            let word = (xorshift(&mut state) as u32) | 3;
            image.extend_from_slice(&word.to_le_bytes());
        }
        let kernel = dir.join("random.bin");
        std::fs::write(&kernel, &image).unwrap();
        let console = dir.join("console.txt");
        let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", console.display());
        let toml = write_vm_toml(&dir, &kernel, "interp", &dev);
        let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
        vm.start().unwrap();
        let r = within(vm.run_until(2_000_000)).await;
        vm.shutdown().unwrap();
        eprintln!("seed {seed}: {r:?} after {} instructions", vm.cpu().instret);
        match r {
            Ok(Outcome::Paused | Outcome::PowerOff(_) | Outcome::Reset) => {}
            Ok(other) => panic!("seed {seed}: unexpected outcome {other:?}"),
            Err(e) => {
                let vm_host::HostError::Vm(e) = e else { panic!("seed {seed}: {e}") };
                assert_ne!(e.kind, ErrorKind::Panic, "seed {seed}: {e}");
            }
        }
    }
}

// Hand-assembled RV64 instructions for the page-table hostile test.
fn i_type(op: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn r_type(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, op: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, rd, 0, rs1, imm)
}
fn andi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, rd, 7, rs1, imm)
}
fn slli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i_type(0x13, rd, 1, rs1, sh as i32)
}
fn srli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i_type(0x13, rd, 5, rs1, sh as i32)
}
fn xor(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(0, rs2, rs1, 4, rd, 0x33)
}
fn or(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(0, rs2, rs1, 6, rd, 0x33)
}
fn lui(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x37
}
fn csrw(csr: u32, rs1: u32) -> u32 {
    (csr << 20) | (rs1 << 15) | (1 << 12) | 0x73
}

/// Random page tables: an M-mode handler at the image's start (every trap comes back to it)
/// points `satp` (Sv39 or Sv48) at random words in RAM or past it, sets a random `mepc`, SUM and
/// MXR, and `mret`s to S-mode, whose fetches, loads and stores then walk whatever the tables say:
/// entries pointing outside RAM or at devices, tables that refer to themselves, misaligned
/// superpages, wild `satp` values. Every run ends with an outcome or a clean error.
#[tokio::test(flavor = "multi_thread")]
async fn random_page_tables_never_crash_the_host() {
    const S0: u32 = 8;
    const T0: u32 = 5;
    const T1: u32 = 6;
    const T2: u32 = 7;
    const T3: u32 = 28;
    // s0 is the xorshift state, seeded by the image's first instruction; S-mode may clobber it,
    // which only makes the next choice more random (a zero state stays zero: still a valid run).
    let handler = [
        0x0000_0297,     // auipc t0, 0
        csrw(0x305, T0), // mtvec = start
        // PMP entry 0: all memory, RWX, so S-mode reaches whatever the page tables say.
        addi(T1, 0, -1),
        csrw(0x3b0, T1),
        addi(T1, 0, 0x1f),
        csrw(0x3a0, T1),
        slli(T1, S0, 13),
        xor(S0, S0, T1),
        srli(T1, S0, 7),
        xor(S0, S0, T1),
        slli(T1, S0, 17),
        xor(S0, S0, T1),
        // satp: mode 8 (Sv39) or 9 (Sv48) from the top bit of s0; the root table one of the
        // image's 64 pages of random words.
        srli(T1, S0, 63),
        addi(T1, T1, 8),
        slli(T1, T1, 60),
        srli(T2, S0, 30),
        andi(T2, T2, 0x3f),
        lui(T3, 0x80), // t3 = 0x80000, RAM's first page number
        or(T2, T2, T3),
        or(T1, T1, T2),
        csrw(0x180, T1), // satp
        0x1200_0073,     // sfence.vma
        // mepc: a random even address (the tables decide whether anything is there).
        srli(T2, S0, 3),
        andi(T2, T2, -2),
        csrw(0x341, T2),
        // mstatus: MPP = S, SUM and MXR from s0.
        lui(T3, 0xc0),                  // bits 18 (SUM) and 19 (MXR)
        r_type(0, T3, S0, 7, T3, 0x33), // and t3, s0, t3
        lui(T2, 1),
        addi(T2, T2, -0x800), // 0x800: MPP = S
        or(T3, T3, T2),
        csrw(0x300, T3),
        0x3020_0073, // mret
    ];
    for seed in 1..=6u64 {
        let dir = scratch(&format!("hostile-pt-{seed}"));
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        // lui s0 with a seed, then the handler, then 256 KiB of random words: page tables and code.
        let mut image: Vec<u8> = Vec::new();
        let seed_word = lui(S0, (xorshift(&mut state) as u32) & 0xfffff);
        image.extend_from_slice(&seed_word.to_le_bytes());
        for w in handler {
            image.extend_from_slice(&w.to_le_bytes());
        }
        while image.len() < 256 << 10 {
            image.extend_from_slice(&xorshift(&mut state).to_le_bytes());
        }
        let kernel = dir.join("random.bin");
        std::fs::write(&kernel, &image).unwrap();
        let console = dir.join("console.txt");
        let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", console.display());
        let toml = write_vm_toml(&dir, &kernel, "interp", &dev);
        let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
        vm.start().unwrap();
        let r = within(vm.run_until(2_000_000)).await;
        vm.shutdown().unwrap();
        eprintln!("page tables, seed {seed}: {r:?} after {} instructions", vm.cpu().instret);
        // The handler ran and turned paging on (t1 holds the last satp it wrote).
        assert!(matches!(vm.cpu().x[T1 as usize] >> 60, 8 | 9), "seed {seed}: {:x?}", vm.cpu().x);
        match r {
            Ok(Outcome::Paused | Outcome::PowerOff(_) | Outcome::Reset) => {}
            Ok(other) => panic!("seed {seed}: unexpected outcome {other:?}"),
            Err(e) => {
                let vm_host::HostError::Vm(e) = e else { panic!("seed {seed}: {e}") };
                assert_ne!(e.kind, ErrorKind::Panic, "seed {seed}: {e}");
            }
        }
    }
}

fn s_type(f3: u32, rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23
}
fn csrr(rd: u32, csr: u32) -> u32 {
    (csr << 20) | (2 << 12) | (rd << 7) | 0x73
}

/// An interrupt storm: the UART's THRE interrupt, routed through the PLIC to M-mode with MEIE and
/// MIE set, and a handler that never claims it, so it is taken again at once, forever. The host
/// stays in control: the run pauses at its instruction limit, having taken the external
/// interrupt (mcause 11 with the interrupt bit) over and over.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_storm_through_the_plic_leaves_the_host_in_control() {
    const T0: u32 = 5;
    const T1: u32 = 6;
    const T2: u32 = 7;
    const S1: u32 = 9;
    let code = [
        0x0000_0297,     // auipc t0, 0
        addi(T0, T0, 0), // + the handler's offset, patched below
        csrw(0x305, T0), // mtvec
        lui(T1, 0xc000), // t1 = PLIC base
        addi(T2, 0, 1),
        s_type(2, T2, T1, 4 * 10), // priority[10] = 1
        lui(T0, 0xc002),           // the M context's enables
        addi(T2, 0, 1 << 10),
        s_type(2, T2, T0, 0), // enable source 10
        lui(T0, 0x10000),     // UART
        addi(T2, 0, 2),
        s_type(0, T2, T0, 1), // IER = THRE: the line rises at once
        lui(T2, 1),
        addi(T2, T2, -0x800),                          // 0x800: MEIE
        (0x304 << 20) | (T2 << 15) | (2 << 12) | 0x73, // csrrs x0, mie, t2
    ];
    let mut words = code.to_vec();
    words.push(0x3004_6073); // csrsi mstatus, 8 (MIE)
    words.push(0x0000_006f); // j . (never left but for the handler)
    let handler_at = words.len() as i32;
    words[1] = addi(T0, T0, 4 * handler_at);
    words.push(csrr(T1, 0x342)); // t1 = mcause
    words.push(addi(S1, S1, 1)); // count
    words.push(0x3020_0073); // mret, the line still high
    let dir = scratch("hostile-storm");
    let kernel = dir.join("storm.bin");
    std::fs::write(&kernel, words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let toml = write_vm_toml(&dir, &kernel, "interp", UART);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    vm.start().unwrap();
    let r = within(vm.run_until(1_000_000)).await;
    vm.shutdown().unwrap();
    assert_eq!(r.unwrap(), Outcome::Paused);
    let cpu = vm.cpu();
    assert_eq!(cpu.x[T1 as usize], (1 << 63) | 11, "the machine external interrupt");
    assert!(cpu.x[S1 as usize] > 100_000, "taken {} times", cpu.x[S1 as usize]);
}
