using System.Globalization;

namespace ActorStep.Isa;

// Operands of the FP, VMX and VSX pattern rows, as objdump -M raw,power9 prints them (f, v, vs, r, cr prefixes).
public static partial class Disassembler
{
    private static string FormatPattern(PatternRow row, uint i)
    {
        int t = (int)(i >> 21) & 31, a = (int)(i >> 16) & 31, b = (int)(i >> 11) & 31, c = (int)(i >> 6) & 31;
        int primary = (int)(i >> 26);
        string name = row.Mnemonic;
        // Record forms: bit 31 on FP arithmetic (59, 63) except compares and mcrfs; bit 21 on VMX compares.
        if (primary is 59 or 63 && (i & 1) != 0 && row.Operands is not (Operands.CrFraFrb or Operands.CrCr)) name += ".";
        if (primary == 4 && row.Mask == 0xFC0003FF && (i & 0x400) != 0) name += ".";
        int xt = t | (int)((i & 1) << 5), xa = a | (int)((i & 4) << 3), xb = b | (int)((i & 2) << 4), xc = c | (int)((i & 8) << 2);
        return row.Operands switch
        {
            Operands.FrtFraFrb => Text(name, F(t), F(a), F(b)),
            Operands.FrtFraFrc => Text(name, F(t), F(a), F(c)),
            Operands.FrtFraFrcFrb => Text(name, F(t), F(a), F(c), F(b)),
            Operands.FrtFrb => Text(name, F(t), F(b)),
            Operands.Frt => Text(name, F(t)),
            Operands.FrtRm => Text(name, F(t), Dec(b & 3)),
            Operands.CrFraFrb => Text(name, Cr(t >> 2), F(a), F(b)),
            Operands.CrCr => Text(name, Cr(t >> 2), Cr(a >> 2)),
            Operands.Bt => Text(name, Dec(t)),
            Operands.Mtfsf => Text(name, Dec((i >> 17) & 0xFF), F(b), Dec((i >> 25) & 1), Dec((i >> 16) & 1)),
            Operands.Mtfsfi => Text(name, Dec(t >> 2), Dec((i >> 12) & 0xF), Dec((i >> 16) & 1)),
            Operands.FrtX => Text(name, F(t), Ra0(a), R(b)),
            Operands.FrtXU => Text(name, F(t), R(a), R(b)),
            Operands.VrtVraVrb => Text(name, V(t), V(a), V(b)),
            Operands.VrtVrb => Text(name, V(t), V(b)),
            Operands.Vrt => Text(name, V(t)),
            Operands.Vrb => Text(name, V(b)),
            Operands.VrtVrbUim => Text(name, V(t), V(b), Dec(a)),
            Operands.VrtSim => Text(name, V(t), Dec((sbyte)(a << 3) >> 3)),
            Operands.VrtVraVrbVrc => Text(name, V(t), V(a), V(b), V(c)),
            Operands.VrtVraVrbShb => Text(name, V(t), V(a), V(b), Dec(c & 15)),
            Operands.VrtX => Text(name, V(t), Ra0(a), R(b)),
            Operands.RtVrb => Text(name, R(t), V(b)),
            Operands.RtRaVrb => Text(name, R(t), R(a), V(b)),
            Operands.VrtDs => Text(name, V(t), $"{Dec((short)(i & 0xFFFC))}({Ra0(a)})"),
            Operands.XtX => Text(name, Vs(xt), Ra0(a), R(b)),
            Operands.XtRaRb => Text(name, Vs(xt), Ra0(a), R(b)),
            Operands.RaXs => Text(name, R(a), Vs(xt)),
            Operands.XtRa => Text(name, Vs(xt), R(a)),
            Operands.XtRa0Rb => Text(name, Vs(xt), Ra0(a), R(b)),
            Operands.XtXaXb => Text(name, Vs(xt), Vs(xa), Vs(xb)),
            Operands.XtXaXbDm => Text(name, Vs(xt), Vs(xa), Vs(xb), Dec((i >> 8) & 3)),
            Operands.XtXaXbXc => Text(name, Vs(xt), Vs(xa), Vs(xb), Vs(xc)),
            Operands.XtXb => Text(name, Vs(xt), Vs(xb)),
            Operands.XtXbUim => Text(name, Vs(xt), Vs(xb), Dec(a & 3)),
            Operands.XtImm8 => Text(name, Vs(xt), Dec((i >> 11) & 0xFF)),
            Operands.CrXaXb => Text(name, Cr(t >> 2), Vs(xa), Vs(xb)),
            Operands.XtDq => Text(name, Vs(t | (int)((i & 8) << 2)), $"{Dec((short)(i & 0xFFF0))}({Ra0(a)})"),
            _ => Long(i),
        };
    }

    private static string V(int n) => "v" + n.ToString(CultureInfo.InvariantCulture);
    private static string Vs(int n) => "vs" + n.ToString(CultureInfo.InvariantCulture);
}
