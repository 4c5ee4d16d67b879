//! RAM accesses: the in-line TLB fast path, and the host's slow paths with exact state.

mod common;
use common::*;
use vm_jit::{Jit, Outcome};
use vm_plugin_api::{
    BinOp, ExitReason, MemAccess, Terminator,
    cpu::{PAGE_SIZE, TLB_EMPTY},
    ir::mem_flag,
};

const SIZES: [u8; 4] = [1, 2, 4, 8];

fn sized(size: u8, signed: bool) -> MemAccess {
    MemAccess::new(size, signed, 0)
}

fn extend(v: u64, size: u8, signed: bool) -> u64 {
    let bits = 8 * size as u32;
    if size == 8 {
        v
    } else if signed {
        (((v << (64 - bits)) as i64) >> (64 - bits)) as u64
    } else {
        v & ((1u64 << bits) - 1)
    }
}

/// One block that loads every size both ways from `RAM + 0x80` (bytes there have the top bit
/// set) into x10.., then stores every size of x5 at `RAM + 0x100 + 16 * i`.
fn every_size_block() -> vm_plugin_api::IrBlock {
    let mut ops = vec![];
    let mut insn = 0;
    for (i, size) in SIZES.into_iter().enumerate() {
        for signed in [false, true] {
            ops.push(load(10 + 2 * i as u8 + signed as u8, 6, 0x80 - 0x40, sized(size, signed), insn));
            insn += 1;
        }
        ops.push(store(5, 6, 0x100 - 0x40 + 16 * i as i64, sized(size, false), insn));
        insn += 1;
    }
    block(RAM, insn, ops, jump(RAM + 4 * insn as u64))
}

fn run_every_size(read_flags: u64, write_flags: u64) -> (Box<FakeHost>, vm_plugin_api::CpuState) {
    let mut h = FakeHost::new();
    h.map(read_flags, write_flags);
    for i in 0..8 {
        h.ram.borrow_mut()[0x80 + i] = 0x81 + i as u8 * 0x11;
    }
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[5] = 0xfedc_ba98_7654_3210;
    cpu.x[6] = RAM + 0x40;
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&every_size_block(), &calls).unwrap();
    let (out, _) = jit.call(id, &mut cpu, &calls, 100).unwrap();
    assert_eq!(out, Outcome::Next { from: id, succ: Some(0) });
    let raw = h.read(RAM + 0x80, 8);
    for (i, size) in SIZES.into_iter().enumerate() {
        for signed in [false, true] {
            let got = cpu.x[10 + 2 * i + signed as usize];
            assert_eq!(got, extend(raw, size, signed), "load of {size} bytes, signed {signed}");
        }
        let at = RAM + 0x100 + 16 * i as u64;
        assert_eq!(h.read(at, size as usize), extend(cpu.x[5], size, false), "store of {size} bytes");
        let after = h.read(at + size as u64, 1) as u8;
        assert_eq!(after, ((0x100 + 16 * i + size as usize) * 7 + 3) as u8, "store of {size} wrote too much");
    }
    (h, cpu)
}

#[test]
fn loads_and_stores_that_hit_make_no_host_call() {
    let (h, _) = run_every_size(0, 0);
    assert_eq!((h.count("load"), h.count("store")), (0, 0));
}

#[test]
fn loads_of_an_empty_entry_and_stores_to_a_notdirty_page_go_to_the_host() {
    let (h, cpu) = run_every_size(TLB_EMPTY, NOTDIRTY);
    assert_eq!((h.count("load"), h.count("store")), (8, 4));
    // The host got exactly the stored bytes, and the access as the IR gave it.
    let s = h.last("store");
    assert_eq!(s.args, [RAM + 0x130, 8, cpu.x[5], 0]);
    let first = h.seen.borrow()[0].clone();
    assert_eq!(first.args, [RAM + 0x80, 1, 0, 0]);
    assert_eq!(h.seen.borrow()[1].args, [RAM + 0x80, 1, 1, 0], "signed flag passed through");
    assert_eq!(h.seen.borrow()[2].args[..3], [RAM + 0x100, 1, 0x10], "a 1-byte store hands the low byte");
}

#[test]
fn a_read_only_page_loads_inline_and_stores_through_the_host() {
    let (h, _) = run_every_size(0, NOTDIRTY);
    assert_eq!((h.count("load"), h.count("store")), (0, 4));
}

#[test]
fn a_miss_sees_exact_state_and_the_block_goes_on_with_the_hosts_answer() {
    let mut h = FakeHost::new();
    h.map(TLB_EMPTY, 0);
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[6] = RAM;
    cpu.x[5] = 41;
    let ir = block(
        RAM + 0x40,
        4,
        vec![
            bin(BinOp::Add, 5, r(5), imm(1)), // insn 0: dirty in a host register
            mov(8, imm(7)),                   // insn 1
            load(9, 6, 0x10, sized(4, false), 2),
            bin(BinOp::Add, 10, r(9), r(5)), // insn 3: uses the loaded value and the cached x5
        ],
        jump(RAM + 0x50),
    );
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&ir, &calls).unwrap();
    let (out, left) = jit.call(id, &mut cpu, &calls, 100).unwrap();
    assert_eq!(out, Outcome::Next { from: id, succ: Some(0) });
    let seen = h.last("load");
    assert_eq!((seen.pc, seen.instret), (RAM + 0x48, 1002), "pc and instret of the load itself");
    assert_eq!((seen.x[5], seen.x[8]), (42, 7), "cached registers written back before the call");
    let v = h.read(RAM + 0x10, 4);
    assert_eq!((cpu.x[9], cpu.x[10]), (v, v + 42));
    assert_eq!((cpu.pc, cpu.instret, left), (RAM + 0x50, 1004, 96));
}

#[test]
fn page_crossing_and_misaligned_aligned_accesses_miss() {
    let mut h = FakeHost::new();
    h.map(0, 0);
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[6] = RAM;
    let aligned = MemAccess { flags: mem_flag::ALIGNED, ..sized(4, false) };
    let ir = block(
        RAM,
        5,
        vec![
            load(10, 6, PAGE_SIZE as i64 - 2, sized(4, false), 0), // crosses into page 2: host
            load(11, 6, PAGE_SIZE as i64 - 4, sized(4, false), 1), // last word of page 1: inline
            load(12, 6, 2, sized(4, false), 2),                    // misaligned, allowed: inline
            load(13, 6, 2, aligned, 3),                            // misaligned, must be aligned: host
            load(14, 6, 8, aligned, 4),                            // aligned: inline
        ],
        jump(RAM + 0x20),
    );
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&ir, &calls).unwrap();
    jit.call(id, &mut cpu, &calls, 100).unwrap();
    let addrs: Vec<u64> = h.seen.borrow().iter().map(|s| s.args[0]).collect();
    assert_eq!(addrs, [RAM + PAGE_SIZE - 2, RAM + 2]);
    for (reg, off) in [(10, PAGE_SIZE - 2), (11, PAGE_SIZE - 4), (12, 2), (13, 2), (14, 8)] {
        assert_eq!(cpu.x[reg], h.read(RAM + off, 4), "x{reg}");
    }
}

#[test]
fn a_faulting_access_leaves_the_block_where_the_host_says() {
    let mut h = FakeHost::new();
    h.map(0, 0);
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x[6] = 0x10; // not RAM: the host traps
    let ir = block(
        RAM,
        4,
        vec![
            mov(5, imm(55)),
            mov(7, imm(77)),
            store(5, 6, 0, sized(8, false), 2),
            mov(9, imm(99)), // never runs
        ],
        jump(RAM + 0x10),
    );
    let mut jit = Jit::new().unwrap();
    let id = jit.compile(&ir, &calls).unwrap();
    let (out, left) = jit.call(id, &mut cpu, &calls, 100).unwrap();
    assert_eq!(out, Outcome::Redirect);
    assert_eq!(h.count("store"), 1);
    assert_eq!((cpu.pc, cpu.instret), (TRAP_VECTOR, 1002));
    assert_eq!((cpu.x[5], cpu.x[7], cpu.x[9]), (55, 77, 0));
    assert_eq!(left, 98, "the two instructions before the fault count against the budget");
}

#[test]
fn the_dispatcher_follows_a_trap_into_the_next_translation() {
    let mut h = FakeHost::new();
    h.map(0, 0);
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.pc = RAM;
    cpu.x[6] = 0x10;
    h.add_block(block(RAM, 1, vec![load(5, 6, 0, sized(8, false), 0)], jump(RAM + 4)));
    h.add_block(block(TRAP_VECTOR, 1, vec![mov(1, imm(1))], Terminator::Exit { next: TRAP_VECTOR + 4 }));
    let mut jit = Jit::new().unwrap();
    assert_eq!(jit.run(&mut cpu, &calls, 100).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[1]), (TRAP_VECTOR + 4, 1001, 1));
}
