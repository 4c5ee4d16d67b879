#include "runtime.h"

#define REG8(off) (*(volatile uint8_t *)(UART_BASE + (off)))
enum { THR = 0, RBR = 0, DLL = 0, IER = 1, DLM = 1, FCR = 2, LCR = 3, MCR = 4, LSR = 5, SCR = 7 };
#define LSR_THRE 0x20

/* Same sequence as OpenSBI's uart8250_init (115200 baud from the 3.6864 MHz clock QEMU's DT
   advertises), so a UART that boots OpenSBI is happy with us too. */
void uart_init(void)
{
    REG8(IER) = 0x00;
    REG8(LCR) = 0x80;           /* DLAB on to reach the divisor latch */
    REG8(DLL) = 2;
    REG8(DLM) = 0;
    REG8(LCR) = 0x03;           /* 8N1, DLAB off */
    REG8(FCR) = 0x01;
    REG8(MCR) = 0x00;
    (void)REG8(LSR);
    (void)REG8(RBR);
    REG8(SCR) = 0x00;
}

static void uart_tx(char c)
{
    while (!(REG8(LSR) & LSR_THRE))
        ;
    REG8(THR) = (uint8_t)c;
}

void uart_putc(char c)
{
    if (c == '\n')
        uart_tx('\r');          /* -nographic puts the terminal in raw mode */
    uart_tx(c);
}

void print(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

/* Digits of v in the given base, least significant first; returns the count. */
static int to_digits(char *buf, uint64_t v, unsigned base)
{
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    return n;
}

static void put_num(uint64_t v, unsigned base, int neg, int width, char pad)
{
    char buf[24];
    int n = to_digits(buf, v, base);
    int len = n + neg;
    if (neg && pad == '0')
        uart_putc('-');
    for (; width > len; width--)
        uart_putc(pad);
    if (neg && pad != '0')
        uart_putc('-');
    while (n)
        uart_putc(buf[--n]);
}

void print_udec(uint64_t v) { put_num(v, 10, 0, 0, ' '); }
void print_hex(uint64_t v) { print("0x"); put_num(v, 16, 0, 0, ' '); }

void vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            uart_putc(*fmt);
            continue;
        }
        char pad = ' ';
        int width = 0, is_long = 0;
        if (*++fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        if (*fmt == 'l')
            is_long = 1, fmt++;
        switch (*fmt) {
        case 'd': {
            int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
            break;
        case 'c':
            uart_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (width -= (int)strlen(s); width > 0; width--)
                uart_putc(' ');
            print(s);
            break;
        }
        case '%':
            uart_putc('%');
            break;
        case '\0':
            return;
        default:                /* unknown conversion: show it rather than guess */
            uart_putc('%');
            uart_putc(*fmt);
        }
    }
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

void exit(int code)
{
    volatile uint32_t *syscon = (volatile uint32_t *)SYSCON_BASE;
    /* 0x5555 = pass; 0x3333 = fail with the code in bits 31:16 (QEMU exits with that code). */
    *syscon = code == 0 ? 0x5555u : ((uint32_t)code << 16) | 0x3333u;
    for (;;)
        ;
}

/* Called by trap_entry in start.S for any trap a program did not expect. */
__attribute__((noreturn)) void trap_report(uint64_t mcause, uint64_t mepc, uint64_t mtval)
{
    printf("\nunexpected trap: mcause=0x%lx mepc=0x%lx mtval=0x%lx\n", mcause, mepc, mtval);
    exit(99);
}

/* Byte loops are enough here; -fno-tree-loop-distribute-patterns (Makefile) keeps gcc from
   turning them back into calls to themselves. */
void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
