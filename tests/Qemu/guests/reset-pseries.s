# A pseries guest (as poweroff-pseries.s) that counts down from 1000 in CTR, then asks RTAS for a system reboot: token 0x2004,
# no arguments, one return (hw/ppc/spapr_rtas.c rtas_system_reboot). QEMU resets the machine and VOF enters the guest again,
# which reboots again: a RESET every few milliseconds, and no stop (the gdbstub reports none).
    .text
    .globl _start
_start:
    li    r6, 1000
    mtctr r6
1:  bdnz  1b
    lis   r4, 0x200           # the argument buffer, at real address 0x2000000
    li    r5, 0x2004          # system-reboot
    stw   r5, 0(r4)
    li    r5, 0               # nargs
    stw   r5, 4(r4)
    li    r5, 1               # nret
    stw   r5, 8(r4)
    li    r3, 0
    ori   r3, r3, 0xf000      # H_RTAS
    sc    1
2:  b     2b
