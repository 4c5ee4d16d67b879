//! Chaining: a linked successor runs without a return to the dispatcher.

mod common;
use common::*;
use vm_jit::Jit;
use vm_plugin_api::{BinOp, Cond, ExitReason, Terminator, cpu::PAGE_SIZE};

/// A: x1 += 1 → B. B: x2 += x1; x1 < 10 ? A : C. C: x3 = x2, exit. `stride` apart.
fn program(h: &FakeHost, stride: u64) -> [u64; 3] {
    let (a, b, c) = (RAM, RAM + stride, RAM + 2 * stride);
    h.add_block(block(a, 2, vec![bin(BinOp::Add, 1, r(1), imm(1))], jump(b)));
    h.add_block(block(
        b,
        2,
        vec![bin(BinOp::Add, 2, r(2), r(1))],
        Terminator::Branch { cond: Cond::Ltu, a: r(1), b: imm(10), taken: a, not_taken: c },
    ));
    h.add_block(block(c, 1, vec![mov(3, r(2))], Terminator::Exit { next: c + 4 }));
    [a, b, c]
}

fn run(stride: u64) -> (Jit, vm_plugin_api::CpuState, u64) {
    let h = FakeHost::new();
    let [a, _, c] = program(&h, stride);
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.pc = a;
    let mut jit = Jit::new().unwrap();
    assert_eq!(jit.run(&mut cpu, &calls, 1000).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.x[1], cpu.x[2], cpu.x[3]), (10, 55, 55));
    assert_eq!((cpu.pc, cpu.instret), (c + 4, 1000 + 10 * 4 + 1));
    assert_eq!(h.translations.get(), 3);
    (jit, cpu, c)
}

#[test]
fn linked_blocks_run_without_returning_to_the_dispatcher() {
    let (jit, ..) = run(0x10);
    let s = jit.stats();
    // A returns unlinked (→B); B returns unlinked (→A); A→B→A... then runs linked until B leaves
    // for C unlinked; C exits: four returns for 21 blocks.
    assert_eq!((s.compiled, s.links, s.dispatches), (3, 3, 4));
}

#[test]
fn jumps_to_another_page_are_not_linked() {
    let (jit, ..) = run(PAGE_SIZE);
    let s = jit.stats();
    assert_eq!((s.compiled, s.links, s.dispatches), (3, 0, 21));
}

#[test]
fn unlinking_sends_every_block_back_to_the_dispatcher() {
    let h = FakeHost::new();
    let [a, b, _] = program(&h, 0x10);
    let calls = h.calls();
    let mut jit = Jit::new().unwrap();
    let blocks = h.blocks.borrow();
    let ia = jit.compile(&blocks[&a], &calls).unwrap();
    let ib = jit.compile(&blocks[&b], &calls).unwrap();
    assert!(jit.link(ia, 0, ib));
    assert!(!jit.link(ia, 1, ib), "A has no second successor");
    assert!(!jit.link(ib, 1, ia), "B's not-taken successor is C, not A");
    let mut cpu = h.cpu();
    let (out, _) = jit.call(ia, &mut cpu, &calls, 100).unwrap();
    assert_eq!(out, vm_jit::Outcome::Next { from: ib, succ: Some(0) }, "A ran on into B");
    jit.unlink_all();
    let (out, _) = jit.call(ia, &mut cpu, &calls, 100).unwrap();
    assert_eq!(out, vm_jit::Outcome::Next { from: ia, succ: Some(0) });
    assert_eq!((cpu.x[1], cpu.x[2], cpu.pc), (2, 1, b));
}
