# A big-endian bare-metal loop for qemu-system-ppc64 -M powernv9 -bios (a raw binary loaded at 0, entered at 0x10 with
# MSR = SF|HV, big-endian): the QEMU backend's registers and steps on a guest whose MSR[LE] is 0.
    .text
    .org 0x10
    .globl _start
_start:
    lis   r3, 0x1234
    ori   r3, r3, 0x5678
    li    r4, 0
loop:
    addi  r4, r4, 1
    cmpdi r4, 3
    blt   loop
    b     loop
