/* Tiny freestanding runtime for the vmhost bare-metal guests (no libc). */
#ifndef RUNTIME_H
#define RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU virt devices (ARCHITECTURE.md section 4). */
#define UART_BASE   0x10000000UL
#define SYSCON_BASE 0x00100000UL
#define CLINT_BASE  0x02000000UL

void uart_init(void);
void uart_putc(char c);                 /* '\n' goes out as "\r\n" */
void print(const char *s);              /* no newline added */
void print_udec(uint64_t v);
void print_hex(uint64_t v);             /* "0x" + minimal digits */
/* Subset: %s %c %d %u %x %ld %lu %lx %%, optional '0' flag and width (e.g. %08x). */
void printf(const char *fmt, ...);
void vprintf(const char *fmt, va_list ap);

__attribute__((noreturn)) void exit(int code);   /* via the syscon test device */

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

static inline uint64_t rdcycle(void)   { uint64_t v; __asm__ volatile("csrr %0, mcycle" : "=r"(v)); return v; }
static inline uint64_t rdinstret(void) { uint64_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }
static inline uint64_t rdtime(void)    { uint64_t v; __asm__ volatile("csrr %0, time" : "=r"(v)); return v; }
static inline uint64_t rdhartid(void)  { uint64_t v; __asm__ volatile("csrr %0, mhartid" : "=r"(v)); return v; }

#endif
