# Decoder cross-check source: every row of OpcodeTable.Rows with several operand variants, record (.) and
# OE (o) forms, and edge immediates/shifts. DecoderTests assembles this once per byte order (BIG_ENDIAN is
# defined for the big-endian build), disassembles it with objdump -d -M raw,power9,any and compares every
# word with Disassembler.Format. Every line here must be an instruction objdump accepts; words that must
# decode as illegal live in DecoderTests, not here.
    .text
    .globl _start
_start:
back:
# ---- D-form arithmetic, signed immediates; RA=0 reads as zero for addi/addis
    .irp ra, 0, 1, 31
    addi    3, \ra, 16
    addi    31, \ra, -32768
    addi    0, \ra, 32767
    addis   3, \ra, -1
    addis   5, \ra, 0x7fff
    .endr
    .irp si, 0, 1, -1, 32767, -32768
    addic   3, 4, \si
    addic.  3, 4, \si
    subfic  31, 0, \si
    mulli   7, 8, \si
    twi     4, 3, \si
    tdi     31, 0, \si
    .endr
    twi     0, 1, 2
    tdi     1, 2, -3
# ---- compares (all CR fields, L=0/1)
    .irp bf, 0, 1, 6, 7
    cmpi    \bf, 0, 3, -5
    cmpi    \bf, 1, 31, 32767
    cmpli   \bf, 0, 3, 0
    cmpli   \bf, 1, 0, 65535
    cmp     \bf, 0, 3, 4
    cmp     \bf, 1, 0, 31
    cmpl    \bf, 0, 31, 0
    cmpl    \bf, 1, 5, 6
    .endr
# ---- logical immediates (unsigned)
    .irp ui, 0, 1, 0x7fff, 0x8000, 0xffff
    ori     3, 4, \ui
    oris    0, 31, \ui
    xori    31, 0, \ui
    xoris   3, 3, \ui
    andi.   3, 4, \ui
    andis.  5, 6, \ui
    .endr
    ori     0, 0, 0
# ---- XO-form arithmetic: plain, record, OE, OE+record
    .irp m, add, addc, adde, subf, subfc, subfe, mullw, mulld, divw, divwu, divd, divdu
    \m      3, 4, 5
    \m\().  0, 31, 1
    \m\()o  31, 0, 7
    \m\()o. 9, 10, 11
    .endr
    .irp m, addme, addze, subfme, subfze, neg
    \m      3, 4
    \m\().  0, 31
    \m\()o  31, 0
    \m\()o. 9, 10
    .endr
    .irp m, mulhw, mulhwu, mulhd, mulhdu
    \m      3, 4, 5
    \m\().  31, 0, 1
    .endr
# ---- X-form logical and shifts
    .irp m, and, andc, or, orc, xor, nand, nor, eqv, slw, srw, sraw, sld, srd, srad
    \m      3, 4, 5
    \m\().  31, 0, 1
    .endr
    or      3, 4, 4
    nor     5, 5, 5
    cmpb    3, 4, 5
    cmpb    0, 31, 1
    .irp m, extsb, extsh, extsw, cntlzw, cntlzd
    \m      3, 4
    \m\().  31, 0
    .endr
    .irp m, popcntb, popcntw, popcntd
    \m      3, 4
    \m      0, 31
    .endr
    .irp sh, 0, 1, 16, 31
    srawi   3, 4, \sh
    srawi.  31, 0, \sh
    .endr
    .irp sh, 0, 1, 31, 32, 33, 40, 63
    sradi   3, 4, \sh
    sradi.  31, 0, \sh
    .endr
# ---- rotates: 32-bit
    rlwinm  3, 4, 5, 6, 7
    rlwinm. 31, 0, 31, 30, 2
    rlwinm  3, 4, 0, 0, 31
    rlwimi  3, 4, 31, 0, 0
    rlwimi. 5, 6, 1, 31, 31
    rlwnm   3, 4, 5, 6, 7
    rlwnm.  0, 31, 1, 16, 15
# ---- rotates: 64-bit, sh and mb/me on both sides of 32
    .irp sh, 0, 1, 31, 32, 33, 63
    rldicl  3, 4, \sh, 0
    rldicl. 31, 0, \sh, 63
    rldicr  3, 4, \sh, 31
    rldicr. 5, 6, \sh, 32
    rldic   3, 4, \sh, 1
    rldic.  5, 6, \sh, 40
    rldimi  3, 4, \sh, 33
    rldimi. 5, 6, \sh, 0
    .endr
    .irp mb, 0, 1, 31, 32, 47, 63
    rldcl   3, 4, 5, \mb
    rldcl.  31, 0, 1, \mb
    rldcr   3, 4, 5, \mb
    rldcr.  31, 0, 1, \mb
    .endr
# ---- D-form loads and stores; update forms need RA != 0 (and != RT for loads)
    .irp m, lbz, lhz, lha, lwz, stb, sth, stw, stbu, sthu, stwu
    \m      3, 8(1)
    \m      31, -32768(4)
    \m      0, 32767(31)
    .endr
    .irp m, lbz, lhz, lha, lwz, stb, sth, stw
    \m      3, 0(0)
    \m      5, -8(0)
    .endr
    .irp m, lbzu, lhzu, lhau, lwzu
    \m      3, 8(1)
    \m      31, -32768(4)
    \m      0, 32767(31)
    .endr
    .irp m, lfs, lfd, stfs, stfd
    \m      1, 8(3)
    \m      31, -32768(0)
    \m      0, 32767(31)
    .endr
    .irp m, lfsu, lfdu, stfsu, stfdu
    \m      1, 8(3)
    \m      31, -32768(1)
    \m      0, 32767(31)
    .endr
    .irp m, ld, lwa, std
    \m      3, 8(1)
    \m      31, -32768(0)
    \m      0, 32764(31)
    \m      5, -4(6)
    .endr
    .irp m, ldu, stdu
    \m      3, 8(1)
    \m      31, -32768(4)
    \m      0, 32764(31)
    .endr
    stdu    1, -32(1)
# ---- X-form loads and stores
    .irp m, lbzx, lhzx, lhax, lwzx, lwax, ldx, stbx, sthx, stwx, stdx, lhbrx, lwbrx, ldbrx, sthbrx, stwbrx, stdbrx
    \m      3, 4, 5
    \m      31, 0, 1
    \m      0, 31, 0
    .endr
    .irp m, lbzux, lhzux, lhaux, lwzux, lwaux, ldux, stbux, sthux, stwux, stdux
    \m      3, 4, 5
    \m      0, 31, 1
    .endr
    .irp m, lwarx, ldarx
    \m      3, 4, 5
    \m      31, 0, 1, 1
    \m      0, 31, 2, 0
    .endr
    .irp m, stwcx., stdcx.
    \m      3, 4, 5
    \m      31, 0, 1
    .endr
# ---- floating-point move
    fmr     1, 2
    fmr.    31, 0
# ---- branches: every BO objdump accepts, BI in several CR fields, all AA/LK combinations
    b       fwd
    bl      back
    ba      0x100
    bla     0x1fffffc
    ba      -4
    bla     -0x2000000
    .irp bo, 0, 2, 4, 6, 7, 8, 10, 12, 14, 15, 16, 18, 20, 24, 25, 26, 27
    bc      \bo, 0, back
    bcl     \bo, 6, fwd
    bca     \bo, 31, 0x100
    bcla    \bo, 13, -0x8000
    bclr    \bo, 2, 0
    bclrl   \bo, 30, 0
    .endr
    .irp bo, 4, 6, 7, 12, 14, 15, 20
    bcctr   \bo, 0, 0
    bcctrl  \bo, 29, 0
    .endr
    .irp bh, 1, 3
    bclr    20, 0, \bh
    bcctr   12, 2, \bh
    .endr
fwd:
    .irp m, crand, cror, crxor, crnand, crnor, creqv, crandc, crorc
    \m      0, 1, 2
    \m      31, 30, 3
    \m      6, 6, 6
    .endr
    mcrf    0, 7
    mcrf    7, 0
    mcrf    3, 3
    isel    3, 4, 5, 6
    isel    3, 0, 5, 2
    isel    0, 31, 1, 31
# ---- CR moves: mfcr/mtcrf and the one-field forms mfocrf/mtocrf
    mfcr    3
    mfcr    31
    mtcrf   0xff, 3
    mtcrf   0x01, 31
    mtcrf   0x80, 0
    # gas turns a single-field mtcrf into mtocrf; spell plain mtcrf with one field (and with none).
    .long   0x7fe01120      # mtcrf 1,31
    .long   0x7c080120      # mtcrf 128,0
    .long   0x7c600120      # mtcrf 0,3
    .irp fxm, 0x80, 0x40, 0x08, 0x01
    mfocrf  3, \fxm
    mtocrf  \fxm, 31
    .endr
# ---- SPRs, time base, MSR
    .irp spr, 1, 8, 9, 22, 26, 27, 268, 269, 272, 287, 318, 1023
    mfspr   3, \spr
    mtspr   \spr, 31
    .endr
    # mftb with its own XO (371): gas -mpower9 assembles `mftb` as mfspr, so spell the words.
    .long   0x7c6c42e6      # mftb 3,268
    .long   0x7fed42e6      # mftb 31,269
    mfmsr   3
    mfmsr   31
    mtmsr   3, 0
    mtmsr   31, 1
    mtmsrd  3, 0
    mtmsrd  3, 1
    mtmsrd  31, 1
    rfid
    hrfid
    sc
    sc      1
    sc      127
    .irp m, tw, td
    \m      4, 3, 4
    \m      31, 0, 0
    \m      0, 31, 1
    .endr
# ---- storage control
    sync    0
    sync    1
    sync    2
    isync
    eieio
    .irp ra, 0, 3
    dcbt    \ra, 4, 0
    dcbt    \ra, 4, 16
    dcbtst  \ra, 4, 0
    dcbtst  \ra, 4, 8
    dcbf    \ra, 4, 0
    dcbf    \ra, 4, 1
    dcbf    \ra, 4, 3
    dcbst   \ra, 4
    icbi    \ra, 4
    dcbz    \ra, 31
    .endr
    # storage control (radix): tlbie/tlbiel RB,RS,RIC,PRS,R; tlbsync; slbia
    tlbie   4, 5, 2, 1, 1
    tlbie   4, 0, 0, 0, 0
    tlbiel  4, 5, 0, 1, 1
    tlbsync
    slbia
# ---- last, so that every other word (and branch displacement) is the same in both byte orders
.ifdef BIG_ENDIAN
    # lmw/stmw do not exist in little-endian mode (gas rejects them).
    lmw     25, -8(1)
    lmw     28, 0(0)
    stmw    30, 32767(31)
    stmw    3, -32768(4)
.endif
