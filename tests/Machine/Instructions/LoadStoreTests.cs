using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Loads and stores in both byte orders (Power ISA v3.0 Book I §3.3.2–3.3.7; MSR[LE] selects the order):
/// D, DS and X forms, update forms (RA ← EA), sign-extending lha/lwa, byte-reversed forms, lmw/stmw, dcbz.
/// Expected values are assembled in the test from the bytes in memory and the byte order.
/// </summary>
public class LoadStoreTests
{
    private const ulong Base = InstructionBench.Data + 0x100;
    private const ulong Ea = Base + 8;
    private const ulong StoredValue = 0x1122334455667788;

    private static readonly byte[] Negative = [0x81, 0x92, 0xA3, 0xB4, 0xC5, 0xD6, 0xE7, 0xF8];
    private static readonly byte[] Positive = [0x71, 0x62, 0x53, 0x44, 0x35, 0x26, 0x17, 0x08];

    private static readonly (string Insn, int Size, bool Signed, bool Update)[] Loads =
    [
        ("lbz 3,8(4)", 1, false, false), ("lbzu 3,8(4)", 1, false, true), ("lbzx 3,4,5", 1, false, false), ("lbzux 3,4,5", 1, false, true),
        ("lhz 3,8(4)", 2, false, false), ("lhzu 3,8(4)", 2, false, true), ("lhzx 3,4,5", 2, false, false), ("lhzux 3,4,5", 2, false, true),
        ("lha 3,8(4)", 2, true, false), ("lhau 3,8(4)", 2, true, true), ("lhax 3,4,5", 2, true, false), ("lhaux 3,4,5", 2, true, true),
        ("lwz 3,8(4)", 4, false, false), ("lwzu 3,8(4)", 4, false, true), ("lwzx 3,4,5", 4, false, false), ("lwzux 3,4,5", 4, false, true),
        ("lwa 3,8(4)", 4, true, false), ("lwax 3,4,5", 4, true, false), ("lwaux 3,4,5", 4, true, true),
        ("ld 3,8(4)", 8, false, false), ("ldu 3,8(4)", 8, false, true), ("ldx 3,4,5", 8, false, false), ("ldux 3,4,5", 8, false, true),
    ];

    private static readonly (string Insn, int Size, bool Update)[] Stores =
    [
        ("stb 6,8(4)", 1, false), ("stbu 6,8(4)", 1, true), ("stbx 6,4,5", 1, false), ("stbux 6,4,5", 1, true),
        ("sth 6,8(4)", 2, false), ("sthu 6,8(4)", 2, true), ("sthx 6,4,5", 2, false), ("sthux 6,4,5", 2, true),
        ("stw 6,8(4)", 4, false), ("stwu 6,8(4)", 4, true), ("stwx 6,4,5", 4, false), ("stwux 6,4,5", 4, true),
        ("std 6,8(4)", 8, false), ("stdu 6,8(4)", 8, true), ("stdx 6,4,5", 8, false), ("stdux 6,4,5", 8, true),
    ];

    // GNU as refuses lmw/stmw when assembling little-endian, so both are written as words (D-form: 46/47, RT=29, RA=4, D=8).
    private const string Lmw = ".long 0xBBA40008 # lmw 29,8(4)";
    private const string Stmw = ".long 0xBFA40008 # stmw 29,8(4)";

    private static readonly string[] ByteReversed = ["lhbrx 3,4,5", "lwbrx 3,4,5", "ldbrx 3,4,5", "sthbrx 6,4,5", "stwbrx 6,4,5", "stdbrx 6,4,5"];

    private static readonly InstructionBench Bench = new(
        Loads.Select(l => l.Insn).Concat(Stores.Select(s => s.Insn)).Concat(ByteReversed).Concat(
        [
            "lbz 3,0x100(0)", "lwzx 3,0,5", "stw 6,0x100(0)", "ld 3,-8(4)", "lwa 3,-4(4)", "stdu 6,-16(4)",
            Lmw, Stmw, "dcbz 4,5", "dcbz 0,5",
        ]));

    public static IEnumerable<object[]> LoadCases() =>
        from l in Loads from le in new[] { true, false } from neg in new[] { true, false }
        select new object[] { l.Insn, l.Size, l.Signed, l.Update, le, neg };

    public static IEnumerable<object[]> StoreCases() =>
        from s in Stores from le in new[] { true, false } select new object[] { s.Insn, s.Size, s.Update, le };

    /// <summary>The value of <paramref name="size"/> bytes in the given byte order, zero-extended.</summary>
    private static ulong Assemble(ReadOnlySpan<byte> bytes, int size, bool littleEndian)
    {
        ulong v = 0;
        for (int i = 0; i < size; i++)
        {
            int k = littleEndian ? size - 1 - i : i; // most significant byte first
            v = (v << 8) | bytes[k];
        }
        return v;
    }

    private static ulong SignExtend(ulong v, int size) => size switch
    {
        1 => v,
        2 => (ulong)(long)(short)(ushort)v,
        4 => (ulong)(long)(int)(uint)v,
        _ => v,
    };

    private static void Fill(TestMachine m, ulong ra, byte value, int length) => m.Vm.WriteMemory(ra, Enumerable.Repeat(value, length).ToArray());

    [Theory]
    [MemberData(nameof(LoadCases))]
    public void Loads_read_memory_in_the_MSR_LE_byte_order_and_extend(string insn, int size, bool signed, bool update, bool le, bool negative)
    {
        byte[] pattern = negative ? Negative : Positive;
        ulong expected = Assemble(pattern, size, le);
        if (signed) expected = SignExtend(expected, size);

        var r = Bench.Execute(insn, s => { s.Gpr[3] = 0xDEADBEEFDEADBEEF; s.Gpr[4] = Base; s.Gpr[5] = 8; },
            le, m => m.Vm.WriteMemory(Ea, pattern));

        Assert.Equal(expected, r.Gpr(3));
        Assert.Equal(update ? Ea : Base, r.Gpr(4));
        Assert.Equal(r.Address + 4, r.After.Nip);
    }

    [Theory]
    [MemberData(nameof(StoreCases))]
    public void Stores_write_the_low_bytes_of_RS_in_the_MSR_LE_byte_order(string insn, int size, bool update, bool le)
    {
        var expected = new byte[16];
        Array.Fill(expected, (byte)0xEE);
        for (int i = 0; i < size; i++)
            expected[4 + i] = (byte)(StoredValue >> (8 * (le ? i : size - 1 - i)));

        var r = Bench.Execute(insn, s => { s.Gpr[4] = Base; s.Gpr[5] = 8; s.Gpr[6] = StoredValue; },
            le, m => Fill(m, Ea - 4, 0xEE, 16));

        Assert.Equal(expected, r.Bytes(Ea - 4, 16));
        Assert.Equal(update ? Ea : Base, r.Gpr(4));
    }

    [Theory]
    [InlineData("lbz 3,0x100(0)", 0x100UL)]
    [InlineData("lwzx 3,0,5", Ea)]
    public void Loads_with_RA_0_use_zero_as_the_base(string insn, ulong ea)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[0] = 0x1000; s.Gpr[5] = Ea; },
            prepare: m => m.Vm.WriteMemory(ea, Negative));
        Assert.Equal(Assemble(Negative, insn.StartsWith("lbz") ? 1 : 4, true), r.Gpr(3));
    }

    [Fact]
    public void Store_with_RA_0_uses_zero_as_the_base()
    {
        var r = Bench.Execute("stw 6,0x100(0)", s => { s.Gpr[0] = 0x1000; s.Gpr[6] = StoredValue; });
        Assert.Equal(new byte[] { 0x88, 0x77, 0x66, 0x55 }, r.Bytes(0x100, 4));
    }

    [Theory]
    [InlineData("ld 3,-8(4)", 8, false)]
    [InlineData("lwa 3,-4(4)", 4, true)]
    public void Negative_displacements_address_below_RA(string insn, int size, bool signed)
    {
        ulong ea = Base - (ulong)size;
        var r = Bench.Execute(insn, s => s.Gpr[4] = Base, prepare: m => m.Vm.WriteMemory(ea, Negative));
        ulong expected = Assemble(Negative, size, true);
        Assert.Equal(signed ? SignExtend(expected, size) : expected, r.Gpr(3));
    }

    [Fact]
    public void Stdu_with_negative_displacement_stores_below_RA_and_updates_it()
    {
        var r = Bench.Execute("stdu 6,-16(4)", s => { s.Gpr[4] = Base; s.Gpr[6] = StoredValue; });
        Assert.Equal(StoredValue, r.Machine.ReadU64(Base - 16));
        Assert.Equal(Base - 16, r.Gpr(4));
    }

    [Theory]
    [InlineData("lhbrx 3,4,5", 2, true)] [InlineData("lhbrx 3,4,5", 2, false)]
    [InlineData("lwbrx 3,4,5", 4, true)] [InlineData("lwbrx 3,4,5", 4, false)]
    [InlineData("ldbrx 3,4,5", 8, true)] [InlineData("ldbrx 3,4,5", 8, false)]
    public void Byte_reversed_loads_read_in_the_order_opposite_to_MSR_LE_and_zero_extend(string insn, int size, bool le)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[3] = ulong.MaxValue; s.Gpr[4] = Base; s.Gpr[5] = 8; },
            le, m => m.Vm.WriteMemory(Ea, Negative));
        Assert.Equal(Assemble(Negative, size, !le), r.Gpr(3));
        Assert.Equal(Base, r.Gpr(4));
    }

    [Theory]
    [InlineData("sthbrx 6,4,5", 2, true)] [InlineData("sthbrx 6,4,5", 2, false)]
    [InlineData("stwbrx 6,4,5", 4, true)] [InlineData("stwbrx 6,4,5", 4, false)]
    [InlineData("stdbrx 6,4,5", 8, true)] [InlineData("stdbrx 6,4,5", 8, false)]
    public void Byte_reversed_stores_write_in_the_order_opposite_to_MSR_LE(string insn, int size, bool le)
    {
        var expected = new byte[16];
        Array.Fill(expected, (byte)0xEE);
        for (int i = 0; i < size; i++)
            expected[4 + i] = (byte)(StoredValue >> (8 * (le ? size - 1 - i : i)));

        var r = Bench.Execute(insn, s => { s.Gpr[4] = Base; s.Gpr[5] = 8; s.Gpr[6] = StoredValue; },
            le, m => Fill(m, Ea - 4, 0xEE, 16));
        Assert.Equal(expected, r.Bytes(Ea - 4, 16));
    }

    [Fact]
    public void Lmw_in_big_endian_mode_loads_words_into_RT_through_r31()
    {
        byte[] words = [0x81, 0x92, 0xA3, 0xB4, 0x01, 0x02, 0x03, 0x04, 0xF0, 0xE0, 0xD0, 0xC0];
        var r = Bench.Execute(Lmw, s => { s.Gpr[4] = Base; s.Gpr[28] = 0x2828; s.Gpr[29] = s.Gpr[30] = s.Gpr[31] = ulong.MaxValue; },
            littleEndian: false, prepare: m => m.Vm.WriteMemory(Ea, words));
        Assert.Equal(0x8192A3B4UL, r.Gpr(29));
        Assert.Equal(0x01020304UL, r.Gpr(30));
        Assert.Equal(0xF0E0D0C0UL, r.Gpr(31));
        Assert.Equal(0x2828UL, r.Gpr(28));
    }

    [Fact]
    public void Stmw_in_big_endian_mode_stores_the_low_words_of_RS_through_r31()
    {
        var r = Bench.Execute(Stmw, s => { s.Gpr[4] = Base; s.Gpr[29] = 0xAAAAAAAA8192A3B4; s.Gpr[30] = 0x01020304; s.Gpr[31] = 0xFFFFFFFFF0E0D0C0; },
            littleEndian: false, prepare: m => Fill(m, Ea, 0xEE, 16));
        Assert.Equal(new byte[] { 0x81, 0x92, 0xA3, 0xB4, 0x01, 0x02, 0x03, 0x04, 0xF0, 0xE0, 0xD0, 0xC0, 0xEE, 0xEE, 0xEE, 0xEE }, r.Bytes(Ea, 16));
    }

    [Theory]
    [InlineData(Lmw)]
    [InlineData(Stmw)]
    public void Lmw_and_stmw_in_little_endian_mode_take_an_alignment_interrupt(string insn)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = Base; s.Gpr[29] = 0x29; },
            prepare: m => { InstructionBench.PlantBranchToSelf(m, 0x600, littleEndian: true); Fill(m, Ea, 0xEE, 12); });
        Assert.Equal(0x600UL, r.After.Nip);
        Assert.Equal(r.Address, r.After.Srr0);
        Assert.Equal(Ea, r.After.Dar);
        Assert.Equal(0x29UL, r.Gpr(29));
        Assert.Equal(Enumerable.Repeat((byte)0xEE, 12).ToArray(), r.Bytes(Ea, 12));
    }

    [Theory]
    [InlineData("dcbz 4,5", true)]
    [InlineData("dcbz 4,5", false)]
    [InlineData("dcbz 0,5", true)]
    public void Dcbz_zeroes_the_aligned_128_byte_block_containing_EA(string insn, bool le)
    {
        const ulong region = InstructionBench.Data + 0x100;
        bool ra0 = insn.StartsWith("dcbz 0");
        var r = Bench.Execute(insn, s => { s.Gpr[0] = 0x40; s.Gpr[4] = region; s.Gpr[5] = ra0 ? region + 0x85 : 0x85; },
            le, m => Fill(m, region, 0xEE, 0x180));
        byte[] after = r.Bytes(region, 0x180);
        for (int i = 0; i < after.Length; i++)
            Assert.True(after[i] == (i is >= 0x80 and < 0x100 ? 0 : 0xEE), $"byte 0x{i:x} is 0x{after[i]:x2}");
    }

    [Fact]
    public void Loads_do_not_change_CR_or_XER()
    {
        var r = Bench.Execute("ld 3,8(4)", s => { s.Gpr[4] = Base; s.Cr = 0x12345678; s.Xer = Arch.SO | Arch.CA; });
        Assert.Equal(0x12345678u, r.After.Cr);
        Assert.Equal(Arch.SO | Arch.CA, r.After.Xer);
    }
}
