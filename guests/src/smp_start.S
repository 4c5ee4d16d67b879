/* Entry for smp.elf: every hart starts here in M-mode (a0 = hartid). Hart 0 sets up memory and
   the UART and runs main(); the others wait until main() releases them, then run worker(hartid).
   Each hart has 16 KiB of the stack area. */
    .section .text.start, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    la      sp, stack_top
    slli    t1, t0, 14
    sub     sp, sp, t1
    la      t1, trap_entry
    csrw    mtvec, t1
    bnez    t0, secondary

    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    call    uart_init
    call    main
    call    exit

secondary:
    la      t1, smp_go
3:  ld      t2, 0(t1)
    beqz    t2, 3b
    fence   r, rw
    csrr    a0, mhartid
    call    worker
4:  wfi
    j       4b

    .text
    .balign 4
    .globl trap_entry
trap_entry:
    la      sp, trap_stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    trap_report
5:  j       5b

    .section .bss.stack, "aw", @nobits
    .balign 16
    .space  65536
stack_top:
    .space  1024
trap_stack_top:
