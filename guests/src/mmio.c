/* Accesses to the built-in devices that QEMU's virt board refuses or takes: loads and stores of
 * each size to the CLINT's msip, mtimecmp and mtime and to the syscon test device, misaligned
 * stores, and (last) loads that run past the end of a device's registers or of RAM. A trap handler
 * records mcause and mtval and skips the access; one line per case gives the value read, "ok",
 * or the fault.
 *
 * Left out on purpose, as QEMU 7.2's answers come from how it splits misaligned accesses rather
 * than from its devices' rules: misaligned loads that stay inside a device (it makes two aligned
 * loads and answers, though the devices declare misaligned accesses invalid; vmhost faults),
 * and stores that run past the end of a device or of RAM (it stores byte by byte, so it faults
 * at the first byte a device refuses, or writes the part inside RAM before faulting). */
#include "runtime.h"

uint64_t trap_cause, trap_tval, trap_count;

/* Records mcause and mtval and resumes after the faulting instruction, which is always 4 bytes:
   the probes are assembled without compressed instructions. Uses only t0 and t1, which every
   probe declares clobbered. */
__asm__(".text\n.balign 4\nprobe_trap:\n"
        "  csrr t0, mcause\n  la t1, trap_cause\n  sd t0, 0(t1)\n"
        "  csrr t0, mtval\n  la t1, trap_tval\n  sd t0, 0(t1)\n"
        "  la t1, trap_count\n  ld t0, 0(t1)\n  addi t0, t0, 1\n  sd t0, 0(t1)\n"
        "  csrr t0, mepc\n  addi t0, t0, 4\n  csrw mepc, t0\n  mret\n");
extern void probe_trap(void);

#define LOAD(insn, a) ({ uint64_t v_ = 0x5a5a5a5a5a5a5a5aull; trap_count = 0; \
    __asm__ volatile(".option push\n.option norvc\n" insn " %0, 0(%1)\n.option pop" \
                     : "+r"(v_) : "r"((uint64_t)(a)) : "t0", "t1", "memory"); v_; })
#define STORE(insn, a, v) do { trap_count = 0; \
    __asm__ volatile(".option push\n.option norvc\n" insn " %1, 0(%0)\n.option pop" \
                     :: "r"((uint64_t)(a)), "r"((uint64_t)(v)) : "t0", "t1", "memory"); } while (0)

static void report(const char *insn, uint64_t a, uint64_t v, int show)
{
    printf("%s %lx: ", insn, a);
    if (trap_count)
        printf("fault mcause=%lu mtval=%lx\n", trap_cause, trap_tval);
    else if (show)
        printf("%lx\n", v);
    else
        print("ok\n");
}

#define L(insn, a) report(insn, a, LOAD(insn, a), 1)
#define LQ(insn, a) report(insn, a, LOAD(insn, a), 0) /* the value varies: mtime */
#define S(insn, a, v) do { STORE(insn, a, v); report(insn, a, 0, 0); } while (0)

/* Addresses relative to the end of RAM, so the lines read the same whatever the RAM size. */
static void print_rel(uint64_t a, uint64_t end)
{
    if (a < end)
        printf("end-%lx", end - a);
    else
        printf("end+%lx", a - end);
}

static void ram_load_report(const char *insn, uint64_t end, uint64_t back, uint64_t v)
{
    printf("%s ", insn);
    print_rel(end - back, end);
    if (trap_count) {
        printf(": fault mcause=%lu mtval=", trap_cause);
        print_rel(trap_tval, end);
        print("\n");
    } else {
        printf(": %lx\n", v);
    }
}

#define RAM_LOAD(insn, end, back) ram_load_report(insn, end, back, LOAD(insn, (end) - (back)))

#define MSIP     (CLINT_BASE + 0x0)
#define MTIMECMP (CLINT_BASE + 0x4000)
#define MTIME    (CLINT_BASE + 0xbff8)
#define CMP_INIT 0x1122334455667788ull

static void cmp_set(uint64_t v) { *(volatile uint64_t *)MTIMECMP = v; }
static void cmp_show(void) { printf("  mtimecmp = %lx\n", *(volatile uint64_t *)MTIMECMP); }

int main(void)
{
    /* Interrupts stay disabled (mie = 0), so an mtimecmp in the past raises nothing. */
    __asm__ volatile("csrw mtvec, %0" ::"r"(probe_trap));

    print("clint mtimecmp\n");
    cmp_set(CMP_INIT);
    L("ld", MTIMECMP); L("lw", MTIMECMP); L("lw", MTIMECMP + 4); L("lwu", MTIMECMP + 4);
    L("lh", MTIMECMP); L("lhu", MTIMECMP + 2); L("lb", MTIMECMP); L("lbu", MTIMECMP + 7);
    S("sw", MTIMECMP + 4, 0xaabbccdd); cmp_show();
    S("sw", MTIMECMP, 0x01020304); cmp_show();
    S("sd", MTIMECMP, CMP_INIT); cmp_show();
    /* The misaligned `sd` once left 0x5566778800000000 behind. */
    S("sd", MTIMECMP + 4, 0x55667788ull); cmp_show();
    S("sd", MTIMECMP + 1, 0); S("sw", MTIMECMP + 2, 0); S("sh", MTIMECMP, 0); S("sh", MTIMECMP + 6, 0);
    S("sb", MTIMECMP, 0); S("sb", MTIMECMP + 7, 0); cmp_show();
    L("ld", MTIMECMP + 8); L("lw", MTIMECMP + 8); L("lw", CLINT_BASE + 0x5000);

    print("clint mtime\n");
    LQ("ld", MTIME); LQ("lw", MTIME); LQ("lw", MTIME + 4);
    LQ("lh", MTIME); LQ("lb", MTIME + 7);

    print("clint msip\n");
    S("sw", MSIP, 0); L("lw", MSIP); L("lw", CLINT_BASE + 8); L("lw", CLINT_BASE + 0x3ffc);
    L("ld", MSIP); L("lh", MSIP); L("lb", MSIP);
    S("sd", MSIP, 0); S("sh", MSIP, 0); S("sb", MSIP, 0); S("sw", MSIP + 2, 0);

    print("clint past its registers\n");
    L("lw", CLINT_BASE + 0xc000); L("ld", CLINT_BASE + 0xfff8); L("lw", CLINT_BASE + 0xfffc);

    print("syscon\n");
    L("lh", SYSCON_BASE); L("lw", SYSCON_BASE); L("lw", SYSCON_BASE + 0xffc);
    L("lb", SYSCON_BASE); L("ld", SYSCON_BASE);
    S("sh", SYSCON_BASE, 0); S("sw", SYSCON_BASE, 0); S("sh", SYSCON_BASE + 2, 0x5555);
    S("sb", SYSCON_BASE, 0); S("sd", SYSCON_BASE, 0); S("sw", SYSCON_BASE + 2, 0);
    S("sh", SYSCON_BASE + 1, 0);

    /* Loads that start inside and run past the end fault at the first byte past it. */
    print("running past the end\n");
    L("ld", MTIME + 4); L("lw", MTIME + 6);
    /* vmhost has nothing at 0x101000; QEMU has its RTC there, which refuses 2-byte loads. */
    L("lh", SYSCON_BASE + 0xfff);
    /* RAM ends where a byte load first faults, probed a MiB at a time. */
    uint64_t end = 0x80000000ull;
    while (LOAD("lb", end), !trap_count)
        end += 0x100000;
    RAM_LOAD("ld", end, 4); RAM_LOAD("lw", end, 2); RAM_LOAD("lh", end, 1); RAM_LOAD("ld", end, 3);
    RAM_LOAD("lb", end, 0);
    return 0;
}
