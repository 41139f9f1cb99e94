using System.Runtime.CompilerServices;

namespace ActorStep.Isa;

// One view per instruction form over the 32-bit word, with the field names of Power ISA v3.0 Book I §1.6.
// IBM bit n of the word is (insn >> (31 - n)).

public readonly struct FormD(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RS => RT;
    public int BF => (int)(insn >> 23) & 7;
    public bool L => ((insn >> 21) & 1) != 0;
    public int TO => RT;
    public int RA => (int)(insn >> 16) & 31;
    public long SI => (short)insn;
    public ulong UI => insn & 0xFFFF;
    public long D => (short)insn;
}

public readonly struct FormDS(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RS => RT;
    public int RA => (int)(insn >> 16) & 31;
    public long DS => (short)(insn & 0xFFFC);
    public int XO => (int)insn & 3;
}

public readonly struct FormX(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RS => RT;
    public int TO => RT;
    public int BF => (int)(insn >> 23) & 7;
    public bool L => ((insn >> 21) & 1) != 0;
    public int RA => (int)(insn >> 16) & 31;
    public int RB => (int)(insn >> 11) & 31;
    public int SH => RB;
    public int NB => RB;
    public int XO => (int)(insn >> 1) & 0x3FF;
    public bool Rc => (insn & 1) != 0;
    /// <summary>The L field of mtmsrd (bit 15).</summary>
    public bool L15 => ((insn >> 16) & 1) != 0;
}

public readonly struct FormXO(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RA => (int)(insn >> 16) & 31;
    public int RB => (int)(insn >> 11) & 31;
    public bool OE => ((insn >> 10) & 1) != 0;
    public int XO => (int)(insn >> 1) & 0x1FF;
    public bool Rc => (insn & 1) != 0;
}

public readonly struct FormXS(uint insn)
{
    public int RS => (int)(insn >> 21) & 31;
    public int RA => (int)(insn >> 16) & 31;
    public int SH => (int)((insn >> 11) & 31 | ((insn << 4) & 32));
    public bool Rc => (insn & 1) != 0;
}

public readonly struct FormM(uint insn)
{
    public int RS => (int)(insn >> 21) & 31;
    public int RA => (int)(insn >> 16) & 31;
    public int RB => (int)(insn >> 11) & 31;
    public int SH => RB;
    public int MB => (int)(insn >> 6) & 31;
    public int ME => (int)(insn >> 1) & 31;
    public bool Rc => (insn & 1) != 0;
}

public readonly struct FormMD(uint insn)
{
    public int RS => (int)(insn >> 21) & 31;
    public int RA => (int)(insn >> 16) & 31;
    public int RB => (int)(insn >> 11) & 31;
    /// <summary>sh = sh[5] || sh[0:4], with sh[5] in bit 30.</summary>
    public int SH => (int)((insn >> 11) & 31 | ((insn << 4) & 32));
    /// <summary>mb/me = mb[5] || mb[0:4]: the 6-bit field is stored rotated (bit 26 is the high bit).</summary>
    public int MB => (int)(((insn >> 6) & 31) | (insn & 0x20));
    public bool Rc => (insn & 1) != 0;
}

public readonly struct FormXL(uint insn)
{
    public int BT => (int)(insn >> 21) & 31;
    public int BA => (int)(insn >> 16) & 31;
    public int BB => (int)(insn >> 11) & 31;
    public int BO => BT;
    public int BI => BA;
    public int BH => (int)(insn >> 11) & 3;
    public int BF => (int)(insn >> 23) & 7;
    public int BFA => (int)(insn >> 18) & 7;
    public bool LK => (insn & 1) != 0;
}

public readonly struct FormXFX(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RS => RT;
    public int SPR => Spr.Decode(insn);
    public int FXM => (int)(insn >> 12) & 0xFF;
    /// <summary>Bit 11: the one-field forms mfocrf/mtocrf.</summary>
    public bool OneField => ((insn >> 20) & 1) != 0;
}

public readonly struct FormI(uint insn)
{
    /// <summary>LI || 0b00, sign-extended.</summary>
    public long LI => ((int)(insn << 6)) >> 6 & ~3L;
    public bool AA => (insn & 2) != 0;
    public bool LK => (insn & 1) != 0;
}

public readonly struct FormB(uint insn)
{
    public int BO => (int)(insn >> 21) & 31;
    public int BI => (int)(insn >> 16) & 31;
    public long BD => (short)(insn & 0xFFFC);
    public bool AA => (insn & 2) != 0;
    public bool LK => (insn & 1) != 0;
}

public readonly struct FormA(uint insn)
{
    public int RT => (int)(insn >> 21) & 31;
    public int RA => (int)(insn >> 16) & 31;
    public int RB => (int)(insn >> 11) & 31;
    public int BC => (int)(insn >> 6) & 31;
    public int FRT => RT;
    public int FRB => RB;
    public bool Rc => (insn & 1) != 0;
}

public readonly struct FormSC(uint insn)
{
    public int LEV => (int)(insn >> 5) & 0x7F;
}

public static class Bits
{
    /// <summary>MASK(mb, me) of the ISA for 64-bit rotates, IBM bit numbering, wrapping when mb &gt; me.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mask(int mb, int me)
    {
        ulong a = ulong.MaxValue >> mb;
        ulong b = me == 63 ? ulong.MaxValue : ~(ulong.MaxValue >> (me + 1));
        return mb <= me ? a & b : a | b;
    }
}
