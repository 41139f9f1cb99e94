using System.Globalization;

namespace ActorStep.Isa;

/// <summary>
/// Renders one instruction word the way GNU objdump 2.40 prints it with <c>-d -M raw,power9,any</c> (the
/// instruction text only: no address, bytes or <c>&lt;symbol+offset&gt;</c> annotation; operands separated
/// by commas without spaces). That output spells registers <c>r3</c>/<c>f1</c>, CR fields <c>cr1</c>, CR
/// bits <c>eq</c> or <c>4*cr1+eq</c>, an RA that reads as zero when 0 as <c>0</c>, branch targets as bare
/// lower-case hex, and never uses extended mnemonics. Words that do not decode print <c>.long 0x…</c>.
/// </summary>
public static partial class Disassembler
{
    private static readonly string[] CrBitNames = ["lt", "gt", "eq", "so"];

    public static string Format(uint insn, ulong address)
    {
        Op op = OpcodeTable.Decode(insn);
        if (op == Op.Illegal) return Long(insn);

        if (OpcodePatterns.TryGet(op, out var row)) return FormatPattern(row, insn);
        string name = OpcodeTable.Mnemonic(op);
        bool rc = (insn & 1) != 0;
        string dot = rc ? "." : "";

        switch (op)
        {
            // D form, signed immediate, RA reads as 0.
            case Op.Addi or Op.Addis:
            {
                var d = new FormD(insn);
                return Text(name, R(d.RT), Ra0(d.RA), Dec(d.SI));
            }
            case Op.Addic or Op.AddicRc or Op.Subfic or Op.Mulli:
            {
                var d = new FormD(insn);
                return Text(name, R(d.RT), R(d.RA), Dec(d.SI));
            }
            case Op.Twi or Op.Tdi:
            {
                var d = new FormD(insn);
                return Text(name, Dec(d.TO), R(d.RA), Dec(d.SI));
            }
            case Op.Cmpi:
            {
                var d = new FormD(insn);
                return Text(name, Cr(d.BF), d.L ? "1" : "0", R(d.RA), Dec(d.SI));
            }
            case Op.Cmpli:
            {
                var d = new FormD(insn);
                return Text(name, Cr(d.BF), d.L ? "1" : "0", R(d.RA), Dec((long)d.UI));
            }
            case Op.Ori or Op.Oris or Op.Xori or Op.Xoris or Op.Andi or Op.Andis:
            {
                var d = new FormD(insn);
                return Text(name, R(d.RA), R(d.RS), Dec((long)d.UI));
            }

            // D-form loads and stores. The update forms require RA != 0 (objdump calls RA = 0 invalid).
            case Op.Lbz or Op.Lhz or Op.Lha or Op.Lwz or Op.Stb or Op.Sth or Op.Stw or Op.Lmw or Op.Stmw:
            {
                var d = new FormD(insn);
                return Text(name, R(d.RT), $"{Dec(d.D)}({Ra0(d.RA)})");
            }
            case Op.Lbzu or Op.Lhzu or Op.Lhau or Op.Lwzu or Op.Stbu or Op.Sthu or Op.Stwu:
            {
                var d = new FormD(insn);
                return Text(name, R(d.RT), $"{Dec(d.D)}({R(d.RA)})");
            }
            case Op.Lfs or Op.Lfd or Op.Stfs or Op.Stfd:
            {
                var d = new FormD(insn);
                return Text(name, F(d.RT), $"{Dec(d.D)}({Ra0(d.RA)})");
            }
            case Op.Lfsu or Op.Lfdu or Op.Stfsu or Op.Stfdu:
            {
                var d = new FormD(insn);
                return Text(name, F(d.RT), $"{Dec(d.D)}({R(d.RA)})");
            }
            case Op.Ld or Op.Lwa or Op.Std:
            {
                var ds = new FormDS(insn);
                return Text(name, R(ds.RT), $"{Dec(ds.DS)}({Ra0(ds.RA)})");
            }
            case Op.Ldu or Op.Stdu:
            {
                var ds = new FormDS(insn);
                return Text(name, R(ds.RT), $"{Dec(ds.DS)}({R(ds.RA)})");
            }

            // X-form loads and stores.
            case Op.Lbzx or Op.Lhzx or Op.Lhax or Op.Lwzx or Op.Lwax or Op.Ldx
                or Op.Stbx or Op.Sthx or Op.Stwx or Op.Stdx
                or Op.Lhbrx or Op.Lwbrx or Op.Ldbrx or Op.Sthbrx or Op.Stwbrx or Op.Stdbrx:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RT), Ra0(x.RA), R(x.RB));
            }
            case Op.Lbzux or Op.Lhzux or Op.Lhaux or Op.Lwzux or Op.Lwaux or Op.Ldux
                or Op.Stbux or Op.Sthux or Op.Stwux or Op.Stdux:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RT), R(x.RA), R(x.RB));
            }
            case Op.Lswx or Op.Stswx:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RT), Ra0(x.RA), R(x.RB));
            }
            case Op.Lswi or Op.Stswi:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RT), Ra0(x.RA), Dec(x.NB == 0 ? 32 : x.NB)); // NB = 0 means 32 bytes
            }
            case Op.Lwarx or Op.Ldarx:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RT), Ra0(x.RA), R(x.RB), (insn & 1).ToString(CultureInfo.InvariantCulture)); // EH
            }
            case Op.Stwcx or Op.Stdcx:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RS), Ra0(x.RA), R(x.RB));
            }

            // XO form: OE and Rc both spelled in the mnemonic.
            case Op.Add or Op.Addc or Op.Adde or Op.Subf or Op.Subfc or Op.Subfe
                or Op.Mullw or Op.Mulld or Op.Divw or Op.Divwu or Op.Divd or Op.Divdu:
            {
                var xo = new FormXO(insn);
                return Text(name + (xo.OE ? "o" : "") + dot, R(xo.RT), R(xo.RA), R(xo.RB));
            }
            case Op.Addme or Op.Addze or Op.Subfme or Op.Subfze or Op.Neg:
            {
                var xo = new FormXO(insn);
                return Text(name + (xo.OE ? "o" : "") + dot, R(xo.RT), R(xo.RA));
            }
            case Op.Mulhw or Op.Mulhwu or Op.Mulhd or Op.Mulhdu:
            {
                var xo = new FormXO(insn);
                return Text(name + dot, R(xo.RT), R(xo.RA), R(xo.RB));
            }

            // X-form logical and shifts: RA is the target, RS the source.
            case Op.And or Op.Andc or Op.Or or Op.Orc or Op.Xor or Op.Nand or Op.Nor or Op.Eqv
                or Op.Slw or Op.Srw or Op.Sraw or Op.Sld or Op.Srd or Op.Srad:
            {
                var x = new FormX(insn);
                return Text(name + dot, R(x.RA), R(x.RS), R(x.RB));
            }
            case Op.Cmpb:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RA), R(x.RS), R(x.RB));
            }
            case Op.Extsb or Op.Extsh or Op.Extsw or Op.Cntlzw or Op.Cntlzd:
            {
                var x = new FormX(insn);
                return Text(name + dot, R(x.RA), R(x.RS));
            }
            case Op.Popcntb or Op.Popcntw or Op.Popcntd:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RA), R(x.RS));
            }
            case Op.Srawi:
            {
                var x = new FormX(insn);
                return Text(name + dot, R(x.RA), R(x.RS), Dec(x.SH));
            }
            case Op.Sradi:
            {
                var xs = new FormXS(insn);
                return Text(name + dot, R(xs.RA), R(xs.RS), Dec(xs.SH));
            }

            // Rotates.
            case Op.Rlwinm or Op.Rlwimi:
            {
                var m = new FormM(insn);
                return Text(name + dot, R(m.RA), R(m.RS), Dec(m.SH), Dec(m.MB), Dec(m.ME));
            }
            case Op.Rlwnm:
            {
                var m = new FormM(insn);
                return Text(name + dot, R(m.RA), R(m.RS), R(m.RB), Dec(m.MB), Dec(m.ME));
            }
            case Op.Rldicl or Op.Rldicr or Op.Rldic or Op.Rldimi:
            {
                var md = new FormMD(insn);
                return Text(name + dot, R(md.RA), R(md.RS), Dec(md.SH), Dec(md.MB));
            }
            case Op.Rldcl or Op.Rldcr:
            {
                var md = new FormMD(insn);
                return Text(name + dot, R(md.RA), R(md.RS), R(md.RB), Dec(md.MB));
            }

            // Compares and traps.
            case Op.Cmp or Op.Cmpl:
            {
                var x = new FormX(insn);
                return Text(name, Cr(x.BF), x.L ? "1" : "0", R(x.RA), R(x.RB));
            }
            case Op.Tw or Op.Td:
            {
                var x = new FormX(insn);
                return Text(name, Dec(x.TO), R(x.RA), R(x.RB));
            }

            // Branches. objdump masks absolute (AA=1) targets to 32 bits (ppc-dis.c prints
            // `value & 0xffffffff` for PPC_OPERAND_ABSOLUTE); relative targets wrap at 64 bits.
            case Op.B:
            {
                var i = new FormI(insn);
                return Text(BranchName("b", i.LK, i.AA), Target(i.LI, i.AA, address));
            }
            case Op.Bc:
            {
                var b = new FormB(insn);
                return Text(BranchName("bc", b.LK, b.AA), Dec(b.BO), CrBit(b.BI), Target(b.BD, b.AA, address));
            }
            case Op.Bclr or Op.Bcctr:
            {
                var xl = new FormXL(insn);
                return Text(name + (xl.LK ? "l" : ""), Dec(xl.BO), CrBit(xl.BI), Dec(xl.BH));
            }
            case Op.Crand or Op.Cror or Op.Crxor or Op.Crnand or Op.Crnor or Op.Creqv or Op.Crandc or Op.Crorc:
            {
                var xl = new FormXL(insn);
                return Text(name, CrBit(xl.BT), CrBit(xl.BA), CrBit(xl.BB));
            }
            case Op.Mcrf:
            {
                var xl = new FormXL(insn);
                return Text(name, Cr(xl.BF), Cr(xl.BFA));
            }
            case Op.Isel:
            {
                var a = new FormA(insn);
                return Text(name, R(a.RT), Ra0(a.RA), R(a.RB), CrBit(a.BC));
            }

            // CR and SPR moves.
            case Op.Mfcr:
            {
                var xfx = new FormXFX(insn);
                // Plain mfcr prints its (absent) FXM operand as -1 in raw mode.
                return xfx.OneField ? Text("mfocrf", R(xfx.RT), Dec(xfx.FXM)) : Text(name, R(xfx.RT), "-1");
            }
            case Op.Mtcrf:
            {
                var xfx = new FormXFX(insn);
                return Text(xfx.OneField ? "mtocrf" : name, Dec(xfx.FXM), R(xfx.RS));
            }
            case Op.Mfspr or Op.Mftb:
            {
                var xfx = new FormXFX(insn);
                return Text(name, R(xfx.RT), Dec(xfx.SPR));
            }
            case Op.Mtspr:
            {
                var xfx = new FormXFX(insn);
                return Text(name, Dec(xfx.SPR), R(xfx.RS));
            }
            case Op.Mfmsr:
                return Text(name, R(new FormX(insn).RT));
            case Op.Mtmsr or Op.Mtmsrd:
            {
                var x = new FormX(insn);
                return Text(name, R(x.RS), x.L15 ? "1" : "0");
            }

            // System, storage control.
            case Op.Sc or Op.Scv:
                return Text(name, Dec(new FormSC(insn).LEV));
            case Op.Rfid or Op.Rfscv or Op.Hrfid or Op.Isync or Op.Eieio or Op.Tlbsync:
                return name;
            case Op.Slbia:
                return Text(name, Dec((insn >> 21) & 7)); // IH
            case Op.Tlbie or Op.Tlbiel:
            {
                // tlbie RB,RS,RIC,PRS,R (v3.0): the RA field holds 0 || RIC || PRS || R.
                var x = new FormX(insn);
                return Text(name, R(x.RB), R(x.RS), Dec((x.RA >> 2) & 3), Dec((x.RA >> 1) & 1), Dec(x.RA & 1));
            }
            case Op.Sync:
                return Text(name, Dec((insn >> 21) & 3)); // L (bits 9:10)
            case Op.CacheHint:
            {
                var x = new FormX(insn);
                return x.XO switch
                {
                    278 => Text("dcbt", Ra0(x.RA), R(x.RB), Dec(x.RT)),        // TH
                    246 => Text("dcbtst", Ra0(x.RA), R(x.RB), Dec(x.RT)),      // TH
                    86 => Text("dcbf", Ra0(x.RA), R(x.RB), Dec(x.RT & 3)),     // L
                    54 => Text("dcbst", Ra0(x.RA), R(x.RB)),
                    // The T (or A) bit is bit 6; STRM bits 9:10.
                    342 => Text((insn & 0x02000000) != 0 ? "dstt" : "dst", R(x.RA), R(x.RB), Dec((insn >> 21) & 3)),
                    374 => Text((insn & 0x02000000) != 0 ? "dststt" : "dstst", R(x.RA), R(x.RB), Dec((insn >> 21) & 3)),
                    822 => (insn & 0x02000000) != 0 ? "dssall" : Text("dss", Dec((insn >> 21) & 3)),
                    _ => throw new InvalidOperationException($"cache hint with XO {x.XO}"),
                };
            }
            case Op.Icbi:
            {
                var x = new FormX(insn);
                return Text("icbi", Ra0(x.RA), R(x.RB));
            }
            case Op.Dcbz:
            {
                var x = new FormX(insn);
                return Text(name, Ra0(x.RA), R(x.RB));
            }

            case Op.Fmr:
            {
                var a = new FormA(insn);
                return Text(name + dot, F(a.FRT), F(a.FRB));
            }
        }
        throw new InvalidOperationException($"no disassembly for {op}");
    }

    private static string Long(uint insn) => ".long 0x" + insn.ToString("x", CultureInfo.InvariantCulture);

    private static string Text(string mnemonic, params string[] operands) =>
        operands.Length == 0 ? mnemonic : mnemonic + " " + string.Join(',', operands);

    private static string R(int n) => "r" + n.ToString(CultureInfo.InvariantCulture);
    private static string Ra0(int n) => n == 0 ? "0" : R(n);
    private static string F(int n) => "f" + n.ToString(CultureInfo.InvariantCulture);
    private static string Cr(int n) => "cr" + n.ToString(CultureInfo.InvariantCulture);
    private static string Dec(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string CrBit(int bit) =>
        bit < 4 ? CrBitNames[bit] : $"4*cr{bit >> 2}+{CrBitNames[bit & 3]}";

    private static string BranchName(string stem, bool lk, bool aa) => stem + (lk ? "l" : "") + (aa ? "a" : "");

    private static string Target(long displacement, bool absolute, ulong address) =>
        (absolute ? (ulong)displacement & 0xFFFF_FFFF : address + (ulong)displacement).ToString("x", CultureInfo.InvariantCulture);
}
