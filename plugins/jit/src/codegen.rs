//! Lowers one [`IrBlock`] to one Cranelift function of the block signature (see the crate docs).
//!
//! Guest registers are loaded into SSA variables on first use and stored back when the block ends
//! or before a host call that may read them; after a host call that may write them they are
//! reloaded. Host calls sit on cold paths except helpers, which are in line.

use crate::abi::{self, NO_SUCC};
use cranelift_codegen::ir::{
    AbiParam, Block, InstBuilder, MemFlagsData, Signature, Type, Value, condcodes::IntCC, types::*,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, Variable};
use vm_plugin_api::{
    BinOp, Cond, Dest, ExitReason, HelperFlags, HostCalls, IrBlock, IrOp, MemAccess, Operand, Terminator,
    UnOp,
    cpu::{MMU_MODES, PAGE_BITS, PAGE_MASK, TLB_ENTRY_BITS},
    ir::{MAX_TEMPS, NUM_REGS},
};

/// The signature of every compiled block: `(cpu, host, budget_left) -> (status, budget_left)`,
/// in Cranelift's tail-call convention so a block can jump into its successor.
pub(crate) fn block_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.extend([AbiParam::new(I64); 3]);
    sig.returns.extend([AbiParam::new(I64); 2]);
    sig
}

/// A System V signature of a host function (an `I32` parameter is a `MemAccess` by value),
/// returning a `HostResult` in two eightbytes.
fn host_signature(params: &[Type]) -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    sig.returns.extend([AbiParam::new(I64); 2]);
    sig
}

/// The C entry into generated code: `(cpu, host, budget_left, block) -> (status, budget_left)`.
pub(crate) fn entry_signature() -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend([AbiParam::new(I64); 4]);
    sig.returns.extend([AbiParam::new(I64); 2]);
    sig
}

/// The trampoline that calls a block from Rust (blocks use the tail-call convention).
pub(crate) fn build_entry(b: &mut FunctionBuilder<'_>) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let sig = b.import_signature(block_signature());
    let call = b.ins().call_indirect(sig, p[3], &p[..3]);
    let r = b.inst_results(call).to_vec();
    b.ins().return_(&r);
    b.seal_all_blocks();
}

/// Why a block cannot be compiled: an op outside the spike's subset, or malformed IR.
pub(crate) type GenError = String;

/// A cached guest register.
#[derive(Clone, Copy)]
struct Cached {
    var: Variable,
    /// The variable holds a value that memory does not.
    dirty: bool,
}

pub(crate) struct Gen<'a, 'b> {
    b: FunctionBuilder<'a>,
    ir: &'b IrBlock,
    id: u32,
    /// Addresses of the block's two link slots.
    links: u64,
    n_helpers: u32,
    cpu: Value,
    host: Value,
    budget: Value,
    regs: [Option<Cached>; NUM_REGS],
    temps: [Variable; MAX_TEMPS],
}

/// Loads and stores of the engine's own data (`CpuState`, `HostCalls`, TLB entries): aligned and
/// never faulting.
fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Guest memory through a TLB hit: may be misaligned; the host vouches for the mapping.
fn guest() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn intcc(cond: Cond) -> IntCC {
    match cond {
        Cond::Eq => IntCC::Equal,
        Cond::Ne => IntCC::NotEqual,
        Cond::Lt => IntCC::SignedLessThan,
        Cond::Ge => IntCC::SignedGreaterThanOrEqual,
        Cond::Ltu => IntCC::UnsignedLessThan,
        Cond::Geu => IntCC::UnsignedGreaterThanOrEqual,
    }
}

impl<'a, 'b> Gen<'a, 'b> {
    pub(crate) fn new(
        mut b: FunctionBuilder<'a>,
        ir: &'b IrBlock,
        id: u32,
        links: u64,
        host: &HostCalls,
    ) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let temps = std::array::from_fn(|_| b.declare_var(I64));
        Gen {
            b,
            ir,
            id,
            links,
            n_helpers: host.n_helpers,
            cpu: p[0],
            host: p[1],
            budget: p[2],
            regs: [None; NUM_REGS],
            temps,
        }
    }

    /// Emits the whole function.
    pub(crate) fn build(mut self, config: TargetFrontendConfig) -> Result<(), GenError> {
        self.prologue();
        for op in self.ir.ops.iter() {
            self.op(op)?;
        }
        self.terminator()?;
        self.b.seal_all_blocks();
        self.b.finalize(config);
        Ok(())
    }

    /// The stop rule at block entry: attention, then budget.
    fn prologue(&mut self) {
        let word = self.b.ins().load(I64, trusted(), self.cpu, abi::CPU_ATTENTION);
        // A plain load is a relaxed atomic load on x86-64.
        let attention = self.b.ins().load(I32, trusted(), word, 0);
        let stop = self.b.create_block();
        let budget_check = self.b.create_block();
        self.b.ins().brif(attention, stop, &[], budget_check, &[]);
        self.b.set_cold_block(stop);
        self.b.switch_to_block(stop);
        self.ret_status(abi::exit_bits(ExitReason::ExitRequested), self.budget);

        self.b.switch_to_block(budget_check);
        let spent = self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, self.budget, 0);
        let exhausted = self.b.create_block();
        let body = self.b.create_block();
        self.b.ins().brif(spent, exhausted, &[], body, &[]);
        self.b.set_cold_block(exhausted);
        self.b.switch_to_block(exhausted);
        self.ret_status(abi::exit_bits(ExitReason::BudgetExhausted), self.budget);
        self.b.switch_to_block(body);
    }

    fn ret_status(&mut self, status: u64, budget: Value) {
        let s = self.b.ins().iconst(I64, status as i64);
        self.b.ins().return_(&[s, budget]);
    }

    fn reg_offset(i: u8) -> i32 {
        abi::CPU_X + 8 * i as i32
    }

    fn read(&mut self, o: Operand) -> Result<Value, GenError> {
        Ok(match o {
            Operand::Imm(v) => self.b.ins().iconst(I64, v),
            Operand::Tmp(t) => self.b.use_var(*self.temps.get(t as usize).ok_or_else(|| bad_tmp(t))?),
            // x0 is architecturally zero.
            Operand::Reg(0) => self.b.ins().iconst(I64, 0),
            Operand::Reg(r) => {
                let slot = self.regs.get_mut(r as usize).ok_or_else(|| bad_reg(r))?;
                match slot {
                    Some(c) => {
                        let var = c.var;
                        self.b.use_var(var)
                    }
                    None => {
                        let var = self.b.declare_var(I64);
                        *slot = Some(Cached { var, dirty: false });
                        let v = self.b.ins().load(I64, trusted(), self.cpu, Self::reg_offset(r));
                        self.b.def_var(var, v);
                        v
                    }
                }
            }
        })
    }

    fn write(&mut self, d: Dest, v: Value) -> Result<(), GenError> {
        match d {
            Dest::Tmp(t) => {
                let var = *self.temps.get(t as usize).ok_or_else(|| bad_tmp(t))?;
                self.b.def_var(var, v);
            }
            // The frontend never writes x0; CpuState::set_register ignores such writes too.
            Dest::Reg(0) => {}
            Dest::Reg(r) => {
                let slot = self.regs.get_mut(r as usize).ok_or_else(|| bad_reg(r))?;
                let var = match slot {
                    Some(c) => c.var,
                    None => self.b.declare_var(I64),
                };
                *slot = Some(Cached { var, dirty: true });
                self.b.def_var(var, v);
            }
        }
        Ok(())
    }

    /// Stores every dirty register; `clean` marks them clean (only valid where every later path
    /// comes through here).
    fn spill(&mut self, clean: bool) {
        for r in 0..NUM_REGS {
            if let Some(c) = self.regs[r]
                && c.dirty
            {
                let v = self.b.use_var(c.var);
                self.b.ins().store(trusted(), v, self.cpu, Self::reg_offset(r as u8));
                if clean {
                    self.regs[r] = Some(Cached { dirty: false, ..c });
                }
            }
        }
    }

    /// Reloads every cached register from memory on the current path (after a host call that
    /// continued: it may have changed any of them).
    fn reload(&mut self) {
        for r in 0..NUM_REGS {
            if let Some(c) = self.regs[r] {
                let v = self.b.ins().load(I64, trusted(), self.cpu, Self::reg_offset(r as u8));
                self.b.def_var(c.var, v);
            }
        }
    }

    fn op(&mut self, op: &IrOp) -> Result<(), GenError> {
        match *op {
            IrOp::Mov { dst, src } => {
                let v = self.read(src)?;
                self.write(dst, v)
            }
            IrOp::Bin { op, dst, a, b } => {
                let (a, b) = (self.read(a)?, self.read(b)?);
                let v = self.bin(op, a, b);
                self.write(dst, v)
            }
            IrOp::Un { op, dst, src } => {
                let a = self.read(src)?;
                let v = self.un(op, a);
                self.write(dst, v)
            }
            IrOp::Select { dst, cond, a, b, t, f } => {
                let (a, b, t, f) = (self.read(a)?, self.read(b)?, self.read(t)?, self.read(f)?);
                let c = self.b.ins().icmp(intcc(cond), a, b);
                let v = self.b.ins().select(c, t, f);
                self.write(dst, v)
            }
            IrOp::Load { dst, base, offset, access, at } => {
                check_access(access)?;
                let base = self.read(base)?;
                let vaddr = self.b.ins().iadd_imm_s(base, offset);
                let v = self.load(vaddr, access, at)?;
                self.write(dst, v)
            }
            IrOp::Store { src, base, offset, access, at } => {
                check_access(access)?;
                let (src, base) = (self.read(src)?, self.read(base)?);
                let vaddr = self.b.ins().iadd_imm_s(base, offset);
                self.store(vaddr, src, access, at)
            }
            IrOp::Helper { id, flags, dst, args, imm, at } => {
                if id >= self.n_helpers {
                    return Err(format!("helper {id} is not in the host's table of {}", self.n_helpers));
                }
                let args = [self.read(args[0])?, self.read(args[1])?, self.read(args[2])?];
                let v = self.helper(id, flags, args, imm, at)?;
                if let vm_plugin_api::abi_stable::std_types::ROption::RSome(d) = dst {
                    self.write(d, v)?;
                }
                Ok(())
            }
            IrOp::Amo { .. }
            | IrOp::LoadReserved { .. }
            | IrOp::StoreConditional { .. }
            | IrOp::Fence { .. } => Err(format!("{op:?} is outside the JIT spike's subset")),
        }
    }

    fn bin(&mut self, op: BinOp, a: Value, b: Value) -> Value {
        match op {
            BinOp::Add => self.b.ins().iadd(a, b),
            BinOp::Sub => self.b.ins().isub(a, b),
            BinOp::And => self.b.ins().band(a, b),
            BinOp::Or => self.b.ins().bor(a, b),
            BinOp::Xor => self.b.ins().bxor(a, b),
            // Cranelift shifts and rotates take the amount modulo the width, as the IR does.
            BinOp::Shl => self.b.ins().ishl(a, b),
            BinOp::Shr => self.b.ins().ushr(a, b),
            BinOp::Sar => self.b.ins().sshr(a, b),
            BinOp::Slt => self.flag(IntCC::SignedLessThan, a, b),
            BinOp::Sltu => self.flag(IntCC::UnsignedLessThan, a, b),
            BinOp::Mul => self.b.ins().imul(a, b),
            BinOp::MulH => self.b.ins().smulhi(a, b),
            BinOp::MulHU => self.b.ins().umulhi(a, b),
            BinOp::MulHSU => {
                // hi(signed a × unsigned b) = hi(unsigned a × b) − (a < 0 ? b : 0)
                let hi = self.b.ins().umulhi(a, b);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                let zero = self.b.ins().iconst(I64, 0);
                let fix = self.b.ins().select(neg, b, zero);
                self.b.ins().isub(hi, fix)
            }
            BinOp::Div => self.div(I64, a, b, true, false),
            BinOp::DivU => self.div(I64, a, b, false, false),
            BinOp::Rem => self.div(I64, a, b, true, true),
            BinOp::RemU => self.div(I64, a, b, false, true),
            BinOp::Andn => self.b.ins().band_not(a, b),
            BinOp::Orn => self.b.ins().bor_not(a, b),
            BinOp::Xnor => self.b.ins().bxor_not(a, b),
            BinOp::Min => self.b.ins().smin(a, b),
            BinOp::Max => self.b.ins().smax(a, b),
            BinOp::MinU => self.b.ins().umin(a, b),
            BinOp::MaxU => self.b.ins().umax(a, b),
            BinOp::Rol => self.b.ins().rotl(a, b),
            BinOp::Ror => self.b.ins().rotr(a, b),
            BinOp::AddW
            | BinOp::SubW
            | BinOp::ShlW
            | BinOp::ShrW
            | BinOp::SarW
            | BinOp::MulW
            | BinOp::DivW
            | BinOp::DivUW
            | BinOp::RemW
            | BinOp::RemUW
            | BinOp::RolW
            | BinOp::RorW => {
                let a = self.b.ins().ireduce(I32, a);
                let b = self.b.ins().ireduce(I32, b);
                let v = match op {
                    BinOp::AddW => self.b.ins().iadd(a, b),
                    BinOp::SubW => self.b.ins().isub(a, b),
                    BinOp::ShlW => self.b.ins().ishl(a, b),
                    BinOp::ShrW => self.b.ins().ushr(a, b),
                    BinOp::SarW => self.b.ins().sshr(a, b),
                    BinOp::MulW => self.b.ins().imul(a, b),
                    BinOp::DivW => self.div(I32, a, b, true, false),
                    BinOp::DivUW => self.div(I32, a, b, false, false),
                    BinOp::RemW => self.div(I32, a, b, true, true),
                    BinOp::RemUW => self.div(I32, a, b, false, true),
                    BinOp::RolW => self.b.ins().rotl(a, b),
                    _ => self.b.ins().rotr(a, b),
                };
                self.b.ins().sextend(I64, v)
            }
        }
    }

    /// A constant of type `ty` (Cranelift wants narrow constants zero-extended).
    fn konst(&mut self, ty: Type, v: i64) -> Value {
        let bits = if ty == I32 { v as u32 as i64 } else { v };
        self.b.ins().iconst(ty, bits)
    }

    fn flag(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        let c = self.b.ins().icmp(cc, a, b);
        self.b.ins().uextend(I64, c)
    }

    /// RISC-V division: by zero gives −1 (quotient) or the dividend (remainder); `MIN / −1` gives
    /// `MIN` and remainder 0. The divisor is replaced by 1 in both cases so the host never traps.
    fn div(&mut self, ty: Type, a: Value, b: Value, signed: bool, rem: bool) -> Value {
        let zero_c = self.konst(ty, 0);
        let zero = self.b.ins().icmp(IntCC::Equal, b, zero_c);
        let bad = if signed {
            let min = self.konst(ty, if ty == I32 { i32::MIN as i64 } else { i64::MIN });
            let neg1 = self.konst(ty, -1);
            let a_min = self.b.ins().icmp(IntCC::Equal, a, min);
            let b_neg1 = self.b.ins().icmp(IntCC::Equal, b, neg1);
            let ovf = self.b.ins().band(a_min, b_neg1);
            self.b.ins().bor(zero, ovf)
        } else {
            zero
        };
        let one = self.konst(ty, 1);
        let d = self.b.ins().select(bad, one, b);
        let q = match (signed, rem) {
            (true, false) => self.b.ins().sdiv(a, d),
            (false, false) => self.b.ins().udiv(a, d),
            (true, true) => self.b.ins().srem(a, d),
            (false, true) => self.b.ins().urem(a, d),
        };
        let on_zero = if rem { a } else { self.konst(ty, -1) };
        self.b.ins().select(zero, on_zero, q)
    }

    fn un(&mut self, op: UnOp, a: Value) -> Value {
        match op {
            UnOp::Clz => self.b.ins().clz(a),
            UnOp::Ctz => self.b.ins().ctz(a),
            UnOp::Cpop => self.b.ins().popcnt(a),
            UnOp::ClzW | UnOp::CtzW | UnOp::CpopW => {
                let w = self.b.ins().ireduce(I32, a);
                let v = match op {
                    UnOp::ClzW => self.b.ins().clz(w),
                    UnOp::CtzW => self.b.ins().ctz(w),
                    _ => self.b.ins().popcnt(w),
                };
                self.b.ins().uextend(I64, v)
            }
            UnOp::Rev8 => self.b.ins().bswap(a),
            UnOp::OrcB => {
                // Bit 7 of each byte of ((a & 0x7f..) + 0x7f..) | a is set iff the byte is non-zero.
                let m = 0x7f7f_7f7f_7f7f_7f7fu64 as i64;
                let low = self.b.ins().band_imm_s(a, m);
                let sum = self.b.ins().iadd_imm_s(low, m);
                let any = self.b.ins().bor(sum, a);
                let high = self.b.ins().band_imm_s(any, 0x8080_8080_8080_8080u64 as i64);
                let ones = self.b.ins().ushr_imm_s(high, 7);
                self.b.ins().imul_imm_s(ones, 0xff)
            }
            UnOp::SextB | UnOp::SextH | UnOp::ZextH => {
                let ty = if op == UnOp::SextB { I8 } else { I16 };
                let n = self.b.ins().ireduce(ty, a);
                if op == UnOp::ZextH { self.b.ins().uextend(I64, n) } else { self.b.ins().sextend(I64, n) }
            }
        }
    }

    /// The TLB fast path (plugin-api's `cpu` module docs): branches to `hit` with the host address,
    /// or to a new cold block, returned, for the slow path.
    fn tlb(&mut self, vaddr: Value, access: MemAccess, tag: i32, hit: Block) -> Block {
        let fast = abi::CPU_TLB + abi::TLB_FAST_SIZE * access.mmu as i32;
        let mask = self.b.ins().load(I64, trusted(), self.cpu, fast + abi::TLB_FAST_MASK);
        let table = self.b.ins().load(I64, trusted(), self.cpu, fast + abi::TLB_FAST_TABLE);
        let shifted = self.b.ins().ushr_imm_s(vaddr, (PAGE_BITS - TLB_ENTRY_BITS) as i64);
        let offset = self.b.ins().band(shifted, mask);
        let entry = self.b.ins().iadd(table, offset);
        let got = self.b.ins().load(I64, trusted(), entry, tag);
        let size = access.size as i64;
        let align_mask = if access.aligned() { size - 1 } else { 0 };
        let last = self.b.ins().iadd_imm_s(vaddr, size - 1 - align_mask);
        let want = self.b.ins().band_imm_s(last, (PAGE_MASK | align_mask as u64) as i64);
        let eq = self.b.ins().icmp(IntCC::Equal, got, want);
        let on_hit = self.b.create_block();
        let miss = self.b.create_block();
        self.b.set_cold_block(miss);
        self.b.ins().brif(eq, on_hit, &[], miss, &[]);
        self.b.switch_to_block(on_hit);
        let addend = self.b.ins().load(I64, trusted(), entry, abi::TLB_ADDEND);
        let haddr = self.b.ins().iadd(vaddr, addend);
        self.b.ins().jump(hit, &[haddr.into()]);
        miss
    }

    fn extend(&mut self, v: Value, access: MemAccess) -> Value {
        let ty = match access.size {
            1 => I8,
            2 => I16,
            4 => I32,
            _ => return v,
        };
        let n = self.b.ins().ireduce(ty, v);
        if access.signed { self.b.ins().sextend(I64, n) } else { self.b.ins().uextend(I64, n) }
    }

    fn load(&mut self, vaddr: Value, access: MemAccess, at: vm_plugin_api::At) -> Result<Value, GenError> {
        let hit = self.b.create_block();
        let haddr = self.b.append_block_param(hit, I64);
        let done = self.b.create_block();
        let value = self.b.append_block_param(done, I64);
        let miss = self.tlb(vaddr, access, abi::TLB_READ, hit);

        self.b.switch_to_block(hit);
        let ins = self.b.ins();
        let v = match (access.size, access.signed) {
            (1, false) => ins.uload8(I64, guest(), haddr, 0),
            (1, true) => ins.sload8(I64, guest(), haddr, 0),
            (2, false) => ins.uload16(I64, guest(), haddr, 0),
            (2, true) => ins.sload16(I64, guest(), haddr, 0),
            (4, false) => ins.uload32(guest(), haddr, 0),
            (4, true) => ins.sload32(guest(), haddr, 0),
            _ => ins.load(I64, guest(), haddr, 0),
        };
        self.b.ins().jump(done, &[v.into()]);

        self.b.switch_to_block(miss);
        let fptr = self.b.ins().load(I64, trusted(), self.host, abi::HOST_LOAD);
        let acc = self.b.ins().iconst(I32, access_bits(access));
        let r = self.host_call(host_signature(&[I64, I64, I64, I32]), fptr, &[vaddr, acc], at, true, true);
        // The host answers the raw bytes; extend them like a hit.
        let v = self.extend(r, access);
        self.b.ins().jump(done, &[v.into()]);

        self.b.switch_to_block(done);
        Ok(value)
    }

    fn store(
        &mut self,
        vaddr: Value,
        src: Value,
        access: MemAccess,
        at: vm_plugin_api::At,
    ) -> Result<(), GenError> {
        let hit = self.b.create_block();
        let haddr = self.b.append_block_param(hit, I64);
        let done = self.b.create_block();
        let miss = self.tlb(vaddr, access, abi::TLB_WRITE, hit);

        self.b.switch_to_block(hit);
        let ins = self.b.ins();
        match access.size {
            1 => ins.istore8(guest(), src, haddr, 0),
            2 => ins.istore16(guest(), src, haddr, 0),
            4 => ins.istore32(guest(), src, haddr, 0),
            _ => ins.store(guest(), src, haddr, 0),
        };
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(miss);
        let fptr = self.b.ins().load(I64, trusted(), self.host, abi::HOST_STORE);
        let acc = self.b.ins().iconst(I32, access_bits(access));
        // The host gets exactly the stored bytes.
        let bytes = self.extend(src, MemAccess { signed: false, ..access });
        self.host_call(
            host_signature(&[I64, I64, I64, I32, I64]),
            fptr,
            &[vaddr, acc, bytes],
            at,
            true,
            true,
        );
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(done);
        Ok(())
    }

    fn helper(
        &mut self,
        id: u32,
        flags: HelperFlags,
        args: [Value; 3],
        imm: u64,
        at: vm_plugin_api::At,
    ) -> Result<Value, GenError> {
        let table = self.b.ins().load(I64, trusted(), self.host, abi::HOST_HELPERS);
        let func = self.b.ins().load(
            I64,
            trusted(),
            table,
            (id as i64 * abi::HELPER_SIZE) as i32 + abi::HELPER_FUNC,
        );
        let imm = self.b.ins().iconst(I64, imm as i64);
        let reads = !flags.contains(HelperFlags::NO_REG_READ);
        let writes = !flags.contains(HelperFlags::NO_REG_WRITE);
        // A helper that writes registers must find ours in memory too: it may write only some.
        let spill = reads || writes;
        if spill {
            self.spill(true);
        }
        let sig = host_signature(&[I64; 6]);
        let r = self.host_call(
            sig,
            func,
            &[args[0], args[1], args[2], imm],
            at,
            !flags.contains(HelperFlags::NO_EXIT),
            false,
        );
        if writes {
            // Everything cached is stale; the next use loads it again.
            self.regs = [None; NUM_REGS];
        }
        Ok(r)
    }

    /// Makes the state exact for the op at `at`, calls `func(ctx, cpu, args...)`, and, when
    /// `may_exit`, leaves the block unless the host answered `Continue`. On the `Continue` path the
    /// counted instructions are taken back (the block adds all of them when it completes).
    ///
    /// A `slow_path` (TLB miss) runs on a cold side path that joins the hit path again: it stores
    /// the dirty registers without marking them clean and reloads every cached one after the call.
    /// A helper is on the main path; `helper` spills and forgets registers around it.
    fn host_call(
        &mut self,
        sig: Signature,
        func: Value,
        args: &[Value],
        at: vm_plugin_api::At,
        may_exit: bool,
        slow_path: bool,
    ) -> Value {
        if slow_path {
            self.spill(false);
        }
        let pc = self.b.ins().iconst(I64, self.ir.pc.wrapping_add(at.pc_offset as u64) as i64);
        self.b.ins().store(trusted(), pc, self.cpu, abi::CPU_PC);
        let entry_instret = self.b.ins().load(I64, trusted(), self.cpu, abi::CPU_INSTRET);
        let counted = self.b.ins().iadd_imm_s(entry_instret, at.insn_index as i64);
        self.b.ins().store(trusted(), counted, self.cpu, abi::CPU_INSTRET);

        let ctx = self.b.ins().load(I64, trusted(), self.host, abi::HOST_CTX);
        let mut all = vec![ctx, self.cpu];
        all.extend_from_slice(args);
        let sig = self.b.import_signature(sig);
        let call = self.b.ins().call_indirect(sig, func, &all);
        let r = self.b.inst_results(call);
        let (flow, value) = (r[0], r[1]);

        if may_exit {
            let tag = self.b.ins().band_imm_s(flow, 0xff);
            let cont = self.b.ins().icmp_imm_s(IntCC::Equal, tag, abi::TAG_CONTINUE as i64);
            let go_on = self.b.create_block();
            let leave = self.b.create_block();
            self.b.set_cold_block(leave);
            self.b.ins().brif(cont, go_on, &[], leave, &[]);
            self.b.switch_to_block(leave);
            if !slow_path {
                // Registers a NO_REG_READ|NO_REG_WRITE helper left alone are still only ours.
                self.spill(false);
            }
            // The block's part retired before the host left it counts against the budget: the
            // host's count when plausible, else none (a helper that rewrote the counter).
            let now = self.b.ins().load(I64, trusted(), self.cpu, abi::CPU_INSTRET);
            let retired = self.b.ins().isub(now, entry_instret);
            let plausible =
                self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, retired, self.ir.insn_count as i64);
            let zero = self.b.ins().iconst(I64, 0);
            let counted = self.b.ins().select(plausible, retired, zero);
            let budget = self.b.ins().isub(self.budget, counted);
            // Bits 16.. of RAX are padding of HostResult; bits 8..16 only mean something for Exit.
            let status = self.b.ins().band_imm_s(flow, 0xffff);
            self.b.ins().return_(&[status, budget]);
            self.b.switch_to_block(go_on);
        }
        let now = self.b.ins().load(I64, trusted(), self.cpu, abi::CPU_INSTRET);
        let back = self.b.ins().iadd_imm_s(now, -(at.insn_index as i64));
        self.b.ins().store(trusted(), back, self.cpu, abi::CPU_INSTRET);
        if slow_path {
            self.reload();
        }
        value
    }

    fn terminator(&mut self) -> Result<(), GenError> {
        match self.ir.term {
            Terminator::Jump { target } => {
                let budget = self.complete();
                self.chain(target, 0, budget);
            }
            Terminator::Branch { cond, a, b, taken, not_taken } => {
                let (a, b) = (self.read(a)?, self.read(b)?);
                let c = self.b.ins().icmp(intcc(cond), a, b);
                let budget = self.complete();
                let (t, f) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(c, t, &[], f, &[]);
                self.b.switch_to_block(t);
                self.chain(taken, 0, budget);
                self.b.switch_to_block(f);
                self.chain(not_taken, 1, budget);
            }
            Terminator::JumpIndirect { target } => {
                let t = self.read(target)?;
                let budget = self.complete();
                self.b.ins().store(trusted(), t, self.cpu, abi::CPU_PC);
                self.ret_status(abi::next_bits(self.id, NO_SUCC), budget);
            }
            Terminator::Exit { next } => {
                let budget = self.complete();
                let pc = self.b.ins().iconst(I64, next as i64);
                self.b.ins().store(trusted(), pc, self.cpu, abi::CPU_PC);
                self.ret_status(abi::exit_bits(ExitReason::ExitRequested), budget);
            }
        }
        Ok(())
    }

    /// The block completed: registers back, all its instructions retired. Gives the budget left.
    fn complete(&mut self) -> Value {
        self.spill(true);
        let n = self.ir.insn_count as i64;
        let instret = self.b.ins().load(I64, trusted(), self.cpu, abi::CPU_INSTRET);
        let instret = self.b.ins().iadd_imm_s(instret, n);
        self.b.ins().store(trusted(), instret, self.cpu, abi::CPU_INSTRET);
        self.b.ins().iadd_imm_s(self.budget, -n)
    }

    /// Leaves through successor `succ` to `target`: into the linked block if the slot holds one
    /// (a tail call, no return to the dispatcher), else back to the dispatcher.
    fn chain(&mut self, target: u64, succ: u8, budget: Value) {
        let pc = self.b.ins().iconst(I64, target as i64);
        self.b.ins().store(trusted(), pc, self.cpu, abi::CPU_PC);
        let slot = self.b.ins().iconst(I64, (self.links + 8 * succ as u64) as i64);
        // Not `trusted`'s readonly cousin: the dispatcher links and unlinks between runs.
        let next = self.b.ins().load(I64, trusted(), slot, 0);
        let linked = self.b.create_block();
        let unlinked = self.b.create_block();
        self.b.ins().brif(next, linked, &[], unlinked, &[]);
        self.b.switch_to_block(linked);
        let sig = self.b.import_signature(block_signature());
        self.b.ins().return_call_indirect(sig, next, &[self.cpu, self.host, budget]);
        self.b.switch_to_block(unlinked);
        self.ret_status(abi::next_bits(self.id, succ), budget);
    }
}

/// `MemAccess` passed by value: its four bytes, as System V puts a small aggregate in a register.
fn access_bits(access: MemAccess) -> i64 {
    // SAFETY: MemAccess is four initialised bytes (`u8`, `bool`, `u8`, `u8`, no padding).
    let bytes: [u8; 4] = unsafe { std::mem::transmute(access) };
    u32::from_le_bytes(bytes) as i64
}

fn check_access(access: MemAccess) -> Result<(), GenError> {
    if !matches!(access.size, 1 | 2 | 4 | 8) {
        return Err(format!("memory access of {} bytes (must be 1, 2, 4 or 8)", access.size));
    }
    if access.mmu as usize >= MMU_MODES {
        return Err(format!("MMU mode {} (there are {MMU_MODES})", access.mmu));
    }
    Ok(())
}

fn bad_reg(r: u8) -> GenError {
    format!("register {r} (there are {NUM_REGS})")
}

fn bad_tmp(t: u8) -> GenError {
    format!("temporary {t} (there are {MAX_TEMPS})")
}
