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
    Lhbrx, Lwbrx, Ldbrx, Sthbrx, Stwbrx, Stdbrx, Lmw, Stmw,
    Lwarx, Ldarx, Stwcx, Stdcx,
    // Floating point (only what is needed to move data and to raise FP unavailable)
    Lfs, Lfsu, Lfd, Lfdu, Stfs, Stfsu, Stfd, Stfdu, Fmr,
    // Branch and CR
    B, Bc, Bclr, Bcctr,
    Crand, Cror, Crxor, Crnand, Crnor, Creqv, Crandc, Crorc, Mcrf,
    Isel, Mfcr, Mtcrf,
    // System
    Mfspr, Mtspr, Mftb, Mfmsr, Mtmsr, Mtmsrd, Rfid, Hrfid, Sc,
    Tw, Td, Twi, Tdi,
    Sync, Isync, Eieio, CacheHint, Dcbz,
    Icbi,
}

/// <summary>
/// The decode table: one row per encoding (primary opcode, extended opcode) → <see cref="Op"/>, as
/// Dolphin's PPCTables and QEMU's GEN_HANDLER lists. Adding an instruction touches one row here and
/// one handler.
/// </summary>
public static class OpcodeTable
{
    /// <summary>(op, mnemonic as objdump -Mraw prints it, primary opcode, extended opcode or -1).</summary>
    public static readonly (Op Op, string Mnemonic, int Primary, int Xo)[] Rows =
    [
        (Op.Tdi, "tdi", 2, -1), (Op.Twi, "twi", 3, -1), (Op.Mulli, "mulli", 7, -1), (Op.Subfic, "subfic", 8, -1),
        (Op.Cmpli, "cmpli", 10, -1), (Op.Cmpi, "cmpi", 11, -1), (Op.Addic, "addic", 12, -1), (Op.AddicRc, "addic.", 13, -1),
        (Op.Addi, "addi", 14, -1), (Op.Addis, "addis", 15, -1), (Op.Bc, "bc", 16, -1), (Op.Sc, "sc", 17, -1),
        (Op.B, "b", 18, -1), (Op.Rlwimi, "rlwimi", 20, -1), (Op.Rlwinm, "rlwinm", 21, -1), (Op.Rlwnm, "rlwnm", 23, -1),
        (Op.Ori, "ori", 24, -1), (Op.Oris, "oris", 25, -1), (Op.Xori, "xori", 26, -1), (Op.Xoris, "xoris", 27, -1),
        (Op.Andi, "andi.", 28, -1), (Op.Andis, "andis.", 29, -1),
        (Op.Lwz, "lwz", 32, -1), (Op.Lwzu, "lwzu", 33, -1), (Op.Lbz, "lbz", 34, -1), (Op.Lbzu, "lbzu", 35, -1),
        (Op.Stw, "stw", 36, -1), (Op.Stwu, "stwu", 37, -1), (Op.Stb, "stb", 38, -1), (Op.Stbu, "stbu", 39, -1),
        (Op.Lhz, "lhz", 40, -1), (Op.Lhzu, "lhzu", 41, -1), (Op.Lha, "lha", 42, -1), (Op.Lhau, "lhau", 43, -1),
        (Op.Sth, "sth", 44, -1), (Op.Sthu, "sthu", 45, -1), (Op.Lmw, "lmw", 46, -1), (Op.Stmw, "stmw", 47, -1),
        (Op.Lfs, "lfs", 48, -1), (Op.Lfsu, "lfsu", 49, -1), (Op.Lfd, "lfd", 50, -1), (Op.Lfdu, "lfdu", 51, -1),
        (Op.Stfs, "stfs", 52, -1), (Op.Stfsu, "stfsu", 53, -1), (Op.Stfd, "stfd", 54, -1), (Op.Stfdu, "stfdu", 55, -1),
        // DS forms: the low two bits select.
        (Op.Ld, "ld", 58, 0), (Op.Ldu, "ldu", 58, 1), (Op.Lwa, "lwa", 58, 2),
        (Op.Std, "std", 62, 0), (Op.Stdu, "stdu", 62, 1),
        // MD/MDS forms: bits 27:30.
        (Op.Rldicl, "rldicl", 30, 0), (Op.Rldicr, "rldicr", 30, 1), (Op.Rldic, "rldic", 30, 2), (Op.Rldimi, "rldimi", 30, 3),
        (Op.Rldcl, "rldcl", 30, 8), (Op.Rldcr, "rldcr", 30, 9),
        // XL forms.
        (Op.Mcrf, "mcrf", 19, 0), (Op.Bclr, "bclr", 19, 16), (Op.Crnor, "crnor", 19, 33), (Op.Rfid, "rfid", 19, 18),
        (Op.Crandc, "crandc", 19, 129), (Op.Isync, "isync", 19, 150), (Op.Crxor, "crxor", 19, 193),
        (Op.Crnand, "crnand", 19, 225), (Op.Crand, "crand", 19, 257), (Op.Hrfid, "hrfid", 19, 274),
        (Op.Creqv, "creqv", 19, 289), (Op.Crorc, "crorc", 19, 417), (Op.Cror, "cror", 19, 449), (Op.Bcctr, "bcctr", 19, 528),
        // X/XO/XFX forms under primary 31.
        (Op.Cmp, "cmp", 31, 0), (Op.Tw, "tw", 31, 4), (Op.Subfc, "subfc", 31, 8), (Op.Mulhdu, "mulhdu", 31, 9),
        (Op.Addc, "addc", 31, 10), (Op.Mulhwu, "mulhwu", 31, 11), (Op.Mfcr, "mfcr", 31, 19), (Op.Lwarx, "lwarx", 31, 20),
        (Op.Ldx, "ldx", 31, 21), (Op.Lwzx, "lwzx", 31, 23), (Op.Slw, "slw", 31, 24), (Op.Cntlzw, "cntlzw", 31, 26),
        (Op.Sld, "sld", 31, 27), (Op.And, "and", 31, 28), (Op.Cmpl, "cmpl", 31, 32), (Op.Subf, "subf", 31, 40),
        (Op.CacheHint, "dcbst", 31, 54), (Op.Ldux, "ldux", 31, 53), (Op.Lwzux, "lwzux", 31, 55), (Op.Cntlzd, "cntlzd", 31, 58),
        (Op.Andc, "andc", 31, 60), (Op.Td, "td", 31, 68), (Op.Mulhd, "mulhd", 31, 73), (Op.Mulhw, "mulhw", 31, 75),
        (Op.Mfmsr, "mfmsr", 31, 83), (Op.Ldarx, "ldarx", 31, 84), (Op.CacheHint, "dcbf", 31, 86), (Op.Lbzx, "lbzx", 31, 87),
        (Op.Neg, "neg", 31, 104), (Op.Lbzux, "lbzux", 31, 119), (Op.Popcntb, "popcntb", 31, 122), (Op.Nor, "nor", 31, 124),
        (Op.Subfe, "subfe", 31, 136), (Op.Adde, "adde", 31, 138), (Op.Mtcrf, "mtcrf", 31, 144), (Op.Mtmsr, "mtmsr", 31, 146),
        (Op.Stdx, "stdx", 31, 149), (Op.Stwcx, "stwcx.", 31, 150), (Op.Stwx, "stwx", 31, 151), (Op.Mtmsrd, "mtmsrd", 31, 178),
        (Op.Stdux, "stdux", 31, 181), (Op.Stwux, "stwux", 31, 183), (Op.Subfze, "subfze", 31, 200), (Op.Addze, "addze", 31, 202),
        (Op.Stdcx, "stdcx.", 31, 214), (Op.Stbx, "stbx", 31, 215), (Op.Subfme, "subfme", 31, 232), (Op.Mulld, "mulld", 31, 233),
        (Op.Addme, "addme", 31, 234), (Op.Mullw, "mullw", 31, 235), (Op.CacheHint, "dcbtst", 31, 246), (Op.Stbux, "stbux", 31, 247),
        (Op.Add, "add", 31, 266), (Op.CacheHint, "dcbt", 31, 278), (Op.Lhzx, "lhzx", 31, 279), (Op.Eqv, "eqv", 31, 284),
        (Op.Lhzux, "lhzux", 31, 311), (Op.Xor, "xor", 31, 316), (Op.Mfspr, "mfspr", 31, 339), (Op.Lwax, "lwax", 31, 341),
        (Op.Lhax, "lhax", 31, 343), (Op.Mftb, "mftb", 31, 371), (Op.Lwaux, "lwaux", 31, 373), (Op.Lhaux, "lhaux", 31, 375),
        (Op.Popcntw, "popcntw", 31, 378), (Op.Sthx, "sthx", 31, 407), (Op.Orc, "orc", 31, 412), (Op.Sthux, "sthux", 31, 439),
        (Op.Or, "or", 31, 444), (Op.Divdu, "divdu", 31, 457), (Op.Divwu, "divwu", 31, 459), (Op.Mtspr, "mtspr", 31, 467),
        (Op.Nand, "nand", 31, 476), (Op.Divd, "divd", 31, 489), (Op.Divw, "divw", 31, 491), (Op.Popcntd, "popcntd", 31, 506),
        (Op.Cmpb, "cmpb", 31, 508), (Op.Ldbrx, "ldbrx", 31, 532), (Op.Lwbrx, "lwbrx", 31, 534), (Op.Srw, "srw", 31, 536),
        (Op.Srd, "srd", 31, 539), (Op.Sync, "sync", 31, 598), (Op.Stdbrx, "stdbrx", 31, 660), (Op.Stwbrx, "stwbrx", 31, 662),
        (Op.Lhbrx, "lhbrx", 31, 790), (Op.Sraw, "sraw", 31, 792), (Op.Srad, "srad", 31, 794), (Op.Srawi, "srawi", 31, 824),
        (Op.Eieio, "eieio", 31, 854), (Op.Sthbrx, "sthbrx", 31, 918), (Op.Extsh, "extsh", 31, 922), (Op.Extsb, "extsb", 31, 954),
        (Op.Icbi, "icbi", 31, 982), (Op.Extsw, "extsw", 31, 986), (Op.Dcbz, "dcbz", 31, 1014),
        // XS form sradi: 9-bit XO 413, bit 30 is sh[5].
        (Op.Sradi, "sradi", 31, 413 << 1), (Op.Sradi, "sradi", 31, (413 << 1) | 1),
        // A form isel: 5-bit XO 15 in bits 26:30 (the BC field fills the rest).
        (Op.Isel, "isel", 31, -15),
        (Op.Fmr, "fmr", 63, 72),
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

    static OpcodeTable()
    {
        foreach (var (op, name, primary, xo) in Rows)
        {
            Names.TryAdd(op, name);
            switch (primary)
            {
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
    }

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
        // sc must have bit 30 set; other reserved encodings are illegal.
        if (op == Op.Sc && (insn & 2) == 0) return Op.Illegal;
        return op;
    }
}
