/* Interrupt cost, wfi: 100,000 wfi with the timer deadline already past. The timer interrupt is
 * enabled in mie, so each wfi returns at once, but mstatus.MIE = 0 masks it, so no trap is taken
 * (one would reach the runtime's reporter: unexpected trap, exit 99). */
#include "runtime.h"

#define COUNT 100000

#define MTIMECMP (*(volatile uint64_t *)(CLINT_BASE + 0x4000))
#define MIE_MTIE (1u << 7)
#define MSTATUS_MIE (1u << 3)

int main(void)
{
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    MTIMECMP = 0;
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MTIE));
    unsigned n;
    for (n = 0; n < COUNT; n++)
        __asm__ volatile("wfi");
    uint64_t mip;
    __asm__ volatile("csrr %0, mip" : "=r"(mip));
    __asm__ volatile("csrc mie, %0" ::"r"(MIE_MTIE));
    MTIMECMP = ~0ull;

    printf("irq_wfi: %u wfi with the timer pending\n", n);
    if (n != COUNT || !(mip & MIE_MTIE)) {
        printf("irq_wfi: FAIL (mip 0x%lx, want MTIP set)\n", mip);
        return 1;
    }
    print("irq_wfi: OK\n");
    return 0;
}
