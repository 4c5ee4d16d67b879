/*
 * A QEMU TCG plugin that counts the guest instructions a RISC-V `virt` machine executes, over
 * all its vCPUs, and writes three counts to stderr for scripts/bench_linux.py:
 *   insn-count: kernel-entry N   before the first instruction at or above KERNEL_ENTRY (fw_jump
 *                                 jumps to the kernel there: N is the reset ROM and OpenSBI)
 *   insn-count: first-user N     before the first user-mode instruction (/init)
 *   insn-count: total N          at exit
 * QEMU 7.2's plugin API cannot read the privilege level, so user mode is told by the address:
 * the first instruction below 0x8000_0000 once the kernel has run at its virtual addresses (the
 * top half). Nothing else runs down there but the reset ROM at 0x1000, before the firmware.
 *
 * Every instruction gets a callback that adds one to its vCPU's counter (each vCPU thread writes
 * only its own slot, so multi-threaded TCG needs no lock). The callback runs before the
 * instruction, so one that traps (ecall, a page fault) and is run again counts each time.
 *
 * Built by scripts/bench_linux.py against include/qemu/qemu-plugin.h from Debian's qemu source
 * package (the header is all it needs); loaded with `-plugin insn-count.so`.
 */
#include <inttypes.h>
#include <stdio.h>

#include "qemu-plugin.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 64
#define KERNEL_ENTRY 0x80200000ull
#define USER_TOP 0x80000000ull
#define KERNEL_VIRT (1ull << 63)

enum where { FIRMWARE, KERNEL_PHYS, KERNEL_VIRTUAL, LOW };

static uint64_t counts[MAX_VCPUS];
static int kernel_entered, kernel_virtual, user_entered;

static uint64_t total(void)
{
    uint64_t n = 0;
    for (int i = 0; i < MAX_VCPUS; i++) {
        n += __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
    }
    return n;
}

/* Reports a milestone once, even if several vCPUs reach it together. */
static void milestone(int *flag, const char *name)
{
    if (!__atomic_exchange_n(flag, 1, __ATOMIC_RELAXED)) {
        fprintf(stderr, "insn-count: %s %" PRIu64 "\n", name, total());
    }
}

static void on_insn(unsigned int vcpu, void *udata)
{
    enum where w = (enum where)(uintptr_t)udata;
    if (w == KERNEL_PHYS && !kernel_entered) {
        milestone(&kernel_entered, "kernel-entry");
    } else if (w == KERNEL_VIRTUAL && !kernel_virtual) {
        __atomic_store_n(&kernel_virtual, 1, __ATOMIC_RELAXED);
    } else if (w == LOW && kernel_virtual && !user_entered) {
        milestone(&user_entered, "first-user");
    }
    if (vcpu < MAX_VCPUS) {
        __atomic_store_n(&counts[vcpu], counts[vcpu] + 1, __ATOMIC_RELAXED);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        enum where w = pc >= KERNEL_VIRT     ? KERNEL_VIRTUAL
                       : pc >= KERNEL_ENTRY ? KERNEL_PHYS
                       : pc >= USER_TOP     ? FIRMWARE
                                            : LOW;
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn, QEMU_PLUGIN_CB_NO_REGS,
                                               (void *)(uintptr_t)w);
    }
}

static void on_exit(qemu_plugin_id_t id, void *p)
{
    fprintf(stderr, "insn-count: total %" PRIu64 "\n", total());
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    if (info->system.max_vcpus > MAX_VCPUS) {
        fprintf(stderr, "insn-count: at most %d vCPUs\n", MAX_VCPUS);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
