/* Interrupts end to end: a software interrupt through the CLINT's msip, then timer interrupts
 * through mtimecmp, waited for with wfi. Checks that each is taken, that mret resumes after the
 * wfi, and that the guest clock advanced by at least the programmed periods. */
#include "runtime.h"

#define MSIP     (*(volatile uint32_t *)(CLINT_BASE + 0x0))
#define MTIMECMP (*(volatile uint64_t *)(CLINT_BASE + 0x4000))
#define MTIME    (*(volatile uint64_t *)(CLINT_BASE + 0xbff8))

#define TICKS  5
#define PERIOD 10000 /* 1 ms at the 10 MHz timebase */

#define MIE_MSIE (1u << 3)
#define MIE_MTIE (1u << 7)
#define MSTATUS_MIE (1u << 3)
#define CAUSE_IRQ (1ull << 63)

static volatile unsigned timer_ticks, soft_irqs;
static volatile uint64_t bad_cause;

__attribute__((interrupt("machine"), aligned(4))) static void on_interrupt(void)
{
    uint64_t cause;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    if (cause == (CAUSE_IRQ | 7)) {
        timer_ticks++;
        MTIMECMP = timer_ticks < TICKS ? MTIME + PERIOD : ~0ull;
    } else if (cause == (CAUSE_IRQ | 3)) {
        soft_irqs++;
        MSIP = 0;
    } else {
        /* Anything else: stop all interrupt sources so main can report it. */
        bad_cause = cause;
        MTIMECMP = ~0ull;
        MSIP = 0;
        __asm__ volatile("csrc mie, %0" ::"r"(MIE_MSIE | MIE_MTIE));
    }
}

extern void trap_entry(void);

int main(void)
{
    __asm__ volatile("csrw mtvec, %0" ::"r"(on_interrupt));
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MSIE));
    __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));

    MSIP = 1;
    for (volatile int i = 0; i < 10000 && !soft_irqs; i++)
        ;

    uint64_t start = rdtime();
    MTIMECMP = MTIME + PERIOD;
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MTIE));
    while (timer_ticks < TICKS && !bad_cause)
        __asm__ volatile("wfi");
    uint64_t elapsed = rdtime() - start;

    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    __asm__ volatile("csrw mtvec, %0" ::"r"(trap_entry));

    if (bad_cause) {
        printf("timer: FAIL unexpected mcause %lx\n", bad_cause);
        return 1;
    }
    printf("timer: %u ticks, %u software interrupt\n", timer_ticks, soft_irqs);
    if (soft_irqs != 1 || elapsed < (uint64_t)TICKS * PERIOD) {
        printf("timer: FAIL (elapsed %lu, want at least %lu)\n", elapsed, (uint64_t)TICKS * PERIOD);
        return 1;
    }
    print("timer: OK\n");
    return 0;
}
