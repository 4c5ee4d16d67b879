//! Unit tests: the interpreter against a fake host (hand-written IR blocks, a RAM buffer, an MMIO
//! range and helpers that record their calls and answer with chosen flows).

use super::*;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use vm_plugin_api::abi_stable::std_types::{RNone, ROption, RSome, RStr, RVec};
use vm_plugin_api::ir::eval_bin;
use vm_plugin_api::{
    At, BinOp, Cond, Dest, ErrorKind, GuestRam, HostResult, IrOp, MemAccess, Operand, Terminator,
};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 0x1_0000;
const MMIO_BASE: u64 = 0x1000_0000;
const MMIO_SIZE: u64 = 0x100;
/// Where the fake host sends the guest on a fault.
const TRAP: u64 = 0x8000_f000;
/// Raw bytes the fake MMIO device answers with (truncated to the access size).
const MMIO_VALUE: u64 = 0xf1e2_d3c4_b5a6_9788;

/// Helper ids the fake host understands.
const H_ADD: u32 = 1; // Continue with a + b
const H_REDIRECT: u32 = 2; // cpu.pc = a, Redirect
const H_SET_X9: u32 = 3; // cpu.x[9] = a, Continue with b
const H_REQUEST_EXIT: u32 = 4; // raise the exit request, Continue
const H_WFI: u32 = 5; // Exit(Wfi)
const H_SET_INSTRET: u32 = 6; // cpu.instret = a (a counter CSR write), Continue
const H_HALT: u32 = 99; // Exit(Halt)

/// A host call as the fake host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    what: &'static str,
    /// Load/store address or helper id.
    addr: u64,
    size: u8,
    value: u64,
    pc: u64,
    instret: u64,
    x: [u64; 32],
}

struct FakeHost {
    blocks: HashMap<u64, IrBlock>,
    /// Non-block answers to translation requests.
    fetch_flows: HashMap<u64, (Flow, u64)>,
    translated: Vec<u64>,
    calls: Vec<Seen>,
    exit: Arc<AtomicU32>,
}

fn seen(what: &'static str, cpu: &CpuState, addr: u64, size: u8, value: u64) -> Seen {
    Seen { what, addr, size, value, pc: cpu.pc, instret: cpu.instret, x: cpu.x }
}

/// # Safety
/// `ctx` is the `FakeHost` of a live `Harness`.
unsafe fn fake<'a>(ctx: *mut c_void) -> &'a mut FakeHost {
    // SAFETY: per this function's contract; the engine makes one host call at a time.
    unsafe { &mut *(ctx as *mut FakeHost) }
}

unsafe extern "C" fn translate(ctx: *mut c_void, cpu: &mut CpuState, pc: u64) -> Fetched {
    // SAFETY: the harness passes its own FakeHost as ctx.
    let h = unsafe { fake(ctx) };
    h.translated.push(pc);
    if let Some(&(flow, new_pc)) = h.fetch_flows.get(&pc) {
        cpu.pc = new_pc;
        return Fetched::Flow(flow);
    }
    match h.blocks.get(&pc) {
        Some(b) => Fetched::Block(b.clone()),
        None => Fetched::Flow(Flow::Exit(ExitReason::HostError)),
    }
}

unsafe extern "C" fn load(ctx: *mut c_void, cpu: &mut CpuState, addr: u64, size: u8) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    h.calls.push(seen("load", cpu, addr, size, 0));
    if addr.wrapping_sub(MMIO_BASE) < MMIO_SIZE {
        HostResult::value(MMIO_VALUE & mask(size))
    } else {
        cpu.pc = TRAP;
        HostResult::flow(Flow::Redirect)
    }
}

unsafe extern "C" fn store(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    addr: u64,
    size: u8,
    value: u64,
) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    h.calls.push(seen("store", cpu, addr, size, value));
    if addr.wrapping_sub(MMIO_BASE) < MMIO_SIZE {
        HostResult::value(0)
    } else {
        cpu.pc = TRAP;
        HostResult::flow(Flow::Redirect)
    }
}

unsafe extern "C" fn helper(ctx: *mut c_void, cpu: &mut CpuState, id: u32, a: u64, b: u64) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    h.calls.push(seen("helper", cpu, id as u64, 0, a));
    match id {
        H_ADD => HostResult::value(a.wrapping_add(b)),
        H_REDIRECT => {
            cpu.pc = a;
            HostResult::flow(Flow::Redirect)
        }
        H_SET_X9 => {
            cpu.x[9] = a;
            HostResult::value(b)
        }
        H_REQUEST_EXIT => {
            h.exit.store(1, Ordering::Relaxed);
            HostResult::value(0)
        }
        H_WFI => HostResult::flow(Flow::Exit(ExitReason::Wfi)),
        H_SET_INSTRET => {
            cpu.instret = a;
            HostResult::value(0)
        }
        H_HALT => HostResult::flow(Flow::Exit(ExitReason::Halt)),
        _ => HostResult::flow(Flow::Exit(ExitReason::HostError)),
    }
}

fn mask(size: u8) -> u64 {
    if size >= 8 { u64::MAX } else { (1u64 << (8 * size)) - 1 }
}

/// A fake host: owns the host state and the RAM the `HostCalls` table points into.
struct Harness {
    host: *mut FakeHost,
    ram: *mut [u8],
    exit: Arc<AtomicU32>,
    calls: HostCalls,
}

impl Harness {
    fn new(blocks: impl IntoIterator<Item = IrBlock>) -> Harness {
        let exit = Arc::new(AtomicU32::new(0));
        let host = Box::into_raw(Box::new(FakeHost {
            blocks: blocks.into_iter().map(|b| (b.pc, b)).collect(),
            fetch_flows: HashMap::new(),
            translated: Vec::new(),
            calls: Vec::new(),
            exit: Arc::clone(&exit),
        }));
        let ram = Box::into_raw(vec![0u8; RAM_SIZE].into_boxed_slice());
        let guest_ram = GuestRam { base: RAM_BASE, host: ram as *mut u8, size: RAM_SIZE as u64 };
        // SAFETY: the FakeHost, the RAM and the exit flag live until the harness is dropped, and
        // every use of the table goes through the harness.
        let calls = unsafe {
            HostCalls::new(host as *mut c_void, guest_ram, Arc::as_ptr(&exit), translate, load, store, helper)
        };
        Harness { host, ram, exit, calls }
    }

    fn host(&mut self) -> &mut FakeHost {
        // SAFETY: no host call is in progress while the test holds the harness mutably.
        unsafe { &mut *self.host }
    }

    fn translated(&mut self) -> Vec<u64> {
        self.host().translated.clone()
    }

    fn seen(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.host().calls)
    }

    fn ram_load(&self, addr: u64, size: u8) -> u64 {
        self.calls.ram.load(addr, size).expect("address in RAM")
    }

    fn ram_store(&self, addr: u64, size: u8, value: u64) {
        self.calls.ram.store(addr, size, value).expect("address in RAM");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SAFETY: both were made by Box::into_raw in `new` and are freed once, here.
        unsafe {
            drop(Box::from_raw(self.host));
            drop(Box::from_raw(self.ram));
        }
    }
}

fn r(i: u8) -> Operand {
    Operand::Reg(i)
}
fn t(i: u8) -> Operand {
    Operand::Tmp(i)
}
fn imm(v: u64) -> Operand {
    Operand::Imm(v as i64)
}
fn dr(i: u8) -> Dest {
    Dest::Reg(i)
}
fn at(insn_index: u32) -> At {
    At { pc_offset: 4 * insn_index, insn_index }
}
fn mov(d: Dest, src: Operand) -> IrOp {
    IrOp::Mov { dst: d, src }
}
fn bin(op: BinOp, d: Dest, a: Operand, b: Operand) -> IrOp {
    IrOp::Bin { op, dst: d, a, b }
}
fn ld(d: u8, base: Operand, offset: i64, size: u8, signed: bool, i: u32) -> IrOp {
    IrOp::Load { dst: dr(d), base, offset, access: MemAccess { size, signed }, at: at(i) }
}
fn st(src: Operand, base: Operand, offset: i64, size: u8, i: u32) -> IrOp {
    IrOp::Store { src, base, offset, access: MemAccess { size, signed: false }, at: at(i) }
}
fn call(id: u32, dst: ROption<Dest>, a: Operand, b: Operand, i: u32) -> IrOp {
    IrOp::Helper { id, dst, a, b, at: at(i) }
}
fn block(pc: u64, insn_count: u32, ops: Vec<IrOp>, term: Terminator) -> IrBlock {
    IrBlock { pc, len: 4 * insn_count, insn_count, ops: RVec::from(ops), term }
}
fn jump(target: u64) -> Terminator {
    Terminator::Jump { target }
}
/// One instruction that halts the machine.
fn halt_block(pc: u64) -> IrBlock {
    block(pc, 1, vec![call(H_HALT, RNone, imm(0), imm(0), 0)], jump(pc))
}
fn cpu_at(pc: u64) -> CpuState {
    CpuState { pc, ..CpuState::default() }
}

const ALL_OPS: [BinOp; 28] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::Shl,
    BinOp::Shr,
    BinOp::Sar,
    BinOp::Slt,
    BinOp::Sltu,
    BinOp::Mul,
    BinOp::MulH,
    BinOp::MulHU,
    BinOp::MulHSU,
    BinOp::Div,
    BinOp::DivU,
    BinOp::Rem,
    BinOp::RemU,
    BinOp::AddW,
    BinOp::SubW,
    BinOp::ShlW,
    BinOp::ShrW,
    BinOp::SarW,
    BinOp::MulW,
    BinOp::DivW,
    BinOp::DivUW,
    BinOp::RemW,
    BinOp::RemUW,
];

const EDGE_VALUES: [u64; 16] = [
    0,
    1,
    2,
    5,
    31,
    32,
    63,
    64,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    i64::MIN as u64,
    u64::MAX,
    0x1234_5678_9abc_def0,
];

#[test]
fn every_bin_op_agrees_with_eval_bin_in_every_operand_form() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    for op in ALL_OPS {
        for a in EDGE_VALUES {
            for b in EDGE_VALUES {
                let ops = vec![
                    bin(op, dr(5), r(6), r(7)),
                    bin(op, dr(8), r(6), imm(b)),
                    bin(op, dr(9), imm(a), r(7)),
                    bin(op, Dest::Tmp(3), imm(a), imm(b)),
                    mov(dr(10), t(3)),
                    mov(Dest::Tmp(1), r(6)),
                    mov(Dest::Tmp(31), r(7)),
                    bin(op, Dest::Tmp(4), t(1), t(31)),
                    mov(dr(12), t(4)),
                    bin(op, dr(13), r(13), r(7)),
                    bin(op, dr(14), r(6), r(14)),
                ];
                let mut cpu = cpu_at(RAM_BASE);
                (cpu.x[6], cpu.x[7], cpu.x[13], cpu.x[14]) = (a, b, a, b);
                let flow =
                    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, ops, jump(0x100))).unwrap();
                assert_eq!(flow, Flow::Continue);
                let want = eval_bin(op, a, b);
                for reg in [5, 8, 9, 10, 12, 13, 14] {
                    assert_eq!(cpu.x[reg], want, "{op:?}({a:#x}, {b:#x}) into x{reg}");
                }
                assert_eq!((cpu.x[6], cpu.x[7]), (a, b), "sources unchanged");
            }
        }
    }
    assert!(h.translated().is_empty());
    assert!(h.seen().is_empty());
}

#[test]
fn bin_ops_agree_with_eval_bin_through_the_run_loop() {
    // The same ops as above, but cached, chained and run by `run`, one block per op.
    let ops_per_block = |op: BinOp, i: u64| {
        let pc = RAM_BASE + 0x100 * i;
        block(
            pc,
            2,
            vec![bin(op, dr(5), r(6), r(7)), bin(op, dr(8), r(6), imm(EDGE_VALUES[i as usize % 16]))],
            jump(pc + 0x100),
        )
    };
    let mut blocks: Vec<IrBlock> =
        ALL_OPS.iter().enumerate().map(|(i, &op)| ops_per_block(op, i as u64)).collect();
    blocks.push(halt_block(RAM_BASE + 0x100 * ALL_OPS.len() as u64));
    let mut h = Harness::new(blocks);
    let mut e = Interp::new();
    // Each block overwrites x5/x8; check each op by stopping after its block with the budget.
    for (i, &op) in ALL_OPS.iter().enumerate() {
        let mut cpu = cpu_at(RAM_BASE + 0x100 * i as u64);
        (cpu.x[6], cpu.x[7]) = (0x8000_0000_0000_0007, 0xffff_ffff_ffff_fff3);
        assert_eq!(e.run(&mut cpu, &h.calls, 1).unwrap(), ExitReason::BudgetExhausted);
        assert_eq!(cpu.x[5], eval_bin(op, cpu.x[6], cpu.x[7]), "{op:?} reg-reg");
        assert_eq!(cpu.x[8], eval_bin(op, cpu.x[6], EDGE_VALUES[i % 16]), "{op:?} reg-imm");
        assert_eq!(cpu.pc, RAM_BASE + 0x100 * (i as u64 + 1));
        assert_eq!(cpu.instret, 2);
    }
    assert_eq!(h.translated().len(), ALL_OPS.len());
}

#[test]
fn ram_loads_and_stores_of_every_size_and_signedness() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let addr = RAM_BASE + 0x200;
    let value = 0x8899_aabb_ccdd_eeffu64;
    for size in [1u8, 2, 4, 8] {
        h.ram_store(addr, 8, 0x1111_1111_1111_1111);
        h.ram_store(addr + 8, 8, 0x1111_1111_1111_1111);
        let ops = vec![
            // Base register with a negative displacement, and a constant base.
            st(r(6), r(10), -0x10, size, 0),
            ld(5, r(10), -0x10, size, false, 1),
            ld(7, r(10), -0x10, size, true, 2),
            ld(8, imm(addr), 0, size, true, 3),
            st(imm(value), imm(addr - 4), 12, size, 4),
            ld(9, imm(addr + 8), 0, 8, false, 5),
        ];
        let mut cpu = cpu_at(RAM_BASE);
        (cpu.x[6], cpu.x[10]) = (value, addr + 0x10);
        let flow = e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 6, ops, jump(0))).unwrap();
        assert_eq!(flow, Flow::Continue);
        let m = mask(size);
        let signed =
            if size == 8 { value } else { ((value << (64 - 8 * size)) as i64 >> (64 - 8 * size)) as u64 };
        assert_eq!(cpu.x[5], value & m, "zero-extended load of {size}");
        assert_eq!(cpu.x[7], signed, "sign-extended load of {size}");
        assert_eq!(cpu.x[8], signed, "constant-base load of {size}");
        // Little-endian, and nothing past `size` bytes written.
        for i in 0..8u64 {
            let want = if i < size as u64 { (value >> (8 * i)) & 0xff } else { 0x11 };
            assert_eq!(h.ram_load(addr + i, 1), want, "byte {i} after a store of {size}");
        }
        assert_eq!(cpu.x[9], (0x1111_1111_1111_1111 & !m) | (value & m));
    }
    assert!(h.seen().is_empty(), "RAM accesses never call the host");
}

#[test]
fn accesses_outside_ram_take_the_slow_path() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    for size in [1u8, 2, 4, 8] {
        let ops = vec![
            ld(5, r(10), 8, size, false, 0),
            ld(6, r(10), 8, size, true, 1),
            st(r(7), r(10), 0x10, size, 2),
        ];
        let mut cpu = cpu_at(RAM_BASE);
        (cpu.x[7], cpu.x[10]) = (0x0123_4567_89ab_cdef, MMIO_BASE);
        let flow = e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 3, ops, jump(0))).unwrap();
        assert_eq!(flow, Flow::Continue);
        let raw = MMIO_VALUE & mask(size);
        let signed =
            if size == 8 { raw } else { ((raw << (64 - 8 * size)) as i64 >> (64 - 8 * size)) as u64 };
        assert_eq!(cpu.x[5], raw);
        assert_eq!(cpu.x[6], signed, "the host's raw value is sign-extended by the engine");
        let seen = h.seen();
        let got: Vec<_> = seen.iter().map(|s| (s.what, s.addr, s.size, s.value)).collect();
        assert_eq!(
            got,
            [
                ("load", MMIO_BASE + 8, size, 0),
                ("load", MMIO_BASE + 8, size, 0),
                ("store", MMIO_BASE + 0x10, size, 0x0123_4567_89ab_cdef & mask(size)),
            ]
        );
    }
    // An access that starts in RAM but runs past its end is not RAM either.
    let end = RAM_BASE + RAM_SIZE as u64;
    let mut cpu = cpu_at(RAM_BASE);
    cpu.x[10] = end - 4;
    let ir = block(RAM_BASE, 2, vec![ld(5, r(10), 0, 4, false, 0), ld(6, r(10), 0, 8, false, 1)], jump(0));
    let flow = e.execute_block(&mut cpu, &h.calls, &ir).unwrap();
    assert_eq!(flow, Flow::Redirect, "the fake host faults outside RAM and MMIO");
    assert_eq!(cpu.pc, TRAP);
    let seen = h.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].addr, seen[0].size, seen[0].pc, seen[0].instret), (end - 4, 8, RAM_BASE + 4, 1));
}

#[test]
fn mmio_load_sees_exact_pc_instret_and_registers() {
    let p = RAM_BASE + 0x1000;
    let halt = RAM_BASE + 0x2000;
    let ops = vec![
        mov(dr(5), imm(42)),
        bin(BinOp::Add, dr(6), r(5), imm(1)),
        ld(7, r(10), 0, 4, false, 2),
        bin(BinOp::Add, dr(8), r(7), imm(1)),
    ];
    let mut h = Harness::new([block(p, 4, ops, jump(halt)), halt_block(halt)]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(p);
    cpu.instret = 100;
    cpu.x[10] = MMIO_BASE;
    assert_eq!(e.run(&mut cpu, &h.calls, 1000).unwrap(), ExitReason::Halt);
    let seen = h.seen();
    assert_eq!(seen[0].what, "load");
    assert_eq!((seen[0].pc, seen[0].instret), (p + 8, 102));
    assert_eq!((seen[0].x[5], seen[0].x[6]), (42, 43), "registers written before the call are visible");
    assert_eq!(seen[1].what, "helper");
    assert_eq!((seen[1].pc, seen[1].instret), (halt, 104));
    assert_eq!(cpu.x[8], (MMIO_VALUE & 0xffff_ffff) + 1);
    assert_eq!((cpu.pc, cpu.instret), (halt, 104), "Exit leaves the host's pc and instret");
    let s = e.stats();
    assert_eq!((s.instructions, s.blocks_executed, s.blocks_translated), (4, 1, 2));
}

#[test]
fn helper_redirect_abandons_the_block_with_exact_state() {
    let p = RAM_BASE;
    let q = RAM_BASE + 0x400;
    let halt = RAM_BASE + 0x800;
    let ops = vec![
        mov(dr(5), imm(1)),
        bin(BinOp::Add, dr(6), r(6), imm(1)),
        mov(dr(7), imm(3)),
        call(H_REDIRECT, RNone, imm(q), imm(0), 3),
        mov(dr(5), imm(2)),
    ];
    let mut h = Harness::new([
        block(p, 5, ops, jump(halt)),
        block(q, 2, vec![mov(dr(11), imm(7))], jump(halt)),
        halt_block(halt),
    ]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(p);
    cpu.instret = 10;
    assert_eq!(e.run(&mut cpu, &h.calls, 1000).unwrap(), ExitReason::Halt);
    let seen = h.seen();
    assert_eq!((seen[0].what, seen[0].addr), ("helper", H_REDIRECT as u64));
    assert_eq!((seen[0].pc, seen[0].instret), (p + 12, 13));
    assert_eq!((seen[0].x[5], seen[0].x[6], seen[0].x[7]), (1, 1, 3));
    assert_eq!(cpu.x[5], 1, "the rest of the block did not run");
    assert_eq!(cpu.x[11], 7, "execution went on at the redirected pc");
    assert_eq!(seen[1].pc, halt);
    assert_eq!(seen[1].instret, 15, "3 before the redirect + 2 in the target block");
    assert_eq!(cpu.instret, 15);
    let s = e.stats();
    assert_eq!((s.instructions, s.blocks_executed), (5, 1), "the abandoned block is not counted executed");
    assert_eq!(h.translated(), [p, q, halt]);
}

#[test]
fn helper_values_and_register_changes_flow_back() {
    let ops = vec![
        call(H_ADD, RSome(dr(5)), r(6), imm(10), 0),
        call(H_SET_X9, RSome(Dest::Tmp(2)), imm(77), imm(5), 1),
        bin(BinOp::Add, dr(10), r(9), t(2)),
        call(H_ADD, RNone, imm(1), imm(2), 2),
        // A helper that rewrites the instruction counter mid-block: the block's later instructions
        // count from the new value.
        call(H_SET_INSTRET, RNone, imm(1000), imm(0), 3),
    ];
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(RAM_BASE);
    (cpu.x[6], cpu.instret) = (32, 50);
    let flow = e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 5, ops, jump(RAM_BASE + 0x40))).unwrap();
    assert_eq!(flow, Flow::Continue);
    assert_eq!(cpu.x[5], 42);
    assert_eq!(cpu.x[9], 77, "the helper's register write is kept");
    assert_eq!(cpu.x[10], 82, "and seen by the ops after it");
    assert_eq!(cpu.pc, RAM_BASE + 0x40);
    assert_eq!(cpu.instret, 1000 + 5 - 3);
    let seen = h.seen();
    let at: Vec<_> = seen.iter().map(|s| (s.pc, s.instret)).collect();
    assert_eq!(at, [(RAM_BASE, 50), (RAM_BASE + 4, 51), (RAM_BASE + 8, 52), (RAM_BASE + 12, 53)]);
}

#[test]
fn helper_exit_returns_its_reason_with_state_written_back() {
    let ops = vec![mov(dr(5), imm(9)), call(H_WFI, RNone, imm(0), imm(0), 1), mov(dr(5), imm(10))];
    let h = Harness::new([block(RAM_BASE, 3, ops, jump(RAM_BASE))]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(RAM_BASE);
    assert_eq!(e.run(&mut cpu, &h.calls, 1000).unwrap(), ExitReason::Wfi);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5]), (RAM_BASE + 4, 1, 9));
    assert_eq!(e.stats().instructions, 1);
}

#[test]
fn branches_of_every_condition_pick_the_right_target() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let conds = [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Ge, Cond::Ltu, Cond::Geu];
    for cond in conds {
        for a in EDGE_VALUES {
            for b in [0, 1, u64::MAX, i64::MIN as u64, a] {
                for (ta, tb) in [(r(6), r(7)), (r(6), imm(b)), (imm(a), r(7)), (imm(a), imm(b))] {
                    let term = Terminator::Branch { cond, a: ta, b: tb, taken: 0x1000, not_taken: 0x2000 };
                    let mut cpu = cpu_at(RAM_BASE);
                    (cpu.x[6], cpu.x[7]) = (a, b);
                    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, vec![], term)).unwrap();
                    let want = if vm_plugin_api::ir::eval_cond(cond, a, b) { 0x1000 } else { 0x2000 };
                    assert_eq!(cpu.pc, want, "{cond:?}({a:#x}, {b:#x}) with {ta:?}, {tb:?}");
                    assert_eq!(cpu.instret, 1);
                }
            }
        }
    }
    assert!(h.translated().is_empty());
}

#[test]
fn loops_jumps_and_indirect_jumps_run_chained() {
    // loop: x5 += 1; x6 -= 1; bnez x6, loop
    // then two calls of one function from two sites, returning through an indirect jump.
    let lp = RAM_BASE;
    let site1 = RAM_BASE + 0x100;
    let ret1 = RAM_BASE + 0x108;
    let ret2 = RAM_BASE + 0x110;
    let func = RAM_BASE + 0x200;
    let halt = RAM_BASE + 0x300;
    let blocks = [
        block(
            lp,
            3,
            vec![bin(BinOp::Add, dr(5), r(5), imm(1)), bin(BinOp::Sub, dr(6), r(6), imm(1))],
            Terminator::Branch { cond: Cond::Ne, a: r(6), b: r(0), taken: lp, not_taken: site1 },
        ),
        block(site1, 2, vec![mov(dr(1), imm(ret1))], jump(func)),
        block(ret1, 2, vec![mov(dr(1), imm(ret2))], jump(func)),
        block(ret2, 1, vec![], jump(halt)),
        block(func, 2, vec![bin(BinOp::Add, dr(7), r(7), imm(1))], Terminator::JumpIndirect { target: r(1) }),
        halt_block(halt),
    ];
    let mut h = Harness::new(blocks);
    let mut e = Interp::new();
    let mut cpu = cpu_at(lp);
    cpu.x[6] = 1000;
    // A finite budget, so a wrong link fails the test instead of looping forever.
    assert_eq!(e.run(&mut cpu, &h.calls, 100_000).unwrap(), ExitReason::Halt);
    assert_eq!((cpu.x[5], cpu.x[6], cpu.x[7]), (1000, 0, 2));
    assert_eq!(cpu.pc, halt);
    assert_eq!(cpu.instret, 3000 + 2 + 2 + 2 + 2 + 1);
    assert_eq!(h.translated(), [lp, site1, func, ret1, ret2, halt], "each block translated once");
    let s = e.stats();
    assert_eq!((s.blocks_executed, s.blocks_translated, s.instructions), (1005, 6, 3009));
}

#[test]
fn budget_is_checked_at_every_block_boundary() {
    let lp = RAM_BASE;
    let mut h = Harness::new([block(lp, 3, vec![bin(BinOp::Add, dr(5), r(5), imm(1))], jump(lp))]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(lp);
    assert_eq!(e.run(&mut cpu, &h.calls, 0).unwrap(), ExitReason::BudgetExhausted);
    assert_eq!((cpu.x[5], cpu.instret), (0, 0));
    assert!(h.translated().is_empty(), "a zero budget runs nothing");
    assert_eq!(e.run(&mut cpu, &h.calls, 10).unwrap(), ExitReason::BudgetExhausted);
    assert_eq!((cpu.x[5], cpu.instret, cpu.pc), (4, 12, lp), "stops at the first boundary past the budget");
    assert_eq!(e.run(&mut cpu, &h.calls, 3).unwrap(), ExitReason::BudgetExhausted);
    assert_eq!((cpu.x[5], cpu.instret), (5, 15));
    assert_eq!(h.translated(), [lp]);
    assert_eq!(e.stats().instructions, 15);
}

#[test]
fn exit_request_is_obeyed_at_the_next_block_boundary() {
    let a = RAM_BASE;
    let b = RAM_BASE + 0x100;
    let ops = vec![call(H_REQUEST_EXIT, RNone, imm(0), imm(0), 0), mov(dr(5), imm(1))];
    let mut h = Harness::new([block(a, 2, ops, jump(b)), block(b, 1, vec![mov(dr(6), imm(1))], jump(a))]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(a);
    h.exit.store(1, Ordering::Relaxed);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret), (a, 0));
    assert!(h.translated().is_empty());
    h.exit.store(0, Ordering::Relaxed);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5], cpu.x[6]), (b, 2, 1, 0), "the block completed first");
}

#[test]
fn flush_code_drops_every_translation() {
    let a = RAM_BASE;
    let b = RAM_BASE + 0x100;
    let halt = RAM_BASE + 0x200;
    let mut h = Harness::new([
        block(a, 2, vec![bin(BinOp::Add, dr(5), r(5), imm(1))], Terminator::FlushCode { next: b }),
        block(
            b,
            1,
            vec![],
            Terminator::Branch { cond: Cond::Ne, a: r(5), b: imm(3), taken: a, not_taken: halt },
        ),
        halt_block(halt),
    ]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::Halt);
    assert_eq!(cpu.x[5], 3);
    assert_eq!(h.translated(), [a, b, a, b, a, b, halt]);
    let s = e.stats();
    assert_eq!((s.cache_flushes, s.blocks_translated, s.instructions), (3, 7, 9));
}

#[test]
fn invalidate_picks_up_changed_code() {
    let a = RAM_BASE;
    let halt = RAM_BASE + 0x100;
    let mut h = Harness::new([block(a, 1, vec![mov(dr(5), imm(1))], jump(halt)), halt_block(halt)]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    h.host().blocks.insert(a, block(a, 1, vec![mov(dr(5), imm(2))], jump(halt)));
    let mut cpu = cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 1, "cached code runs until invalidated");
    e.invalidate();
    let mut cpu = cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 2);
    assert_eq!(h.translated(), [a, halt, a, halt]);
}

#[test]
fn execute_block_runs_exactly_one_block() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(RAM_BASE);
    cpu.instret = 7;
    let ir = block(RAM_BASE, 2, vec![mov(dr(5), imm(5))], jump(RAM_BASE + 0x40));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Continue);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5]), (RAM_BASE + 0x40, 9, 5));
    let ir = block(RAM_BASE, 2, vec![call(H_REDIRECT, RNone, imm(TRAP), imm(0), 1)], jump(0));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Redirect);
    assert_eq!((cpu.pc, cpu.instret), (TRAP, 10));
    let ir = block(RAM_BASE, 1, vec![call(H_HALT, RNone, imm(0), imm(0), 0)], jump(0));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Exit(ExitReason::Halt));
    let ir = block(RAM_BASE, 1, vec![], Terminator::FlushCode { next: 0x44 });
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Continue);
    assert_eq!((cpu.pc, cpu.instret), (0x44, 11));
    assert!(h.translated().is_empty(), "execute_block never translates");
    let s = e.stats();
    assert_eq!((s.instructions, s.blocks_executed, s.blocks_translated, s.cache_flushes), (4, 2, 0, 1));
}

#[test]
fn reset_clears_translations_and_stats() {
    let a = RAM_BASE;
    let mut h = Harness::new([block(a, 2, vec![], jump(a))]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(a);
    e.run(&mut cpu, &h.calls, 10).unwrap();
    assert_eq!(
        e.stats(),
        ExecutionStats { instructions: 10, blocks_executed: 5, blocks_translated: 1, cache_flushes: 0 }
    );
    e.reset().unwrap();
    assert_eq!(e.stats(), ExecutionStats::default());
    e.run(&mut cpu, &h.calls, 2).unwrap();
    assert_eq!(h.translated(), [a, a], "reset dropped the translation");
}

#[test]
fn register_zero_always_reads_zero() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let mut cpu = cpu_at(RAM_BASE);
    cpu.x[0] = 0xdead; // a host bug must not leak into the guest
    let ops = vec![
        mov(dr(5), r(0)),
        // The frontend never writes x0; if IR does, the write is discarded.
        mov(dr(0), imm(5)),
        bin(BinOp::Add, dr(0), r(0), imm(9)),
        bin(BinOp::Add, dr(6), r(0), imm(1)),
        ld(0, imm(RAM_BASE), 0, 8, false, 0),
        mov(dr(7), r(0)),
    ];
    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, ops, jump(0))).unwrap();
    assert_eq!((cpu.x[0], cpu.x[5], cpu.x[6], cpu.x[7]), (0, 0, 1, 0));
    assert!(h.seen().is_empty());
}

#[test]
fn translation_answers_redirect_exit_and_errors() {
    let a = RAM_BASE;
    let b = RAM_BASE + 0x100;
    let mut h = Harness::new([halt_block(b)]);
    h.host().fetch_flows.insert(a, (Flow::Redirect, b));
    let mut e = Interp::new();
    let mut cpu = cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    assert_eq!(cpu.pc, b, "a fetch fault redirected to the handler");
    h.host().fetch_flows.insert(a, (Flow::Exit(ExitReason::Halt), a));
    let mut cpu = cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    h.host().fetch_flows.insert(a, (Flow::Continue, a));
    let err = e.run(&mut cpu_at(a), &h.calls, 100).unwrap_err();
    assert!(err.message().contains("Flow::Continue"), "{err}");
    // A block for the wrong pc is refused.
    let c = RAM_BASE + 0x200;
    h.host().blocks.insert(c, halt_block(b));
    let err = e.run(&mut cpu_at(c), &h.calls, 100).unwrap_err();
    assert!(err.message().contains("0x80000200"), "{err}");
}

#[test]
fn malformed_ir_is_refused() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let bad = [
        mov(Dest::Tmp(32), imm(0)),
        mov(dr(5), Operand::Reg(32)),
        ld(5, r(6), 0, 3, false, 0),
        st(r(5), r(6), 0, 16, 0),
    ];
    for op in bad {
        let err = e.execute_block(&mut cpu_at(RAM_BASE), &h.calls, &block(RAM_BASE, 1, vec![op], jump(0)));
        let err = err.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Engine);
        assert!(err.message().contains("malformed IR block"), "{err}");
    }
    // A refused block leaves the cache usable.
    let mut h2 = Harness::new([block(RAM_BASE, 1, vec![mov(Dest::Tmp(40), imm(0))], jump(0))]);
    assert!(e.run(&mut cpu_at(RAM_BASE), &h2.calls, 100).is_err());
    assert!(h.seen().is_empty() && h2.seen().is_empty());
}

#[test]
fn configuration_is_checked() {
    let e = Interp::from_config("").unwrap();
    assert!(!e.prefers_async());
    assert_eq!(e.get_config(), "async = false\n");
    let mut e = Interp::from_config("async = true").unwrap();
    assert!(e.prefers_async());
    let err = Interp::from_config("asink = true").err().unwrap();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message().contains("asink"), "{err}");
    assert!(Interp::from_config("async = 3").is_err());
    assert!(e.validate_config("nope = 1").is_err());
    e.update_config("async = false").unwrap();
    assert!(!e.prefers_async());
}

#[test]
fn the_root_module_describes_and_builds_the_engine() {
    let m = module();
    let info = m.plugin_info();
    assert_eq!(info.name.as_str(), "interp");
    assert_eq!(info.kind, vm_plugin_api::PluginKind::Engine);
    let create = m.create_engine().expect("an engine plugin");
    let engine = create(RStr::from("async = true")).unwrap();
    assert!(engine.is_async());
    assert!(create(RStr::from("bogus = 1")).is_err());
}
