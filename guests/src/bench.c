/* CPU-bound benchmark with self-checked answers: compares vmhost against QEMU on identical
   work. Sized for ~0.75 s of wall time on qemu-system-riscv64 (TCG). Deliberately light on
   division, which some emulators implement slowly. Memory use stays under 2 MiB. */
#include "runtime.h"

#define SIEVE_N       1000000u
#define SIEVE_PRIMES  78498u            /* pi(10^6) */
#define SIEVE_ROUNDS  16
#define SORT_N        100000u
#define SORT_ROUNDS   16
#define CRC_LEN       65536u
#define CRC_ROUNDS    256

/* Known answers, computed off-line with this Python model (import zlib) of sort_round() and crc_init():
     M = 2**64 - 1
     def xs(s): s ^= (s << 13) & M; s ^= s >> 7; s ^= (s << 17) & M; return s
     s = 0x9E3779B97F4A7C15; a = []
     for _ in range(100000): s = xs(s); a.append(s >> 32)
     a.sort(); print(hex(sum(v * (i + 1) for i, v in enumerate(a)) & M))
     s = 0x0123456789ABCDEF; b = bytearray()
     for _ in range(65536): s = xs(s); b.append(s >> 56)
     print(hex(zlib.crc32(bytes(b) * 256)))                      # CRC_ROUNDS copies */
#define SORT_CHECKSUM 0xc6bea0290d4da9e0ull
#define CRC_EXPECTED  0x57cbbe42u

static uint8_t composite[SIEVE_N];
static uint32_t arr[SORT_N];
static uint8_t crcbuf[CRC_LEN];
static uint32_t crctab[256];

static int failed;

static void expect(const char *what, uint64_t got, uint64_t want)
{
    if (got != want) {
        printf("bench: FAIL %s: got 0x%lx want 0x%lx\n", what, got, want);
        failed = 1;
    }
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint32_t sieve(void)
{
    memset(composite, 0, sizeof composite);
    uint32_t count = 0;
    for (uint32_t i = 2; i < SIEVE_N; i++) {
        if (composite[i])
            continue;
        count++;
        for (uint64_t j = (uint64_t)i * i; j < SIEVE_N; j += i)
            composite[j] = 1;
    }
    return count;
}

static void insertion_sort(uint32_t *a, long n)
{
    for (long i = 1; i < n; i++) {
        uint32_t v = a[i];
        long j = i - 1;
        for (; j >= 0 && a[j] > v; j--)
            a[j + 1] = a[j];
        a[j + 1] = v;
    }
}

/* Quicksort, median-of-three, recursing on the smaller half so the stack stays O(log n). */
static void quicksort(uint32_t *a, long n)
{
    while (n > 16) {
        uint32_t x = a[0], y = a[n / 2], z = a[n - 1];
        uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i >= j)
                break;
            uint32_t t = a[i];
            a[i++] = a[j];
            a[j--] = t;
        }
        long left = j + 1;                  /* a[0..left) <= pivot <= a[left..n) */
        if (left < n - left) {
            quicksort(a, left);
            a += left, n -= left;
        } else {
            quicksort(a + left, n - left);
            n = left;
        }
    }
    insertion_sort(a, n);
}

static uint64_t sort_round(void)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < SORT_N; i++)
        arr[i] = (uint32_t)(xorshift64(&s) >> 32);
    quicksort(arr, SORT_N);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < SORT_N; i++) {
        if (i && arr[i - 1] > arr[i]) {
            printf("bench: FAIL sort: arr[%u]=%u > arr[%u]=%u\n", i - 1, arr[i - 1], i, arr[i]);
            failed = 1;
            break;
        }
        sum += (uint64_t)arr[i] * (i + 1);  /* position-weighted, so order matters */
    }
    return sum;
}

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crctab[i] = c;
    }
    uint64_t s = 0x0123456789ABCDEFull;
    for (uint32_t i = 0; i < CRC_LEN; i++)
        crcbuf[i] = (uint8_t)(xorshift64(&s) >> 56);
}

/* Standard reflected CRC-32 (zlib's), continued across calls. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    crc = ~crc;
    while (n--)
        crc = crctab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

int main(void)
{
    uint64_t i0 = rdinstret(), c0 = rdcycle(), t0 = rdtime();

    for (int r = 0; r < SIEVE_ROUNDS; r++)
        expect("sieve", sieve(), SIEVE_PRIMES);
    printf("bench: sieve: %u primes below %u (%d rounds)\n", SIEVE_PRIMES, SIEVE_N, SIEVE_ROUNDS);

    uint64_t sum = 0;
    for (int r = 0; r < SORT_ROUNDS; r++) {
        sum = sort_round();
        expect("sort checksum", sum, SORT_CHECKSUM);
    }
    printf("bench: sort: %u words, checksum 0x%lx (%d rounds)\n", SORT_N, sum, SORT_ROUNDS);

    crc_init();
    uint32_t crc = 0;
    for (int r = 0; r < CRC_ROUNDS; r++)
        crc = crc32_update(crc, crcbuf, CRC_LEN);
    expect("crc32", crc, CRC_EXPECTED);
    printf("bench: crc32: 0x%08x over %u KiB\n", crc, CRC_LEN / 1024 * CRC_ROUNDS);

    uint64_t i1 = rdinstret(), c1 = rdcycle(), t1 = rdtime();
    /* On QEMU without -icount, minstret/mcycle count host ticks, not instructions. */
    printf("instret=%lu\n", i1 - i0);
    printf("cycles=%lu\n", c1 - c0);
    printf("time=%lu\n", t1 - t0);
    if (failed) {
        print("bench: FAILED\n");
        return 1;
    }
    print("bench: OK\n");
    return 0;
}
