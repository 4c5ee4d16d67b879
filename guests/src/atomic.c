/* RV64A in M-mode: LR/SC success and failure, every AMO in .w and .d on edge values, the aq/rl
 * forms, rd = x0 and rd = rs2, misaligned LR/AMO, and an AMO to a device. One line per check;
 * the output is compared with QEMU's.
 *
 * Only SC outcomes that the spec and QEMU agree on are checked: QEMU's SC compares the reserved
 * value rather than watching the reservation set, so an intervening store of the same value by
 * this hart is left out, as is SC to a misaligned address without a reservation (QEMU fails it
 * without an access, the spec wants an exception). A trap clears the reservation on both. */
#include "runtime.h"

uint64_t trap_cause, trap_tval, trap_epc, trap_count;

/* Records mcause, mtval and mepc and resumes after the faulting instruction, which is always 4
   bytes (the probes are assembled without compressed instructions). Uses only t0 and t1, which
   every probe declares clobbered. */
__asm__(".text\n.balign 4\natomic_trap:\n"
        "  csrr t0, mcause\n  la t1, trap_cause\n  sd t0, 0(t1)\n"
        "  csrr t0, mtval\n  la t1, trap_tval\n  sd t0, 0(t1)\n"
        "  csrr t0, mepc\n  la t1, trap_epc\n  sd t0, 0(t1)\n"
        "  la t1, trap_count\n  ld t0, 0(t1)\n  addi t0, t0, 1\n  sd t0, 0(t1)\n"
        "  csrr t0, mepc\n  addi t0, t0, 4\n  csrw mepc, t0\n  mret\n");
extern void atomic_trap(void);

#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop"

/* rd = insn(rs2, (addr)); rd starts as a marker so a skipped instruction shows. */
#define AMO(insn, addr, v) ({ uint64_t r_ = 0x5a5a5a5a5a5a5a5aull; trap_count = 0; \
    __asm__ volatile(NORVC(insn " %0, %2, (%1)") : "+&r"(r_) : "r"((uint64_t)(addr)), "r"((uint64_t)(v)) \
                     : "t0", "t1", "memory"); r_; })
#define LR(insn, addr) ({ uint64_t r_ = 0x5a5a5a5a5a5a5a5aull; trap_count = 0; \
    __asm__ volatile(NORVC(insn " %0, (%1)") : "+&r"(r_) : "r"((uint64_t)(addr)) : "t0", "t1", "memory"); r_; })
#define SC(insn, addr, v) AMO(insn, addr, v)

/* Two adjacent doublewords, so a .w access shows it left its neighbour alone. */
static volatile uint64_t cell[4] __attribute__((aligned(16)));

static void line(const char *what, uint64_t rd)
{
    printf("%s: rd=0x%lx mem=0x%lx,0x%lx", what, rd, cell[0], cell[1]);
    if (trap_count)
        printf(" trap mcause=%lu mtval=%s", trap_cause,
               trap_tval == (uint64_t)cell ? "cell" : trap_tval == (uint64_t)cell + 2 ? "cell+2" : "other");
    print("\n");
}

static void set(uint64_t a, uint64_t b)
{
    cell[0] = a;
    cell[1] = b;
}

static void lrsc(void)
{
    uint64_t r;
    set(0x1111111180000000ull, 0);
    uint64_t l = LR("lr.w", cell);
    r = SC("sc.w", cell, 0xabcdef0012345678ull);
    printf("lr.w sign-extends: rd=0x%lx\n", l);
    line("sc.w after lr.w", r);
    r = SC("sc.w", cell, 0x99);
    line("sc.w again (reservation used up)", r);

    set(0x8000000000000001ull, 7);
    l = LR("lr.d", cell);
    r = SC("sc.d", cell, 0x0123456789abcdefull);
    printf("lr.d: rd=0x%lx\n", l);
    line("sc.d after lr.d", r);

    set(1, 2);
    r = SC("sc.d", cell, 3);
    line("sc.d without lr", r);

    set(1, 2);
    (void)LR("lr.d", cell);
    r = SC("sc.d", &cell[1], 3);
    line("sc.d to another address than lr.d", r);
    r = SC("sc.d", cell, 4);
    line("sc.d to the lr address after a failed sc", r);

    set(5, 6);
    (void)LR("lr.d", cell);
    __asm__ volatile(NORVC("ecall") ::: "t0", "t1", "memory");
    printf("ecall: mcause=%lu\n", trap_cause);
    r = SC("sc.d", cell, 9);
    line("sc.d after a trap", r);

    set(5, 6);
    (void)LR("lr.w", cell);
    r = SC("sc.w", &cell[1], 8);
    line("sc.w to another address than lr.w", r);

    /* aq/rl forms behave the same on one hart. */
    set(10, 11);
    (void)LR("lr.w.aq", cell);
    r = SC("sc.w.rl", cell, 12);
    line("lr.w.aq + sc.w.rl", r);
    (void)LR("lr.d.aqrl", &cell[1]);
    r = SC("sc.d.aqrl", &cell[1], 13);
    line("lr.d.aqrl + sc.d.aqrl", r);

    /* SC with rd = x0: the store still happens. */
    set(20, 21);
    (void)LR("lr.d", cell);
    __asm__ volatile(NORVC("sc.d zero, %1, (%0)") :: "r"(cell), "r"(22ull) : "memory");
    line("sc.d rd=x0", 0);
}

struct amo_case {
    const char *name;
    uint64_t (*fn)(volatile uint64_t *, uint64_t);
    uint64_t mem, rs2;
};

#define AMO_FN(id, insn) \
    static uint64_t id(volatile uint64_t *p, uint64_t v) { return AMO(insn, p, v); }
AMO_FN(swap_w, "amoswap.w") AMO_FN(add_w, "amoadd.w") AMO_FN(and_w, "amoand.w") AMO_FN(or_w, "amoor.w")
AMO_FN(xor_w, "amoxor.w") AMO_FN(min_w, "amomin.w") AMO_FN(max_w, "amomax.w") AMO_FN(minu_w, "amominu.w")
AMO_FN(maxu_w, "amomaxu.w")
AMO_FN(swap_d, "amoswap.d") AMO_FN(add_d, "amoadd.d") AMO_FN(and_d, "amoand.d") AMO_FN(or_d, "amoor.d")
AMO_FN(xor_d, "amoxor.d") AMO_FN(min_d, "amomin.d") AMO_FN(max_d, "amomax.d") AMO_FN(minu_d, "amominu.d")
AMO_FN(maxu_d, "amomaxu.d")
AMO_FN(add_w_aq, "amoadd.w.aq") AMO_FN(or_w_rl, "amoor.w.rl") AMO_FN(max_d_aqrl, "amomax.d.aqrl")
AMO_FN(swap_d_aq, "amoswap.d.aq")

#define W 0x7777777700000000ull    /* the upper word of a .w cell: must survive */
static const struct amo_case amos[] = {
    {"amoswap.w", swap_w, W | 0x80000000, 0xffffffff0000007full},
    {"amoswap.w", swap_w, W | 0x7fffffff, 0x80000000},
    {"amoadd.w", add_w, W | 0x7fffffff, 1},
    {"amoadd.w", add_w, W | 0xffffffff, 0x100000001ull},
    {"amoand.w", and_w, W | 0xf0f0f0f0, 0xffffffff8f8f8f8full},
    {"amoor.w", or_w, W | 0x0000f000, 0xffffffff80000001ull},
    {"amoxor.w", xor_w, W | 0xffffffff, 0x80000001},
    {"amomin.w", min_w, W | 0x80000000, 1},
    {"amomin.w", min_w, W | 0xffffffff, 0x80000000},
    {"amomin.w", min_w, W | 5, 0xffffffff00000003ull},
    {"amomax.w", max_w, W | 0x80000000, 0x7fffffff},
    {"amomax.w", max_w, W | 0xffffffff, 0},
    {"amomax.w", max_w, W | 3, 0x00000001ffffffffull},
    {"amominu.w", minu_w, W | 0x80000000, 1},
    {"amominu.w", minu_w, W | 0xffffffff, 0},
    {"amominu.w", minu_w, W | 2, 0xffffffff00000001ull},
    {"amomaxu.w", maxu_w, W | 0x80000000, 0x7fffffff},
    {"amomaxu.w", maxu_w, W | 0xffffffff, 0x100000000ull},
    {"amoswap.d", swap_d, 0x8000000000000000ull, 0x123456789abcdef0ull},
    {"amoadd.d", add_d, 0x7fffffffffffffffull, 1},
    {"amoadd.d", add_d, 0xffffffffffffffffull, 2},
    {"amoand.d", and_d, 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull},
    {"amoor.d", or_d, 0x8000000000000000ull, 1},
    {"amoxor.d", xor_d, 0xffffffffffffffffull, 0x8000000000000001ull},
    {"amomin.d", min_d, 0x8000000000000000ull, 1},
    {"amomin.d", min_d, 0xffffffffffffffffull, 0x7fffffffffffffffull},
    {"amomax.d", max_d, 0x8000000000000000ull, 0xffffffffffffffffull},
    {"amomax.d", max_d, 0xffffffffffffffffull, 0},
    {"amominu.d", minu_d, 0x8000000000000000ull, 0x7fffffffffffffffull},
    {"amominu.d", minu_d, 0xffffffffffffffffull, 0},
    {"amomaxu.d", maxu_d, 0x8000000000000000ull, 0x7fffffffffffffffull},
    {"amomaxu.d", maxu_d, 1, 0xffffffffffffffffull},
    {"amoadd.w.aq", add_w_aq, W | 0xfffffffe, 1},
    {"amoor.w.rl", or_w_rl, W | 0x00000001, 0x80000000},
    {"amomax.d.aqrl", max_d_aqrl, 0xfffffffffffffff0ull, 0xffffffffffffff00ull},
    {"amoswap.d.aq", swap_d_aq, 42, 43},
};

static void amo(void)
{
    for (unsigned i = 0; i < sizeof amos / sizeof amos[0]; i++) {
        const struct amo_case *c = &amos[i];
        set(c->mem, 0x0123456789abcdefull);
        uint64_t r = c->fn(cell, c->rs2);
        printf("%s mem=0x%lx rs2=0x%lx: rd=0x%lx mem=0x%lx,0x%lx%s\n", c->name, c->mem, c->rs2, r, cell[0], cell[1],
               trap_count ? " trapped" : "");
    }

    /* .w on the upper word of a doubleword. */
    set(0x8000000011111111ull, 0);
    uint64_t r = AMO("amoadd.w", (uintptr_t)cell + 4, 0x7fffffff);
    line("amoadd.w on cell+4 (0x80000000 + 0x7fffffff)", r);

    /* rd = x0: memory still changes. */
    set(100, 200);
    __asm__ volatile(NORVC("amoadd.d zero, %1, (%0)") :: "r"(cell), "r"(5ull) : "memory");
    line("amoadd.d rd=x0", 0);
    set(100, 200);
    __asm__ volatile(NORVC("amoswap.w zero, %1, (%0)") :: "r"(&cell[1]), "r"(0xffffffffull) : "memory");
    line("amoswap.w rd=x0", 0);

    /* rd = rs2: the old value replaces the operand only after it is used. */
    set(100, 200);
    uint64_t v = 7;
    __asm__ volatile(NORVC("amoadd.d %0, %0, (%1)") : "+r"(v) : "r"(cell) : "memory");
    line("amoadd.d rd=rs2", v);
    /* rd = rs1: the old value replaces the address only after it is used. */
    set(100, 200);
    uint64_t a = (uint64_t)cell;
    __asm__ volatile(NORVC("amoswap.d %0, %1, (%0)") : "+r"(a) : "r"(300ull) : "memory");
    line("amoswap.d rd=rs1", a);
}

static void faults(void)
{
    uint64_t mis = (uint64_t)cell + 2, r;
    set(0x1111111111111111ull, 0x2222222222222222ull);
    r = AMO("amoadd.w", mis, 1);
    line("amoadd.w misaligned", r);
    r = AMO("amoswap.d", mis, 1);
    line("amoswap.d misaligned", r);
    r = AMO("amoor.d", (uint64_t)cell + 4, 1);
    printf("amoor.d at cell+4: mcause=%lu mtval_ok=%u\n", trap_count ? trap_cause : 0,
           trap_tval == (uint64_t)cell + 4);
    r = LR("lr.w", mis);
    line("lr.w misaligned", r);
    r = LR("lr.d", (uint64_t)cell + 4);
    printf("lr.d at cell+4: mcause=%lu mtval_ok=%u\n", trap_count ? trap_cause : 0, trap_tval == (uint64_t)cell + 4);

    /* A device register: the CLINT's msip (an AMO that leaves it 0). */
    r = AMO("amoor.w", CLINT_BASE, 0);
    printf("amoor.w on CLINT msip: rd=0x%lx", r);
    if (trap_count)
        printf(" trap mcause=%lu mtval=0x%lx", trap_cause, trap_tval);
    print("\n");
}

int main(void)
{
    __asm__ volatile("csrw mtvec, %0" :: "r"(atomic_trap));
    print("atomic: RV64A in M-mode\n");
    lrsc();
    amo();
    faults();
    extern void trap_entry(void);
    __asm__ volatile("csrw mtvec, %0" :: "r"(trap_entry));
    print("atomic: done\n");
    return 0;
}
