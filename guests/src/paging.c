/* Sv39 and Sv48 paging in S and U, with page tables built by M: the satp WARL, loads, stores and
 * fetches through 4 KiB pages, megapages and gigapages, the page faults (invalid and reserved PTEs,
 * missing R/W/X, U/S, SUM, MXR, MPRV, misaligned superpages, non-canonical addresses, a load that
 * crosses into an unmapped page), accesses outside RAM, the A and D bits, sfence.vma (of data,
 * and of code already run, through a 4 KiB page and a megapage) and a satp switch. The whole list runs once under Sv39 and once under Sv48; one line per check, compared
 * with QEMU's.
 *
 * The kernel is identity-mapped (S pages, so U cannot touch it). The probes - a few instructions
 * each, ending in an ebreak with a7 = DONE - sit in one page that is also mapped for U at UVA.
 * run() enters a probe in S, U or M with mret; every trap to M ends the run, and the M handler
 * records it (or the probe's a0/a1 on DONE). Page faults delegated to S end the run the same way
 * from an S handler that records scause/stval/sepc and then does the DONE ebreak itself. */
#include "runtime.h"

#define DONE 0xd0e

#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_MXR  (1ull << 19)

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define AD    (PTE_A | PTE_D)

#define SATP_SV39 (8ull << 60)
#define SATP_SV48 (9ull << 60)

#define STR_(x) #x
#define STR(x) STR_(x)
#define csrr(csr) ({ uint64_t v_; __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csrw(csr, v) __asm__ volatile("csrw " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define csrs(csr, v) __asm__ volatile("csrs " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define csrc(csr, v) __asm__ volatile("csrc " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define sfence() __asm__ volatile("sfence.vma" ::: "memory")

/* What the last run ended with. */
volatile uint64_t r_a0, r_a1, m_cause, m_epc, m_tval, m_from, s_cause, s_epc, s_tval, s_count;
volatile int in_run;
uint64_t run_ctx[14];

void run_in(uint64_t mode, uint64_t pc, uint64_t a1, uint64_t a2, uint64_t a3);

__asm__(
    /* M trap: keep a0/a1, then back to run_in's caller. */
    ".text\n .balign 4\n m_trap:\n"
    " sd a0, r_a0, t0\n sd a1, r_a1, t0\n"
    " lla sp, m_stack_top\n mv a0, a7\n call m_handler\n"
    " lla t0, run_ctx\n ld ra, 0(t0)\n ld sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n ld s\\n, 16+\\n*8(t0)\n .endr\n ret\n"

    /* S trap (delegated): record it and end the run. */
    " .balign 4\n s_trap:\n"
    " csrr t1, scause\n sd t1, s_cause, t0\n csrr t1, sepc\n sd t1, s_epc, t0\n"
    " csrr t1, stval\n sd t1, s_tval, t0\n li t1, 1\n sd t1, s_count, t0\n"
    " li a7, 0xd0e\n ebreak\n"

    /* a0 = mode (0 = U, 1 = S, 3 = M), a1 = pc; the probe gets a1..a3 from a2..a4. */
    " .globl run_in\n run_in:\n lla t0, run_ctx\n sd ra, 0(t0)\n sd sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n sd s\\n, 16+\\n*8(t0)\n .endr\n"
    " li t1, 0x1800\n csrc mstatus, t1\n slli a0, a0, 11\n csrs mstatus, a0\n"
    " csrw mepc, a1\n mv a1, a2\n mv a2, a3\n mv a3, a4\n li a0, 0\n"
    " lla sp, low_stack_top\n li ra, 0\n mret\n"

    /* The probes: position independent, so they run at their own address and at UVA. */
    " .section .text.probe, \"ax\"\n .balign 4096\n .option push\n .option norvc\n"
    " probe_page:\n"
    " p_ld: ld a0, 0(a1)\n j p_done\n"
    " p_sd: sd a2, 0(a1)\n j p_done\n"
    " p_call: jalr a1\n j p_done\n"
    " p_mprv: csrs mstatus, a3\n ld a0, 0(a1)\n csrc mstatus, a3\n j p_done\n"
    " p_sfence_a: ld a0, 0(a1)\n sd a3, 0(a2)\n sfence.vma a1, zero\n ld a1, 0(a1)\n j p_done\n"
    " p_sfence_g: ld a0, 0(a1)\n sd a3, 0(a2)\n sfence.vma zero, zero\n ld a1, 0(a1)\n j p_done\n"
    " p_satp: ld a0, 0(a1)\n csrw satp, a2\n sfence.vma\n ld a1, 0(a1)\n j p_done\n"
    /* Calls code at a1, points its leaf PTE (at a2) at other code (PTE a3), fences a1 (or, in
       p_remap_far, another 4 KiB page of the same megapage) and calls a1 again: a0 and a1 are
       what the two calls returned. */
    " p_remap: jalr a1\n mv t2, a0\n sd a3, 0(a2)\n sfence.vma a1, zero\n jalr a1\n"
    "  mv a1, a0\n mv a0, t2\n j p_done\n"
    " p_remap_far: mv t3, a1\n jalr a1\n mv t2, a0\n sd a3, 0(a2)\n addi t4, t3, -0x7ff\n"
    "  addi t4, t4, -0x7ff\n addi t4, t4, -0x2\n sfence.vma t4, zero\n jalr t3\n"
    "  mv a1, a0\n mv a0, t2\n j p_done\n"
    " p_done: li a7, 0xd0e\n ebreak\n"
    " probe_end:\n"
    /* The code fetched through the mappings: returns 0x5a. */
    " .section .text.target, \"ax\"\n .balign 4096\n target_page:\n li a0, 0x5a\n ret\n"
    /* The code a remapped page runs instead: returns 0xa5. */
    " .balign 4096\n target_page2:\n li a0, 0xa5\n ret\n"
    " .option pop\n"

    " .section .bss\n .balign 16\n .space 4096\n m_stack_top:\n .space 4096\n low_stack_top:\n .text\n");

extern char m_trap[], s_trap[], probe_page[], probe_end[], target_page[], target_page2[], __bss_end[];
extern char p_ld[], p_sd[], p_call[], p_mprv[], p_sfence_a[], p_sfence_g[], p_satp[], p_remap[], p_remap_far[];

void m_handler(uint64_t a7)
{
    uint64_t cause = csrr(mcause);
    if (!in_run) {
        extern void trap_report(uint64_t, uint64_t, uint64_t);
        trap_report(cause, csrr(mepc), csrr(mtval));
    }
    in_run = 0;
    if (cause == 3 && a7 == DONE) {
        m_cause = ~0ull;
        return;
    }
    m_cause = cause;
    m_epc = csrr(mepc);
    m_tval = csrr(mtval);
    m_from = (csrr(mstatus) >> 11) & 3;
}

/* ---- page tables ---- */
#define NPT 40
static uint64_t pt_pool[NPT][512] __attribute__((aligned(4096)));
static unsigned pt_used;
#define NDATA 8
static volatile uint64_t data[NDATA][512] __attribute__((aligned(4096)));

#define UVA      0x40000000ull          /* 4 KiB pages from here: UVA + n * 0x1000 */
#define VA(n)    (UVA + (n) * 0x1000ull)
#define OUTSIDE  0x100000000ull         /* a physical address with nothing there on either VM */
#define MEGA_PA  0x80800000ull          /* RAM for the 2 MiB page, above the image */
#define CODE_MEGA_A 0x80a00000ull       /* two megapages of code for the remap check */
#define CODE_MEGA_B 0x80c00000ull
#define CODE_MEGA_VA 0x40800000ull
#define SIG(i)   (0xd0d0000000000000ull | (i))

enum {
    P_PROBE, P_DS, P_DU, P_INVALID, P_WONLY, P_RONLY, P_XONLY, P_RW_NOX, P_UX, P_CLEAN, P_CLEAN2, P_OUT,
    P_CROSS, P_CROSS_HOLE, P_SFENCE, P_SWITCH, P_URONLY, P_X_NOA, P_X_OUT, P_CODE, P_COUNT
};

struct space {
    const char *name;
    unsigned levels;
    uint64_t *root;
    uint64_t satp;
};

static uint64_t *new_pt(void)
{
    if (pt_used == NPT) {
        print("paging: out of page tables\n");
        exit(1);
    }
    return pt_pool[pt_used++];
}

static uint64_t pte(uint64_t pa, uint64_t flags) { return (pa >> 12) << 10 | flags; }

/* The PTE for va at level `leaf` (0 = 4 KiB), making the tables above it. */
static uint64_t *slot(struct space *s, uint64_t va, unsigned leaf)
{
    uint64_t *t = s->root;
    for (unsigned l = s->levels - 1; l > leaf; l--) {
        uint64_t *e = &t[(va >> (12 + 9 * l)) & 511];
        if (!(*e & PTE_V))
            *e = pte((uint64_t)new_pt(), PTE_V);
        t = (uint64_t *)((*e >> 10) << 12);
    }
    return &t[(va >> (12 + 9 * leaf)) & 511];
}

static void map(struct space *s, uint64_t va, uint64_t pa, unsigned leaf, uint64_t flags)
{
    *slot(s, va, leaf) = pte(pa, flags);
}

static uint64_t dpa(unsigned i) { return (uint64_t)data[i]; }

/* alt: the second table of a pair, which maps P_SWITCH elsewhere. */
static void build(struct space *s, int alt)
{
    s->root = new_pt();
    s->satp = (s->levels == 3 ? SATP_SV39 : SATP_SV48) | ((uint64_t)s->root >> 12);
    if (s->levels == 3) {
        map(s, 0x80000000, 0x80000000, 2, PTE_V | PTE_R | PTE_W | PTE_X | AD);
    } else {
        for (uint64_t a = 0x80000000; a < 0x80800000; a += 0x200000)
            map(s, a, a, 1, PTE_V | PTE_R | PTE_W | PTE_X | AD);
        map(s, 0x8000000000ull, 0x80000000, 2, PTE_V | PTE_R | PTE_W | AD);   /* only Sv48 reaches it */
    }
    uint64_t rwx = PTE_V | AD;
    map(s, VA(P_PROBE), (uint64_t)probe_page, 0, rwx | PTE_U | PTE_R | PTE_X);
    map(s, VA(P_DS), dpa(0), 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_DU), dpa(1), 0, rwx | PTE_U | PTE_R | PTE_W);
    map(s, VA(P_INVALID), dpa(0), 0, PTE_R | PTE_W | AD);
    map(s, VA(P_WONLY), dpa(2), 0, rwx | PTE_W);
    map(s, VA(P_RONLY), dpa(2), 0, rwx | PTE_R);
    map(s, VA(P_XONLY), (uint64_t)target_page, 0, rwx | PTE_X);
    map(s, VA(P_RW_NOX), (uint64_t)target_page, 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_UX), (uint64_t)target_page, 0, rwx | PTE_U | PTE_R | PTE_X);
    map(s, VA(P_CLEAN), dpa(3), 0, PTE_V | PTE_R | PTE_W);
    map(s, VA(P_CLEAN2), dpa(4), 0, PTE_V | PTE_R | PTE_W);
    map(s, VA(P_OUT), OUTSIDE, 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_CROSS), dpa(5), 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_SFENCE), dpa(6), 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_SWITCH), dpa(alt ? 7 : 6), 0, rwx | PTE_R | PTE_W);
    map(s, VA(P_URONLY), dpa(2), 0, rwx | PTE_U | PTE_R);
    map(s, VA(P_X_NOA), (uint64_t)target_page, 0, PTE_V | PTE_R | PTE_X);
    map(s, VA(P_X_OUT), OUTSIDE, 0, rwx | PTE_R | PTE_X);
    map(s, VA(P_CODE), (uint64_t)target_page, 0, rwx | PTE_R | PTE_X);
    map(s, CODE_MEGA_VA, CODE_MEGA_A, 1, rwx | PTE_R | PTE_X);
    map(s, 0x40200000, MEGA_PA, 1, rwx | PTE_R | PTE_W);
    map(s, 0x40400000, MEGA_PA + 0x1000, 1, rwx | PTE_R | PTE_W);      /* PPN[0] != 0 */
    map(s, 0x40600000, OUTSIDE, 1, PTE_V);                             /* a table outside RAM */
    map(s, 0x100000000ull, 0x80000000, 2, rwx | PTE_R | PTE_W);
    map(s, 0x140000000ull, 0x80200000, 2, rwx | PTE_R | PTE_W);        /* PPN[1] != 0 */
}

/* ---- running a probe and reporting ---- */
static const char *cur;

static void where(uint64_t a)
{
    uint64_t n = probe_end - probe_page;
    if (a - (uint64_t)probe_page < n)
        printf("probe+0x%lx", a - (uint64_t)probe_page);
    else if (a - UVA < n)
        printf("uprobe+0x%lx", a - UVA);
    else
        printf("0x%lx", a);
}

static const char *mode_name(uint64_t m) { return m == 0 ? "U" : m == 1 ? "S" : m == 3 ? "M" : "?"; }

/* Runs probe p in mode (at UVA for U). */
static void go(uint64_t mode, char *p, uint64_t a1, uint64_t a2, uint64_t a3)
{
    r_a0 = r_a1 = 0;
    s_count = 0;
    uint64_t pc = mode == 0 ? UVA + (uint64_t)(p - probe_page) : (uint64_t)p;
    in_run = 1;
    run_in(mode, pc, a1, a2, a3);
    csrc(mstatus, MSTATUS_MPRV);
}

static void outcome(void)
{
    if (m_cause != ~0ull) {
        printf(" M cause=%lu tval=", m_cause);
        where(m_tval);
        print(" epc=");
        where(m_epc);
        printf(" from=%s", mode_name(m_from));
    } else if (s_count) {
        printf(" S cause=%lu tval=", s_cause);
        where(s_tval);
        print(" epc=");
        where(s_epc);
    } else {
        printf(" ok a0=0x%lx", r_a0);
    }
}

static void check(const char *what, uint64_t mode, char *p, uint64_t a1, uint64_t a2, uint64_t a3)
{
    go(mode, p, a1, a2, a3);
    printf("%s %s:", cur, what);
    outcome();
    print("\n");
}

static uint64_t *leaf_of(struct space *s, unsigned n) { return slot(s, VA(n), 0); }

static void flags_line(const char *what, uint64_t *e)
{
    printf("%s %s: pte flags=0x%lx\n", cur, what, *e & 0x3ff);
}

static void suite(struct space *s, struct space *alt)
{
    cur = s->name;
    for (unsigned i = 0; i < NDATA; i++)
        data[i][0] = SIG(i);
    *(volatile uint64_t *)(MEGA_PA + 0x1238) = SIG(0x200);
    data[5][511] = 0x1111111122222222ull;
    csrw(satp, s->satp);
    sfence();

    check("S load", 1, p_ld, VA(P_DS), 0, 0);
    check("S store", 1, p_sd, VA(P_DS) + 8, 0x5555, 0);
    printf("%s   memory: 0x%lx\n", cur, data[0][1]);
    check("S fetch X-only page", 1, p_call, VA(P_XONLY), 0, 0);
    check("S load X-only page", 1, p_ld, VA(P_XONLY), 0, 0);
    csrs(mstatus, MSTATUS_MXR);
    check("S load X-only page, MXR", 1, p_ld, VA(P_XONLY), 0, 0);
    check("S store X-only page, MXR", 1, p_sd, VA(P_XONLY), 0, 0);
    csrc(mstatus, MSTATUS_MXR);
    check("S fetch RW page", 1, p_call, VA(P_RW_NOX), 0, 0);
    check("S load invalid PTE", 1, p_ld, VA(P_INVALID), 0, 0);
    check("S store invalid PTE", 1, p_sd, VA(P_INVALID), 0, 0);
    check("S fetch invalid PTE", 1, p_call, VA(P_INVALID), 0, 0);
    check("S load W-only PTE", 1, p_ld, VA(P_WONLY), 0, 0);
    check("S store W-only PTE", 1, p_sd, VA(P_WONLY), 0, 0);
    check("S store R-only page", 1, p_sd, VA(P_RONLY), 0, 0);
    check("S load U page", 1, p_ld, VA(P_DU), 0, 0);
    check("S fetch U page", 1, p_call, VA(P_UX), 0, 0);
    csrs(mstatus, MSTATUS_SUM);
    check("S load U page, SUM", 1, p_ld, VA(P_DU), 0, 0);
    check("S store U page, SUM", 1, p_sd, VA(P_DU) + 8, 0x6666, 0);
    check("S fetch U page, SUM", 1, p_call, VA(P_UX), 0, 0);
    csrc(mstatus, MSTATUS_SUM);

    check("U load U page", 0, p_ld, VA(P_DU), 0, 0);
    check("U store U page", 0, p_sd, VA(P_DU) + 16, 0x7777, 0);
    printf("%s   memory: 0x%lx 0x%lx\n", cur, data[1][1], data[1][2]);
    check("U fetch U page", 0, p_call, VA(P_UX), 0, 0);
    check("U load S page", 0, p_ld, VA(P_DS), 0, 0);
    check("U store S page", 0, p_sd, VA(P_DS), 0, 0);
    check("U fetch S page", 0, p_call, VA(P_XONLY), 0, 0);
    check("U store U R-only page", 0, p_sd, VA(P_URONLY), 0, 0);
    csrs(mstatus, MSTATUS_SUM);
    check("U load S page, SUM", 0, p_ld, VA(P_DS), 0, 0);
    csrc(mstatus, MSTATUS_SUM);

    csrw(stvec, s_trap);
    csrw(medeleg, (1 << 12) | (1 << 13) | (1 << 15));
    check("U load S page, delegated", 0, p_ld, VA(P_DS), 0, 0);
    check("U store R-only page, delegated", 0, p_sd, VA(P_URONLY), 0, 0);
    check("U fetch S page, delegated", 0, p_call, VA(P_XONLY), 0, 0);
    check("S load invalid PTE, delegated", 1, p_ld, VA(P_INVALID), 0, 0);
    csrw(medeleg, 0);

    check("M MPRV MPP=S load", 3, p_mprv, VA(P_DS), 0, MSTATUS_MPRV | (1ull << 11));
    check("M MPRV MPP=S load U page", 3, p_mprv, VA(P_DU), 0, MSTATUS_MPRV | (1ull << 11));
    check("M MPRV MPP=U load U page", 3, p_mprv, VA(P_DU), 0, MSTATUS_MPRV);
    check("M MPRV MPP=U load S page", 3, p_mprv, VA(P_DS), 0, MSTATUS_MPRV);

    check("S load crossing into an unmapped page", 1, p_ld, VA(P_CROSS) + 0xffc, 0, 0);

    /* A and D: the leaves start with both clear (no store until then), the table entries are
       pointers and stay as built. */
    check("S load clean page", 1, p_ld, VA(P_CLEAN), 0, 0);
    flags_line("  after load", leaf_of(s, P_CLEAN));
    check("S store the same page", 1, p_sd, VA(P_CLEAN), 1, 0);
    flags_line("  after store", leaf_of(s, P_CLEAN));
    check("S store clean page", 1, p_sd, VA(P_CLEAN2), 2, 0);
    flags_line("  after store", leaf_of(s, P_CLEAN2));
    check("S fetch page with A clear", 1, p_call, VA(P_X_NOA), 0, 0);
    flags_line("  after fetch", leaf_of(s, P_X_NOA));
    flags_line("table entry", slot(s, VA(0), 1));

    check("S load 2 MiB page", 1, p_ld, 0x40201238, 0, 0);
    check("S load misaligned 2 MiB page", 1, p_ld, 0x40400000, 0, 0);
    check("S load 1 GiB page", 1, p_ld, 0x100000000ull + (dpa(5) - 0x80000000), 0, 0);
    check("S load misaligned 1 GiB page", 1, p_ld, 0x140000000ull, 0, 0);
    check("S load 0x8000000000 + data", 1, p_ld, 0x8000000000ull + (dpa(5) - 0x80000000), 0, 0);
    check("S load 0x4000000000", 1, p_ld, 0x4000000000ull, 0, 0);
    check("S load 0x800000000000", 1, p_ld, 0x800000000000ull, 0, 0);
    check("S load 0xfffffffffffff000", 1, p_ld, 0xfffffffffffff000ull, 0, 0);
    check("S load 0xffff800000000000", 1, p_ld, 0xffff800000000000ull, 0, 0);

    check("S load page outside RAM", 1, p_ld, VA(P_OUT), 0, 0);
    check("S store page outside RAM", 1, p_sd, VA(P_OUT), 0, 0);
    check("S fetch page outside RAM", 1, p_call, VA(P_X_OUT), 0, 0);
    check("S load through a table outside RAM", 1, p_ld, 0x40600000, 0, 0);

    /* The probe loads VA, rewrites its PTE to point at data[7], fences, and loads it again. */
    uint64_t *e = leaf_of(s, P_SFENCE);
    check("sfence.vma va", 1, p_sfence_a, VA(P_SFENCE), (uint64_t)e, pte(dpa(7), PTE_V | PTE_R | PTE_W | AD));
    printf("%s   then a1=0x%lx\n", cur, r_a1);
    check("sfence.vma global", 1, p_sfence_g, VA(P_SFENCE), (uint64_t)e, pte(dpa(6), PTE_V | PTE_R | PTE_W | AD));
    printf("%s   then a1=0x%lx\n", cur, r_a1);

    /* Code that already ran, remapped: the fence of its page, or of another 4 KiB page of its
       megapage, must make the next call run the new code. */
    uint64_t rx = PTE_V | PTE_R | PTE_X | AD;
    check("sfence.vma of code", 1, p_remap, VA(P_CODE), (uint64_t)leaf_of(s, P_CODE), pte((uint64_t)target_page2, rx));
    printf("%s   then a1=0x%lx\n", cur, r_a1);
    *leaf_of(s, P_CODE) = pte((uint64_t)target_page, rx);
    uint64_t *mega = slot(s, CODE_MEGA_VA, 1);
    check("sfence.vma of a megapage of code", 1, p_remap_far, CODE_MEGA_VA + 0x3000, (uint64_t)mega, pte(CODE_MEGA_B, rx));
    printf("%s   then a1=0x%lx\n", cur, r_a1);
    *mega = pte(CODE_MEGA_A, rx);
    sfence();

    /* Loads P_SWITCH, moves satp to the other table (same kernel, P_SWITCH elsewhere), loads it. */
    check("satp switch", 1, p_satp, VA(P_SWITCH), alt->satp, 0);
    printf("%s   then a1=0x%lx satp=%s\n", cur, r_a1, csrr(satp) == alt->satp ? "other" : "?");
    csrw(satp, 0);
    sfence();
}

static void satp_warl(struct space *a, struct space *b)
{
    csrw(satp, a->satp);
    printf("satp Sv39: %s\n", csrr(satp) == a->satp ? "kept" : "changed");
    csrw(satp, b->satp);
    printf("satp Sv48: %s\n", csrr(satp) == b->satp ? "kept" : "changed");
    csrw(satp, (5ull << 60) | 1);
    printf("satp mode 5 (reserved): %s\n", csrr(satp) == b->satp ? "ignored" : "changed");
    csrw(satp, (11ull << 60) | 1);
    printf("satp mode 11 (Sv64): %s\n", csrr(satp) == b->satp ? "ignored" : "changed");
    csrw(satp, 0);
    printf("satp Bare: 0x%lx\n", csrr(satp));
}

int main(void)
{
    /* The megapages' code: target_page's at A, target_page2's at B, both at offset 0x3000. */
    for (unsigned k = 0; k < 8; k++) {
        ((volatile char *)CODE_MEGA_A)[0x3000 + k] = target_page[k];
        ((volatile char *)CODE_MEGA_B)[0x3000 + k] = target_page2[k];
    }
    __asm__ volatile("fence.i" ::: "memory");
    static struct space sv39 = {"sv39", 3, 0, 0}, sv39b = {"sv39", 3, 0, 0};
    static struct space sv48 = {"sv48", 4, 0, 0}, sv48b = {"sv48", 4, 0, 0};
    if ((uint64_t)__bss_end > MEGA_PA || probe_end - probe_page > 4096) {
        print("paging: layout does not fit\n");
        return 1;
    }
    csrw(mtvec, m_trap);
    csrw(pmpaddr0, ~0ull);          /* PMP entry 0: all of memory RWX for S and U */
    csrw(pmpcfg0, 0x1f);
    build(&sv39, 0);
    build(&sv39b, 1);
    build(&sv48, 0);
    build(&sv48b, 1);
    print("paging: Sv39 and Sv48 in S and U\n");
    satp_warl(&sv39, &sv48);
    suite(&sv39, &sv39b);
    suite(&sv48, &sv48b);
    extern void trap_entry(void);
    csrw(mtvec, trap_entry);
    print("paging: done\n");
    return 0;
}
