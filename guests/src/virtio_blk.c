/* A virtio-blk driver over virtio-mmio version 2 (split virtqueues, polled), and the checks the
   integration tests run with it. It probes the eight virt slots 0x1000_1000 + n*0x1000 (a slot
   with nothing mapped faults, and that is caught), negotiates each block device it finds and
   tests it. One source, three programs (guests/Makefile):
     virtio_blk.elf          reads, writes, flush, read back, GET_ID, unsupported and out-of-range
                             requests, a reset; a read-only disk gets the read-only checks instead
     virtio_blk_durable.elf  writes the patterns, flushes, says so and waits to be killed
     virtio_blk_bench.elf    sequential 4 KiB and 64 KiB writes and reads, timed with rdtime
   The disk must hold the background pattern (bg() below) before a test run; the patterns are
   computed the same way in tests/virtio_blk.rs. */
#include "runtime.h"

#define SLOT_BASE(n)  (0x10001000UL + (uint64_t)(n) * 0x1000)
#define SLOTS         8
#define SECTOR        512u
#define TICKS_PER_SEC 10000000u /* timebase-frequency of virt */
#define TIMEOUT       (10 * (uint64_t)TICKS_PER_SEC)

/* virtio-mmio v2 registers. */
enum {
    MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, DEVICE_FEATURES = 0x010,
    DEVICE_FEATURES_SEL = 0x014, DRIVER_FEATURES = 0x020, DRIVER_FEATURES_SEL = 0x024,
    QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044,
    QUEUE_NOTIFY = 0x050, INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, STATUS = 0x070,
    QUEUE_DESC = 0x080, QUEUE_DRIVER = 0x090, QUEUE_DEVICE = 0x0a0, CONFIG_GENERATION = 0x0fc,
    CONFIG = 0x100,
};
enum { S_ACKNOWLEDGE = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 64 };

/* Feature bits (virtio 1.2, 5.2.3 and 6). */
#define F_SIZE_MAX  (1ull << 1)
#define F_SEG_MAX   (1ull << 2)
#define F_RO        (1ull << 5)
#define F_BLK_SIZE  (1ull << 6)
#define F_FLUSH     (1ull << 9)
#define F_VERSION_1 (1ull << 32)
#define F_WANTED    (F_VERSION_1 | F_SIZE_MAX | F_SEG_MAX | F_RO | F_BLK_SIZE | F_FLUSH)

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_UNKNOWN = 0x55 };
enum { ST_OK = 0, ST_IOERR = 1, ST_UNSUPP = 2, ST_NONE = 0xff /* the device never wrote it */ };

#define DESC_F_NEXT  1
#define DESC_F_WRITE 2

#define QSIZE 16                /* descriptors per queue (at most; QueueNumMax may be lower) */
#define MAX_SEGS 6

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QSIZE]; uint16_t avail_event; };
struct req_hdr { uint32_t type, reserved; uint64_t sector; };

/* One queue's memory per slot; page alignment is more than the spec's 16/2/4. */
static struct desc descs[SLOTS][QSIZE] __attribute__((aligned(4096)));
static struct avail avails[SLOTS] __attribute__((aligned(4096)));
static struct used useds[SLOTS] __attribute__((aligned(4096)));
static struct req_hdr hdrs[SLOTS][QSIZE];
static volatile uint8_t statuses[SLOTS][QSIZE];

struct disk {
    uint64_t base;
    unsigned slot;
    uint64_t features;          /* negotiated */
    uint64_t capacity;          /* sectors */
    uint32_t seg_max, size_max, blk_size;
    uint16_t qsize, avail_idx, used_idx, next_desc;
    uint32_t used_len[QSIZE];   /* by head descriptor */
    int broken;                 /* a request timed out: the queue state is unknown */
    int failures;
};

struct seg { void *buf; uint32_t len; };

static uint32_t rd(struct disk *d, uint32_t off) { return *(volatile uint32_t *)(d->base + off); }
static void wr(struct disk *d, uint32_t off, uint32_t v) { *(volatile uint32_t *)(d->base + off) = v; }
static void wr64(struct disk *d, uint32_t off, uint64_t v) { wr(d, off, (uint32_t)v); wr(d, off + 4, v >> 32); }
static void fence(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }

/* Byte i of `sector` as the tests write it: seed 0 is the background the host puts on the disk,
   seed slot + 1 what this driver writes on the disk in that slot. */
static uint8_t pattern(uint32_t seed, uint64_t sector, uint32_t i)
{
    uint32_t x = ((uint32_t)sector * 0x01000193u) ^ (seed * 0x7f4a7c15u);
    return (uint8_t)(((x + i) * 0x9e3779b1u) >> 24);
}
static uint8_t bg(uint64_t sector, uint32_t i) { return pattern(0, sector, i); }

static void fill(uint8_t *buf, uint32_t seed, uint64_t sector, uint32_t sectors)
{
    for (uint32_t s = 0; s < sectors; s++)
        for (uint32_t i = 0; i < SECTOR; i++)
            buf[s * SECTOR + i] = pattern(seed, sector + s, i);
}

static void fail(struct disk *d, const char *what)
{
    printf("virtio-blk: disk at 0x%lx: FAIL %s\n", d->base, what);
    d->failures++;
}

/* ---- Probing: a load from a slot with nothing behind it is an access fault, caught here. ---- */

uint64_t probe_lw(uint64_t addr, uint64_t *faulted);
extern char probe_trap[];
__asm__(".text\n"
        ".balign 4\n"
        "probe_lw:\n"                   /* a0 = address, a1 = &faulted */
        "  mv t2, a1\n"
        "  sd zero, 0(t2)\n"
        ".option push\n.option norvc\n" /* the trap handler skips exactly 4 bytes */
        "  lwu a0, 0(a0)\n"
        ".option pop\n"
        "  ret\n"
        ".balign 4\n"
        "probe_trap:\n"
        "  csrr t0, mcause\n"
        "  li t1, 5\n"                  /* load access fault; anything else is unexpected */
        "  beq t0, t1, 1f\n"
        "  j trap_entry\n"
        "1:\n"
        "  csrr t0, mepc\n"
        "  addi t0, t0, 4\n"
        "  csrw mepc, t0\n"
        "  li t0, 1\n"
        "  sd t0, 0(t2)\n"
        "  li a0, 0\n"
        "  mret\n");

static int is_blk_slot(uint64_t base)
{
    uint64_t faulted;
    uint64_t old;
    __asm__ volatile("csrrw %0, mtvec, %1" : "=r"(old) : "r"(probe_trap));
    uint64_t magic = probe_lw(base + MAGIC, &faulted);
    int found = 0;
    if (!faulted && magic == 0x74726976) {
        uint64_t version = probe_lw(base + VERSION, &faulted);
        uint64_t id = probe_lw(base + DEVICE_ID, &faulted);
        if (id == 2 && version != 2)
            printf("virtio-blk: disk at 0x%lx: virtio-mmio version %lu, not 2; skipped\n", base, version);
        found = id == 2 && version == 2;
    }
    __asm__ volatile("csrw mtvec, %0" ::"r"(old));
    return found;
}

/* ---- Negotiation and queue set-up ---- */

static int wait_status_zero(struct disk *d)
{
    uint64_t end = rdtime() + TIMEOUT;
    while (rd(d, STATUS) != 0)
        if (rdtime() > end)
            return 0;
    return 1;
}

static void print_features(struct disk *d)
{
    static const struct { uint64_t bit; const char *name; } names[] = {
        {F_VERSION_1, "VERSION_1"}, {F_SEG_MAX, "SEG_MAX"}, {F_SIZE_MAX, "SIZE_MAX"},
        {F_BLK_SIZE, "BLK_SIZE"}, {F_FLUSH, "FLUSH"}, {F_RO, "RO"},
    };
    printf("virtio-blk: disk at 0x%lx: features", d->base);
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (d->features & names[i].bit)
            printf(" %s", names[i].name);
    printf("\n");
}

/* Reset, negotiate, set up queue 0 and read the configuration; 0 on failure (reported). */
static int init(struct disk *d, int verbose)
{
    wr(d, STATUS, 0);
    if (!wait_status_zero(d))
        return fail(d, "reset: status never read 0"), 0;
    wr(d, STATUS, S_ACKNOWLEDGE);
    wr(d, STATUS, S_ACKNOWLEDGE | S_DRIVER);

    wr(d, DEVICE_FEATURES_SEL, 0);
    uint64_t offered = rd(d, DEVICE_FEATURES);
    wr(d, DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)rd(d, DEVICE_FEATURES) << 32;
    if (!(offered & F_VERSION_1))
        return fail(d, "VERSION_1 not offered"), 0;
    d->features = offered & F_WANTED;
    wr(d, DRIVER_FEATURES_SEL, 0);
    wr(d, DRIVER_FEATURES, (uint32_t)d->features);
    wr(d, DRIVER_FEATURES_SEL, 1);
    wr(d, DRIVER_FEATURES, d->features >> 32);
    wr(d, STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(rd(d, STATUS) & S_FEATURES_OK))
        return fail(d, "FEATURES_OK did not stick"), 0;

    unsigned q = d->slot;
    wr(d, QUEUE_SEL, 0);
    if (rd(d, QUEUE_READY) != 0)
        return fail(d, "queue 0 ready before set-up"), 0;
    uint32_t max = rd(d, QUEUE_NUM_MAX);
    if (max < 4)
        return fail(d, "QueueNumMax below 4"), 0;
    d->qsize = QSIZE;
    while (d->qsize > max)
        d->qsize >>= 1;
    memset(descs[q], 0, sizeof descs[q]);
    memset(&avails[q], 0, sizeof avails[q]);
    memset(&useds[q], 0, sizeof useds[q]);
    d->avail_idx = d->used_idx = d->next_desc = 0;
    d->broken = 0;
    wr(d, QUEUE_NUM, d->qsize);
    wr64(d, QUEUE_DESC, (uint64_t)descs[q]);
    wr64(d, QUEUE_DRIVER, (uint64_t)&avails[q]);
    wr64(d, QUEUE_DEVICE, (uint64_t)&useds[q]);
    fence();
    wr(d, QUEUE_READY, 1);
    if (rd(d, QUEUE_READY) != 1)
        return fail(d, "QueueReady did not stick"), 0;
    wr(d, STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint32_t st = rd(d, STATUS);
    if (!(st & S_DRIVER_OK) || (st & S_NEEDS_RESET))
        return fail(d, "device refused DRIVER_OK"), 0;

    /* 64-bit fields are read as two 32-bit halves, so retry until the generation holds still. */
    uint32_t gen;
    do {
        gen = rd(d, CONFIG_GENERATION);
        d->capacity = rd(d, CONFIG + 0) | (uint64_t)rd(d, CONFIG + 4) << 32;
        d->size_max = d->features & F_SIZE_MAX ? rd(d, CONFIG + 8) : 0;
        d->seg_max = d->features & F_SEG_MAX ? rd(d, CONFIG + 12) : MAX_SEGS;
        d->blk_size = d->features & F_BLK_SIZE ? rd(d, CONFIG + 20) : SECTOR;
    } while (rd(d, CONFIG_GENERATION) != gen);
    if (verbose)
        print_features(d);
    return 1;
}

/* ---- Requests ---- */

/* Queues one request (not yet notified); returns its head descriptor, or -1 if it does not fit. */
static int submit(struct disk *d, uint32_t type, uint64_t sector, const struct seg *segs, int nseg)
{
    unsigned q = d->slot;
    if (d->next_desc + nseg + 2 > d->qsize)
        return -1;
    int head = d->next_desc;
    int n = head;
    hdrs[q][head] = (struct req_hdr){type, 0, sector};
    statuses[q][head] = ST_NONE;
    descs[q][n] = (struct desc){(uint64_t)&hdrs[q][head], sizeof(struct req_hdr), DESC_F_NEXT, n + 1};
    n++;
    for (int i = 0; i < nseg; i++, n++) {
        uint16_t flags = DESC_F_NEXT | (type == T_OUT ? 0 : DESC_F_WRITE);
        descs[q][n] = (struct desc){(uint64_t)segs[i].buf, segs[i].len, flags, n + 1};
    }
    descs[q][n] = (struct desc){(uint64_t)&statuses[q][head], 1, DESC_F_WRITE, 0};
    d->next_desc = n + 1;
    avails[q].ring[d->avail_idx % d->qsize] = head;
    d->avail_idx++;
    return head;
}

/* Publishes what submit() queued, notifies and polls until every request is used; 0 on a timeout. */
static int complete_all(struct disk *d)
{
    unsigned q = d->slot;
    fence();                    /* descriptors and ring entries before the index */
    *(volatile uint16_t *)&avails[q].idx = d->avail_idx;
    fence();
    wr(d, QUEUE_NOTIFY, 0);
    uint64_t end = rdtime() + TIMEOUT;
    while (d->used_idx != d->avail_idx) {
        if (*(volatile uint16_t *)&useds[q].idx == d->used_idx) {
            if (rdtime() > end) {
                d->broken = 1;
                fail(d, "timeout waiting for a used buffer");
                return 0;
            }
            continue;
        }
        fence();                /* the index before the element it covers */
        struct used_elem e = ((volatile struct used *)&useds[q])->ring[d->used_idx % d->qsize];
        if (e.id >= d->qsize) {
            d->broken = 1;
            fail(d, "used ring names a descriptor out of range");
            return 0;
        }
        d->used_len[e.id] = e.len;
        d->used_idx++;
    }
    /* The device sets the used-buffer bit after the used ring; give it the same bound. */
    while (!(rd(d, INTERRUPT_STATUS) & 1)) {
        if (rdtime() > end) {
            fail(d, "no used-buffer notification in InterruptStatus");
            break;
        }
    }
    wr(d, INTERRUPT_ACK, rd(d, INTERRUPT_STATUS));
    d->next_desc = 0;
    fence();
    return 1;
}

/* One request, waited for: its status (ST_NONE after a timeout) and used.len. */
static int request(struct disk *d, uint32_t type, uint64_t sector, const struct seg *segs, int nseg,
                   uint32_t *used_len)
{
    if (d->broken)
        return ST_NONE;
    int head = submit(d, type, sector, segs, nseg);
    if (!complete_all(d))
        return ST_NONE;
    if (used_len)
        *used_len = d->used_len[head];
    return statuses[d->slot][head];
}

static const char *status_name(int st)
{
    switch (st) {
    case ST_OK: return "OK";
    case ST_IOERR: return "IOERR";
    case ST_UNSUPP: return "UNSUPP";
    case ST_NONE: return "no status";
    default: return "bad status";
    }
}

/* Runs a request that must end with `want` and prints "<what>: <status>". */
static void expect_status(struct disk *d, const char *what, uint32_t type, uint64_t sector,
                          const struct seg *segs, int nseg, int want)
{
    int st = request(d, type, sector, segs, nseg, 0);
    printf("virtio-blk: disk at 0x%lx: %s: %s\n", d->base, what, status_name(st));
    if (st != want) {
        printf("virtio-blk: disk at 0x%lx: FAIL %s: want %s\n", d->base, what, status_name(want));
        d->failures++;
    }
}

/* Data buffers; reads land in rbuf, and a canary after each read checks nothing overran. */
#define BIG_SECTORS 24
static uint8_t wbuf[3][BIG_SECTORS * SECTOR];
static uint8_t rbuf[BIG_SECTORS * SECTOR + 64];

/* The sectors write_patterns() writes. */
static int is_written(struct disk *d, uint64_t s) { return s == 1 || (s >= 8 && s < 32) || s == d->capacity - 1; }

/* Reads `sectors` at `sector` split into the given segment lengths and checks them: the
   background, or once `written`, the pattern in the sectors write_patterns() wrote. */
static void read_check(struct disk *d, const char *what, uint64_t sector, uint32_t sectors,
                       const uint32_t *lens, int nseg, int written)
{
    struct seg segs[MAX_SEGS];
    uint32_t off = 0, used_len = 0;
    memset(rbuf, 0xee, sizeof rbuf);
    for (int i = 0; i < nseg; i++) {
        segs[i] = (struct seg){rbuf + off, lens[i]};
        off += lens[i];
    }
    int st = request(d, T_IN, sector, segs, nseg, &used_len);
    if (st != ST_OK) {
        printf("virtio-blk: disk at 0x%lx: FAIL %s: %s\n", d->base, what, status_name(st));
        d->failures++;
        return;
    }
    if (used_len != sectors * SECTOR + 1) {
        printf("virtio-blk: disk at 0x%lx: FAIL %s: used.len %u, want %u\n", d->base, what, used_len,
               sectors * SECTOR + 1);
        d->failures++;
    }
    for (uint32_t s = 0; s < sectors; s++) {
        uint64_t at = sector + s;
        int background = !written || !is_written(d, at);
        for (uint32_t i = 0; i < SECTOR; i++) {
            uint8_t want = background ? bg(at, i) : pattern(d->slot + 1, at, i);
            if (rbuf[s * SECTOR + i] != want) {
                printf("virtio-blk: disk at 0x%lx: FAIL %s: sector %lu byte %u is 0x%x, want 0x%x%s\n",
                       d->base, what, at, i, rbuf[s * SECTOR + i], want, background ? " (background)" : "");
                d->failures++;
                return;
            }
        }
    }
    for (uint32_t i = sectors * SECTOR; i < sizeof rbuf && i < sectors * SECTOR + 64; i++)
        if (rbuf[i] != 0xee) {
            fail(d, "the device wrote past the read buffer");
            return;
        }
}

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* The writes every mode makes: sector 1 alone, sectors 8..31 from three descriptors split off
   sector boundaries (4096 + 1000 + 7192 bytes), and the last sector; queued together, one notify. */
static void write_patterns(struct disk *d)
{
    uint32_t seed = d->slot + 1;
    fill(wbuf[0], seed, 1, 1);
    fill(wbuf[1], seed, 8, BIG_SECTORS);
    fill(wbuf[2], seed, d->capacity - 1, 1);
    struct seg one = {wbuf[0], SECTOR}, last = {wbuf[2], SECTOR};
    struct seg big[3] = {{wbuf[1], 4096}, {wbuf[1] + 4096, 1000}, {wbuf[1] + 5096, 7192}};
    int nbig = 3;
    if (d->seg_max < 3 || (d->size_max && d->size_max < 7192)) {
        /* The device cannot take that chain: one segment of at most size_max bytes per step. */
        uint32_t step = d->size_max ? min_u32(d->size_max, 4096) : 4096;
        nbig = 0;
        for (uint32_t off = 0; off < sizeof wbuf[1] && nbig < 3; off += step)
            big[nbig++] = (struct seg){wbuf[1] + off, min_u32(step, sizeof wbuf[1] - off)};
        printf("virtio-blk: disk at 0x%lx: seg_max %u size_max %u: the big write uses %d segments\n",
               d->base, d->seg_max, d->size_max, nbig);
    }
    if (d->broken)
        return;
    int h[3] = {submit(d, T_OUT, 1, &one, 1), submit(d, T_OUT, 8, big, nbig),
                submit(d, T_OUT, d->capacity - 1, &last, 1)};
    if (!complete_all(d))
        return;
    static const char *const what[3] = {"write sector 1", "write sectors 8-31", "write the last sector"};
    for (int i = 0; i < 3; i++) {
        int st = statuses[d->slot][h[i]];
        if (st != ST_OK) {
            printf("virtio-blk: disk at 0x%lx: FAIL %s: %s\n", d->base, what[i], status_name(st));
            d->failures++;
        } else if (d->used_len[h[i]] != 1) {
            printf("virtio-blk: disk at 0x%lx: FAIL %s: used.len %u, want 1\n", d->base, what[i],
                   d->used_len[h[i]]);
            d->failures++;
        }
    }
}

static void get_id(struct disk *d)
{
    static char id[21];
    memset(id, 0, sizeof id);
    struct seg s = {id, 20};
    uint32_t len = 0;
    int st = request(d, T_GET_ID, 0, &s, 1, &len);
    if (st != ST_OK) {
        printf("virtio-blk: disk at 0x%lx: FAIL GET_ID: %s\n", d->base, status_name(st));
        d->failures++;
        return;
    }
    for (int i = 0; i < 20; i++)
        if (id[i] && (id[i] < 0x20 || id[i] > 0x7e))
            id[i] = '?';
    printf("virtio-blk: disk at 0x%lx: id \"%s\"\n", d->base, id);
}

static void out_of_range(struct disk *d, int writable)
{
    struct seg one = {rbuf, SECTOR}, two = {rbuf, 2 * SECTOR};
    expect_status(d, "read past the end", T_IN, d->capacity, &one, 1, ST_IOERR);
    expect_status(d, "read crossing the end", T_IN, d->capacity - 1, &two, 1, ST_IOERR);
    expect_status(d, "read at sector 2^64-1", T_IN, ~0ull, &one, 1, ST_IOERR);
    if (writable) {
        struct seg w = {wbuf[0], 2 * SECTOR};
        memset(wbuf[0], 0x77, 2 * SECTOR);
        expect_status(d, "write crossing the end", T_OUT, d->capacity - 1, &w, 1, ST_IOERR);
        expect_status(d, "write past the end", T_OUT, d->capacity, &w, 1, ST_IOERR);
    }
    uint32_t one_len = SECTOR;
    read_check(d, "the last sector after the failed requests", d->capacity - 1, 1, &one_len, 1, 0);
}

/* Unused in the durable and bench programs. */
__attribute__((unused)) static void test_disk(struct disk *d)
{
    int ro = (d->features & F_RO) != 0;
    if (d->capacity < 64) {
        fail(d, "capacity below 64 sectors");
        return;
    }
    if (!ro && !(d->features & F_FLUSH))
        fail(d, "FLUSH not offered on a writable disk");
    get_id(d);

    /* What the host put there, read into two descriptors (512 + 1024 bytes). */
    static const uint32_t split3[2] = {SECTOR, 2 * SECTOR};
    read_check(d, "read the background", 0, 3, split3, 2, 0);
    out_of_range(d, !ro);
    expect_status(d, "request type 0x55", T_UNKNOWN, 0, 0, 0, ST_UNSUPP);

    if (ro) {
        struct seg w = {wbuf[0], SECTOR};
        fill(wbuf[0], d->slot + 1, 1, 1);
        expect_status(d, "write to a read-only disk", T_OUT, 1, &w, 1, ST_IOERR);
        read_check(d, "sectors 0-2 after the refused write", 0, 3, split3, 2, 0);
        return;
    }

    write_patterns(d);
    uint32_t len = 0;
    int st = request(d, T_FLUSH, 0, 0, 0, &len);
    if (st != ST_OK || len != 1) {
        printf("virtio-blk: disk at 0x%lx: FAIL flush: %s, used.len %u\n", d->base, status_name(st), len);
        d->failures++;
    }

    static const uint32_t big_split[2] = {6144, 6144};
    uint32_t big_len = BIG_SECTORS * SECTOR;
    read_check(d, "read back sectors 0-2", 0, 3, split3, 2, 1); /* 1 written, 0 and 2 not */
    read_check(d, "read back sectors 7-30", 7, BIG_SECTORS, big_split, 2, 1);
    read_check(d, "read back sectors 8-31 in one descriptor", 8, BIG_SECTORS, &big_len, 1, 1);
    read_check(d, "read back the last two sectors", d->capacity - 2, 2, split3 + 1, 1, 1);

    /* Reset: the queue must forget its set-up, and the device must work again after it. */
    wr(d, STATUS, 0);
    if (!wait_status_zero(d)) {
        fail(d, "reset: status never read 0");
        return;
    }
    wr(d, QUEUE_SEL, 0);
    if (rd(d, QUEUE_READY) != 0)
        fail(d, "reset: queue 0 still ready");
    if (init(d, 0))
        read_check(d, "read after a reset", 8, BIG_SECTORS, &big_len, 1, 1);
}

/* ---- Modes ---- */

static struct disk disks[SLOTS];

static int find_disks(void)
{
    int n = 0;
    for (unsigned s = 0; s < SLOTS; s++)
        if (is_blk_slot(SLOT_BASE(s)))
            disks[n++] = (struct disk){.base = SLOT_BASE(s), .slot = s};
    if (n == 0)
        printf("virtio-blk: no disk found\n");
    return n;
}

#if defined(MODE_DURABLE)

int main(void)
{
    int n = find_disks();
    for (int i = 0; i < n; i++) {
        struct disk *d = &disks[i];
        if (!init(d, 1))
            return 1;
        if (d->features & F_RO) {
            printf("virtio-blk: disk at 0x%lx: read-only\n", d->base);
            continue;
        }
        write_patterns(d);
        uint32_t len = 0;
        int st = request(d, T_FLUSH, 0, 0, 0, &len);
        if (d->failures || st != ST_OK) {
            printf("virtio-blk: disk at 0x%lx: FAIL flush: %s\n", d->base, status_name(st));
            return 1;
        }
        printf("virtio-blk: disk at 0x%lx: written and flushed\n", d->base);
    }
    /* The test kills the VM now; nothing here may end it. */
    printf("virtio-blk: waiting to be killed\n");
    for (;;)
        __asm__ volatile("wfi");
}

#elif defined(MODE_BENCH)

/* Sequential transfers of `chunk` bytes until `total` bytes, up to `depth` requests in flight,
   wrapping around the disk; returns the ticks taken or 0 on failure. */
#define BENCH_TOTAL (64u << 20)
static uint8_t bench_buf[8][64 << 10] __attribute__((aligned(4096)));

static uint64_t bench_run(struct disk *d, uint32_t type, uint32_t chunk)
{
    uint32_t per = chunk / SECTOR;
    uint64_t span = d->capacity / per * per; /* sectors used, a whole number of chunks */
    uint32_t seg_len = d->size_max ? min_u32(d->size_max, chunk) : chunk;
    uint32_t nseg = (chunk + seg_len - 1) / seg_len;
    if (nseg > MAX_SEGS || nseg > d->seg_max || span == 0)
        return 0;
    uint32_t depth = d->qsize / (nseg + 2);
    if (depth > 8)
        depth = 8;
    uint64_t sector = 0, start = rdtime();
    for (uint64_t done = 0; done < BENCH_TOTAL; ) {
        int heads[8];
        uint32_t k = 0;
        for (; k < depth && done < BENCH_TOTAL; k++, done += chunk) {
            struct seg segs[MAX_SEGS];
            for (uint32_t i = 0; i < nseg; i++)
                segs[i] = (struct seg){bench_buf[k] + i * seg_len, min_u32(seg_len, chunk - i * seg_len)};
            heads[k] = submit(d, type, sector, segs, nseg);
            sector = (sector + per) % span;
        }
        if (!complete_all(d))
            return 0;
        for (uint32_t i = 0; i < k; i++)
            if (statuses[d->slot][heads[i]] != ST_OK)
                return 0;
    }
    uint64_t ticks = rdtime() - start;
    return ticks ? ticks : 1;
}

int main(void)
{
    if (find_disks() == 0)
        return 1;
    struct disk *d = &disks[0];
    if (!init(d, 1))
        return 1;
    for (uint32_t i = 0; i < sizeof bench_buf; i++)
        ((uint8_t *)bench_buf)[i] = (uint8_t)(i * 7);
    static const struct { uint32_t type; uint32_t chunk; const char *name; } runs[] = {
        {T_OUT, 4096, "write 4k"}, {T_OUT, 65536, "write 64k"},
        {T_IN, 4096, "read 4k"}, {T_IN, 65536, "read 64k"},
    };
    for (unsigned r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        uint64_t ticks = bench_run(d, runs[r].type, runs[r].chunk);
        if (!ticks) {
            printf("bench: %s: FAILED\n", runs[r].name);
            return 1;
        }
        if (runs[r].type == T_OUT && request(d, T_FLUSH, 0, 0, 0, 0) != ST_OK) {
            printf("bench: flush FAILED\n");
            return 1;
        }
        /* MiB/s = bytes / (ticks / 10 MHz) / 2^20, in hundredths. */
        uint64_t centi = (uint64_t)BENCH_TOTAL * TICKS_PER_SEC / ticks * 100 >> 20;
        printf("bench: %s: %u MiB in %lu ticks: %lu.%02lu MiB/s\n", runs[r].name, BENCH_TOTAL >> 20, ticks,
               centi / 100, centi % 100);
    }
    printf("bench: OK\n");
    return 0;
}

#else

int main(void)
{
    int n = find_disks(), bad = 0;
    for (int i = 0; i < n; i++) {
        struct disk *d = &disks[i];
        if (init(d, 1))
            test_disk(d);
        else
            d->failures++;
        wr(d, STATUS, 0);
        if (d->failures)
            bad++;
        printf("virtio-blk: disk at 0x%lx capacity %lu sectors%s: %s\n", d->base, d->capacity,
               d->features & F_RO ? " read-only" : "", d->failures ? "FAILED" : "OK");
    }
    if (n)
        printf("virtio-blk: %d disk%s, %s\n", n, n == 1 ? "" : "s", bad ? "FAILED" : "all OK");
    return n && !bad ? 0 : 1;
}

#endif
