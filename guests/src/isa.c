/* Self-checking RV64IM + Zicsr edge cases that compiled code rarely hits. Every operation is
   inline asm on register operands, so gcc cannot constant-fold it away. */
#include "runtime.h"

#define ALL   0xFFFFFFFFFFFFFFFFull
#define MIN64 0x8000000000000000ull
#define MAX64 0x7FFFFFFFFFFFFFFFull

static unsigned passed, failed;

static void check(const char *what, uint64_t got, uint64_t want)
{
    if (got == want) {
        passed++;
        return;
    }
    failed++;
    printf("isa: FAIL %s: got 0x%lx want 0x%lx\n", what, got, want);
}

#define RR(op, a, b) ({ uint64_t r_; \
    __asm__ volatile(op " %0, %1, %2" : "=r"(r_) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); r_; })
#define RI(op, a, imm) ({ uint64_t r_; \
    __asm__ volatile(op " %0, %1, %2" : "=r"(r_) : "r"((uint64_t)(a)), "i"(imm)); r_; })
#define CHECK_RR(op, a, b, want) check(op " " #a ", " #b, RR(op, a, b), want)
#define CHECK_RI(op, a, imm, want) check(op " " #a ", " #imm, RI(op, a, imm), want)

static void test_div(void)
{
    /* Division by zero: quotient all ones, remainder the dividend (no trap). */
    CHECK_RR("div",   7, 0, ALL);
    CHECK_RR("div",   -7, 0, ALL);
    CHECK_RR("divu",  7, 0, ALL);
    CHECK_RR("rem",   7, 0, 7);
    CHECK_RR("rem",   -7, 0, (uint64_t)-7);
    CHECK_RR("remu",  7, 0, 7);
    CHECK_RR("divw",  7, 0, ALL);
    CHECK_RR("divuw", 7, 0, ALL);
    CHECK_RR("remw",  0x123456789ull, 0, 0x23456789);
    CHECK_RR("remw",  0xF000000080000001ull, 0, 0xFFFFFFFF80000001ull);
    CHECK_RR("remuw", 0x80000001, 0, 0xFFFFFFFF80000001ull);     /* W results sign-extend */
    /* Signed overflow: quotient is the dividend, remainder 0. */
    CHECK_RR("div",   MIN64, -1, MIN64);
    CHECK_RR("rem",   MIN64, -1, 0);
    CHECK_RR("divw",  0x80000000, -1, 0xFFFFFFFF80000000ull);
    CHECK_RR("remw",  0x80000000, -1, 0);
    /* Rounding toward zero, and W forms ignoring the upper 32 bits. */
    CHECK_RR("div",   -7, 2, (uint64_t)-3);
    CHECK_RR("rem",   -7, 2, (uint64_t)-1);
    CHECK_RR("rem",   7, -2, 1);
    CHECK_RR("divu",  -7, 2, 0x7FFFFFFFFFFFFFFCull);
    CHECK_RR("remu",  -7, 2, 1);
    CHECK_RR("divw",  0xABCD000000000010ull, 0xFFFFFFFFFFFFFFFCull, (uint64_t)-4);
    CHECK_RR("divuw", 0xFFFFFFFF, 1, ALL);
    CHECK_RR("divuw", 0x100000007ull, 0x100000002ull, 3);
    CHECK_RR("remuw", 0xFFFFFFFF, 0x10, 0xF);
}

static void test_mul(void)
{
    CHECK_RR("mul",    ALL, ALL, 1);
    CHECK_RR("mul",    MIN64, -1, MIN64);
    CHECK_RR("mulh",   ALL, ALL, 0);
    CHECK_RR("mulh",   MIN64, MIN64, 0x4000000000000000ull);
    CHECK_RR("mulh",   MIN64, MAX64, 0xC000000000000000ull);
    CHECK_RR("mulhu",  ALL, ALL, 0xFFFFFFFFFFFFFFFEull);
    CHECK_RR("mulhu",  MIN64, 4, 2);
    CHECK_RR("mulhsu", ALL, ALL, ALL);                /* -1 * (2^64-1) */
    CHECK_RR("mulhsu", 2, ALL, 1);
    CHECK_RR("mulhsu", MIN64, 2, ALL);
    CHECK_RR("mulhsu", MAX64, 4, 1);
    CHECK_RR("mulw",   0x7FFFFFFF, 2, 0xFFFFFFFFFFFFFFFEull);
    CHECK_RR("mulw",   0x100000003ull, 0x100000005ull, 15);
}

static void test_shift(void)
{
    /* Register shift amounts use only the low 6 (or, for W forms, 5) bits. */
    CHECK_RR("sll",  1, 65, 2);
    CHECK_RR("sll",  1, 63, MIN64);
    CHECK_RR("srl",  MIN64, 67, 0x1000000000000000ull);
    CHECK_RR("sra",  MIN64, 127, ALL);
    CHECK_RR("sra",  MIN64, 68, 0xF800000000000000ull);
    CHECK_RR("sllw", 1, 33, 2);
    CHECK_RR("sllw", 1, 31, 0xFFFFFFFF80000000ull);
    CHECK_RR("srlw", 0xFFFFFFFF80000000ull, 4, 0x08000000);
    CHECK_RR("srlw", 0x80000000, 32, 0xFFFFFFFF80000000ull);
    CHECK_RR("sraw", 0x80000000, 63, ALL);
    CHECK_RR("sraw", 0x123456787FFFFFFFull, 4, 0x07FFFFFF);
    CHECK_RI("slli",  1, 63, MIN64);
    CHECK_RI("srli",  ALL, 63, 1);
    CHECK_RI("srai",  MIN64, 63, ALL);
    CHECK_RI("slliw", 1, 31, 0xFFFFFFFF80000000ull);
    CHECK_RI("srliw", ALL, 31, 1);
    CHECK_RI("srliw", 0x80000000, 0, 0xFFFFFFFF80000000ull);
    CHECK_RI("sraiw", 0x80000000, 31, ALL);
}

static void test_compare(void)
{
    CHECK_RR("slt",   -1, 0, 1);
    CHECK_RR("sltu",  -1, 0, 0);
    CHECK_RR("slt",   MIN64, MAX64, 1);
    CHECK_RR("sltu",  MIN64, MAX64, 0);
    CHECK_RI("slti",  -1, 0, 1);
    CHECK_RI("sltiu", 5, -1, 1);                      /* immediate sign-extends, then unsigned */
    CHECK_RI("sltiu", ALL, -1, 0);
    CHECK_RI("sltiu", 0, 1, 1);

#define BR(op, a, b) ({ uint64_t r_; __asm__ volatile( \
    "li %0, 1\n" op " %1, %2, 1f\n li %0, 0\n1:" : "=&r"(r_) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); r_; })
#define CHECK_BR(op, a, b, taken) check(op " " #a ", " #b, BR(op, a, b), taken)
    CHECK_BR("blt",  -1, 0, 1);
    CHECK_BR("bltu", -1, 0, 0);
    CHECK_BR("bge",  0, -1, 1);
    CHECK_BR("bgeu", 0, -1, 0);
    CHECK_BR("bge",  MIN64, MIN64, 1);
    CHECK_BR("bne",  MIN64, 0, 1);
}

static void test_arith(void)
{
    CHECK_RI("addiw", 0x7FFFFFFF, 1, 0xFFFFFFFF80000000ull);
    CHECK_RI("addiw", 0x100000000ull, 0, 0);
    CHECK_RI("addiw", 0xFFFFFFFF, 0, ALL);
    CHECK_RR("addw",  0x7FFFFFFF, 1, 0xFFFFFFFF80000000ull);
    CHECK_RR("subw",  0, 1, ALL);
    CHECK_RR("subw",  0x100000000ull, 0, 0);
    CHECK_RR("add",   MAX64, 1, MIN64);
    CHECK_RR("sub",   0, 1, ALL);
    CHECK_RI("andi",  0xFFFFFFFF00001234ull, -16, 0xFFFFFFFF00001230ull);
    CHECK_RI("ori",   0, -2048, 0xFFFFFFFFFFFFF800ull);
    CHECK_RI("xori",  0x0F, -1, 0xFFFFFFFFFFFFFFF0ull);
}

static const uint8_t lmem[16] __attribute__((aligned(8))) = {
    0x81, 0x80, 0x01, 0x80, 0x7F, 0x00, 0x00, 0x80,
};

#define LOAD(op, base, off) ({ uint64_t r_; \
    __asm__ volatile(op " %0, %2(%1)" : "=r"(r_) : "r"(base), "i"(off) : "memory"); r_; })

static void test_load_store(void)
{
    const uint8_t *p = lmem, *end = lmem + 8;
    check("lb 0x81",        LOAD("lb",  p, 0), 0xFFFFFFFFFFFFFF81ull);
    check("lbu 0x81",       LOAD("lbu", p, 0), 0x81);
    check("lb 0x7f",        LOAD("lb",  p, 4), 0x7F);
    check("lh 0x8001",      LOAD("lh",  p, 2), 0xFFFFFFFFFFFF8001ull);
    check("lhu 0x8001",     LOAD("lhu", p, 2), 0x8001);
    check("lw 0x8000007f",  LOAD("lw",  p, 4), 0xFFFFFFFF8000007Full);
    check("lwu 0x8000007f", LOAD("lwu", p, 4), 0x8000007F);
    check("ld",             LOAD("ld",  p, 0), 0x8000007F80018081ull);
    check("lw -4(end)",     LOAD("lw",  end, -4), 0xFFFFFFFF8000007Full);
    check("lbu -8(end)",    LOAD("lbu", end, -8), 0x81);

    /* Narrow stores must leave the neighbouring bytes alone. */
    volatile uint64_t w = 0xAAAAAAAAAAAAAAAAull;
    __asm__ volatile("sb %1, 1(%0)" :: "r"(&w), "r"(0x1FFull) : "memory");
    check("sb", w, 0xAAAAAAAAAAAAFFAAull);
    __asm__ volatile("sh %1, 2(%0)" :: "r"(&w), "r"(0xABCD1234ull) : "memory");
    check("sh", w, 0xAAAAAAAA1234FFAAull);
    __asm__ volatile("sw %1, 4(%0)" :: "r"(&w), "r"(0x187654321ull) : "memory");
    check("sw", w, 0x876543211234FFAAull);
}

static void test_upper_and_jumps(void)
{
    uint64_t r, a, b;
    __asm__ volatile("lui %0, 0x80000" : "=r"(r));
    check("lui 0x80000", r, 0xFFFFFFFF80000000ull);
    __asm__ volatile("lui %0, 0x7FFFF" : "=r"(r));
    check("lui 0x7ffff", r, 0x7FFFF000);
    __asm__ volatile("lui %0, 0xFFFFF" : "=r"(r));
    check("lui 0xfffff", r, 0xFFFFFFFFFFFFF000ull);

    /* The linker, not auipc, supplies the reference address (an absolute .dword). */
    __asm__ volatile("1: auipc %0, 0\n"
                     ".pushsection .rodata\n .balign 8\n 2: .dword 1b\n .popsection\n"
                     "lla %1, 2b\n ld %1, 0(%1)" : "=r"(a), "=r"(b));
    check("auipc 0", a, b);
    __asm__ volatile("auipc %0, 0x80000\n auipc %1, 0" : "=r"(a), "=r"(b));
    check("auipc 0x80000 (sign-extended)", b - a, 0x80000004);

    /* jalr: target bit 0 cleared; with rd == rs1 the link is written after the target is read. */
    __asm__ volatile("li %0, 0\n lla t0, 1f\n jalr %1, 1(t0)\n 2: li %0, 1\n 1:\n"
                     "lla t0, 2b\n sub %1, %1, t0" : "=&r"(r), "=&r"(a) :: "t0");
    check("jalr odd target skipped", r, 0);
    check("jalr link", a, 0);
    __asm__ volatile("li %0, 0\n lla %1, 1f\n jalr %1, 0(%1)\n 2: li %0, 1\n 1:\n"
                     "lla t0, 2b\n sub %1, %1, t0" : "=&r"(r), "=&r"(a) :: "t0");
    check("jalr rd==rs1 skipped", r, 0);
    check("jalr rd==rs1 link", a, 0);

    /* x0 stays zero whatever is written to it, including by a load. */
    __asm__ volatile("li t0, 5\n addi x0, t0, 1\n add x0, t0, t0\n lui x0, 1\n"
                     "ld x0, 0(%1)\n jal x0, 1f\n 1: mv %0, x0" : "=r"(r) : "r"(lmem) : "t0");
    check("x0 writes discarded", r, 0);
}

static void test_csr(void)
{
    uint64_t old, now;
#define RD_SCRATCH() ({ uint64_t v_; __asm__ volatile("csrr %0, mscratch" : "=r"(v_)); v_; })
    __asm__ volatile("csrw mscratch, %0" :: "r"(ALL));
    check("mscratch all ones", RD_SCRATCH(), ALL);
    __asm__ volatile("csrrw %0, mscratch, %1" : "=r"(old) : "r"(0x8000000000000F0Full));
    check("csrrw old", old, ALL);
    check("csrrw new", RD_SCRATCH(), 0x8000000000000F0Full);
    __asm__ volatile("csrrs %0, mscratch, %1" : "=r"(old) : "r"(0xF0ull));
    check("csrrs old", old, 0x8000000000000F0Full);
    check("csrrs new", RD_SCRATCH(), 0x8000000000000FFFull);
    __asm__ volatile("csrrc %0, mscratch, %1" : "=r"(old) : "r"(0x8000000000000F00ull));
    check("csrrc old", old, 0x8000000000000FFFull);
    check("csrrc new", RD_SCRATCH(), 0xFF);
    __asm__ volatile("csrrs %0, mscratch, x0" : "=r"(old));
    check("csrrs x0 reads", old, 0xFF);
    check("csrrs x0 no write", RD_SCRATCH(), 0xFF);
    __asm__ volatile("csrrwi %0, mscratch, 21" : "=r"(old));  /* uimm zero-extends */
    check("csrrwi old", old, 0xFF);
    check("csrrwi new", RD_SCRATCH(), 21);
    __asm__ volatile("csrrsi %0, mscratch, 10" : "=r"(old));
    check("csrrsi old", old, 21);
    check("csrrsi new", RD_SCRATCH(), 31);
    __asm__ volatile("csrrci %0, mscratch, 17" : "=r"(old));
    check("csrrci old", old, 31);
    check("csrrci new", RD_SCRATCH(), 14);

    extern char trap_entry[];
    __asm__ volatile("csrr %0, mtvec" : "=r"(now));
    check("mtvec = trap_entry", now, (uint64_t)trap_entry);
    check("mhartid", rdhartid(), 0);

    uint64_t i0 = rdinstret(), c0 = rdcycle(), t0 = rdtime();
    uint64_t i1 = rdinstret(), c1 = rdcycle(), t1 = rdtime();
    check("minstret advances", i1 > i0, 1);
    check("mcycle advances", c1 > c0, 1);
    check("time monotonic", t1 >= t0, 1);
}

/* Temporary trap handler for expected traps: records the trap, skips the trapping instruction
   (2 bytes if compressed, else 4: low bits 0b11 mark a 32-bit one) and returns. Uses only t0/t1,
   which every TRAP() declares clobbered. */
__attribute__((used)) static volatile uint64_t trap_rec[5];   /* mcause, mepc, mtval, mstatus, count */
__asm__(".text\n .balign 4\n isa_trap:\n"
        " lla t0, trap_rec\n"
        " csrr t1, mcause\n  sd t1, 0(t0)\n"
        " csrr t1, mepc\n    sd t1, 8(t0)\n"
        " lhu t1, 0(t1)\n    andi t1, t1, 3\n addi t1, t1, -3\n seqz t1, t1\n"   /* 1 if 32-bit */
        " slli t1, t1, 1\n   addi t1, t1, 2\n csrr t0, mepc\n add t1, t1, t0\n csrw mepc, t1\n"
        " lla t0, trap_rec\n"
        " csrr t1, mtval\n   sd t1, 16(t0)\n"
        " csrr t1, mstatus\n sd t1, 24(t0)\n"
        " ld t1, 32(t0)\n    addi t1, t1, 1\n sd t1, 32(t0)\n"
        " mret\n");

/* Runs insn (which must trap) under isa_trap, with %2 = addr; returns insn's linked address.
   The "li %1, 1" after insn proves execution resumed right behind it. */
#define TRAP(insn, addr) ({ uint64_t at_, resumed_; \
    __asm__ volatile("lla t0, isa_trap\n csrrw t2, mtvec, t0\n li %1, 0\n" \
                     "1: " insn "\n li %1, 1\n csrw mtvec, t2\n" \
                     ".pushsection .rodata\n .balign 8\n 2: .dword 1b\n .popsection\n" \
                     "lla %0, 2b\n ld %0, 0(%0)" \
                     : "=&r"(at_), "=&r"(resumed_) : "r"((uint64_t)(addr)) : "t0", "t1", "t2", "memory"); \
    check("resumed after " insn, resumed_, 1); at_; })

static void expect_trap(const char *what, uint64_t at, uint64_t cause, int check_tval, uint64_t tval)
{
    char name[64];
    size_t n = strlen(what);
    memcpy(name, what, n);
    memcpy(name + n, ": mcause", 9);
    check(name, trap_rec[0], cause);
    memcpy(name + n, ": mepc", 7);
    check(name, trap_rec[1], at);
    if (check_tval) {
        memcpy(name + n, ": mtval", 8);
        check(name, trap_rec[2], tval);
    }
    memcpy(name + n, ": MPP=M", 8);
    check(name, (trap_rec[3] >> 11) & 3, 3);
}

static void test_traps(void)
{
    uint64_t at;
    at = TRAP("ecall", 0);
    expect_trap("ecall", at, 11, 0, 0);
    at = TRAP("ebreak", 0);
    expect_trap("ebreak", at, 3, 0, 0);
    at = TRAP(".2byte 0", 0);                           /* all-zero halfword is defined illegal */
    expect_trap("illegal", at, 2, 0, 0);
    at = TRAP("ld t1, 0(%2)", 0);                       /* nothing is mapped at 0 on virt */
    expect_trap("load 0x0", at, 5, 1, 0);
    at = TRAP("lw t1, 0(%2)", 0x10);
    expect_trap("load 0x10", at, 5, 1, 0x10);
    at = TRAP("sd zero, 0(%2)", 0x8);
    expect_trap("store 0x8", at, 7, 1, 0x8);
    check("trap count", trap_rec[4], 6);

    uint64_t now;
    extern char trap_entry[];
    __asm__ volatile("csrr %0, mtvec" : "=r"(now));
    check("mtvec restored", now, (uint64_t)trap_entry);
}

int main(void)
{
    print("isa: testing RV64IM + Zicsr edge cases\n");
    test_div();
    test_mul();
    test_shift();
    test_compare();
    test_arith();
    test_load_store();
    test_upper_and_jumps();
    test_csr();
    test_traps();
    if (failed) {
        printf("isa: %u of %u checks FAILED\n", failed, passed + failed);
        return 1;
    }
    printf("isa: %u checks passed\n", passed);
    return 0;
}
