//! Host time per guest instruction of a self-linked loop block with TLB loads and stores.
//! Prints the figure; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use std::time::Instant;
use vm_jit::Jit;
use vm_plugin_api::{BinOp, Cond, ExitReason, MemAccess, Terminator};

fn main() {
    const ITERATIONS: u64 = 20_000_000;
    const INSNS: u32 = 7;
    let mut h = FakeHost::new();
    h.map(0, 0);
    let calls = h.calls();
    let access = MemAccess::new(8, false, 0);
    // x1 += 1; x4 = (x1 << 3) & 0xff8; x4 += x6; x3 = [x4]; x2 += x3; [x6 + 8] = x2; loop.
    h.add_block(block(
        RAM,
        INSNS,
        vec![
            bin(BinOp::Add, 1, r(1), imm(1)),
            bin(BinOp::Shl, 4, r(1), imm(3)),
            bin(BinOp::And, 4, r(4), imm(0xff8)),
            bin(BinOp::Add, 4, r(4), r(6)),
            load(3, 4, 0, access, 4),
            bin(BinOp::Add, 2, r(2), r(3)),
            store(2, 6, 8, access, 6),
        ],
        Terminator::Branch {
            cond: Cond::Ne,
            a: r(1),
            b: imm(ITERATIONS as i64),
            taken: RAM,
            not_taken: RAM + 4 * INSNS as u64,
        },
    ));
    h.add_block(block(RAM + 4 * INSNS as u64, 1, vec![], Terminator::Exit { next: 0 }));
    let mut cpu = h.cpu();
    cpu.pc = RAM;
    cpu.x[6] = RAM;
    let mut jit = Jit::new().unwrap();
    let start = Instant::now();
    let reason = jit.run(&mut cpu, &calls, u64::MAX).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(reason, ExitReason::ExitRequested);
    assert_eq!((h.count("load"), h.count("store")), (0, 0), "every access hit the TLB");
    let insns = cpu.instret - 1000;
    println!(
        "jit spike: {insns} guest instructions in {:.1} ms: {:.3} ns per guest instruction \
         (compile and dispatch included; {} dispatches)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / insns as f64,
        jit.stats().dispatches
    );
}
