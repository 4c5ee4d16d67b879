//! Executes compiled blocks on the register frame: the interpreter's hot loop.
//!
//! Blocks follow one another through their successor links without leaving the loop; the loop
//! returns to the run loop only to look up or translate code, to obey the budget or the attention
//! word, or for a host decision. RAM accesses go through the TLB in `CpuState` (the fast path of
//! `vm_plugin_api::cpu`); a miss, and anything else that needs the host (device memory, faults,
//! atomics that miss, helpers), leaves the fast path through one cold function that makes
//! `CpuState` exact first (registers, pc, instret per the IR's accounting rules).

use crate::cache::Cache;
use crate::code::{
    Block, COND, Code, Frame, Mode, Op, SUCC_INDIRECT, SUCC_NOT_TAKEN, SUCC_TAKEN, Site, Slot, mode_of,
    tlb_offset,
};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering, fence};
use vm_plugin_api::{
    AtomicKind, AtomicOp, AtomicReq, BinOp, Cond, CpuState, ExitReason, Flow, HelperFlags, HostCalls,
    MemAccess, TlbAccess, UnOp,
    cpu::{NO_RESERVATION, PAGE_BITS, PAGE_MASK, TLB_ENTRY_BITS},
    ir::{eval_bin, eval_cond, eval_un},
};

// Guest memory is little-endian and the atomics below work on it in place.
const _: () = assert!(cfg!(target_endian = "little"), "the interp needs a little-endian host");

/// Why [`run_blocks`] returned. In every case `cpu.pc` is where execution goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Block `from` completed through its successor `succ`, and no block is known for `cpu.pc`.
    Unlinked { from: u32, succ: usize },
    /// The block completed (only when not chaining).
    Done,
    /// A link led to a dropped block; nothing of it ran. Look `cpu.pc` up again.
    Gone,
    /// The host redirected control.
    Redirect,
    /// Return to the host.
    Exit(ExitReason),
    /// The IR named a helper the host's table does not have (`cpu.pc` is the helper's pc).
    UnknownHelper { id: u32, table: usize },
}

/// Work done, folded into the engine's statistics by the caller.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub retired: u64,
    pub executed: u64,
}

/// Runs block `first` of `cache` and, when `CHAIN`, the blocks after it, until there is a reason to
/// stop. Checks the attention word and `budget` (against `counts.retired`) after every block.
///
/// Guest registers live in `f` throughout (the caller loads and writes them back); `cpu.instret`
/// is exact at every block boundary, and `cpu.pc` whenever this returns or calls the host.
#[inline(always)]
pub(crate) fn run_blocks<const CHAIN: bool>(
    cache: &Cache,
    first: u32,
    f: &mut Frame,
    cpu: &mut CpuState,
    host: &HostCalls,
    budget: u64,
    counts: &mut Counts,
) -> Stop {
    let blocks = &cache.blocks[..];
    // What is left of the budget, counted down: one live value instead of a count and a limit.
    // It may go below zero by the last block's length, so `retired` comes back exact.
    let allowance = budget.saturating_sub(counts.retired).min(i64::MAX as u64) as i64;
    let mut left = allowance;
    let mut executed = 0u64;
    let mut block = &blocks[first as usize];
    // The block's `start`, from the link that led to it.
    let mut start = block.start;
    let env = Env { code: &cache.code, host };
    let stop = loop {
        let (pc, succ) = match run_block(&env, block, start, f, cpu) {
            Ok(next) => next,
            Err(early) => {
                left -= early.retired as i64;
                // The host set `cpu.pc`, except for `Gone` and `Exit`. Nothing of a `Gone` block
                // ran, and `cpu.pc` is its pc already: every way into a block but a link stores
                // it, and a link never leads to a dropped block (its pc is one no block leads to).
                if early.completed {
                    cpu.pc = early.next;
                    cpu.instret = cpu.instret.wrapping_add(early.retired);
                    executed += 1;
                }
                break early.stop;
            }
        };
        let n = block.insn_count as u64;
        cpu.instret = cpu.instret.wrapping_add(n);
        left -= n as i64;
        executed += 1;
        if !CHAIN {
            cpu.pc = pc;
            break Stop::Done;
        }
        if cpu.attention() {
            cpu.pc = pc;
            break Stop::Exit(ExitReason::ExitRequested);
        }
        if left <= 0 {
            cpu.pc = pc;
            break Stop::Exit(ExitReason::BudgetExhausted);
        }
        // A link was made between two blocks that ran one after the other with no redirect in
        // between, so under the same `tb_flags` (only a redirect changes them): checking the pc is
        // enough. A dropped block has a pc no block leads to (and runs as `Op::Gone` if one did).
        let link = &block.succ[succ];
        // SAFETY: every link is below `blocks.len()` (the cache's module docs).
        let next = unsafe { blocks.get_unchecked(link.block() as usize) };
        if next.pc == pc {
            block = next;
            start = link.start();
            continue;
        }
        cpu.pc = pc;
        match cache.find_fast(pc, cpu.tb_flags) {
            Some(next) => {
                block = &blocks[next as usize];
                start = block.start;
                link.set(next, start);
            }
            None => {
                // Only here is the block's index needed, so only here is it computed.
                let from = (block as *const Block as usize - blocks.as_ptr() as usize) / size_of::<Block>();
                break Stop::Unlinked { from: from as u32, succ };
            }
        }
    };
    counts.retired += (allowance - left) as u64;
    counts.executed += executed;
    stop
}

/// What a block needs besides the frame and the CPU state.
struct Env<'a> {
    code: &'a Code,
    host: &'a HostCalls,
}

/// Runs one block's ops; on completion gives the next pc and the successor link that leads there.
#[inline(always)]
fn run_block(
    env: &Env<'_>,
    block: &Block,
    start: u32,
    f: &mut Frame,
    cpu: &mut CpuState,
) -> Result<(u64, usize), Left> {
    // Unchecked: `Code::compile` ends every block's ops with a terminator, `Op::Gone` at `GONE`
    // is one too, and `code.ops` cannot change while it is borrowed here; a bounds check on
    // every op was a tenth of the dispatch.
    debug_assert!((start as usize) < env.code.ops.len());
    // SAFETY: `start` indexes `code.ops` (the invariant above): it is the block's own `start`, or
    // a link's copy of it, used only while that block is live (its pc matched the link's).
    let mut next = unsafe { env.code.ops.as_ptr().add(start as usize) };
    loop {
        // SAFETY: `next` is at or before the block's terminator, which returns.
        let op = unsafe { next.read() };
        // SAFETY: in bounds or one past the terminator, which is never read.
        next = unsafe { next.add(1) };
        match op {
            Op::Mov { d, s } => f.set(d, f.get(s)),
            Op::MovI { d, imm } => f.set(d, imm),

            Op::Add { d, a, b } => rr(f, BinOp::Add, d, a, b),
            Op::Sub { d, a, b } => rr(f, BinOp::Sub, d, a, b),
            Op::And { d, a, b } => rr(f, BinOp::And, d, a, b),
            Op::Or { d, a, b } => rr(f, BinOp::Or, d, a, b),
            Op::Xor { d, a, b } => rr(f, BinOp::Xor, d, a, b),
            Op::Shl { d, a, b } => rr(f, BinOp::Shl, d, a, b),
            Op::Shr { d, a, b } => rr(f, BinOp::Shr, d, a, b),
            Op::Sar { d, a, b } => rr(f, BinOp::Sar, d, a, b),
            Op::Slt { d, a, b } => rr(f, BinOp::Slt, d, a, b),
            Op::Sltu { d, a, b } => rr(f, BinOp::Sltu, d, a, b),
            Op::Mul { d, a, b } => rr(f, BinOp::Mul, d, a, b),
            Op::AddW { d, a, b } => rr(f, BinOp::AddW, d, a, b),
            Op::SubW { d, a, b } => rr(f, BinOp::SubW, d, a, b),
            Op::ShlW { d, a, b } => rr(f, BinOp::ShlW, d, a, b),
            Op::ShrW { d, a, b } => rr(f, BinOp::ShrW, d, a, b),
            Op::SarW { d, a, b } => rr(f, BinOp::SarW, d, a, b),
            Op::Bin { op, d, a, b } => f.set(d, generic(op, f.get(a), f.get(b))),

            Op::AddI { d, a, imm } => ri(f, BinOp::Add, d, a, imm),
            Op::AndI { d, a, imm } => ri(f, BinOp::And, d, a, imm),
            Op::OrI { d, a, imm } => ri(f, BinOp::Or, d, a, imm),
            Op::XorI { d, a, imm } => ri(f, BinOp::Xor, d, a, imm),
            Op::ShlI { d, a, imm } => ri(f, BinOp::Shl, d, a, imm),
            Op::ShrI { d, a, imm } => ri(f, BinOp::Shr, d, a, imm),
            Op::SarI { d, a, imm } => ri(f, BinOp::Sar, d, a, imm),
            Op::SltI { d, a, imm } => ri(f, BinOp::Slt, d, a, imm),
            Op::SltuI { d, a, imm } => ri(f, BinOp::Sltu, d, a, imm),
            Op::AddWI { d, a, imm } => ri(f, BinOp::AddW, d, a, imm),
            Op::ShlWI { d, a, imm } => ri(f, BinOp::ShlW, d, a, imm),
            Op::ShrWI { d, a, imm } => ri(f, BinOp::ShrW, d, a, imm),
            Op::SarWI { d, a, imm } => ri(f, BinOp::SarW, d, a, imm),
            Op::BinI { op, d, a, imm } => f.set(d, generic(op, f.get(a), imm)),

            Op::Un { op, d, s } => f.set(d, unary(op, f.get(s))),
            Op::Test { cond, a, b } => f.set(COND, condition(cond, f.get(a), f.get(b)) as u64),
            Op::Pick { d, t, f: e } => f.set(d, if f.get(COND) != 0 { f.get(t) } else { f.get(e) }),

            Op::LdU8 { d, base, m, site, off } => {
                load::<1, false, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::LdS8 { d, base, m, site, off } => load::<1, true, false>(env, f, cpu, d, base, m, site, off)?,
            Op::LdU16 { d, base, m, site, off } => {
                load::<2, false, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::LdS16 { d, base, m, site, off } => {
                load::<2, true, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::LdU32 { d, base, m, site, off } => {
                load::<4, false, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::LdS32 { d, base, m, site, off } => {
                load::<4, true, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::Ld64 { d, base, m, site, off } => {
                load::<8, false, false>(env, f, cpu, d, base, m, site, off)?
            }
            Op::St8 { s, base, m, site, off } => store::<1, false>(env, f, cpu, s, base, m, site, off)?,
            Op::St16 { s, base, m, site, off } => store::<2, false>(env, f, cpu, s, base, m, site, off)?,
            Op::St32 { s, base, m, site, off } => store::<4, false>(env, f, cpu, s, base, m, site, off)?,
            Op::St64 { s, base, m, site, off } => store::<8, false>(env, f, cpu, s, base, m, site, off)?,
            Op::LdAligned { d, base, site, off } => load_aligned(env, f, cpu, d, base, site, off)?,
            Op::StAligned { s, base, site, off } => store_aligned(env, f, cpu, s, base, site, off)?,

            // The atomics take scalars: passing `op` itself would keep every op in memory.
            Op::Amo { d, a, s, site } => {
                let v = amo(env, f, cpu, f.get(a), f.get(s), site)?;
                f.set(d, v);
            }
            Op::Lr { d, a, site } => {
                let v = load_reserved(env, f, cpu, f.get(a), site)?;
                f.set(d, v);
            }
            Op::Sc { d, a, s, site } => {
                let v = store_conditional(env, f, cpu, f.get(a), f.get(s), site)?;
                f.set(d, v);
            }
            Op::Fence { order } => fence(order),

            Op::Helper { d, helper } => {
                let v = host_call(env, f, cpu, Call::Helper { helper })?;
                f.set(d, v);
            }

            Op::Jump => return Ok((block.targets[0], SUCC_TAKEN)),
            Op::BrEq { a, b } => return Ok(branch(f, block, Cond::Eq, a, b)),
            Op::BrNe { a, b } => return Ok(branch(f, block, Cond::Ne, a, b)),
            Op::BrLt { a, b } => return Ok(branch(f, block, Cond::Lt, a, b)),
            Op::BrGe { a, b } => return Ok(branch(f, block, Cond::Ge, a, b)),
            Op::BrLtu { a, b } => return Ok(branch(f, block, Cond::Ltu, a, b)),
            Op::BrGeu { a, b } => return Ok(branch(f, block, Cond::Geu, a, b)),
            Op::Indirect { s } => return Ok((f.get(s), SUCC_INDIRECT)),
            Op::Exit => {
                let (next, retired) = (block.targets[0], block.insn_count as u64);
                let stop = Stop::Exit(ExitReason::ExitRequested);
                return Err(Left { stop, retired, completed: true, next });
            }
            Op::Gone => return Err(Left::early(Stop::Gone, 0)),
        }
    }
}

/// `cond` is a constant at every call, so `eval_cond` folds to one comparison.
#[inline(always)]
fn branch(f: &Frame, block: &Block, cond: Cond, a: Slot, b: Slot) -> (u64, usize) {
    if eval_cond(cond, f.get(a), f.get(b)) {
        (block.targets[0], SUCC_TAKEN)
    } else {
        (block.targets[1], SUCC_NOT_TAKEN)
    }
}

/// Register-register form; `op` is a constant at every call, so `eval_bin` folds to one operation.
#[inline(always)]
fn rr(f: &mut Frame, op: BinOp, d: Slot, a: Slot, b: Slot) {
    f.set(d, eval_bin(op, f.get(a), f.get(b)));
}

/// Register-immediate form, as [`rr`].
#[inline(always)]
fn ri(f: &mut Frame, op: BinOp, d: Slot, a: Slot, imm: u64) {
    f.set(d, eval_bin(op, f.get(a), imm));
}

/// The rare ops (multiply-high, division, bit manipulation...): kept out of line so the hot loop
/// stays small.
#[inline(never)]
fn generic(op: BinOp, a: u64, b: u64) -> u64 {
    eval_bin(op, a, b)
}

/// As [`generic`], for one-operand ops.
#[inline(never)]
fn unary(op: UnOp, a: u64) -> u64 {
    eval_un(op, a)
}

/// As [`generic`], for the condition of a `Select`.
#[inline(never)]
fn condition(cond: Cond, a: u64, b: u64) -> bool {
    eval_cond(cond, a, b)
}

#[inline(always)]
fn extend<const N: u8, const SIGNED: bool>(v: u64) -> u64 {
    match (N, SIGNED) {
        (1, true) => v as i8 as i64 as u64,
        (2, true) => v as i16 as i64 as u64,
        (4, true) => v as i32 as i64 as u64,
        (1, false) => v as u8 as u64,
        (2, false) => v as u16 as u64,
        (4, false) => v as u32 as u64,
        _ => v,
    }
}

/// The TLB fast path of `vm_plugin_api::cpu` for an `N`-byte access: the host address, or `None`
/// for the slow path. The table and mask are read afresh on every access, as any host call may
/// replace them. `ALIGNED` is a constant at every call, so plain accesses compute no mask.
#[inline(always)]
fn tlb<const N: u8, const ALIGNED: bool>(
    cpu: &CpuState,
    kind: TlbAccess,
    m: Mode,
    vaddr: u64,
) -> Option<*mut u8> {
    // SAFETY: `tlb_offset` is the offset of one of the `MMU_MODES` entries of `cpu.tlb`; the
    // atomics' mode bytes come from `mode_of` of a mode `atomic_access` checked.
    let t = unsafe { &*cpu.tlb.as_ptr().byte_add(tlb_offset(m)) };
    let offset = (vaddr >> (PAGE_BITS - TLB_ENTRY_BITS)) & t.mask;
    // SAFETY: the host keeps `mask / 32 + 1` entries at `table` (cpu.rs), and `offset` is masked.
    let e = unsafe { &*t.table.byte_add(offset as usize) };
    let tag = match kind {
        TlbAccess::Read => e.read,
        TlbAccess::Write => e.write,
        TlbAccess::Exec => e.exec,
    };
    let align_mask = if ALIGNED { N as u64 - 1 } else { 0 };
    let want = vaddr.wrapping_add(N as u64 - 1 - align_mask) & (PAGE_MASK | align_mask);
    (tag == want).then(|| vaddr.wrapping_add(e.addend) as *mut u8)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn load<const N: u8, const SIGNED: bool, const ALIGNED: bool>(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    d: Slot,
    base: Slot,
    m: Mode,
    site: u32,
    off: u64,
) -> Result<(), Left> {
    let addr = f.get(base).wrapping_add(off);
    let v = match tlb::<N, ALIGNED>(cpu, TlbAccess::Read, m, addr) {
        // SAFETY: a hit means the `N` bytes at `p` are guest RAM the host keeps mapped (the
        // compared tag is that of the access's last byte's page); they may be misaligned.
        Some(p) => unsafe {
            match N {
                1 => p.read() as u64,
                2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
                4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
                _ => u64::from_le(p.cast::<u64>().read_unaligned()),
            }
        },
        None => host_call(env, f, cpu, Call::Load { site, addr })?,
    };
    // The host's value is extended too: device registers answer with the raw bytes.
    f.set(d, extend::<N, SIGNED>(v));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store<const N: u8, const ALIGNED: bool>(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    s: Slot,
    base: Slot,
    m: Mode,
    site: u32,
    off: u64,
) -> Result<(), Left> {
    let addr = f.get(base).wrapping_add(off);
    let value = f.get(s);
    match tlb::<N, ALIGNED>(cpu, TlbAccess::Write, m, addr) {
        // SAFETY: as in `load`, for the `write` tag (set only for writable RAM without code).
        Some(p) => unsafe {
            match N {
                1 => p.write(value as u8),
                2 => p.cast::<u16>().write_unaligned((value as u16).to_le()),
                4 => p.cast::<u32>().write_unaligned((value as u32).to_le()),
                _ => p.cast::<u64>().write_unaligned(value.to_le()),
            }
        },
        None => {
            // Devices get exactly the bytes stored, not the register's upper bits.
            host_call(env, f, cpu, Call::Store { site, addr, value: extend::<N, false>(value) })?;
        }
    }
    Ok(())
}

/// `LdAligned`: the plain load with the alignment check, size and mode from the site.
#[inline(never)]
fn load_aligned(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    d: Slot,
    base: Slot,
    site: u32,
    off: u64,
) -> Result<(), Left> {
    let a = env.code.sites[site as usize].access;
    let m = mode_of(a.mmu);
    match (a.size, a.signed) {
        (1, false) => load::<1, false, true>(env, f, cpu, d, base, m, site, off),
        (1, true) => load::<1, true, true>(env, f, cpu, d, base, m, site, off),
        (2, false) => load::<2, false, true>(env, f, cpu, d, base, m, site, off),
        (2, true) => load::<2, true, true>(env, f, cpu, d, base, m, site, off),
        (4, false) => load::<4, false, true>(env, f, cpu, d, base, m, site, off),
        (4, true) => load::<4, true, true>(env, f, cpu, d, base, m, site, off),
        _ => load::<8, false, true>(env, f, cpu, d, base, m, site, off),
    }
}

/// `StAligned`, as [`load_aligned`].
#[inline(never)]
fn store_aligned(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    s: Slot,
    base: Slot,
    site: u32,
    off: u64,
) -> Result<(), Left> {
    let a = env.code.sites[site as usize].access;
    let m = mode_of(a.mmu);
    match a.size {
        1 => store::<1, true>(env, f, cpu, s, base, m, site, off),
        2 => store::<2, true>(env, f, cpu, s, base, m, site, off),
        4 => store::<4, true>(env, f, cpu, s, base, m, site, off),
        _ => store::<8, true>(env, f, cpu, s, base, m, site, off),
    }
}

// The atomics are out of line: far rarer than plain accesses. Their fast paths work on the host's
// RAM with host atomics; a miss hands the whole operation (and the reservation) to the host.

/// `Amo`: gives the old value, sign-extended when 4 bytes.
#[inline(never)]
fn amo(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    addr: u64,
    src: u64,
    site: u32,
) -> Result<u64, Left> {
    let Site { access, op, order, .. } = env.code.sites[site as usize];
    let v = match aligned_ptr(cpu, TlbAccess::Write, access, addr) {
        // SAFETY: a hit on the write tag is writable RAM; `aligned_ptr` checked alignment.
        Some(p) => unsafe { amo_in_place(op, access.size, order.for_rmw(), p, src) },
        None => host_call(env, f, cpu, Call::Atomic { site, kind: AtomicKind::Amo, addr, src })?,
    };
    Ok(sign_extend(access.size, v))
}

/// `LoadReserved`: gives the value (sign-extended when 4 bytes) and reserves `addr`.
#[inline(never)]
fn load_reserved(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    addr: u64,
    site: u32,
) -> Result<u64, Left> {
    let Site { access, order, .. } = env.code.sites[site as usize];
    match aligned_ptr(cpu, TlbAccess::Read, access, addr) {
        Some(p) => {
            let o = order.for_load();
            // SAFETY: a hit on the read tag is RAM; `aligned_ptr` checked alignment.
            let v = unsafe {
                if access.size == 4 {
                    AtomicU32::from_ptr(p.cast()).load(o) as u64
                } else {
                    AtomicU64::from_ptr(p.cast()).load(o)
                }
            };
            let v = sign_extend(access.size, v);
            (cpu.resv_addr, cpu.resv_value) = (addr, v);
            Ok(v)
        }
        None => {
            let v =
                host_call(env, f, cpu, Call::Atomic { site, kind: AtomicKind::LoadReserved, addr, src: 0 })?;
            Ok(sign_extend(access.size, v))
        }
    }
}

/// `StoreConditional`: gives 0 if it stored, 1 if not; always ends the reservation.
#[inline(never)]
fn store_conditional(
    env: &Env<'_>,
    f: &mut Frame,
    cpu: &mut CpuState,
    addr: u64,
    src: u64,
    site: u32,
) -> Result<u64, Left> {
    let Site { access, order, .. } = env.code.sites[site as usize];
    match aligned_ptr(cpu, TlbAccess::Write, access, addr) {
        Some(p) => {
            let (old, o) = (cpu.resv_value, order.for_rmw());
            // SAFETY: as in `amo`.
            let ok = cpu.resv_addr == addr && unsafe { compare_exchange(access.size, o, p, old, src) };
            cpu.resv_addr = NO_RESERVATION;
            Ok(!ok as u64)
        }
        None => host_call(env, f, cpu, Call::Atomic { site, kind: AtomicKind::StoreConditional, addr, src }),
    }
}

/// The TLB fast path for an aligned atomic access of `size` (4 or 8) bytes. Also checks the host
/// address's alignment, which host atomics need: the contract aligns the guest address, and a host
/// whose `addend` is not a multiple of 8 just gets every atomic on its slow path.
#[inline(always)]
fn aligned_ptr(cpu: &CpuState, kind: TlbAccess, access: MemAccess, addr: u64) -> Option<*mut u8> {
    let m = mode_of(access.mmu);
    let p = if access.size == 4 {
        tlb::<4, true>(cpu, kind, m, addr)
    } else {
        tlb::<8, true>(cpu, kind, m, addr)
    }?;
    (p as usize & (access.size as usize - 1) == 0).then_some(p)
}

fn sign_extend(size: u8, v: u64) -> u64 {
    if size == 4 { v as u32 as i32 as i64 as u64 } else { v }
}

/// `old = mem; mem = eval_amo(op, size, old, src)` with one host atomic; gives `old`.
///
/// # Safety
/// `p` is valid for an atomic access of `size` bytes and aligned to it.
unsafe fn amo_in_place(op: AtomicOp, size: u8, o: Ordering, p: *mut u8, src: u64) -> u64 {
    // SAFETY: per this function's contract (every access to guest RAM in this process is either
    // atomic or a plain access of the same size the guest itself could race with).
    unsafe {
        if size == 4 {
            let (u, i, s) = (AtomicU32::from_ptr(p.cast()), AtomicI32::from_ptr(p.cast()), src as u32);
            (match op {
                AtomicOp::Swap => u.swap(s, o),
                AtomicOp::Add => u.fetch_add(s, o),
                AtomicOp::And => u.fetch_and(s, o),
                AtomicOp::Or => u.fetch_or(s, o),
                AtomicOp::Xor => u.fetch_xor(s, o),
                AtomicOp::Min => i.fetch_min(s as i32, o) as u32,
                AtomicOp::Max => i.fetch_max(s as i32, o) as u32,
                AtomicOp::MinU => u.fetch_min(s, o),
                AtomicOp::MaxU => u.fetch_max(s, o),
            }) as u64
        } else {
            let (u, i) = (AtomicU64::from_ptr(p.cast()), AtomicI64::from_ptr(p.cast()));
            match op {
                AtomicOp::Swap => u.swap(src, o),
                AtomicOp::Add => u.fetch_add(src, o),
                AtomicOp::And => u.fetch_and(src, o),
                AtomicOp::Or => u.fetch_or(src, o),
                AtomicOp::Xor => u.fetch_xor(src, o),
                AtomicOp::Min => i.fetch_min(src as i64, o) as u64,
                AtomicOp::Max => i.fetch_max(src as i64, o) as u64,
                AtomicOp::MinU => u.fetch_min(src, o),
                AtomicOp::MaxU => u.fetch_max(src, o),
            }
        }
    }
}

/// Whether memory at `p` held `old` (at `size`) and now holds `new`.
///
/// # Safety
/// As for [`amo`].
unsafe fn compare_exchange(size: u8, o: Ordering, p: *mut u8, old: u64, new: u64) -> bool {
    // A failed exchange is only a load; give it the load half of the ordering.
    let fail = match o {
        Ordering::SeqCst => Ordering::SeqCst,
        Ordering::Acquire | Ordering::AcqRel => Ordering::Acquire,
        _ => Ordering::Relaxed,
    };
    // SAFETY: per this function's contract.
    unsafe {
        if size == 4 {
            AtomicU32::from_ptr(p.cast()).compare_exchange(old as u32, new as u32, o, fail).is_ok()
        } else {
            AtomicU64::from_ptr(p.cast()).compare_exchange(old, new, o, fail).is_ok()
        }
    }
}

/// A call into the host from the middle of a block.
enum Call {
    Load { site: u32, addr: u64 },
    Store { site: u32, addr: u64, value: u64 },
    Atomic { site: u32, kind: AtomicKind, addr: u64, src: u64 },
    Helper { helper: u32 },
}

/// A block left the hot loop: early, or through `Op::Exit`.
pub(crate) struct Left {
    /// Redirect, Exit, Gone or UnknownHelper.
    stop: Stop,
    /// Instructions of the block that retired before it left.
    retired: u64,
    /// It ran to its end (`Op::Exit`): the run loop accounts for it and goes to `next`.
    completed: bool,
    next: u64,
}

impl Left {
    fn early(stop: Stop, retired: u64) -> Left {
        Left { stop, retired, completed: false, next: 0 }
    }
}

/// Makes `cpu` exact for the op (registers, pc, instret as the IR's accounting rules say), calls
/// the host, and takes the registers back: the host may read or change any of them.
#[cold]
#[inline(never)]
fn host_call(env: &Env<'_>, f: &mut Frame, cpu: &mut CpuState, call: Call) -> Result<u64, Left> {
    let code = env.code;
    let (at, sync) = match call {
        Call::Load { site, .. } | Call::Store { site, .. } | Call::Atomic { site, .. } => {
            (code.sites[site as usize].at, true)
        }
        Call::Helper { helper, .. } => {
            let h = code.helpers[helper as usize];
            // A helper that neither reads nor writes registers leaves the frame authoritative.
            (h.at, !h.flags.contains(HelperFlags::NO_REG_READ.union(HelperFlags::NO_REG_WRITE)))
        }
    };
    let entry_instret = cpu.instret;
    if sync {
        f.store_regs(cpu.regs_mut());
    }
    cpu.pc = at.pc;
    cpu.instret = entry_instret.wrapping_add(at.insn_index as u64);
    let host = env.host;
    let r = match call {
        Call::Load { site, addr } => host.load(cpu, addr, code.sites[site as usize].access),
        Call::Store { site, addr, value } => host.store(cpu, addr, code.sites[site as usize].access, value),
        Call::Atomic { site, kind, addr, src } => {
            let Site { access, op, order, .. } = code.sites[site as usize];
            host.atomic(cpu, &AtomicReq { kind, op, access, order, addr, src })
        }
        Call::Helper { helper } => {
            let h = code.helpers[helper as usize];
            match host.helper(cpu, h.id, h.args.map(|a| f.get(a)), h.imm) {
                Some(r) => r,
                None => {
                    let table = host.helper_table().len();
                    return Err(Left::early(Stop::UnknownHelper { id: h.id, table }, 0));
                }
            }
        }
    };
    if sync {
        f.load_regs(cpu.regs());
    }
    match r.flow {
        Flow::Continue => {
            // The block goes on and adds its whole count when it completes, so take back the part
            // counted here; measured from the host's value, so a helper that rewrote the counter
            // (a CSR write) keeps its effect.
            cpu.instret = cpu.instret.wrapping_sub(at.insn_index as u64);
            Ok(r.value)
        }
        Flow::Redirect => Err(left(Stop::Redirect, cpu, entry_instret, at.block_insns)),
        Flow::Exit(reason) => Err(left(Stop::Exit(reason), cpu, entry_instret, at.block_insns)),
    }
}

/// The block leaves early; it retired the host's count of instructions when that is plausible,
/// else none (a helper that rewrote the counter must not inflate the budget or the statistics).
fn left(stop: Stop, cpu: &CpuState, entry_instret: u64, block_insns: u32) -> Left {
    let n = cpu.instret.wrapping_sub(entry_instret);
    Left::early(stop, if n <= block_insns as u64 { n } else { 0 })
}
