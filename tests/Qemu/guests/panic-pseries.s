# A pseries guest (as poweroff-pseries.s) that counts down from 1000 in CTR, then says it panicked: RTAS ibm,os-term
# (token 0x201f, one argument — the address of its message, here an empty string — one return; hw/ppc/spapr_rtas.c
# rtas_ibm_os_term calls qemu_system_guest_panicked).
    .text
    .globl _start
_start:
    li    r6, 1000
    mtctr r6
1:  bdnz  1b
    lis   r4, 0x200           # the argument buffer, at real address 0x2000000
    li    r5, 0x201f          # ibm,os-term
    stw   r5, 0(r4)
    li    r5, 1               # nargs
    stw   r5, 4(r4)
    li    r5, 1               # nret
    stw   r5, 8(r4)
    addi  r5, r4, 0x100       # the message: zeroed memory, an empty string
    stw   r5, 12(r4)
    li    r5, 0
    stb   r5, 0x100(r4)
    li    r3, 0
    ori   r3, r3, 0xf000      # H_RTAS
    sc    1
2:  b     2b
