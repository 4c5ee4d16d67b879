/* Interrupt cost, timer: 1,000,000 machine timer interrupts back to back. mtimecmp = 0 keeps
 * the timer pending, so each mret takes the next one at once. The handler is a few instructions
 * of assembly that counts and, at the last one, sets mtimecmp to all ones so main can finish. */
#include "runtime.h"

#define COUNT 1000000

#define MTIMECMP (*(volatile uint64_t *)(CLINT_BASE + 0x4000))
#define MIE_MTIE (1u << 7)
#define MSTATUS_MIE (1u << 3)
#define CAUSE_TIMER ((1ull << 63) | 7)

/* Shared with the handler below, which knows these offsets. */
struct irq_state {
    uint64_t saved_t1;  /* 0: the handler's scratch register */
    uint64_t count;     /* 8: interrupts taken */
    uint64_t limit;     /* 16: stop the timer at this count */
    uint64_t cause;     /* 24: the only mcause expected */
};
volatile struct irq_state irq_state;

/* t0 is saved in mscratch, t1 in irq_state: nothing else is touched. Any other trap goes to the
 * runtime's reporter (unexpected trap, exit 99). */
__asm__(
    "   .text\n"
    "   .balign 4\n"
    "timer_handler:\n"
    "   csrw    mscratch, t0\n"
    "   la      t0, irq_state\n"
    "   sd      t1, 0(t0)\n"
    "   csrr    t1, mcause\n"
    "   ld      t0, 24(t0)\n"
    "   bne     t1, t0, 2f\n"
    "   la      t0, irq_state\n"
    "   ld      t1, 8(t0)\n"
    "   addi    t1, t1, 1\n"
    "   sd      t1, 8(t0)\n"
    "   ld      t0, 16(t0)\n"
    "   bltu    t1, t0, 1f\n"
    "   li      t0, 0x2004000\n"    /* the last one: mtimecmp = all ones stops the timer */
    "   li      t1, -1\n"
    "   sd      t1, 0(t0)\n"
    "1: la      t0, irq_state\n"
    "   ld      t1, 0(t0)\n"
    "   csrr    t0, mscratch\n"
    "   mret\n"
    "2: j       trap_entry\n");

extern void timer_handler(void), trap_entry(void);

int main(void)
{
    irq_state.limit = COUNT;
    irq_state.cause = CAUSE_TIMER;
    __asm__ volatile("csrw mtvec, %0" ::"r"(timer_handler));
    MTIMECMP = 0;
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MTIE));
    __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));
    while (irq_state.count < COUNT)
        ;
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    __asm__ volatile("csrc mie, %0" ::"r"(MIE_MTIE));
    __asm__ volatile("csrw mtvec, %0" ::"r"(trap_entry));

    printf("irq_timer: %lu timer interrupts\n", irq_state.count);
    if (irq_state.count != COUNT) {
        printf("irq_timer: FAIL (want %u)\n", COUNT);
        return 1;
    }
    print("irq_timer: OK\n");
    return 0;
}
