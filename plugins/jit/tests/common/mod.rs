//! A fake host for the JIT tests: two pages of RAM behind a 16-entry TLB in MMU mode 0, slow paths
//! and helpers that count and record their calls, and a translator serving prepared blocks.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
use vm_plugin_api::{
    At, AtomicReq, CpuState, Dest, ExitReason, Fetched, Flow, HelperEntry, HelperFlags, HostCalls,
    HostResult, IrBlock, IrOp, MemAccess, Operand, Terminator, TlbEntry, TlbFast,
    abi_stable::std_types::ROption,
    cpu::{PAGE_BITS, PAGE_MASK, PAGE_SIZE, TLB_EMPTY, TLB_ENTRY_BITS, attn, tlb_flag},
    ir::NO_PAGE,
};

/// Guest virtual address of the first RAM page.
pub const RAM: u64 = 0x8000_0000;
/// Where the fake host's slow paths send a faulting access.
pub const TRAP_VECTOR: u64 = 0x1234_0000;
const ENTRIES: usize = 16;

/// One host call as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub what: &'static str,
    pub args: [u64; 4],
    pub pc: u64,
    pub instret: u64,
    pub x: [u64; 32],
}

pub struct FakeHost {
    pub ram: RefCell<Vec<u8>>,
    pub table: Box<[TlbEntry; ENTRIES]>,
    pub attention: AtomicU32,
    pub seen: RefCell<Vec<Seen>>,
    pub blocks: RefCell<HashMap<u64, IrBlock>>,
    pub translations: Cell<u32>,
}

impl FakeHost {
    pub fn new() -> Box<FakeHost> {
        Box::new(FakeHost {
            ram: RefCell::new((0..2 * PAGE_SIZE as usize).map(|i| (i * 7 + 3) as u8).collect()),
            table: Box::new([TlbEntry::EMPTY; ENTRIES]),
            attention: AtomicU32::new(0),
            seen: RefCell::new(Vec::new()),
            blocks: RefCell::new(HashMap::new()),
            translations: Cell::new(0),
        })
    }

    /// Maps both RAM pages in the TLB with these extra tag bits on the read and write tags.
    pub fn map(&mut self, read_flags: u64, write_flags: u64) {
        let base = self.ram.borrow_mut().as_mut_ptr() as u64;
        for page in 0..2 {
            let vpage = RAM + page * PAGE_SIZE;
            let i = ((vpage >> PAGE_BITS) as usize) & (ENTRIES - 1);
            self.table[i] = TlbEntry {
                read: vpage | read_flags,
                write: vpage | write_flags,
                exec: TLB_EMPTY,
                addend: base.wrapping_add(page * PAGE_SIZE).wrapping_sub(vpage),
            };
        }
    }

    /// A CPU state wired to this host's TLB (mode 0) and attention word.
    pub fn cpu(&self) -> CpuState {
        let mut cpu = CpuState::default();
        cpu.tlb[0] =
            TlbFast { mask: ((ENTRIES - 1) as u64) << TLB_ENTRY_BITS, table: self.table.as_ptr().cast_mut() };
        cpu.attention = &raw const self.attention;
        cpu.instret = 1000;
        cpu
    }

    pub fn calls(&self) -> HostCalls {
        // SAFETY: the tests keep the boxed host alive while the table is used, on one thread.
        unsafe {
            HostCalls::new(
                (self as *const FakeHost).cast_mut().cast(),
                translate,
                slow_load,
                slow_store,
                atomic,
                &HELPERS,
            )
        }
    }

    pub fn count(&self, what: &str) -> usize {
        self.seen.borrow().iter().filter(|s| s.what == what).count()
    }

    pub fn last(&self, what: &str) -> Seen {
        self.seen.borrow().iter().rev().find(|s| s.what == what).cloned().expect("no such call")
    }

    pub fn read(&self, vaddr: u64, size: usize) -> u64 {
        let ram = self.ram.borrow();
        let i = (vaddr - RAM) as usize;
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&ram[i..i + size]);
        u64::from_le_bytes(b)
    }

    pub fn add_block(&self, b: IrBlock) {
        self.blocks.borrow_mut().insert(b.pc, b);
    }

    fn record(&self, what: &'static str, args: [u64; 4], cpu: &CpuState) {
        self.seen.borrow_mut().push(Seen { what, args, pc: cpu.pc, instret: cpu.instret, x: cpu.x });
    }

    fn ram_index(&self, vaddr: u64, size: u8) -> Option<usize> {
        let i = vaddr.checked_sub(RAM)? as usize;
        (i + size as usize <= self.ram.borrow().len()).then_some(i)
    }
}

fn host<'a>(ctx: *mut c_void) -> &'a FakeHost {
    // SAFETY: every callback gets the `ctx` of the `FakeHost` that built the table (see `calls`),
    // which the test keeps alive.
    unsafe { &*ctx.cast::<FakeHost>() }
}

/// A fault as a host raises one: the pc moves to the trap vector, the faulting instruction does
/// not retire.
fn trap(cpu: &mut CpuState) -> HostResult {
    cpu.pc = TRAP_VECTOR;
    HostResult::flow(Flow::Redirect)
}

unsafe extern "C" fn translate(ctx: *mut c_void, _cpu: &mut CpuState, pc: u64) -> Fetched {
    let h = host(ctx);
    h.translations.set(h.translations.get() + 1);
    match h.blocks.borrow().get(&pc) {
        Some(b) => Fetched::Block(b.clone()),
        None => Fetched::Flow(Flow::Exit(ExitReason::HostError)),
    }
}

unsafe extern "C" fn slow_load(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    vaddr: u64,
    access: MemAccess,
) -> HostResult {
    let h = host(ctx);
    h.record("load", [vaddr, access.size as u64, access.signed as u64, access.mmu as u64], cpu);
    match h.ram_index(vaddr, access.size) {
        Some(_) => HostResult::value(h.read(vaddr, access.size as usize)),
        None => trap(cpu),
    }
}

unsafe extern "C" fn slow_store(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    vaddr: u64,
    access: MemAccess,
    value: u64,
) -> HostResult {
    let h = host(ctx);
    h.record("store", [vaddr, access.size as u64, value, access.mmu as u64], cpu);
    match h.ram_index(vaddr, access.size) {
        Some(i) => {
            let n = access.size as usize;
            h.ram.borrow_mut()[i..i + n].copy_from_slice(&value.to_le_bytes()[..n]);
            HostResult::value(0)
        }
        None => trap(cpu),
    }
}

unsafe extern "C" fn atomic(_ctx: *mut c_void, _cpu: &mut CpuState, _req: &AtomicReq) -> HostResult {
    HostResult::flow(Flow::Exit(ExitReason::HostError))
}

/// Helper 0: records its arguments, answers `a + 2b + 3c + imm`.
pub const H_RECORD: u32 = 0;
/// Helper 1: raises the hart's attention word.
pub const H_ATTENTION: u32 = 1;
/// Helper 2: writes `a` to x7 behind the engine's back, answers `b`.
pub const H_WRITE_X7: u32 = 2;
/// Helper 3: a trap (pc to the trap vector, `Redirect`).
pub const H_TRAP: u32 = 3;
/// Helper 4: answers `Exit(Debug)` (a breakpoint).
pub const H_DEBUG: u32 = 4;

unsafe extern "C" fn h_record(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    a: u64,
    b: u64,
    c: u64,
    imm: u64,
) -> HostResult {
    host(ctx).record("helper", [a, b, c, imm], cpu);
    HostResult::value(a.wrapping_add(b.wrapping_mul(2)).wrapping_add(c.wrapping_mul(3)).wrapping_add(imm))
}

unsafe extern "C" fn h_attention(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> HostResult {
    let h = host(ctx);
    h.record("attention", [0; 4], cpu);
    h.attention.fetch_or(attn::IRQ, Ordering::Relaxed);
    HostResult::value(0)
}

unsafe extern "C" fn h_write_x7(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    a: u64,
    b: u64,
    _: u64,
    _: u64,
) -> HostResult {
    host(ctx).record("write_x7", [a, b, 0, 0], cpu);
    cpu.x[7] = a;
    HostResult::value(b)
}

unsafe extern "C" fn h_trap(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> HostResult {
    host(ctx).record("trap", [0; 4], cpu);
    trap(cpu)
}

unsafe extern "C" fn h_debug(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> HostResult {
    host(ctx).record("debug", [0; 4], cpu);
    HostResult::flow(Flow::Exit(ExitReason::Debug))
}

static HELPERS: [HelperEntry; 5] = [
    HelperEntry { func: h_record, flags: HelperFlags(0) },
    HelperEntry { func: h_attention, flags: HelperFlags::NO_REG_READ.union(HelperFlags::NO_REG_WRITE) },
    HelperEntry { func: h_write_x7, flags: HelperFlags(0) },
    HelperEntry { func: h_trap, flags: HelperFlags(0) },
    HelperEntry { func: h_debug, flags: HelperFlags(0) },
];

/// A block at `pc` of `insn_count` four-byte instructions.
pub fn block(pc: u64, insn_count: u32, ops: Vec<IrOp>, term: Terminator) -> IrBlock {
    IrBlock {
        pc,
        phys_pc: pc,
        flags: 0,
        len: 4 * insn_count,
        insn_count,
        pages: [pc & PAGE_MASK, NO_PAGE],
        ops: ops.into(),
        term,
    }
}

pub fn at(insn_index: u32) -> At {
    At { pc_offset: 4 * insn_index, insn_index }
}

pub fn r(i: u8) -> Operand {
    Operand::Reg(i)
}

pub fn imm(v: i64) -> Operand {
    Operand::Imm(v)
}

pub fn mov(d: u8, src: Operand) -> IrOp {
    IrOp::Mov { dst: Dest::Reg(d), src }
}

pub fn bin(op: vm_plugin_api::BinOp, d: u8, a: Operand, b: Operand) -> IrOp {
    IrOp::Bin { op, dst: Dest::Reg(d), a, b }
}

pub fn load(d: u8, base: u8, offset: i64, access: MemAccess, insn: u32) -> IrOp {
    IrOp::Load { dst: Dest::Reg(d), base: r(base), offset, access, at: at(insn) }
}

pub fn store(src: u8, base: u8, offset: i64, access: MemAccess, insn: u32) -> IrOp {
    IrOp::Store { src: r(src), base: r(base), offset, access, at: at(insn) }
}

pub fn helper(id: u32, flags: HelperFlags, dst: Option<u8>, args: [Operand; 3], imm: u64, insn: u32) -> IrOp {
    let dst = match dst {
        Some(d) => ROption::RSome(Dest::Reg(d)),
        None => ROption::RNone,
    };
    IrOp::Helper { id, flags, dst, args, imm, at: at(insn) }
}

pub fn jump(target: u64) -> Terminator {
    Terminator::Jump { target }
}

pub const NOTDIRTY: u64 = tlb_flag::NOTDIRTY;
