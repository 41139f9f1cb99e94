# Trace-vector oracle image (big-endian), run on qemu-system-ppc64 -M powernv9 -bios (a raw binary loaded
# at 0, entered at 0x10 with MSR = SF|HV) and on ActorStep's machine (as an ELF, entered at e_entry = 0x10
# with MSR = SF|ME). The image single-steps itself (MSR[SE]=1) through code that moves the Trace handler:
# LPCR[AIL] = 0, 2 and 3; mtmsrd that turns IR/DR off, partly on and back on (the Trace after it is taken
# with the MSR it installs); rfid into real and into relocated code (rfid itself is not traced; the
# instruction at its target is); a self-traced mfmsr. Every Trace interrupt logs the vector it reached
# (the handler's own effective address, from bcl), SRR0, SRR1 and the MSR in the handler; see
# tests/Differential/TraceVectorOracleTests.cs and tests/Differential/README.md.
#
# Log entries are four doublewords {tag, a, b, c}, ending with tag 0xE0F:
#   0xD00 {vector EA, SRR0, SRR1}        one per Trace interrupt
#   0xD01 {MSR in the handler, 0, 0}     follows each 0xD00
#   0x100/0x200/0x300 {section, AIL, 0}  a section begins
#   0x101/0x201/0x301 {r5 (counts the traced addi), r6 = the self-traced mfmsr's result, 0}   a section ends
#   0xBAD {vector, SRR0, SRR1}           an interrupt that should not happen (then finish)
# r26-r31 belong to the handlers and the log (r31 = next entry); traced code uses r3-r12 and never LR.
#
# Platforms (told apart by MSR[HV] at reset: 1 on powernv, 0 on the machine):
#   - AIL: on powernv the image is the hypervisor and writes LPCR[AIL] with mtspr LPCR (POWER9: AIL
#     applies to HV->HV interrupts when IR=DR=1, Book III §6.5 / QEMU ppc_excp_apply_ail); on the machine,
#     a PAPR guest, it asks for it with H_SET_MODE (resource 3), as Linux does.
#   - Translation: the machine maps quadrant 0 one-to-one and 0xC000... linearly; on powernv setup_mmu
#     builds the same mapping for the first 64 pages as a hashed page table (two segments).
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
    # The 0xC000... alias of a label (the machine's linear map; setup_mmu's second segment on powernv).
    .macro LOADHIGH reg, sym, tmp
    LOADADDR \reg, \sym
    lis \tmp, 0xC000
    sldi \tmp, \tmp, 32
    or \reg, \reg, \tmp
    .endm
    # A vector that is not expected: note which one and stop.
    .macro UNEXPECTED vec
    .org \vec
    lis r27, (\vec) >> 16
    ori r27, r27, (\vec) & 0xffff
    b unexpected
    .endm
    # The Trace handler at one of its three places: its own effective address into r27 (bcl/mflr; LR
    # saved and restored around it), then the common part.
    .macro TRACE_VECTOR vec
    .org \vec
    mflr r26
    bcl 20, 31, 1f
1:  mflr r27
    mtlr r26
    addi r27, r27, -8
    b trace_common
    .endm
    # The vectors of one interrupt location (base 0, 0x18000 for AIL=2, 0x4000 = the RA of
    # 0xC000000000004000 for AIL=3): only Trace is expected.
    .macro VECTORS base
    UNEXPECTED \base+0x100
    UNEXPECTED \base+0x200
    UNEXPECTED \base+0x300
    UNEXPECTED \base+0x380
    UNEXPECTED \base+0x400
    UNEXPECTED \base+0x480
    UNEXPECTED \base+0x500
    UNEXPECTED \base+0x600
    UNEXPECTED \base+0x700
    UNEXPECTED \base+0x800
    UNEXPECTED \base+0x900
    UNEXPECTED \base+0x980
    UNEXPECTED \base+0xA00
    UNEXPECTED \base+0xB00
    UNEXPECTED \base+0xC00
    TRACE_VECTOR \base+0xD00
    UNEXPECTED \base+0xE00
    UNEXPECTED \base+0xE20
    UNEXPECTED \base+0xE40
    UNEXPECTED \base+0xE60
    UNEXPECTED \base+0xE80
    UNEXPECTED \base+0xEA0
    UNEXPECTED \base+0xF00
    UNEXPECTED \base+0xF20
    UNEXPECTED \base+0xF40
    UNEXPECTED \base+0xF60
    UNEXPECTED \base+0xF80
    .endm
    # LPCR[AIL] = ail, with SE off. Clobbers r3-r7.
    .macro SET_AIL ail
    mfmsr r3
    rldicl. r3, r3, 4, 63               # MSR[HV]
    beq 1f
    mfspr r3, 318                       # powernv: the hypervisor writes LPCR itself
    lis r4, 0x0180                      # AIL = LPCR bits 39:40
    andc r3, r3, r4
    lis r4, (\ail) << 7
    or r3, r3, r4
    mtspr 318, r3
    isync
    b 2f
1:  li r3, 0x31C                        # the machine: H_SET_MODE(mflags = AIL, resource 3)
    li r4, \ail
    li r5, 3
    li r6, 0
    li r7, 0
    sc 1
2:
    .endm

    .org 0x10
    .globl _start
_start:
    b main

    VECTORS 0

    .org 0x1000
    # r27 = the vector reached. Logs it with SRR0, SRR1 and the handler's MSR; returns with SRR1 as taken.
trace_common:
    mfsrr0 r29
    mfsrr1 r30
    LOG 0xD00, r27, r29, r30
    mfmsr r27
    li r29, 0
    LOG 0xD01, r27, r29, r29
    rfid

unexpected:
    mfsrr0 r29
    mfsrr1 r30
    LOG 0xBAD, r27, r29, r30
    b finish

    .org 0x1800
main:
    LOADADDR r31, log
    li r0, 0
    lis r3, 0x7fff
    ori r3, r3, 0xffff
    mtdec r3                            # EE stays 0 throughout anyway
    mfmsr r3
    ori r3, r3, 0x1000                  # ME (QEMU's powernv resets with ME=0; the machine has it)
    mtsrr1 r3
    LOADADDR r4, after_me
    mtsrr0 r4
    rfid
after_me:
    bl setup_mmu                        # powernv only

    # ---- Section 1: real mode, AIL=0: the Trace handler at 0xD00 ----
    SET_AIL 0
    li r3, 1
    LOG 0x100, r3, r0, r0
    li r5, 0
    mfmsr r3
    ori r3, r3, 0x400
s1_se_on:
    mtmsrd r3, 0                        # SE on: not traced (SE was 0 before it)
s1_traced:
    addi r5, r5, 5                      # traced -> 0xD00
s1_mfmsr:
    mfmsr r6                            # self-traced mfmsr (SE=1 in its result) -> 0xD00
    li r8, 0x400
    andc r7, r6, r8
s1_se_off:
    mtmsrd r7, 0                        # SE off: still traced (SE was 1 before it) -> 0xD00
    LOG 0x101, r5, r6, r0

    # ---- Section 2: AIL=2 with IR=DR=1: the Trace handler at 0x18D00 ----
    SET_AIL 2
    li r3, 2
    li r4, 2
    LOG 0x200, r3, r4, r0
    li r5, 0x20                         # SET_AIL clobbered r3-r7 (the hypercall's arguments)
    mfmsr r3
    ori r3, r3, 0x430                   # SE, IR, DR
    mtsrr1 r3
    LOADADDR r4, s2_traced
    mtsrr0 r4
    rfid                                # SE was 0: never traced
s2_traced:
    addi r5, r5, 1                      # -> 0x18D00
s2_mfmsr:
    mfmsr r6                            # self-traced mfmsr, relocated -> 0x18D00
    li r8, 0x30
    andc r7, r6, r8
s2_to_real:
    mtmsrd r7, 0                        # IR=DR=0: the Trace is taken in real mode -> 0xD00
    addi r5, r5, 1                      # -> 0xD00
    ori r7, r7, 0x20
s2_to_ir:
    mtmsrd r7, 0                        # IR=1, DR=0: AIL needs both -> 0xD00
    ori r7, r7, 0x10
s2_to_reloc:
    mtmsrd r7, 0                        # IR=DR=1 again -> 0x18D00
    addi r5, r5, 1                      # -> 0x18D00
    li r8, 0x400                        # an rfid into real mode with SE: SRR0/SRR1 are set with SE off
    andc r7, r6, r8                     # (a Trace would overwrite them)
s2_se_off1:
    mtmsrd r7, 0                        # SE off: traced -> 0x18D00
    li r8, 0x30
    andc r9, r6, r8                     # r9 = SE on, IR=DR=0
    mtsrr1 r9
    LOADADDR r4, s2_target_real
    mtsrr0 r4
s2_se_on1:
    mtmsrd r6, 0                        # SE on (not traced)
s2_rfid_real:
    rfid                                # not traced (QEMU 7.2 does trace it: QemuDepartures)
s2_target_real:
    addi r5, r5, 1                      # real mode -> 0xD00
    li r8, 0x400
    andc r7, r9, r8
s2_se_off2:
    mtmsrd r7, 0                        # SE off -> 0xD00
    mtsrr1 r6                           # back to IR=DR=1 with SE
    LOADADDR r4, s2_target_reloc
    mtsrr0 r4
s2_se_on2:
    mtmsrd r9, 0                        # SE on, real mode (not traced)
s2_rfid_reloc:
    rfid
s2_target_reloc:
    addi r5, r5, 1                      # relocated -> 0x18D00
    li r8, 0x400
    andc r7, r6, r8
s2_se_off3:
    mtmsrd r7, 0                        # SE off -> 0x18D00
    LOG 0x201, r5, r6, r0
    li r8, 0x30
    andc r7, r7, r8
    mtmsrd r7, 0                        # real mode, SE off

    # ---- Section 3: AIL=3 with IR=DR=1: the Trace handler at 0xC000000000004D00 ----
    # The traced code runs at its 0xC000... alias.
    SET_AIL 3
    li r3, 3
    li r4, 3
    LOG 0x300, r3, r4, r0
    li r5, 0x30
    mfmsr r3
    ori r3, r3, 0x430                   # SE, IR, DR
    mtsrr1 r3
    LOADHIGH r4, s3_traced, r8
    mtsrr0 r4
    rfid
    b finish                            # not reached

    .org 0x2800
    # ---- Translation for powernv (MSR[HV]=1 at reset; the machine skips all of it) ----
    # The machine's platform maps quadrant 0 one-to-one and 0xC000... linearly. This builds that mapping
    # for the image's first MAPPED_PAGES pages as a hashed page table (Book III §5.7): HPT of 256 KiB
    # (HTABSIZE 0) at HPT_BASE, partition table (PTCR, PATS 0) at PATB, entry 0 = {HR=0, HTABORG};
    # LPCR[HR]=LPCR[UPRT]=0 (hash, SLB), AIL=0, HDICE=0; SLB 0: ESID 0 -> VSID 0; SLB 1: ESID 0xC00000000
    # (EA 0xC000000000000000) -> VSID 0x400; 256 MiB segments, 4 KiB pages, Ks=Kp=0. Each page p of each
    # segment gets an HPTE in slot 0 of its primary PTEG (hash = VSID ^ p: PTEGs 0-0x3F and 0x400-0x43F),
    # RA = p * 4 KiB, PP=00, R=C=1.
    .set HPT_BASE, 0x40000
    .set PATB, 0x80000
    .set MAPPED_PAGES, 64
    .set HIGH_VSID, 0x400
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
    li r11, 0                           # VSID of the segment being mapped
3:  li r6, 0                            # page number p
2:  sldi r7, r6, 12                     # RA = offset in the segment
    xor r8, r6, r11                     # PTEG index = (VSID ^ p) & (2^11 - 1)
    andi. r8, r8, 0x7ff
    sldi r8, r8, 7
    add r8, r8, r4                      # slot 0 of the primary PTEG
    sldi r9, r11, 12                    # dword 0: AVA = VSID || EA[36:40] (0 here), V
    ori r9, r9, 1
    ori r10, r7, 0x180                  # dword 1: RPN = RA, R, C, WIMG 0, N 0, PP 00
    std r10, 8(r8)
    std r9, 0(r8)
    addi r6, r6, 1
    cmpdi r6, MAPPED_PAGES
    blt 2b
    cmpdi r11, 0
    li r11, HIGH_VSID
    beq 3b
    lis r5, PATB@h                      # partition table entry 0 (LPID 0)
    ori r5, r5, PATB@l
    std r4, 0(r5)                       # HR=0, HTABORG, HTABSIZE 0
    li r6, 0
    std r6, 8(r5)
    ptesync
    mtspr 319, r6                       # LPIDR = 0
    mtspr 464, r5                       # PTCR = PATB, PATS 0
    mfspr r7, 318                       # LPCR: AIL, UPRT, HR, HDICE off
    lis r8, 0x01d0
    ori r8, r8, 0x0001
    andc r7, r7, r8
    mtspr 318, r7
    isync
    slbia
    li r7, 0                            # SLB 0: ESID 0 -> VSID 0
    lis r8, 0x0800                      # V
    slbmte r7, r8
    li r7, HIGH_VSID                    # SLB 1: ESID 0xC00000000 -> HIGH_VSID
    sldi r7, r7, 12
    lis r8, 0xC000
    sldi r8, r8, 32
    oris r8, r8, 0x0800                 # V
    ori r8, r8, 1                       # index 1
    slbmte r7, r8
    isync
    blr

    .org 0x3000
finish:
    li r3, 0
    LOG 0xE0F, r3, r3, r3
end:
    mfmsr r3                            # powernv: QEMU stops at the gdb breakpoint here
    rldicl. r3, r3, 4, 63
    bne end
    li r3, 0                            # the machine: H_ACTORSTEP_STOP (the host-stepped run ends here)
    ori r3, r3, 0xF080
    li r4, 0
    sc 1
    b .

    VECTORS 0x4000

    .org 0x5000
    # Section 3, traced, at 0xC000000000005000 + x (AIL=3)
s3_traced:
    addi r5, r5, 1                      # -> 0xC000000000004D00
s3_mfmsr:
    mfmsr r6                            # self-traced mfmsr -> 0xC000000000004D00
    li r8, 0x10
    andc r7, r6, r8
s3_to_ir:
    mtmsrd r7, 0                        # IR=1, DR=0: no AIL -> 0xD00
    addi r5, r5, 1                      # -> 0xD00
    li r8, 0x30
    andc r7, r6, r8
s3_to_real:
    mtmsrd r7, 0                        # IR=DR=0 (real mode at the 0xC000... EA: bits 0:3 ignored) -> 0xD00
    ori r7, r7, 0x10
s3_to_dr:
    mtmsrd r7, 0                        # IR=0, DR=1 -> 0xD00
s3_to_reloc:
    mtmsrd r6, 0                        # IR=DR=1 -> 0xC000000000004D00
    addi r5, r5, 1                      # -> 0xC000000000004D00
    li r8, 0x400                        # an rfid that stays relocated, with SE
    andc r7, r6, r8
s3_se_off1:
    mtmsrd r7, 0                        # SE off -> 0xC000000000004D00
    mtsrr1 r6
    LOADHIGH r4, s3_target, r8
    mtsrr0 r4
s3_se_on:
    mtmsrd r6, 0                        # SE on (not traced)
s3_rfid:
    rfid                                # not traced (QEMU 7.2 does trace it: QemuDepartures)
s3_target:
    addi r5, r5, 1                      # -> 0xC000000000004D00
s3_se_off2:
    mtmsrd r7, 0                        # SE off -> 0xC000000000004D00
    LOG 0x301, r5, r6, r0
    li r8, 0x30                         # back to real mode at a quadrant-0 address, AIL=0
    andc r7, r7, r8
    mtsrr1 r7
    LOADADDR r4, s3_done
    mtsrr0 r4
    rfid
s3_done:
    SET_AIL 0
    b finish

    VECTORS 0x18000

    .org 0x19000
log:
    .space 0x2000
