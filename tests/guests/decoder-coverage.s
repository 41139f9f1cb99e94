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
    scv     0
    scv     1
    scv     127
    rfscv
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
    # VMX data-stream hints
    dst     3, 4, 2
    dstt    3, 4, 1
    dstst   3, 4, 0
    dststt  3, 4, 3
    dss     1
    dssall
    # storage control (radix): tlbie/tlbiel RB,RS,RIC,PRS,R; tlbsync; slbia
    tlbie   4, 5, 2, 1, 1
    tlbie   4, 0, 0, 0, 0
    tlbiel  4, 5, 0, 1, 1
    tlbsync
    slbia
# ---- floating point, VMX and VSX (isa/OpcodePatterns.cs): every row, register fields at both ends
    fdiv       1,2,3
    fdiv.      1,2,3
    fdiv       31,0,17
    fdiv.      31,0,17
    fsub       1,2,3
    fsub.      1,2,3
    fsub       31,0,17
    fsub.      31,0,17
    fadd       1,2,3
    fadd.      1,2,3
    fadd       31,0,17
    fadd.      31,0,17
    fsqrt      1,2
    fsqrt.     1,2
    fsqrt      31,0
    fsqrt.     31,0
    fsel       1,2,3,4
    fsel.      1,2,3,4
    fsel       31,0,17,9
    fsel.      31,0,17,9
    fre        1,2
    fre.       1,2
    fre        31,0
    fre.       31,0
    fmul       1,2,3
    fmul.      1,2,3
    fmul       31,0,17
    fmul.      31,0,17
    frsqrte    1,2
    frsqrte.   1,2
    frsqrte    31,0
    frsqrte.   31,0
    fmsub      1,2,3,4
    fmsub.     1,2,3,4
    fmsub      31,0,17,9
    fmsub.     31,0,17,9
    fmadd      1,2,3,4
    fmadd.     1,2,3,4
    fmadd      31,0,17,9
    fmadd.     31,0,17,9
    fnmsub     1,2,3,4
    fnmsub.    1,2,3,4
    fnmsub     31,0,17,9
    fnmsub.    31,0,17,9
    fnmadd     1,2,3,4
    fnmadd.    1,2,3,4
    fnmadd     31,0,17,9
    fnmadd.    31,0,17,9
    fdivs      1,2,3
    fdivs.     1,2,3
    fdivs      31,0,17
    fdivs.     31,0,17
    fsubs      1,2,3
    fsubs.     1,2,3
    fsubs      31,0,17
    fsubs.     31,0,17
    fadds      1,2,3
    fadds.     1,2,3
    fadds      31,0,17
    fadds.     31,0,17
    fsqrts     1,2
    fsqrts.    1,2
    fsqrts     31,0
    fsqrts.    31,0
    fres       1,2
    fres.      1,2
    fres       31,0
    fres.      31,0
    fmuls      1,2,3
    fmuls.     1,2,3
    fmuls      31,0,17
    fmuls.     31,0,17
    frsqrtes   1,2
    frsqrtes.  1,2
    frsqrtes   31,0
    frsqrtes.  31,0
    fmsubs     1,2,3,4
    fmsubs.    1,2,3,4
    fmsubs     31,0,17,9
    fmsubs.    31,0,17,9
    fmadds     1,2,3,4
    fmadds.    1,2,3,4
    fmadds     31,0,17,9
    fmadds.    31,0,17,9
    fnmsubs    1,2,3,4
    fnmsubs.   1,2,3,4
    fnmsubs    31,0,17,9
    fnmsubs.   31,0,17,9
    fnmadds    1,2,3,4
    fnmadds.   1,2,3,4
    fnmadds    31,0,17,9
    fnmadds.   31,0,17,9
    fcmpu      0,1,2
    fcmpu      7,31,0
    fcpsgn     1,2,3
    fcpsgn.    1,2,3
    fcpsgn     31,0,17
    fcpsgn.    31,0,17
    frsp       1,2
    frsp.      1,2
    frsp       31,0
    frsp.      31,0
    fctiw      1,2
    fctiw.     1,2
    fctiw      31,0
    fctiw.     31,0
    fctiwz     1,2
    fctiwz.    1,2
    fctiwz     31,0
    fctiwz.    31,0
    fcmpo      0,1,2
    fcmpo      7,31,0
    mtfsb1     1
    mtfsb1     31
    fneg       1,2
    fneg.      1,2
    fneg       31,0
    fneg.      31,0
    mcrfs      1,7
    mcrfs      7,0
    mtfsb0     1
    mtfsb0     31
    mtfsfi     0,3,1
    mtfsfi     7,15,0
    fnabs      1,2
    fnabs.     1,2
    fnabs      31,0
    fnabs.     31,0
    fctiwu     1,2
    fctiwu.    1,2
    fctiwu     31,0
    fctiwu.    31,0
    fctiwuz    1,2
    fctiwuz.   1,2
    fctiwuz    31,0
    fctiwuz.   31,0
    fabs       1,2
    fabs.      1,2
    fabs       31,0
    fabs.      31,0
    frin       1,2
    frin.      1,2
    frin       31,0
    frin.      31,0
    friz       1,2
    friz.      1,2
    friz       31,0
    friz.      31,0
    frip       1,2
    frip.      1,2
    frip       31,0
    frip.      31,0
    frim       1,2
    frim.      1,2
    frim       31,0
    frim.      31,0
    mffs       0
    mffs       31
    mffsce     0
    mffsce     31
    mffscrn    1,2
    mffscrn    31,0
    mffscrni   1,0
    mffscrni   31,3
    mffsl      0
    mffsl      31
    mtfsf      1,2,0,1
    mtfsf      255,31,1,0
    fctid      1,2
    fctid.     1,2
    fctid      31,0
    fctid.     31,0
    fctidz     1,2
    fctidz.    1,2
    fctidz     31,0
    fctidz.    31,0
    fmrgow     1,2,3
    fmrgow     31,0,17
    fcfid      1,2
    fcfid.     1,2
    fcfid      31,0
    fcfid.     31,0
    fctidu     1,2
    fctidu.    1,2
    fctidu     31,0
    fctidu.    31,0
    fctiduz    1,2
    fctiduz.   1,2
    fctiduz    31,0
    fctiduz.   31,0
    fmrgew     1,2,3
    fmrgew     31,0,17
    fcfidu     1,2
    fcfidu.    1,2
    fcfidu     31,0
    fcfidu.    31,0
    fcfids     1,2
    fcfids.    1,2
    fcfids     31,0
    fcfids.    31,0
    fcfidus    1,2
    fcfidus.   1,2
    fcfidus    31,0
    fcfidus.   31,0
    lfsx       1,3,31
    lfsx       31,0,4
    lfsux      1,3,31
    lfsux      31,1,4
    lfdx       1,3,31
    lfdx       31,0,4
    lfdux      1,3,31
    lfdux      31,1,4
    stfsx      1,3,31
    stfsx      31,0,4
    stfsux     1,3,31
    stfsux     31,1,4
    stfdx      1,3,31
    stfdx      31,0,4
    stfdux     1,3,31
    stfdux     31,1,4
    lfiwax     1,3,31
    lfiwax     31,0,4
    lfiwzx     1,3,31
    lfiwzx     31,0,4
    stfiwx     1,3,31
    stfiwx     31,0,4
    lvsl       1,3,31
    lvsl       31,0,4
    lvebx      1,3,31
    lvebx      31,0,4
    lvsr       1,3,31
    lvsr       31,0,4
    lvehx      1,3,31
    lvehx      31,0,4
    lvewx      1,3,31
    lvewx      31,0,4
    lvx        1,3,31
    lvx        31,0,4
    stvebx     1,3,31
    stvebx     31,0,4
    stvehx     1,3,31
    stvehx     31,0,4
    stvewx     1,3,31
    stvewx     31,0,4
    stvx       1,3,31
    stvx       31,0,4
    lvxl       1,3,31
    lvxl       31,0,4
    stvxl      1,3,31
    stvxl      31,0,4
    lxsiwzx    1,3,31
    lxsiwzx    63,0,4
    lxsiwax    1,3,31
    lxsiwax    63,0,4
    stxsiwx    1,3,31
    stxsiwx    63,0,4
    lxvx       1,3,31
    lxvx       63,0,4
    lxvl       1,3,31
    lxvl       63,1,4
    lxvll      1,3,31
    lxvll      63,1,4
    lxvdsx     1,3,31
    lxvdsx     63,0,4
    lxvwsx     1,3,31
    lxvwsx     63,0,4
    stxvx      1,3,31
    stxvx      63,0,4
    stxvl      1,3,31
    stxvl      63,1,4
    stxvll     1,3,31
    stxvll     63,1,4
    lxsspx     1,3,31
    lxsspx     63,0,4
    lxsdx      1,3,31
    lxsdx      63,0,4
    stxsspx    1,3,31
    stxsspx    63,0,4
    stxsdx     1,3,31
    stxsdx     63,0,4
    lxvw4x     1,3,31
    lxvw4x     63,0,4
    lxsibzx    1,3,31
    lxsibzx    63,0,4
    lxvh8x     1,3,31
    lxvh8x     63,0,4
    lxsihzx    1,3,31
    lxsihzx    63,0,4
    lxvd2x     1,3,31
    lxvd2x     63,0,4
    lxvb16x    1,3,31
    lxvb16x    63,0,4
    stxvw4x    1,3,31
    stxvw4x    63,0,4
    stxsibx    1,3,31
    stxsibx    63,0,4
    stxvh8x    1,3,31
    stxvh8x    63,0,4
    stxsihx    1,3,31
    stxsihx    63,0,4
    stxvd2x    1,3,31
    stxvd2x    63,0,4
    stxvb16x   1,3,31
    stxvb16x   63,0,4
    mfvsrd     1,2
    mfvsrd     31,63
    mfvsrwz    1,2
    mfvsrwz    31,63
    mtvsrd     1,31
    mtvsrd     63,0
    mtvsrwa    1,31
    mtvsrwa    63,0
    mtvsrwz    1,31
    mtvsrwz    63,0
    mfvsrld    1,2
    mfvsrld    31,63
    mtvsrws    1,31
    mtvsrws    63,0
    mtvsrdd    1,3,31
    mtvsrdd    63,0,4
    vaddubm    1,2,3
    vaddubm    31,0,17
    vadduhm    1,2,3
    vadduhm    31,0,17
    vadduwm    1,2,3
    vadduwm    31,0,17
    vaddudm    1,2,3
    vaddudm    31,0,17
    vadduqm    1,2,3
    vadduqm    31,0,17
    vaddcuw    1,2,3
    vaddcuw    31,0,17
    vaddubs    1,2,3
    vaddubs    31,0,17
    vadduhs    1,2,3
    vadduhs    31,0,17
    vadduws    1,2,3
    vadduws    31,0,17
    vsububm    1,2,3
    vsububm    31,0,17
    vsubuhm    1,2,3
    vsubuhm    31,0,17
    vsubuwm    1,2,3
    vsubuwm    31,0,17
    vsubudm    1,2,3
    vsubudm    31,0,17
    vsubuqm    1,2,3
    vsubuqm    31,0,17
    vsububs    1,2,3
    vsububs    31,0,17
    vsubuhs    1,2,3
    vsubuhs    31,0,17
    vsubuws    1,2,3
    vsubuws    31,0,17
    vmaxub     1,2,3
    vmaxub     31,0,17
    vmaxuh     1,2,3
    vmaxuh     31,0,17
    vmaxuw     1,2,3
    vmaxuw     31,0,17
    vmaxud     1,2,3
    vmaxud     31,0,17
    vmaxsb     1,2,3
    vmaxsb     31,0,17
    vmaxsh     1,2,3
    vmaxsh     31,0,17
    vmaxsw     1,2,3
    vmaxsw     31,0,17
    vmaxsd     1,2,3
    vmaxsd     31,0,17
    vminub     1,2,3
    vminub     31,0,17
    vminuh     1,2,3
    vminuh     31,0,17
    vminuw     1,2,3
    vminuw     31,0,17
    vminud     1,2,3
    vminud     31,0,17
    vminsb     1,2,3
    vminsb     31,0,17
    vminsh     1,2,3
    vminsh     31,0,17
    vminsw     1,2,3
    vminsw     31,0,17
    vminsd     1,2,3
    vminsd     31,0,17
    vrlb       1,2,3
    vrlb       31,0,17
    vrlh       1,2,3
    vrlh       31,0,17
    vrlw       1,2,3
    vrlw       31,0,17
    vrld       1,2,3
    vrld       31,0,17
    vslb       1,2,3
    vslb       31,0,17
    vslh       1,2,3
    vslh       31,0,17
    vslw       1,2,3
    vslw       31,0,17
    vsl        1,2,3
    vsl        31,0,17
    vsrb       1,2,3
    vsrb       31,0,17
    vsrh       1,2,3
    vsrh       31,0,17
    vsrw       1,2,3
    vsrw       31,0,17
    vsr        1,2,3
    vsr        31,0,17
    vsrab      1,2,3
    vsrab      31,0,17
    vsrah      1,2,3
    vsrah      31,0,17
    vsraw      1,2,3
    vsraw      31,0,17
    vsrad      1,2,3
    vsrad      31,0,17
    vsld       1,2,3
    vsld       31,0,17
    vsrd       1,2,3
    vsrd       31,0,17
    vslo       1,2,3
    vslo       31,0,17
    vsro       1,2,3
    vsro       31,0,17
    vand       1,2,3
    vand       31,0,17
    vandc      1,2,3
    vandc      31,0,17
    vor        1,2,3
    vor        31,0,17
    vxor       1,2,3
    vxor       31,0,17
    vnor       1,2,3
    vnor       31,0,17
    vorc       1,2,3
    vorc       31,0,17
    vnand      1,2,3
    vnand      31,0,17
    veqv       1,2,3
    veqv       31,0,17
    vmrghb     1,2,3
    vmrghb     31,0,17
    vmrghh     1,2,3
    vmrghh     31,0,17
    vmrghw     1,2,3
    vmrghw     31,0,17
    vmrglb     1,2,3
    vmrglb     31,0,17
    vmrglh     1,2,3
    vmrglh     31,0,17
    vmrglw     1,2,3
    vmrglw     31,0,17
    vmrgew     1,2,3
    vmrgew     31,0,17
    vmrgow     1,2,3
    vmrgow     31,0,17
    vspltb     1,2,0
    vspltb     31,0,15
    vsplth     1,2,0
    vsplth     31,0,7
    vspltw     1,2,0
    vspltw     31,0,3
    vspltisb   1,15
    vspltisb   31,-16
    vspltish   1,15
    vspltish   31,-16
    vspltisw   1,15
    vspltisw   31,-16
    vpkuhum    1,2,3
    vpkuhum    31,0,17
    vpkuwum    1,2,3
    vpkuwum    31,0,17
    vpkudum    1,2,3
    vpkudum    31,0,17
    vgbbd      1,2
    vgbbd      31,0
    vbpermq    1,2,3
    vbpermq    31,0,17
    vpopcntb   1,2
    vpopcntb   31,0
    vpopcnth   1,2
    vpopcnth   31,0
    vpopcntw   1,2
    vpopcntw   31,0
    vpopcntd   1,2
    vpopcntd   31,0
    vclzb      1,2
    vclzb      31,0
    vclzh      1,2
    vclzh      31,0
    vclzw      1,2
    vclzw      31,0
    vclzd      1,2
    vclzd      31,0
    mfvscr     0
    mfvscr     31
    mtvscr     0
    mtvscr     31
    vsumsws    1,2,3
    vsumsws    31,0,17
    vextublx   1,2,3
    vextublx   31,0,17
    vextubrx   1,2,3
    vextubrx   31,0,17
    vextuhlx   1,2,3
    vextuhlx   31,0,17
    vextuhrx   1,2,3
    vextuhrx   31,0,17
    vextuwlx   1,2,3
    vextuwlx   31,0,17
    vextuwrx   1,2,3
    vextuwrx   31,0,17
    vclzlsbb   1,2
    vclzlsbb   31,0
    vctzlsbb   1,2
    vctzlsbb   31,0
    vcmpequb   1,2,3
    vcmpequb.  1,2,3
    vcmpequb   31,0,17
    vcmpequb.  31,0,17
    vcmpequh   1,2,3
    vcmpequh.  1,2,3
    vcmpequh   31,0,17
    vcmpequh.  31,0,17
    vcmpequw   1,2,3
    vcmpequw.  1,2,3
    vcmpequw   31,0,17
    vcmpequw.  31,0,17
    vcmpequd   1,2,3
    vcmpequd.  1,2,3
    vcmpequd   31,0,17
    vcmpequd.  31,0,17
    vcmpgtub   1,2,3
    vcmpgtub.  1,2,3
    vcmpgtub   31,0,17
    vcmpgtub.  31,0,17
    vcmpgtuh   1,2,3
    vcmpgtuh.  1,2,3
    vcmpgtuh   31,0,17
    vcmpgtuh.  31,0,17
    vcmpgtuw   1,2,3
    vcmpgtuw.  1,2,3
    vcmpgtuw   31,0,17
    vcmpgtuw.  31,0,17
    vcmpgtud   1,2,3
    vcmpgtud.  1,2,3
    vcmpgtud   31,0,17
    vcmpgtud.  31,0,17
    vcmpgtsb   1,2,3
    vcmpgtsb.  1,2,3
    vcmpgtsb   31,0,17
    vcmpgtsb.  31,0,17
    vcmpgtsh   1,2,3
    vcmpgtsh.  1,2,3
    vcmpgtsh   31,0,17
    vcmpgtsh.  31,0,17
    vcmpgtsw   1,2,3
    vcmpgtsw.  1,2,3
    vcmpgtsw   31,0,17
    vcmpgtsw.  31,0,17
    vcmpgtsd   1,2,3
    vcmpgtsd.  1,2,3
    vcmpgtsd   31,0,17
    vcmpgtsd.  31,0,17
    vcmpneb    1,2,3
    vcmpneb.   1,2,3
    vcmpneb    31,0,17
    vcmpneb.   31,0,17
    vcmpneh    1,2,3
    vcmpneh.   1,2,3
    vcmpneh    31,0,17
    vcmpneh.   31,0,17
    vcmpnew    1,2,3
    vcmpnew.   1,2,3
    vcmpnew    31,0,17
    vcmpnew.   31,0,17
    vcmpnezb   1,2,3
    vcmpnezb.  1,2,3
    vcmpnezb   31,0,17
    vcmpnezb.  31,0,17
    vcmpnezh   1,2,3
    vcmpnezh.  1,2,3
    vcmpnezh   31,0,17
    vcmpnezh.  31,0,17
    vcmpnezw   1,2,3
    vcmpnezw.  1,2,3
    vcmpnezw   31,0,17
    vcmpnezw.  31,0,17
    vsel       1,2,3,4
    vsel       31,0,17,9
    vperm      1,2,3,4
    vperm      31,0,17,9
    vsldoi     1,2,3,0
    vsldoi     31,0,17,15
    vpermr     1,2,3,4
    vpermr     31,0,17,9
    xxland     1,34,3
    xxland     63,0,33
    xxlandc    1,34,3
    xxlandc    63,0,33
    xxlor      1,34,3
    xxlor      63,0,33
    xxlxor     1,34,3
    xxlxor     63,0,33
    xxlnor     1,34,3
    xxlnor     63,0,33
    xxlorc     1,34,3
    xxlorc     63,0,33
    xxlnand    1,34,3
    xxlnand    63,0,33
    xxleqv     1,34,3
    xxleqv     63,0,33
    xxmrghw    1,34,3
    xxmrghw    63,0,33
    xxmrglw    1,34,3
    xxmrglw    63,0,33
    xxpermdi   1,34,3,1
    xxpermdi   63,0,33,3
    xxsldwi    1,34,3,1
    xxsldwi    63,0,33,3
    xxperm     1,34,3
    xxperm     63,0,33
    xxpermr    1,34,3
    xxpermr    63,0,33
    xsaddsp    1,34,3
    xsaddsp    63,0,33
    xssubsp    1,34,3
    xssubsp    63,0,33
    xsmulsp    1,34,3
    xsmulsp    63,0,33
    xsdivsp    1,34,3
    xsdivsp    63,0,33
    xsadddp    1,34,3
    xsadddp    63,0,33
    xssubdp    1,34,3
    xssubdp    63,0,33
    xsmuldp    1,34,3
    xsmuldp    63,0,33
    xsdivdp    1,34,3
    xsdivdp    63,0,33
    xsmaddadp  1,34,3
    xsmaddadp  63,0,33
    xsmaddmdp  1,34,3
    xsmaddmdp  63,0,33
    xsmsubadp  1,34,3
    xsmsubadp  63,0,33
    xsmsubmdp  1,34,3
    xsmsubmdp  63,0,33
    xsnmaddadp 1,34,3
    xsnmaddadp 63,0,33
    xsnmsubadp 1,34,3
    xsnmsubadp 63,0,33
    xscmpudp   0,1,34
    xscmpudp   7,63,0
    xscmpodp   0,1,34
    xscmpodp   7,63,0
    xsmaxdp    1,34,3
    xsmaxdp    63,0,33
    xsmindp    1,34,3
    xsmindp    63,0,33
    xscpsgndp  1,34,3
    xscpsgndp  63,0,33
    xscmpeqdp  1,34,3
    xscmpeqdp  63,0,33
    xscmpgtdp  1,34,3
    xscmpgtdp  63,0,33
    xscmpgedp  1,34,3
    xscmpgedp  63,0,33
    xvadddp    1,34,3
    xvadddp    63,0,33
    xvsubdp    1,34,3
    xvsubdp    63,0,33
    xvmuldp    1,34,3
    xvmuldp    63,0,33
    xvdivdp    1,34,3
    xvdivdp    63,0,33
    xvcpsgndp  1,34,3
    xvcpsgndp  63,0,33
    xscvdpsxds 1,34
    xscvdpsxds 63,0
    xscvdpsxws 1,34
    xscvdpsxws 63,0
    xscvdpuxds 1,34
    xscvdpuxds 63,0
    xscvdpuxws 1,34
    xscvdpuxws 63,0
    xscvsxddp  1,34
    xscvsxddp  63,0
    xscvuxddp  1,34
    xscvuxddp  63,0
    xscvsxdsp  1,34
    xscvsxdsp  63,0
    xscvuxdsp  1,34
    xscvuxdsp  63,0
    xscvdpsp   1,34
    xscvdpsp   63,0
    xscvspdp   1,34
    xscvspdp   63,0
    xscvdpspn  1,34
    xscvdpspn  63,0
    xscvspdpn  1,34
    xscvspdpn  63,0
    xsabsdp    1,34
    xsabsdp    63,0
    xsnabsdp   1,34
    xsnabsdp   63,0
    xsnegdp    1,34
    xsnegdp    63,0
    xssqrtdp   1,34
    xssqrtdp   63,0
    xsrdpi     1,34
    xsrdpi     63,0
    xsrdpiz    1,34
    xsrdpiz    63,0
    xsrdpip    1,34
    xsrdpip    63,0
    xsrdpim    1,34
    xsrdpim    63,0
    xsrsp      1,34
    xsrsp      63,0
    xxspltw    1,34,0
    xxspltw    63,0,3
    xxbrh      1,34
    xxbrh      63,0
    xxbrw      1,34
    xxbrw      63,0
    xxbrd      1,34
    xxbrd      63,0
    xxbrq      1,34
    xxbrq      63,0
    xxspltib   1,0
    xxspltib   63,255
    xxsel      1,34,3,4
    xxsel      63,0,33,40
    lxsd       1,32764(3)
    lxsd       31,-8(0)
    lxssp      1,32764(3)
    lxssp      31,-8(0)
    stxsd      1,32764(3)
    stxsd      31,-8(0)
    stxssp     1,32764(3)
    stxssp     31,-8(0)
    lxv        1,32752(3)
    lxv        63,-16(0)
    stxv       1,32752(3)
    stxv       63,-16(0)
# ---- last, so that every other word (and branch displacement) is the same in both byte orders
.ifdef BIG_ENDIAN
    # lmw/stmw do not exist in little-endian mode (gas rejects them).
    lmw     25, -8(1)
    lmw     28, 0(0)
    stmw    30, 32767(31)
    stmw    3, -32768(4)
    # Nor do the string instructions (gas: "invalid when little-endian").
    lswi    3, 10, 8
    lswi    31, 10, 4
    lswx    5, 6, 7
    lswx    28, 0, 1
    stswi   3, 4, 0
    stswi   30, 31, 31
    stswx   5, 0, 7
    stswx   0, 31, 1
.endif
