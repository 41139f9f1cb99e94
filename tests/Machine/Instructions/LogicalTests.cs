namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Logical, extend, count and compare-bytes instructions (Power ISA v3.0 Book I §3.3.13). Expected values
/// are worked out by hand from the ISA definitions.
/// </summary>
public class LogicalTests
{
    private static readonly string[] XOps = ["and", "andc", "or", "orc", "xor", "nand", "nor", "eqv"];

    private static readonly InstructionBench Bench = new(
        XOps.Select(op => $"{op} 3,4,5").Concat(XOps.Select(op => $"{op}. 3,4,5")).Concat(
        [
            "andi. 3,4,0x8001", "andis. 3,4,0x8765", "andi. 3,4,0",
            "ori 3,4,0xffff", "oris 3,4,0x8000", "xori 3,4,0xffff", "xoris 3,4,0x8000",
            "extsb 3,4", "extsh 3,4", "extsw 3,4", "extsb. 3,4", "extsh. 3,4", "extsw. 3,4",
            "cntlzw 3,4", "cntlzd 3,4", "cntlzw. 3,4", "cntlzd. 3,4",
            "popcntb 3,4", "popcntw 3,4", "popcntd 3,4", "cmpb 3,4,5",
        ]));

    private const ulong S = 0xF0F0FF0012345678, B = 0x0FF0F0F0FFFF0000;

    [Theory]
    [InlineData("and", 0x00F0F00012340000UL)]
    [InlineData("andc", 0xF0000F0000005678UL)]
    [InlineData("or", 0xFFF0FFF0FFFF5678UL)]
    [InlineData("orc", 0xF0FFFF0F1234FFFFUL)]
    [InlineData("xor", 0xFF000FF0EDCB5678UL)]
    [InlineData("nand", 0xFF0F0FFFEDCBFFFFUL)]
    [InlineData("nor", 0x000F000F0000A987UL)]
    [InlineData("eqv", 0x00FFF00F1234A987UL)]
    public void Logical_X_forms_combine_RS_and_RB_bitwise_and_leave_CR_alone(string op, ulong ra)
    {
        var r = Bench.Execute($"{op} 3,4,5", s => { s.Gpr[4] = S; s.Gpr[5] = B; s.Cr = 0x12345678; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(0x12345678u, r.After.Cr);
    }

    [Theory]
    [InlineData("and", S, B, Arch.GT)]
    [InlineData("xor", S, B, Arch.LT)]
    [InlineData("andc", S, S, Arch.EQ)]
    [InlineData("or", 0UL, 0UL, Arch.EQ)]
    [InlineData("orc", 0UL, 0UL, Arch.LT)]
    [InlineData("nand", 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFFUL, Arch.EQ)]
    [InlineData("nor", 0x8000000000000000UL, 0UL, Arch.GT)]
    [InlineData("eqv", 0UL, 0x8000000000000000UL, Arch.GT)]
    public void Logical_record_forms_set_CR0_and_copy_SO(string op, ulong rs, ulong rb, uint cr0)
    {
        var r = Bench.Execute($"{op}. 3,4,5", s => { s.Gpr[4] = rs; s.Gpr[5] = rb; s.Xer = Arch.SO; });
        Assert.Equal(cr0 | Arch.SOf, r.Cr0);
    }

    [Theory]
    [InlineData("andi. 3,4,0x8001", 0x8765432187654321UL, 1UL, Arch.GT)]
    [InlineData("andis. 3,4,0x8765", 0x8765432187654321UL, 0x87650000UL, Arch.GT)] // positive as a doubleword
    [InlineData("andi. 3,4,0", 0xFFFFFFFFFFFFFFFFUL, 0UL, Arch.EQ)]
    public void Andi_and_andis_always_record_CR0(string insn, ulong rs, ulong ra, uint cr0)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Xer = 0; s.Cr = 0xF0000000; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(cr0, r.Cr0);
    }

    [Theory]
    [InlineData("ori 3,4,0xffff", 0x012345670123FFFFUL)]
    [InlineData("oris 3,4,0x8000", 0x0123456781234567UL)] // UI << 16 is not sign-extended
    [InlineData("xori 3,4,0xffff", 0x012345670123BA98UL)]
    [InlineData("xoris 3,4,0x8000", 0x0123456781234567UL)]
    public void Or_and_xor_immediate_use_the_zero_extended_immediate_and_leave_CR_alone(string insn, ulong ra)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = 0x0123456701234567; s.Cr = 0x12345678; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(0x12345678u, r.After.Cr);
    }

    [Theory]
    [InlineData("extsb 3,4", 0x1234567890ABCD80UL, 0xFFFFFFFFFFFFFF80UL)]
    [InlineData("extsb 3,4", 0xFFFFFFFFFFFFFF7FUL, 0x7FUL)]
    [InlineData("extsh 3,4", 0x0000000012348000UL, 0xFFFFFFFFFFFF8000UL)]
    [InlineData("extsh 3,4", 0xFFFFFFFF12347FFFUL, 0x7FFFUL)]
    [InlineData("extsw 3,4", 0x0000000080000000UL, 0xFFFFFFFF80000000UL)]
    [InlineData("extsw 3,4", 0xFFFFFFFF7FFFFFFFUL, 0x7FFFFFFFUL)]
    [InlineData("cntlzw 3,4", 0xFFFFFFFF00010000UL, 15UL)]
    [InlineData("cntlzw 3,4", 0xFFFFFFFF00000000UL, 32UL)]
    [InlineData("cntlzw 3,4", 0x80000000UL, 0UL)]
    [InlineData("cntlzd 3,4", 0UL, 64UL)]
    [InlineData("cntlzd 3,4", 1UL, 63UL)]
    [InlineData("cntlzd 3,4", 0x0000800000000000UL, 16UL)]
    [InlineData("cntlzd 3,4", 0x8000000000000000UL, 0UL)]
    [InlineData("popcntb 3,4", 0x01020304FF007F80UL, 0x0101020108000701UL)]
    [InlineData("popcntw 3,4", 0x01020304FF007F80UL, 0x0000000500000010UL)]
    [InlineData("popcntd 3,4", 0x01020304FF007F80UL, 21UL)]
    public void Extend_count_and_popcount_compute_RA_and_leave_CR_alone(string insn, ulong rs, ulong ra)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Cr = 0x12345678; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(0x12345678u, r.After.Cr);
    }

    [Theory]
    [InlineData("extsb. 3,4", 0x80UL, Arch.LT)]
    [InlineData("extsh. 3,4", 0xFFFF0000UL, Arch.EQ)]
    [InlineData("extsw. 3,4", 0x7FFFFFFFUL, Arch.GT)]
    [InlineData("cntlzw. 3,4", 0x80000000UL, Arch.EQ)]
    [InlineData("cntlzd. 3,4", 0UL, Arch.GT)]
    public void Extend_and_count_record_forms_set_CR0(string insn, ulong rs, uint cr0)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Xer = 0; });
        Assert.Equal(cr0, r.Cr0);
    }

    [Fact]
    public void Cmpb_sets_each_byte_of_RA_to_ones_where_RS_and_RB_bytes_are_equal()
    {
        var r = Bench.Execute("cmpb 3,4,5", s => { s.Gpr[4] = 0x1122334455667788; s.Gpr[5] = 0x1100334400667700; s.Cr = 0x12345678; });
        Assert.Equal(0xFF00FFFF00FFFF00UL, r.Gpr(3));
        Assert.Equal(0x12345678u, r.After.Cr);
    }
}
