namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Multiply and divide (Power ISA v3.0 Book I §3.3.9). Only defined results are checked: RT[0:31] of
/// mulhw/mulhwu/divw/divwu, quotients of overflowing divides and CR0 of word divides in 64-bit mode are undefined.
/// </summary>
public class MultiplyDivideTests
{
    private static readonly InstructionBench Bench = new(
    [
        "mullw 3,4,5", "mullwo 3,4,5", "mullw. 3,4,5", "mulldo 3,4,5", "mulld. 3,4,5",
        "mulhw 3,4,5", "mulhwu 3,4,5", "mulhd 3,4,5", "mulhdu 3,4,5", "mulhd. 3,4,5",
        "divwo 3,4,5", "divwuo 3,4,5", "divdo 3,4,5", "divduo 3,4,5", "divd. 3,4,5", "divdu. 3,4,5",
    ]);

    [Theory]
    [InlineData("mullwo", 0xFFFFFFFF00000003UL, 0x12345678FFFFFFFEUL, 0xFFFFFFFFFFFFFFFAUL, false)] // high words ignored
    [InlineData("mullwo", 0x10000UL, 0x10000UL, 0x100000000UL, true)]
    [InlineData("mullwo", 0x7FFFFFFFUL, 2UL, 0xFFFFFFFEUL, true)]
    [InlineData("mullwo", 0x80000000UL, 0xFFFFFFFFUL, 0x80000000UL, true)]
    [InlineData("mullwo", 0xFFFFFFFFUL, 0xFFFFFFFFUL, 1UL, false)]
    [InlineData("mullwo", 0x80000000UL, 1UL, 0xFFFFFFFF80000000UL, false)]
    [InlineData("mulldo", 3UL, 0xFFFFFFFFFFFFFFFEUL, 0xFFFFFFFFFFFFFFFAUL, false)]
    [InlineData("mulldo", 0x100000000UL, 0x100000000UL, 0UL, true)]
    [InlineData("mulldo", 0x8000000000000000UL, 0xFFFFFFFFFFFFFFFFUL, 0x8000000000000000UL, true)]
    [InlineData("mulldo", 0x4000000000000000UL, 2UL, 0x8000000000000000UL, true)]
    [InlineData("mulldo", 0xC000000000000000UL, 2UL, 0x8000000000000000UL, false)]
    public void Multiply_low_with_OE_gives_the_product_and_sets_OV_OV32_SO_when_it_does_not_fit(string op, ulong a, ulong b, ulong rt, bool ov)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = 0; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(ov, r.Xer(Arch.OV));
        Assert.Equal(ov, r.Xer(Arch.OV32));
        Assert.Equal(ov, r.Xer(Arch.SO));
    }

    [Fact]
    public void Mullw_without_OE_leaves_XER_alone()
    {
        var r = Bench.Execute("mullw 3,4,5", s => { s.Gpr[4] = 0x10000; s.Gpr[5] = 0x10000; s.Xer = Arch.CA; });
        Assert.Equal(0x100000000UL, r.Gpr(3));
        Assert.Equal(Arch.CA, r.After.Xer);
    }

    [Theory]
    [InlineData("mullw. 3,4,5", 0x10000UL, 0x10000UL, Arch.GT)] // the 64-bit product is compared
    [InlineData("mullw. 3,4,5", 0xFFFFFFFFUL, 1UL, Arch.LT)]
    [InlineData("mulld. 3,4,5", 3UL, 0xFFFFFFFFFFFFFFFEUL, Arch.LT)]
    [InlineData("mulld. 3,4,5", 0UL, 0xFFFFFFFFFFFFFFFEUL, Arch.EQ)]
    [InlineData("mulhd. 3,4,5", 0x8000000000000000UL, 1UL, Arch.LT)]
    [InlineData("divd. 3,4,5", 0xFFFFFFFFFFFFFFF9UL, 2UL, Arch.LT)]
    [InlineData("divdu. 3,4,5", 9UL, 3UL, Arch.GT)]
    public void Multiply_and_divide_record_forms_set_CR0(string insn, ulong a, ulong b, uint cr0)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = 0; });
        Assert.Equal(cr0, r.Cr0);
    }

    [Theory]
    [InlineData("mulhw", 0x80000000UL, 0x80000000UL, 0x40000000UL)]
    [InlineData("mulhw", 0xFFFFFFFFUL, 2UL, 0xFFFFFFFFUL)]
    [InlineData("mulhw", 0x12345678UL, 0x9ABCDEF0UL, 0xF8CC93D6UL)]
    [InlineData("mulhw", 0xAAAAAAAA00000003UL, 0x5555555500000005UL, 0UL)]
    [InlineData("mulhwu", 0xFFFFFFFFUL, 0xFFFFFFFFUL, 0xFFFFFFFEUL)]
    [InlineData("mulhwu", 0x80000000UL, 2UL, 1UL)]
    [InlineData("mulhwu", 0x12345678UL, 0x9ABCDEF0UL, 0x0B00EA4EUL)]
    public void Multiply_high_word_puts_the_high_half_of_the_32x32_product_in_the_low_word(string op, ulong a, ulong b, ulong low)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; });
        Assert.Equal(low, r.Gpr(3) & 0xFFFFFFFF);
    }

    [Theory]
    [InlineData("mulhd", 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFFUL, 0UL)]
    [InlineData("mulhd", 0x8000000000000000UL, 0x8000000000000000UL, 0x4000000000000000UL)]
    [InlineData("mulhd", 0x8000000000000000UL, 1UL, 0xFFFFFFFFFFFFFFFFUL)]
    [InlineData("mulhd", 0x123456789ABCDEF0UL, 0xFEDCBA9876543210UL, 0xFFEB49923CC09532UL)]
    [InlineData("mulhdu", 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFEUL)]
    [InlineData("mulhdu", 0x8000000000000000UL, 2UL, 1UL)]
    [InlineData("mulhdu", 0x123456789ABCDEF0UL, 0xFEDCBA9876543210UL, 0x121FA00AD77D7422UL)]
    public void Multiply_high_doubleword_gives_the_high_half_of_the_128_bit_product(string op, ulong a, ulong b, ulong rt)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = Arch.SO; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(Arch.SO, r.After.Xer);
    }

    [Theory]
    [InlineData("divwo", 7UL, 0xFFFFFFFEUL, 0xFFFFFFFDUL)] // 7 / -2 = -3: truncates toward zero
    [InlineData("divwo", 0xFFFFFFF9UL, 2UL, 0xFFFFFFFDUL)]
    [InlineData("divwo", 0x80000000UL, 1UL, 0x80000000UL)]
    [InlineData("divwo", 0xFFFFFFFF00000064UL, 0x0000000100000007UL, 14UL)] // high words ignored
    [InlineData("divwuo", 0xFFFFFFFFUL, 2UL, 0x7FFFFFFFUL)]
    [InlineData("divwuo", 0x80000000UL, 0xFFFFFFFFUL, 0UL)]
    [InlineData("divwuo", 7UL, 0xFFFFFFFEUL, 0UL)]
    public void Divide_word_puts_the_quotient_in_the_low_word_and_clears_OV(string op, ulong a, ulong b, ulong low)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = Arch.OV | Arch.OV32; });
        Assert.Equal(low, r.Gpr(3) & 0xFFFFFFFF);
        Assert.False(r.Xer(Arch.OV));
        Assert.False(r.Xer(Arch.OV32));
    }

    [Theory]
    [InlineData("divdo", 0xFFFFFFFFFFFFFFF9UL, 2UL, 0xFFFFFFFFFFFFFFFDUL)]
    [InlineData("divdo", 7UL, 0xFFFFFFFFFFFFFFFEUL, 0xFFFFFFFFFFFFFFFDUL)]
    [InlineData("divdo", 0x8000000000000000UL, 2UL, 0xC000000000000000UL)]
    [InlineData("divduo", 0xFFFFFFFFFFFFFFFFUL, 3UL, 0x5555555555555555UL)]
    [InlineData("divduo", 0x8000000000000000UL, 0xFFFFFFFFFFFFFFFFUL, 0UL)]
    [InlineData("divduo", 0x8000000000000000UL, 2UL, 0x4000000000000000UL)]
    public void Divide_doubleword_gives_the_quotient_and_clears_OV(string op, ulong a, ulong b, ulong rt)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = Arch.OV | Arch.OV32; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.False(r.Xer(Arch.OV));
        Assert.False(r.Xer(Arch.OV32));
    }

    [Theory]
    [InlineData("divwo", 5UL, 0xFFFFFFFF00000000UL)] // low word of RB is 0
    [InlineData("divwo", 0xFFFFFFFF80000000UL, 0xFFFFFFFFUL)] // MIN / -1
    [InlineData("divwuo", 5UL, 0UL)]
    [InlineData("divdo", 5UL, 0UL)]
    [InlineData("divdo", 0x8000000000000000UL, 0xFFFFFFFFFFFFFFFFUL)]
    [InlineData("divduo", 5UL, 0UL)]
    public void Divide_with_OE_sets_OV_OV32_and_SO_for_division_by_zero_and_MIN_by_minus_one(string op, ulong a, ulong b)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = 0; });
        Assert.True(r.Xer(Arch.OV));
        Assert.True(r.Xer(Arch.OV32));
        Assert.True(r.Xer(Arch.SO));
    }
}
