namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// CR instructions (Power ISA v3.0 Book I §2.5, §3.3.16): CR-logical ops on single bits, mcrf, isel,
/// mfcr/mfocrf and mtcrf/mtocrf. CR bit 0 is the most significant bit of the 32-bit CR.
/// </summary>
public class ConditionRegisterTests
{
    private static readonly InstructionBench Bench = new(
    [
        "crand 5,10,20", "cror 5,10,20", "crxor 5,10,20", "crnand 5,10,20", "crnor 5,10,20", "creqv 5,10,20", "crandc 5,10,20", "crorc 5,10,20",
        "crxor 6,6,6", "creqv 6,6,6",
        "mcrf 5,2", "mcrf 0,7", "isel 3,4,5,10", "isel 3,0,5,10",
        "mfcr 3", "mfocrf 3,0x20", "mtcrf 0x81,3", "mtocrf 0x10,3", "mtcrf 0xff,3",
    ]);

    /// <param name="truth">the result for (a,b) = (0,0), (0,1), (1,0), (1,1) in bits 0..3</param>
    [Theory]
    [InlineData("crand", 0b1000)]
    [InlineData("cror", 0b1110)]
    [InlineData("crxor", 0b0110)]
    [InlineData("crnand", 0b0111)]
    [InlineData("crnor", 0b0001)]
    [InlineData("creqv", 0b1001)]
    [InlineData("crandc", 0b0100)] // a & ¬b
    [InlineData("crorc", 0b1101)]  // a | ¬b
    public void Cr_logical_ops_write_the_truth_table_into_bit_BT_only(string op, int truth)
    {
        for (int ab = 0; ab < 4; ab++)
        {
            bool a = (ab & 2) != 0, b = (ab & 1) != 0;
            bool expected = ((truth >> ab) & 1) != 0;
            // Every other bit starts as the opposite of the expected result, so a stray write shows.
            uint background = expected ? 0u : ~0u;
            uint cr = background & ~(Arch.CrBit(5) | Arch.CrBit(10) | Arch.CrBit(20));
            if (!expected) cr |= Arch.CrBit(5);
            if (a) cr |= Arch.CrBit(10);
            if (b) cr |= Arch.CrBit(20);

            var r = Bench.Execute($"{op} 5,10,20", s => s.Cr = cr);

            uint want = expected ? cr | Arch.CrBit(5) : cr & ~Arch.CrBit(5);
            Assert.True(want == r.After.Cr, $"{op} a={a} b={b}: CR 0x{r.After.Cr:x8}, expected 0x{want:x8}");
        }
    }

    [Theory]
    [InlineData("crxor 6,6,6", 0xFFFFFFFFu, 0xFDFFFFFFu)] // crclr
    [InlineData("creqv 6,6,6", 0u, 0x02000000u)]          // crset
    public void Cr_logical_op_with_all_operands_the_same_bit_clears_or_sets_it(string insn, uint cr, uint after)
    {
        var r = Bench.Execute(insn, s => s.Cr = cr);
        Assert.Equal(after, r.After.Cr);
    }

    [Theory]
    [InlineData("mcrf 5,2", 0x12345678u, 0x12345378u)]
    [InlineData("mcrf 0,7", 0x12345678u, 0x82345678u)]
    public void Mcrf_copies_field_BFA_to_field_BF(string insn, uint cr, uint after)
    {
        var r = Bench.Execute(insn, s => s.Cr = cr);
        Assert.Equal(after, r.After.Cr);
    }

    [Theory]
    [InlineData("isel 3,4,5,10", true, 0x4444UL)]
    [InlineData("isel 3,4,5,10", false, 0x5555UL)]
    [InlineData("isel 3,0,5,10", true, 0UL)] // RA=0 selects the value 0
    [InlineData("isel 3,0,5,10", false, 0x5555UL)]
    public void Isel_picks_RA_or_0_when_CR_bit_BC_is_set_else_RB(string insn, bool bit, ulong rt)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[0] = 0x1111; s.Gpr[4] = 0x4444; s.Gpr[5] = 0x5555; s.Cr = bit ? Arch.CrBit(10) : ~Arch.CrBit(10); });
        Assert.Equal(rt, r.Gpr(3));
    }

    [Fact]
    public void Mfcr_copies_CR_into_the_low_word_and_zeroes_the_high_word()
    {
        var r = Bench.Execute("mfcr 3", s => { s.Gpr[3] = ulong.MaxValue; s.Cr = 0x89ABCDEF; });
        Assert.Equal(0x89ABCDEFUL, r.Gpr(3));
    }

    [Fact]
    public void Mfocrf_copies_the_named_field_into_its_place_in_RT()
    {
        var r = Bench.Execute("mfocrf 3,0x20", s => s.Cr = 0x89ABCDEF);
        Assert.Equal(0x00A00000UL, r.Gpr(3) & 0x00F00000UL); // the other bits of RT are undefined
    }

    [Theory]
    [InlineData("mtcrf 0x81,3", 0xA2345671u)]
    [InlineData("mtocrf 0x10,3", 0x123D5678u)]
    [InlineData("mtcrf 0xff,3", 0xABCDEF01u)]
    public void Mtcrf_replaces_only_the_fields_selected_by_FXM(string insn, uint after)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[3] = 0xFFFFFFFFABCDEF01; s.Cr = 0x12345678; });
        Assert.Equal(after, r.After.Cr);
    }
}
