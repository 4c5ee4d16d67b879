//! RISC-V instruction decoding: guest instruction bits to an [`Insn`].
//!
//! Covers RV64I, M, Zicsr, Zifencei and the privileged instructions a kernel needs; every other
//! encoding decodes to [`Insn::Illegal`]. The decoder sees hostile guest code, so it never panics.
//! Instructions are fetched a halfword at a time so that the C extension can later expand its 16-bit
//! encodings into the same [`Insn`]s (only [`Decoded::len`] differs).
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
        // A 16-bit instruction: the C extension is not implemented yet. Only its own halfword is
        // fetched, so a fault on the next one cannot mask the illegal instruction.
        return Some(Decoded { insn: Insn::Illegal { bits: u32::from(low) }, len: 2 });
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
    fn compressed_is_illegal_without_fetching_further() {
        for half in [0x0000, 0x4501, 0xfffe] {
            let mut fetched = Vec::new();
            let mut fetch16 = |addr| {
                fetched.push(addr);
                Some(half)
            };
            let decoded = fetch(0xffe, &mut fetch16);
            assert_eq!(decoded, Some(Decoded { insn: Insn::Illegal { bits: u32::from(half) }, len: 2 }));
            assert_eq!(fetched, [0xffe]);
        }
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
