//! The layout of every boundary type a JIT or a C-level reader depends on, checked against
//! `tests/layout.txt`.
//!
//! abi_stable refuses a plugin whose layout differs from the host's, but says nothing when both
//! sides change together: this test makes such a change show up in review. It prints sizes,
//! alignments, field offsets, enum tags and the constants of the fast paths, and fails when the
//! text differs from the checked-in file. After a deliberate change, rewrite the file with
//! `VMHOST_BLESS_LAYOUT=1 cargo test --release -p vm-plugin-api --test layout` and commit it.
#![cfg(target_pointer_width = "64")]

use std::fmt::Write as _;
use std::mem::{MaybeUninit, align_of, offset_of, size_of};
use std::ptr;
use vm_plugin_api::abi_stable::std_types::{ROption, RVec};
use vm_plugin_api::cpu::{self, attn, tlb_flag};
use vm_plugin_api::ir::{self, fence, mem_flag};
use vm_plugin_api::memory::MemoryOrder;
use vm_plugin_api::*;

const BLESS_VAR: &str = "VMHOST_BLESS_LAYOUT";

fn header<T>(out: &mut String, name: &str) {
    writeln!(out, "\n{name}: size {}, align {}", size_of::<T>(), align_of::<T>()).unwrap();
}

fn field(out: &mut String, name: &str, offset: usize, size: usize) {
    writeln!(out, "  {name:<14} offset {offset:>3}, size {size:>3}").unwrap();
}

fn pointee_size<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// Prints a struct's size, alignment and every field. The pattern lists every field without
/// `..`, so a field added to the type and not here is a compile error.
macro_rules! layout_struct {
    ($out:ident, $t:ident { $($f:ident),* $(,)? }) => {{
        let _every_field_is_listed = |v: &$t| {
            let $t { $($f: _),* } = v;
        };
        header::<$t>($out, stringify!($t));
        let u = MaybeUninit::<$t>::uninit();
        let p = u.as_ptr();
        $(
            // SAFETY: only the address of a field of the (uninitialised) value is taken; nothing
            // is read.
            let fp = unsafe { &raw const (*p).$f };
            field($out, stringify!($f), offset_of!($t, $f), pointee_size(fp));
        )*
    }};
}

/// A field of an enum variant, found through a reference into a sample value.
fn f<T>(name: &'static str, r: &T) -> (&'static str, usize, usize) {
    (name, ptr::from_ref(r).cast::<u8>() as usize, size_of::<T>())
}

/// Prints one variant of a `#[repr(C, u8)]` enum: its tag (the first byte) and its fields'
/// offsets from the start of the value.
fn variant<E>(out: &mut String, value: &E, name: &str, fields: &[(&str, usize, usize)]) {
    let start = ptr::from_ref(value).cast::<u8>();
    // SAFETY: every enum printed with this is `#[repr(C, u8)]`, whose first byte is the tag.
    let tag = unsafe { start.read() };
    writeln!(out, "  {name} = {tag}").unwrap();
    for &(fname, addr, size) in fields {
        let offset = addr - start as usize;
        writeln!(out, "    {fname:<12} offset {offset:>3}, size {size:>3}").unwrap();
    }
}

/// Prints the discriminants of a fieldless `#[repr(u8)]` enum.
fn tags<E: Copy + std::fmt::Debug>(out: &mut String, name: &str, all: &[E], value: impl Fn(E) -> u8) {
    let list: Vec<String> = all.iter().map(|&e| format!("{e:?}={}", value(e))).collect();
    writeln!(out, "{name} (u8): {}", list.join(" ")).unwrap();
}

fn structs(out: &mut String) {
    layout_struct!(
        out,
        CpuState {
            pc,
            x,
            f,
            instret,
            tb_flags,
            privilege,
            fetch_mmu,
            _pad,
            hart_id,
            resv_addr,
            resv_value,
            fcsr,
            attention,
            tlb,
        }
    );
    layout_struct!(out, TlbEntry { read, write, exec, addend });
    layout_struct!(out, TlbFast { mask, table });
    layout_struct!(out, HostCalls { ctx, translate_fn, load_fn, store_fn, atomic_fn, helpers, n_helpers });
    layout_struct!(out, HelperEntry { func, flags });
    layout_struct!(out, HostResult { flow, value });
    layout_struct!(out, MemAccess { size, signed, mmu, flags });
    layout_struct!(out, AtomicReq { kind, op, access, order, addr, src });
    layout_struct!(out, At { pc_offset, insn_index });
    layout_struct!(out, IrBlock { pc, phys_pc, flags, len, insn_count, pages, ops, term });
    layout_struct!(out, EngineContext { config, hart_id, num_harts, vm_id });
    layout_struct!(out, IoRegion { offset, size, kind, min_access, max_access, unaligned });
    layout_struct!(out, DeviceContext { id, base, config, config_dir, irq, memory, host });
    layout_struct!(out, GuestRam { base, host, size });
    layout_struct!(out, VmError { kind, message });
}

const R: Operand = Operand::Reg(1);
const ACCESS: MemAccess = MemAccess::new(8, false, 0);
const AT: At = At { pc_offset: 0, insn_index: 0 };

fn operand(out: &mut String) {
    header::<Operand>(out, "Operand");
    for v in [Operand::Reg(1), Operand::Tmp(1), Operand::Imm(1)] {
        match &v {
            Operand::Reg(i) => variant(out, &v, "Reg", &[f("0", i)]),
            Operand::Tmp(i) => variant(out, &v, "Tmp", &[f("0", i)]),
            Operand::Imm(i) => variant(out, &v, "Imm", &[f("0", i)]),
        }
    }
}

fn dest(out: &mut String) {
    header::<Dest>(out, "Dest");
    for v in [Dest::Reg(1), Dest::Tmp(1)] {
        match &v {
            Dest::Reg(i) => variant(out, &v, "Reg", &[f("0", i)]),
            Dest::Tmp(i) => variant(out, &v, "Tmp", &[f("0", i)]),
        }
    }
}

fn flow(out: &mut String) {
    header::<Flow>(out, "Flow");
    for v in [Flow::Continue, Flow::Redirect, Flow::Exit(ExitReason::Halt)] {
        match &v {
            Flow::Continue => variant(out, &v, "Continue", &[]),
            Flow::Redirect => variant(out, &v, "Redirect", &[]),
            Flow::Exit(r) => variant(out, &v, "Exit", &[f("0", r)]),
        }
    }
}

fn ir_op(out: &mut String) {
    header::<IrOp>(out, "IrOp");
    let d = Dest::Tmp(0);
    let order = MemoryOrder::SeqCst;
    let samples = [
        IrOp::Mov { dst: d, src: R },
        IrOp::Bin { op: BinOp::Add, dst: d, a: R, b: R },
        IrOp::Load { dst: d, base: R, offset: 0, access: ACCESS, at: AT },
        IrOp::Store { src: R, base: R, offset: 0, access: ACCESS, at: AT },
        IrOp::Un { op: UnOp::Clz, dst: d, src: R },
        IrOp::Select { dst: d, cond: Cond::Eq, a: R, b: R, t: R, f: R },
        IrOp::Amo { op: AtomicOp::Add, dst: d, addr: R, src: R, access: ACCESS, order, at: AT },
        IrOp::LoadReserved { dst: d, addr: R, access: ACCESS, order, at: AT },
        IrOp::StoreConditional { dst: d, addr: R, src: R, access: ACCESS, order, at: AT },
        IrOp::Fence { pred: 0, succ: 0 },
        IrOp::Helper { id: 0, flags: HelperFlags(0), dst: ROption::RSome(d), args: [R; 3], imm: 0, at: AT },
    ];
    for v in &samples {
        match v {
            IrOp::Mov { dst, src } => variant(out, v, "Mov", &[f("dst", dst), f("src", src)]),
            IrOp::Bin { op, dst, a, b } => {
                variant(out, v, "Bin", &[f("op", op), f("dst", dst), f("a", a), f("b", b)])
            }
            IrOp::Load { dst, base, offset, access, at } => variant(
                out,
                v,
                "Load",
                &[f("dst", dst), f("base", base), f("offset", offset), f("access", access), f("at", at)],
            ),
            IrOp::Store { src, base, offset, access, at } => variant(
                out,
                v,
                "Store",
                &[f("src", src), f("base", base), f("offset", offset), f("access", access), f("at", at)],
            ),
            IrOp::Un { op, dst, src } => variant(out, v, "Un", &[f("op", op), f("dst", dst), f("src", src)]),
            IrOp::Select { dst, cond, a, b, t, f: fv } => variant(
                out,
                v,
                "Select",
                &[f("dst", dst), f("cond", cond), f("a", a), f("b", b), f("t", t), f("f", fv)],
            ),
            IrOp::Amo { op, dst, addr, src, access, order, at } => variant(
                out,
                v,
                "Amo",
                &[
                    f("op", op),
                    f("dst", dst),
                    f("addr", addr),
                    f("src", src),
                    f("access", access),
                    f("order", order),
                    f("at", at),
                ],
            ),
            IrOp::LoadReserved { dst, addr, access, order, at } => variant(
                out,
                v,
                "LoadReserved",
                &[f("dst", dst), f("addr", addr), f("access", access), f("order", order), f("at", at)],
            ),
            IrOp::StoreConditional { dst, addr, src, access, order, at } => variant(
                out,
                v,
                "StoreConditional",
                &[
                    f("dst", dst),
                    f("addr", addr),
                    f("src", src),
                    f("access", access),
                    f("order", order),
                    f("at", at),
                ],
            ),
            IrOp::Fence { pred, succ } => variant(out, v, "Fence", &[f("pred", pred), f("succ", succ)]),
            IrOp::Helper { id, flags, dst, args, imm, at } => variant(
                out,
                v,
                "Helper",
                &[f("id", id), f("flags", flags), f("dst", dst), f("args", args), f("imm", imm), f("at", at)],
            ),
        }
    }
}

fn terminator(out: &mut String) {
    header::<Terminator>(out, "Terminator");
    let samples = [
        Terminator::Jump { target: 0 },
        Terminator::Branch { cond: Cond::Eq, a: R, b: R, taken: 0, not_taken: 0 },
        Terminator::JumpIndirect { target: R },
        Terminator::Exit { next: 0 },
    ];
    for v in &samples {
        match v {
            Terminator::Jump { target } => variant(out, v, "Jump", &[f("target", target)]),
            Terminator::Branch { cond, a, b, taken, not_taken } => variant(
                out,
                v,
                "Branch",
                &[f("cond", cond), f("a", a), f("b", b), f("taken", taken), f("not_taken", not_taken)],
            ),
            Terminator::JumpIndirect { target } => variant(out, v, "JumpIndirect", &[f("target", target)]),
            Terminator::Exit { next } => variant(out, v, "Exit", &[f("next", next)]),
        }
    }
}

fn fetched(out: &mut String) {
    header::<Fetched>(out, "Fetched");
    let block = IrBlock {
        pc: 0,
        phys_pc: 0,
        flags: 0,
        len: 0,
        insn_count: 0,
        pages: [0, ir::NO_PAGE],
        ops: RVec::new(),
        term: Terminator::Exit { next: 0 },
    };
    for v in [Fetched::Block(block), Fetched::Flow(Flow::Redirect)] {
        match &v {
            Fetched::Block(b) => variant(out, &v, "Block", &[f("0", b)]),
            Fetched::Flow(fl) => variant(out, &v, "Flow", &[f("0", fl)]),
        }
    }
}

/// The fieldless enums the types above embed. Each `match` is exhaustive, so a new variant must be
/// added here too.
fn enum_tags(out: &mut String) {
    out.push('\n');
    use ExitReason as X;
    let all = [X::BudgetExhausted, X::ExitRequested, X::Wfi, X::Halt, X::HostError, X::Debug];
    tags(out, "ExitReason", &all, |e| match e {
        X::BudgetExhausted | X::ExitRequested | X::Wfi | X::Halt | X::HostError | X::Debug => e as u8,
    });
    use AtomicKind as K;
    tags(out, "AtomicKind", &[K::Amo, K::LoadReserved, K::StoreConditional], |e| match e {
        K::Amo | K::LoadReserved | K::StoreConditional => e as u8,
    });
    use AtomicOp as A;
    let all = [A::Swap, A::Add, A::And, A::Or, A::Xor, A::Min, A::Max, A::MinU, A::MaxU];
    tags(out, "AtomicOp", &all, |e| match e {
        A::Swap | A::Add | A::And | A::Or | A::Xor | A::Min | A::Max | A::MinU | A::MaxU => e as u8,
    });
    use MemoryOrder as M;
    let all = [M::Relaxed, M::Acquire, M::Release, M::AcqRel, M::SeqCst];
    tags(out, "MemoryOrder", &all, |e| match e {
        M::Relaxed | M::Acquire | M::Release | M::AcqRel | M::SeqCst => e as u8,
    });
    use Cond as C;
    let all = [C::Eq, C::Ne, C::Lt, C::Ge, C::Ltu, C::Geu];
    tags(out, "Cond", &all, |e| match e {
        C::Eq | C::Ne | C::Lt | C::Ge | C::Ltu | C::Geu => e as u8,
    });
    use BinOp as B;
    #[rustfmt::skip]
    let all = [
        B::Add, B::Sub, B::And, B::Or, B::Xor, B::Shl, B::Shr, B::Sar, B::Slt, B::Sltu, B::Mul, B::MulH,
        B::MulHU, B::MulHSU, B::Div, B::DivU, B::Rem, B::RemU, B::AddW, B::SubW, B::ShlW, B::ShrW,
        B::SarW, B::MulW, B::DivW, B::DivUW, B::RemW, B::RemUW, B::Andn, B::Orn, B::Xnor, B::Min,
        B::Max, B::MinU, B::MaxU, B::Rol, B::Ror, B::RolW, B::RorW,
    ];
    #[rustfmt::skip]
    tags(out, "BinOp", &all, |e| match e {
        B::Add | B::Sub | B::And | B::Or | B::Xor | B::Shl | B::Shr | B::Sar | B::Slt | B::Sltu
        | B::Mul | B::MulH | B::MulHU | B::MulHSU | B::Div | B::DivU | B::Rem | B::RemU | B::AddW
        | B::SubW | B::ShlW | B::ShrW | B::SarW | B::MulW | B::DivW | B::DivUW | B::RemW | B::RemUW
        | B::Andn | B::Orn | B::Xnor | B::Min | B::Max | B::MinU | B::MaxU | B::Rol | B::Ror
        | B::RolW | B::RorW => e as u8,
    });
    use UnOp as U;
    #[rustfmt::skip]
    let all = [
        U::Clz, U::Ctz, U::Cpop, U::ClzW, U::CtzW, U::CpopW, U::Rev8, U::OrcB, U::SextB, U::SextH,
        U::ZextH,
    ];
    #[rustfmt::skip]
    tags(out, "UnOp", &all, |e| match e {
        U::Clz | U::Ctz | U::Cpop | U::ClzW | U::CtzW | U::CpopW | U::Rev8 | U::OrcB | U::SextB
        | U::SextH | U::ZextH => e as u8,
    });
    tags(out, "RegionKind", &[RegionKind::Mmio], |e| match e {
        RegionKind::Mmio => e as u8,
    });
    use ErrorKind as E;
    #[rustfmt::skip]
    let all = [
        E::Config, E::Memory, E::Device, E::Engine, E::Panic, E::Unsupported, E::Io, E::BusFault, E::Other,
    ];
    #[rustfmt::skip]
    tags(out, "ErrorKind", &all, |e| match e {
        E::Config | E::Memory | E::Device | E::Engine | E::Panic | E::Unsupported | E::Io | E::BusFault
        | E::Other => e as u8,
    });
}

/// The numbers generated code bakes in.
fn constants(out: &mut String) {
    out.push('\n');
    let mut c = |name: &str, v: u64| writeln!(out, "{name} = {v:#x}").unwrap();
    c("PAGE_BITS", cpu::PAGE_BITS.into());
    c("PAGE_MASK", cpu::PAGE_MASK);
    c("TLB_ENTRY_BITS", cpu::TLB_ENTRY_BITS.into());
    c("MMU_MODES", cpu::MMU_MODES as u64);
    c("TLB_EMPTY", cpu::TLB_EMPTY);
    c("tlb_flag::INVALID", tlb_flag::INVALID);
    c("tlb_flag::NOTDIRTY", tlb_flag::NOTDIRTY);
    c("tlb_flag::SLOW", tlb_flag::SLOW);
    c("attn::EXIT", attn::EXIT.into());
    c("attn::IRQ", attn::IRQ.into());
    c("attn::CODE", attn::CODE.into());
    c("attn::TLB", attn::TLB.into());
    c("attn::FLUSH_VIRT", attn::FLUSH_VIRT.into());
    c("NO_RESERVATION", cpu::NO_RESERVATION);
    c("ir::MAX_TEMPS", ir::MAX_TEMPS as u64);
    c("ir::NUM_REGS", ir::NUM_REGS as u64);
    c("ir::FP_BASE", ir::FP_BASE.into());
    c("ir::NO_PAGE", ir::NO_PAGE);
    c("mem_flag::ALIGNED", mem_flag::ALIGNED.into());
    c("fence::R", fence::R.into());
    c("fence::W", fence::W.into());
    c("fence::I", fence::I.into());
    c("fence::O", fence::O.into());
    c("HelperFlags::NO_REG_READ", HelperFlags::NO_REG_READ.0.into());
    c("HelperFlags::NO_REG_WRITE", HelperFlags::NO_REG_WRITE.0.into());
    c("HelperFlags::NO_EXIT", HelperFlags::NO_EXIT.0.into());
    c("HelperFlags::FP", HelperFlags::FP.0.into());
    c("HelperFlags::PURE", HelperFlags::PURE.0.into());
    c("EngineCaps::HOT_COMPILATION", EngineCaps::HOT_COMPILATION.0);
    c("EngineCaps::JIT", EngineCaps::JIT.0);
    c("EngineCaps::SHARES_CODE", EngineCaps::SHARES_CODE.0);
}

fn layout() -> String {
    let mut out = format!(
        "# Layout of the plugin-api {PLUGIN_API_VERSION} boundary types (64-bit hosts), printed by \
         tests/layout.rs.\n# Rewrite it only for a deliberate change: {BLESS_VAR}=1 cargo test --release \
         -p vm-plugin-api --test layout\n"
    );
    structs(&mut out);
    operand(&mut out);
    dest(&mut out);
    flow(&mut out);
    ir_op(&mut out);
    terminator(&mut out);
    fetched(&mut out);
    enum_tags(&mut out);
    constants(&mut out);
    out
}

/// A line diff (longest common subsequence; the texts are a few hundred lines): `-` lines are only
/// in `expected`, `+` lines only in `actual`.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            writeln!(out, "- {}", a[i]).unwrap();
            i += 1;
        } else {
            writeln!(out, "+ {}", b[j]).unwrap();
            j += 1;
        }
    }
    out
}

#[test]
fn boundary_layout_matches_the_checked_in_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/layout.txt");
    let actual = layout();
    if std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1") {
        std::fs::write(path, &actual).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        eprintln!("wrote {path}");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("cannot read {path}: {e}\nCreate it with {BLESS_VAR}=1 and commit it.\n\n{actual}")
    });
    assert!(
        expected == actual,
        "the boundary layout differs from {path}\n(- checked in, + now):\n{}\n\
         An accidental change breaks every plugin built before it. If the change is deliberate \
         (a new plugin-api minor version), rewrite the file with {BLESS_VAR}=1 and commit it.\n\n\
         --- checked in ---\n{expected}\n--- now ---\n{actual}",
        diff(&expected, &actual)
    );
}

#[test]
fn the_diff_names_changed_lines_only() {
    assert_eq!(diff("a\nb\nc\n", "a\nB\nc\nd\n"), "- b\n+ B\n+ d\n");
    assert_eq!(diff("same\n", "same\n"), "");
}
