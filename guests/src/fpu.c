/* RV64 F and D in M-mode: mstatus.FS (Off traps every F/D instruction and fflags/frm/fcsr; writes
 * make it Dirty), NaN-boxing, canonical NaNs, signaling NaNs, infinities, subnormals, signed
 * zeros, every rounding mode (static and through frm, and the invalid ones), fused multiply-add,
 * conversions that overflow or take a NaN, fclass, fmin/fmax, compares. Each line gives the
 * operands and result as raw register bits and fflags; the output is compared with QEMU's.
 * Built with -march=rv64imafdc (lp64, so no FP in C code: every FP instruction is in asm). */
#include "runtime.h"

uint64_t trap_cause, trap_tval, trap_count;

/* Records mcause and mtval and resumes after the faulting instruction, which is always 4 bytes
   (the probes are assembled without compressed instructions). Uses only t0 and t1. */
__asm__(".text\n.balign 4\nfpu_trap:\n"
        "  csrr t0, mcause\n  la t1, trap_cause\n  sd t0, 0(t1)\n"
        "  csrr t0, mtval\n  la t1, trap_tval\n  sd t0, 0(t1)\n"
        "  la t1, trap_count\n  ld t0, 0(t1)\n  addi t0, t0, 1\n  sd t0, 0(t1)\n"
        "  csrr t0, mepc\n  addi t0, t0, 4\n  csrw mepc, t0\n  mret\n");
extern void fpu_trap(void);

#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop"
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_SD (1ull << 63)

static uint64_t flags; /* fflags after the last probe */

/* ft0..ft2 = a, b, c (raw bits), fflags cleared, then `insn`, which writes ft3 (FR) or %0 (XR). */
#define PROBE_F(name, insn) \
    static uint64_t name(uint64_t a, uint64_t b, uint64_t c) { uint64_t r = 0x5a5a5a5a5a5a5a5aull, fl = 0; \
        trap_count = 0; \
        __asm__ volatile(NORVC("fmv.d.x ft0, %2\n fmv.d.x ft1, %3\n fmv.d.x ft2, %4\n fmv.d.x ft3, %0\n" \
                               " csrw fflags, zero\n " insn "\n fmv.x.d %0, ft3\n frflags %1") \
                         : "+&r"(r), "=&r"(fl) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "ft3", "t0", "t1", "memory"); \
        flags = fl; return r; }
#define PROBE_X(name, insn) \
    static uint64_t name(uint64_t a, uint64_t b, uint64_t c) { uint64_t r = 0x5a5a5a5a5a5a5a5aull, fl = 0; \
        trap_count = 0; \
        __asm__ volatile(NORVC("fmv.d.x ft0, %2\n fmv.d.x ft1, %3\n fmv.d.x ft2, %4\n" \
                               " csrw fflags, zero\n " insn "\n frflags %1") \
                         : "+&r"(r), "=&r"(fl) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "t0", "t1", "memory"); \
        flags = fl; return r; }

typedef uint64_t (*probe)(uint64_t, uint64_t, uint64_t);
struct op { const char *name; probe fn; };

#define BOX(v) (0xffffffff00000000ull | (uint32_t)(v))

/* Singles (NaN-boxed): 0, -0, 1, -1, 1.5, min subnormal, max subnormal, min normal, max,
   inf, -inf, canonical qNaN, negative qNaN with payload, sNaN, 3, 0.1, 2^24 + 1 rounded, 1e10. */
static const uint64_t S_VALS[] = {
    BOX(0x00000000), BOX(0x80000000), BOX(0x3f800000), BOX(0xbf800000), BOX(0x3fc00000), BOX(0x00000001),
    BOX(0x007fffff), BOX(0x00800000), BOX(0x7f7fffff), BOX(0x7f800000), BOX(0xff800000), BOX(0x7fc00000),
    BOX(0xffc12345), BOX(0x7f800001), BOX(0x40400000), BOX(0x3dcccccd),
};
/* Doubles, the same kinds. */
static const uint64_t D_VALS[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
    0x3ff8000000000000ull, 0x0000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull,
    0x7fefffffffffffffull, 0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
    0xfff8000000012345ull, 0x7ff0000000000001ull, 0x4008000000000000ull, 0x3fb999999999999aull,
};
#define NVALS (sizeof S_VALS / sizeof S_VALS[0])

static void show(const char *name, uint64_t a, uint64_t b, uint64_t c, uint64_t r)
{
    printf("%s %lx %lx %lx -> %lx fflags=%x", name, a, b, c, r, (unsigned)flags);
    if (trap_count)
        printf(" trap mcause=%lu mtval=0x%lx", trap_cause, trap_tval);
    print("\n");
}

/* Binary operations over every pair of edge values (rne). */
PROBE_F(fadd_s, "fadd.s ft3, ft0, ft1, rne")
PROBE_F(fsub_s, "fsub.s ft3, ft0, ft1, rne")
PROBE_F(fmul_s, "fmul.s ft3, ft0, ft1, rne")
PROBE_F(fdiv_s, "fdiv.s ft3, ft0, ft1, rne")
PROBE_F(fmin_s, "fmin.s ft3, ft0, ft1")
PROBE_F(fmax_s, "fmax.s ft3, ft0, ft1")
PROBE_X(feq_s, "feq.s %0, ft0, ft1")
PROBE_X(flt_s, "flt.s %0, ft0, ft1")
PROBE_X(fle_s, "fle.s %0, ft0, ft1")
PROBE_F(fadd_d, "fadd.d ft3, ft0, ft1, rne")
PROBE_F(fsub_d, "fsub.d ft3, ft0, ft1, rne")
PROBE_F(fmul_d, "fmul.d ft3, ft0, ft1, rne")
PROBE_F(fdiv_d, "fdiv.d ft3, ft0, ft1, rne")
PROBE_F(fmin_d, "fmin.d ft3, ft0, ft1")
PROBE_F(fmax_d, "fmax.d ft3, ft0, ft1")
PROBE_X(feq_d, "feq.d %0, ft0, ft1")
PROBE_X(flt_d, "flt.d %0, ft0, ft1")
PROBE_X(fle_d, "fle.d %0, ft0, ft1")
PROBE_F(fsgnj_s, "fsgnj.s ft3, ft0, ft1")
PROBE_F(fsgnjn_s, "fsgnjn.s ft3, ft0, ft1")
PROBE_F(fsgnjx_s, "fsgnjx.s ft3, ft0, ft1")
PROBE_F(fsgnj_d, "fsgnj.d ft3, ft0, ft1")
PROBE_F(fsgnjn_d, "fsgnjn.d ft3, ft0, ft1")
PROBE_F(fsgnjx_d, "fsgnjx.d ft3, ft0, ft1")

static const struct op S_BINARY[] = {
    {"fadd.s", fadd_s}, {"fsub.s", fsub_s}, {"fmul.s", fmul_s}, {"fdiv.s", fdiv_s}, {"fmin.s", fmin_s},
    {"fmax.s", fmax_s}, {"feq.s", feq_s}, {"flt.s", flt_s}, {"fle.s", fle_s},
};
static const struct op D_BINARY[] = {
    {"fadd.d", fadd_d}, {"fsub.d", fsub_d}, {"fmul.d", fmul_d}, {"fdiv.d", fdiv_d}, {"fmin.d", fmin_d},
    {"fmax.d", fmax_d}, {"feq.d", feq_d}, {"flt.d", flt_d}, {"fle.d", fle_d},
};

/* One-operand operations over every edge value. */
PROBE_F(fsqrt_s, "fsqrt.s ft3, ft0, rne")
PROBE_X(fclass_s, "fclass.s %0, ft0")
PROBE_X(fcvt_w_s, "fcvt.w.s %0, ft0, rtz")
PROBE_X(fcvt_wu_s, "fcvt.wu.s %0, ft0, rtz")
PROBE_X(fcvt_l_s, "fcvt.l.s %0, ft0, rne")
PROBE_X(fcvt_lu_s, "fcvt.lu.s %0, ft0, rne")
PROBE_F(fcvt_d_s, "fcvt.d.s ft3, ft0")
PROBE_X(fmv_x_w, "fmv.x.w %0, ft0")
PROBE_F(fsqrt_d, "fsqrt.d ft3, ft0, rne")
PROBE_X(fclass_d, "fclass.d %0, ft0")
PROBE_X(fcvt_w_d, "fcvt.w.d %0, ft0, rtz")
PROBE_X(fcvt_wu_d, "fcvt.wu.d %0, ft0, rtz")
PROBE_X(fcvt_l_d, "fcvt.l.d %0, ft0, rne")
PROBE_X(fcvt_lu_d, "fcvt.lu.d %0, ft0, rne")
PROBE_F(fcvt_s_d, "fcvt.s.d ft3, ft0, rne")

static const struct op S_UNARY[] = {
    {"fsqrt.s", fsqrt_s}, {"fclass.s", fclass_s}, {"fcvt.w.s.rtz", fcvt_w_s}, {"fcvt.wu.s.rtz", fcvt_wu_s},
    {"fcvt.l.s", fcvt_l_s}, {"fcvt.lu.s", fcvt_lu_s}, {"fcvt.d.s", fcvt_d_s}, {"fmv.x.w", fmv_x_w},
};
static const struct op D_UNARY[] = {
    {"fsqrt.d", fsqrt_d}, {"fclass.d", fclass_d}, {"fcvt.w.d.rtz", fcvt_w_d}, {"fcvt.wu.d.rtz", fcvt_wu_d},
    {"fcvt.l.d", fcvt_l_d}, {"fcvt.lu.d", fcvt_lu_d}, {"fcvt.s.d", fcvt_s_d},
};

/* Every rounding mode, static and dynamic, on cases that round differently. */
#define RM_PROBES(base, insn_fmt)                                   \
    PROBE_F(base##_rne, insn_fmt ", rne") PROBE_F(base##_rtz, insn_fmt ", rtz") \
    PROBE_F(base##_rdn, insn_fmt ", rdn") PROBE_F(base##_rup, insn_fmt ", rup") \
    PROBE_F(base##_rmm, insn_fmt ", rmm") PROBE_F(base##_dyn, insn_fmt)
#define RM_PROBES_X(base, insn_fmt)                                 \
    PROBE_X(base##_rne, insn_fmt ", rne") PROBE_X(base##_rtz, insn_fmt ", rtz") \
    PROBE_X(base##_rdn, insn_fmt ", rdn") PROBE_X(base##_rup, insn_fmt ", rup") \
    PROBE_X(base##_rmm, insn_fmt ", rmm") PROBE_X(base##_dyn, insn_fmt)
#define RM_TABLE(base) {base##_rne, base##_rtz, base##_rdn, base##_rup, base##_rmm, base##_dyn}

RM_PROBES(rm_fadd_s, "fadd.s ft3, ft0, ft1")
RM_PROBES(rm_fsub_d, "fsub.d ft3, ft0, ft1")
RM_PROBES(rm_fmul_d, "fmul.d ft3, ft0, ft1")
RM_PROBES(rm_fdiv_s, "fdiv.s ft3, ft0, ft1")
RM_PROBES(rm_fsqrt_d, "fsqrt.d ft3, ft0")
RM_PROBES(rm_fmadd_d, "fmadd.d ft3, ft0, ft1, ft2")
RM_PROBES(rm_fmsub_s, "fmsub.s ft3, ft0, ft1, ft2")
RM_PROBES(rm_fnmadd_d, "fnmadd.d ft3, ft0, ft1, ft2")
RM_PROBES(rm_fnmsub_d, "fnmsub.d ft3, ft0, ft1, ft2")
RM_PROBES(rm_fcvt_s_d, "fcvt.s.d ft3, ft0")
RM_PROBES(rm_fcvt_s_l, "fcvt.s.l ft3, %2")
RM_PROBES(rm_fcvt_d_lu, "fcvt.d.lu ft3, %2")
RM_PROBES(rm_fcvt_s_wu, "fcvt.s.wu ft3, %2")
RM_PROBES_X(rm_fcvt_w_d, "fcvt.w.d %0, ft0")
RM_PROBES_X(rm_fcvt_lu_s, "fcvt.lu.s %0, ft0")

struct rm_case { const char *name; probe fn[6]; uint64_t a, b, c; };
static const char *const RM_NAMES[] = {"rne", "rtz", "rdn", "rup", "rmm", "dyn"};

static const struct rm_case RM_CASES[] = {
    /* 1 + 2^-24 (a tie), and its negation */
    {"fadd.s", RM_TABLE(rm_fadd_s), BOX(0x3f800000), BOX(0x33800000), 0},
    {"fadd.s", RM_TABLE(rm_fadd_s), BOX(0xbf800000), BOX(0xb3800000), 0},
    {"fadd.s", RM_TABLE(rm_fadd_s), BOX(0x3f800000), BOX(0x33c00000), 0},
    /* max + max overflows; x - x is -0 rounding down */
    {"fadd.s", RM_TABLE(rm_fadd_s), BOX(0x7f7fffff), BOX(0x7f7fffff), 0},
    {"fsub.d", RM_TABLE(rm_fsub_d), 0x3ff0000000000000ull, 0x3ff0000000000000ull, 0},
    {"fsub.d", RM_TABLE(rm_fsub_d), 0x8000000000000000ull, 0x0000000000000000ull, 0},
    {"fmul.d", RM_TABLE(rm_fmul_d), 0x3fb999999999999aull, 0x4008000000000000ull, 0},
    {"fmul.d", RM_TABLE(rm_fmul_d), 0xffefffffffffffffull, 0x4000000000000000ull, 0},
    /* subnormal results: tiny and inexact, tiny and exact */
    {"fmul.d", RM_TABLE(rm_fmul_d), 0x0000000000000003ull, 0x3fe0000000000000ull, 0},
    {"fmul.d", RM_TABLE(rm_fmul_d), 0x0010000000000000ull, 0x3fe0000000000000ull, 0},
    {"fmul.d", RM_TABLE(rm_fmul_d), 0x0010000000000001ull, 0x3fefffffffffffffull, 0},
    {"fdiv.s", RM_TABLE(rm_fdiv_s), BOX(0x3f800000), BOX(0x40400000), 0},
    {"fdiv.s", RM_TABLE(rm_fdiv_s), BOX(0xbf800000), BOX(0x40400000), 0},
    {"fdiv.s", RM_TABLE(rm_fdiv_s), BOX(0x00800000), BOX(0x4b000000), 0},
    {"fsqrt.d", RM_TABLE(rm_fsqrt_d), 0x4000000000000000ull, 0, 0},
    {"fsqrt.d", RM_TABLE(rm_fsqrt_d), 0xbff0000000000000ull, 0, 0},
    /* fused: 0.1 * 3 + -0.3 in one rounding; inf * 0 + qNaN; zero results' signs */
    {"fmadd.d", RM_TABLE(rm_fmadd_d), 0x3fb999999999999aull, 0x4008000000000000ull, 0xbfd3333333333333ull},
    {"fmadd.d", RM_TABLE(rm_fmadd_d), 0x7ff0000000000000ull, 0x0000000000000000ull, 0x7ff8000000000000ull},
    {"fmadd.d", RM_TABLE(rm_fmadd_d), 0x3ff0000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull},
    {"fmadd.d", RM_TABLE(rm_fmadd_d), 0x7fefffffffffffffull, 0x7fefffffffffffffull, 0xfff0000000000000ull},
    {"fmsub.s", RM_TABLE(rm_fmsub_s), BOX(0x3dcccccd), BOX(0x41200000), BOX(0x3f800000)},
    {"fmsub.s", RM_TABLE(rm_fmsub_s), BOX(0x00000000), BOX(0x3f800000), BOX(0x00000000)},
    {"fnmadd.d", RM_TABLE(rm_fnmadd_d), 0x0000000000000000ull, 0x3ff0000000000000ull, 0x0000000000000000ull},
    {"fnmadd.d", RM_TABLE(rm_fnmadd_d), 0x4000000000000000ull, 0x4008000000000000ull, 0x3ff0000000000000ull},
    {"fnmsub.d", RM_TABLE(rm_fnmsub_d), 0x0000000000000000ull, 0x3ff0000000000000ull, 0x0000000000000000ull},
    {"fnmsub.d", RM_TABLE(rm_fnmsub_d), 0x7ff0000000000001ull, 0x3ff0000000000000ull, 0x0000000000000000ull},
    {"fcvt.s.d", RM_TABLE(rm_fcvt_s_d), 0x3fb999999999999aull, 0, 0},
    {"fcvt.s.d", RM_TABLE(rm_fcvt_s_d), 0x47efffffffffffffull, 0, 0},
    {"fcvt.s.d", RM_TABLE(rm_fcvt_s_d), 0x36a0000000000000ull, 0, 0},
    {"fcvt.s.d", RM_TABLE(rm_fcvt_s_d), 0x7ff0000000000001ull, 0, 0},
    {"fcvt.s.l", RM_TABLE(rm_fcvt_s_l), 0x7fffffffffffffffull, 0, 0},
    {"fcvt.s.l", RM_TABLE(rm_fcvt_s_l), 0xff00000000000001ull, 0, 0},
    {"fcvt.d.lu", RM_TABLE(rm_fcvt_d_lu), 0xffffffffffffffffull, 0, 0},
    {"fcvt.s.wu", RM_TABLE(rm_fcvt_s_wu), 0x12345678ffffffffull, 0, 0},
    {"fcvt.w.d", RM_TABLE(rm_fcvt_w_d), 0x4004000000000000ull, 0, 0},
    {"fcvt.w.d", RM_TABLE(rm_fcvt_w_d), 0xc004000000000000ull, 0, 0},
    {"fcvt.w.d", RM_TABLE(rm_fcvt_w_d), 0x41dfffffffe00000ull, 0, 0},
    {"fcvt.w.d", RM_TABLE(rm_fcvt_w_d), 0xc1e0000000100000ull, 0, 0},
    {"fcvt.lu.s", RM_TABLE(rm_fcvt_lu_s), BOX(0xbf000000), 0, 0},
    {"fcvt.lu.s", RM_TABLE(rm_fcvt_lu_s), BOX(0x5f800000), 0, 0},
};

static void set_frm(uint64_t rm) { __asm__ volatile("fsrm %0" ::"r"(rm)); }

static uint64_t mstatus(void)
{
    uint64_t v;
    __asm__ volatile("csrr %0, mstatus" : "=r"(v));
    return v;
}

static void set_fs(uint64_t fs)
{
    __asm__ volatile("csrc mstatus, %0\n csrs mstatus, %1" ::"r"(MSTATUS_FS), "r"(fs << 13));
}

static void show_fs(const char *after)
{
    uint64_t s = mstatus();
    printf("after %s: FS=%lu SD=%lu\n", after, (s & MSTATUS_FS) >> 13, s >> 63);
}

/* With FS = Off every F/D instruction and the FP CSRs are illegal (mtval = the bits). */
PROBE_F(off_fadd_d, "fadd.d ft3, ft0, ft1")
PROBE_F(off_flw, "flw ft3, 0(sp)")
PROBE_X(off_fsd, "fsd ft0, -8(sp)")
PROBE_X(off_fmv_x_w, "fmv.x.w %0, ft0")
static uint64_t off_csr(int which)
{
    uint64_t r = 0x5a5a5a5a5a5a5a5aull;
    trap_count = 0;
    if (which == 0)
        __asm__ volatile(NORVC("frflags %0") : "+&r"(r)::"t0", "t1", "memory");
    else if (which == 1)
        __asm__ volatile(NORVC("fsrm zero, zero") ::: "t0", "t1", "memory");
    else
        __asm__ volatile(NORVC("frcsr %0") : "+&r"(r)::"t0", "t1", "memory");
    return r;
}

/* Probes that run with FS = Off: each traps before touching fflags, so flags keep their marker. */
static void fs_off(void)
{
    set_fs(0);
    show_fs("reset FS=0");
    /* ft0..ft2 are set by fmv.d.x inside the probe, which itself traps: use raw words instead. */
    static const struct { const char *name; uint32_t word; } words[] = {
        {"fadd.d", 0x021071d3}, {"flw", 0x00012187}, {"fsd", 0xfe013c27}, {"fmv.x.w", 0xe00007d3},
        {"fcvt.d.w", 0xd20001d3}, {"c.fld", 0x2000},
    };
    for (unsigned i = 0; i < sizeof words / sizeof words[0]; i++) {
        uint32_t w = words[i].word;
        trap_count = 0;
        /* The probe's instruction is patched into a 4-byte slot (c.fld is followed by c.nop). */
        static uint32_t slot[2] __attribute__((aligned(4)));
        slot[0] = (w & 3) == 3 ? w : (w | 0x00010000u);
        slot[1] = 0x00008067; /* ret */
        __asm__ volatile("fence.i\n jalr %0" ::"r"(slot) : "ra", "t0", "t1", "memory");
        printf("FS=0 %s: traps=%lu mcause=%lu mtval=0x%lx\n", words[i].name, trap_count, trap_cause, trap_tval);
    }
    for (int c = 0; c < 3; c++) {
        off_csr(c);
        static const char *const n[] = {"frflags", "fsrm", "frcsr"};
        printf("FS=0 %s: traps=%lu mcause=%lu mtval=0x%lx\n", n[c], trap_count, trap_cause, trap_tval);
    }
    (void)off_fadd_d;
    (void)off_flw;
    (void)off_fsd;
    (void)off_fmv_x_w;
}

PROBE_F(flw_probe, "flw ft3, 0(%4)")
PROBE_F(fld_probe, "fld ft3, 0(%4)")
PROBE_X(fsw_probe, "fsw ft0, 0(%4)")
PROBE_X(fsd_probe, "fsd ft0, 0(%4)")
PROBE_F(fmv_w_x, "fmv.w.x ft3, %2")
PROBE_F(fmv_s, "fmv.s ft3, ft0")
PROBE_X(fclass_probe, "fclass.s %0, ft0")
PROBE_F(fcvt_d_s_probe, "fcvt.d.s ft3, ft0")
PROBE_F(fadd_s_probe, "fadd.s ft3, ft0, ft0")
PROBE_F(fmin_s_probe, "fmin.s ft3, ft0, ft1")

static void dirty_tracking(void)
{
    static volatile uint64_t mem[2];
    set_fs(1);
    show_fs("FS=1");
    uint64_t v;
    __asm__ volatile("frcsr %0" : "=r"(v));
    show_fs("frcsr");
    mem[0] = 0x1122334455667788ull;
    fsw_probe(BOX(0x3f800000), 0, (uint64_t)&mem[1]); /* its own fmv.d.x already dirties */
    show_fs("fmv.d.x + fsw");
    set_fs(2);
    show_fs("FS=2");
    __asm__ volatile("fmv.x.w %0, ft0" : "=r"(v));
    show_fs("fmv.x.w");
    __asm__ volatile("fsd ft0, 0(%0)" ::"r"(&mem[1]) : "memory");
    show_fs("fsd");
    __asm__ volatile("fclass.d %0, ft0" : "=r"(v));
    show_fs("fclass.d");
    __asm__ volatile("fmv.w.x ft4, zero" ::: "ft4");
    show_fs("fmv.w.x");
    set_fs(1);
    __asm__ volatile("flw ft4, 0(%0)" ::"r"(&mem[0]) : "ft4");
    show_fs("flw");
    set_fs(2);
    __asm__ volatile("csrwi fflags, 0");
    show_fs("csrwi fflags");
    set_fs(1);
    __asm__ volatile("fsrmi 0");
    show_fs("fsrmi");
    set_fs(3);

    /* Loads NaN-box; stores take the low bits; fmv.w.x boxes. */
    mem[0] = 0x1122334455667788ull;
    show("flw", 0, 0, 0, flw_probe(0, 0, (uint64_t)&mem[0]));
    show("fld", 0, 0, 0, fld_probe(0, 0, (uint64_t)&mem[0]));
    mem[1] = 0;
    fsw_probe(0xaabbccdd3f800000ull, 0, (uint64_t)&mem[1]);
    printf("fsw of an unboxed value stores 0x%lx\n", mem[1]);
    fsd_probe(0xaabbccdd3f800000ull, 0, (uint64_t)&mem[1]);
    printf("fsd stores 0x%lx\n", mem[1]);
    show("fmv.w.x", 0x12345678deadbeefull, 0, 0, fmv_w_x(0x12345678deadbeefull, 0, 0));
    /* A single that is not NaN-boxed reads as the canonical NaN. */
    static const uint64_t unboxed[] = {0x000000003f800000ull, 0xfffffffe3f800000ull, 0x7fffffff3f800000ull};
    for (unsigned i = 0; i < 3; i++) {
        uint64_t u = unboxed[i];
        show("fmv.s", u, 0, 0, fmv_s(u, 0, 0));
        show("fclass.s", u, 0, 0, fclass_probe(u, 0, 0));
        show("fcvt.d.s", u, 0, 0, fcvt_d_s_probe(u, 0, 0));
        show("fadd.s", u, 0, 0, fadd_s_probe(u, 0, 0));
        show("fmin.s", u, BOX(0x40000000), 0, fmin_s_probe(u, BOX(0x40000000), 0));
        show("fmv.x.w", u, 0, 0, fmv_x_w(u, 0, 0));
    }
}

PROBE_F(dyn_fadd_d, "fadd.d ft3, ft0, ft1")
PROBE_F(dyn_fcvt_d_w, "fcvt.d.w ft3, %2")
PROBE_F(dyn_fcvt_d_wu, "fcvt.d.wu ft3, %2")
PROBE_F(dyn_fcvt_d_s, "fcvt.d.s ft3, ft0")
PROBE_F(static_fadd_d, "fadd.d ft3, ft0, ft1, rtz")

static void invalid_rounding(void)
{
    for (uint64_t rm = 5; rm <= 7; rm++) {
        set_frm(rm);
        uint64_t r = dyn_fadd_d(0x3ff0000000000000ull, 0x3ca0000000000000ull, 0);
        printf("frm=%lu ", rm);
        show("fadd.d dyn", 0, 0, 0, r);
        r = dyn_fcvt_d_w(7, 0, 0);
        printf("frm=%lu ", rm);
        show("fcvt.d.w dyn", 0, 0, 0, r);
        r = dyn_fcvt_d_wu(7, 0, 0);
        printf("frm=%lu ", rm);
        show("fcvt.d.wu dyn", 0, 0, 0, r);
        r = dyn_fcvt_d_s(BOX(0x3f800000), 0, 0);
        printf("frm=%lu ", rm);
        show("fcvt.d.s dyn", 0, 0, 0, r);
        r = static_fadd_d(0x3ff0000000000000ull, 0x3ca0000000000001ull, 0);
        printf("frm=%lu ", rm);
        show("fadd.d rtz", 0, 0, 0, r);
    }
    set_frm(0);
    /* The reserved static modes 5 and 6: fadd.d ft3, ft0, ft1; fcvt.d.w ft3, x0; fcvt.d.s ft3, ft0. */
    static const uint32_t reserved[] = {0x021051d3, 0x021061d3, 0xd20051d3, 0xd20061d3, 0x420051d3, 0x420061d3};
    for (unsigned i = 0; i < 6; i++) {
        static uint32_t slot[2] __attribute__((aligned(4)));
        slot[0] = reserved[i];
        slot[1] = 0x00008067;
        trap_count = 0;
        __asm__ volatile("fence.i\n jalr %0" ::"r"(slot) : "ra", "t0", "t1", "memory");
        printf("%08x: traps=%lu mcause=%lu mtval=0x%lx\n", reserved[i], trap_count, trap_cause, trap_tval);
    }
    uint64_t fcsr;
    __asm__ volatile("fscsr %0, %1" : "=r"(fcsr) : "r"(0xffffull));
    __asm__ volatile("frcsr %0" : "=r"(fcsr));
    printf("fcsr after writing 0xffff: 0x%lx\n", fcsr);
    __asm__ volatile("fscsr zero");
}

int main(void)
{
    __asm__ volatile("csrw mtvec, %0" ::"r"(fpu_trap));
    fs_off();
    dirty_tracking();
    invalid_rounding();

    for (unsigned o = 0; o < sizeof S_BINARY / sizeof S_BINARY[0]; o++)
        for (unsigned i = 0; i < NVALS; i++)
            for (unsigned j = 0; j < NVALS; j++)
                if ((i + j) % 3 == 0)
                    show(S_BINARY[o].name, S_VALS[i], S_VALS[j], 0, S_BINARY[o].fn(S_VALS[i], S_VALS[j], 0));
    for (unsigned o = 0; o < sizeof D_BINARY / sizeof D_BINARY[0]; o++)
        for (unsigned i = 0; i < NVALS; i++)
            for (unsigned j = 0; j < NVALS; j++)
                if ((i + j) % 3 == 0)
                    show(D_BINARY[o].name, D_VALS[i], D_VALS[j], 0, D_BINARY[o].fn(D_VALS[i], D_VALS[j], 0));
    static const struct op SIGNS[] = {
        {"fsgnj.s", fsgnj_s}, {"fsgnjn.s", fsgnjn_s}, {"fsgnjx.s", fsgnjx_s},
        {"fsgnj.d", fsgnj_d}, {"fsgnjn.d", fsgnjn_d}, {"fsgnjx.d", fsgnjx_d},
    };
    static const uint64_t SIGN_VALS[] = {
        BOX(0x3f800000), BOX(0xbf800000), BOX(0x7fc00000), 0x000000003f800000ull,
        0x3ff0000000000000ull, 0xbff0000000000000ull, 0xfff0000000000001ull,
    };
    for (unsigned o = 0; o < 6; o++)
        for (unsigned i = 0; i < 7; i++)
            for (unsigned j = 0; j < 7; j++)
                show(SIGNS[o].name, SIGN_VALS[i], SIGN_VALS[j], 0, SIGNS[o].fn(SIGN_VALS[i], SIGN_VALS[j], 0));
    for (unsigned o = 0; o < sizeof S_UNARY / sizeof S_UNARY[0]; o++)
        for (unsigned i = 0; i < NVALS; i++)
            show(S_UNARY[o].name, S_VALS[i], 0, 0, S_UNARY[o].fn(S_VALS[i], 0, 0));
    for (unsigned o = 0; o < sizeof D_UNARY / sizeof D_UNARY[0]; o++)
        for (unsigned i = 0; i < NVALS; i++)
            show(D_UNARY[o].name, D_VALS[i], 0, 0, D_UNARY[o].fn(D_VALS[i], 0, 0));

    for (unsigned k = 0; k < sizeof RM_CASES / sizeof RM_CASES[0]; k++) {
        const struct rm_case *c = &RM_CASES[k];
        for (unsigned m = 0; m < 6; m++) {
            /* dyn runs under each valid frm; the static ones under frm = 7, which they ignore. */
            unsigned runs = m == 5 ? 5 : 1;
            for (unsigned f = 0; f < runs; f++) {
                set_frm(m == 5 ? f : 7);
                uint64_t r = c->fn[m](c->a, c->b, c->c);
                printf("%s.%s", c->name, RM_NAMES[m]);
                if (m == 5)
                    printf("(frm=%u)", f);
                show("", c->a, c->b, c->c, r);
            }
        }
    }
    set_frm(0);
    print("fpu: done\n");
    return 0;
}
