//! The stop rule: attention, then budget, checked at every block entry and nowhere else.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use vm_jit::{Jit, Outcome};
use vm_plugin_api::{BinOp, Cond, ExitReason, HelperFlags, Terminator};

#[test]
fn attention_raised_by_a_helper_stops_a_chain_at_the_next_block_boundary() {
    let h = FakeHost::new();
    let calls = h.calls();
    let (a, b, c) = (RAM, RAM + 0x10, RAM + 0x20);
    let flags = HelperFlags::NO_REG_READ.union(HelperFlags::NO_REG_WRITE).union(HelperFlags::NO_EXIT);
    let blocks = [
        block(
            a,
            3,
            vec![mov(1, imm(1)), helper(H_ATTENTION, flags, None, [imm(0); 3], 0, 1), mov(2, imm(2))],
            jump(b),
        ),
        block(b, 1, vec![mov(3, imm(3))], jump(c)),
        block(c, 1, vec![mov(4, imm(4))], jump(a)),
    ];
    let mut jit = Jit::new().unwrap();
    let ids: Vec<_> = blocks.iter().map(|b| jit.compile(b, &calls).unwrap()).collect();
    assert!(jit.link(ids[0], 0, ids[1]) && jit.link(ids[1], 0, ids[2]) && jit.link(ids[2], 0, ids[0]));
    let mut cpu = h.cpu();
    let (out, left) = jit.call(ids[0], &mut cpu, &calls, 1_000_000).unwrap();
    // A completes (the request is seen only at a boundary); B's entry check stops the chain.
    assert_eq!(out, Outcome::Exit(ExitReason::ExitRequested));
    assert_eq!((cpu.pc, cpu.instret, left), (b, 1003, 1_000_000 - 3));
    assert_eq!((cpu.x[1], cpu.x[2], cpu.x[3]), (1, 2, 0));
    assert_eq!(jit.stats().dispatches, 1);

    // Once the host clears the word, the same chain goes on from B.
    h.attention.store(0, Ordering::Relaxed);
    let (out, _) = jit.call(ids[1], &mut cpu, &calls, 1_000_000).unwrap();
    assert_eq!(out, Outcome::Exit(ExitReason::ExitRequested), "A raises it again");
    assert_eq!((cpu.pc, cpu.instret, cpu.x[3], cpu.x[4]), (b, 1008, 3, 4));
}

#[test]
fn attention_already_set_runs_nothing() {
    let h = FakeHost::new();
    let calls = h.calls();
    h.attention.store(1, Ordering::Relaxed);
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&block(RAM, 1, vec![mov(1, imm(1))], jump(RAM + 4)), &calls).unwrap();
    let mut cpu = h.cpu();
    cpu.pc = RAM;
    let (out, left) = jit.call(id, &mut cpu, &calls, 5).unwrap();
    assert_eq!(
        (out, left, cpu.x[1], cpu.instret, cpu.pc),
        (Outcome::Exit(ExitReason::ExitRequested), 5, 0, 1000, RAM)
    );
}

/// A self-linked loop block of three instructions, run with `budget`.
fn looped(budget: u64) -> (vm_plugin_api::CpuState, ExitReason, u64) {
    let h = FakeHost::new();
    let calls = h.calls();
    h.add_block(block(
        RAM,
        3,
        vec![bin(BinOp::Add, 1, r(1), imm(1)), bin(BinOp::Add, 2, r(2), r(1))],
        Terminator::Branch { cond: Cond::Ne, a: r(1), b: imm(1_000_000), taken: RAM, not_taken: RAM + 12 },
    ));
    let mut cpu = h.cpu();
    cpu.pc = RAM;
    let mut jit = Jit::new().unwrap();
    let reason = jit.run(&mut cpu, &calls, budget).unwrap();
    (cpu, reason, jit.stats().dispatches)
}

#[test]
fn the_budget_stops_a_run_at_the_first_block_boundary_at_or_past_it() {
    // As the interp: a block runs while fewer than `budget` instructions retired.
    for (budget, blocks) in [(0, 0), (1, 1), (3, 1), (4, 2), (10, 4), (12, 4), (13, 5)] {
        let (cpu, reason, _) = looped(budget);
        assert_eq!(reason, ExitReason::BudgetExhausted);
        assert_eq!((cpu.x[1], cpu.instret, cpu.pc), (blocks, 1000 + 3 * blocks, RAM), "budget {budget}");
    }
    let (_, _, dispatches) = looped(3000);
    assert_eq!(dispatches, 2, "the loop runs linked and stops inside generated code");
}
