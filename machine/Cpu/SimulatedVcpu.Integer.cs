using System.Numerics;
using System.Runtime.CompilerServices;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

// Fixed-point arithmetic, compare, logical, rotate and shift (Power ISA v3.0 Book I §3.3.9–3.3.14).
public sealed partial class SimulatedVcpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong RA0(int ra) => ra == 0 ? 0 : Gpr[ra];

    private bool Mode64 { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => (Msr_ & Isa.Msr.SF) != 0; }

    /// <summary>CR0 ← LT/GT/EQ of the result (64-bit mode: whole register; 32-bit: low word) || XER[SO].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetCr0(ulong result)
    {
        long v = Mode64 ? (long)result : (int)result;
        uint f = v < 0 ? 8u : v > 0 ? 4u : 2u;
        SetCrField(0, f | (uint)((Xer >> 31) & 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetCrField(int bf, uint value)
    {
        int shift = 28 - 4 * bf;
        Cr = (Cr & ~(0xFu << shift)) | ((value & 0xF) << shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CrBit(int bi) => ((Cr >> (31 - bi)) & 1) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetCa(bool ca, bool ca32) =>
        Xer = (Xer & ~(Isa.Xer.CA | Isa.Xer.CA32)) | (ca ? Isa.Xer.CA : 0) | (ca32 ? Isa.Xer.CA32 : 0);

    /// <summary>OV/OV32 set or cleared; SO sticky (Book I §3.2.2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetOv(bool ov, bool ov32)
    {
        Xer = (Xer & ~(Isa.Xer.OV | Isa.Xer.OV32)) | (ov ? Isa.Xer.OV | Isa.Xer.SO : 0) | (ov32 ? Isa.Xer.OV32 : 0);
    }

    private ulong CarryIn { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => (Xer & Isa.Xer.CA) != 0 ? 1UL : 0UL; }

    /// <summary>Add/subtract-from: CA is the carry out of bit 0 in 64-bit mode, out of bit 32 in 32-bit mode; CA32 always bit 32 (Book I §3.3.9).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetArithmeticCa(bool ca, bool ca32) => SetCa(Mode64 ? ca : ca32, ca32);

    /// <summary>OE=1 add/subtract-from/negate: OV is 64-bit overflow in 64-bit mode, 32-bit overflow in 32-bit mode; OV32 always 32-bit (Book I §3.3.9).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetArithmeticOv(bool ov, bool ov32) => SetOv(Mode64 ? ov : ov32, ov32);

    /// <summary>a + b + cin with carry out of bit 0 (CA) and bit 32 (CA32), signed overflow of 64 and 32 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddWithCarry(ulong a, ulong b, ulong cin, out bool ca, out bool ca32, out bool ov, out bool ov32)
    {
        ulong sum = a + b + cin;
        ca = sum < a || (cin != 0 && sum == a);
        ca32 = ((a & 0xFFFFFFFF) + (b & 0xFFFFFFFF) + cin) >> 32 != 0;
        ov = (((a ^ sum) & (b ^ sum)) >> 63) != 0;
        ov32 = (((a ^ sum) & (b ^ sum)) >> 31 & 1) != 0;
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Addi(uint i) { var d = new FormD(i); Gpr[d.RT] = RA0(d.RA) + (ulong)d.SI; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Addis(uint i) { var d = new FormD(i); Gpr[d.RT] = RA0(d.RA) + (ulong)(d.SI << 16); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Addic(uint i, bool rc)
    {
        var d = new FormD(i);
        ulong r = AddWithCarry(Gpr[d.RA], (ulong)d.SI, 0, out bool ca, out bool ca32, out _, out _);
        Gpr[d.RT] = r;
        SetArithmeticCa(ca, ca32);
        if (rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Subfic(uint i)
    {
        var d = new FormD(i);
        ulong r = AddWithCarry(~Gpr[d.RA], (ulong)d.SI, 1, out bool ca, out bool ca32, out _, out _);
        Gpr[d.RT] = r;
        SetArithmeticCa(ca, ca32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mulli(uint i) { var d = new FormD(i); Gpr[d.RT] = (ulong)((long)Gpr[d.RA] * d.SI); }

    /// <summary>add/subf and their carrying, extended, minus-one and zero forms: all are a + b + cin.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddFamily(Op op, uint i)
    {
        var x = new FormXO(i);
        ulong a = Gpr[x.RA], b = Gpr[x.RB];
        // Plain conditions, no switch over tuples: with op constant (each handler, each compiled block) they fold away before
        // the JIT spends anything on them, which keeps this cheap to inline into a block.
        bool subtract = op is Op.Subf or Op.Subfc or Op.Subfe or Op.Subfme or Op.Subfze or Op.Neg;
        bool extended = op is Op.Adde or Op.Addme or Op.Addze or Op.Subfe or Op.Subfme or Op.Subfze;
        ulong l = subtract ? ~a : a;
        ulong r = op is Op.Addme or Op.Subfme ? ulong.MaxValue : op is Op.Addze or Op.Subfze or Op.Neg ? 0UL : b;
        ulong cin = extended ? CarryIn : op is Op.Subf or Op.Subfc or Op.Neg ? 1UL : 0UL;
        bool setsCa = op is not (Op.Add or Op.Subf or Op.Neg);
        // The carries and overflows are worked out only where the form asks for them (each handler is this code with op constant).
        ulong result = l + r + cin;
        Gpr[x.RT] = result;
        if (setsCa)
            SetArithmeticCa(result < l || (cin != 0 && result == l), ((l & 0xFFFFFFFF) + (r & 0xFFFFFFFF) + cin) >> 32 != 0);
        if (x.OE) SetArithmeticOv((((l ^ result) & (r ^ result)) >> 63) != 0, (((l ^ result) & (r ^ result)) >> 31 & 1) != 0);
        if (x.Rc) SetCr0(result);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mullw(uint i)
    {
        var x = new FormXO(i);
        long p = (long)(int)Gpr[x.RA] * (int)Gpr[x.RB];
        Gpr[x.RT] = (ulong)p;
        if (x.OE) { bool ov = p != (int)p; SetOv(ov, ov); }
        if (x.Rc) SetCr0((ulong)p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mulld(uint i)
    {
        var x = new FormXO(i);
        long a = (long)Gpr[x.RA], b = (long)Gpr[x.RB];
        ulong r = (ulong)(a * b);
        Gpr[x.RT] = r;
        if (x.OE) { bool ov = (Int128)a * b != (long)r; SetOv(ov, ov); }
        if (x.Rc) SetCr0(r);
    }

    /// <summary>mulhw/mulhwu: the high word of the 64-bit product, zero-extended (as QEMU; RT[0:31] are undefined in the ISA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mulhw(uint i, bool signed)
    {
        var x = new FormXO(i);
        ulong r = signed
            ? (uint)(((long)(int)Gpr[x.RA] * (int)Gpr[x.RB]) >> 32)
            : (uint)(((ulong)(uint)Gpr[x.RA] * (uint)Gpr[x.RB]) >> 32);
        Gpr[x.RT] = r;
        if (x.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mulhd(uint i, bool signed)
    {
        var x = new FormXO(i);
        ulong r = signed
            ? (ulong)(long)(((Int128)(long)Gpr[x.RA] * (long)Gpr[x.RB]) >> 64)
            : Math.BigMul(Gpr[x.RA], Gpr[x.RB], out _);
        Gpr[x.RT] = r;
        if (x.Rc) SetCr0(r);
    }

    /// <summary>divw/divwu: the quotient in the low word, zero-extended; undefined cases (÷0, MIN/-1) give 0 and set OV.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Divw(uint i, bool signed)
    {
        var x = new FormXO(i);
        int a = (int)Gpr[x.RA], b = (int)Gpr[x.RB];
        bool undefined = signed ? b == 0 || (a == int.MinValue && b == -1) : b == 0;
        ulong r = undefined ? 0 : signed ? (uint)(a / b) : (uint)a / (uint)b;
        Gpr[x.RT] = r;
        if (x.OE) SetOv(undefined, undefined);
        if (x.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Divd(uint i, bool signed)
    {
        var x = new FormXO(i);
        ulong a = Gpr[x.RA], b = Gpr[x.RB];
        bool undefined = signed ? b == 0 || (a == 0x8000000000000000 && b == ulong.MaxValue) : b == 0;
        ulong r = undefined ? 0 : signed ? (ulong)((long)a / (long)b) : a / b;
        Gpr[x.RT] = r;
        if (x.OE) SetOv(undefined, undefined);
        if (x.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint CompareField(long a, long b) => (a < b ? 8u : a > b ? 4u : 2u) | (uint)((Xer >> 31) & 1);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint CompareFieldUnsigned(ulong a, ulong b) => (a < b ? 8u : a > b ? 4u : 2u) | (uint)((Xer >> 31) & 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Cmpi(uint i)
    {
        var d = new FormD(i);
        long a = d.L ? (long)Gpr[d.RA] : (int)Gpr[d.RA];
        SetCrField(d.BF, CompareField(a, d.SI));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Cmpli(uint i)
    {
        var d = new FormD(i);
        ulong a = d.L ? Gpr[d.RA] : (uint)Gpr[d.RA];
        SetCrField(d.BF, CompareFieldUnsigned(a, d.UI));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Cmp(uint i)
    {
        var x = new FormX(i);
        if (x.L) SetCrField(x.BF, CompareField((long)Gpr[x.RA], (long)Gpr[x.RB]));
        else SetCrField(x.BF, CompareField((int)Gpr[x.RA], (int)Gpr[x.RB]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Cmpl(uint i)
    {
        var x = new FormX(i);
        if (x.L) SetCrField(x.BF, CompareFieldUnsigned(Gpr[x.RA], Gpr[x.RB]));
        else SetCrField(x.BF, CompareFieldUnsigned((uint)Gpr[x.RA], (uint)Gpr[x.RB]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Andi(uint i, bool shifted)
    {
        var d = new FormD(i);
        ulong r = Gpr[d.RS] & (shifted ? d.UI << 16 : d.UI);
        Gpr[d.RA] = r;
        SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LogicalImmediate(uint i, int kind)
    {
        var d = new FormD(i);
        Gpr[d.RA] = kind switch
        {
            0 => Gpr[d.RS] | d.UI,
            1 => Gpr[d.RS] | (d.UI << 16),
            2 => Gpr[d.RS] ^ d.UI,
            _ => Gpr[d.RS] ^ (d.UI << 16),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Logical(Op op, uint i)
    {
        var x = new FormX(i);
        ulong s = Gpr[x.RS], b = Gpr[x.RB];
        ulong r = op switch
        {
            Op.And => s & b,
            Op.Andc => s & ~b,
            Op.Or => s | b,
            Op.Orc => s | ~b,
            Op.Xor => s ^ b,
            Op.Nand => ~(s & b),
            Op.Nor => ~(s | b),
            Op.Eqv => ~(s ^ b),
            _ /* Cmpb */ => CompareBytes(s, b),
        };
        Gpr[x.RA] = r;
        if (x.Rc && op != Op.Cmpb) SetCr0(r);
    }

    private static ulong CompareBytes(ulong s, ulong b)
    {
        ulong r = 0;
        for (int n = 0; n < 64; n += 8)
            if (((s >> n) & 0xFF) == ((b >> n) & 0xFF)) r |= 0xFFUL << n;
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Unary(Op op, uint i)
    {
        var x = new FormX(i);
        ulong s = Gpr[x.RS];
        ulong r = op switch
        {
            Op.Extsb => (ulong)(sbyte)s,
            Op.Extsh => (ulong)(short)s,
            Op.Extsw => (ulong)(int)s,
            Op.Cntlzw => (ulong)BitOperations.LeadingZeroCount((uint)s),
            Op.Cntlzd => (ulong)BitOperations.LeadingZeroCount(s),
            Op.Popcntb => PopcountFields(s, 8),
            Op.Popcntw => PopcountFields(s, 32),
            _ /* Popcntd */ => (ulong)BitOperations.PopCount(s),
        };
        Gpr[x.RA] = r;
        bool hasRc = op is Op.Extsb or Op.Extsh or Op.Extsw or Op.Cntlzw or Op.Cntlzd;
        if (hasRc && x.Rc) SetCr0(r);
    }

    private static ulong PopcountFields(ulong s, int width)
    {
        ulong r = 0, mask = width == 64 ? ulong.MaxValue : (1UL << width) - 1;
        for (int n = 0; n < 64; n += width) r |= (ulong)BitOperations.PopCount((s >> n) & mask) << n;
        return r;
    }

    /// <summary>ROTL32: rotate the low word replicated in both halves (Book I §3.3.14).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Rotl32(ulong x, int n)
    {
        ulong w = (x & 0xFFFFFFFF) | (x << 32);
        return BitOperations.RotateLeft(w, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Rlwinm(uint i)
    {
        var m = new FormM(i);
        ulong r = Rotl32(Gpr[m.RS], m.SH) & Bits.Mask(m.MB + 32, m.ME + 32);
        Gpr[m.RA] = r;
        if (m.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Rlwnm(uint i)
    {
        var m = new FormM(i);
        ulong r = Rotl32(Gpr[m.RS], (int)(Gpr[m.RB] & 31)) & Bits.Mask(m.MB + 32, m.ME + 32);
        Gpr[m.RA] = r;
        if (m.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Rlwimi(uint i)
    {
        var m = new FormM(i);
        ulong mask = Bits.Mask(m.MB + 32, m.ME + 32);
        ulong r = (Rotl32(Gpr[m.RS], m.SH) & mask) | (Gpr[m.RA] & ~mask);
        Gpr[m.RA] = r;
        if (m.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RotateDoublewordImmediate(Op op, uint i)
    {
        var md = new FormMD(i);
        int sh = md.SH, mb = md.MB;
        ulong rot = BitOperations.RotateLeft(Gpr[md.RS], sh);
        ulong r = op switch
        {
            Op.Rldicl => rot & Bits.Mask(mb, 63),
            Op.Rldicr => rot & Bits.Mask(0, mb),
            Op.Rldic => rot & Bits.Mask(mb, 63 - sh),
            _ /* Rldimi */ => (rot & Bits.Mask(mb, 63 - sh)) | (Gpr[md.RA] & ~Bits.Mask(mb, 63 - sh)),
        };
        Gpr[md.RA] = r;
        if (md.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RotateDoublewordRegister(Op op, uint i)
    {
        var md = new FormMD(i);
        ulong rot = BitOperations.RotateLeft(Gpr[md.RS], (int)(Gpr[md.RB] & 63));
        ulong r = op == Op.Rldcl ? rot & Bits.Mask(md.MB, 63) : rot & Bits.Mask(0, md.MB);
        Gpr[md.RA] = r;
        if (md.Rc) SetCr0(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Shift(Op op, uint i)
    {
        var x = new FormX(i);
        ulong s = Gpr[x.RS], n = Gpr[x.RB];
        ulong r = op switch
        {
            Op.Slw => (n & 0x20) != 0 ? 0 : (uint)(s << (int)(n & 31)),
            Op.Srw => (n & 0x20) != 0 ? 0 : (uint)s >> (int)(n & 31),
            Op.Sld => (n & 0x40) != 0 ? 0 : s << (int)(n & 63),
            _ /* Srd */ => (n & 0x40) != 0 ? 0 : s >> (int)(n & 63),
        };
        Gpr[x.RA] = r;
        if (x.Rc) SetCr0(r);
    }

    /// <summary>Algebraic shifts: CA (and CA32) = negative source with 1-bits shifted out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ShiftAlgebraic(Op op, uint i)
    {
        var x = new FormX(i);
        ulong s = Gpr[x.RS];
        ulong r;
        bool ca;
        if (op is Op.Sraw or Op.Srawi)
        {
            int n = op == Op.Srawi ? x.SH : (int)(Gpr[x.RB] & 0x3F);
            int w = (int)s;
            if (n < 32) { r = (ulong)(long)(w >> n); ca = w < 0 && (w & ((1 << n) - 1)) != 0; }
            else { r = w < 0 ? ulong.MaxValue : 0; ca = w < 0; }
        }
        else
        {
            int n = op == Op.Sradi ? new FormXS(i).SH : (int)(Gpr[x.RB] & 0x7F);
            long v = (long)s;
            if (n < 64) { r = (ulong)(v >> n); ca = v < 0 && n > 0 && (s & ((1UL << n) - 1)) != 0; }
            else { r = v < 0 ? ulong.MaxValue : 0; ca = v < 0; }
        }
        Gpr[x.RA] = r;
        SetCa(ca, ca);
        if (x.Rc) SetCr0(r);
    }
}
