using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ActorStep.Isa;

namespace ActorStep.Machine.Cpu;

// VMX (Power ISA v3.0 Book I ch. 6) and VSX (ch. 7). The 64 VSRs overlay the FPRs (VSR0–31 doubleword 0) and the VRs
// (VSR32–63). A VSR is kept as a little-endian 128-bit value (VsrFile), so ISA element i of n elements is host element
// n-1-i of the same Vector128 and element-wise arithmetic needs no reordering; byte-index instructions (vperm, vsldoi,
// lvsl, merges) work on the ISA's byte numbering through IsaBytes.
public sealed partial class SimulatedVcpu
{
    /// <summary>VSR <paramref name="n"/> (0–63) as one 128-bit value.</summary>
    private ref Vector128<byte> VsrRef(int n) => ref Unsafe.As<ulong, Vector128<byte>>(ref Vsr[2 * n]);
    private ref ulong Dw0(int n) => ref Vsr[2 * n + 1];
    private ref ulong Dw1(int n) => ref Vsr[2 * n];
    /// <summary>FPR n is VSR n's doubleword 0 (Book I §7.2.1.1).</summary>
    private ref ulong Fpr(int n) => ref Vsr[2 * n + 1];
    private ref Vector128<byte> Vr(int n) => ref VsrRef(32 + n);

    private bool VectorAvailable()
    {
        if ((Msr_ & Isa.Msr.VEC) != 0) return true;
        RaiseFault(InterruptKind.VectorUnavailable, _cia, 0); // SRR1 33:36, 42:47 = 0 (Book III §6.5.14)
        return false;
    }

    private bool VsxAvailable()
    {
        if ((Msr_ & Isa.Msr.VSX) != 0) return true;
        RaiseFault(InterruptKind.VsxUnavailable, _cia, 0); // Book III §6.5.15
        return false;
    }

    /// <summary>A VSX move whose register is an FPR (n &lt; 32) needs MSR[FP], a VR needs MSR[VEC] (mfvsrd…, as QEMU).</summary>
    private bool FpOrVectorAvailable(int vsr) => vsr < 32 ? FloatAvailable() : VectorAvailable();

    private static Vector128<byte> Reverse(Vector128<byte> v) =>
        Vector128.Shuffle(v, Vector128.Create((byte)15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));

    /// <summary>The ISA's byte order (byte 0 = bits 0:7) of a register value, and back.</summary>
    private static void IsaBytes(Vector128<byte> v, Span<byte> isa) => Reverse(v).CopyTo(isa);
    private static Vector128<byte> FromIsaBytes(ReadOnlySpan<byte> isa) => Reverse(Vector128.Create(isa));

    // ---------------------------------------------------------------------------------------------------------------
    // Storage access: up to 16 bytes in storage order, translated page by page (a vector may cross a page).

    /// <summary>Reads <paramref name="into"/>.Length bytes at EA (mem[EA+k] → into[k]); false after a DSI.</summary>
    private bool ReadStorage(ulong ea, Span<byte> into)
    {
        ea = EffectiveAddress(ea);
        int n = into.Length, first = (int)Math.Min((ulong)n, 4096 - (ea & 0xFFF));
        if (!TranslateData(ea, first, false, out ulong ra)) return false;
        ulong ra2 = 0;
        if (first < n && !TranslateData(EffectiveAddress(ea + (ulong)first), n - first, false, out ra2)) return false;
        MemoryMarshal.CreateReadOnlySpan(ref _mem.At(ra), first).CopyTo(into);
        if (first < n) MemoryMarshal.CreateReadOnlySpan(ref _mem.At(ra2), n - first).CopyTo(into[first..]);
        return true;
    }

    /// <summary>Writes <paramref name="data"/> at EA in storage order, both pages translated before any byte is written.</summary>
    private bool WriteStorage(ulong ea, ReadOnlySpan<byte> data)
    {
        ea = EffectiveAddress(ea);
        int n = data.Length, first = (int)Math.Min((ulong)n, 4096 - (ea & 0xFFF));
        if (!TranslateData(ea, first, true, out ulong ra)) return false;
        ulong ra2 = 0;
        if (first < n && !TranslateData(EffectiveAddress(ea + (ulong)first), n - first, true, out ra2)) return false;
        StoreBytes(ra, data[..first]);
        if (first < n) StoreBytes(ra2, data[first..]);
        return true;
    }

    /// <summary>Through GuestMemory.Store, which drops decoded instructions the bytes overwrite.</summary>
    private void StoreBytes(ulong ra, ReadOnlySpan<byte> data)
    {
        int k = 0;
        for (; k + 8 <= data.Length; k += 8) _mem.Store(ra + (ulong)k, 8, BinaryPrimitives.ReadUInt64LittleEndian(data[k..]), true);
        for (; k < data.Length; k++) _mem.Store(ra + (ulong)k, 1, data[k], true);
    }

    /// <summary>
    /// A whole register from 16 bytes of storage: big-endian mode puts mem[EA] in byte 0, little-endian mode in byte 15
    /// (lvx, lxvx, lxv: Book I §6.4, §7.6). With the register kept little-endian, the LE case is a plain copy.
    /// </summary>
    private Vector128<byte> QuadFromStorage(ReadOnlySpan<byte> mem) =>
        LittleEndian ? Vector128.Create(mem) : Reverse(Vector128.Create(mem));

    private void QuadToStorage(Vector128<byte> v, Span<byte> mem) => (LittleEndian ? v : Reverse(v)).CopyTo(mem);

    /// <summary>Elements of <paramref name="size"/> bytes, each in the mode's byte order, element 0 first in storage
    /// (lxvd2x, lxvw4x, lxvh8x, lxvb16x: element order is the ISA's in both modes).</summary>
    private static Vector128<byte> ElementsFromStorage(ReadOnlySpan<byte> mem, int size, bool le)
    {
        Span<byte> isa = stackalloc byte[16];
        for (int e = 0; e < 16; e += size)
            for (int k = 0; k < size; k++) isa[e + k] = mem[e + (le ? size - 1 - k : k)];
        return FromIsaBytes(isa);
    }

    private static void ElementsToStorage(Vector128<byte> v, Span<byte> mem, int size, bool le)
    {
        Span<byte> isa = stackalloc byte[16];
        IsaBytes(v, isa);
        for (int e = 0; e < 16; e += size)
            for (int k = 0; k < size; k++) mem[e + (le ? size - 1 - k : k)] = isa[e + k];
    }

    private bool LoadScalar(ulong ea, int size, out ulong value) => LoadScalar(ea, size, LittleEndian, out value);

    /// <summary>A scalar of <paramref name="size"/> bytes in byte order <paramref name="le"/>, on one page or across two.</summary>
    private bool LoadScalar(ulong ea, int size, bool le, out ulong value)
    {
        ea = EffectiveAddress(ea);
        value = 0;
        if ((ea & 0xFFF) + (ulong)size > 4096)
        {
            Span<byte> b = stackalloc byte[8];
            if (!ReadStorage(ea, b[..size])) return false;
            for (int k = 0; k < size; k++) value = le ? value | (ulong)b[k] << (8 * k) : value << 8 | b[k];
            return true;
        }
        if (!TranslateData(ea, size, false, out ulong ra)) return false;
        value = _mem.Load(ra, size, le);
        return true;
    }

    private bool StoreScalar(ulong ea, int size, ulong value) => StoreScalar(ea, size, LittleEndian, value);

    private bool StoreScalar(ulong ea, int size, bool le, ulong value)
    {
        ea = EffectiveAddress(ea);
        if ((ea & 0xFFF) + (ulong)size > 4096)
        {
            Span<byte> b = stackalloc byte[8];
            for (int k = 0; k < size; k++) b[k] = (byte)(le ? value >> (8 * k) : value >> (8 * (size - 1 - k)));
            return WriteStorage(ea, b[..size]);
        }
        if (!TranslateData(ea, size, true, out ulong ra)) return false;
        _mem.Store(ra, size, value, le);
        return true;
    }

    /// <summary>Everything decoded from <see cref="OpcodePatterns"/>: FP to SimulatedVcpu.Float.cs, the rest here.</summary>
    private void FloatVector(Op op, uint i)
    {
        if (op <= Op.Stfiwx) { Float(op, i); return; }
        if (op <= Op.Stvxl) { VectorLoadStore(op, i); return; }
        if (op <= Op.Mtvsrdd) { VsxLoadStore(op, i); return; }
        if (op <= Op.Vpermr) { Vmx(op, i); return; }
        VsxOp(op, i);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // VMX loads and stores (Book I §6.7.2–6.7.3): 31/X forms.

    /// <summary>lvx, lvxl, stvx, stvxl in their common case: MSR[VEC] set and the quadword's translation cached
    /// (<see cref="DataCacheHit"/>); false when it is not that case (nothing done: <see cref="VectorLoadStore"/> follows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CachedQuad(uint i, bool store)
    {
        if ((Msr_ & Isa.Msr.VEC) == 0) return false;
        var x = new FormX(i);
        if (!DataCacheHit((RA0(x.RA) + Gpr[x.RB]) & ~15UL, 16, store, out ulong ra)) return false;
        ref var v = ref Vr(x.RT);
        if (store) _mem.StoreQuad(ra, LittleEndian ? v : Reverse(v));
        else v = LittleEndian ? _mem.LoadQuad(ra) : Reverse(_mem.LoadQuad(ra));
        return true;
    }

    private void VectorLoadStore(Op op, uint i)
    {
        if (!VectorAvailable()) return;
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]);
        Span<byte> b = stackalloc byte[16];
        switch (op)
        {
            case Op.Lvsl or Op.Lvsr:
            {
                int sh = (int)(ea & 15);
                for (int k = 0; k < 16; k++) b[k] = (byte)(op == Op.Lvsl ? sh + k : 16 - sh + k);
                Vr(x.RT) = FromIsaBytes(b);
                return;
            }
            case Op.Lvx or Op.Lvxl:
                if (!ReadStorage(ea & ~15UL, b)) return;
                Vr(x.RT) = QuadFromStorage(b);
                return;
            case Op.Stvx or Op.Stvxl:
                QuadToStorage(Vr(x.RS), b);
                WriteStorage(ea & ~15UL, b);
                return;
            default:
            {
                // Element forms: the element at EA's offset in the quadword, in the mode's order (host byte eb+k in LE
                // mode, 15-eb-k in BE mode); the other elements are left as they are (undefined in the ISA, kept by QEMU).
                int size = op is Op.Lvebx or Op.Stvebx ? 1 : op is Op.Lvehx or Op.Stvehx ? 2 : 4;
                ea &= ~(ulong)(size - 1);
                int eb = (int)(ea & 15);
                bool load = op is Op.Lvebx or Op.Lvehx or Op.Lvewx;
                ref var v = ref Vr(x.RT);
                Span<byte> host = stackalloc byte[16];
                v.CopyTo(host);
                if (load)
                {
                    if (!ReadStorage(ea, b[..size])) return;
                    for (int k = 0; k < size; k++) host[LittleEndian ? eb + k : 15 - eb - k] = b[k];
                    v = Vector128.Create((ReadOnlySpan<byte>)host);
                }
                else
                {
                    for (int k = 0; k < size; k++) b[k] = host[LittleEndian ? eb + k : 15 - eb - k];
                    WriteStorage(ea, b[..size]);
                }
                return;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // VSX loads, stores and moves (Book I §7.6): X/XX1 forms (TX in bit 31), DS (57/61) and DQ (61) forms.

    private static int Xt(uint i) => (int)((i >> 21) & 31) | (int)((i & 1) << 5);

    private void VsxLoadStore(Op op, uint i)
    {
        int t = Xt(i);
        var x = new FormX(i);
        Span<byte> b = stackalloc byte[16];
        switch (op)
        {
            case Op.Mfvsrd: if (FpOrVectorAvailable(t)) Gpr[x.RA] = Dw0(t); return;
            case Op.Mfvsrwz: if (FpOrVectorAvailable(t)) Gpr[x.RA] = (uint)Dw0(t); return;
            case Op.Mtvsrd: if (FpOrVectorAvailable(t)) Dw0(t) = Gpr[x.RA]; return;
            case Op.Mtvsrwa: if (FpOrVectorAvailable(t)) Dw0(t) = (ulong)(int)Gpr[x.RA]; return;
            case Op.Mtvsrwz: if (FpOrVectorAvailable(t)) Dw0(t) = (uint)Gpr[x.RA]; return;
            case Op.Mfvsrld: if (t < 32 ? VsxAvailable() : VectorAvailable()) Gpr[x.RA] = Dw1(t); return;
            case Op.Mtvsrdd:
                if (!(t < 32 ? VsxAvailable() : VectorAvailable())) return;
                Dw0(t) = RA0(x.RA); Dw1(t) = Gpr[x.RB];
                return;
            case Op.Mtvsrws:
                if (!(t < 32 ? VsxAvailable() : VectorAvailable())) return;
                VsrRef(t) = Vector128.Create((uint)Gpr[x.RA]).AsByte();
                return;
        }
        if (!VsxAvailable()) return;
        ulong ea = RA0(x.RA) + Gpr[x.RB];
        bool le = LittleEndian;
        switch (op)
        {
            case Op.Lxvd2x or Op.Lxvw4x or Op.Lxvh8x or Op.Lxvb16x:
                if (!ReadStorage(ea, b)) return;
                VsrRef(t) = ElementsFromStorage(b, op switch { Op.Lxvd2x => 8, Op.Lxvw4x => 4, Op.Lxvh8x => 2, _ => 1 }, le);
                return;
            case Op.Stxvd2x or Op.Stxvw4x or Op.Stxvh8x or Op.Stxvb16x:
                ElementsToStorage(VsrRef(t), b, op switch { Op.Stxvd2x => 8, Op.Stxvw4x => 4, Op.Stxvh8x => 2, _ => 1 }, le);
                WriteStorage(ea, b);
                return;
            case Op.Lxvx:
                if (!ReadStorage(ea, b)) return;
                VsrRef(t) = QuadFromStorage(b);
                return;
            case Op.Stxvx:
                QuadToStorage(VsrRef(t), b);
                WriteStorage(ea, b);
                return;
            case Op.Lxvdsx:
            {
                if (!LoadScalar(ea, 8, out ulong v)) return;
                Dw0(t) = Dw1(t) = v;
                return;
            }
            case Op.Lxvwsx:
            {
                if (!LoadScalar(ea, 4, out ulong v)) return;
                VsrRef(t) = Vector128.Create((uint)v).AsByte();
                return;
            }
            case Op.Lxsdx:
            {
                if (!LoadScalar(ea, 8, out ulong v)) return;
                Dw0(t) = v; // doubleword 1 undefined: kept, as QEMU
                return;
            }
            case Op.Lxsiwzx or Op.Lxsiwax or Op.Lxsspx or Op.Lxsibzx or Op.Lxsihzx:
            {
                int size = op switch { Op.Lxsibzx => 1, Op.Lxsihzx => 2, _ => 4 };
                if (!LoadScalar(ea, size, out ulong v)) return;
                Dw0(t) = op switch
                {
                    Op.Lxsiwax => (ulong)(int)v,
                    Op.Lxsspx => SingleToDouble((uint)v),
                    _ => v,
                };
                return;
            }
            case Op.Stxsdx: StoreScalar(ea, 8, Dw0(t)); return;
            case Op.Stxsiwx: StoreScalar(ea, 4, (uint)Dw0(t)); return;
            case Op.Stxsspx: StoreScalar(ea, 4, DoubleToSingleBits(Dw0(t))); return;
            case Op.Stxsibx: StoreScalar(ea, 1, (byte)Dw0(t)); return;
            case Op.Stxsihx: StoreScalar(ea, 2, (ushort)Dw0(t)); return;
            case Op.Lxvl or Op.Lxvll:
            {
                ea = RA0(x.RA);
                int nb = (int)Math.Min(16, Gpr[x.RB] >> 56);
                b.Clear();
                if (nb > 0 && !ReadStorage(ea, b[..nb])) return;
                Span<byte> isa = stackalloc byte[16];
                isa.Clear();
                // lxvl little-endian fills from byte 15 down; lxvll is left-justified in both modes (Book I §7.6).
                for (int k = 0; k < nb; k++) isa[op == Op.Lxvl && le ? 15 - k : k] = b[k];
                VsrRef(t) = FromIsaBytes(isa);
                return;
            }
            case Op.Stxvl or Op.Stxvll:
            {
                ea = RA0(x.RA);
                int nb = (int)Math.Min(16, Gpr[x.RB] >> 56);
                Span<byte> isa = stackalloc byte[16];
                IsaBytes(VsrRef(t), isa);
                for (int k = 0; k < nb; k++) b[k] = isa[op == Op.Stxvl && le ? 15 - k : k];
                if (nb > 0) WriteStorage(ea, b[..nb]);
                return;
            }
        }
        RaiseIllegal(i);
    }

    private static ulong SingleToDouble(uint bits) => BitConverter.DoubleToUInt64Bits(BitConverter.UInt32BitsToSingle(bits)) is var d
        && float.IsNaN(BitConverter.UInt32BitsToSingle(bits))
            // A NaN keeps its payload and its quiet bit (lfs does not quiet a signalling NaN: Book I §4.6.2).
            ? ((ulong)(bits >> 31) << 63) | 0x7FF0000000000000UL | ((ulong)(bits & 0x7FFFFF) << 29)
            : d;

    /// <summary>stfs's conversion: no rounding, bits 0:1 and 5:34 of the double (Book I §4.6.3) for normal numbers; denormalised
    /// singles shifted in.</summary>
    private static uint DoubleToSingleBits(ulong d)
    {
        int exp = (int)((d >> 52) & 0x7FF);
        if (exp > 896 || (d & 0x7FFFFFFFFFFFFFFF) == 0)
            return (uint)(((d >> 32) & 0xC0000000) | ((d >> 29) & 0x3FFFFFFF));
        if (exp >= 874)
        {
            // Denormalised single: shift the implicit 1 and the fraction right.
            ulong frac = (d & 0xFFFFFFFFFFFFFUL) | (1UL << 52);
            int shift = 897 - exp;
            return (uint)(((d >> 63) << 31) | ((frac >> (29 + shift)) & 0x7FFFFF));
        }
        return (uint)((d >> 32) & 0x80000000); // below the single denormal range: undefined; ±0 as QEMU
    }

    // ---------------------------------------------------------------------------------------------------------------
    // VMX operations (primary 4).

    private void Vmx(Op op, uint i)
    {
        if (!VectorAvailable()) return;
        int vt = (int)(i >> 21) & 31, va = (int)(i >> 16) & 31, vb = (int)(i >> 11) & 31, vc = (int)(i >> 6) & 31;
        var a = Vr(va);
        var b = Vr(vb);
        Vector128<byte> r;
        switch (op)
        {
            case Op.Vaddubm: r = a + b; break;
            case Op.Vadduhm: r = (a.AsUInt16() + b.AsUInt16()).AsByte(); break;
            case Op.Vadduwm: r = (a.AsUInt32() + b.AsUInt32()).AsByte(); break;
            case Op.Vaddudm: r = (a.AsUInt64() + b.AsUInt64()).AsByte(); break;
            case Op.Vadduqm: r = FromUInt128(ToUInt128(a) + ToUInt128(b)); break;
            case Op.Vsubuqm: r = FromUInt128(ToUInt128(a) - ToUInt128(b)); break;
            case Op.Vaddcuw:
                r = Vector128.ConditionalSelect(Vector128.LessThan((a.AsUInt32() + b.AsUInt32()), a.AsUInt32()), Vector128<uint>.One, Vector128<uint>.Zero).AsByte();
                break;
            case Op.Vsububm: r = a - b; break;
            case Op.Vsubuhm: r = (a.AsUInt16() - b.AsUInt16()).AsByte(); break;
            case Op.Vsubuwm: r = (a.AsUInt32() - b.AsUInt32()).AsByte(); break;
            case Op.Vsubudm: r = (a.AsUInt64() - b.AsUInt64()).AsByte(); break;
            case Op.Vaddubs: r = Saturate<byte>(a, b, static (x, y) => (long)x + y, 0, 255); break;
            case Op.Vadduhs: r = Saturate<ushort>(a, b, static (x, y) => (long)x + y, 0, ushort.MaxValue); break;
            case Op.Vadduws: r = Saturate<uint>(a, b, static (x, y) => (long)x + y, 0, uint.MaxValue); break;
            case Op.Vsububs: r = Saturate<byte>(a, b, static (x, y) => (long)x - y, 0, 255); break;
            case Op.Vsubuhs: r = Saturate<ushort>(a, b, static (x, y) => (long)x - y, 0, ushort.MaxValue); break;
            case Op.Vsubuws: r = Saturate<uint>(a, b, static (x, y) => (long)x - y, 0, uint.MaxValue); break;
            case Op.Vmaxub: r = Vector128.Max(a, b); break;
            case Op.Vmaxuh: r = Vector128.Max(a.AsUInt16(), b.AsUInt16()).AsByte(); break;
            case Op.Vmaxuw: r = Vector128.Max(a.AsUInt32(), b.AsUInt32()).AsByte(); break;
            case Op.Vmaxud: r = Vector128.Max(a.AsUInt64(), b.AsUInt64()).AsByte(); break;
            case Op.Vmaxsb: r = Vector128.Max(a.AsSByte(), b.AsSByte()).AsByte(); break;
            case Op.Vmaxsh: r = Vector128.Max(a.AsInt16(), b.AsInt16()).AsByte(); break;
            case Op.Vmaxsw: r = Vector128.Max(a.AsInt32(), b.AsInt32()).AsByte(); break;
            case Op.Vmaxsd: r = Vector128.Max(a.AsInt64(), b.AsInt64()).AsByte(); break;
            case Op.Vminub: r = Vector128.Min(a, b); break;
            case Op.Vminuh: r = Vector128.Min(a.AsUInt16(), b.AsUInt16()).AsByte(); break;
            case Op.Vminuw: r = Vector128.Min(a.AsUInt32(), b.AsUInt32()).AsByte(); break;
            case Op.Vminud: r = Vector128.Min(a.AsUInt64(), b.AsUInt64()).AsByte(); break;
            case Op.Vminsb: r = Vector128.Min(a.AsSByte(), b.AsSByte()).AsByte(); break;
            case Op.Vminsh: r = Vector128.Min(a.AsInt16(), b.AsInt16()).AsByte(); break;
            case Op.Vminsw: r = Vector128.Min(a.AsInt32(), b.AsInt32()).AsByte(); break;
            case Op.Vminsd: r = Vector128.Min(a.AsInt64(), b.AsInt64()).AsByte(); break;
            case Op.Vrlb: r = PerElement<byte>(a, b, static (x, y) => (byte)(x << (y & 7) | x >> (8 - (y & 7)))); break;
            case Op.Vrlh: r = PerElement<ushort>(a, b, static (x, y) => (ushort)(x << (y & 15) | x >> (16 - (y & 15)))); break;
            case Op.Vrlw: r = PerElement<uint>(a, b, static (x, y) => BitOperations.RotateLeft(x, (int)(y & 31))); break;
            case Op.Vrld: r = PerElement<ulong>(a, b, static (x, y) => BitOperations.RotateLeft(x, (int)(y & 63))); break;
            case Op.Vslb: r = PerElement<byte>(a, b, static (x, y) => (byte)(x << (y & 7))); break;
            case Op.Vslh: r = PerElement<ushort>(a, b, static (x, y) => (ushort)(x << (y & 15))); break;
            case Op.Vslw: r = PerElement<uint>(a, b, static (x, y) => x << (int)(y & 31)); break;
            case Op.Vsld: r = PerElement<ulong>(a, b, static (x, y) => x << (int)(y & 63)); break;
            case Op.Vsrb: r = PerElement<byte>(a, b, static (x, y) => (byte)(x >> (y & 7))); break;
            case Op.Vsrh: r = PerElement<ushort>(a, b, static (x, y) => (ushort)(x >> (y & 15))); break;
            case Op.Vsrw: r = PerElement<uint>(a, b, static (x, y) => x >> (int)(y & 31)); break;
            case Op.Vsrd: r = PerElement<ulong>(a, b, static (x, y) => x >> (int)(y & 63)); break;
            case Op.Vsrab: r = PerElement<byte>(a, b, static (x, y) => (byte)((sbyte)x >> (y & 7))); break;
            case Op.Vsrah: r = PerElement<ushort>(a, b, static (x, y) => (ushort)((short)x >> (y & 15))); break;
            case Op.Vsraw: r = PerElement<uint>(a, b, static (x, y) => (uint)((int)x >> (int)(y & 31))); break;
            case Op.Vsrad: r = PerElement<ulong>(a, b, static (x, y) => (ulong)((long)x >> (int)(y & 63))); break;
            // vsl/vsr: the whole register by VRB[125:127] bits; vslo/vsro by VRB[121:124] octets (ISA byte 15 = host byte 0).
            case Op.Vsl: r = FromUInt128(ToUInt128(a) << (b.GetElement(0) & 7)); break;
            case Op.Vsr: r = FromUInt128(ToUInt128(a) >> (b.GetElement(0) & 7)); break;
            case Op.Vslo: r = FromUInt128(ToUInt128(a) << (8 * ((b.GetElement(0) >> 3) & 15))); break;
            case Op.Vsro: r = FromUInt128(ToUInt128(a) >> (8 * ((b.GetElement(0) >> 3) & 15))); break;
            case Op.Vand: r = a & b; break;
            case Op.Vandc: r = a & ~b; break;
            case Op.Vor: r = a | b; break;
            case Op.Vxor: r = a ^ b; break;
            case Op.Vnor: r = ~(a | b); break;
            case Op.Vorc: r = a | ~b; break;
            case Op.Vnand: r = ~(a & b); break;
            case Op.Veqv: r = ~(a ^ b); break;
            case Op.Vmrghb or Op.Vmrglb: r = Merge(a, b, 1, op == Op.Vmrglb); break;
            case Op.Vmrghh or Op.Vmrglh: r = Merge(a, b, 2, op == Op.Vmrglh); break;
            case Op.Vmrghw or Op.Vmrglw: r = Merge(a, b, 4, op == Op.Vmrglw); break;
            case Op.Vmrgew or Op.Vmrgow:
            {
                // vmrgew: words A0 B0 A2 B2; vmrgow: A1 B1 A3 B3.
                int o = op == Op.Vmrgow ? 1 : 0;
                var ua = a.AsUInt32(); var ub = b.AsUInt32();
                // ISA word k is host element 3-k.
                r = Vector128.Create(ub.GetElement(1 - o), ua.GetElement(1 - o), ub.GetElement(3 - o), ua.GetElement(3 - o)).AsByte();
                break;
            }
            case Op.Vspltb: r = Vector128.Create(b.GetElement(15 - (va & 15))); break;
            case Op.Vsplth: r = Vector128.Create(b.AsUInt16().GetElement(7 - (va & 7))).AsByte(); break;
            case Op.Vspltw: r = Vector128.Create(b.AsUInt32().GetElement(3 - (va & 3))).AsByte(); break;
            case Op.Vspltisb: r = Vector128.Create((sbyte)((sbyte)(va << 3) >> 3)).AsByte(); break;
            case Op.Vspltish: r = Vector128.Create((short)((sbyte)(va << 3) >> 3)).AsByte(); break;
            case Op.Vspltisw: r = Vector128.Create((int)((sbyte)(va << 3) >> 3)).AsByte(); break;
            case Op.Vpkuhum: r = Pack(a, b, 2); break;
            case Op.Vpkuwum: r = Pack(a, b, 4); break;
            case Op.Vpkudum: r = Pack(a, b, 8); break;
            case Op.Vgbbd: r = GatherBitsByDoubleword(b); break;
            case Op.Vbpermq:
            {
                // The bit indices are VRB's bytes, the bits VRA's (Book I, Vector Bit Permute Quadword; glibc's strspn relies on it).
                Span<byte> idx = stackalloc byte[16];
                IsaBytes(b, idx);
                UInt128 src = ToUInt128(a);
                ulong perm = 0;
                for (int k = 0; k < 16; k++)
                    if (idx[k] < 128 && ((src >> (127 - idx[k])) & 1) != 0) perm |= 1UL << (15 - k);
                r = Vector128.Create(0UL, perm).AsByte();
                break;
            }
            case Op.Vpopcntb: r = PerElement<byte>(b, b, static (x, _) => (byte)BitOperations.PopCount(x)); break;
            case Op.Vpopcnth: r = PerElement<ushort>(b, b, static (x, _) => (ushort)BitOperations.PopCount(x)); break;
            case Op.Vpopcntw: r = PerElement<uint>(b, b, static (x, _) => (uint)BitOperations.PopCount(x)); break;
            case Op.Vpopcntd: r = PerElement<ulong>(b, b, static (x, _) => (ulong)BitOperations.PopCount(x)); break;
            case Op.Vclzb: r = PerElement<byte>(b, b, static (x, _) => (byte)(BitOperations.LeadingZeroCount((uint)x) - 24)); break;
            case Op.Vclzh: r = PerElement<ushort>(b, b, static (x, _) => (ushort)(BitOperations.LeadingZeroCount((uint)x) - 16)); break;
            case Op.Vclzw: r = PerElement<uint>(b, b, static (x, _) => (uint)BitOperations.LeadingZeroCount(x)); break;
            case Op.Vclzd: r = PerElement<ulong>(b, b, static (x, _) => (ulong)BitOperations.LeadingZeroCount(x)); break;
            case Op.Mfvscr: r = Vector128.Create(Vscr, 0u, 0u, 0u).AsByte(); break;
            case Op.Mtvscr: Vscr = b.AsUInt32().GetElement(0); return; // word 3; reserved bits kept, as QEMU
            case Op.Vsumsws:
            {
                long sum = b.AsInt32().GetElement(0);
                for (int k = 0; k < 4; k++) sum += a.AsInt32().GetElement(k);
                int s = (int)Math.Clamp(sum, int.MinValue, int.MaxValue);
                if (s != sum) Vscr |= 1;
                r = Vector128.Create(s, 0, 0, 0).AsByte();
                break;
            }
            case Op.Vextublx or Op.Vextubrx or Op.Vextuhlx or Op.Vextuhrx or Op.Vextuwlx or Op.Vextuwrx:
            {
                int size = op is Op.Vextublx or Op.Vextubrx ? 1 : op is Op.Vextuhlx or Op.Vextuhrx ? 2 : 4;
                int index = (int)(Gpr[va] & 15);
                bool right = op is Op.Vextubrx or Op.Vextuhrx or Op.Vextuwrx;
                int first = right ? 16 - size - index : index;
                Span<byte> isa = stackalloc byte[32];
                IsaBytes(b, isa);
                ulong v = 0;
                for (int k = 0; k < size; k++) v = v << 8 | isa[(first + k) & 31];
                Gpr[vt] = first < 0 ? 0 : v;
                return;
            }
            case Op.Vclzlsbb or Op.Vctzlsbb:
            {
                Span<byte> isa = stackalloc byte[16];
                IsaBytes(b, isa);
                int n = 0;
                if (op == Op.Vclzlsbb) { while (n < 16 && (isa[n] & 1) == 0) n++; }
                else { while (n < 16 && (isa[15 - n] & 1) == 0) n++; }
                Gpr[vt] = (ulong)n;
                return;
            }
            case Op.Vcmpequb or Op.Vcmpequh or Op.Vcmpequw or Op.Vcmpequd or Op.Vcmpgtub or Op.Vcmpgtuh or Op.Vcmpgtuw or Op.Vcmpgtud
                or Op.Vcmpgtsb or Op.Vcmpgtsh or Op.Vcmpgtsw or Op.Vcmpgtsd or Op.Vcmpneb or Op.Vcmpneh or Op.Vcmpnew
                or Op.Vcmpnezb or Op.Vcmpnezh or Op.Vcmpnezw:
                r = Compare(op, a, b);
                if ((i & 0x400) != 0)
                {
                    // Rc (bit 21): CR6 = all true || 0 || all false || 0 (Book I §6.9.3).
                    uint all = r == Vector128<byte>.AllBitsSet ? 8u : 0u, none = r == Vector128<byte>.Zero ? 2u : 0u;
                    SetCrField(6, all | none);
                }
                break;
            case Op.Vsel: r = (Vr(vc) & b) | (~Vr(vc) & a); break;
            case Op.Vperm or Op.Vpermr: r = Permute(a, b, Vr(vc), op == Op.Vpermr); break;
            case Op.Vsldoi:
            {
                int sh = vc & 15;
                Span<byte> isa = stackalloc byte[32];
                IsaBytes(a, isa);
                IsaBytes(b, isa[16..]);
                r = FromIsaBytes(isa.Slice(sh, 16));
                break;
            }
            default: RaiseIllegal(i); return;
        }
        Vr(vt) = r;
    }

    private static UInt128 ToUInt128(Vector128<byte> v) => new(v.AsUInt64().GetElement(1), v.AsUInt64().GetElement(0));
    private static Vector128<byte> FromUInt128(UInt128 u) => Vector128.Create((ulong)u, (ulong)(u >> 64)).AsByte();

    private static Vector128<byte> PerElement<T>(Vector128<byte> a, Vector128<byte> b, Func<T, T, T> f) where T : unmanaged
    {
        var x = a.As<byte, T>();
        var y = b.As<byte, T>();
        Span<T> r = stackalloc T[Vector128<T>.Count];
        for (int k = 0; k < r.Length; k++) r[k] = f(x.GetElement(k), y.GetElement(k));
        return Vector128.Create((ReadOnlySpan<T>)r).AsByte();
    }

    private Vector128<byte> Saturate<T>(Vector128<byte> a, Vector128<byte> b, Func<T, T, long> f, long min, long max)
        where T : unmanaged, INumber<T>
    {
        var x = a.As<byte, T>();
        var y = b.As<byte, T>();
        Span<T> r = stackalloc T[Vector128<T>.Count];
        for (int k = 0; k < r.Length; k++)
        {
            long v = f(x.GetElement(k), y.GetElement(k));
            if (v < min || v > max) Vscr |= 1; // VSCR[SAT]
            r[k] = T.CreateTruncating(Math.Clamp(v, min, max));
        }
        return Vector128.Create((ReadOnlySpan<T>)r).AsByte();
    }

    /// <summary>vmrgh*/vmrgl*: elements of A and B interleaved, from the high (ISA elements 0…) or the low half.</summary>
    private static Vector128<byte> Merge(Vector128<byte> a, Vector128<byte> b, int size, bool low)
    {
        Span<byte> x = stackalloc byte[16], y = stackalloc byte[16], r = stackalloc byte[16];
        IsaBytes(a, x);
        IsaBytes(b, y);
        int half = low ? 8 : 0;
        for (int e = 0; e < 8 / size; e++)
        {
            x.Slice(half + e * size, size).CopyTo(r[(2 * e * size)..]);
            y.Slice(half + e * size, size).CopyTo(r[((2 * e + 1) * size)..]);
        }
        return FromIsaBytes(r);
    }

    /// <summary>vpku*um: the low half of each element of A then B, modulo.</summary>
    private static Vector128<byte> Pack(Vector128<byte> a, Vector128<byte> b, int size)
    {
        Span<byte> x = stackalloc byte[32], r = stackalloc byte[16];
        IsaBytes(a, x);
        IsaBytes(b, x[16..]);
        int half = size / 2;
        for (int e = 0; e < 32 / size; e++) x.Slice(e * size + half, half).CopyTo(r[(e * half)..]);
        return FromIsaBytes(r);
    }

    /// <summary>
    /// vperm (vpermr, xxperm, xxpermr): result byte k (ISA order) is byte sel[k] &amp; 31 of a ‖ b (31 − that for the reversed
    /// forms). In the registers' host order (ISA byte k is host byte 15 − k) that is, for each host byte h with selector s =
    /// c[h] (reversed: s ^ 31): byte 15 − (s &amp; 15) of b when s &amp; 16, else of a — two byte shuffles and a select.
    /// </summary>
    private static Vector128<byte> Permute(Vector128<byte> a, Vector128<byte> b, Vector128<byte> c, bool reversed)
    {
        if (reversed) c ^= Vector128.Create((byte)31);
        var index = (c & Vector128.Create((byte)15)) ^ Vector128.Create((byte)15);
        var fromB = Vector128.Equals(c & Vector128.Create((byte)16), Vector128.Create((byte)16));
        return Vector128.ConditionalSelect(fromB, Vector128.Shuffle(b, index), Vector128.Shuffle(a, index));
    }

    /// <summary>vgbbd: per doubleword, the 8×8 bit matrix transposed (result byte j bit k = source byte k bit j).</summary>
    private static Vector128<byte> GatherBitsByDoubleword(Vector128<byte> b)
    {
        Span<byte> x = stackalloc byte[16], r = stackalloc byte[16];
        IsaBytes(b, x);
        r.Clear();
        for (int d = 0; d < 16; d += 8)
            for (int j = 0; j < 8; j++)
                for (int k = 0; k < 8; k++)
                    if (((x[d + k] >> (7 - j)) & 1) != 0) r[d + j] |= (byte)(0x80 >> k);
        return FromIsaBytes(r);
    }

    private static Vector128<byte> Compare(Op op, Vector128<byte> a, Vector128<byte> b) => op switch
    {
        Op.Vcmpequb => Vector128.Equals(a, b),
        Op.Vcmpequh => Vector128.Equals(a.AsUInt16(), b.AsUInt16()).AsByte(),
        Op.Vcmpequw => Vector128.Equals(a.AsUInt32(), b.AsUInt32()).AsByte(),
        Op.Vcmpequd => Vector128.Equals(a.AsUInt64(), b.AsUInt64()).AsByte(),
        Op.Vcmpgtub => Vector128.GreaterThan(a, b),
        Op.Vcmpgtuh => Vector128.GreaterThan(a.AsUInt16(), b.AsUInt16()).AsByte(),
        Op.Vcmpgtuw => Vector128.GreaterThan(a.AsUInt32(), b.AsUInt32()).AsByte(),
        Op.Vcmpgtud => Vector128.GreaterThan(a.AsUInt64(), b.AsUInt64()).AsByte(),
        Op.Vcmpgtsb => Vector128.GreaterThan(a.AsSByte(), b.AsSByte()).AsByte(),
        Op.Vcmpgtsh => Vector128.GreaterThan(a.AsInt16(), b.AsInt16()).AsByte(),
        Op.Vcmpgtsw => Vector128.GreaterThan(a.AsInt32(), b.AsInt32()).AsByte(),
        Op.Vcmpgtsd => Vector128.GreaterThan(a.AsInt64(), b.AsInt64()).AsByte(),
        Op.Vcmpneb => ~Vector128.Equals(a, b),
        Op.Vcmpneh => (~Vector128.Equals(a.AsUInt16(), b.AsUInt16())).AsByte(),
        Op.Vcmpnew => (~Vector128.Equals(a.AsUInt32(), b.AsUInt32())).AsByte(),
        Op.Vcmpnezb => ~Vector128.Equals(a, b) | Vector128.Equals(a, Vector128<byte>.Zero) | Vector128.Equals(b, Vector128<byte>.Zero),
        Op.Vcmpnezh => (~Vector128.Equals(a.AsUInt16(), b.AsUInt16()) | Vector128.Equals(a.AsUInt16(), Vector128<ushort>.Zero)
            | Vector128.Equals(b.AsUInt16(), Vector128<ushort>.Zero)).AsByte(),
        _ => (~Vector128.Equals(a.AsUInt32(), b.AsUInt32()) | Vector128.Equals(a.AsUInt32(), Vector128<uint>.Zero)
            | Vector128.Equals(b.AsUInt32(), Vector128<uint>.Zero)).AsByte(),
    };

    // ---------------------------------------------------------------------------------------------------------------
    // VSX operations (primary 60) and the DS/DQ-form loads and stores (57, 61).

    private static int Xa(uint i) => (int)((i >> 16) & 31) | (int)((i & 4) << 3);
    private static int Xb(uint i) => (int)((i >> 11) & 31) | (int)((i & 2) << 4);
    private static int Xc(uint i) => (int)((i >> 6) & 31) | (int)((i & 8) << 2);

    private void VsxOp(Op op, uint i)
    {
        switch (op)
        {
            case Op.Lxsd or Op.Lxssp or Op.Stxsd or Op.Stxssp:
            {
                if (!VectorAvailable()) return;
                var ds = new FormDS(i);
                int vrt = 32 + ds.RT;
                ulong ea = RA0(ds.RA) + (ulong)ds.DS;
                switch (op)
                {
                    case Op.Lxsd: { if (LoadScalar(ea, 8, out ulong v)) { Dw0(vrt) = v; Dw1(vrt) = 0; } return; }
                    case Op.Lxssp: { if (LoadScalar(ea, 4, out ulong v)) { Dw0(vrt) = SingleToDouble((uint)v); Dw1(vrt) = 0; } return; }
                    case Op.Stxsd: StoreScalar(ea, 8, Dw0(vrt)); return;
                    default: StoreScalar(ea, 4, DoubleToSingleBits(Dw0(vrt))); return;
                }
            }
            case Op.Lxv or Op.Stxv:
            {
                if (!VsxAvailable()) return;
                int t = (int)((i >> 21) & 31) | (int)((i & 8) << 2);
                ulong ea = RA0((int)(i >> 16) & 31) + (ulong)(long)(short)(i & 0xFFF0);
                Span<byte> b = stackalloc byte[16];
                if (op == Op.Lxv)
                {
                    if (ReadStorage(ea, b)) VsrRef(t) = QuadFromStorage(b);
                }
                else
                {
                    QuadToStorage(VsrRef(t), b);
                    WriteStorage(ea, b);
                }
                return;
            }
        }
        if (!VsxAvailable()) return;
        int xt = Xt(i), xa = Xa(i), xb = Xb(i);
        var a = VsrRef(xa);
        var bv = VsrRef(xb);
        Vector128<byte> r;
        switch (op)
        {
            case Op.Xxland: r = a & bv; break;
            case Op.Xxlandc: r = a & ~bv; break;
            case Op.Xxlor: r = a | bv; break;
            case Op.Xxlxor: r = a ^ bv; break;
            case Op.Xxlnor: r = ~(a | bv); break;
            case Op.Xxlorc: r = a | ~bv; break;
            case Op.Xxlnand: r = ~(a & bv); break;
            case Op.Xxleqv: r = ~(a ^ bv); break;
            case Op.Xxmrghw or Op.Xxmrglw: r = Merge(a, bv, 4, op == Op.Xxmrglw); break;
            case Op.Xxpermdi:
            {
                int dm = (int)(i >> 8) & 3;
                ulong d0 = (dm & 2) != 0 ? a.AsUInt64().GetElement(0) : a.AsUInt64().GetElement(1);
                ulong d1 = (dm & 1) != 0 ? bv.AsUInt64().GetElement(0) : bv.AsUInt64().GetElement(1);
                r = Vector128.Create(d1, d0).AsByte();
                break;
            }
            case Op.Xxsldwi:
            {
                int shw = (int)(i >> 8) & 3;
                Span<byte> isa = stackalloc byte[32];
                IsaBytes(a, isa);
                IsaBytes(bv, isa[16..]);
                r = FromIsaBytes(isa.Slice(4 * shw, 16));
                break;
            }
            case Op.Xxperm or Op.Xxpermr: r = Permute(a, VsrRef(xt), bv, op == Op.Xxpermr); break;
            case Op.Xxspltw: r = Vector128.Create(bv.AsUInt32().GetElement(3 - (int)((i >> 16) & 3))).AsByte(); break;
            case Op.Xxspltib: r = Vector128.Create((byte)(i >> 11)); break;
            case Op.Xxsel: { var c = VsrRef(Xc(i)); r = (a & ~c) | (bv & c); break; }
            case Op.Xxbrh: r = PerElement<ushort>(bv, bv, static (x, _) => BinaryPrimitives.ReverseEndianness(x)); break;
            case Op.Xxbrw: r = PerElement<uint>(bv, bv, static (x, _) => BinaryPrimitives.ReverseEndianness(x)); break;
            case Op.Xxbrd: r = PerElement<ulong>(bv, bv, static (x, _) => BinaryPrimitives.ReverseEndianness(x)); break;
            case Op.Xxbrq: r = Reverse(bv); break;
            default:
                VsxFloat(op, i, xt, xa, xb);
                return;
        }
        VsrRef(xt) = r;
    }

    private void GetVectorRegisters(Hypervisor.VcpuState s)
    {
        for (int n = 0; n < 32; n++)
        {
            s.Fpr[n] = Dw0(n);
            s.VsrLow[n] = Dw1(n);
            s.Vr[2 * n] = Dw0(32 + n);
            s.Vr[2 * n + 1] = Dw1(32 + n);
        }
        s.Vscr = Vscr;
        s.Vrsave = Vrsave;
    }

    private void SetVectorRegisters(Hypervisor.VcpuState s)
    {
        for (int n = 0; n < 32; n++)
        {
            Dw0(n) = s.Fpr[n];
            Dw1(n) = s.VsrLow[n];
            Dw0(32 + n) = s.Vr[2 * n];
            Dw1(32 + n) = s.Vr[2 * n + 1];
        }
        Vscr = s.Vscr;
        Vrsave = s.Vrsave;
    }
}
