namespace ActorStep.Isa;

/// <summary>Every instruction the machine executes. <see cref="Illegal"/> raises a program interrupt.</summary>
public enum Op : ushort
{
    Illegal = 0,
    // Fixed-point arithmetic
    Addi, Addis, Addic, AddicRc, Subfic, Mulli,
    Add, Addc, Adde, Addme, Addze, Subf, Subfc, Subfe, Subfme, Subfze, Neg,
    Mullw, Mulld, Mulhw, Mulhwu, Mulhd, Mulhdu, Divw, Divwu, Divd, Divdu,
    // Compare
    Cmpi, Cmpli, Cmp, Cmpl,
    // Logical
    Andi, Andis, Ori, Oris, Xori, Xoris,
    And, Andc, Or, Orc, Xor, Nand, Nor, Eqv, Extsb, Extsh, Extsw, Cntlzw, Cntlzd, Popcntb, Popcntw, Popcntd, Cmpb,
    // Rotate and shift
    Rlwinm, Rlwnm, Rlwimi, Rldicl, Rldicr, Rldic, Rldimi, Rldcl, Rldcr,
    Slw, Srw, Sraw, Srawi, Sld, Srd, Srad, Sradi,
    // Loads and stores
    Lbz, Lbzu, Lbzx, Lbzux, Lhz, Lhzu, Lhzx, Lhzux, Lha, Lhau, Lhax, Lhaux,
    Lwz, Lwzu, Lwzx, Lwzux, Lwa, Lwax, Lwaux, Ld, Ldu, Ldx, Ldux,
    Stb, Stbu, Stbx, Stbux, Sth, Sthu, Sthx, Sthux, Stw, Stwu, Stwx, Stwux, Std, Stdu, Stdx, Stdux,
    Lhbrx, Lwbrx, Ldbrx, Sthbrx, Stwbrx, Stdbrx, Lmw, Stmw, Lswi, Lswx, Stswi, Stswx,
    Lwarx, Ldarx, Stwcx, Stdcx,
    // Floating point (only what is needed to move data and to raise FP unavailable)
    Lfs, Lfsu, Lfd, Lfdu, Stfs, Stfsu, Stfd, Stfdu, Fmr,
    // Branch and CR
    B, Bc, Bclr, Bcctr,
    Crand, Cror, Crxor, Crnand, Crnor, Creqv, Crandc, Crorc, Mcrf,
    Isel, Mfcr, Mtcrf,
    // System
    Mfspr, Mtspr, Mftb, Mfmsr, Mtmsr, Mtmsrd, Rfid, Hrfid, Sc, Scv, Rfscv,
    Tw, Td, Twi, Tdi,
    Sync, Isync, Eieio, CacheHint, Dcbz,
    Icbi,
    // Storage control (radix)
    Tlbie, Tlbiel, Tlbsync, Slbia,
    // Floating point, VMX and VSX beyond the first FP rows: decoded by pattern (OpcodePatterns), executed in
    // SimulatedVcpu.Float.cs / SimulatedVcpu.Vector.cs.
    Fdiv, Fsub, Fadd, Fsqrt, Fsel, Fre, Fmul, Frsqrte, Fmsub, Fmadd, Fnmsub, Fnmadd,
    Fdivs, Fsubs, Fadds, Fsqrts, Fres, Fmuls, Frsqrtes, Fmsubs, Fmadds, Fnmsubs, Fnmadds, Fcmpu,
    Fcpsgn, Frsp, Fctiw, Fctiwz, Fcmpo, Mtfsb1, Fneg, Mcrfs, Mtfsb0, Mtfsfi, Fnabs, Fctiwu,
    Fctiwuz, Fabs, Frin, Friz, Frip, Frim, Mffs, Mffsce, Mffscrn, Mffscrni, Mffsl, Mtfsf,
    Fctid, Fctidz, Fmrgow, Fcfid, Fctidu, Fctiduz, Fmrgew, Fcfidu, Fcfids, Fcfidus, Lfsx, Lfsux,
    Lfdx, Lfdux, Stfsx, Stfsux, Stfdx, Stfdux, Lfiwax, Lfiwzx, Stfiwx, Lvsl, Lvebx, Lvsr,
    Lvehx, Lvewx, Lvx, Stvebx, Stvehx, Stvewx, Stvx, Lvxl, Stvxl, Lxsiwzx, Lxsiwax, Stxsiwx,
    Lxvx, Lxvl, Lxvll, Lxvdsx, Lxvwsx, Stxvx, Stxvl, Stxvll, Lxsspx, Lxsdx, Stxsspx, Stxsdx,
    Lxvw4x, Lxsibzx, Lxvh8x, Lxsihzx, Lxvd2x, Lxvb16x, Stxvw4x, Stxsibx, Stxvh8x, Stxsihx, Stxvd2x, Stxvb16x,
    Mfvsrd, Mfvsrwz, Mtvsrd, Mtvsrwa, Mtvsrwz, Mfvsrld, Mtvsrws, Mtvsrdd, Vaddubm, Vadduhm, Vadduwm, Vaddudm,
    Vadduqm, Vaddcuw, Vaddubs, Vadduhs, Vadduws, Vsububm, Vsubuhm, Vsubuwm, Vsubudm, Vsubuqm, Vsububs, Vsubuhs,
    Vsubuws, Vmaxub, Vmaxuh, Vmaxuw, Vmaxud, Vmaxsb, Vmaxsh, Vmaxsw, Vmaxsd, Vminub, Vminuh, Vminuw,
    Vminud, Vminsb, Vminsh, Vminsw, Vminsd, Vrlb, Vrlh, Vrlw, Vrld, Vslb, Vslh, Vslw,
    Vsl, Vsrb, Vsrh, Vsrw, Vsr, Vsrab, Vsrah, Vsraw, Vsrad, Vsld, Vsrd, Vslo,
    Vsro, Vand, Vandc, Vor, Vxor, Vnor, Vorc, Vnand, Veqv, Vmrghb, Vmrghh, Vmrghw,
    Vmrglb, Vmrglh, Vmrglw, Vmrgew, Vmrgow, Vspltb, Vsplth, Vspltw, Vspltisb, Vspltish, Vspltisw, Vpkuhum,
    Vpkuwum, Vpkudum, Vgbbd, Vbpermq, Vpopcntb, Vpopcnth, Vpopcntw, Vpopcntd, Vclzb, Vclzh, Vclzw, Vclzd,
    Mfvscr, Mtvscr, Vsumsws, Vextublx, Vextubrx, Vextuhlx, Vextuhrx, Vextuwlx, Vextuwrx, Vclzlsbb, Vctzlsbb, Vcmpequb,
    Vcmpequh, Vcmpequw, Vcmpequd, Vcmpgtub, Vcmpgtuh, Vcmpgtuw, Vcmpgtud, Vcmpgtsb, Vcmpgtsh, Vcmpgtsw, Vcmpgtsd, Vcmpneb,
    Vcmpneh, Vcmpnew, Vcmpnezb, Vcmpnezh, Vcmpnezw, Vsel, Vperm, Vsldoi, Vpermr, Xxland, Xxlandc, Xxlor,
    Xxlxor, Xxlnor, Xxlorc, Xxlnand, Xxleqv, Xxmrghw, Xxmrglw, Xxpermdi, Xxsldwi, Xxperm, Xxpermr, Xsaddsp,
    Xssubsp, Xsmulsp, Xsdivsp, Xsadddp, Xssubdp, Xsmuldp, Xsdivdp, Xsmaddadp, Xsmaddmdp, Xsmsubadp, Xsmsubmdp, Xsnmaddadp,
    Xsnmsubadp, Xscmpudp, Xscmpodp, Xsmaxdp, Xsmindp, Xscpsgndp, Xscmpeqdp, Xscmpgtdp, Xscmpgedp, Xvadddp, Xvsubdp, Xvmuldp,
    Xvdivdp, Xvcpsgndp, Xscvdpsxds, Xscvdpsxws, Xscvdpuxds, Xscvdpuxws, Xscvsxddp, Xscvuxddp, Xscvsxdsp, Xscvuxdsp, Xscvdpsp, Xscvspdp,
    Xscvdpspn, Xscvspdpn, Xsabsdp, Xsnabsdp, Xsnegdp, Xssqrtdp, Xsrdpi, Xsrdpiz, Xsrdpip, Xsrdpim, Xsrsp, Xxspltw,
    Xxbrh, Xxbrw, Xxbrd, Xxbrq, Xxspltib, Xxsel, Lxsd, Lxssp, Stxsd, Stxssp, Lxv, Stxv,
}

/// <summary>
/// The decode table: one row per encoding (primary opcode, extended opcode) → <see cref="Op"/>, as
/// Dolphin's PPCTables and QEMU's GEN_HANDLER lists, each row carrying the instruction's class for the step
/// engine. Adding an instruction touches its <see cref="Op"/>, one row here and one handler.
/// </summary>
public static class OpcodeTable
{
    private const InstructionEffects Plain = InstructionEffects.None, Sto = InstructionEffects.Storage, Prg = InstructionEffects.Program,
        Fp = InstructionEffects.FloatingPoint, Sys = InstructionEffects.SystemCall, Rfi = InstructionEffects.ReturnFromInterrupt,
        Msr = InstructionEffects.WritesMsr, Br = InstructionEffects.Branch, Res = InstructionEffects.Reservation;

    /// <summary>
    /// (op, mnemonic as objdump -Mraw prints it, primary opcode, extended opcode or -1, what the instruction can do besides
    /// completing — the class the step engine plans by). Every encoding of one op carries the same class.
    /// </summary>
    public static readonly (Op Op, string Mnemonic, int Primary, int Xo, InstructionEffects Effects)[] Rows =
    [
        (Op.Tdi, "tdi", 2, -1, Prg), (Op.Twi, "twi", 3, -1, Prg), (Op.Mulli, "mulli", 7, -1, Plain), (Op.Subfic, "subfic", 8, -1, Plain),
        (Op.Cmpli, "cmpli", 10, -1, Plain), (Op.Cmpi, "cmpi", 11, -1, Plain), (Op.Addic, "addic", 12, -1, Plain), (Op.AddicRc, "addic.", 13, -1, Plain),
        (Op.Addi, "addi", 14, -1, Plain), (Op.Addis, "addis", 15, -1, Plain), (Op.Bc, "bc", 16, -1, Br), (Op.Sc, "sc", 17, -1, Sys),
        // scv: primary 17 with bit 31 set instead of bit 30 (Decode tells them apart).
        (Op.Scv, "scv", 17, 1, Sys),
        (Op.B, "b", 18, -1, Br), (Op.Rlwimi, "rlwimi", 20, -1, Plain), (Op.Rlwinm, "rlwinm", 21, -1, Plain), (Op.Rlwnm, "rlwnm", 23, -1, Plain),
        (Op.Ori, "ori", 24, -1, Plain), (Op.Oris, "oris", 25, -1, Plain), (Op.Xori, "xori", 26, -1, Plain), (Op.Xoris, "xoris", 27, -1, Plain),
        (Op.Andi, "andi.", 28, -1, Plain), (Op.Andis, "andis.", 29, -1, Plain),
        (Op.Lwz, "lwz", 32, -1, Sto), (Op.Lwzu, "lwzu", 33, -1, Sto), (Op.Lbz, "lbz", 34, -1, Sto), (Op.Lbzu, "lbzu", 35, -1, Sto),
        (Op.Stw, "stw", 36, -1, Sto), (Op.Stwu, "stwu", 37, -1, Sto), (Op.Stb, "stb", 38, -1, Sto), (Op.Stbu, "stbu", 39, -1, Sto),
        (Op.Lhz, "lhz", 40, -1, Sto), (Op.Lhzu, "lhzu", 41, -1, Sto), (Op.Lha, "lha", 42, -1, Sto), (Op.Lhau, "lhau", 43, -1, Sto),
        (Op.Sth, "sth", 44, -1, Sto), (Op.Sthu, "sthu", 45, -1, Sto), (Op.Lmw, "lmw", 46, -1, Sto), (Op.Stmw, "stmw", 47, -1, Sto),
        (Op.Lfs, "lfs", 48, -1, Fp | Sto), (Op.Lfsu, "lfsu", 49, -1, Fp | Sto), (Op.Lfd, "lfd", 50, -1, Fp | Sto), (Op.Lfdu, "lfdu", 51, -1, Fp | Sto),
        (Op.Stfs, "stfs", 52, -1, Fp | Sto), (Op.Stfsu, "stfsu", 53, -1, Fp | Sto), (Op.Stfd, "stfd", 54, -1, Fp | Sto), (Op.Stfdu, "stfdu", 55, -1, Fp | Sto),
        // DS forms: the low two bits select.
        (Op.Ld, "ld", 58, 0, Sto), (Op.Ldu, "ldu", 58, 1, Sto), (Op.Lwa, "lwa", 58, 2, Sto),
        (Op.Std, "std", 62, 0, Sto), (Op.Stdu, "stdu", 62, 1, Sto),
        // MD/MDS forms: bits 27:30.
        (Op.Rldicl, "rldicl", 30, 0, Plain), (Op.Rldicr, "rldicr", 30, 1, Plain), (Op.Rldic, "rldic", 30, 2, Plain), (Op.Rldimi, "rldimi", 30, 3, Plain),
        (Op.Rldcl, "rldcl", 30, 8, Plain), (Op.Rldcr, "rldcr", 30, 9, Plain),
        // XL forms.
        (Op.Mcrf, "mcrf", 19, 0, Plain), (Op.Bclr, "bclr", 19, 16, Br), (Op.Crnor, "crnor", 19, 33, Plain), (Op.Rfid, "rfid", 19, 18, Rfi | Prg), (Op.Rfscv, "rfscv", 19, 82, Rfi | Prg),
        (Op.Crandc, "crandc", 19, 129, Plain), (Op.Isync, "isync", 19, 150, Plain), (Op.Crxor, "crxor", 19, 193, Plain),
        (Op.Crnand, "crnand", 19, 225, Plain), (Op.Crand, "crand", 19, 257, Plain), (Op.Hrfid, "hrfid", 19, 274, Rfi | Prg),
        (Op.Creqv, "creqv", 19, 289, Plain), (Op.Crorc, "crorc", 19, 417, Plain), (Op.Cror, "cror", 19, 449, Plain), (Op.Bcctr, "bcctr", 19, 528, Br | Prg),
        // X/XO/XFX forms under primary 31.
        (Op.Cmp, "cmp", 31, 0, Plain), (Op.Tw, "tw", 31, 4, Prg), (Op.Subfc, "subfc", 31, 8, Plain), (Op.Mulhdu, "mulhdu", 31, 9, Plain),
        (Op.Addc, "addc", 31, 10, Plain), (Op.Mulhwu, "mulhwu", 31, 11, Plain), (Op.Mfcr, "mfcr", 31, 19, Plain), (Op.Lwarx, "lwarx", 31, 20, Sto | Res),
        (Op.Ldx, "ldx", 31, 21, Sto), (Op.Lwzx, "lwzx", 31, 23, Sto), (Op.Slw, "slw", 31, 24, Plain), (Op.Cntlzw, "cntlzw", 31, 26, Plain),
        (Op.Sld, "sld", 31, 27, Plain), (Op.And, "and", 31, 28, Plain), (Op.Cmpl, "cmpl", 31, 32, Plain), (Op.Subf, "subf", 31, 40, Plain),
        (Op.CacheHint, "dcbst", 31, 54, Plain), (Op.Ldux, "ldux", 31, 53, Sto), (Op.Lwzux, "lwzux", 31, 55, Sto), (Op.Cntlzd, "cntlzd", 31, 58, Plain),
        (Op.Andc, "andc", 31, 60, Plain), (Op.Td, "td", 31, 68, Prg), (Op.Mulhd, "mulhd", 31, 73, Plain), (Op.Mulhw, "mulhw", 31, 75, Plain),
        (Op.Mfmsr, "mfmsr", 31, 83, Prg), (Op.Ldarx, "ldarx", 31, 84, Sto | Res), (Op.CacheHint, "dcbf", 31, 86, Plain), (Op.Lbzx, "lbzx", 31, 87, Sto),
        (Op.Neg, "neg", 31, 104, Plain), (Op.Lbzux, "lbzux", 31, 119, Sto), (Op.Popcntb, "popcntb", 31, 122, Plain), (Op.Nor, "nor", 31, 124, Plain),
        (Op.Subfe, "subfe", 31, 136, Plain), (Op.Adde, "adde", 31, 138, Plain), (Op.Mtcrf, "mtcrf", 31, 144, Plain), (Op.Mtmsr, "mtmsr", 31, 146, Msr | Prg),
        (Op.Stdx, "stdx", 31, 149, Sto), (Op.Stwcx, "stwcx.", 31, 150, Sto | Res), (Op.Stwx, "stwx", 31, 151, Sto), (Op.Mtmsrd, "mtmsrd", 31, 178, Msr | Prg),
        (Op.Stdux, "stdux", 31, 181, Sto), (Op.Stwux, "stwux", 31, 183, Sto), (Op.Subfze, "subfze", 31, 200, Plain), (Op.Addze, "addze", 31, 202, Plain),
        (Op.Stdcx, "stdcx.", 31, 214, Sto | Res), (Op.Stbx, "stbx", 31, 215, Sto), (Op.Subfme, "subfme", 31, 232, Plain), (Op.Mulld, "mulld", 31, 233, Plain),
        (Op.Addme, "addme", 31, 234, Plain), (Op.Mullw, "mullw", 31, 235, Plain), (Op.CacheHint, "dcbtst", 31, 246, Plain), (Op.Stbux, "stbux", 31, 247, Sto),
        (Op.Add, "add", 31, 266, Plain), (Op.CacheHint, "dcbt", 31, 278, Plain), (Op.Lhzx, "lhzx", 31, 279, Sto), (Op.Eqv, "eqv", 31, 284, Plain),
        (Op.Lhzux, "lhzux", 31, 311, Sto), (Op.Xor, "xor", 31, 316, Plain), (Op.Mfspr, "mfspr", 31, 339, Prg), (Op.Lwax, "lwax", 31, 341, Sto),
        (Op.Lhax, "lhax", 31, 343, Sto), (Op.Mftb, "mftb", 31, 371, Prg), (Op.Lwaux, "lwaux", 31, 373, Sto), (Op.Lhaux, "lhaux", 31, 375, Sto),
        (Op.Popcntw, "popcntw", 31, 378, Plain), (Op.Sthx, "sthx", 31, 407, Sto), (Op.Orc, "orc", 31, 412, Plain), (Op.Sthux, "sthux", 31, 439, Sto),
        (Op.Or, "or", 31, 444, Plain), (Op.Divdu, "divdu", 31, 457, Plain), (Op.Divwu, "divwu", 31, 459, Plain), (Op.Mtspr, "mtspr", 31, 467, Prg),
        (Op.Nand, "nand", 31, 476, Plain), (Op.Divd, "divd", 31, 489, Plain), (Op.Divw, "divw", 31, 491, Plain), (Op.Popcntd, "popcntd", 31, 506, Plain),
        (Op.Cmpb, "cmpb", 31, 508, Plain), (Op.Ldbrx, "ldbrx", 31, 532, Sto), (Op.Lwbrx, "lwbrx", 31, 534, Sto), (Op.Srw, "srw", 31, 536, Plain),
        (Op.Srd, "srd", 31, 539, Plain), (Op.Sync, "sync", 31, 598, Plain),
        (Op.Lswx, "lswx", 31, 533, Sto), (Op.Lswi, "lswi", 31, 597, Sto), (Op.Stswx, "stswx", 31, 661, Sto), (Op.Stswi, "stswi", 31, 725, Sto),
        (Op.Tlbie, "tlbie", 31, 306, Prg), (Op.Tlbiel, "tlbiel", 31, 274, Prg), (Op.Tlbsync, "tlbsync", 31, 566, Prg), (Op.Slbia, "slbia", 31, 498, Prg), (Op.Stdbrx, "stdbrx", 31, 660, Sto), (Op.Stwbrx, "stwbrx", 31, 662, Sto),
        (Op.Lhbrx, "lhbrx", 31, 790, Sto), (Op.Sraw, "sraw", 31, 792, Plain), (Op.Srad, "srad", 31, 794, Plain), (Op.Srawi, "srawi", 31, 824, Plain),
        (Op.Eieio, "eieio", 31, 854, Plain), (Op.Sthbrx, "sthbrx", 31, 918, Sto), (Op.Extsh, "extsh", 31, 922, Plain), (Op.Extsb, "extsb", 31, 954, Plain),
        (Op.Icbi, "icbi", 31, 982, Plain),
        // VMX data-stream hints (dst/dstt, dstst/dststt, dss/dssall): no-ops here, as on POWER9, which ignores them.
        (Op.CacheHint, "dst", 31, 342, Plain), (Op.CacheHint, "dstst", 31, 374, Plain), (Op.CacheHint, "dss", 31, 822, Plain), (Op.Extsw, "extsw", 31, 986, Plain), (Op.Dcbz, "dcbz", 31, 1014, Sto),
        // XS form sradi: 9-bit XO 413, bit 30 is sh[5].
        (Op.Sradi, "sradi", 31, 413 << 1, Plain), (Op.Sradi, "sradi", 31, (413 << 1) | 1, Plain),
        // A form isel: 5-bit XO 15 in bits 26:30 (the BC field fills the rest).
        (Op.Isel, "isel", 31, -15, Plain),
        (Op.Fmr, "fmr", 63, 72, Fp),
    ];

    /// <summary>XO-form instructions: the same row with OE=1 (XO + 512).</summary>
    private static readonly Op[] HasOverflowForm =
        [Op.Add, Op.Addc, Op.Adde, Op.Addme, Op.Addze, Op.Subf, Op.Subfc, Op.Subfe, Op.Subfme, Op.Subfze, Op.Neg,
         Op.Mullw, Op.Mulld, Op.Divw, Op.Divwu, Op.Divd, Op.Divdu];

    private static readonly Op[] Primary = new Op[64];
    private static readonly Op[] Ext19 = new Op[1024];
    private static readonly Op[] Ext31 = new Op[1024];
    private static readonly Op[] Ext63 = new Op[1024];
    private static readonly Op[] Ext30 = new Op[16];
    private static readonly Op[] Ext58 = new Op[4];
    private static readonly Op[] Ext62 = new Op[4];
    private static readonly Dictionary<Op, string> Names = new();
    private static readonly InstructionEffects[] EffectsByOp = new InstructionEffects[Enum.GetValues<Op>().Length];

    static OpcodeTable()
    {
        EffectsByOp[(int)Op.Illegal] = InstructionEffects.Program;
        foreach (var (op, name, primary, xo, effects) in Rows)
        {
            Names.TryAdd(op, name);
            EffectsByOp[(int)op] = effects;
            switch (primary)
            {
                case 17 when op == Op.Scv: break; // decoded from sc's row by bits 30:31
                case 19: Ext19[xo] = op; break;
                case 30 when xo < 4: Ext30[xo << 1] = Ext30[(xo << 1) | 1] = op; break; // MD: bit 30 is sh[5]
                case 30: Ext30[xo] = op; break; // MDS: bits 27:30
                case 58: Ext58[xo] = op; break;
                case 62: Ext62[xo] = op; break;
                case 63: Ext63[xo] = op; break;
                case 31 when xo < 0:
                    for (int i = 0; i < 1024; i++) if ((i & 31) == -xo) Ext31[i] = op;
                    break;
                case 31:
                    Ext31[xo] = op;
                    if (Array.IndexOf(HasOverflowForm, op) >= 0) Ext31[xo | 512] = op;
                    break;
                default: Primary[primary] = op; break;
            }
        }
        Names[Op.CacheHint] = "dcbt";
        foreach (var row in OpcodePatterns.Rows)
        {
            Names.TryAdd(row.Op, row.Mnemonic);
            EffectsByOp[(int)row.Op] = row.Effects;
        }
    }

    /// <summary>The class of <paramref name="op"/> from its row (sc as a system call: <see cref="InstructionClassifier"/> tells a hypercall).</summary>
    public static InstructionEffects Effects(Op op) => EffectsByOp[(int)op];

    public static string Mnemonic(Op op) => Names.TryGetValue(op, out var n) ? n : ".long";

    /// <summary>Decodes one instruction word (already in host order).</summary>
    public static Op Decode(uint insn)
    {
        int primary = (int)(insn >> 26);
        Op op = primary switch
        {
            19 => Ext19[(insn >> 1) & 0x3FF],
            30 => Ext30[(insn >> 1) & 0xF],
            31 => Ext31[(insn >> 1) & 0x3FF],
            58 => Ext58[insn & 3],
            62 => Ext62[insn & 3],
            63 => Ext63[(insn >> 1) & 0x3FF],
            _ => Primary[primary],
        };
        // sc has bit 30 set, scv bit 31 alone (Book I §3.3.1); other encodings of primary 17 are illegal.
        if (op == Op.Sc && (insn & 2) == 0) return (insn & 3) == 1 ? Op.Scv : Op.Illegal;
        if (op == Op.Illegal && OpcodePatterns.HasPatterns(primary)) return OpcodePatterns.Decode(insn);
        return op;
    }
}
