# Four threads of qemu-system-ppc64 -M powernv9 -smp 4 -bios (a raw binary loaded at 0; every thread enters at 0x10 with
# MSR = SF|HV, big-endian) increment one shared word with a lwarx/stwcx. loop, forever: the QEMU backend's atomic-sequence
# step of one thread plants its end points in memory all threads run, so the others trap on them (foreign traps).
    .text
    .org 0x10
    .globl _start
_start:
    li    r3, 0x2000          # the shared counter
loop:
    lwarx r4, 0, r3           # 0x14
    addi  r4, r4, 1           # 0x18
    stwcx. r4, 0, r3          # 0x1c
    bne-  loop                # 0x20: the sequence's end point (after the stcx.)
    b     loop                # 0x24
