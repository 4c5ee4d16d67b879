//! Arithmetic against the IR's reference semantics (`eval_bin`, `eval_un`, `eval_cond`).

mod common;
use common::*;
use vm_jit::{Jit, Outcome};
use vm_plugin_api::{
    BinOp, Cond, Dest, IrOp, Operand, Terminator, UnOp,
    ir::{eval_bin, eval_cond, eval_un},
};

const BIN_OPS: [BinOp; 39] = [
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

const UN_OPS: [UnOp; 11] = [
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

const CONDS: [Cond; 6] = [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Ge, Cond::Ltu, Cond::Geu];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Mostly edge values (zero, ±1, the 32- and 64-bit extremes, shift amounts), some random.
    fn value(&mut self) -> u64 {
        const EDGES: [u64; 14] = [
            0,
            1,
            2,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0x8000_0000,
            0x7fff_ffff,
            0xffff_ffff,
            0xffff_ffff_8000_0000,
            31,
            32,
            63,
            64,
        ];
        match self.next() % 3 {
            0 => EDGES[(self.next() % EDGES.len() as u64) as usize],
            1 => self.next() & 0xff,
            _ => self.next(),
        }
    }
}

/// Runs one block over x1..x31 preset to `regs`; gives the registers after.
fn run(jit: &mut Jit, ops: Vec<IrOp>, regs: &[u64; 32]) -> [u64; 32] {
    let h = FakeHost::new();
    let calls = h.calls();
    let mut cpu = h.cpu();
    cpu.x = *regs;
    let id = jit.compile(&block(RAM, 1, ops, jump(RAM + 4)), &calls).unwrap();
    let (out, _) = jit.call(id, &mut cpu, &calls, 1).unwrap();
    assert_eq!(out, Outcome::Next { from: id, succ: Some(0) });
    cpu.x
}

#[test]
fn every_bin_op_matches_eval_bin_on_registers_immediates_and_temporaries() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut jit = Jit::new().unwrap();
    for op in BIN_OPS {
        for _ in 0..8 {
            let mut regs = [0u64; 32];
            let mut want = [0u64; 32];
            let mut ops = vec![];
            for d in 1..32u8 {
                let (a, b) = (rng.value(), rng.value());
                regs[d as usize] = a;
                // Operand kinds vary so both the constant-folded and the register forms run.
                let bop = match rng.next() % 3 {
                    0 => Operand::Imm(b as i64),
                    1 => {
                        ops.push(IrOp::Mov { dst: Dest::Tmp(d), src: Operand::Imm(b as i64) });
                        Operand::Tmp(d)
                    }
                    _ => {
                        ops.push(IrOp::Mov { dst: Dest::Tmp(0), src: Operand::Imm(b as i64) });
                        Operand::Tmp(0)
                    }
                };
                let aop = if rng.next().is_multiple_of(4) { Operand::Imm(a as i64) } else { Operand::Reg(d) };
                ops.push(IrOp::Bin { op, dst: Dest::Reg(d), a: aop, b: bop });
                want[d as usize] = eval_bin(op, a, b);
            }
            let got = run(&mut jit, ops, &regs);
            for d in 1..32 {
                assert_eq!(got[d], want[d], "{op:?} {:#x}, {:#x}", regs[d], got[d]);
            }
        }
    }
}

#[test]
fn every_un_op_and_select_matches_the_reference() {
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    let mut jit = Jit::new().unwrap();
    for _ in 0..16 {
        let mut regs = [0u64; 32];
        let mut ops = vec![];
        let mut want = [0u64; 32];
        for (i, op) in UN_OPS.into_iter().enumerate() {
            let d = 1 + i as u8;
            regs[d as usize] = rng.value();
            ops.push(IrOp::Un { op, dst: Dest::Reg(d), src: r(d) });
            want[d as usize] = eval_un(op, regs[d as usize]);
        }
        for (i, cond) in CONDS.into_iter().enumerate() {
            let d = 20 + i as u8;
            let a = rng.value();
            // Equal operands half the time, so Eq/Ge hold often enough.
            let b = if rng.next().is_multiple_of(2) { rng.value() } else { a };
            regs[d as usize] = a;
            ops.push(IrOp::Select {
                dst: Dest::Reg(d),
                cond,
                a: r(d),
                b: imm(b as i64),
                t: imm(1),
                f: imm(2),
            });
            want[d as usize] = if eval_cond(cond, a, b) { 1 } else { 2 };
        }
        let got = run(&mut jit, ops, &regs);
        for d in 1..32 {
            if want[d] != 0 {
                assert_eq!(got[d], want[d], "x{d} from {:#x}", regs[d]);
            }
        }
    }
}

#[test]
fn branches_follow_eval_cond() {
    let mut rng = Rng(42);
    let mut jit = Jit::new().unwrap();
    let h = FakeHost::new();
    let calls = h.calls();
    for _ in 0..10 {
        for cond in CONDS {
            let a = rng.value();
            let b = if rng.next().is_multiple_of(3) { a } else { rng.value() };
            let term = Terminator::Branch { cond, a: r(1), b: r(2), taken: 0x100, not_taken: 0x200 };
            let id = jit.compile(&block(RAM, 1, vec![], term), &calls).unwrap();
            let mut cpu = h.cpu();
            (cpu.x[1], cpu.x[2]) = (a, b);
            let (out, _) = jit.call(id, &mut cpu, &calls, 1).unwrap();
            let taken = eval_cond(cond, a, b);
            assert_eq!(out, Outcome::Next { from: id, succ: Some(!taken as u8) });
            assert_eq!(cpu.pc, if taken { 0x100 } else { 0x200 }, "{cond:?} {a:#x} {b:#x}");
        }
    }
}

#[test]
fn an_indirect_jump_goes_to_the_register_value_unlinked() {
    let mut jit = Jit::new().unwrap();
    let h = FakeHost::new();
    let calls = h.calls();
    let ops = vec![bin(BinOp::Add, 5, r(5), imm(8))];
    let id = jit.compile(&block(RAM, 2, ops, Terminator::JumpIndirect { target: r(5) }), &calls).unwrap();
    let mut cpu = h.cpu();
    cpu.x[5] = 0x4000;
    let (out, left) = jit.call(id, &mut cpu, &calls, 10).unwrap();
    assert_eq!((out, left), (Outcome::Next { from: id, succ: None }, 8));
    assert_eq!((cpu.pc, cpu.x[5], cpu.instret), (0x4008, 0x4008, 1002));
}
