//! Interpreter throughput on hand-written IR loops, reported in guest instructions per second
//! (criterion's "elem/s" is instructions per second: Melem/s = MIPS). RAM is one page, mapped in
//! the TLB as a host maps it after its first miss, so every access takes the TLB fast path.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::ffi::c_void;
use std::hint::black_box;
use vm_plugin_api::abi_stable::std_types::{RNone, RVec};
use vm_plugin_api::cpu::{PAGE_BITS, TLB_EMPTY, TLB_ENTRY_BITS};
use vm_plugin_api::ir::NO_PAGE;
use vm_plugin_api::{
    At, AtomicReq, BinOp, Cond, CpuState, Dest, Engine, ExitReason, Fetched, Flow, HelperEntry, HelperFlags,
    HostCalls, HostResult, IrBlock, IrOp, MemAccess, Operand, Terminator, TlbEntry, TlbFast,
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
const D: MemAccess = MemAccess::new(8, false, 0);
/// TLB entries of the one mode used.
const TLB_ENTRIES: u64 = 256;

fn ir_block(pc: u64, insn_count: u32, ops: Vec<IrOp>, term: Terminator) -> IrBlock {
    IrBlock {
        pc,
        phys_pc: pc,
        flags: 0,
        len: 4 * insn_count,
        insn_count,
        pages: [pc >> PAGE_BITS << PAGE_BITS, NO_PAGE],
        ops: RVec::from(ops),
        term,
    }
}

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
    let term = Terminator::Branch { cond: Cond::Ne, a: reg(7), b: reg(0), taken: CODE, not_taken: DONE };
    m.insert(CODE, ir_block(CODE, 8, body(), term));
    m.insert(DONE, done_block());
    (m, 8)
}

/// A call and return per iteration: `loop: body; jal ra, func` / `func: addi; ret` / `bnez`
/// (3 blocks, one indirect jump, 12 instructions per iteration).
fn call_return() -> (HashMap<u64, IrBlock>, u64) {
    let mut m = HashMap::new();
    let mut ops = body();
    ops.push(IrOp::Mov { dst: Dest::Reg(1), src: imm(CODE as i64 + 32) });
    m.insert(CODE, ir_block(CODE, 8, ops, Terminator::Jump { target: FUNC }));
    let func = vec![bin(BinOp::Add, 13, reg(13), imm(3)), bin(BinOp::Sltu, 14, reg(13), reg(6))];
    m.insert(FUNC, ir_block(FUNC, 3, func, Terminator::JumpIndirect { target: reg(1) }));
    let term = Terminator::Branch { cond: Cond::Ne, a: reg(7), b: reg(0), taken: CODE, not_taken: DONE };
    m.insert(CODE + 32, ir_block(CODE + 32, 1, vec![], term));
    m.insert(DONE, done_block());
    (m, 12)
}

/// Calls helper 0, which halts.
fn done_block() -> IrBlock {
    let halt = IrOp::Helper {
        id: 0,
        flags: HelperFlags::default(),
        dst: RNone,
        args: [imm(0); 3],
        imm: 0,
        at: At::default(),
    };
    ir_block(DONE, 1, vec![halt], Terminator::Jump { target: DONE })
}

unsafe extern "C" fn translate(ctx: *mut c_void, _cpu: &mut CpuState, pc: u64) -> Fetched {
    // SAFETY: ctx is the block map owned by `bench_loop`, alive for the whole benchmark.
    let blocks = unsafe { &*(ctx as *const HashMap<u64, IrBlock>) };
    match blocks.get(&pc) {
        Some(b) => Fetched::Block(b.clone()),
        None => Fetched::Flow(Flow::Exit(ExitReason::HostError)),
    }
}
// Every access hits the TLB, so the slow paths are errors.
unsafe extern "C" fn load(_: *mut c_void, _: &mut CpuState, _: u64, _: MemAccess) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}
unsafe extern "C" fn store(_: *mut c_void, _: &mut CpuState, _: u64, _: MemAccess, _: u64) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}
unsafe extern "C" fn atomic(_: *mut c_void, _: &mut CpuState, _: &AtomicReq) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}
unsafe extern "C" fn halt(_: *mut c_void, _: &mut CpuState, _: u64, _: u64, _: u64, _: u64) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::Halt))
}
static HELPERS: [HelperEntry; 1] = [HelperEntry { func: halt, flags: HelperFlags(0) }];

fn bench_loop(c: &mut Criterion, name: &str, (mut blocks, per_iteration): (HashMap<u64, IrBlock>, u64)) {
    let mut ram = vec![0u8; 0x1000];
    let mut entries = vec![TlbEntry::EMPTY; TLB_ENTRIES as usize];
    let index = (RAM_BASE >> PAGE_BITS) % TLB_ENTRIES;
    let addend = (ram.as_mut_ptr() as u64).wrapping_sub(RAM_BASE);
    entries[index as usize] = TlbEntry { read: RAM_BASE, write: RAM_BASE, exec: TLB_EMPTY, addend };
    let tlb = TlbFast { mask: (TLB_ENTRIES - 1) << TLB_ENTRY_BITS, table: entries.as_mut_ptr() };
    // SAFETY: the block map (and the RAM and TLB entries the states point at) outlive every use of `host` in this function.
    let host = unsafe {
        HostCalls::new(&mut blocks as *mut _ as *mut c_void, translate, load, store, atomic, &HELPERS)
    };
    let mut engine = vm_interp::Interp::new();
    let mut group = c.benchmark_group("interp");
    group.throughput(Throughput::Elements(ITERATIONS * per_iteration + 1));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut cpu = CpuState { pc: CODE, ..CpuState::default() };
            cpu.tlb[0] = tlb;
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
