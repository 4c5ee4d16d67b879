/* PMP as firmware programs it, checked from M, S and U with satp = Bare: NAPOT, NA4 and TOR
 * entries, R/W/X per entry, the lowest-numbered match deciding, an access straddling an entry's
 * end, no match for S/U (denied) and M (allowed), locked entries holding M to them, and PTE-free
 * fetches from a page without X. One line per check, compared with QEMU's.
 *
 * Probes - a few instructions ending in an ebreak with a7 = DONE - are entered with mret in the
 * mode under test; every trap to M ends the probe, and the M handler records it. */
#include "runtime.h"

#define DONE 0xd0e

#define STR_(x) #x
#define STR(x) STR_(x)
#define csrr(csr) ({ uint64_t v_; __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csrw(csr, v) __asm__ volatile("csrw " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")

volatile uint64_t r_a0, m_cause, m_tval, m_from;
volatile int in_run;
uint64_t run_ctx[14];

void run_in(uint64_t mode, uint64_t pc, uint64_t a1, uint64_t a2, uint64_t a3);

__asm__(
    ".text\n .balign 4\n m_trap:\n"
    " sd a0, r_a0, t0\n"
    " lla sp, m_stack_top\n mv a0, a7\n call m_handler\n"
    " lla t0, run_ctx\n ld ra, 0(t0)\n ld sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n ld s\\n, 16+\\n*8(t0)\n .endr\n ret\n"
    " .globl run_in\n run_in:\n lla t0, run_ctx\n sd ra, 0(t0)\n sd sp, 8(t0)\n"
    " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n sd s\\n, 16+\\n*8(t0)\n .endr\n"
    " li t1, 0x1800\n csrc mstatus, t1\n slli a0, a0, 11\n csrs mstatus, a0\n"
    " csrw mepc, a1\n mv a1, a2\n mv a2, a3\n mv a3, a4\n li a0, 0\n"
    " li ra, 0\n mret\n"
    " .balign 4\n"
    " p_ld: ld a0, 0(a1)\n j p_done\n"
    " p_lw: lw a0, 0(a1)\n j p_done\n"
    " p_sd: sd a2, 0(a1)\n j p_done\n"
    " p_call: jalr a1\n j p_done\n"
    " p_done: li a7, 0xd0e\n ebreak\n"
    " .section .bss\n .balign 16\n .space 4096\n m_stack_top:\n .text\n");

extern char m_trap[], p_ld[], p_lw[], p_sd[], p_call[];

void m_handler(uint64_t a7)
{
    uint64_t cause = csrr(mcause);
    if (!in_run) {
        extern void trap_report(uint64_t, uint64_t, uint64_t);
        trap_report(cause, csrr(mepc), csrr(mtval));
    }
    in_run = 0;
    m_cause = cause == 3 && a7 == DONE ? ~0ull : cause;
    m_tval = csrr(mtval);
    m_from = (csrr(mstatus) >> 11) & 3;
}

/* Three data pages, and a page of code (returns 0x5a). */
static volatile uint64_t pa[512] __attribute__((aligned(4096)));
static volatile uint64_t pb[512] __attribute__((aligned(4096)));
__asm__(" .section .text.target, \"ax\"\n .balign 4096\n target_page:\n li a0, 0x5a\n ret\n .balign 4096\n .text\n");
extern char target_page[];

static const char *mode_name(uint64_t m) { return m == 0 ? "U" : m == 1 ? "S" : "M"; }

static void check(const char *what, uint64_t mode, char *probe, uint64_t a1, uint64_t a2)
{
    r_a0 = 0;
    in_run = 1;
    run_in(mode, (uint64_t)probe, a1, a2, 0);
    printf("%s %s:", mode_name(mode), what);
    if (m_cause == ~0ull)
        printf(" ok a0=0x%lx\n", r_a0);
    else
        printf(" fault cause=%lu tval=%s\n", m_cause,
               m_tval == a1 ? "addr" : m_tval == 0 ? "0" : "other");
}

static uint64_t napot(uint64_t base, uint64_t size) { return (base >> 2) | ((size >> 3) - 1); }

#define A_TOR 0x08
#define A_NA4 0x10
#define A_NAPOT 0x18
#define R 1
#define W 2
#define X 4
#define L 0x80

static void set_cfg(unsigned i, uint64_t v)
{
    /* pmpcfg0 holds entries 0-7, pmpcfg2 entries 8-15. */
    uint64_t reg = i < 8 ? csrr(pmpcfg0) : csrr(pmpcfg2);
    unsigned sh = 8 * (i % 8);
    reg = (reg & ~(0xffull << sh)) | (v << sh);
    if (i < 8)
        csrw(pmpcfg0, reg);
    else
        csrw(pmpcfg2, reg);
}

static void all_modes(const char *what, char *probe, uint64_t a1, uint64_t a2)
{
    for (uint64_t m = 0; m <= 3; m += m == 1 ? 2 : 1)
        check(what, m, probe, a1, a2);
}

int main(void)
{
    csrw(mtvec, m_trap);
    pa[0] = 0x1111;
    pb[1] = 0x2222;
    pb[0x100 / 8] = 0x3333;

    print("-- no entry active\n");
    all_modes("load pa", p_ld, (uint64_t)pa, 0);

    /* 0: pa R only (NAPOT 4 KiB). 1: pb's first word, nothing (NA4). 2-3: TOR pb+0x100..+0x200 RW.
     * 4: target_page R only (no X). 15: everything RWX (NAPOT over 2^56). */
    csrw(pmpaddr0, napot((uint64_t)pa, 4096));
    csrw(pmpaddr1, (uint64_t)pb >> 2);
    csrw(pmpaddr2, ((uint64_t)pb + 0x100) >> 2);
    csrw(pmpaddr3, ((uint64_t)pb + 0x200) >> 2);
    csrw(pmpaddr4, napot((uint64_t)target_page, 4096));
    csrw(pmpaddr15, (1ull << 53) - 1);
    set_cfg(0, A_NAPOT | R);
    set_cfg(1, A_NA4);
    set_cfg(3, A_TOR | R | W);
    set_cfg(4, A_NAPOT | R);
    set_cfg(15, A_NAPOT | R | W | X);
    printf("pmpcfg0=0x%lx pmpcfg2=0x%lx\n", csrr(pmpcfg0), csrr(pmpcfg2));

    print("-- entries 0-4 and 15\n");
    all_modes("load pa (R)", p_ld, (uint64_t)pa, 0);
    all_modes("store pa (R)", p_sd, (uint64_t)pa, 7);
    all_modes("load pb+0 (NA4, none)", p_lw, (uint64_t)pb, 0);
    all_modes("load pb+4 (entry 15)", p_lw, (uint64_t)pb + 4, 0);
    all_modes("load pb+8 (entry 15)", p_ld, (uint64_t)pb + 8, 0);
    all_modes("store pb+0x100 (TOR RW)", p_sd, (uint64_t)pb + 0x100, 9);
    all_modes("load pb+0x1fc 8 bytes (straddles TOR end)", p_ld, (uint64_t)pb + 0x1fc, 0);
    all_modes("load pb+0x200 (entry 15)", p_ld, (uint64_t)pb + 0x200, 0);
    all_modes("call target (R, no X)", p_call, (uint64_t)target_page, 0);
    all_modes("load target (R)", p_ld, (uint64_t)target_page, 0);

    print("-- entry 15 off: S and U match nothing\n");
    set_cfg(15, 0);
    check("load pb+8", 1, p_ld, (uint64_t)pb + 8, 0);
    check("load pb+8", 3, p_ld, (uint64_t)pb + 8, 0);

    print("-- entry 0 locked\n");
    set_cfg(15, A_NAPOT | R | W | X);
    set_cfg(0, A_NAPOT | R | L);
    check("load pa", 3, p_ld, (uint64_t)pa, 0);
    check("store pa", 3, p_sd, (uint64_t)pa, 5);
    csrw(pmpaddr0, 0);
    set_cfg(0, 0);
    printf("locked entry 0 after writes: cfg=0x%lx addr ok=%u\n", csrr(pmpcfg0) & 0xff,
           csrr(pmpaddr0) == napot((uint64_t)pa, 4096));
    printf("pa[0]=0x%lx pb[0x20]=0x%lx\n", pa[0], pb[0x100 / 8]);
    print("pmp: done\n");
    return 0;
}
