/* Four harts increment shared counters at once: with amoadd.d, with an lr.d/sc.d loop, with
   amoadd.w, and amomaxu.d records the highest hart id. Every total must be exact. Run with four
   harts (vmhost: [machine] harts = 4; QEMU: -smp 4); smp_start.S releases harts 1-3. */
#include "runtime.h"

#define HARTS 4
#define ITERS 1000000

/* In .data, not .bss: the secondaries read it before hart 0 has zeroed .bss. */
volatile uint64_t smp_go __attribute__((section(".data"))) = 0;

static volatile uint64_t amo_counter, lrsc_counter, max_hart, finished;
static volatile uint32_t amo32_counter;

static void lrsc_add(volatile uint64_t *p, uint64_t v)
{
    uint64_t tmp, fail;
    __asm__ volatile("1: lr.d.aq %0, (%2)\n"
                     "   add %0, %0, %3\n"
                     "   sc.d.rl %1, %0, (%2)\n"
                     "   bnez %1, 1b\n"
                     : "=&r"(tmp), "=&r"(fail)
                     : "r"(p), "r"(v)
                     : "memory");
}

void worker(uint64_t hart)
{
    for (int i = 0; i < ITERS; i++) {
        __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(&amo_counter), "r"(1UL) : "memory");
        lrsc_add(&lrsc_counter, 1);
        __asm__ volatile("amoadd.w zero, %1, (%0)" : : "r"(&amo32_counter), "r"(1) : "memory");
    }
    __asm__ volatile("amomaxu.d zero, %1, (%0)" : : "r"(&max_hart), "r"(hart) : "memory");
    __asm__ volatile("amoadd.d.aqrl zero, %1, (%0)" : : "r"(&finished), "r"(1UL) : "memory");
}

int main(void)
{
    __asm__ volatile("fence rw, w" ::: "memory");
    smp_go = 1;
    worker(0);
    while (finished != HARTS)
        ;
    __asm__ volatile("fence r, r" ::: "memory");
    printf("smp: amoadd.d total %lu\n", amo_counter);
    printf("smp: lr/sc total %lu\n", lrsc_counter);
    printf("smp: amoadd.w total %u\n", amo32_counter);
    printf("smp: highest hart %lu\n", max_hart);
    int ok = amo_counter == (uint64_t)HARTS * ITERS && lrsc_counter == (uint64_t)HARTS * ITERS &&
             amo32_counter == (uint32_t)HARTS * ITERS && max_hart == HARTS - 1;
    printf("smp: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
