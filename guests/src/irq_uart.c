/* Interrupt cost, device line: 200,000 writes to the 16550 UART's IER, toggling between 0x02
 * (transmitter-empty interrupt enabled, so the UART raises its interrupt line) and 0x00 (line
 * low again), with interrupts masked (mstatus.MIE = 0, mie = 0): no trap is taken. */
#include "runtime.h"

#define COUNT 200000

#define UART_IER (*(volatile uint8_t *)(UART_BASE + 1))
#define IER_ETBEI 0x02
#define MSTATUS_MIE (1u << 3)

int main(void)
{
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    __asm__ volatile("csrw mie, zero");
    unsigned n;
    for (n = 0; n < COUNT; n += 2) {
        UART_IER = IER_ETBEI;
        UART_IER = 0x00;
    }
    UART_IER = IER_ETBEI;
    uint8_t on = UART_IER;
    UART_IER = 0x00;
    uint8_t off = UART_IER;

    printf("irq_uart: %u IER writes\n", n);
    if (n != COUNT || on != IER_ETBEI || off != 0) {
        printf("irq_uart: FAIL (IER read back 0x%x and 0x%x, want 0x2 and 0x0)\n", on, off);
        return 1;
    }
    print("irq_uart: OK\n");
    return 0;
}
