/* Entry point: QEMU's reset ROM (and vmhost) jump here in M-mode with a0 = hartid. */
    .section .text.start, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park

    la      sp, stack_top
    la      t0, trap_entry
    csrw    mtvec, t0

    /* .bss is 16-byte aligned and sized (link.ld), so zero it 8 bytes at a time. */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    call    uart_init
    call    main
    call    exit                /* a0 = main's return value; exit never returns */

park:                           /* secondary harts have nothing to do */
    wfi
    j       park

/* Unexpected trap: report on a stack of its own (sp may be what broke) and exit 99.
   mtvec direct mode needs a 4-byte aligned address. */
    .text
    .balign 4
    .globl trap_entry
trap_entry:
    la      sp, trap_stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    trap_report
3:  j       3b

    .section .bss.stack, "aw", @nobits
    .balign 16
    .space  65536
stack_top:
    .space  1024
trap_stack_top:
