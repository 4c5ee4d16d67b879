//! F and D arithmetic behind the `Fp`/`FpDyn` helpers: Berkeley SoftFloat 3e with its RISC-V
//! specialization (canonical NaNs, RISC-V's saturating conversions, tininess after rounding),
//! plus what RISC-V defines itself: NaN-boxing, `fmin`/`fmax` (2019 semantics), `fclass` and
//! sign injection.
//!
//! SoftFloat keeps its rounding mode and exception flags in `_Thread_local` variables (that is
//! how softfloat-sys builds it), so harts on different threads do not share them. Every
//! operation sets the mode, clears the flags, computes, and ORs the flags into `fcsr`. SoftFloat's
//! rounding-mode and flag encodings are RISC-V's `frm` and `fflags`, so neither is translated.

use softfloat_sys as sf;

/// A single's canonical NaN, which a non-NaN-boxed single input also reads as.
pub const CANONICAL_NAN_S: u32 = 0x7fc0_0000;
/// A double's canonical NaN.
pub const CANONICAL_NAN_D: u64 = 0x7ff8_0000_0000_0000;
/// The bits above a NaN-boxed single.
const BOX: u64 = 0xffff_ffff_0000_0000;
/// Where `fcsr` keeps `fflags`.
const FFLAGS_MASK: u64 = 0x1f;

/// The operations, in bits 7..0 of the helper's `imm`.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FpOp {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
    /// `a * b + c`, `a * b - c`, `-(a * b) + c`, `-(a * b) - c`.
    MAdd,
    MSub,
    NMSub,
    NMAdd,
    Min,
    Max,
    Eq,
    Lt,
    Le,
    Class,
    Sgnj,
    Sgnjn,
    Sgnjx,
    /// To an integer (`fcvt.w.s` ...): the result in `x` form (a word sign-extended).
    ToW,
    ToWu,
    ToL,
    ToLu,
    /// From the integer in `a` (`fcvt.s.w` ...).
    FromW,
    FromWu,
    FromL,
    FromLu,
    /// To this format from the other one (`fcvt.s.d` for S, `fcvt.d.s` for D).
    Convert,
}

const OPS: [FpOp; 27] = {
    use FpOp::*;
    [
        Add, Sub, Mul, Div, Sqrt, MAdd, MSub, NMSub, NMAdd, Min, Max, Eq, Lt, Le, Class, Sgnj, Sgnjn, Sgnjx,
        ToW, ToWu, ToL, ToLu, FromW, FromWu, FromL, FromLu, Convert,
    ]
};

/// The `imm` of an F/D helper: `op`, the format (`double`), the static rounding mode `rm` (0 to
/// 4; ignored by `FpDyn`) and the instruction's bits (the `tval` of an illegal `frm`).
pub fn imm(op: FpOp, double: bool, rm: u8, bits: u32) -> u64 {
    op as u64 | u64::from(double) << 8 | u64::from(rm & 7) << 12 | u64::from(bits) << 32
}

/// The static rounding mode in a helper's `imm`.
pub fn static_rm(imm: u64) -> u8 {
    (imm >> 12 & 7) as u8
}

/// `frm` in `fcsr` if it is a valid rounding mode (0 to 4).
pub fn dynamic_rm(fcsr: u64) -> Option<u8> {
    let rm = (fcsr >> 5 & 7) as u8;
    (rm <= 4).then_some(rm)
}

/// A single in an `f` register.
pub fn nan_box(v: u32) -> u64 {
    BOX | u64::from(v)
}

/// The single an `f` register holds: its low half if NaN-boxed, else the canonical NaN.
pub fn unbox(v: u64) -> u32 {
    if v & BOX == BOX { v as u32 } else { CANONICAL_NAN_S }
}

/// Runs the operation `imm` says (see [`imm`]) on `a`, `b`, `c` with rounding mode `rm` (0 to
/// 4), ORs the exception flags it raised into `fcsr` and returns the result. None for an `imm`
/// the frontend never makes.
pub fn execute(fcsr: &mut u64, imm: u64, rm: u8, a: u64, b: u64, c: u64) -> Option<u64> {
    let op = *OPS.get(usize::from(imm as u8))?;
    if rm > 4 {
        return None;
    }
    // SAFETY: the state is this thread's (see the module docs); the calls take and return plain
    // integers.
    unsafe {
        sf::softfloat_roundingMode_write_helper(rm);
        sf::softfloat_exceptionFlags_write_helper(0);
    }
    let r = if imm >> 8 & 1 != 0 { double(op, rm, a, b, c) } else { single(op, rm, a, b, c) };
    // SAFETY: as above.
    *fcsr |= u64::from(unsafe { sf::softfloat_exceptionFlags_read_helper() }) & FFLAGS_MASK;
    Some(r)
}

/// Bit layout of a format, for the operations SoftFloat leaves to the ISA.
#[derive(Clone, Copy)]
struct Layout {
    /// Fraction bits.
    frac: u32,
    /// Exponent bits.
    exp: u32,
}

const S: Layout = Layout { frac: 23, exp: 8 };
const D: Layout = Layout { frac: 52, exp: 11 };

impl Layout {
    fn sign(self, v: u64) -> bool {
        v >> (self.frac + self.exp) & 1 != 0
    }
    fn is_nan(self, v: u64) -> bool {
        let exp = v >> self.frac & ((1 << self.exp) - 1);
        exp == (1 << self.exp) - 1 && v & ((1 << self.frac) - 1) != 0
    }

    /// `fclass`: one bit of ten (−∞, −normal, −subnormal, −0, +0, +subnormal, +normal, +∞,
    /// signaling NaN, quiet NaN).
    fn class(self, v: u64) -> u64 {
        let exp = v >> self.frac & ((1 << self.exp) - 1);
        let frac = v & ((1 << self.frac) - 1);
        let max = (1 << self.exp) - 1;
        let bit = match (exp, frac) {
            (e, 0) if e == max => 0,
            (e, f) if e == max => return if f >> (self.frac - 1) != 0 { 1 << 9 } else { 1 << 8 },
            (0, 0) => 3,
            (0, _) => 2,
            _ => 1,
        };
        if self.sign(v) { 1 << bit } else { 1 << (7 - bit) }
    }

    /// `fmin`/`fmax` (2019 semantics): a NaN operand gives the other one, two give the
    /// canonical NaN; −0 is below +0. `lt` is the quiet comparison, which raises NV for a
    /// signaling NaN, as both must.
    fn min_max(self, max: bool, a: u64, b: u64, canonical: u64, lt: impl Fn(u64, u64) -> bool) -> u64 {
        let (a_lt_b, b_lt_a) = (lt(a, b), lt(b, a));
        match (self.is_nan(a), self.is_nan(b)) {
            (true, true) => canonical,
            (true, false) => b,
            (false, true) => a,
            // Equal: only ±0 can differ, and the sign decides.
            _ if !a_lt_b && !b_lt_a => {
                if self.sign(a) != max {
                    a
                } else {
                    b
                }
            }
            _ => {
                if a_lt_b != max {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// `fsgnj`, `fsgnjn`, `fsgnjx`: `a`'s magnitude with a sign from `b`'s.
    fn sign_inject(self, op: FpOp, a: u64, b: u64) -> u64 {
        let sign = 1 << (self.frac + self.exp);
        let from_b = match op {
            FpOp::Sgnj => b & sign,
            FpOp::Sgnjn => !b & sign,
            _ => (a ^ b) & sign,
        };
        a & !sign | from_b
    }
}

fn f32(v: u32) -> sf::float32_t {
    sf::float32_t { v }
}

fn f64(v: u64) -> sf::float64_t {
    sf::float64_t { v }
}

/// A word result in an `x` register: sign-extended, for `fcvt.wu` too.
fn word(v: u32) -> u64 {
    v as i32 as i64 as u64
}

fn single(op: FpOp, rm: u8, a: u64, b: u64, c: u64) -> u64 {
    use FpOp::*;
    let (x, y, z) = (unbox(a), unbox(b), unbox(c));
    let neg = |v: u32| f32(v ^ 0x8000_0000);
    let boxed = |r: sf::float32_t| nan_box(r.v);
    // SAFETY: SoftFloat's operations are C functions on plain values; they touch only this
    // thread's rounding mode and flags.
    unsafe {
        match op {
            Add => boxed(sf::f32_add(f32(x), f32(y))),
            Sub => boxed(sf::f32_sub(f32(x), f32(y))),
            Mul => boxed(sf::f32_mul(f32(x), f32(y))),
            Div => boxed(sf::f32_div(f32(x), f32(y))),
            Sqrt => boxed(sf::f32_sqrt(f32(x))),
            // Negating an operand is exact, so it is the same as negating the product.
            MAdd => boxed(sf::f32_mulAdd(f32(x), f32(y), f32(z))),
            MSub => boxed(sf::f32_mulAdd(f32(x), f32(y), neg(z))),
            NMSub => boxed(sf::f32_mulAdd(neg(x), f32(y), f32(z))),
            NMAdd => boxed(sf::f32_mulAdd(neg(x), f32(y), neg(z))),
            Min | Max => {
                let lt = |p: u64, q: u64| sf::f32_lt_quiet(f32(p as u32), f32(q as u32));
                let canonical = u64::from(CANONICAL_NAN_S);
                nan_box(S.min_max(op == Max, x.into(), y.into(), canonical, lt) as u32)
            }
            Eq => sf::f32_eq(f32(x), f32(y)).into(),
            Lt => sf::f32_lt(f32(x), f32(y)).into(),
            Le => sf::f32_le(f32(x), f32(y)).into(),
            Class => S.class(x.into()),
            Sgnj | Sgnjn | Sgnjx => nan_box(S.sign_inject(op, x.into(), y.into()) as u32),
            ToW => word(sf::f32_to_i32(f32(x), rm, true) as u32),
            ToWu => word(sf::f32_to_ui32(f32(x), rm, true) as u32),
            ToL => sf::f32_to_i64(f32(x), rm, true) as u64,
            ToLu => sf::f32_to_ui64(f32(x), rm, true) as u64,
            FromW => boxed(sf::i32_to_f32(a as i32)),
            FromWu => boxed(sf::ui32_to_f32(a as u32)),
            FromL => boxed(sf::i64_to_f32(a as i64)),
            FromLu => boxed(sf::ui64_to_f32(a)),
            Convert => boxed(sf::f64_to_f32(f64(a))),
        }
    }
}

fn double(op: FpOp, rm: u8, a: u64, b: u64, c: u64) -> u64 {
    use FpOp::*;
    let neg = |v: u64| f64(v ^ 1 << 63);
    // SAFETY: as in `single`.
    unsafe {
        match op {
            Add => sf::f64_add(f64(a), f64(b)).v,
            Sub => sf::f64_sub(f64(a), f64(b)).v,
            Mul => sf::f64_mul(f64(a), f64(b)).v,
            Div => sf::f64_div(f64(a), f64(b)).v,
            Sqrt => sf::f64_sqrt(f64(a)).v,
            MAdd => sf::f64_mulAdd(f64(a), f64(b), f64(c)).v,
            MSub => sf::f64_mulAdd(f64(a), f64(b), neg(c)).v,
            NMSub => sf::f64_mulAdd(neg(a), f64(b), f64(c)).v,
            NMAdd => sf::f64_mulAdd(neg(a), f64(b), neg(c)).v,
            Min | Max => {
                let lt = |p: u64, q: u64| sf::f64_lt_quiet(f64(p), f64(q));
                D.min_max(op == Max, a, b, CANONICAL_NAN_D, lt)
            }
            Eq => sf::f64_eq(f64(a), f64(b)).into(),
            Lt => sf::f64_lt(f64(a), f64(b)).into(),
            Le => sf::f64_le(f64(a), f64(b)).into(),
            Class => D.class(a),
            Sgnj | Sgnjn | Sgnjx => D.sign_inject(op, a, b),
            ToW => word(sf::f64_to_i32(f64(a), rm, true) as u32),
            ToWu => word(sf::f64_to_ui32(f64(a), rm, true) as u32),
            ToL => sf::f64_to_i64(f64(a), rm, true) as u64,
            ToLu => sf::f64_to_ui64(f64(a), rm, true) as u64,
            FromW => sf::i32_to_f64(a as i32).v,
            FromWu => sf::ui32_to_f64(a as u32).v,
            FromL => sf::i64_to_f64(a as i64).v,
            FromLu => sf::ui64_to_f64(a).v,
            Convert => sf::f32_to_f64(f32(unbox(a))).v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NV: u64 = 16;
    const DZ: u64 = 8;
    const OF: u64 = 4;
    const UF: u64 = 2;
    const NX: u64 = 1;

    /// Runs `op` and returns (result, flags).
    fn run(op: FpOp, double: bool, rm: u8, a: u64, b: u64, c: u64) -> (u64, u64) {
        let mut fcsr = 0;
        let r = execute(&mut fcsr, imm(op, double, rm, 0), rm, a, b, c).unwrap();
        (r, fcsr)
    }

    fn s(v: f32) -> u64 {
        nan_box(v.to_bits())
    }

    fn d(v: f64) -> u64 {
        v.to_bits()
    }

    #[test]
    fn arithmetic_rounds_as_asked_and_raises_exact_flags() {
        // 1 + 2^-24 in single: a tie, to even (1) or up.
        let (one, tiny) = (s(1.0), s(f32::from_bits(0x3380_0000)));
        assert_eq!(run(FpOp::Add, false, 0, one, tiny, 0), (s(1.0), NX));
        assert_eq!(run(FpOp::Add, false, 3, one, tiny, 0), (nan_box(0x3f80_0001), NX));
        assert_eq!(run(FpOp::Add, false, 4, one, tiny, 0), (nan_box(0x3f80_0001), NX), "RMM: away");
        assert_eq!(run(FpOp::Add, false, 1, one, tiny, 0), (s(1.0), NX));
        assert_eq!(run(FpOp::Div, true, 0, d(1.0), d(0.0), 0), (d(f64::INFINITY), DZ));
        assert_eq!(run(FpOp::Div, true, 0, d(0.0), d(0.0), 0), (CANONICAL_NAN_D, NV));
        assert_eq!(run(FpOp::Mul, true, 0, d(f64::MAX), d(2.0), 0), (d(f64::INFINITY), OF | NX));
        assert_eq!(run(FpOp::Mul, true, 1, d(f64::MAX), d(2.0), 0), (d(f64::MAX), OF | NX), "RTZ");
        assert_eq!(run(FpOp::Mul, true, 0, d(f64::MIN_POSITIVE), d(0.5), 0), (d(f64::MIN_POSITIVE / 2.0), 0));
        let third = d(f64::MIN_POSITIVE / 3.0);
        assert_eq!(run(FpOp::Div, true, 0, d(f64::MIN_POSITIVE), d(3.0), 0), (third, UF | NX));
        assert_eq!(run(FpOp::Sqrt, true, 0, d(-1.0), 0, 0), (CANONICAL_NAN_D, NV));
        assert_eq!(run(FpOp::Sqrt, true, 0, d(-0.0), 0, 0), (d(-0.0), 0));
        // x - x is +0, but -0 rounding down.
        assert_eq!(run(FpOp::Sub, true, 0, d(1.0), d(1.0), 0), (d(0.0), 0));
        assert_eq!(run(FpOp::Sub, true, 2, d(1.0), d(1.0), 0), (d(-0.0), 0));
    }

    #[test]
    fn nans_are_canonical_and_unboxed_singles_read_as_one() {
        let snan_s = nan_box(0x7f80_0001);
        assert_eq!(run(FpOp::Add, false, 0, snan_s, s(1.0), 0), (nan_box(CANONICAL_NAN_S), NV));
        let qnan_payload = nan_box(0xffc1_2345);
        assert_eq!(run(FpOp::Mul, false, 0, qnan_payload, s(1.0), 0), (nan_box(CANONICAL_NAN_S), 0));
        // A single that is not NaN-boxed is the canonical (quiet) NaN: no NV.
        let unboxed = 0x0000_0000_3f80_0000;
        assert_eq!(run(FpOp::Add, false, 0, unboxed, s(1.0), 0), (nan_box(CANONICAL_NAN_S), 0));
        assert_eq!(run(FpOp::Class, false, 0, unboxed, 0, 0), (1 << 9, 0));
        assert_eq!(run(FpOp::Convert, true, 0, unboxed, 0, 0), (CANONICAL_NAN_D, 0));
        assert_eq!(run(FpOp::Sgnjn, false, 0, unboxed, s(1.0), 0), (nan_box(0xffc0_0000), 0));
        // fma(inf, 0, qNaN) is invalid.
        let (inf, qnan) = (d(f64::INFINITY), CANONICAL_NAN_D);
        assert_eq!(run(FpOp::MAdd, true, 0, inf, d(0.0), qnan), (CANONICAL_NAN_D, NV));
    }

    #[test]
    fn fused_forms_negate_the_right_terms() {
        let (a, b, c) = (d(2.0), d(3.0), d(1.0));
        assert_eq!(run(FpOp::MAdd, true, 0, a, b, c).0, d(7.0));
        assert_eq!(run(FpOp::MSub, true, 0, a, b, c).0, d(5.0));
        assert_eq!(run(FpOp::NMSub, true, 0, a, b, c).0, d(-5.0));
        assert_eq!(run(FpOp::NMAdd, true, 0, a, b, c).0, d(-7.0));
        // One rounding: 0.1 * 10 - 1 is 2^-54 when fused, 0 when not.
        assert_eq!(run(FpOp::MSub, true, 0, d(0.1), d(10.0), d(1.0)).0, d(2f64.powi(-54)));
        // -(0 * 1) - 0 = -0; -(0 * 1) + 0 = +0 (to nearest).
        assert_eq!(run(FpOp::NMAdd, true, 0, d(0.0), d(1.0), d(0.0)).0, d(-0.0));
        assert_eq!(run(FpOp::NMSub, true, 0, d(0.0), d(1.0), d(0.0)).0, d(0.0));
    }

    #[test]
    fn min_max_follow_the_2019_rules() {
        let snan = 0x7ff0_0000_0000_0001;
        assert_eq!(run(FpOp::Min, true, 0, d(-0.0), d(0.0), 0), (d(-0.0), 0));
        assert_eq!(run(FpOp::Min, true, 0, d(0.0), d(-0.0), 0), (d(-0.0), 0));
        assert_eq!(run(FpOp::Max, true, 0, d(-0.0), d(0.0), 0), (d(0.0), 0));
        assert_eq!(run(FpOp::Max, true, 0, CANONICAL_NAN_D, d(-3.0), 0), (d(-3.0), 0));
        assert_eq!(run(FpOp::Min, true, 0, d(2.0), snan, 0), (d(2.0), NV));
        assert_eq!(run(FpOp::Max, true, 0, snan, CANONICAL_NAN_D, 0), (CANONICAL_NAN_D, NV));
        assert_eq!(run(FpOp::Min, false, 0, s(1.0), s(-1.0), 0), (s(-1.0), 0));
        assert_eq!(run(FpOp::Max, false, 0, s(1.0), s(-1.0), 0), (s(1.0), 0));
    }

    #[test]
    fn compares_are_quiet_or_signaling_as_the_isa_says() {
        let q = CANONICAL_NAN_D;
        assert_eq!(run(FpOp::Eq, true, 0, q, d(1.0), 0), (0, 0));
        assert_eq!(run(FpOp::Eq, true, 0, 0x7ff0_0000_0000_0001, d(1.0), 0), (0, NV));
        assert_eq!(run(FpOp::Lt, true, 0, q, d(1.0), 0), (0, NV));
        assert_eq!(run(FpOp::Le, true, 0, d(-0.0), d(0.0), 0), (1, 0));
        assert_eq!(run(FpOp::Eq, false, 0, s(-0.0), s(0.0), 0), (1, 0));
    }

    #[test]
    fn class_names_every_kind() {
        let cases = [
            (f64::NEG_INFINITY.to_bits(), 0),
            (d(-1.0), 1),
            (d(-f64::MIN_POSITIVE / 2.0), 2),
            (d(-0.0), 3),
            (d(0.0), 4),
            (d(f64::MIN_POSITIVE / 2.0), 5),
            (d(1.0), 6),
            (f64::INFINITY.to_bits(), 7),
            (0x7ff0_0000_0000_0001, 8),
            (CANONICAL_NAN_D, 9),
            (0xfff8_0000_0000_0000, 9),
        ];
        for (v, bit) in cases {
            assert_eq!(run(FpOp::Class, true, 0, v, 0, 0), (1 << bit, 0), "{v:#x}");
        }
        assert_eq!(run(FpOp::Class, false, 0, nan_box(0x7f80_0001), 0, 0).0, 1 << 8);
        assert_eq!(run(FpOp::Class, false, 0, nan_box(0x8000_0001), 0, 0).0, 1 << 2);
    }

    #[test]
    fn conversions_saturate_and_sign_extend_words() {
        let nan = CANONICAL_NAN_D;
        assert_eq!(run(FpOp::ToW, true, 0, nan, 0, 0), (0x7fff_ffff, NV));
        assert_eq!(run(FpOp::ToW, true, 0, d(-1e10), 0, 0), (0xffff_ffff_8000_0000, NV));
        assert_eq!(run(FpOp::ToWu, true, 0, d(-1.0), 0, 0), (0, NV));
        assert_eq!(run(FpOp::ToWu, true, 0, d(-0.5), 0, 1), (0, NX), "rounds to 0 first");
        assert_eq!(run(FpOp::ToWu, true, 0, d(4e9), 0, 0), (word(4_000_000_000), 0));
        assert_eq!(run(FpOp::ToWu, true, 0, nan, 0, 0), (u64::MAX, NV));
        assert_eq!(run(FpOp::ToL, false, 0, s(f32::INFINITY), 0, 0), (i64::MAX as u64, NV));
        assert_eq!(run(FpOp::ToLu, false, 0, s(-f32::INFINITY), 0, 0), (0, NV));
        assert_eq!(run(FpOp::ToL, true, 2, d(-1.5), 0, 0), (-2i64 as u64, NX));
        assert_eq!(run(FpOp::ToL, true, 4, d(2.5), 0, 0), (3, NX));
        assert_eq!(run(FpOp::ToL, true, 0, d(2.5), 0, 0), (2, NX));
        assert_eq!(run(FpOp::FromW, true, 0, 0xffff_ffff_ffff_fffe, 0, 0), (d(-2.0), 0), "low word only");
        assert_eq!(run(FpOp::FromWu, false, 0, 0xffff_ffff, 0, 0), (s(4294967296.0), NX));
        assert_eq!(run(FpOp::FromLu, false, 1, u64::MAX, 0, 0), (nan_box(0x5f7f_ffff), NX));
        assert_eq!(run(FpOp::Convert, false, 0, d(1e300), 0, 0), (s(f32::INFINITY), OF | NX));
        assert_eq!(run(FpOp::Convert, true, 0, nan_box(0x7f80_0001), 0, 0), (CANONICAL_NAN_D, NV));
    }

    #[test]
    fn flags_accumulate_and_bad_encodings_are_refused() {
        let mut fcsr = 0b010_00000;
        execute(&mut fcsr, imm(FpOp::Div, true, 0, 0), 0, d(1.0), d(0.0), 0).unwrap();
        execute(&mut fcsr, imm(FpOp::Add, true, 0, 0), 0, d(0.1), d(0.2), 0).unwrap();
        assert_eq!(fcsr, 0b010_00000 | DZ | NX, "frm kept, flags ORed");
        assert_eq!(execute(&mut fcsr, 99, 0, 0, 0, 0), None);
        assert_eq!(execute(&mut fcsr, imm(FpOp::Add, true, 5, 0), 5, 0, 0, 0), None);
        assert_eq!(
            (dynamic_rm(4 << 5), dynamic_rm(5 << 5), dynamic_rm(7 << 5 | 0x1f)),
            (Some(4), None, None)
        );
        assert_eq!(static_rm(imm(FpOp::Sqrt, false, 3, 0xdead)), 3);
        assert_eq!(imm(FpOp::Sqrt, false, 3, 0xdead) >> 32, 0xdead);
    }
}
