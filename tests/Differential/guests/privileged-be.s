# Privileged differential image (big-endian at reset), run on qemu-system-ppc64 -M powernv -bios
# (as a raw binary loaded at 0, entered at 0x10 with MSR = SF|HV) and on ActorStep's machine (as an
# ELF, entered at e_entry = 0x10 with MSR = SF|ME). It logs what it sees into `log`: entries of four
# doublewords {tag, a, b, c}, ending with tag 0xE0F. Registers r26-r31 belong to the handlers and the
# log (r31 = next entry). The whole image is one .text section so the ELF and the raw binary agree.
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
    # An instruction word stored little-endian (for code run with MSR[LE]=1).
    .macro LEWORD w
    .byte (\w) & 0xff, ((\w) >> 8) & 0xff, ((\w) >> 16) & 0xff, ((\w) >> 24) & 0xff
    .endm
    # A vector that is not expected: note which one and stop.
    .macro UNEXPECTED vec
    .org \vec
    li r27, \vec
    b unexpected
    .endm

    .org 0x10
    .globl _start
_start:
    b main

    # ---- vectors ----
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
    .org 0x900
    b dec_handler
    UNEXPECTED 0x980
    UNEXPECTED 0xA00
    UNEXPECTED 0xB00
    .org 0xC00
    b sc_handler
    .org 0xD00
    b trace_handler
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
sc_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0xC00, r29, r30, r27
    addi r3, r3, 1
    andi. r26, r30, 1                   # from little-endian code: back to big-endian at le_return
    beq 1f
    rldicr r30, r30, 0, 62
    mtsrr1 r30
    LOADADDR r29, le_return
    mtsrr0 r29
1:  rfid

program_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0x700, r29, r30, r27
    addi r29, r29, 4
    mtsrr0 r29
    rfid

trace_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0xD00, r29, r30, r27
    LOADADDR r26, traced_end
    cmpd r29, r26
    bne 1f
    li r26, 0x400                       # SE off: the traced code has ended
    andc r30, r30, r26
    mtsrr1 r30
    LOADADDR r29, trace_return
    mtsrr0 r29
1:  rfid

dec_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0x900, r29, r30, r27
    lis r26, 0x7fff
    ori r26, r26, 0xffff
    mtdec r26
    li r29, 0
    ori r29, r29, 0x8000
    andc r30, r30, r29                  # return with EE off
    mtsrr1 r30
    LOADADDR r29, dec_return
    mtsrr0 r29
    rfid

    .org 0x1800
main:
    LOADADDR r31, log
    li r0, 0
    mfmsr r3
    LOG 0x1, r3, r0, r0                 # MSR at reset
    lis r3, 0x7fff
    ori r3, r3, 0xffff
    mtdec r3                            # no decrementer exception until we ask for one
    mfmsr r3
    ori r3, r3, 0x1000                  # ME (QEMU's powernv resets with ME=0; rfid may set it)
    mtsrr1 r3
    LOADADDR r4, after_me
    mtsrr0 r4
    rfid
after_me:
    mfmsr r3
    LOG 0x2, r3, r0, r0

    # mtspr/mfspr SRR0, SRR1, SPRG0-3
    LOADADDR r3, 0x12345678
    mtsrr0 r3
    lis r4, 0x8000
    sldi r4, r4, 32
    ori r4, r4, 0xd032
    mtsrr1 r4
    li r5, 0x1110
    mtsprg0 r5
    li r5, 0x2221
    mtsprg1 r5
    li r5, 0x3332
    mtsprg2 r5
    li r5, 0x4443
    mtsprg3 r5
    mfsrr0 r6
    mfsrr1 r7
    mfsprg0 r8
    LOG 0x3, r6, r7, r8
    mfsprg1 r6
    mfsprg2 r7
    mfsprg3 r8
    LOG 0x4, r6, r7, r8

    # mtmsrd L=1 writes EE and RI only; L=0 all but HV, ME, LE
    mfmsr r3
    li r4, -1                           # every bit: L=1 may take only EE and RI from it
    mtmsrd r4, 1
    mfmsr r5
    li r6, 0
    mtmsrd r6, 1
    mfmsr r7
    LOG 0x5, r5, r7, r0
    ori r8, r3, 0x2000                  # FP
    mtmsrd r8, 0
    mfmsr r9
    lis r10, 0x8000
    sldi r10, r10, 32                   # SF only: ME, LE (and HV) must survive
    mtmsrd r10, 0
    mfmsr r11
    mtmsrd r3, 0
    mfmsr r12
    LOG 0x6, r9, r11, r12

    # sc: System Call interrupt, SRR0 = next instruction
    li r3, 41
    sc
    LOG 0x7, r3, r0, r0

    # Traps: one that does not trap, one that does (program interrupt, SRR0 = the trap)
    li r5, 3
    tdi 4, r5, 4
    tdi 4, r5, 3
    twi 31, r0, 0
    LOG 0x8, r5, r0, r0

    # rfid into little-endian code, which makes an sc; the handler comes back big-endian
    mfmsr r3
    ori r3, r3, 1
    mtsrr1 r3
    LOADADDR r4, le_code
    mtsrr0 r4
    rfid
le_return:
    LOG 0x9, r3, r4, r0

    # Self-tracing: rfid into traced code with MSR[SE]=1; the Trace handler logs SRR0/SRR1
    mfmsr r3
    ori r3, r3, 0x400
    mtsrr1 r3
    LOADADDR r4, traced
    mtsrr0 r4
    rfid
trace_return:
    LOG 0xA, r5, r6, r0

    # Decrementer: DEC = 200, EE on, spin; the handler leaves with EE off
    li r3, 200
    mtdec r3
    mfmsr r3
    ori r3, r3, 0x8000
    mtmsrd r3, 1
dec_loop:
    b dec_loop
dec_return:
    mfmsr r3
    LOG 0xB, r3, r0, r0

finish:
    li r3, 0
    LOG 0xE0F, r3, r3, r3
end:
    b end

unexpected:
    mfsrr0 r29
    mfsrr1 r30
    LOG 0xBAD, r27, r29, r30
    b finish

    .org 0x2800
    # Traced code: outside 0x100-0xF00 (QemuDepartures.TraceSkipsVectorArea).
traced:
    li r5, 1
    addi r5, r5, 2
    b 1f
    nop
1:  stw r5, trace_word@l(0)
    lwz r6, trace_word@l(0)
    cmpwi r6, 3
    beq 2f
    nop
2:  mtctr r6
traced_end:
    nop

    .org 0x2c00
le_code:
    LEWORD 0x38600077                   # li r3, 0x77
    LEWORD 0x7c8000a6                   # mfmsr r4
    LEWORD 0x44000002                   # sc

    .org 0x2e00
trace_word:
    .long 0
    .org 0x3000
log:
    .space 0x1000
