//! Unit tests: the interpreter against a fake host (hand-written IR blocks, a RAM buffer behind a
//! software TLB per MMU mode that the host fills on a miss, an MMIO range, atomics, and a helper
//! table whose helpers record their calls and answer with chosen flows).

use super::*;
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
use vm_plugin_api::abi_stable::std_types::{RNone, ROption, RSlice, RSome, RVec};
use vm_plugin_api::cpu::{
    MMU_MODES, NO_RESERVATION, PAGE_BITS, PAGE_MASK, PAGE_SIZE, TLB_ENTRY_BITS, attn, tlb_flag,
};
use vm_plugin_api::ir::{NO_PAGE, eval_amo, eval_bin, eval_un, mem_flag};
use vm_plugin_api::memory::MemoryOrder;
use vm_plugin_api::{
    At, AtomicKind, AtomicOp, AtomicReq, BinOp, Cond, Dest, EngineContext, ErrorKind, HelperEntry,
    HelperFlags, HostResult, IrOp, MemAccess, Operand, Terminator, TlbEntry, TlbFast, UnOp,
};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 0x1_0000;
const MMIO_BASE: u64 = 0x1000_0000;
const MMIO_SIZE: u64 = 0x100;
/// Where the fake host sends the guest on a fault.
const TRAP: u64 = 0x8000_f000;
/// Raw bytes the fake MMIO device answers with (truncated to the access size).
const MMIO_VALUE: u64 = 0xf1e2_d3c4_b5a6_9788;
/// Entries of each fake TLB table.
const TLB_ENTRIES: usize = 256;
/// A data page no test block lies on, so its first access misses.
const DATA: u64 = RAM_BASE + 0x8000;

/// Helper ids: indices into the fake host's table.
const H_HALT: u32 = 0; // Exit(Halt)
const H_ADD: u32 = 1; // Continue with a + b + c + imm
const H_REDIRECT: u32 = 2; // cpu.pc = a, Redirect
const H_SET_X9: u32 = 3; // cpu.x[9] = a, Continue with b
const H_REQUEST_EXIT: u32 = 4; // set the attention word, Continue
const H_WFI: u32 = 5; // Exit(Wfi)
const H_SET_INSTRET: u32 = 6; // cpu.instret = a (a counter CSR write), Continue
const H_SET_F3: u32 = 7; // cpu.f[3] = a, Continue with f[2]
const H_SWAP_TLB: u32 = 8; // replace mode 0's table with the alias table, Continue

static HELPERS: [HelperEntry; 9] = [
    entry(helper::<0>),
    entry(helper::<1>),
    entry(helper::<2>),
    entry(helper::<3>),
    entry(helper::<4>),
    entry(helper::<5>),
    entry(helper::<6>),
    entry(helper::<7>),
    entry(helper::<8>),
];

const fn entry(func: vm_plugin_api::HelperFn) -> HelperEntry {
    HelperEntry { func, flags: HelperFlags(0) }
}

/// A host call as the fake host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    what: &'static str,
    /// Address, or helper id.
    addr: u64,
    size: u8,
    /// Stored value, atomic operand, or the helper's first argument.
    value: u64,
    pc: u64,
    instret: u64,
    regs: [u64; 64],
}

struct FakeHost {
    blocks: HashMap<u64, IrBlock>,
    /// Non-block answers to translation requests.
    fetch_flows: HashMap<u64, (Flow, u64)>,
    translated: Vec<u64>,
    calls: Vec<Seen>,
    ram: Box<[u8]>,
    tlb: [Box<[TlbEntry]>; MMU_MODES],
    /// Mode 0's replacement table (`H_SWAP_TLB`): RAM pages mapped one page higher.
    alias: Box<[TlbEntry]>,
    /// Whether a miss fills the TLB (else every RAM access keeps taking the slow path).
    fill: bool,
    /// Pages holding code: their `write` tags get NOTDIRTY.
    code_pages: HashSet<u64>,
    attention: Box<AtomicU32>,
    /// Helper calls: id and arguments.
    helper_args: Vec<(u32, [u64; 4])>,
    /// Lower blocks under these flags instead of the state's (a host bug).
    wrong_flags: Option<u32>,
}

fn seen(what: &'static str, cpu: &CpuState, addr: u64, size: u8, value: u64) -> Seen {
    Seen { what, addr, size, value, pc: cpu.pc, instret: cpu.instret, regs: *cpu.regs() }
}

fn table(entries: &mut [TlbEntry]) -> TlbFast {
    TlbFast { mask: ((entries.len() - 1) << TLB_ENTRY_BITS) as u64, table: entries.as_mut_ptr() }
}

fn tlb_index(vaddr: u64) -> usize {
    (vaddr >> PAGE_BITS) as usize % TLB_ENTRIES
}

impl FakeHost {
    /// The RAM offset of `size` bytes at `addr`, if they lie in RAM.
    fn ram_offset(&self, addr: u64, size: u64) -> Option<usize> {
        let off = addr.wrapping_sub(RAM_BASE);
        (off < RAM_SIZE as u64 && size <= RAM_SIZE as u64 - off).then_some(off as usize)
    }

    /// Maps the RAM page holding `addr` in every mode, as the host does on a miss.
    fn map(&mut self, addr: u64) {
        let page = addr & PAGE_MASK;
        let addend = (self.ram.as_ptr() as u64).wrapping_sub(RAM_BASE);
        let notdirty = if self.code_pages.contains(&page) { tlb_flag::NOTDIRTY } else { 0 };
        let e = TlbEntry { read: page, write: page | notdirty, exec: page, addend };
        for t in &mut self.tlb {
            t[tlb_index(page)] = e;
        }
    }

    /// The slow path's RAM check: maps the pages of the access (if filling) and gives its offset.
    fn ram_access(&mut self, addr: u64, size: u8) -> Option<usize> {
        let off = self.ram_offset(addr, size as u64)?;
        if self.fill {
            self.map(addr);
            self.map(addr + size as u64 - 1);
        }
        Some(off)
    }

    fn read(&self, off: usize, size: u8) -> u64 {
        (0..size as usize).map(|i| (self.ram[off + i] as u64) << (8 * i)).sum()
    }

    fn write(&mut self, off: usize, size: u8, value: u64) {
        for i in 0..size as usize {
            self.ram[off + i] = (value >> (8 * i)) as u8;
        }
    }
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
    if h.fill && h.ram_offset(pc, 4).is_some() {
        h.map(pc);
    }
    match h.blocks.get(&pc) {
        // A real host lowers under the current translation context.
        Some(b) => Fetched::Block(IrBlock { flags: h.wrong_flags.unwrap_or(cpu.tb_flags), ..b.clone() }),
        None => Fetched::Flow(Flow::Exit(ExitReason::HostError)),
    }
}

fn fault(cpu: &mut CpuState) -> HostResult {
    cpu.pc = TRAP;
    HostResult::flow(Flow::Redirect)
}

unsafe extern "C" fn load(ctx: *mut c_void, cpu: &mut CpuState, addr: u64, access: MemAccess) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    let size = access.size;
    h.calls.push(seen("load", cpu, addr, size, 0));
    if addr.wrapping_sub(MMIO_BASE) < MMIO_SIZE {
        return HostResult::value(MMIO_VALUE & mask(size));
    }
    if access.aligned() && !addr.is_multiple_of(size as u64) {
        return fault(cpu);
    }
    match h.ram_access(addr, size) {
        // Raw bytes, as a device answers: the engine extends them.
        Some(off) => HostResult::value(h.read(off, size)),
        None => fault(cpu),
    }
}

unsafe extern "C" fn store(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    addr: u64,
    access: MemAccess,
    value: u64,
) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    let size = access.size;
    h.calls.push(seen("store", cpu, addr, size, value));
    if addr.wrapping_sub(MMIO_BASE) < MMIO_SIZE {
        return HostResult::value(0);
    }
    if access.aligned() && !addr.is_multiple_of(size as u64) {
        return fault(cpu);
    }
    match h.ram_access(addr, size) {
        Some(off) => {
            h.write(off, size, value);
            HostResult::value(0)
        }
        None => fault(cpu),
    }
}

/// The slow path of every atomic, with the semantics of the IR docs (single-threaded here).
unsafe extern "C" fn atomic(ctx: *mut c_void, cpu: &mut CpuState, req: &AtomicReq) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    let (addr, size) = (req.addr, req.access.size);
    h.calls.push(seen("atomic", cpu, addr, size, req.src));
    if !addr.is_multiple_of(size as u64) {
        return fault(cpu);
    }
    let Some(off) = h.ram_access(addr, size) else { return fault(cpu) };
    let old = h.read(off, size);
    let sx = |v: u64| if size == 4 { v as u32 as i32 as i64 as u64 } else { v };
    match req.kind {
        AtomicKind::Amo => {
            h.write(off, size, eval_amo(req.op, size, old, req.src));
            // Raw, not sign-extended: the engine extends 4-byte results.
            HostResult::value(old)
        }
        AtomicKind::LoadReserved => {
            (cpu.resv_addr, cpu.resv_value) = (addr, sx(old));
            HostResult::value(old)
        }
        AtomicKind::StoreConditional => {
            let ok = cpu.resv_addr == addr && old == cpu.resv_value & mask(size);
            if ok {
                h.write(off, size, req.src);
            }
            cpu.resv_addr = NO_RESERVATION;
            HostResult::value(!ok as u64)
        }
    }
}

unsafe extern "C" fn helper<const ID: u32>(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    a: u64,
    b: u64,
    c: u64,
    imm: u64,
) -> HostResult {
    // SAFETY: as in `translate`.
    let h = unsafe { fake(ctx) };
    h.calls.push(seen("helper", cpu, ID as u64, 0, a));
    h.helper_args.push((ID, [a, b, c, imm]));
    match ID {
        H_HALT => HostResult::flow(Flow::Exit(ExitReason::Halt)),
        H_ADD => HostResult::value(a.wrapping_add(b).wrapping_add(c).wrapping_add(imm)),
        H_REDIRECT => {
            cpu.pc = a;
            HostResult::flow(Flow::Redirect)
        }
        H_SET_X9 => {
            cpu.x[9] = a;
            HostResult::value(b)
        }
        H_REQUEST_EXIT => {
            h.attention.fetch_or(attn::EXIT, Ordering::Relaxed);
            HostResult::value(0)
        }
        H_WFI => HostResult::flow(Flow::Exit(ExitReason::Wfi)),
        H_SET_INSTRET => {
            cpu.instret = a;
            HostResult::value(0)
        }
        H_SET_F3 => {
            cpu.f[3] = a;
            HostResult::value(cpu.f[2])
        }
        H_SWAP_TLB => {
            cpu.tlb[0] = table(&mut h.alias);
            HostResult::value(0)
        }
        _ => HostResult::flow(Flow::Exit(ExitReason::HostError)),
    }
}

fn mask(size: u8) -> u64 {
    if size >= 8 { u64::MAX } else { (1u64 << (8 * size)) - 1 }
}

/// A fake host: owns the host state (RAM, TLB tables, attention word) the `HostCalls` table and
/// the states it makes point into.
struct Harness {
    host: *mut FakeHost,
    calls: HostCalls,
}

impl Harness {
    fn new(blocks: impl IntoIterator<Item = IrBlock>) -> Harness {
        let empty = || vec![TlbEntry::EMPTY; TLB_ENTRIES].into_boxed_slice();
        let mut ram = vec![0u8; RAM_SIZE].into_boxed_slice();
        let mut alias = empty();
        let addend = (ram.as_mut_ptr() as u64).wrapping_sub(RAM_BASE).wrapping_add(PAGE_SIZE);
        for page in (RAM_BASE..RAM_BASE + RAM_SIZE as u64 - PAGE_SIZE).step_by(PAGE_SIZE as usize) {
            alias[tlb_index(page)] = TlbEntry { read: page, write: page, exec: page, addend };
        }
        let host = Box::into_raw(Box::new(FakeHost {
            blocks: blocks.into_iter().map(|b| (b.pc, b)).collect(),
            fetch_flows: HashMap::new(),
            translated: Vec::new(),
            calls: Vec::new(),
            ram,
            tlb: std::array::from_fn(|_| empty()),
            alias,
            fill: true,
            code_pages: HashSet::new(),
            attention: Box::new(AtomicU32::new(0)),
            helper_args: Vec::new(),
            wrong_flags: None,
        }));
        // SAFETY: the FakeHost lives until the harness is dropped, and every use of the table goes
        // through the harness.
        let calls = unsafe { HostCalls::new(host as *mut c_void, translate, load, store, atomic, &HELPERS) };
        Harness { host, calls }
    }

    fn host(&mut self) -> &mut FakeHost {
        // SAFETY: no host call is in progress while the test holds the harness mutably.
        unsafe { &mut *self.host }
    }

    fn host_ref(&self) -> &FakeHost {
        // SAFETY: as in `host`.
        unsafe { &*self.host }
    }

    /// A state at `pc` wired to this host's TLB tables and attention word.
    fn cpu_at(&mut self, pc: u64) -> CpuState {
        let h = self.host();
        let mut cpu = CpuState { pc, ..CpuState::default() };
        for (t, entries) in cpu.tlb.iter_mut().zip(&mut h.tlb) {
            *t = table(entries);
        }
        cpu.attention = &raw const *h.attention;
        cpu
    }

    /// Maps all of RAM in every mode, so RAM accesses never reach the host.
    fn map_ram(&mut self) {
        for page in (RAM_BASE..RAM_BASE + RAM_SIZE as u64).step_by(PAGE_SIZE as usize) {
            self.host().map(page);
        }
    }

    /// Empties every TLB table and stops the host refilling them.
    fn unmap_ram(&mut self) {
        let h = self.host();
        h.fill = false;
        for t in &mut h.tlb {
            t.fill(TlbEntry::EMPTY);
        }
    }

    fn translated(&mut self) -> Vec<u64> {
        self.host().translated.clone()
    }

    fn seen(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.host().calls)
    }

    fn set_attention(&mut self, v: u32) {
        self.host().attention.store(v, Ordering::Relaxed);
    }

    fn ram_load(&self, addr: u64, size: u8) -> u64 {
        let h = self.host_ref();
        h.read(h.ram_offset(addr, size as u64).expect("address in RAM"), size)
    }

    fn ram_store(&mut self, addr: u64, size: u8, value: u64) {
        let h = self.host();
        let off = h.ram_offset(addr, size as u64).expect("address in RAM");
        h.write(off, size, value);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw in `new` and freed once, here.
        unsafe { drop(Box::from_raw(self.host)) };
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
    IrOp::Load { dst: dr(d), base, offset, access: MemAccess::new(size, signed, 0), at: at(i) }
}
fn st(src: Operand, base: Operand, offset: i64, size: u8, i: u32) -> IrOp {
    IrOp::Store { src, base, offset, access: MemAccess::new(size, false, 0), at: at(i) }
}
fn call(id: u32, dst: ROption<Dest>, a: Operand, b: Operand, i: u32) -> IrOp {
    call3(id, HelperFlags::default(), dst, [a, b, imm(0)], 0, i)
}
fn call3(id: u32, flags: HelperFlags, dst: ROption<Dest>, args: [Operand; 3], imm: u64, i: u32) -> IrOp {
    IrOp::Helper { id, flags, dst, args, imm, at: at(i) }
}
fn aligned(size: u8, mmu: u8) -> MemAccess {
    MemAccess { flags: mem_flag::ALIGNED, ..MemAccess::new(size, false, mmu) }
}
fn amo(op: AtomicOp, d: u8, addr: Operand, src: Operand, access: MemAccess) -> IrOp {
    IrOp::Amo { op, dst: dr(d), addr, src, access, order: MemoryOrder::SeqCst, at: at(0) }
}
fn lr(d: u8, addr: Operand, access: MemAccess) -> IrOp {
    IrOp::LoadReserved { dst: dr(d), addr, access, order: MemoryOrder::Acquire, at: at(0) }
}
fn sc(d: u8, addr: Operand, src: Operand, access: MemAccess) -> IrOp {
    IrOp::StoreConditional { dst: dr(d), addr, src, access, order: MemoryOrder::Release, at: at(0) }
}
fn block(pc: u64, insn_count: u32, ops: Vec<IrOp>, term: Terminator) -> IrBlock {
    IrBlock {
        pc,
        phys_pc: pc,
        flags: 0,
        len: 4 * insn_count,
        insn_count,
        pages: [pc & PAGE_MASK, NO_PAGE],
        ops: RVec::from(ops),
        term,
    }
}
fn jump(target: u64) -> Terminator {
    Terminator::Jump { target }
}
/// One instruction that halts the machine.
fn halt_block(pc: u64) -> IrBlock {
    block(pc, 1, vec![call(H_HALT, RNone, imm(0), imm(0), 0)], jump(pc))
}

const ALL_OPS: [BinOp; 39] = [
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
    BinOp::Andn,
    BinOp::Orn,
    BinOp::Xnor,
    BinOp::Min,
    BinOp::Max,
    BinOp::MinU,
    BinOp::MaxU,
    BinOp::Rol,
    BinOp::Ror,
    BinOp::RolW,
    BinOp::RorW,
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
                let mut cpu = h.cpu_at(RAM_BASE);
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
        let mut cpu = h.cpu_at(RAM_BASE + 0x100 * i as u64);
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
    h.map_ram();
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
        let mut cpu = h.cpu_at(RAM_BASE);
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
    h.map_ram();
    let mut e = Interp::new();
    for size in [1u8, 2, 4, 8] {
        let ops = vec![
            ld(5, r(10), 8, size, false, 0),
            ld(6, r(10), 8, size, true, 1),
            st(r(7), r(10), 0x10, size, 2),
        ];
        let mut cpu = h.cpu_at(RAM_BASE);
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
    let mut cpu = h.cpu_at(RAM_BASE);
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
    let mut cpu = h.cpu_at(p);
    cpu.instret = 100;
    cpu.x[10] = MMIO_BASE;
    assert_eq!(e.run(&mut cpu, &h.calls, 1000).unwrap(), ExitReason::Halt);
    let seen = h.seen();
    assert_eq!(seen[0].what, "load");
    assert_eq!((seen[0].pc, seen[0].instret), (p + 8, 102));
    assert_eq!((seen[0].regs[5], seen[0].regs[6]), (42, 43), "registers written before the call are visible");
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
    let mut cpu = h.cpu_at(p);
    cpu.instret = 10;
    assert_eq!(e.run(&mut cpu, &h.calls, 1000).unwrap(), ExitReason::Halt);
    let seen = h.seen();
    assert_eq!((seen[0].what, seen[0].addr), ("helper", H_REDIRECT as u64));
    assert_eq!((seen[0].pc, seen[0].instret), (p + 12, 13));
    assert_eq!((seen[0].regs[5], seen[0].regs[6], seen[0].regs[7]), (1, 1, 3));
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
    let mut cpu = h.cpu_at(RAM_BASE);
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
    let mut h = Harness::new([block(RAM_BASE, 3, ops, jump(RAM_BASE))]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(RAM_BASE);
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
                    let mut cpu = h.cpu_at(RAM_BASE);
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
    let mut cpu = h.cpu_at(lp);
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
    let mut cpu = h.cpu_at(lp);
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
fn attention_set_during_a_helper_stops_the_run_at_the_next_block_boundary() {
    let a = RAM_BASE;
    let b = RAM_BASE + 0x100;
    let ops = vec![call(H_REQUEST_EXIT, RNone, imm(0), imm(0), 0), mov(dr(5), imm(1))];
    let mut h = Harness::new([block(a, 2, ops, jump(b)), block(b, 1, vec![mov(dr(6), imm(1))], jump(a))]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
    h.set_attention(attn::IRQ);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret), (a, 0), "checked at the run's first boundary");
    assert!(h.translated().is_empty());
    h.set_attention(0);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5], cpu.x[6]), (b, 2, 1, 0), "the block completed first");
}

#[test]
fn exit_terminator_completes_the_block_and_returns() {
    let a = RAM_BASE;
    let b = RAM_BASE + 0x100;
    let mut h = Harness::new([
        block(a, 2, vec![bin(BinOp::Add, dr(5), r(5), imm(1))], Terminator::Exit { next: b }),
        block(b, 1, vec![], jump(a)),
    ]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5]), (b, 2, 1));
    // The next run goes on from `next`, with the translations kept.
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::ExitRequested);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5]), (b, 5, 2));
    assert_eq!(h.translated(), [a, b]);
    let s = e.stats();
    assert_eq!((s.cache_flushes, s.blocks_translated, s.instructions, s.blocks_executed), (0, 2, 5, 3));
}

#[test]
fn invalidate_all_and_virtual_mappings_pick_up_changed_code() {
    let a = RAM_BASE;
    let halt = RAM_BASE + 0x100;
    let mut h = Harness::new([block(a, 1, vec![mov(dr(5), imm(1))], jump(halt)), halt_block(halt)]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    h.host().blocks.insert(a, block(a, 1, vec![mov(dr(5), imm(2))], jump(halt)));
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 1, "cached code runs until invalidated");
    e.invalidate(Invalidate::All);
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 2);
    h.host().blocks.insert(a, block(a, 1, vec![mov(dr(5), imm(3))], jump(halt)));
    // The cache is keyed by virtual pc: a mapping change drops it all.
    e.invalidate(Invalidate::VirtualMappings);
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 3);
    assert_eq!(h.translated(), [a, halt, a, halt, a, halt]);
    assert_eq!(e.stats().cache_flushes, 2);
    e.invalidate(Invalidate::Pages(RSlice::from_slice(&[a])));
    e.invalidate(Invalidate::All);
    e.invalidate(Invalidate::All);
    assert_eq!(e.stats().cache_flushes, 4, "an invalidation that drops nothing is not a flush");
}

#[test]
fn invalidate_pages_drops_only_the_blocks_on_those_pages_and_links_into_them() {
    // a (page 0) -> b (page 1) -> c (page 2, crossing into page 3) -> halt (page 4).
    let page = |i: u64| RAM_BASE + i * PAGE_SIZE;
    let (a, b, c, halt) = (page(0), page(1), page(2) + 0xff8, page(4));
    let blocks = |v: u64| {
        let mut cross = block(c, 2, vec![mov(dr(7), imm(v))], jump(halt));
        cross.pages = [page(2), page(3)];
        [
            block(a, 1, vec![bin(BinOp::Add, dr(5), r(5), imm(1))], jump(b)),
            block(b, 1, vec![mov(dr(6), imm(v))], jump(c)),
            cross,
            halt_block(halt),
        ]
    };
    let mut h = Harness::new(blocks(1));
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    assert_eq!(h.translated(), [a, b, c, halt]);
    // New code everywhere, but only what is invalidated is translated again.
    h.host().blocks.extend(blocks(2).map(|b| (b.pc, b)));
    e.invalidate(Invalidate::Pages(RSlice::from_slice(&[page(9)])));
    assert_eq!(e.stats().cache_flushes, 0, "an unrelated page drops nothing");
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!((cpu.x[6], cpu.x[7]), (1, 1));
    e.invalidate(Invalidate::Pages(RSlice::from_slice(&[page(1)])));
    assert_eq!(e.stats().cache_flushes, 1);
    let mut cpu = h.cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    assert_eq!(cpu.x[6], 2, "a's link to the dropped b was not followed");
    assert_eq!(cpu.x[7], 1, "c was kept");
    assert_eq!(h.translated()[4..], [b], "only b was translated again");
    // A block is dropped through its second page too.
    e.invalidate(Invalidate::Pages(RSlice::from_slice(&[page(3)])));
    let mut cpu = h.cpu_at(a);
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(h.translated()[5..], [c]);
    assert_eq!((cpu.x[5], cpu.x[7], cpu.pc), (1, 2, halt));
    assert_eq!(e.stats().cache_flushes, 2);
}

#[test]
fn execute_block_runs_exactly_one_block() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(RAM_BASE);
    cpu.instret = 7;
    let ir = block(RAM_BASE, 2, vec![mov(dr(5), imm(5))], jump(RAM_BASE + 0x40));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Continue);
    assert_eq!((cpu.pc, cpu.instret, cpu.x[5]), (RAM_BASE + 0x40, 9, 5));
    let ir = block(RAM_BASE, 2, vec![call(H_REDIRECT, RNone, imm(TRAP), imm(0), 1)], jump(0));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Redirect);
    assert_eq!((cpu.pc, cpu.instret), (TRAP, 10));
    let ir = block(RAM_BASE, 1, vec![call(H_HALT, RNone, imm(0), imm(0), 0)], jump(0));
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Exit(ExitReason::Halt));
    let ir = block(RAM_BASE, 1, vec![], Terminator::Exit { next: 0x44 });
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Exit(ExitReason::ExitRequested));
    assert_eq!((cpu.pc, cpu.instret), (0x44, 11));
    assert!(h.translated().is_empty(), "execute_block never translates");
    let s = e.stats();
    assert_eq!((s.instructions, s.blocks_executed, s.blocks_translated, s.cache_flushes), (4, 2, 0, 0));
}

#[test]
fn reset_clears_translations_and_stats() {
    let a = RAM_BASE;
    let mut h = Harness::new([block(a, 2, vec![], jump(a))]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
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
    h.map_ram();
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(RAM_BASE);
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
    let mut cpu = h.cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    assert_eq!(cpu.pc, b, "a fetch fault redirected to the handler");
    h.host().fetch_flows.insert(a, (Flow::Exit(ExitReason::Halt), a));
    let mut cpu = h.cpu_at(a);
    assert_eq!(e.run(&mut cpu, &h.calls, 100).unwrap(), ExitReason::Halt);
    h.host().fetch_flows.insert(a, (Flow::Continue, a));
    let err = e.run(&mut h.cpu_at(a), &h.calls, 100).unwrap_err();
    assert!(err.message().contains("Flow::Continue"), "{err}");
    // A block for the wrong pc is refused.
    let c = RAM_BASE + 0x200;
    h.host().blocks.insert(c, halt_block(b));
    let err = e.run(&mut h.cpu_at(c), &h.calls, 100).unwrap_err();
    assert!(err.message().contains("0x80000200"), "{err}");
    // A block lowered under other flags than the state's is refused.
    let d = RAM_BASE + 0x300;
    h.host().blocks.insert(d, halt_block(d));
    h.host().wrong_flags = Some(4);
    let mut cpu = h.cpu_at(d);
    cpu.tb_flags = 3;
    let err = e.run(&mut cpu, &h.calls, 100).unwrap_err();
    assert!(err.message().contains("tb_flags 0x3") && err.message().contains("0x4"), "{err}");
}

#[test]
fn malformed_ir_is_refused() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let bad = [
        mov(Dest::Tmp(32), imm(0)),
        mov(dr(5), Operand::Reg(64)),
        mov(Dest::Reg(64), imm(0)),
        ld(5, r(6), 0, 3, false, 0),
        st(r(5), r(6), 0, 16, 0),
        IrOp::Load { dst: dr(5), base: r(6), offset: 0, access: MemAccess::new(8, false, 4), at: at(0) },
        amo(AtomicOp::Add, 5, r(6), r(7), aligned(2, 0)),
        IrOp::LoadReserved {
            dst: dr(5),
            addr: r(6),
            access: aligned(1, 0),
            order: MemoryOrder::SeqCst,
            at: at(0),
        },
        sc(5, r(6), r(7), aligned(8, 7)),
        call3(H_ADD, HelperFlags::default(), RNone, [imm(0), imm(0), Operand::Tmp(99)], 0, 0),
    ];
    for op in bad {
        let err = e.execute_block(&mut h.cpu_at(RAM_BASE), &h.calls, &block(RAM_BASE, 1, vec![op], jump(0)));
        let err = err.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Engine);
        assert!(err.message().contains("malformed IR block"), "{err}");
    }
    // A refused block leaves the cache usable.
    let mut h2 = Harness::new([block(RAM_BASE, 1, vec![mov(Dest::Tmp(40), imm(0))], jump(0))]);
    assert!(e.run(&mut h2.cpu_at(RAM_BASE), &h2.calls, 100).is_err());
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
    let engine = create(&EngineContext::single("async = true")).unwrap();
    assert!(engine.is_async());
    assert!(create(&EngineContext::single("bogus = 1")).is_err());
}

/// `x5 = mem[x10]; mem[x10 + 8] = x5 + 1; x7 -= 1; bnez x7`, on the data page.
fn load_store_loop(pc: u64, halt: u64) -> IrBlock {
    let ops = vec![
        ld(5, r(10), 0, 8, false, 0),
        bin(BinOp::Add, dr(5), r(5), imm(1)),
        st(r(5), r(10), 8, 8, 2),
        bin(BinOp::Sub, dr(7), r(7), imm(1)),
    ];
    block(pc, 5, ops, Terminator::Branch { cond: Cond::Ne, a: r(7), b: imm(0), taken: pc, not_taken: halt })
}

#[test]
fn the_tlb_fast_path_serves_ram_after_the_first_miss() {
    let (lp, halt) = (RAM_BASE, RAM_BASE + 0x100);
    let mut h = Harness::new([load_store_loop(lp, halt), halt_block(halt)]);
    h.ram_store(DATA, 8, 41);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(lp);
    (cpu.x[7], cpu.x[10]) = (100, DATA);
    assert_eq!(e.run(&mut cpu, &h.calls, u64::MAX).unwrap(), ExitReason::Halt);
    assert_eq!(h.ram_load(DATA + 8, 8), 42);
    let seen = h.seen();
    let got: Vec<_> = seen.iter().map(|s| (s.what, s.addr, s.pc)).collect();
    assert_eq!(got, [("load", DATA, lp), ("helper", H_HALT as u64, halt)], "one miss fills the page");
    // With the host refusing to fill, every access takes the slow path and still works.
    h.unmap_ram();
    let mut cpu = h.cpu_at(lp);
    (cpu.x[7], cpu.x[10]) = (3, DATA);
    e.run(&mut cpu, &h.calls, u64::MAX).unwrap();
    let whats: Vec<_> = h.seen().iter().map(|s| s.what).collect();
    assert_eq!(whats, ["load", "store", "load", "store", "load", "store", "helper"]);
}

#[test]
fn a_notdirty_write_tag_sends_stores_to_the_host() {
    let (lp, halt) = (RAM_BASE, RAM_BASE + 0x100);
    let mut h = Harness::new([load_store_loop(lp, halt), halt_block(halt)]);
    h.host().code_pages.insert(DATA);
    h.map_ram();
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(lp);
    (cpu.x[7], cpu.x[10]) = (3, DATA);
    e.run(&mut cpu, &h.calls, u64::MAX).unwrap();
    let got: Vec<_> = h.seen().iter().map(|s| (s.what, s.addr, s.value)).collect();
    assert_eq!(
        got,
        [("store", DATA + 8, 1), ("store", DATA + 8, 1), ("store", DATA + 8, 1), ("helper", 0, 0)],
        "stores reach the host, loads stay on the fast path"
    );
    assert_eq!(h.ram_load(DATA + 8, 8), 1);
}

#[test]
fn misaligned_accesses_hit_within_a_page_and_miss_across_pages_or_when_aligned() {
    let mut h = Harness::new([]);
    h.map_ram();
    let page_end = DATA + PAGE_SIZE;
    h.ram_store(page_end - 4, 8, 0x1122_3344_5566_7788);
    h.ram_store(DATA + 0x10, 8, 0x0102_0304_0506_0708);
    let mut e = Interp::new();
    let ops = vec![
        ld(5, imm(page_end - 4), 0, 8, false, 0),
        ld(6, imm(DATA + 0x11), 0, 4, false, 1),
        IrOp::Load { dst: dr(7), base: imm(DATA + 0x10), offset: 0, access: aligned(8, 0), at: at(2) },
        IrOp::Store { src: imm(9), base: imm(DATA + 0x20), offset: 0, access: aligned(4, 0), at: at(3) },
        IrOp::Load { dst: dr(8), base: imm(DATA + 0x12), offset: 0, access: aligned(2, 1), at: at(4) },
    ];
    let mut cpu = h.cpu_at(RAM_BASE);
    let flow = e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 5, ops, jump(0))).unwrap();
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        (cpu.x[5], cpu.x[6], cpu.x[7], cpu.x[8]),
        (0x1122_3344_5566_7788, 0x0405_0607, 0x0102_0304_0506_0708, 0x0506)
    );
    assert_eq!(h.ram_load(DATA + 0x20, 4), 9);
    let got: Vec<_> = h.seen().iter().map(|s| (s.what, s.addr, s.size, s.pc)).collect();
    assert_eq!(got, [("load", page_end - 4, 8, RAM_BASE)], "only the page-crossing load misses");
    // A misaligned access that must be aligned misses, and the host faults it.
    let ir = block(
        RAM_BASE,
        1,
        vec![IrOp::Load { dst: dr(5), base: imm(DATA + 2), offset: 0, access: aligned(4, 0), at: at(0) }],
        jump(0),
    );
    assert_eq!(e.execute_block(&mut cpu, &h.calls, &ir).unwrap(), Flow::Redirect);
    assert_eq!((cpu.pc, h.seen().len()), (TRAP, 1));
}

#[test]
fn tlb_tables_replaced_by_a_host_call_are_used_by_the_next_access() {
    let mut h = Harness::new([]);
    h.map_ram();
    h.ram_store(DATA, 8, 1);
    h.ram_store(DATA + PAGE_SIZE, 8, 2);
    let mut e = Interp::new();
    let ops = vec![
        ld(5, imm(DATA), 0, 8, false, 0),
        call(H_SWAP_TLB, RNone, imm(0), imm(0), 1),
        ld(6, imm(DATA), 0, 8, false, 2),
        IrOp::Load { dst: dr(7), base: imm(DATA), offset: 0, access: MemAccess::new(8, false, 1), at: at(3) },
    ];
    let mut cpu = h.cpu_at(RAM_BASE);
    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 4, ops, jump(0))).unwrap();
    assert_eq!((cpu.x[5], cpu.x[6], cpu.x[7]), (1, 2, 1), "mode 0 now maps one page higher, mode 1 not");
}

const ALL_AMOS: [AtomicOp; 9] = [
    AtomicOp::Swap,
    AtomicOp::Add,
    AtomicOp::And,
    AtomicOp::Or,
    AtomicOp::Xor,
    AtomicOp::Min,
    AtomicOp::Max,
    AtomicOp::MinU,
    AtomicOp::MaxU,
];

#[test]
fn amo_of_every_op_and_width_matches_eval_amo_on_both_paths() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let values =
        [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x8000_0000_0000_0001, u64::MAX, 0x1234_5678_9abc_def0];
    for fast in [true, false] {
        if fast {
            h.map_ram()
        } else {
            h.unmap_ram()
        }
        for op in ALL_AMOS {
            for size in [4u8, 8] {
                for old in values {
                    for src in [1, 0xffff_fffe, 0x8000_0000_0000_0000, old.rotate_left(7)] {
                        h.ram_store(DATA, 8, old);
                        let ir =
                            block(RAM_BASE, 1, vec![amo(op, 5, r(10), r(11), aligned(size, 0))], jump(0));
                        let mut cpu = h.cpu_at(RAM_BASE);
                        (cpu.x[10], cpu.x[11]) = (DATA, src);
                        e.execute_block(&mut cpu, &h.calls, &ir).unwrap();
                        let m = mask(size);
                        let want_old = if size == 4 { old as u32 as i32 as i64 as u64 } else { old };
                        let what = format!("{op:?}.{size} old {old:#x} src {src:#x} fast {fast}");
                        assert_eq!(cpu.x[5], want_old, "{what}: the old value, sign-extended");
                        let stored = eval_amo(op, size, old, src) & m | old & !m;
                        assert_eq!(h.ram_load(DATA, 8), stored, "{what}: memory");
                        assert_eq!(h.seen().len(), !fast as usize, "{what}: host calls");
                    }
                }
            }
        }
    }
}

#[test]
fn lr_sc_succeeds_and_always_clears_the_reservation() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    for fast in [true, false] {
        if fast {
            h.map_ram()
        } else {
            h.unmap_ram()
        }
        for size in [4u8, 8] {
            h.ram_store(DATA, 8, 0x1111_1111_8000_0000);
            let ops = vec![lr(5, r(10), aligned(size, 0)), sc(6, r(10), r(11), aligned(size, 0))];
            let mut cpu = h.cpu_at(RAM_BASE);
            (cpu.x[10], cpu.x[11]) = (DATA, 0x2222_2222_3333_3333);
            e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 2, ops, jump(0))).unwrap();
            let want = if size == 4 { 0xffff_ffff_8000_0000 } else { 0x1111_1111_8000_0000 };
            assert_eq!(cpu.x[5], want, "LR.{size} (sign-extended at 4)");
            assert_eq!(cpu.x[6], 0, "SC.{size} succeeded");
            let stored = if size == 4 { 0x1111_1111_3333_3333 } else { 0x2222_2222_3333_3333 };
            assert_eq!(h.ram_load(DATA, 8), stored);
            assert_eq!((cpu.resv_addr, cpu.resv_value), (NO_RESERVATION, want), "SC ends the reservation");
            let kinds: Vec<_> = h.seen().iter().map(|s| (s.what, s.addr, s.size)).collect();
            let want_calls = if fast { vec![] } else { vec![("atomic", DATA, size), ("atomic", DATA, size)] };
            assert_eq!(kinds, want_calls);
        }
    }
}

#[test]
fn sc_fails_without_storing_when_the_reservation_is_elsewhere_or_memory_changed() {
    let mut h = Harness::new([]);
    h.map_ram();
    let mut e = Interp::new();
    let cases = [
        // Reservation on another address.
        vec![lr(5, imm(DATA + 8), aligned(8, 0)), sc(6, r(10), r(11), aligned(8, 0))],
        // Memory changed (to a value the LR did not see) between LR and SC.
        vec![lr(5, r(10), aligned(8, 0)), st(imm(7), r(10), 0, 8, 1), sc(6, r(10), r(11), aligned(8, 0))],
        // No reservation at all.
        vec![sc(6, r(10), r(11), aligned(8, 0))],
        // The reservation of a failed SC is gone: the second SC fails too.
        vec![
            lr(5, r(10), aligned(8, 0)),
            sc(6, imm(DATA + 8), r(11), aligned(8, 0)),
            sc(6, r(10), r(11), aligned(8, 0)),
        ],
    ];
    for (i, ops) in cases.into_iter().enumerate() {
        h.ram_store(DATA, 8, 5);
        let before = h.ram_load(DATA, 8);
        let mut cpu = h.cpu_at(RAM_BASE);
        (cpu.x[10], cpu.x[11]) = (DATA, 99);
        e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 3, ops, jump(0))).unwrap();
        assert_eq!(cpu.x[6], 1, "case {i}: SC failed");
        assert_ne!(h.ram_load(DATA, 8), 99, "case {i}: no store");
        assert!(i != 0 || h.ram_load(DATA, 8) == before);
        assert_eq!(cpu.resv_addr, NO_RESERVATION, "case {i}: no reservation left");
    }
    assert_eq!(h.ram_load(DATA + 8, 8), 0, "the failed SC to the other address stored nothing");
}

#[test]
fn atomics_that_miss_reach_the_host_with_the_whole_request_and_exact_state() {
    let mut h = Harness::new([]);
    h.unmap_ram();
    let mut e = Interp::new();
    let ops = vec![mov(dr(5), imm(3)), amo(AtomicOp::MaxU, 6, r(10), imm(77), aligned(4, 2))];
    let mut cpu = h.cpu_at(RAM_BASE);
    cpu.x[10] = DATA + 2;
    let mut ir = block(RAM_BASE, 2, ops, jump(0));
    if let IrOp::Amo { at: a, .. } = &mut ir.ops[1] {
        *a = at(1);
    }
    assert_eq!(
        e.execute_block(&mut cpu, &h.calls, &ir).unwrap(),
        Flow::Redirect,
        "misaligned: the host faults it"
    );
    let seen = h.seen();
    assert_eq!((seen[0].what, seen[0].addr, seen[0].size, seen[0].value), ("atomic", DATA + 2, 4, 77));
    assert_eq!((seen[0].pc, seen[0].instret, seen[0].regs[5]), (RAM_BASE + 4, 1, 3));
    assert_eq!((cpu.pc, cpu.instret), (TRAP, 1));
}

#[test]
fn fences_of_every_kind_execute_in_place() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let mut ops = Vec::new();
    for pred in 0..16 {
        for succ in 0..16 {
            ops.push(IrOp::Fence { pred, succ });
        }
    }
    ops.push(mov(dr(5), imm(1)));
    let mut cpu = h.cpu_at(RAM_BASE);
    assert_eq!(
        e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, ops, jump(8))).unwrap(),
        Flow::Continue
    );
    assert_eq!((cpu.x[5], cpu.pc), (1, 8));
}

#[test]
fn select_picks_by_every_condition_in_every_operand_form() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    for cond in [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Ge, Cond::Ltu, Cond::Geu] {
        for a in EDGE_VALUES {
            for b in [0, 1, u64::MAX, i64::MIN as u64, a] {
                let ops = vec![
                    IrOp::Select { dst: dr(5), cond, a: r(6), b: r(7), t: r(8), f: r(9) },
                    IrOp::Select { dst: Dest::Tmp(0), cond, a: imm(a), b: imm(b), t: imm(100), f: imm(200) },
                    mov(dr(10), t(0)),
                    // The destination is also a source.
                    IrOp::Select { dst: dr(8), cond, a: r(6), b: imm(b), t: r(9), f: r(8) },
                ];
                let mut cpu = h.cpu_at(RAM_BASE);
                (cpu.x[6], cpu.x[7], cpu.x[8], cpu.x[9]) = (a, b, 11, 22);
                e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, ops, jump(0))).unwrap();
                let holds = vm_plugin_api::ir::eval_cond(cond, a, b);
                let what = format!("{cond:?}({a:#x}, {b:#x})");
                assert_eq!(cpu.x[5], if holds { 11 } else { 22 }, "{what}");
                assert_eq!(cpu.x[10], if holds { 100 } else { 200 }, "{what}");
                assert_eq!(cpu.x[8], if holds { 22 } else { 11 }, "{what}");
            }
        }
    }
}

#[test]
fn every_un_op_agrees_with_eval_un() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let ops = [
        UnOp::Clz,
        UnOp::Ctz,
        UnOp::Cpop,
        UnOp::ClzW,
        UnOp::CtzW,
        UnOp::CpopW,
        UnOp::Rev8,
        UnOp::OrcB,
        UnOp::SextB,
        UnOp::SextH,
        UnOp::ZextH,
    ];
    for op in ops {
        for v in EDGE_VALUES {
            let ir = vec![
                IrOp::Un { op, dst: dr(5), src: r(6) },
                IrOp::Un { op, dst: Dest::Tmp(2), src: imm(v) },
                mov(dr(7), t(2)),
                IrOp::Un { op, dst: dr(6), src: r(6) },
            ];
            let mut cpu = h.cpu_at(RAM_BASE);
            cpu.x[6] = v;
            e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 1, ir, jump(0))).unwrap();
            let want = eval_un(op, v);
            assert_eq!((cpu.x[5], cpu.x[7], cpu.x[6]), (want, want, want), "{op:?}({v:#x})");
        }
    }
}

#[test]
fn fp_registers_load_store_move_and_reach_helpers() {
    let mut h = Harness::new([]);
    h.map_ram();
    let mut e = Interp::new();
    let f = |i: u8| 32 + i;
    let ops = vec![
        mov(dr(f(1)), r(5)),
        st(r(f(1)), imm(DATA), 0, 8, 1),
        ld(f(31), imm(DATA), 0, 4, false, 2),
        bin(BinOp::Xor, dr(f(2)), r(f(31)), imm(0xff)),
        mov(dr(6), r(f(2))),
        // A helper sees the FP registers and may write one.
        call(H_SET_F3, RSome(dr(f(4))), imm(0x4000_0000_0000_0000), imm(0), 5),
        mov(dr(7), r(f(3))),
    ];
    let mut cpu = h.cpu_at(RAM_BASE);
    cpu.x[5] = 0x3ff0_0000_4049_0fdb;
    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 7, ops, jump(0))).unwrap();
    assert_eq!(h.ram_load(DATA, 8), 0x3ff0_0000_4049_0fdb);
    assert_eq!((cpu.f[1], cpu.f[31]), (0x3ff0_0000_4049_0fdb, 0x4049_0fdb));
    assert_eq!((cpu.f[2], cpu.x[6]), (0x4049_0f24, 0x4049_0f24));
    assert_eq!((cpu.f[3], cpu.f[4], cpu.x[7]), (0x4000_0000_0000_0000, 0x4049_0f24, 0x4000_0000_0000_0000));
    let seen = h.seen();
    assert_eq!(seen[0].regs[f(2) as usize], 0x4049_0f24, "the helper saw f2");
}

#[test]
fn helpers_get_three_arguments_and_the_constant_through_the_table() {
    let mut h = Harness::new([]);
    let mut e = Interp::new();
    let none = HelperFlags::default();
    let pure = HelperFlags::PURE;
    let ops = vec![
        mov(Dest::Tmp(3), imm(300)),
        call3(H_ADD, none, RSome(dr(5)), [r(6), t(3), imm(4000)], 50_000, 1),
        // Flagged as touching no register: the engine may skip the register sync.
        call3(H_ADD, pure, RSome(dr(7)), [r(5), r(6), r(5)], 1, 2),
        bin(BinOp::Add, dr(8), r(7), r(6)),
    ];
    let mut cpu = h.cpu_at(RAM_BASE);
    cpu.x[6] = 20;
    e.execute_block(&mut cpu, &h.calls, &block(RAM_BASE, 4, ops, jump(0))).unwrap();
    assert_eq!(cpu.x[5], 54_320);
    assert_eq!(cpu.x[7], 54_320 * 2 + 20 + 1);
    assert_eq!((cpu.x[6], cpu.x[8]), (20, 54_320 * 2 + 41));
    assert_eq!(h.host().helper_args, [(H_ADD, [20, 300, 4000, 50_000]), (H_ADD, [54_320, 20, 54_320, 1])]);
}

#[test]
fn an_unknown_helper_id_is_an_error_naming_the_id_and_the_table_size() {
    let mut h = Harness::new([block(RAM_BASE, 2, vec![call(50, RNone, imm(0), imm(0), 1)], jump(0))]);
    let mut e = Interp::new();
    let err = e.run(&mut h.cpu_at(RAM_BASE), &h.calls, 100).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Engine);
    assert!(err.message().contains("helper 50") && err.message().contains("9 entries"), "{err}");
    assert!(err.message().contains("0x80000004"), "names the pc: {err}");
    let ir = block(RAM_BASE, 1, vec![call(9, RNone, imm(0), imm(0), 0)], jump(0));
    let err = e.execute_block(&mut h.cpu_at(RAM_BASE), &h.calls, &ir).unwrap_err();
    assert!(err.message().contains("helper 9"), "{err}");
}

#[test]
fn blocks_are_keyed_by_tb_flags() {
    let a = RAM_BASE;
    let halt = RAM_BASE + 0x100;
    let mut h = Harness::new([block(a, 1, vec![mov(dr(5), imm(1))], jump(halt)), halt_block(halt)]);
    let mut e = Interp::new();
    let mut cpu = h.cpu_at(a);
    cpu.tb_flags = 1;
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 1);
    // Other code for the same pc under other flags (another privilege level, say).
    h.host().blocks.insert(a, block(a, 1, vec![mov(dr(5), imm(2))], jump(halt)));
    let mut cpu = h.cpu_at(a);
    cpu.tb_flags = 2;
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 2, "the block lowered under flags 1 did not run");
    assert_eq!(h.translated(), [a, halt, a, halt]);
    let mut cpu = h.cpu_at(a);
    cpu.tb_flags = 1;
    e.run(&mut cpu, &h.calls, 100).unwrap();
    assert_eq!(cpu.x[5], 1, "both translations are kept");
    assert_eq!(h.translated().len(), 4);
}
