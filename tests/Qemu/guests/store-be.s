# A big-endian bare-metal loop for qemu-system-ppc64 -M powernv9 -bios (a raw binary loaded at 0, entered at 0x10 with
# MSR = SF|HV, big-endian) that counts in r4, stores the count to 0x2000 and reads it back: the QEMU backend's watchpoints.
    .text
    .org 0x10
    .globl _start
_start:
    li    r3, 0x2000
    li    r4, 0
loop:
    addi  r4, r4, 1           # 0x18
    stw   r4, 0(r3)           # 0x1c: the store
    lwz   r5, 0(r3)           # 0x20: the load
    b     loop                # 0x24
