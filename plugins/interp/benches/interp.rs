//! Interpreter throughput on hand-written IR loops, reported in guest instructions per second
//! (criterion's "elem/s" is instructions per second: Melem/s = MIPS).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::AtomicU32;
use vm_plugin_api::abi_stable::std_types::{RNone, RVec};
use vm_plugin_api::{
    At, BinOp, Cond, CpuState, Dest, Engine, ExitReason, Fetched, Flow, GuestRam, HostCalls, HostResult,
    IrBlock, IrOp, MemAccess, Operand, Terminator,
};

const RAM_BASE: u64 = 0x8000_0000;
const CODE: u64 = 0x8000_0000;
const FUNC: u64 = 0x8000_0100;
const DONE: u64 = 0x8000_0200;
const ITERATIONS: u64 = 1_000_000;

fn reg(r: u8) -> Operand {
    Operand::Reg(r)
}
fn imm(v: i64) -> Operand {
    Operand::Imm(v)
}
fn bin(op: BinOp, d: u8, a: Operand, b: Operand) -> IrOp {
    IrOp::Bin { op, dst: Dest::Reg(d), a, b }
}
fn at(i: u32) -> At {
    At { pc_offset: 4 * i, insn_index: i }
}
const D: MemAccess = MemAccess { size: 8, signed: false };

/// The loop body shared by both shapes: a load, five ALU ops and a store (7 guest instructions).
fn body() -> Vec<IrOp> {
    vec![
        IrOp::Load { dst: Dest::Reg(5), base: reg(10), offset: 0, access: D, at: at(0) },
        bin(BinOp::Add, 5, reg(5), reg(6)),
        IrOp::Store { src: reg(5), base: reg(10), offset: 8, access: D, at: at(2) },
        bin(BinOp::Add, 6, reg(6), imm(1)),
        bin(BinOp::Xor, 11, reg(11), reg(5)),
        bin(BinOp::AddW, 12, reg(12), reg(5)),
        bin(BinOp::Add, 7, reg(7), imm(-1)),
    ]
}

/// One block: body + `bnez x7, loop` (8 instructions per iteration).
fn single_block() -> (HashMap<u64, IrBlock>, u64) {
    let mut m = HashMap::new();
    m.insert(
        CODE,
        IrBlock {
            pc: CODE,
            len: 32,
            insn_count: 8,
            ops: RVec::from(body()),
            term: Terminator::Branch { cond: Cond::Ne, a: reg(7), b: reg(0), taken: CODE, not_taken: DONE },
        },
    );
    m.insert(DONE, done_block());
    (m, 8)
}

/// A call and return per iteration: `loop: body; jal ra, func` / `func: addi; ret` / `bnez`
/// (3 blocks, one indirect jump, 12 instructions per iteration).
fn call_return() -> (HashMap<u64, IrBlock>, u64) {
    let mut m = HashMap::new();
    let mut ops = body();
    ops.push(IrOp::Mov { dst: Dest::Reg(1), src: imm(CODE as i64 + 32) });
    m.insert(
        CODE,
        IrBlock {
            pc: CODE,
            len: 32,
            insn_count: 8,
            ops: RVec::from(ops),
            term: Terminator::Jump { target: FUNC },
        },
    );
    m.insert(
        FUNC,
        IrBlock {
            pc: FUNC,
            len: 12,
            insn_count: 3,
            ops: RVec::from(vec![
                bin(BinOp::Add, 13, reg(13), imm(3)),
                bin(BinOp::Sltu, 14, reg(13), reg(6)),
            ]),
            term: Terminator::JumpIndirect { target: reg(1) },
        },
    );
    m.insert(
        CODE + 32,
        IrBlock {
            pc: CODE + 32,
            len: 4,
            insn_count: 1,
            ops: RVec::new(),
            term: Terminator::Branch { cond: Cond::Ne, a: reg(7), b: reg(0), taken: CODE, not_taken: DONE },
        },
    );
    m.insert(DONE, done_block());
    (m, 12)
}

fn done_block() -> IrBlock {
    IrBlock {
        pc: DONE,
        len: 4,
        insn_count: 1,
        ops: RVec::from(vec![IrOp::Helper { id: 0, dst: RNone, a: imm(0), b: imm(0), at: At::default() }]),
        term: Terminator::Jump { target: DONE },
    }
}

unsafe extern "C" fn translate(ctx: *mut c_void, _cpu: &mut CpuState, pc: u64) -> Fetched {
    // SAFETY: ctx is the block map owned by `bench_loop`, alive for the whole benchmark.
    let blocks = unsafe { &*(ctx as *const HashMap<u64, IrBlock>) };
    match blocks.get(&pc) {
        Some(b) => Fetched::Block(b.clone()),
        None => Fetched::Flow(Flow::Exit(ExitReason::HostError)),
    }
}
unsafe extern "C" fn load(_: *mut c_void, _: &mut CpuState, _: u64, _: u8) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}
unsafe extern "C" fn store(_: *mut c_void, _: &mut CpuState, _: u64, _: u8, _: u64) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}
unsafe extern "C" fn helper(_: *mut c_void, _: &mut CpuState, _: u32, _: u64, _: u64) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::Halt))
}

fn bench_loop(c: &mut Criterion, name: &str, (mut blocks, per_iteration): (HashMap<u64, IrBlock>, u64)) {
    let mut ram = vec![0u8; 0x1000];
    let exit = AtomicU32::new(0);
    let guest_ram = GuestRam { base: RAM_BASE, host: ram.as_mut_ptr(), size: ram.len() as u64 };
    // SAFETY: the block map, RAM and exit flag outlive every use of `host` in this function.
    let host = unsafe {
        HostCalls::new(&mut blocks as *mut _ as *mut c_void, guest_ram, &exit, translate, load, store, helper)
    };
    let mut engine = vm_interp::Interp::new();
    let mut group = c.benchmark_group("interp");
    group.throughput(Throughput::Elements(ITERATIONS * per_iteration + 1));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut cpu = CpuState { pc: CODE, ..CpuState::default() };
            cpu.x[7] = ITERATIONS;
            cpu.x[10] = RAM_BASE + 0x100;
            let r = engine.run(&mut cpu, &host, u64::MAX).unwrap();
            assert_eq!(r, ExitReason::Halt);
            black_box(cpu.x[11])
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_loop(c, "single_block_loop", single_block());
    bench_loop(c, "call_return_loop", call_return());
}

criterion_group!(interp, benches);
criterion_main!(interp);
