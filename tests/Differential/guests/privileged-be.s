# Privileged differential image (big-endian at reset), run on qemu-system-ppc64 -M powernv -bios
# (as a raw binary loaded at 0, entered at 0x10 with MSR = SF|HV) and on ActorStep's machine (as an
# ELF, entered at e_entry = 0x10 with MSR = SF|ME). It logs what it sees into `log`: entries of four
# doublewords {tag, a, b, c}, ending with tag 0xE0F. Registers r26-r31 belong to the handlers and the
# log (r31 = next entry). The whole image is one .text section so the ELF and the raw binary agree.
#
# Platform detection: MSR[HV] at reset is 1 on powernv (bare metal) and 0 on the machine (a PAPR guest).
# Only with HV=1 does the image build its own translation (setup_mmu) and does it ever reach the
# Hypervisor Emulation Assistance vector (heai_handler); see tests/Differential/README.md.
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
    .org 0x300
    b dsi_handler
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
    .org 0xE40
    b heai_handler
    UNEXPECTED 0xE60
    UNEXPECTED 0xE80
    UNEXPECTED 0xEA0
    UNEXPECTED 0xF00
    UNEXPECTED 0xF20
    UNEXPECTED 0xF40
    .org 0xF60
    b fu_handler
    UNEXPECTED 0xF80

    .org 0x1000
sc_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0xC00, r29, r30, r27
    addi r3, r3, 1
    andi. r26, r30, 0x4000              # from problem state: back to supervisor state at user_return
    beq 2f
    li r26, 0
    ori r26, r26, 0xC030                # PR, EE, IR, DR
    andc r30, r30, r26
    mtsrr1 r30
    LOADADDR r29, user_return
    mtsrr0 r29
    rfid
2:  andi. r26, r30, 1                   # from little-endian code: back to big-endian at le_return
    beq 1f
    rldicr r30, r30, 0, 62
    mtsrr1 r30
    LOADADDR r29, le_return
    mtsrr0 r29
1:  rfid

    # Facility Unavailable (here: scv with FSCR[SCV]=0): SRR0 = the scv, FSCR[IC] = 12; resume after it.
fu_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfspr r27, 153                      # FSCR
    LOG 0xF60, r29, r30, r27
    addi r29, r29, 4
    mtsrr0 r29
    rfid

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

dsi_handler:
    mfsrr0 r29
    mfsrr1 r30
    mfmsr r27
    LOG 0x300, r29, r30, r27
    mfdar r29
    mfdsisr r30
    li r27, 0
    LOG 0x301, r29, r30, r27
    mfsrr0 r29
    addi r29, r29, 4
    mtsrr0 r29
    rfid

    # Hypervisor Emulation Assistance (Book III §6.5.19): an illegal instruction with MSR[HV]=1, i.e.
    # only on powernv. The machine models a KVM guest, and KVM (arch/powerpc/kvm/book3s_hv.c, exit
    # BOOK3S_INTERRUPT_H_EMUL_ASSIST -> kvmppc_core_queue_program(vcpu, SRR1_PROGILL) ->
    # kvmppc_inject_interrupt_hv) reflects this interrupt into the guest as a program interrupt:
    #   SRR0 <- HSRR0 (the illegal instruction), SRR1 <- (HSRR1 & ~0x783f0000) | 0x80000 (SRR1[44]),
    #   MSR <- the program interrupt's new MSR, NIP <- 0x700.
    # This handler does exactly that, so both logs show the same program interrupt. It first records the
    # raw HSRR0/HSRR1 in heai_log, which the test checks against §6.5.19 on its own.
heai_handler:
    mfmsr r26
    rldicl. r26, r26, 4, 63             # MSR[HV]
    bne 1f
    li r27, 0xE40                       # never with HV=0 (the machine): report it
    b unexpected
1:  mfspr r29, 314                      # HSRR0
    mfspr r30, 315                      # HSRR1
    LOADADDR r26, heai_log
    ld r27, 0(r26)                      # count; entry k (from 1) at heai_log + 16*k
    addi r27, r27, 1
    std r27, 0(r26)
    sldi r27, r27, 4
    add r26, r26, r27
    std r29, 0(r26)
    std r30, 8(r26)
    mtsrr0 r29
    lis r26, 0x783f                     # the interrupt-specific bits 33:36, 42:47
    andc r30, r30, r26
    lis r26, 0x8                        # SRR1[44]: illegal instruction
    or r30, r30, r26
    mtsrr1 r30
    li r26, 0                           # the program interrupt's new MSR: HEAI keeps MSR[RI], a
    mtmsrd r26, 1                       # program interrupt clears it (Book III §6.5, MSR setting due to interrupt)
    b program_handler

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

    # scv: with FSCR[SCV]=0 a Facility Unavailable interrupt; with it set, LR = the next instruction,
    # CTR = the MSR, the handler at 0x17000 + LEV*0x20 (AIL does not apply in real mode), SRR0/SRR1
    # untouched; rfscv returns through LR and CTR.
    li r3, 7
scv_disabled:
    scv 0
    li r5, 0x1000                       # FSCR[SCV]
    mtspr 153, r5
    LOADADDR r5, 0x5550
    mtsrr0 r5
    mtsrr1 r5
scv_0:
    scv 0
scv_1:
    scv 1
    mfsrr0 r6
    mfsrr1 r7
    LOG 0x10, r3, r6, r7

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

    # Illegal instruction (an undefined opcode word) in supervisor state: program interrupt, SRR1[44]
    # (on powernv through heai_handler's reflection)
    li r5, 5
illegal_sv:
    .long 0x00000000                    # primary opcode 0
    addi r5, r5, 1
    LOG 0xC, r5, r0, r0

    bl setup_mmu                        # powernv only: the machine's mapping as a hashed page table

    # DSI from supervisor state with data relocation only (MSR[DR]=1): load and store
    mfmsr r3
    ori r4, r3, 0x10
    mtmsrd r4, 0
    lis r7, UNMAPPED_Q0@h
    ori r7, r7, UNMAPPED_Q0@l
    li r5, 7
dsi_sv_load:
    ld r5, 0(r7)
dsi_sv_store:
    stw r5, 4(r7)
    mtmsrd r3, 0
    mfmsr r4
    LOG 0xD, r5, r4, r0

    # Problem state (MSR[PR]=1, so IR=DR=EE=1): privileged instructions, illegal instructions, DSI;
    # user_code ends with sc, whose handler returns to user_return in supervisor state
    mfmsr r3
    ori r3, r3, 0xC030                  # PR, EE, IR, DR
    mtsrr1 r3
    LOADADDR r4, user_code
    mtsrr0 r4
    rfid
user_return:
    mfmsr r3
    LOG 0xE, r3, r6, r9
    LOADADDR r7, user_word
    lwz r8, 4(r7)
    LOG 0xF, r8, r5, r0

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

    # ---- Translation for powernv (MSR[HV]=1 at reset; the machine skips all of it) ----
    # With MSR[PR]=1, instruction and data relocation are on (Book III §4.4.3). The machine's platform
    # gives a fixed mapping (quadrant 0 identity, 0xC000... linear, nothing else); QEMU's POWER9 needs
    # a page table. This builds the same mapping for what the image uses as a hashed page table
    # (Book III §5.7): HPT of 256 KiB (HTABSIZE 0) at HPT_BASE, partition table (PTCR, PATS 0) at PATB
    # with entry 0 = {HR=0, HTABORG}, LPCR[HR]=LPCR[UPRT]=0 (hash, SLB), AIL=0, HDICE=0;
    # SLB entry 0: ESID 0 -> VSID 0 (256 MiB, 4 KiB pages, Ks=Kp=0), with an HPTE for each of the first
    # MAPPED_PAGES pages (RA = EA, PP=00, R=C=1); SLB entry 1: ESID of UNMAPPED_Q4 -> VSID 0x1234 with
    # no HPTE. So UNMAPPED_Q0 (quadrant 0, beyond the machine's RAM) and UNMAPPED_Q4 (a quadrant the
    # machine does not map) have a segment but no page: a DSI with DSISR[33] on both sides, never a
    # Data Segment interrupt.
    .set HPT_BASE, 0x40000
    .set PATB, 0x80000
    .set MAPPED_PAGES, 16
    .set UNMAPPED_Q0, 0x0ABCD008        # = PowerNvDepartures.UnmappedQuadrant0 (UnmappedQuadrant4: 0x4000000000000010)
setup_mmu:
    mfmsr r3
    rldicl. r3, r3, 4, 63               # MSR[HV]
    beqlr                               # the machine: the platform already maps
    lis r4, HPT_BASE@h                  # zero the HPT
    ori r4, r4, HPT_BASE@l
    li r5, 0
    li r6, 0
    ori r6, r6, 0x8000                  # 256 KiB / 8
    mtctr r6
    addi r6, r4, -8
1:  stdu r5, 8(r6)
    bdnz 1b
    li r6, 0                            # page number p = EA >> 12 (VSID 0: hash = p)
2:  sldi r7, r6, 12                     # EA = RA
    andi. r8, r6, 0x7ff                 # PTEG index = hash & (2^11 - 1)
    sldi r8, r8, 7
    add r8, r8, r4                      # slot 0 of the primary PTEG
    srdi r9, r7, 16                     # dword 0: AVPN = VSID || EA[36:56] (VSID 0), V
    rldicr r9, r9, 0, 56
    ori r9, r9, 1
    ori r10, r7, 0x180                  # dword 1: RPN = RA, R, C, WIMG 0, N 0, PP 00
    std r10, 8(r8)
    std r9, 0(r8)
    addi r6, r6, 1
    cmpdi r6, MAPPED_PAGES
    blt 2b
    lis r5, PATB@h                      # partition table entry 0 (LPID 0)
    ori r5, r5, PATB@l
    std r4, 0(r5)                       # HR=0, HTABORG, HTABSIZE 0
    li r6, 0
    std r6, 8(r5)
    ptesync
    mtspr 319, r6                       # LPIDR = 0
    mtspr 464, r5                       # PTCR = PATB, PATS 0
    mfspr r7, 318                       # LPCR: HR, UPRT, AIL, HDICE off
    lis r8, 0x01c0
    ori r8, r8, 0x0011
    andc r7, r7, r8
    mtspr 318, r7
    isync
    slbia
    li r7, 0                            # SLB 0: ESID 0, VSID 0
    lis r8, 0x0800                      # V
    slbmte r7, r8
    li r7, 0x1234                       # SLB 1: ESID of UNMAPPED_Q4, VSID 0x1234
    sldi r7, r7, 12
    lis r8, 0x4000
    sldi r8, r8, 32
    oris r8, r8, 0x0800
    ori r8, r8, 1
    slbmte r7, r8
    isync
    blr

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

    .org 0x2f00
    # QEMU only: the raw HSRR0/HSRR1 of every HEAI (count, then {HSRR0, HSRR1} from offset 16).
heai_log:
    .space 0x100
    .org 0x3000
log:
    .space 0x1000

    .org 0x4000
    # Problem-state code (MSR[PR]=1, IR=DR=EE=1). Every interrupt handler returns to the next
    # instruction; sc returns to user_return in supervisor state.
user_code:
    mfmsr r5                            # privileged instructions: program interrupt, SRR1[45]
    mtmsrd r5, 1
    mtmsrd r5, 0
    rfid
    hrfid
    mfsrr0 r5                           # privileged SPRs (SPR number bit 0x10)
    mtsrr1 r5
    mfsprg0 r5
    mfdec r5
    mfpvr r5
    mfspr r5, 318                       # LPCR, a hypervisor SPR
    mtspr 318, r5
illegal_pr:
    .long 0x00000000                    # illegal instruction: program interrupt, SRR1[44]
    LOADADDR r7, user_word              # translated accesses that work: identity in quadrant 0
    ld r6, 0(r7)
    li r9, 0x55
    stw r9, 4(r7)
    lis r7, UNMAPPED_Q0@h               # DSI: quadrant 0 beyond RAM / without an HPTE
    ori r7, r7, UNMAPPED_Q0@l
dsi_pr_load:
    lwz r5, 0(r7)
dsi_pr_store:
    std r5, 8(r7)
    lis r7, 0x4000                      # DSI: UNMAPPED_Q4 = 0x4000000000000010, another quadrant
    sldi r7, r7, 32
dsi_pr_load_q4:
    ld r5, 0x10(r7)
dsi_pr_store_q4:
    stb r5, 0x10(r7)
    li r3, 0x99
    sc
    .balign 8
user_word:
    .quad 0x0123456789abcdef

    # ---- scv vectors (0x17000 + LEV*0x20): log LR, CTR (the MSR at scv) and the MSR inside ----
    .org 0x17000
    b scv0_handler
    .org 0x17020
    b scv1_handler
scv0_handler:
    mflr r29
    mfctr r30
    mfmsr r27
    LOG 0x1700, r29, r30, r27
    addi r3, r3, 1
    rfscv
scv1_handler:
    mflr r29
    mfctr r30
    mfmsr r27
    LOG 0x1720, r29, r30, r27
    addi r3, r3, 0x100
    rfscv
