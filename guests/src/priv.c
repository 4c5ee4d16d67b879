/* Privileged architecture (spec 1.12) on M, S and U with satp = Bare: WARL readbacks, trap
 * delegation, xRET round trips, trap CSR values, the illegal accesses (CSR privilege, sret/mret
 * below their level, TSR, TVM, TW), counter enables, and interrupts delegated to and taken in S.
 * One line per check; the output is compared with QEMU's.
 *
 * run_in(mode, fn) enters fn in U or S with mret; fn returns into an ebreak with a7 = DONE, which
 * the M handler answers by resuming run_in's caller. Every other trap is recorded (in mt for M,
 * st for S): exceptions resume after the faulting instruction, interrupts clear their enable bit.
 * Readbacks print only the bits QEMU and vmhost share: QEMU's rv64 also has A, F, D and H. */
#include "runtime.h"

#define DONE 0xd0e

#define MSTATUS_SIE  (1ull << 1)
#define MSTATUS_MIE  (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP  (1ull << 8)
#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_MXR  (1ull << 19)
#define MSTATUS_TVM  (1ull << 20)
#define MSTATUS_TW   (1ull << 21)
#define MSTATUS_TSR  (1ull << 22)
#define IRQ (1ull << 63)
#define SSIP (1ull << 1)
#define MSIP_BIT (1ull << 3)
#define STIP (1ull << 5)
#define MTIP (1ull << 7)
#define SEIP (1ull << 9)

#define CLINT_MSIP     (*(volatile uint32_t *)(CLINT_BASE + 0x0))
#define CLINT_MTIMECMP (*(volatile uint64_t *)(CLINT_BASE + 0x4000))

#define STR_(x) #x
#define STR(x) STR_(x)
#define csrr(csr) ({ uint64_t v_; __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csrw(csr, v) __asm__ volatile("csrw " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define csrs(csr, v) __asm__ volatile("csrs " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define csrc(csr, v) __asm__ volatile("csrc " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
/* Runs insn and returns its address (for the expected epc). */
#define AT(insn) ({ uint64_t at_; __asm__ volatile("lla %0, 1f\n1: " insn "\n" : "=&r"(at_) :: "memory"); at_; })

struct trap { uint64_t cause, epc, tval, status, count; };
volatile struct trap mt, st;
uint64_t m_regs[32], s_regs[32];
uint64_t run_ctx[16];
volatile uint64_t want_epc;         /* set by the code under test */
volatile uint64_t order[8];         /* interrupt causes in the order taken: 'M' or 'S' << 8 | code */
volatile unsigned norder;
volatile uint64_t seen;             /* a value the code under test reports back */
uint64_t cur_fn;                    /* the function run_in entered */

void run_in(uint64_t mode, void (*fn)(void));

__asm__(
    ".text\n .balign 4\n .globl m_trap_entry\n m_trap_entry:\n"
    " csrw mscratch, t0\n lla t0, m_regs\n"
    " .irp n, 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " sd x\\n, \\n*8(t0)\n .endr\n"
    " csrr t1, mscratch\n sd t1, 40(t0)\n"
    " lla sp, m_stack_top\n mv a0, t0\n call m_handler\n bnez a0, 2f\n"
    " lla t0, m_regs\n"
    " .irp n, 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " ld x\\n, \\n*8(t0)\n .endr\n"
    " ld t0, 40(t0)\n mret\n"
    "2: lla t0, run_ctx\n ld ra, 0(t0)\n ld sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n ld s\\n, 16+\\n*8(t0)\n .endr\n ret\n"

    " .balign 4\n .globl s_trap_entry\n s_trap_entry:\n"
    " csrw sscratch, t0\n lla t0, s_regs\n"
    " .irp n, 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " sd x\\n, \\n*8(t0)\n .endr\n"
    " csrr t1, sscratch\n sd t1, 40(t0)\n"
    " lla sp, s_stack_top\n mv a0, t0\n call s_handler\n"
    " lla t0, s_regs\n"
    " .irp n, 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " ld x\\n, \\n*8(t0)\n .endr\n"
    " ld t0, 40(t0)\n sret\n"

    /* a0 = mode (0 = U, 1 = S), a1 = the function. */
    " .globl run_in\n run_in:\n lla t0, run_ctx\n sd ra, 0(t0)\n sd sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n sd s\\n, 16+\\n*8(t0)\n .endr\n"
    " li t1, 0x1880\n csrc mstatus, t1\n slli a0, a0, 11\n csrs mstatus, a0\n"
    " csrw mepc, a1\n lla sp, low_stack_top\n lla ra, low_done\n mret\n"
    "low_done:\n li a7, 0xd0e\n ebreak\n"

    /* Vectored stvec: entry n records n in vec_hit, then the common handler runs. */
    " .balign 256\n .globl s_vectors\n s_vectors:\n .option push\n .option norvc\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9\n j s_vec\\n\n .endr\n .option pop\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9\n s_vec\\n: csrw sscratch, t0\n li t0, \\n\n j s_vec_common\n .endr\n"
    "s_vec_common:\n sd t0, vec_hit, t1\n csrr t0, sscratch\n j s_trap_entry\n"

    " .section .bss\n .balign 16\n .space 4096\n m_stack_top:\n .space 4096\n s_stack_top:\n"
    " .space 8192\n low_stack_top:\n .text\n");

extern char m_trap_entry[], s_trap_entry[], s_vectors[];
volatile uint64_t vec_hit;

static unsigned insn_len(uint64_t pc) { return (*(volatile uint16_t *)pc & 3) == 3 ? 4 : 2; }

uint64_t m_handler(uint64_t *regs)
{
    uint64_t cause = csrr(mcause);
    if (cause == 3 && regs[17] == DONE)
        return 1;
    mt.cause = cause;
    mt.epc = csrr(mepc);
    mt.tval = csrr(mtval);
    mt.status = csrr(mstatus);
    mt.count++;
    if (cause & IRQ) {
        csrc(mie, 1ull << (cause & 63));
        if (norder < 8)
            order[norder++] = ('M' << 8) | (cause & 63);
    } else {
        csrw(mepc, mt.epc + insn_len(mt.epc));
    }
    return 0;
}

void s_handler(uint64_t *regs)
{
    (void)regs;
    uint64_t cause = csrr(scause);
    st.cause = cause;
    st.epc = csrr(sepc);
    st.tval = csrr(stval);
    st.status = csrr(sstatus);
    st.count++;
    if (cause & IRQ) {
        csrc(sie, 1ull << (cause & 63));
        if (norder < 8)
            order[norder++] = ('S' << 8) | (cause & 63);
    } else {
        csrw(sepc, st.epc + insn_len(st.epc));
    }
}

static void reset(void)
{
    memset((void *)&mt, 0, sizeof mt);
    memset((void *)&st, 0, sizeof st);
    norder = 0;
    want_epc = 0;
    seen = 0;
}

static const char *mode_name(uint64_t m) { return m == 0 ? "U" : m == 1 ? "S" : m == 3 ? "M" : "?"; }

static const char *epc_name(uint64_t epc)
{
    if (epc == want_epc)
        return "ok";
    if (epc == cur_fn)
        return "entry";
    return "bad";
}

/* One line for the last trap: who took it, the cause, the epc against want_epc, tval, and the
   privilege it came from (MPP or SPP). */
static void report(const char *what)
{
    printf("%s:", what);
    if (mt.count) {
        printf(" M cause=0x%lx epc=%s tval=0x%lx from=%s", mt.cause, epc_name(mt.epc), mt.tval,
               mode_name((mt.status >> 11) & 3));
        if (mt.count != 1)
            printf(" mtraps=%u", (unsigned)mt.count);
    }
    if (st.count) {
        printf(" S cause=0x%lx epc=%s tval=0x%lx from=%s", st.cause, epc_name(st.epc), st.tval,
               (st.status & MSTATUS_SPP) ? "S" : "U");
        if (st.count != 1)
            printf(" straps=%u", (unsigned)st.count);
    }
    if (!mt.count && !st.count)
        print(" no trap");
    print("\n");
}

static void run(const char *what, uint64_t mode, void (*fn)(void))
{
    reset();
    cur_fn = (uint64_t)fn;
    run_in(mode, fn);
    report(what);
}

/* ---- code run in U or S ---- */
static void do_ecall(void) { want_epc = AT("ecall"); }
static void do_ebreak(void) { want_epc = AT("ebreak"); }
static void do_sret(void) { want_epc = AT("sret"); }
static void do_mret(void) { want_epc = AT("mret"); }
static void do_wfi(void) { want_epc = AT("wfi"); }
static void do_sfence(void) { want_epc = AT("sfence.vma"); }
static void do_sfence_a(void) { want_epc = AT("sfence.vma a0, zero"); }
static void rd_sstatus(void) { want_epc = AT("csrr t0, sstatus"); }
static void rd_mstatus(void) { want_epc = AT("csrr t0, mstatus"); }
static void wr_sscratch(void) { want_epc = AT("csrw sscratch, zero"); }
static void rd_satp(void) { want_epc = AT("csrr t0, satp"); }
static void wr_satp(void) { want_epc = AT("csrw satp, zero"); }
static void rd_cycle(void) { want_epc = AT("csrr t0, cycle"); }
static void rd_time(void) { want_epc = AT("csrr t0, time"); }
static void rd_instret(void) { want_epc = AT("csrr t0, instret"); }
static void rd_mhartid(void) { want_epc = AT("csrr t0, mhartid"); }
static void wr_cycle(void) { want_epc = AT("csrw cycle, zero"); }
static void rd_scounteren(void) { want_epc = AT("csrr t0, scounteren"); }
static void rd_c_illegal(void) { want_epc = AT(".2byte 0"); }
static void rd_illegal32(void) { want_epc = AT(".4byte 0xffffffff"); }

/* S-mode: SSIP raised by S itself through sip, taken when SIE is set. */
static void s_soft_irq(void)
{
    csrs(sie, SSIP);
    csrs(sip, SSIP);
    seen = csrr(sip) & SSIP;     /* pending, SIE = 0: not taken yet */
    uint64_t at;
    __asm__ volatile("lla %0, 1f\n csrs sstatus, %1\n 1: nop" : "=&r"(at) : "r"(MSTATUS_SIE) : "memory");
    want_epc = at;               /* taken right after the csrs */
    csrc(sstatus, MSTATUS_SIE);
    csrc(sip, SSIP);
}

/* S-mode: interrupts pending on entry are taken before the first instruction; this records the
   sstatus the handler returned to. */
static void s_irq_on_entry(void)
{
    uint64_t at;
    __asm__ volatile("lla %0, 1f\n csrs sstatus, %1\n 1: nop" : "=&r"(at) : "r"(MSTATUS_SIE) : "memory");
    want_epc = at;
    csrc(sstatus, MSTATUS_SIE);
}

static void u_nothing(void) { __asm__ volatile("nop"); }

/* In S: sret with SPP = U, SPIE = 1 and SIE = 0 into a U-mode "ret" (ra is still run_in's
   low_done, so U finishes the run). */
void s_sret_to_u(void);
__asm__(".text\n .balign 4\n s_sret_to_u:\n li t0, 0x102\n csrc sstatus, t0\n li t0, 0x20\n"
        " csrs sstatus, t0\n lla t0, 1f\n csrw sepc, t0\n sret\n 1: ret\n");

static void s_wfi_masked(void)
{
    /* SSIP delegated, pending and enabled in sie, but SIE = 0: wfi finishes at once, no trap. */
    csrs(sie, SSIP);
    csrs(sip, SSIP);
    __asm__ volatile("wfi");
    seen = 1;
    csrc(sip, SSIP);
}

/* ---- checks run in M ---- */
static void warl(void)
{
    uint64_t misa = csrr(misa);
    uint64_t ext = 0;
    for (const char *c = "IMCSU"; *c; c++)
        ext |= 1ull << (*c - 'A');
    printf("misa: mxl=%lu IMCSU=0x%lx\n", misa >> 62, misa & ext);
    csrw(misa, 0);
    printf("misa after write 0: same=%u\n", csrr(misa) == misa);

    uint64_t keep = csrr(mstatus);
    uint64_t fields = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |
                      MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;
    csrs(mstatus, fields & ~MSTATUS_MIE);
    printf("mstatus set fields: 0x%lx\n", csrr(mstatus) & fields);
    printf("mstatus uxl=%lu sxl=%lu\n", (csrr(mstatus) >> 32) & 3, (csrr(mstatus) >> 34) & 3);
    printf("sstatus view: 0x%lx\n", csrr(sstatus) & fields);
    csrc(sstatus, ~0ull);
    printf("sstatus cleared, mstatus: 0x%lx\n", csrr(mstatus) & fields);
    printf("sstatus uxl=%lu\n", (csrr(sstatus) >> 32) & 3);
    csrw(mstatus, keep);                /* MPRV off before MPP changes: prints use the UART */
    /* MPP = 2 (reserved) is left out: QEMU 7.2 keeps it, vmhost keeps the old value. */
    for (uint64_t mpp = 0; mpp < 4; mpp += 1 + (mpp == 1)) {
        csrc(mstatus, MSTATUS_MPP);
        csrs(mstatus, MSTATUS_MPP);     /* from M */
        csrc(mstatus, MSTATUS_MPP);
        csrs(mstatus, mpp << 11);
        printf("mpp write %lu reads %lu\n", mpp, (csrr(mstatus) >> 11) & 3);
    }
    csrw(mstatus, keep);

    csrw(medeleg, ~0ull);
    printf("medeleg: 0x%lx\n", csrr(medeleg) & 0xb3ff);
    csrw(medeleg, 0);
    csrw(mideleg, ~0ull);
    printf("mideleg: 0x%lx\n", csrr(mideleg) & 0xaaa);
    csrw(mideleg, 0);
    printf("mideleg cleared: 0x%lx\n", csrr(mideleg) & 0xaaa);
    csrw(mie, ~0ull);
    printf("mie: 0x%lx\n", csrr(mie) & 0xaaa);
    printf("sie (nothing delegated): 0x%lx\n", csrr(sie));
    csrw(mideleg, SSIP | STIP | SEIP);
    printf("sie (S delegated): 0x%lx\n", csrr(sie) & 0xaaa);
    csrw(sie, 0);
    printf("sie cleared, mie: 0x%lx\n", csrr(mie) & 0xaaa);
    csrw(mie, 0);
    csrw(mip, ~0ull);
    printf("mip written all ones: 0x%lx\n", csrr(mip) & 0xaaa);
    printf("sip: 0x%lx\n", csrr(sip) & 0xaaa);
    csrc(sip, ~0ull);
    printf("sip cleared, mip: 0x%lx\n", csrr(mip) & 0xaaa);
    csrw(mip, 0);
    csrw(mideleg, 0);
    csrs(mip, SSIP);
    printf("sip with SSIP not delegated: 0x%lx\n", csrr(sip));
    csrw(mip, 0);

    csrw(stvec, 0x80001003);
    printf("stvec mode 3: 0x%lx\n", csrr(stvec));
    csrw(stvec, 0x80001001);
    printf("stvec vectored: 0x%lx\n", csrr(stvec));
    csrw(sepc, ~1ull);                  /* bit 0: QEMU 7.2 keeps it, the spec and vmhost do not */
    printf("sepc: 0x%lx\n", csrr(sepc));
    csrw(sscratch, 0x1234);
    printf("sscratch: 0x%lx\n", csrr(sscratch));
    csrw(scause, ~0ull);
    printf("scause: 0x%lx\n", csrr(scause));
    csrw(stval, ~0ull);
    printf("stval: 0x%lx\n", csrr(stval));
    csrw(satp, 0);
    printf("satp bare: 0x%lx\n", csrr(satp));
    csrw(mcounteren, ~0ull);
    printf("mcounteren: 0x%lx\n", csrr(mcounteren) & 7);
    csrw(scounteren, ~0ull);
    printf("scounteren: 0x%lx\n", csrr(scounteren) & 7);
    csrw(mcounteren, 0);
    csrw(scounteren, 0);
    csrw(0x30a, ~0ull);
    printf("menvcfg fiom: 0x%lx\n", csrr(0x30a) & 1);
    csrw(0x30a, 0);
    csrw(0x10a, ~0ull);
    printf("senvcfg fiom: 0x%lx\n", csrr(0x10a) & 1);
    csrw(0x10a, 0);
    printf("mconfigptr: 0x%lx\n", csrr(0xf15));
}

static void pmp(void)
{
    /* Entry 0: NAPOT over everything, RWX, so S and U may reach all of memory. */
    csrw(pmpaddr0, ~0ull);
    csrw(pmpcfg0, 0x1f);
    printf("pmpaddr0: 0x%lx\n", csrr(pmpaddr0));
    printf("pmpcfg0: 0x%lx\n", csrr(pmpcfg0));
    /* Entry 1: W without R; entry 2: reserved bits 5-6; entry 3: TOR, R only. */
    csrw(pmpcfg0, 0x0d00601e001fULL);
    printf("pmpcfg0 patterns: 0x%lx\n", csrr(pmpcfg0));
    csrw(pmpcfg2, 0x0102030405060708ULL);
    printf("pmpcfg2: 0x%lx\n", csrr(pmpcfg2));
    csrw(pmpcfg2, 0);
    csrw(pmpaddr1, 0x12345678);
    csrw(pmpaddr15, 0xabcdef);
    printf("pmpaddr1: 0x%lx pmpaddr15: 0x%lx\n", csrr(pmpaddr1), csrr(pmpaddr15));
    /* Entry 7: locked TOR over the empty range [pmpaddr6, pmpaddr7 = 0): its cfg and address,
       and pmpaddr6 (its TOR base), no longer change. */
    csrw(pmpaddr6, 0x1000);
    csrw(pmpaddr7, 0);
    csrs(pmpcfg0, 0x88ull << 56);
    csrw(pmpaddr7, 0x5000);
    csrw(pmpaddr6, 0x2000);
    csrc(pmpcfg0, 0xffull << 56);
    printf("locked: pmpcfg0 entry 7 0x%lx pmpaddr6 0x%lx pmpaddr7 0x%lx\n", csrr(pmpcfg0) >> 56,
           csrr(pmpaddr6), csrr(pmpaddr7));
    csrw(pmpcfg0, 0x000d00000000001fULL);
    printf("pmpcfg0 rest: 0x%lx\n", csrr(pmpcfg0));
    /* RV64 has no odd pmpcfg; there are 16 entries. */
    reset();
    want_epc = AT("csrr t0, pmpcfg1");
    report("pmpcfg1 in M");
    reset();
    want_epc = AT("csrr t0, 0x3a4");
    report("pmpcfg4 in M");
    reset();
    want_epc = AT("csrr t0, 0x3c0");
    report("pmpaddr16 in M");
}

/* CSRs that exist in M whatever their value (vmhost: read-only zero event counters). */
static void exists(void)
{
    reset();
    want_epc = AT("csrr t0, mcountinhibit");
    report("mcountinhibit in M");
    reset();
    want_epc = AT("csrr t0, mhpmcounter3");
    report("mhpmcounter3 in M");
    reset();
    want_epc = AT("csrr t0, mhpmevent3");
    report("mhpmevent3 in M");
    reset();
    want_epc = AT("csrr t0, 0x7b0");
    report("dcsr (debug mode only) in M");
}

static void traps(void)
{
    run("ecall from U", 0, do_ecall);
    run("ecall from S", 1, do_ecall);
    reset();
    want_epc = AT("ecall");
    report("ecall from M");
    csrw(medeleg, 1 << 8);
    run("ecall from U, delegated", 0, do_ecall);
    run("ecall from S, U delegated", 1, do_ecall);
    csrw(medeleg, 1 << 9);
    run("ecall from S, delegated", 1, do_ecall);
    csrw(medeleg, (1 << 11) | (1 << 2));
    reset();
    want_epc = AT("ecall");
    report("ecall from M, medeleg 11");
    reset();
    want_epc = AT(".4byte 0xffffffff");
    report("illegal in M, medeleg 2");
    csrw(medeleg, 0);
    run("ebreak from U", 0, do_ebreak);
    run("ebreak from S", 1, do_ebreak);

    run("sstatus from U", 0, rd_sstatus);
    run("sscratch write from U", 0, wr_sscratch);
    run("mstatus from S", 1, rd_mstatus);
    run("mhartid from S", 1, rd_mhartid);
    run("sstatus from S", 1, rd_sstatus);
    run("illegal 16-bit from U", 0, rd_c_illegal);
    run("illegal 32-bit from S", 1, rd_illegal32);
    csrw(medeleg, 1 << 2);
    run("illegal from U, delegated", 0, rd_illegal32);
    run("mstatus from S, delegated", 1, rd_mstatus);
    csrw(medeleg, 0);

    run("sret in U", 0, do_sret);
    run("mret in U", 0, do_mret);
    run("mret in S", 1, do_mret);
    run("wfi in U", 0, do_wfi);
    csrs(mstatus, MSTATUS_TW);
    run("wfi in S, TW", 1, do_wfi);
    csrc(mstatus, MSTATUS_TW);
    csrw(mideleg, SSIP);
    run("wfi in S, pending masked", 1, s_wfi_masked);
    printf("  wfi returned=%lu\n", seen);
    csrw(mideleg, 0);
    run("sfence.vma in U", 0, do_sfence);
    run("sfence.vma in S", 1, do_sfence);
    csrs(mstatus, MSTATUS_TVM);
    run("sfence.vma in S, TVM", 1, do_sfence_a);
    run("satp read in S, TVM", 1, rd_satp);
    run("satp write in S, TVM", 1, wr_satp);
    csrc(mstatus, MSTATUS_TVM);
    run("satp read in S", 1, rd_satp);
    run("satp write in S", 1, wr_satp);
    csrs(mstatus, MSTATUS_TSR);
    run("sret in S, TSR", 1, do_sret);
    csrc(mstatus, MSTATUS_TSR);
}

static void counters(void)
{
    run("cycle from S, mcounteren 0", 1, rd_cycle);
    run("time from S, mcounteren 0", 1, rd_time);
    run("instret from U, mcounteren 0", 0, rd_instret);
    csrw(mcounteren, 7);
    run("cycle from S, mcounteren 7", 1, rd_cycle);
    run("time from S, mcounteren 7", 1, rd_time);
    run("instret from S, mcounteren 7", 1, rd_instret);
    run("cycle from U, scounteren 0", 0, rd_cycle);
    run("scounteren from U", 0, rd_scounteren);
    csrw(scounteren, 2);
    run("time from U, scounteren 2", 0, rd_time);
    run("cycle from U, scounteren 2", 0, rd_cycle);
    csrw(mcounteren, 5);
    run("time from U, mcounteren 5", 0, rd_time);
    csrw(mcounteren, 0);
    csrw(scounteren, 0);
    run("cycle write from S", 1, wr_cycle);
}

static void returns(void)
{
    /* mret (to M here, so nothing else changes): MIE = MPIE, MPIE = 1, MPP = U. MPRV, which
       1.12 clears on a return below M, is left out: QEMU 7.2 does not clear it. */
    csrs(mstatus, MSTATUS_MPP | MSTATUS_MPIE);
    __asm__ volatile("lla t0, 1f\n csrw mepc, t0\n mret\n 1:" ::: "t0");
    uint64_t s = csrr(mstatus);
    csrc(mstatus, MSTATUS_MIE);
    printf("mret to M: mie=%lu mpie=%lu mpp=%s\n", (s >> 3) & 1, (s >> 7) & 1, mode_name((s >> 11) & 3));
    csrc(mstatus, MSTATUS_MPIE);
    csrs(mstatus, MSTATUS_MPP);
    __asm__ volatile("lla t0, 1f\n csrw mepc, t0\n mret\n 1:" ::: "t0");
    s = csrr(mstatus);
    printf("mret to M, MPIE 0: mie=%lu mpie=%lu\n", (s >> 3) & 1, (s >> 7) & 1);

    /* M -> S (mret) -> U (sret) -> M (the run's ebreak). */
    run("mret to S, sret to U", 1, s_sret_to_u);
    s = csrr(mstatus);
    printf("  after sret: sie=%lu spie=%lu spp=%lu mpp=%s\n", (s >> 1) & 1, (s >> 5) & 1, (s >> 8) & 1,
           mode_name((s >> 11) & 3));
    csrc(mstatus, MSTATUS_SIE);
}

static void interrupts(void)
{
    csrw(stvec, s_trap_entry);
    /* SSIP delegated, raised in S through sip, taken in S once SIE is set. */
    csrw(mideleg, SSIP);
    run("SSIP in S", 1, s_soft_irq);
    printf("  pending before SIE=%lu spie=%lu sie=%lu\n", seen >> 1, (st.status >> 5) & 1, (st.status >> 1) & 1);

    /* STIP set by M, delegated: taken in U at once (S interrupts are always on in U). */
    csrw(mideleg, STIP);
    csrs(mie, STIP);
    csrs(mip, STIP);
    run("STIP in U", 0, u_nothing);
    printf("  order=%u:%lx\n", norder, order[0]);
    csrc(mip, STIP);

    /* Not delegated: an M interrupt, taken in S whatever mstatus.MIE says. */
    csrw(mideleg, 0);
    csrs(mie, SSIP);
    csrs(mip, SSIP);
    reset();
    run("SSIP not delegated, in S", 1, u_nothing);
    csrc(mip, SSIP);

    /* Delegated S interrupt in M: never taken, even with MIE and SIE. */
    csrw(mideleg, SSIP);
    csrs(mie, SSIP);
    csrs(mip, SSIP);
    reset();
    csrs(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    __asm__ volatile("nop\n nop\n nop");
    csrc(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    report("SSIP delegated, in M with MIE and SIE");

    /* Priority among S interrupts: SSI before STI, both pending on entry to S. */
    csrw(mideleg, SSIP | STIP);
    csrs(mie, SSIP | STIP);
    csrs(mip, SSIP | STIP);
    run("SSIP and STIP in S", 1, s_irq_on_entry);
    printf("  order=%u:%lx,%lx\n", norder, order[0], order[1]);
    csrc(mip, SSIP | STIP);

    /* M-level before S-level: SSIP not delegated (M) and STIP delegated (S). */
    csrw(mideleg, STIP);
    csrs(mie, SSIP | STIP);
    csrs(mip, SSIP | STIP);
    run("SSIP (M) and STIP (S) in S", 1, s_irq_on_entry);
    printf("  order=%u:%lx,%lx\n", norder, order[0], order[1]);
    csrc(mip, SSIP | STIP);

    /* M interrupts by priority in U: MSI before MTI. */
    csrw(mideleg, 0);
    CLINT_MTIMECMP = 0;
    CLINT_MSIP = 1;
    csrs(mie, MSIP_BIT | MTIP);
    run("MSI and MTI in U", 0, u_nothing);
    printf("  order=%u:%lx,%lx\n", norder, order[0], order[1]);
    CLINT_MSIP = 0;
    CLINT_MTIMECMP = ~0ull;

    /* Vectored stvec: an interrupt goes to base + 4 * cause, an exception to base. */
    csrw(stvec, (uint64_t)s_vectors | 1);
    csrw(mideleg, SSIP);
    csrw(medeleg, 1 << 8);
    vec_hit = 99;
    run("SSIP in S, vectored stvec", 1, s_soft_irq);
    printf("  vector=%lu\n", vec_hit);
    vec_hit = 99;
    run("ecall from U, vectored stvec", 0, do_ecall);
    printf("  vector=%lu\n", vec_hit);
    csrw(stvec, s_trap_entry);
    csrw(medeleg, 0);
    csrw(mideleg, 0);
    csrw(mie, 0);
}

int main(void)
{
    csrw(mtvec, m_trap_entry);
    CLINT_MTIMECMP = ~0ull;             /* QEMU resets it to 0, vmhost to all ones */
    print("priv: M, S and U with satp = Bare\n");
    warl();
    pmp();
    exists();
    csrw(stvec, s_trap_entry);
    traps();
    counters();
    returns();
    interrupts();
    (void)do_sfence_a;
    (void)rd_cycle;
    extern void trap_entry(void);
    csrw(mtvec, trap_entry);
    print("priv: done\n");
    return 0;
}
