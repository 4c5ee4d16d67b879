//! Helpers: called straight through the host's table, with exact state, and obeyed.

mod common;
use common::*;
use vm_jit::{Jit, Outcome};
use vm_plugin_api::{
    AtomicOp, BinOp, Dest, ErrorKind, ExitReason, HelperFlags, IrOp, MemAccess, MemoryOrder, Operand,
};

const NONE: HelperFlags = HelperFlags(0);

#[test]
fn a_helper_is_called_through_the_table_with_its_arguments_and_exact_state() {
    let h = FakeHost::new();
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[5] = 5;
    let ir = block(
        RAM + 0x100,
        3,
        vec![
            IrOp::Mov { dst: Dest::Tmp(3), src: imm(1000) },
            bin(BinOp::Add, 6, r(5), imm(1)), // insn 0, dirty at the call
            helper(H_RECORD, NONE, Some(10), [r(5), Operand::Tmp(3), imm(-3)], 42, 1),
            bin(BinOp::Add, 11, r(10), imm(1)), // insn 2
        ],
        jump(RAM + 0x10c),
    );
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&ir, &calls).unwrap();
    let (out, left) = jit.call(id, &mut cpu, &calls, 10).unwrap();
    assert_eq!(out, Outcome::Next { from: id, succ: Some(0) });
    assert_eq!(h.count("helper"), 1);
    let seen = h.last("helper");
    assert_eq!(seen.args, [5, 1000, -3i64 as u64, 42]);
    assert_eq!((seen.pc, seen.instret, seen.x[6]), (RAM + 0x104, 1001, 6));
    let value = 5 + 2 * 1000 - 9 + 42;
    assert_eq!((cpu.x[10], cpu.x[11]), (value, value + 1));
    assert_eq!((cpu.pc, cpu.instret, left), (RAM + 0x10c, 1003, 7));
}

#[test]
fn registers_a_helper_writes_are_seen_by_the_rest_of_the_block() {
    let h = FakeHost::new();
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[7] = 1;
    let ir = block(
        RAM,
        3,
        vec![
            bin(BinOp::Add, 8, r(7), imm(0)), // x7 cached in a host register
            helper(H_WRITE_X7, NONE, Some(9), [imm(70), imm(90), imm(0)], 0, 1),
            bin(BinOp::Add, 10, r(7), imm(1)),
        ],
        jump(RAM + 12),
    );
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&ir, &calls).unwrap();
    jit.call(id, &mut cpu, &calls, 10).unwrap();
    assert_eq!((cpu.x[7], cpu.x[8], cpu.x[9], cpu.x[10]), (70, 1, 90, 71));
}

#[test]
fn a_helper_that_traps_or_exits_ends_the_block_with_its_flow() {
    for (id, want) in [(H_TRAP, Outcome::Redirect), (H_DEBUG, Outcome::Exit(ExitReason::Debug))] {
        let h = FakeHost::new();
        let calls = h.calls();
        let mut cpu = h.cpu();
        let ir = block(
            RAM,
            3,
            vec![
                mov(5, imm(5)),
                helper(id, NONE, Some(6), [imm(0); 3], 0, 1),
                mov(7, imm(7)), // never runs
            ],
            jump(RAM + 12),
        );
        let mut jit = Jit::new().unwrap();
        let b = jit.compile(&ir, &calls).unwrap();
        let (out, left) = jit.call(b, &mut cpu, &calls, 10).unwrap();
        assert_eq!(out, want);
        assert_eq!((cpu.x[5], cpu.x[6], cpu.x[7]), (5, 0, 0));
        assert_eq!((cpu.instret, left), (1001, 9));
        let pc = if id == H_TRAP { TRAP_VECTOR } else { RAM + 4 };
        assert_eq!(cpu.pc, pc);
    }
}

#[test]
fn a_helper_that_touches_no_register_leaves_the_cached_ones_alone() {
    // H_ATTENTION reads and writes no register: x5 stays dirty in a host register across the call
    // and reaches memory at the block end.
    let h = FakeHost::new();
    let calls = h.calls();
    let mut cpu = h.cpu();
    let flags = HelperFlags::NO_REG_READ.union(HelperFlags::NO_REG_WRITE).union(HelperFlags::NO_EXIT);
    let ir = block(
        RAM,
        2,
        vec![mov(5, imm(5)), helper(H_ATTENTION, flags, None, [imm(0); 3], 0, 1)],
        jump(RAM + 8),
    );
    let mut jit = Jit::new().unwrap();
    let b = jit.compile(&ir, &calls).unwrap();
    jit.call(b, &mut cpu, &calls, 10).unwrap();
    assert_eq!(h.last("attention").x[5], 0, "not spilled for a helper that reads no register");
    assert_eq!(cpu.x[5], 5);
}

#[test]
fn ids_outside_the_table_and_ops_outside_the_subset_are_refused() {
    let h = FakeHost::new();
    let calls = h.calls();
    let mut jit = Jit::new().unwrap();
    let unknown = block(RAM, 1, vec![helper(99, NONE, None, [imm(0); 3], 0, 0)], jump(RAM + 4));
    let e = jit.compile(&unknown, &calls).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message().contains("helper 99 is not in the host's table of 5"), "{}", e.message());
    let amo = IrOp::Amo {
        op: AtomicOp::Add,
        dst: Dest::Reg(5),
        addr: r(6),
        src: r(7),
        access: MemAccess::new(8, false, 0),
        order: MemoryOrder::SeqCst,
        at: at(0),
    };
    let e = jit.compile(&block(RAM, 1, vec![amo], jump(RAM + 4)), &calls).unwrap_err();
    assert!(e.message().contains("outside the JIT spike's subset"), "{}", e.message());
    let bad = block(RAM, 1, vec![mov(64, imm(0))], jump(RAM + 4));
    assert!(jit.compile(&bad, &calls).unwrap_err().message().contains("register 64"));
    // The JIT still compiles after refusing.
    let ok = block(RAM, 1, vec![mov(5, imm(1))], jump(RAM + 4));
    let id = jit.compile(&ok, &calls).unwrap();
    let mut cpu = h.cpu();
    jit.call(id, &mut cpu, &calls, 1).unwrap();
    assert_eq!(cpu.x[5], 1);
}
