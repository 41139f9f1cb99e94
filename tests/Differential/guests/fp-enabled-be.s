# FP enabled exceptions differential image (big-endian at reset), run as privileged-be.s is: on qemu-system-ppc64
# -M powernv9 -bios (raw binary at 0, entered at 0x10 with MSR = SF|HV) and on ActorStep's machine (ELF, entered at 0x10
# with MSR = SF|ME). Real mode throughout. It logs {tag, a, b, c} entries into `log` (r31 = next entry, r25 = scratch):
#   0x700          the Program handler: SRR0, SRR1, the FPSCR at entry; it then zeroes the FPSCR and returns to SRR0 + 4,
#                  or to SRR0 when SRR1[47] says SRR0 already holds the next instruction's address
#   0x11..0x2A     after each case: the target FPR's bits, the FPSCR, the CR
# Cases: with MSR[FE0,FE1] = 0 (0x1x) an enabled ZE, VE, OE exception; with FE0 = FE1 = 1 (0x2x) fdiv. by zero (ZE), 0×∞
# and √−4 (VE), overflow (OE), inexact (XE), mtfsb1 and mtfsfi enabling a set ZX, xsdivdp by zero, and mtmsrd / rfid
# setting FE0|FE1 while FPSCR[FEX] = 1. f3 is the target, reloaded with 42.0 (f10) before each case.
    .text
    .macro LOG tag, a, b, c
    li r28, \tag
    std r28, 0(r31)
    std \a, 8(r31)
    std \b, 16(r31)
    std \c, 24(r31)
    addi r31, r31, 32
    .endm
    .macro LOADADDR reg, sym
    lis \reg, \sym@h
    ori \reg, \reg, \sym@l
    .endm
    .macro LOGFPR tag, f
    stfd \f, 0(r25)
    ld r5, 0(r25)
    mffs f29
    stfd f29, 8(r25)
    ld r6, 8(r25)
    mfcr r7
    LOG \tag, r5, r6, r7
    .endm
    .macro UNEXPECTED vec
    .org \vec
    li r27, \vec
    b unexpected
    .endm

    .org 0x10
    .globl _start
_start:
    b main

    UNEXPECTED 0x100
    UNEXPECTED 0x200
    UNEXPECTED 0x300
    UNEXPECTED 0x380
    UNEXPECTED 0x400
    UNEXPECTED 0x480
    UNEXPECTED 0x500
    UNEXPECTED 0x600
    .org 0x700
    b program_handler
    UNEXPECTED 0x800
    UNEXPECTED 0x900
    UNEXPECTED 0x980
    UNEXPECTED 0xA00
    UNEXPECTED 0xB00
    UNEXPECTED 0xC00
    UNEXPECTED 0xD00
    UNEXPECTED 0xE00
    UNEXPECTED 0xE20
    UNEXPECTED 0xE40
    UNEXPECTED 0xE60
    UNEXPECTED 0xE80
    UNEXPECTED 0xEA0
    UNEXPECTED 0xF00
    UNEXPECTED 0xF20
    UNEXPECTED 0xF40
    UNEXPECTED 0xF60
    UNEXPECTED 0xF80

    .org 0x1000
program_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    ori r27, r27, 0x2000                # FP on (the interrupt cleared it) to read and clear the FPSCR
    mtmsrd r27
    mffs f29
    stfd f29, 16(r25)
    ld r27, 16(r25)
    LOG 0x700, r29, r30, r27
    mtfsf 0xff, f30                     # f30 = +0: every exception, enable and FEX cleared
    andis. r26, r30, 1                  # SRR1[47]: SRR0 is the next instruction already
    bne 1f
    addi r29, r29, 4
1:  mtsrr0 r29
    mtsrr1 r30
    rfid

unexpected:
    mfsrr0 r29
    mfsrr1 r30
    LOG 0xBAD, r27, r29, r30
    b end

    .org 0x1800
main:
    LOADADDR r31, log
    LOADADDR r25, scratch
    LOADADDR r4, data
    lis r3, 0x7fff
    ori r3, r3, 0xffff
    mtdec r3
    mfmsr r3
    ori r3, r3, 0x1000                  # ME, as on the machine (QEMU's powernv resets with ME = 0; rfid may set it)
    mtsrr1 r3
    LOADADDR r4, after_me
    mtsrr0 r4
    rfid
after_me:
    LOADADDR r4, data
    mfmsr r9
    ori r9, r9, 0x2000                  # FP on, FE0 = FE1 = 0
    mtmsrd r9
    lfd f30, 0(r4)                      # +0
    lfd f2, 0(r4)                       # 0
    lfd f1, 8(r4)                       # 1
    lfd f6, 16(r4)                      # +inf
    lfd f5, 24(r4)                      # -4
    lfd f4, 32(r4)                      # 1e300
    lfd f7, 40(r4)                      # 3
    lfd f10, 48(r4)                     # 42: what the target holds before each case
    mtfsf 0xff, f30

    # ---- MSR[FE0,FE1] = 0: FEX is set, no interrupt ----
    mtfsb1 27                           # ZE
    fmr f3, f10
fe0_zdiv:
    fdiv f3, f1, f2
    LOGFPR 0x11, f3
    mtfsf 0xff, f30
    mtfsb1 24                           # VE
    fmr f3, f10
fe0_vimz:
    fmul f3, f2, f6
    LOGFPR 0x12, f3
    mtfsf 0xff, f30
    mtfsb1 25                           # OE
    fmr f3, f10
fe0_ox:
    fmul f3, f4, f4
    LOGFPR 0x13, f3
    mtfsf 0xff, f30

    # ---- MSR[FE0,FE1] = 0b11: precise interrupts ----
    mfmsr r9
    ori r9, r9, 0x900
    mtmsrd r9
    mtfsb1 27
    fmr f3, f10
fp_zdiv:
    fdiv. f3, f1, f2
    LOGFPR 0x21, f3
    mtfsb1 24
    fmr f3, f10
fp_vimz:
    fmul f3, f2, f6
    LOGFPR 0x22, f3
    mtfsb1 24
    fmr f3, f10
fp_vsqrt:
    fsqrt f3, f5
    LOGFPR 0x23, f3
    mtfsb1 25
    fmr f3, f10
fp_ox:
    fmul f3, f4, f4
    LOGFPR 0x24, f3
    mtfsb1 28
    fmr f3, f10
fp_xx:
    fdiv f3, f1, f7
    LOGFPR 0x25, f3
    fmr f3, f10
    fdiv f3, f1, f2                     # ZX with ZE = 0: no FEX
fp_mtfsb1:
    mtfsb1 27
    LOGFPR 0x26, f3
    fdiv f3, f1, f2
fp_mtfsfi:
    mtfsfi 6, 1                         # VE OE UE ZE = 0001
    LOGFPR 0x27, f3
    mfmsr r9
    oris r9, r9, 0x80                   # VSX
    mtmsrd r9
    mtfsb1 27
    fmr f3, f10
fp_xsdiv:
    xsdivdp vs3, vs1, vs2
    LOGFPR 0x28, f3

    # ---- FE0|FE1 set by mtmsrd, then by rfid, while FEX = 1 ----
    mfmsr r9
    li r10, 0x900
    andc r9, r9, r10
    mtmsrd r9                           # FE0 = FE1 = 0
    mtfsb1 27
    fdiv f3, f1, f2                     # FEX = 1
    ori r9, r9, 0x900
fp_mtmsrd:
    mtmsrd r9
    LOGFPR 0x29, f3
    mfmsr r9
    li r10, 0x900
    andc r9, r9, r10
    mtmsrd r9
    mtfsb1 27
    fdiv f3, f1, f2
    LOADADDR r10, rfid_target
    mtsrr0 r10
    ori r9, r9, 0x900
    mtsrr1 r9
fp_rfid:
    rfid
rfid_target:
    nop
    LOGFPR 0x2A, f3
end:
    b end

    .balign 8
data:
    .quad 0, 0x3ff0000000000000, 0x7ff0000000000000, 0xc010000000000000, 0x7e37e43c8800759c, 0x4008000000000000
    .quad 0x4045000000000000
    .balign 64
scratch:
    .space 64
    .org 0x3000
log:
    .space 0x1000
