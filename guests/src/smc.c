/* Self-modifying code: a store to code that has run must change what runs next, even without
 * fence.i (QEMU invalidates its translations on any store to a page holding code; real harts need
 * fence.i, so each case also runs with it). Patches whole words, halfwords and bytes, changes
 * instruction lengths, patches the half of an instruction that lies on the next page, a loop that
 * patches its next iteration, a store to a later instruction of the running block, and code
 * written through a second virtual mapping of its page (Sv39, in S) or by S while M runs it
 * untranslated. One line per check; the output is compared with QEMU's. */
#include "runtime.h"

#define DONE 0xd0e
#define LI_A0(imm) ((uint32_t)(imm) << 20 | 0x513)     /* addi a0, zero, imm */
#define ADDI_A0(imm) ((uint32_t)(imm) << 20 | 0x50513) /* addi a0, a0, imm */
#define RET 0x00008067u                                 /* jalr zero, 0(ra) */
#define C_LI_A0(imm) (0x4501u | ((imm) & 0x1f) << 2)    /* c.li a0, imm (0..31) */
#define C_NOP 0x0001u

#define STR_(x) #x
#define STR(x) STR_(x)
#define csrr(csr) ({ uint64_t v_; __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csrw(csr, v) __asm__ volatile("csrw " STR(csr) ", %0" :: "r"((uint64_t)(v)) : "memory")
#define fence_i() __asm__ volatile("fence.i" ::: "memory")

typedef uint64_t (*fn_t)(uint64_t);

/* Two pages of code written at run time; .data is RWX for M. */
static volatile uint32_t buf[2048] __attribute__((aligned(4096)));
static volatile uint32_t alias_page[1024] __attribute__((aligned(4096)));

static uint64_t call(volatile void *code, uint64_t arg) { return ((fn_t)(uintptr_t)code)(arg); }

static void put(volatile uint32_t *at, uint32_t a, uint32_t b)
{
    at[0] = a;
    at[1] = b;
}

/* The loop and the store-ahead code live in .text, written by themselves. a0 = iterations;
   returns the sum of the immediates of the patched addi, which grows by one per iteration. */
uint64_t smc_loop(uint64_t n);
uint64_t smc_ahead_fenced(uint64_t insn);
extern uint32_t smc_loop_insn[], smc_ahead_fenced_insn[];
__asm__(".text\n .balign 4\n .option push\n .option norvc\n"
        " .globl smc_loop\n smc_loop:\n mv t2, a0\n li a0, 0\n lla t0, smc_loop_insn\n li t3, 1 << 20\n"
        " smc_loop_insn: addi a0, a0, 1\n lw t1, 0(t0)\n add t1, t1, t3\n sw t1, 0(t0)\n"
        " addi t2, t2, -1\n bnez t2, smc_loop_insn\n ret\n"
        /* a0 = the word that replaces the li before it runs, in the same block. */
        " .globl smc_ahead_fenced\n smc_ahead_fenced:\n lla t0, smc_ahead_fenced_insn\n sw a0, 0(t0)\n fence.i\n"
        " smc_ahead_fenced_insn: li a0, 1\n ret\n"
        " .option pop\n");

static void plain(void)
{
    put(buf, LI_A0(1), RET);
    fence_i();
    uint64_t a = call(buf, 0), b = call(buf, 0);
    buf[0] = LI_A0(2);
    uint64_t c = call(buf, 0);
    printf("word patched, no fence.i: %lu %lu then %lu\n", a, b, c);
    buf[0] = LI_A0(3);
    fence_i();
    printf("word patched, fence.i: %lu\n", call(buf, 0));

    /* Upper half of li a0, 3: imm[11:4] and rs1; 0x70 makes imm 7. */
    ((volatile uint16_t *)buf)[1] = 7 << 4;
    printf("halfword patched, no fence.i: %lu\n", call(buf, 0));
    ((volatile uint8_t *)buf)[3] = 0x10;            /* imm[11:4] = 0x10: 0x107 */
    printf("byte patched, no fence.i: %lu\n", call(buf, 0));
    ((volatile uint8_t *)buf)[3] = 0x20;
    fence_i();
    printf("byte patched, fence.i: %lu\n", call(buf, 0));

    /* A 4-byte instruction becomes two 2-byte ones, and back. */
    buf[0] = C_LI_A0(9) | C_NOP << 16;
    printf("li replaced by c.li + c.nop, no fence.i: %lu\n", call(buf, 0));
    buf[0] = LI_A0(11);
    printf("c.li + c.nop replaced by li, no fence.i: %lu\n", call(buf, 0));
    buf[0] = C_LI_A0(13) | C_NOP << 16;
    fence_i();
    printf("li replaced by c.li + c.nop, fence.i: %lu\n", call(buf, 0));

    /* A straight run of six addi: stores into its middle, not at the address it is entered at. */
    volatile uint32_t *run = &buf[64];
    for (int i = 0; i < 6; i++)
        run[i] = ADDI_A0(1);
    run[6] = RET;
    fence_i();
    uint64_t d = call(run, 0);
    run[3] = ADDI_A0(10);
    uint64_t e = call(run, 0);
    run[4] = ADDI_A0(100);
    fence_i();
    printf("middle of a run patched: %lu, no fence.i: %lu, fence.i: %lu\n", d, e, call(run, 0));
}

static void across_pages(void)
{
    /* c.nop at 0xffc, then li a0, 21 from 0xffe to 0x1001, ret at 0x1002. */
    volatile uint16_t *h = (volatile uint16_t *)buf;
    h[0x7fe] = C_NOP;
    h[0x7ff] = LI_A0(21) & 0xffff;
    h[0x800] = LI_A0(21) >> 16;
    h[0x801] = RET & 0xffff;
    h[0x802] = RET >> 16;
    fence_i();
    uint64_t a = call(&h[0x7fe], 0);
    h[0x800] = LI_A0(22) >> 16;                    /* only the half on the second page */
    uint64_t b = call(&h[0x7fe], 0);
    h[0x800] = LI_A0(23) >> 16;
    fence_i();
    uint64_t c = call(&h[0x7fe], 0);
    printf("instruction across a page, second half patched: %lu then %lu, fence.i: %lu\n", a, b, c);
}

static void self(void)
{
    for (int i = 0; i < 2; i++) {
        *(volatile uint32_t *)smc_loop_insn = 0x00150513;     /* addi a0, a0, 1 */
        printf("loop patching its next iteration, run %d: %lu\n", i + 1, smc_loop(10));
    }
    *(volatile uint32_t *)smc_loop_insn = 0x00150513;
    fence_i();
    printf("loop patching its next iteration, after fence.i: %lu\n", smc_loop(100));

    /* Without fence.i the running block may keep the old instruction (QEMU 7.2 does; the spec
       allows either), so only the fenced form is checked. */
    for (uint32_t v = 5; v < 7; v++) {
        *(volatile uint32_t *)smc_ahead_fenced_insn = LI_A0(1);
        printf("store to a later instruction of the block, fence.i: %lu\n", smc_ahead_fenced(LI_A0(v)));
    }
}

/* ---- S with Sv39: the page mapped twice ---- */
#define XVA 0x40000000ull       /* alias_page, R X */
#define WVA 0x40001000ull       /* alias_page, R W */
#define PTE_V 1
#define PTE_R 2
#define PTE_W 4
#define PTE_X 8
#define PTE_AD 0xc0
static uint64_t pt[3][512] __attribute__((aligned(4096)));
static uint64_t pte(uint64_t pa, uint64_t flags) { return (pa >> 12) << 10 | flags; }

volatile uint64_t r_a0, r_a1, m_cause;
uint64_t run_ctx[14];
void run_in(uint64_t mode, uint64_t pc, uint64_t a1, uint64_t a2, uint64_t a3);
extern char m_trap[], p_alias[], p_alias_fenced[], p_store[];
__asm__(".text\n .balign 4\n m_trap:\n"
        " sd a0, r_a0, t0\n sd a1, r_a1, t0\n csrr t1, mcause\n sd t1, m_cause, t0\n"
        " li t1, 0xd0e\n bne a7, t1, 1f\n li t1, -1\n sd t1, m_cause, t0\n"
        "1: lla t0, run_ctx\n ld ra, 0(t0)\n ld sp, 8(t0)\n"
        " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n ld s\\n, 16+\\n*8(t0)\n .endr\n ret\n"
        " .globl run_in\n run_in:\n lla t0, run_ctx\n sd ra, 0(t0)\n sd sp, 8(t0)\n"
        " .irp n, 0,1,2,3,4,5,6,7,8,9,10,11\n sd s\\n, 16+\\n*8(t0)\n .endr\n"
        " li t1, 0x1800\n csrc mstatus, t1\n slli a0, a0, 11\n csrs mstatus, a0\n"
        " csrw mepc, a1\n mv a1, a2\n mv a2, a3\n mv a3, a4\n li a0, 0\n"
        " lla sp, s_stack_top\n li ra, 0\n mret\n"
        /* S: call a1, store a3 at a2, call a1 again; a0/a1 = the two results. */
        " p_alias: jalr a1\n mv t3, a0\n sw a3, 0(a2)\n jalr a1\n mv a1, a0\n mv a0, t3\n j p_done\n"
        " p_alias_fenced: jalr a1\n mv t3, a0\n sw a3, 0(a2)\n fence.i\n jalr a1\n mv a1, a0\n mv a0, t3\n"
        " j p_done\n"
        " p_store: sw a3, 0(a2)\n"
        " p_done: li a7, 0xd0e\n ebreak\n"
        " .section .bss\n .balign 16\n .space 4096\n s_stack_top:\n .text\n");

static void s_run(const char *what, char *probe, uint32_t insn)
{
    r_a0 = r_a1 = 0;
    run_in(1, (uint64_t)probe, XVA, WVA, insn);
    printf("%s: %lu then %lu", what, r_a0, r_a1);
    if (m_cause != ~0ull)
        printf(" trap mcause=%lu", m_cause);
    print("\n");
}

static void aliases(void)
{
    csrw(pmpaddr0, ~0ull);
    csrw(pmpcfg0, 0x1f);
    pt[0][2] = pte(0x80000000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_AD);     /* the kernel, 1 GiB */
    pt[0][1] = pte((uint64_t)pt[1], PTE_V);
    pt[1][0] = pte((uint64_t)pt[2], PTE_V);
    pt[2][0] = pte((uint64_t)alias_page, PTE_V | PTE_R | PTE_X | PTE_AD);
    pt[2][1] = pte((uint64_t)alias_page, PTE_V | PTE_R | PTE_W | PTE_AD);
    csrw(mtvec, m_trap);
    csrw(satp, (8ull << 60) | ((uint64_t)pt[0] >> 12));
    __asm__ volatile("sfence.vma" ::: "memory");

    put(alias_page, LI_A0(1), RET);
    fence_i();
    s_run("S writes through another mapping, no fence.i", p_alias, LI_A0(2));
    s_run("S writes through another mapping, fence.i", p_alias_fenced, LI_A0(3));

    /* M runs the page at its physical address; S rewrites it through WVA. */
    put(alias_page, LI_A0(4), RET);
    fence_i();
    uint64_t a = call(alias_page, 0);
    run_in(1, (uint64_t)p_store, XVA, WVA, LI_A0(5));
    uint64_t b = call(alias_page, 0);
    printf("M runs the page, S writes it through a mapping, no fence.i: %lu then %lu%s\n", a, b,
           m_cause == ~0ull ? "" : " (S trapped)");

    csrw(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    extern void trap_entry(void);
    csrw(mtvec, trap_entry);
}

int main(void)
{
    print("smc: self-modifying code\n");
    plain();
    across_pages();
    self();
    aliases();
    print("smc: done\n");
    return 0;
}
