//! RISC-V instruction decoding: guest instruction bits to an [`Insn`].
//!
//! Covers RV64I, M, C, Zicsr, Zifencei and the privileged instructions a kernel needs; every other
//! encoding decodes to [`Insn::Illegal`]. The decoder sees hostile guest code, so it never panics.
//! Instructions are fetched a halfword at a time; a 16-bit (C extension) instruction expands into the
//! [`Insn`] of the 32-bit instruction it stands for, so only [`Decoded::len`] tells them apart and
//! lowering needs no compressed cases.
//!
//! Integer operations and branch conditions are named by the IR's [`BinOp`] and [`Cond`]: RISC-V's
//! map onto them one to one, so lowering needs no second table.

use vm_plugin_api::ir::{BinOp, Cond, MemAccess};

/// Which CSR instruction: write, set bits, or clear bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrOp {
    /// `csrrw`, `csrrwi`.
    Rw,
    /// `csrrs`, `csrrsi`.
    Rs,
    /// `csrrc`, `csrrci`.
    Rc,
}

/// A decoded instruction. Register numbers are 0..=31; immediates are sign-extended as the ISA says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Insn {
    /// `lui`: `rd = imm` (`imm` already shifted left by 12).
    Lui { rd: u8, imm: i64 },
    /// `auipc`: `rd = pc + imm` (`imm` already shifted left by 12).
    Auipc { rd: u8, imm: i64 },
    /// `jal`: `rd = next pc; pc += imm`.
    Jal { rd: u8, imm: i64 },
    /// `jalr`: `rd = next pc; pc = (rs1 + imm) & !1`.
    Jalr { rd: u8, rs1: u8, imm: i64 },
    /// Conditional branch: `if cond(rs1, rs2) { pc += imm }`.
    Branch { cond: Cond, rs1: u8, rs2: u8, imm: i64 },
    /// Load: `rd = mem[rs1 + imm]`.
    Load { rd: u8, rs1: u8, imm: i64, access: MemAccess },
    /// Store: `mem[rs1 + imm] = rs2`, `size` bytes.
    Store { rs1: u8, rs2: u8, imm: i64, size: u8 },
    /// Register-immediate operation: `rd = rs1 <op> imm` (for shifts, `imm` is the shift amount).
    OpImm { op: BinOp, rd: u8, rs1: u8, imm: i64 },
    /// Register-register operation: `rd = rs1 <op> rs2`.
    Op { op: BinOp, rd: u8, rs1: u8, rs2: u8 },
    /// `fence` (any predecessor/successor sets, including `pause`).
    Fence,
    /// `fence.i`.
    FenceI,
    /// `csrrw`/`csrrs`/`csrrc`: the source is register `rs1`.
    Csr { op: CsrOp, rd: u8, rs1: u8, csr: u16 },
    /// `csrrwi`/`csrrsi`/`csrrci`: the source is `zimm`, a zero-extended 5-bit immediate.
    CsrImm { op: CsrOp, rd: u8, zimm: u8, csr: u16 },
    /// `ecall`.
    Ecall,
    /// `ebreak`.
    Ebreak,
    /// `mret`.
    Mret,
    /// `sret`.
    Sret,
    /// `wfi`.
    Wfi,
    /// `sfence.vma rs1, rs2`.
    SfenceVma { rs1: u8, rs2: u8 },
    /// Not an instruction this frontend implements, or reserved: `bits` is the raw encoding
    /// (16 bits for a compressed one), which becomes `mtval`.
    Illegal { bits: u32 },
}

/// An instruction and its length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// What it does.
    pub insn: Insn,
    /// 2 (compressed) or 4.
    pub len: u8,
}

/// Fetches and decodes the instruction at `pc`. `fetch16(addr)` returns the halfword at `addr`, or
/// None if fetching there faults; so does this function, if any halfword it needs faults.
pub fn fetch(pc: u64, fetch16: &mut dyn FnMut(u64) -> Option<u16>) -> Option<Decoded> {
    let low = fetch16(pc)?;
    if low & 0b11 != 0b11 {
        // A 16-bit instruction fetches only its own halfword: the next one may be on a page that
        // faults, which must not stop this one from running.
        return Some(Decoded { insn: decode16(low), len: 2 });
    }
    let high = fetch16(pc.wrapping_add(2))?;
    Some(Decoded { insn: decode(u32::from(low) | u32::from(high) << 16), len: 4 })
}

/// Decodes one 32-bit instruction (low two bits `0b11`; anything else is [`Insn::Illegal`]).
pub fn decode(bits: u32) -> Insn {
    let rd = field(bits, 7);
    let rs1 = field(bits, 15);
    let rs2 = field(bits, 20);
    let funct3 = (bits >> 12) & 7;
    let funct7 = bits >> 25;
    let illegal = Insn::Illegal { bits };
    match bits & 0x7f {
        0b011_0111 => Insn::Lui { rd, imm: imm_u(bits) },
        0b001_0111 => Insn::Auipc { rd, imm: imm_u(bits) },
        0b110_1111 => Insn::Jal { rd, imm: imm_j(bits) },
        0b110_0111 if funct3 == 0 => Insn::Jalr { rd, rs1, imm: imm_i(bits) },
        0b110_0011 => {
            let cond = match funct3 {
                0 => Cond::Eq,
                1 => Cond::Ne,
                4 => Cond::Lt,
                5 => Cond::Ge,
                6 => Cond::Ltu,
                7 => Cond::Geu,
                _ => return illegal,
            };
            Insn::Branch { cond, rs1, rs2, imm: imm_b(bits) }
        }
        0b000_0011 => {
            let (size, signed) = match funct3 {
                0 => (1, true),
                1 => (2, true),
                2 => (4, true),
                3 => (8, true),
                4 => (1, false),
                5 => (2, false),
                6 => (4, false),
                _ => return illegal,
            };
            Insn::Load { rd, rs1, imm: imm_i(bits), access: MemAccess { size, signed } }
        }
        0b010_0011 if funct3 <= 3 => Insn::Store { rs1, rs2, imm: imm_s(bits), size: 1 << funct3 },
        0b001_0011 => {
            let shamt = i64::from((bits >> 20) & 0x3f);
            // RV64 shifts take a 6-bit amount, leaving 6 bits (funct6) to tell them apart.
            let (op, imm) = match (funct3, bits >> 26) {
                (0, _) => (BinOp::Add, imm_i(bits)),
                (2, _) => (BinOp::Slt, imm_i(bits)),
                (3, _) => (BinOp::Sltu, imm_i(bits)),
                (4, _) => (BinOp::Xor, imm_i(bits)),
                (6, _) => (BinOp::Or, imm_i(bits)),
                (7, _) => (BinOp::And, imm_i(bits)),
                (1, 0) => (BinOp::Shl, shamt),
                (5, 0) => (BinOp::Shr, shamt),
                (5, 0b01_0000) => (BinOp::Sar, shamt),
                _ => return illegal,
            };
            Insn::OpImm { op, rd, rs1, imm }
        }
        0b001_1011 => {
            let shamt = i64::from(rs2);
            // A 6-bit amount (bit 25 set) is reserved for the W shifts; funct7 catches it.
            let (op, imm) = match (funct3, funct7) {
                (0, _) => (BinOp::AddW, imm_i(bits)),
                (1, 0) => (BinOp::ShlW, shamt),
                (5, 0) => (BinOp::ShrW, shamt),
                (5, 0b010_0000) => (BinOp::SarW, shamt),
                _ => return illegal,
            };
            Insn::OpImm { op, rd, rs1, imm }
        }
        0b011_0011 => {
            let op = match (funct7, funct3) {
                (0, 0) => BinOp::Add,
                (0b010_0000, 0) => BinOp::Sub,
                (0, 1) => BinOp::Shl,
                (0, 2) => BinOp::Slt,
                (0, 3) => BinOp::Sltu,
                (0, 4) => BinOp::Xor,
                (0, 5) => BinOp::Shr,
                (0b010_0000, 5) => BinOp::Sar,
                (0, 6) => BinOp::Or,
                (0, 7) => BinOp::And,
                (1, 0) => BinOp::Mul,
                (1, 1) => BinOp::MulH,
                (1, 2) => BinOp::MulHSU,
                (1, 3) => BinOp::MulHU,
                (1, 4) => BinOp::Div,
                (1, 5) => BinOp::DivU,
                (1, 6) => BinOp::Rem,
                (1, 7) => BinOp::RemU,
                _ => return illegal,
            };
            Insn::Op { op, rd, rs1, rs2 }
        }
        0b011_1011 => {
            let op = match (funct7, funct3) {
                (0, 0) => BinOp::AddW,
                (0b010_0000, 0) => BinOp::SubW,
                (0, 1) => BinOp::ShlW,
                (0, 5) => BinOp::ShrW,
                (0b010_0000, 5) => BinOp::SarW,
                (1, 0) => BinOp::MulW,
                (1, 4) => BinOp::DivW,
                (1, 5) => BinOp::DivUW,
                (1, 6) => BinOp::RemW,
                (1, 7) => BinOp::RemUW,
                _ => return illegal,
            };
            Insn::Op { op, rd, rs1, rs2 }
        }
        // The ISA reserves the other fields of both fences for finer-grained variants and tells
        // base implementations to ignore them.
        0b000_1111 => match funct3 {
            0 => Insn::Fence,
            1 => Insn::FenceI,
            _ => illegal,
        },
        0b111_0011 => system(bits, rd, rs1, rs2, funct3, funct7),
        _ => illegal,
    }
}

/// `addi x0, x0, 0`: what `c.nop` and every RVC HINT decode to. HINTs must run as no-ops, and
/// this one lowers to nothing.
const NOP: Insn = Insn::OpImm { op: BinOp::Add, rd: 0, rs1: 0, imm: 0 };

/// Decodes one 16-bit RV64C instruction (low two bits not `0b11`) into the [`Insn`] of the 32-bit
/// instruction it expands to. HINTs decode to `addi x0, x0, 0`. Reserved encodings, the
/// floating-point loads and stores (no F or D here) and 32-bit encodings are [`Insn::Illegal`] with
/// the 16 bits.
pub fn decode16(half: u16) -> Insn {
    let bits = u32::from(half);
    let illegal = Insn::Illegal { bits };
    // The full register fields (CR, CI, CSS formats) sit where 32-bit ones do; the 3-bit ones
    // (CIW, CL, CS, CA, CB) name x8..x15: `low` is rd'/rs2' in bits 4:2, `high` rs1'/rd' in 9:7.
    let rd = field(bits, 7);
    let rs2 = field(bits, 2);
    let low = 8 + ((bits >> 2) & 7) as u8;
    let high = 8 + ((bits >> 7) & 7) as u8;
    // The CI format's 6-bit immediate, imm[5] in bit 12 and imm[4:0] in bits 6:2.
    let uimm6 = gather(bits, &[(12, 12, 5), (6, 2, 0)]);
    let imm6 = sign_extend(uimm6, 6);
    let access = |size| MemAccess { size, signed: true };
    // The CL/CS offsets: uimm[5:3] in bits 12:10, then uimm[2|6] (words) or uimm[7:6] in 6:5.
    let mem4 = i64::from(gather(bits, &[(12, 10, 3), (6, 6, 2), (5, 5, 6)]));
    let mem8 = i64::from(gather(bits, &[(12, 10, 3), (6, 5, 6)]));
    match (bits & 3, bits >> 13) {
        // Quadrant 0. c.addi4spn: nzuimm[5:4|9:6|2|3] in bits 12:5; nzuimm = 0 is reserved, which
        // makes the all-zero halfword illegal.
        (0, 0b000) => match gather(bits, &[(12, 11, 4), (10, 7, 6), (6, 6, 2), (5, 5, 3)]) {
            0 => illegal,
            nzuimm => Insn::OpImm { op: BinOp::Add, rd: low, rs1: 2, imm: i64::from(nzuimm) },
        },
        (0, 0b010) => Insn::Load { rd: low, rs1: high, imm: mem4, access: access(4) },
        (0, 0b011) => Insn::Load { rd: low, rs1: high, imm: mem8, access: access(8) },
        (0, 0b110) => Insn::Store { rs1: high, rs2: low, imm: mem4, size: 4 },
        (0, 0b111) => Insn::Store { rs1: high, rs2: low, imm: mem8, size: 8 },
        // Quadrant 1. c.nop is c.addi with rd = 0; the other rd = 0 or imm = 0 forms are HINTs.
        (1, 0b000) if rd == 0 || imm6 == 0 => NOP,
        (1, 0b000) => Insn::OpImm { op: BinOp::Add, rd, rs1: rd, imm: imm6 },
        (1, 0b001) if rd == 0 => illegal,
        (1, 0b001) => Insn::OpImm { op: BinOp::AddW, rd, rs1: rd, imm: imm6 },
        (1, 0b010) if rd == 0 => NOP,
        (1, 0b010) => Insn::OpImm { op: BinOp::Add, rd, rs1: 0, imm: imm6 },
        (1, 0b011) if rd == 2 => {
            // c.addi16sp: nzimm[9] in bit 12, nzimm[4|6|8:7|5] in bits 6:2.
            let nzimm = gather(bits, &[(12, 12, 9), (6, 6, 4), (5, 5, 6), (4, 3, 7), (2, 2, 5)]);
            match sign_extend(nzimm, 10) {
                0 => illegal,
                imm => Insn::OpImm { op: BinOp::Add, rd: 2, rs1: 2, imm },
            }
        }
        (1, 0b011) if imm6 == 0 => illegal,
        (1, 0b011) if rd == 0 => NOP,
        (1, 0b011) => Insn::Lui { rd, imm: imm6 << 12 },
        (1, 0b100) => misc_alu(bits, high, low, uimm6, imm6),
        (1, 0b101) => Insn::Jal { rd: 0, imm: imm_cj(bits) },
        (1, 0b110) => Insn::Branch { cond: Cond::Eq, rs1: high, rs2: 0, imm: imm_cb(bits) },
        (1, 0b111) => Insn::Branch { cond: Cond::Ne, rs1: high, rs2: 0, imm: imm_cb(bits) },
        // Quadrant 2. RV64 shifts by 1..=63; shamt = 0 or rd = 0 is a HINT.
        (2, 0b000) if rd == 0 || uimm6 == 0 => NOP,
        (2, 0b000) => Insn::OpImm { op: BinOp::Shl, rd, rs1: rd, imm: i64::from(uimm6) },
        (2, 0b010 | 0b011) if rd == 0 => illegal,
        // c.lwsp, c.ldsp: uimm[5] in bit 12, uimm[4:2|7:6] or uimm[4:3|8:6] in bits 6:2.
        (2, 0b010) => {
            let imm = i64::from(gather(bits, &[(12, 12, 5), (6, 4, 2), (3, 2, 6)]));
            Insn::Load { rd, rs1: 2, imm, access: access(4) }
        }
        (2, 0b011) => {
            let imm = i64::from(gather(bits, &[(12, 12, 5), (6, 5, 3), (4, 2, 6)]));
            Insn::Load { rd, rs1: 2, imm, access: access(8) }
        }
        (2, 0b100) => jump_move_add(bits, rd, rs2),
        // c.swsp, c.sdsp: uimm[5:2|7:6] or uimm[5:3|8:6] in bits 12:7.
        (2, 0b110) => {
            let imm = i64::from(gather(bits, &[(12, 9, 2), (8, 7, 6)]));
            Insn::Store { rs1: 2, rs2, imm, size: 4 }
        }
        (2, 0b111) => {
            let imm = i64::from(gather(bits, &[(12, 10, 3), (9, 7, 6)]));
            Insn::Store { rs1: 2, rs2, imm, size: 8 }
        }
        // c.fld, c.fsd, c.fldsp, c.fsdsp, quadrant 0's reserved 0b100, and 32-bit encodings.
        _ => illegal,
    }
}

/// Quadrant 1, funct3 `0b100`: c.srli, c.srai, c.andi and the register-register operations, all
/// with `rd' = rs1'`.
fn misc_alu(bits: u32, rd: u8, rs2: u8, shamt: u32, imm6: i64) -> Insn {
    let op = match ((bits >> 10) & 3, (bits >> 12) & 1, (bits >> 5) & 3) {
        // A zero shift amount (c.srli64, c.srai64) is a HINT on RV64.
        (0 | 1, _, _) if shamt == 0 => return NOP,
        (0, _, _) => return Insn::OpImm { op: BinOp::Shr, rd, rs1: rd, imm: i64::from(shamt) },
        (1, _, _) => return Insn::OpImm { op: BinOp::Sar, rd, rs1: rd, imm: i64::from(shamt) },
        (2, _, _) => return Insn::OpImm { op: BinOp::And, rd, rs1: rd, imm: imm6 },
        (_, 0, 0) => BinOp::Sub,
        (_, 0, 1) => BinOp::Xor,
        (_, 0, 2) => BinOp::Or,
        (_, 0, 3) => BinOp::And,
        (_, 1, 0) => BinOp::SubW,
        (_, 1, 1) => BinOp::AddW,
        _ => return Insn::Illegal { bits },
    };
    Insn::Op { op, rd, rs1: rd, rs2 }
}

/// Quadrant 2, funct3 `0b100`: c.jr, c.mv, c.ebreak, c.jalr and c.add, told apart by bit 12 and
/// which of `rd`/`rs1` and `rs2` are zero.
fn jump_move_add(bits: u32, rd: u8, rs2: u8) -> Insn {
    match ((bits >> 12) & 1, rd, rs2) {
        (0, 0, 0) => Insn::Illegal { bits }, // c.jr x0 is reserved.
        (1, 0, 0) => Insn::Ebreak,
        (_, 0, _) => NOP, // c.mv and c.add with rd = 0 are HINTs.
        (0, rs1, 0) => Insn::Jalr { rd: 0, rs1, imm: 0 },
        (_, rs1, 0) => Insn::Jalr { rd: 1, rs1, imm: 0 },
        (0, rd, rs2) => Insn::Op { op: BinOp::Add, rd, rs1: 0, rs2 },
        (_, rd, rs2) => Insn::Op { op: BinOp::Add, rd, rs1: rd, rs2 },
    }
}

/// c.j's offset: imm[11|4|9:8|10|6|7|3:1|5] in bits 12:2.
fn imm_cj(bits: u32) -> i64 {
    let fields =
        [(12, 12, 11), (11, 11, 4), (10, 9, 8), (8, 8, 10), (7, 7, 6), (6, 6, 7), (5, 3, 1), (2, 2, 5)];
    sign_extend(gather(bits, &fields), 12)
}

/// c.beqz/c.bnez's offset: imm[8|4:3] in bits 12:10, imm[7:6|2:1|5] in bits 6:2.
fn imm_cb(bits: u32) -> i64 {
    sign_extend(gather(bits, &[(12, 12, 8), (11, 10, 3), (6, 5, 6), (4, 3, 1), (2, 2, 5)]), 9)
}

/// Unscrambles an immediate: each `(hi, lo, to)` moves bits `hi..=lo` of `bits` to start at bit `to`.
fn gather(bits: u32, fields: &[(u32, u32, u32)]) -> u32 {
    fields.iter().map(|&(hi, lo, to)| ((bits >> lo) & ((1 << (hi - lo + 1)) - 1)) << to).fold(0, |a, b| a | b)
}

/// Sign-extends the low `width` bits of `value` (1 <= width <= 32).
fn sign_extend(value: u32, width: u32) -> i64 {
    i64::from((value << (32 - width)) as i32 >> (32 - width))
}

/// The SYSTEM opcode: privileged instructions and Zicsr.
fn system(bits: u32, rd: u8, rs1: u8, rs2: u8, funct3: u32, funct7: u32) -> Insn {
    let op = match funct3 {
        0 => {
            // The privileged instructions have fixed encodings, apart from sfence.vma's operands.
            return match bits {
                0x0000_0073 => Insn::Ecall,
                0x0010_0073 => Insn::Ebreak,
                0x1020_0073 => Insn::Sret,
                0x3020_0073 => Insn::Mret,
                0x1050_0073 => Insn::Wfi,
                _ if funct7 == 0b000_1001 && rd == 0 => Insn::SfenceVma { rs1, rs2 },
                _ => Insn::Illegal { bits },
            };
        }
        1 | 5 => CsrOp::Rw,
        2 | 6 => CsrOp::Rs,
        3 | 7 => CsrOp::Rc,
        _ => return Insn::Illegal { bits },
    };
    let csr = (bits >> 20) as u16;
    if funct3 < 4 { Insn::Csr { op, rd, rs1, csr } } else { Insn::CsrImm { op, rd, zimm: rs1, csr } }
}

/// The 5-bit register field starting at bit `lsb`.
fn field(bits: u32, lsb: u32) -> u8 {
    ((bits >> lsb) & 0x1f) as u8
}

fn imm_i(bits: u32) -> i64 {
    i64::from(bits as i32 >> 20)
}

fn imm_s(bits: u32) -> i64 {
    i64::from((bits as i32 >> 25) << 5 | ((bits >> 7) & 0x1f) as i32)
}

fn imm_b(bits: u32) -> i64 {
    let low = ((bits >> 7) & 1) << 11 | ((bits >> 25) & 0x3f) << 5 | ((bits >> 8) & 0xf) << 1;
    i64::from((bits as i32 >> 31) << 12 | low as i32)
}

fn imm_u(bits: u32) -> i64 {
    i64::from((bits & 0xffff_f000) as i32)
}

fn imm_j(bits: u32) -> i64 {
    let low = (bits & 0x000f_f000) | ((bits >> 20) & 1) << 11 | ((bits >> 21) & 0x3ff) << 1;
    i64::from((bits as i32 >> 31) << 20 | low as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats like `objdump -d -M no-aliases,numeric`, except that branch and jump targets are
    /// offsets from the instruction and CSRs are numbers.
    fn disasm(insn: Insn) -> String {
        use BinOp::*;
        match insn {
            Insn::Lui { rd, imm } => format!("lui x{rd},0x{:x}", (imm >> 12) & 0xfffff),
            Insn::Auipc { rd, imm } => format!("auipc x{rd},0x{:x}", (imm >> 12) & 0xfffff),
            Insn::Jal { rd, imm } => format!("jal x{rd},{imm}"),
            Insn::Jalr { rd, rs1, imm } => format!("jalr x{rd},{imm}(x{rs1})"),
            Insn::Branch { cond, rs1, rs2, imm } => {
                let name = match cond {
                    Cond::Eq => "beq",
                    Cond::Ne => "bne",
                    Cond::Lt => "blt",
                    Cond::Ge => "bge",
                    Cond::Ltu => "bltu",
                    Cond::Geu => "bgeu",
                };
                format!("{name} x{rs1},x{rs2},{imm}")
            }
            Insn::Load { rd, rs1, imm, access: MemAccess { size, signed } } => {
                let name = ["lb", "lh", "lw", "ld"][size.trailing_zeros() as usize];
                format!("{name}{} x{rd},{imm}(x{rs1})", if signed { "" } else { "u" })
            }
            Insn::Store { rs1, rs2, imm, size } => {
                let name = ["sb", "sh", "sw", "sd"][size.trailing_zeros() as usize];
                format!("{name} x{rs2},{imm}(x{rs1})")
            }
            Insn::OpImm { op, rd, rs1, imm } => {
                let name = match op {
                    Add => "addi",
                    Slt => "slti",
                    Sltu => "sltiu",
                    Xor => "xori",
                    Or => "ori",
                    And => "andi",
                    AddW => "addiw",
                    Shl => return format!("slli x{rd},x{rs1},0x{imm:x}"),
                    Shr => return format!("srli x{rd},x{rs1},0x{imm:x}"),
                    Sar => return format!("srai x{rd},x{rs1},0x{imm:x}"),
                    ShlW => return format!("slliw x{rd},x{rs1},0x{imm:x}"),
                    ShrW => return format!("srliw x{rd},x{rs1},0x{imm:x}"),
                    SarW => return format!("sraiw x{rd},x{rs1},0x{imm:x}"),
                    _ => return format!("bad OpImm {op:?}"),
                };
                format!("{name} x{rd},x{rs1},{imm}")
            }
            Insn::Op { op, rd, rs1, rs2 } => {
                let name = match op {
                    Add => "add",
                    Sub => "sub",
                    And => "and",
                    Or => "or",
                    Xor => "xor",
                    Shl => "sll",
                    Shr => "srl",
                    Sar => "sra",
                    Slt => "slt",
                    Sltu => "sltu",
                    Mul => "mul",
                    MulH => "mulh",
                    MulHU => "mulhu",
                    MulHSU => "mulhsu",
                    Div => "div",
                    DivU => "divu",
                    Rem => "rem",
                    RemU => "remu",
                    AddW => "addw",
                    SubW => "subw",
                    ShlW => "sllw",
                    ShrW => "srlw",
                    SarW => "sraw",
                    MulW => "mulw",
                    DivW => "divw",
                    DivUW => "divuw",
                    RemW => "remw",
                    RemUW => "remuw",
                };
                format!("{name} x{rd},x{rs1},x{rs2}")
            }
            Insn::Fence => "fence".into(),
            Insn::FenceI => "fence.i".into(),
            Insn::Csr { op, rd, rs1, csr } => format!("csrr{} x{rd},0x{csr:x},x{rs1}", csr_suffix(op)),
            Insn::CsrImm { op, rd, zimm, csr } => format!("csrr{}i x{rd},0x{csr:x},{zimm}", csr_suffix(op)),
            Insn::Ecall => "ecall".into(),
            Insn::Ebreak => "ebreak".into(),
            Insn::Mret => "mret".into(),
            Insn::Sret => "sret".into(),
            Insn::Wfi => "wfi".into(),
            Insn::SfenceVma { rs1, rs2 } => format!("sfence.vma x{rs1},x{rs2}"),
            Insn::Illegal { .. } => "illegal".into(),
        }
    }

    fn csr_suffix(op: CsrOp) -> &'static str {
        match op {
            CsrOp::Rw => "w",
            CsrOp::Rs => "s",
            CsrOp::Rc => "c",
        }
    }

    /// Every instruction class, with edge immediates: assembled by `riscv64-unknown-elf-as
    /// -march=rv64im_zicsr_zifencei_zihintpause` and printed by `objdump -M no-aliases,numeric`
    /// (targets rewritten as offsets, CSR names as numbers, fence operands dropped).
    const OBJDUMP: &[(u32, &str)] = &[
        (0x8000_00b7, "lui x1,0x80000"),
        (0x7fff_ffb7, "lui x31,0x7ffff"),
        (0xffff_f117, "auipc x2,0xfffff"),
        (0x0000_0017, "auipc x0,0x0"),
        (0x7fff_f0ef, "jal x1,1048574"),
        (0x8000_006f, "jal x0,-1048576"),
        (0x0000_8067, "jalr x0,0(x1)"),
        (0x800f_0fe7, "jalr x31,-2048(x30)"),
        (0x7ff2_82e7, "jalr x5,2047(x5)"),
        (0x8020_8063, "beq x1,x2,-4096"),
        (0x7e41_9fe3, "bne x3,x4,4094"),
        (0x0062_c163, "blt x5,x6,2"),
        (0xfe83_dfe3, "bge x7,x8,-2"),
        (0x00a4_e0e3, "bltu x9,x10,2048"),
        (0x00c5_f463, "bgeu x11,x12,8"),
        (0x8001_0083, "lb x1,-2048(x2)"),
        (0x7ff2_1183, "lh x3,2047(x4)"),
        (0x0003_2283, "lw x5,0(x6)"),
        (0xfff4_3383, "ld x7,-1(x8)"),
        (0x0015_4483, "lbu x9,1(x10)"),
        (0xff06_5583, "lhu x11,-16(x12)"),
        (0x0647_6683, "lwu x13,100(x14)"),
        (0x8011_0023, "sb x1,-2048(x2)"),
        (0x7e32_1fa3, "sh x3,2047(x4)"),
        (0xfe53_2fa3, "sw x5,-1(x6)"),
        (0x0274_3023, "sd x7,32(x8)"),
        (0x8001_0093, "addi x1,x2,-2048"),
        (0x0000_0013, "addi x0,x0,0"),
        (0x7ff2_2193, "slti x3,x4,2047"),
        (0xfff3_3293, "sltiu x5,x6,-1"),
        (0xfff4_4393, "xori x7,x8,-1"),
        (0x5555_6493, "ori x9,x10,1365"),
        (0xf006_7593, "andi x11,x12,-256"),
        (0x0007_1693, "slli x13,x14,0x0"),
        (0x03f7_1693, "slli x13,x14,0x3f"),
        (0x0208_5793, "srli x15,x16,0x20"),
        (0x43f9_5893, "srai x17,x18,0x3f"),
        (0x0031_00b3, "add x1,x2,x3"),
        (0x4062_8233, "sub x4,x5,x6"),
        (0x0094_13b3, "sll x7,x8,x9"),
        (0x00c5_a533, "slt x10,x11,x12"),
        (0x00f7_36b3, "sltu x13,x14,x15"),
        (0x0128_c833, "xor x16,x17,x18"),
        (0x015a_59b3, "srl x19,x20,x21"),
        (0x418b_db33, "sra x22,x23,x24"),
        (0x01bd_6cb3, "or x25,x26,x27"),
        (0x01ee_fe33, "and x28,x29,x30"),
        (0x8001_009b, "addiw x1,x2,-2048"),
        (0x01f2_119b, "slliw x3,x4,0x1f"),
        (0x0003_529b, "srliw x5,x6,0x0"),
        (0x4114_539b, "sraiw x7,x8,0x11"),
        (0x00b5_04bb, "addw x9,x10,x11"),
        (0x40e6_863b, "subw x12,x13,x14"),
        (0x0118_17bb, "sllw x15,x16,x17"),
        (0x0149_d93b, "srlw x18,x19,x20"),
        (0x417b_5abb, "sraw x21,x22,x23"),
        (0x0231_00b3, "mul x1,x2,x3"),
        (0x0262_9233, "mulh x4,x5,x6"),
        (0x0294_23b3, "mulhsu x7,x8,x9"),
        (0x02c5_b533, "mulhu x10,x11,x12"),
        (0x02f7_46b3, "div x13,x14,x15"),
        (0x0328_d833, "divu x16,x17,x18"),
        (0x035a_69b3, "rem x19,x20,x21"),
        (0x038b_fb33, "remu x22,x23,x24"),
        (0x03bd_0cbb, "mulw x25,x26,x27"),
        (0x03ee_ce3b, "divw x28,x29,x30"),
        (0x0220_dfbb, "divuw x31,x1,x2"),
        (0x0252_61bb, "remw x3,x4,x5"),
        (0x0283_f33b, "remuw x6,x7,x8"),
        (0x0ff0_000f, "fence"),
        (0x0310_000f, "fence"), // fence rw,w
        (0x8330_000f, "fence"), // fence.tso
        (0x0100_000f, "fence"), // pause
        (0x0000_100f, "fence.i"),
        (0x3401_10f3, "csrrw x1,0x340,x2"),
        (0x3051_9073, "csrrw x0,0x305,x3"),
        (0xc000_2273, "csrrs x4,0xc00,x0"),
        (0xfff3_22f3, "csrrs x5,0xfff,x6"),
        (0x3004_33f3, "csrrc x7,0x300,x8"),
        (0x180f_d4f3, "csrrwi x9,0x180,31"),
        (0x3440_6573, "csrrsi x10,0x344,0"),
        (0x1004_7073, "csrrci x0,0x100,8"),
        (0x0000_0073, "ecall"),
        (0x0010_0073, "ebreak"),
        (0x3020_0073, "mret"),
        (0x1020_0073, "sret"),
        (0x1050_0073, "wfi"),
        (0x1200_0073, "sfence.vma x0,x0"),
        (0x1205_0073, "sfence.vma x10,x0"),
        (0x12c5_8073, "sfence.vma x11,x12"),
    ];

    #[test]
    fn decodes_like_objdump() {
        for &(bits, text) in OBJDUMP {
            assert_eq!(disasm(decode(bits)), text, "{bits:#010x}");
        }
    }

    /// Every RV64C instruction, with edge and alternating-bit immediates: `(halfword, word, text)`.
    /// The halfword is the commented `c.*` line assembled by `riscv64-unknown-elf-as -march=rv64imc`;
    /// objdump printed it back, the spec's expansion of that was assembled with `-march=rv64im` (no C)
    /// into the word, and `text` is objdump's `-M no-aliases,numeric` print of the word (targets
    /// rewritten as offsets).
    const RVC_OBJDUMP: &[(u16, u32, &str)] = &[
        (0x0040, 0x0041_0413, "addi x8,x2,4"),      // c.addi4spn x8,x2,4
        (0x1ffc, 0x3fc1_0793, "addi x15,x2,1020"),  // c.addi4spn x15,x2,1020
        (0x0408, 0x2001_0513, "addi x10,x2,512"),   // c.addi4spn x10,x2,512
        (0x1524, 0x2a81_0493, "addi x9,x2,680"),    // c.addi4spn x9,x2,680
        (0x4000, 0x0004_2403, "lw x8,0(x8)"),       // c.lw x8,0(x8)
        (0x5ffc, 0x07c7_a783, "lw x15,124(x15)"),   // c.lw x15,124(x15)
        (0x4144, 0x0045_2483, "lw x9,4(x10)"),      // c.lw x9,4(x10)
        (0x41a8, 0x0405_a503, "lw x10,64(x11)"),    // c.lw x10,64(x11)
        (0x4964, 0x0545_2483, "lw x9,84(x10)"),     // c.lw x9,84(x10)
        (0x6380, 0x0007_b403, "ld x8,0(x15)"),      // c.ld x8,0(x15)
        (0x7c7c, 0x0f84_3783, "ld x15,248(x8)"),    // c.ld x15,248(x8)
        (0x660c, 0x0086_3583, "ld x11,8(x12)"),     // c.ld x11,8(x12)
        (0x62d0, 0x0806_b603, "ld x12,128(x13)"),   // c.ld x12,128(x13)
        (0x7544, 0x0a85_3483, "ld x9,168(x10)"),    // c.ld x9,168(x10)
        (0xc080, 0x0084_a023, "sw x8,0(x9)"),       // c.sw x8,0(x9)
        (0xdf7c, 0x06f7_2e23, "sw x15,124(x14)"),   // c.sw x15,124(x14)
        (0xc044, 0x0094_2223, "sw x9,4(x8)"),       // c.sw x9,4(x8)
        (0xc1a8, 0x04a5_a023, "sw x10,64(x11)"),    // c.sw x10,64(x11)
        (0xc964, 0x0495_2a23, "sw x9,84(x10)"),     // c.sw x9,84(x10)
        (0xe080, 0x0084_b023, "sd x8,0(x9)"),       // c.sd x8,0(x9)
        (0xff7c, 0x0ef7_3c23, "sd x15,248(x14)"),   // c.sd x15,248(x14)
        (0xe60c, 0x00b6_3423, "sd x11,8(x12)"),     // c.sd x11,8(x12)
        (0xe2d0, 0x08c6_b023, "sd x12,128(x13)"),   // c.sd x12,128(x13)
        (0xf544, 0x0a95_3423, "sd x9,168(x10)"),    // c.sd x9,168(x10)
        (0x0001, 0x0000_0013, "addi x0,x0,0"),      // c.nop
        (0x0085, 0x0010_8093, "addi x1,x1,1"),      // c.addi x1,1
        (0x1f81, 0xfe0f_8f93, "addi x31,x31,-32"),  // c.addi x31,-32
        (0x017d, 0x01f1_0113, "addi x2,x2,31"),     // c.addi x2,31
        (0x157d, 0xfff5_0513, "addi x10,x10,-1"),   // c.addi x10,-1
        (0x2081, 0x0000_809b, "addiw x1,x1,0"),     // c.addiw x1,0
        (0x3f81, 0xfe0f_8f9b, "addiw x31,x31,-32"), // c.addiw x31,-32
        (0x257d, 0x01f5_051b, "addiw x10,x10,31"),  // c.addiw x10,31
        (0x4081, 0x0000_0093, "addi x1,x0,0"),      // c.li x1,0
        (0x5f81, 0xfe00_0f93, "addi x31,x0,-32"),   // c.li x31,-32
        (0x42fd, 0x01f0_0293, "addi x5,x0,31"),     // c.li x5,31
        (0x7101, 0xe001_0113, "addi x2,x2,-512"),   // c.addi16sp x2,-512
        (0x617d, 0x1f01_0113, "addi x2,x2,496"),    // c.addi16sp x2,496
        (0x6141, 0x0101_0113, "addi x2,x2,16"),     // c.addi16sp x2,16
        (0x717d, 0xff01_0113, "addi x2,x2,-16"),    // c.addi16sp x2,-16
        (0x6171, 0x1501_0113, "addi x2,x2,336"),    // c.addi16sp x2,336
        (0x6085, 0x0000_10b7, "lui x1,0x1"),        // c.lui x1,0x1
        (0x7f81, 0xfffe_0fb7, "lui x31,0xfffe0"),   // c.lui x31,0xfffe0
        (0x61fd, 0x0001_f1b7, "lui x3,0x1f"),       // c.lui x3,0x1f
        (0x727d, 0xffff_f237, "lui x4,0xfffff"),    // c.lui x4,0xfffff
        (0x8005, 0x0014_5413, "srli x8,x8,0x1"),    // c.srli x8,0x1
        (0x93fd, 0x03f7_d793, "srli x15,x15,0x3f"), // c.srli x15,0x3f
        (0x9081, 0x0204_d493, "srli x9,x9,0x20"),   // c.srli x9,0x20
        (0x8405, 0x4014_5413, "srai x8,x8,0x1"),    // c.srai x8,0x1
        (0x97fd, 0x43f7_d793, "srai x15,x15,0x3f"), // c.srai x15,0x3f
        (0x857d, 0x41f5_5513, "srai x10,x10,0x1f"), // c.srai x10,0x1f
        (0x9801, 0xfe04_7413, "andi x8,x8,-32"),    // c.andi x8,-32
        (0x8bfd, 0x01f7_f793, "andi x15,x15,31"),   // c.andi x15,31
        (0x8881, 0x0004_f493, "andi x9,x9,0"),      // c.andi x9,0
        (0x8c1d, 0x40f4_0433, "sub x8,x8,x15"),     // c.sub x8,x15
        (0x8cb9, 0x00e4_c4b3, "xor x9,x9,x14"),     // c.xor x9,x14
        (0x8d55, 0x00d5_6533, "or x10,x10,x13"),    // c.or x10,x13
        (0x8df1, 0x00c5_f5b3, "and x11,x11,x12"),   // c.and x11,x12
        (0x9e0d, 0x40b6_063b, "subw x12,x12,x11"),  // c.subw x12,x11
        (0x9fa1, 0x0087_87bb, "addw x15,x15,x8"),   // c.addw x15,x8
        (0xb001, 0x801f_f06f, "jal x0,-2048"),      // c.j .-2048
        (0xaffd, 0x7fe0_006f, "jal x0,2046"),       // c.j .+2046
        (0xa009, 0x0020_006f, "jal x0,2"),          // c.j .+2
        (0xbffd, 0xffff_f06f, "jal x0,-2"),         // c.j .-2
        (0xab99, 0x5560_006f, "jal x0,1366"),       // c.j .+1366
        (0xd001, 0xf004_00e3, "beq x8,x0,-256"),    // c.beqz x8,.-256
        (0xcffd, 0x0e07_8f63, "beq x15,x0,254"),    // c.beqz x15,.+254
        (0xe089, 0x0004_9163, "bne x9,x0,2"),       // c.bnez x9,.+2
        (0xfd7d, 0xfe05_1fe3, "bne x10,x0,-2"),     // c.bnez x10,.-2
        (0xe5cd, 0x0a05_9563, "bne x11,x0,170"),    // c.bnez x11,.+170
        (0x0086, 0x0010_9093, "slli x1,x1,0x1"),    // c.slli x1,0x1
        (0x1ffe, 0x03ff_9f93, "slli x31,x31,0x3f"), // c.slli x31,0x3f
        (0x1502, 0x0205_1513, "slli x10,x10,0x20"), // c.slli x10,0x20
        (0x6082, 0x0001_3083, "ld x1,0(x2)"),       // c.ldsp x1,0(x2)
        (0x7ffe, 0x1f81_3f83, "ld x31,504(x2)"),    // c.ldsp x31,504(x2)
        (0x6122, 0x0081_3103, "ld x2,8(x2)"),       // c.ldsp x2,8(x2)
        (0x61d6, 0x1501_3183, "ld x3,336(x2)"),     // c.ldsp x3,336(x2)
        (0x4082, 0x0001_2083, "lw x1,0(x2)"),       // c.lwsp x1,0(x2)
        (0x5ffe, 0x0fc1_2f83, "lw x31,252(x2)"),    // c.lwsp x31,252(x2)
        (0x4112, 0x0041_2103, "lw x2,4(x2)"),       // c.lwsp x2,4(x2)
        (0x51aa, 0x0a81_2183, "lw x3,168(x2)"),     // c.lwsp x3,168(x2)
        (0x8082, 0x0000_8067, "jalr x0,0(x1)"),     // c.jr x1
        (0x8f82, 0x000f_8067, "jalr x0,0(x31)"),    // c.jr x31
        (0x808a, 0x0020_00b3, "add x1,x0,x2"),      // c.mv x1,x2
        (0x8f86, 0x0010_0fb3, "add x31,x0,x1"),     // c.mv x31,x1
        (0x9002, 0x0010_0073, "ebreak"),            // c.ebreak
        (0x9082, 0x0000_80e7, "jalr x1,0(x1)"),     // c.jalr x1
        (0x9f82, 0x000f_80e7, "jalr x1,0(x31)"),    // c.jalr x31
        (0x9282, 0x0002_80e7, "jalr x1,0(x5)"),     // c.jalr x5
        (0x908a, 0x0020_80b3, "add x1,x1,x2"),      // c.add x1,x2
        (0x9ffe, 0x01ff_8fb3, "add x31,x31,x31"),   // c.add x31,x31
        (0xe002, 0x0001_3023, "sd x0,0(x2)"),       // c.sdsp x0,0(x2)
        (0xfffe, 0x1ff1_3c23, "sd x31,504(x2)"),    // c.sdsp x31,504(x2)
        (0xe406, 0x0011_3423, "sd x1,8(x2)"),       // c.sdsp x1,8(x2)
        (0xea8e, 0x1431_3823, "sd x3,336(x2)"),     // c.sdsp x3,336(x2)
        (0xc002, 0x0001_2023, "sw x0,0(x2)"),       // c.swsp x0,0(x2)
        (0xdffe, 0x0ff1_2e23, "sw x31,252(x2)"),    // c.swsp x31,252(x2)
        (0xc206, 0x0011_2223, "sw x1,4(x2)"),       // c.swsp x1,4(x2)
        (0xd50e, 0x0a31_2423, "sw x3,168(x2)"),     // c.swsp x3,168(x2)
    ];

    #[test]
    fn compressed_expands_like_objdump() {
        for &(half, word, text) in RVC_OBJDUMP {
            assert_eq!(decode16(half), decode(word), "{half:#06x} expands to {word:#010x}");
            assert_eq!(disasm(decode16(half)), text, "{half:#06x}");
            let decoded = fetch(0x1000, &mut |_| Some(half)).unwrap();
            assert_eq!(decoded, Decoded { insn: decode(word), len: 2 }, "{half:#06x}");
        }
    }

    #[test]
    fn compressed_reserved_encodings_are_illegal() {
        let halves = [
            0x0000, // all zero: c.addi4spn x8, x2, 0 (objdump: c.unimp)
            0x0004, // c.addi4spn x9, x2, 0
            0x2000, // c.fld f8, 0(x8): no D
            0xbffc, // c.fsd f15, 248(x15)
            0x2082, // c.fldsp f1, 0(x2)
            0xbffe, // c.fsdsp f31, 504(x2)
            0x8000, // quadrant 0, funct3 0b100
            0x9ffc, // quadrant 0, funct3 0b100, all other bits set
            0x2001, // c.addiw x0, 0
            0x307d, // c.addiw x0, -1
            0x6101, // c.addi16sp x2, 0 (objdump decodes it, the spec reserves it)
            0x6081, // c.lui x1, 0
            0x6001, // c.lui x0, 0 (reserved, not a HINT: nzimm = 0 wins)
            0x6f81, // c.lui x31, 0
            0x9c41, // quadrant 1 misc-alu, bit 12 set, funct2 0b10
            0x9ffd, // quadrant 1 misc-alu, bit 12 set, funct2 0b11
            0x4002, // c.lwsp x0, 0(x2)
            0x507e, // c.lwsp x0, 252(x2)
            0x6002, // c.ldsp x0, 0(x2)
            0x707e, // c.ldsp x0, 504(x2)
            0x8002, // c.jr x0
            0xffff, // a 32-bit encoding's low half
            0x0013, // another
        ];
        for half in halves {
            assert_eq!(decode16(half), Insn::Illegal { bits: u32::from(half) }, "{half:#06x}");
        }
    }

    #[test]
    fn compressed_hints_are_nops() {
        let halves = [
            0x0005, // c.nop 1 (objdump: c.addi x0, 1)
            0x1001, // c.nop -32
            0x0081, // c.addi x1, 0
            0x0f81, // c.addi x31, 0
            0x4001, // c.li x0, 0
            0x507d, // c.li x0, -1
            0x6005, // c.lui x0, 0x1
            0x7001, // c.lui x0, 0xfffe0
            0x8001, // c.srli64 x8 (shift by 0)
            0x8381, // c.srli64 x15
            0x8401, // c.srai64 x8
            0x8781, // c.srai64 x15
            0x0006, // c.slli x0, 1
            0x107e, // c.slli x0, 63
            0x0002, // c.slli64 x0
            0x0082, // c.slli64 x1
            0x0f82, // c.slli64 x31
            0x8006, // c.mv x0, x1
            0x807e, // c.mv x0, x31
            0x9006, // c.add x0, x1
            0x9016, // c.add x0, x5 (c.ntl.all)
            0x907e, // c.add x0, x31
        ];
        for half in halves {
            assert_eq!(decode16(half), NOP, "{half:#06x}");
        }
    }

    #[test]
    fn every_halfword_decodes_without_panic() {
        for half in 0..=u16::MAX {
            match decode16(half) {
                Insn::Illegal { bits } => assert_eq!(bits, u32::from(half)),
                insn => assert_ne!(half & 3, 3, "{half:#06x} decoded as {insn:?}"),
            }
        }
    }

    #[test]
    fn decodes_fields_exactly() {
        assert_eq!(decode(0x8000_00b7), Insn::Lui { rd: 1, imm: -0x8000_0000 });
        assert_eq!(decode(0x7fff_f0ef), Insn::Jal { rd: 1, imm: 0xf_fffe });
        assert_eq!(decode(0x8020_8063), Insn::Branch { cond: Cond::Eq, rs1: 1, rs2: 2, imm: -4096 });
        assert_eq!(
            decode(0x0647_6683),
            Insn::Load { rd: 13, rs1: 14, imm: 100, access: MemAccess { size: 4, signed: false } }
        );
        assert_eq!(decode(0xfe53_2fa3), Insn::Store { rs1: 6, rs2: 5, imm: -1, size: 4 });
        assert_eq!(decode(0xfff3_3293), Insn::OpImm { op: BinOp::Sltu, rd: 5, rs1: 6, imm: -1 });
        assert_eq!(decode(0x43f9_5893), Insn::OpImm { op: BinOp::Sar, rd: 17, rs1: 18, imm: 63 });
        assert_eq!(decode(0x0294_23b3), Insn::Op { op: BinOp::MulHSU, rd: 7, rs1: 8, rs2: 9 });
        assert_eq!(decode(0xfff3_22f3), Insn::Csr { op: CsrOp::Rs, rd: 5, rs1: 6, csr: 0xfff });
        assert_eq!(decode(0x180f_d4f3), Insn::CsrImm { op: CsrOp::Rw, rd: 9, zimm: 31, csr: 0x180 });
        assert_eq!(decode(0x12c5_8073), Insn::SfenceVma { rs1: 11, rs2: 12 });
    }

    #[test]
    fn rejects_what_is_not_implemented_or_reserved() {
        let words = [
            0x0200_109b, // slliw with shamt[5] set
            0x0200_509b, // srliw with shamt[5] set
            0x4200_509b, // sraiw with shamt[5] set
            0x8000_1093, // slli with a nonzero funct6
            0x2000_5093, // srli/srai with an unknown funct6
            0x4000_1093, // slli with srai's funct6
            0x4000_103b, // sllw with sraw's funct7
            0x0400_0033, // OP with an unknown funct7
            0x0000_2007, // flw
            0x0000_202f, // amoadd.w
            0x0000_0053, // fadd.s
            0x0000_0057, // vector
            0x0000_000b, // custom-0
            0x0000_4073, // SYSTEM funct3 4
            0x0000_7003, // LOAD funct3 7
            0x0000_4023, // STORE funct3 4
            0x0000_2063, // BRANCH funct3 2
            0x0000_1067, // jalr funct3 1
            0x0000_200f, // cbo.* (MISC-MEM funct3 2)
            0x0020_0073, // uret
            0x7b20_0073, // dret
            0x2020_0073, // hret (old privileged spec)
            0x1040_0073, // sfence.vm (old privileged spec)
            0x2200_0073, // hfence.vvma
            0x0000_00f3, // ecall with rd = x1
            0x3020_8073, // mret with rs1 = x1
            0x1200_00f3, // sfence.vma with rd = x1
            0x0000_001f, // 48-bit encoding
            0xffff_ffff,
        ];
        for bits in words {
            assert_eq!(decode(bits), Insn::Illegal { bits }, "{bits:#010x}");
        }
    }

    #[test]
    fn fences_ignore_their_reserved_fields() {
        assert_eq!(decode(0x1234_800f), Insn::Fence);
        assert_eq!(decode(0xfff2_908f), Insn::FenceI);
    }

    #[test]
    fn fetch_reads_halfwords_little_endian() {
        // addi x1, x2, -2048 at 0x1000, split over two halfwords.
        let mut fetch16 = |addr| match addr {
            0x1000 => Some(0x0093),
            0x1002 => Some(0x8001),
            _ => None,
        };
        let decoded = fetch(0x1000, &mut fetch16).unwrap();
        assert_eq!(
            decoded,
            Decoded { insn: Insn::OpImm { op: BinOp::Add, rd: 1, rs1: 2, imm: -2048 }, len: 4 }
        );
    }

    #[test]
    fn compressed_fetches_only_its_own_halfword() {
        // c.unimp (illegal), c.li x10, 0 and c.sdsp x31, 504(x2) at the last halfword of a page.
        for half in [0x0000, 0x4501, 0xfffe] {
            let mut fetched = Vec::new();
            let mut fetch16 = |addr| {
                fetched.push(addr);
                Some(half)
            };
            let decoded = fetch(0xffe, &mut fetch16);
            assert_eq!(decoded, Some(Decoded { insn: decode16(half), len: 2 }));
            assert_eq!(fetched, [0xffe]);
        }
        assert_eq!(decode16(0), Insn::Illegal { bits: 0 });
    }

    #[test]
    fn fetch_fault_on_either_halfword_is_none() {
        assert_eq!(fetch(0x1000, &mut |_| None), None);
        let mut second_faults = |addr| (addr == 0x1ffe).then_some(0x0013);
        assert_eq!(fetch(0x1ffe, &mut second_faults), None);
        // The second halfword address wraps instead of overflowing.
        let mut wraps = |addr| match addr {
            0xffff_ffff_ffff_fffe => Some(0x0013),
            0 => Some(0x0000),
            _ => None,
        };
        assert_eq!(fetch(u64::MAX - 1, &mut wraps).map(|d| d.insn), Some(decode(0x13)));
    }

    #[test]
    fn any_bits_decode_without_panic() {
        // xorshift: a reproducible spread over the whole encoding space.
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..1 << 20 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if let Insn::Illegal { bits } = decode(x) {
                assert_eq!(bits, x);
            }
        }
    }
}
