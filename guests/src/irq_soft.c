/* Interrupt cost, software: 1,000,000 machine software interrupts. The main loop sets the
 * CLINT's msip; the assembly handler clears it, counts and returns. */
#include "runtime.h"

#define COUNT 1000000

#define MSIP (*(volatile uint32_t *)(CLINT_BASE + 0x0))
#define MIE_MSIE (1u << 3)
#define MSTATUS_MIE (1u << 3)
#define CAUSE_SOFT ((1ull << 63) | 3)

/* Shared with the handler below, which knows these offsets. */
struct irq_state {
    uint64_t saved_t1;  /* 0: the handler's scratch register */
    uint64_t count;     /* 8: interrupts taken */
    uint64_t cause;     /* 16: the only mcause expected */
};
volatile struct irq_state irq_state;

/* t0 is saved in mscratch, t1 in irq_state: nothing else is touched. Any other trap goes to the
 * runtime's reporter (unexpected trap, exit 99). */
__asm__(
    "   .text\n"
    "   .balign 4\n"
    "soft_handler:\n"
    "   csrw    mscratch, t0\n"
    "   la      t0, irq_state\n"
    "   sd      t1, 0(t0)\n"
    "   csrr    t1, mcause\n"
    "   ld      t0, 16(t0)\n"
    "   bne     t1, t0, 1f\n"
    "   li      t0, 0x2000000\n"    /* msip = 0 */
    "   sw      zero, 0(t0)\n"
    "   la      t0, irq_state\n"
    "   ld      t1, 8(t0)\n"
    "   addi    t1, t1, 1\n"
    "   sd      t1, 8(t0)\n"
    "   ld      t1, 0(t0)\n"
    "   csrr    t0, mscratch\n"
    "   mret\n"
    "1: j       trap_entry\n");

extern void soft_handler(void), trap_entry(void);

int main(void)
{
    irq_state.cause = CAUSE_SOFT;
    __asm__ volatile("csrw mtvec, %0" ::"r"(soft_handler));
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MSIE));
    __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));
    /* One write per interrupt, each waited for: a VM may take the interrupt a few instructions
       after the store, and a second write in that window would make the count inexact. */
    for (uint64_t n = 0; n < COUNT; n++) {
        MSIP = 1;
        while (irq_state.count == n)
            ;
    }
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    __asm__ volatile("csrc mie, %0" ::"r"(MIE_MSIE));
    __asm__ volatile("csrw mtvec, %0" ::"r"(trap_entry));

    printf("irq_soft: %lu software interrupts\n", irq_state.count);
    if (irq_state.count != COUNT || MSIP != 0) {
        printf("irq_soft: FAIL (want %u, msip 0)\n", COUNT);
        return 1;
    }
    print("irq_soft: OK\n");
    return 0;
}
