# A pseries guest (qemu-system-ppc64 -M pseries,x-vof=on -kernel: VOF enters it big-endian, relocation off) that counts down
# from 1000 in CTR, then powers the machine off through RTAS: the H_RTAS hypercall (0xf000, QEMU's KVMPPC_H_RTAS) with r4 at
# an argument buffer {token, nargs, nret, args…, rets…} of big-endian words; token 0x2003 is QEMU's power-off
# (hw/ppc/spapr_rtas.c rtas_power_off: two arguments, one return).
    .text
    .globl _start
_start:
    li    r6, 1000
    mtctr r6
1:  bdnz  1b
    lis   r4, 0x200           # the argument buffer, at real address 0x2000000
    li    r5, 0x2003          # power-off
    stw   r5, 0(r4)
    li    r5, 2               # nargs
    stw   r5, 4(r4)
    li    r5, 1               # nret
    stw   r5, 8(r4)
    li    r5, 0               # power-on mask (hi, lo): none
    stw   r5, 12(r4)
    stw   r5, 16(r4)
    li    r3, 0
    ori   r3, r3, 0xf000      # H_RTAS
    sc    1
2:  b     2b
