namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// cmp/cmpl/cmpi/cmpli (Power ISA v3.0 Book I §3.3.10): L=0 compares the sign- or zero-extended low words,
/// L=1 the doublewords; the result goes to CR field BF with XER[SO] copied, other fields untouched.
/// </summary>
public class CompareTests
{
    private static readonly InstructionBench Bench = new(
    [
        "cmp 3,0,4,5", "cmp 3,1,4,5", "cmp 7,0,4,5", "cmp 7,1,4,5", "cmp 0,1,4,5",
        "cmpl 2,0,4,5", "cmpl 2,1,4,5", "cmpl 0,1,4,5",
        "cmpi 5,0,4,-1", "cmpi 5,1,4,-1", "cmpi 1,1,4,-32768", "cmpi 0,0,4,100",
        "cmpli 6,0,4,0xffff", "cmpli 6,1,4,0xffff", "cmpli 6,0,4,0x8000", "cmpli 4,1,4,0",
    ]);

    [Theory]
    [InlineData("cmp 3,0,4,5", 0x00000001FFFFFFFFUL, 0UL, Arch.LT)] // word: -1 < 0
    [InlineData("cmp 3,1,4,5", 0x00000001FFFFFFFFUL, 0UL, Arch.GT)]
    [InlineData("cmp 7,0,4,5", 5UL, 0xFFFFFFFF00000005UL, Arch.EQ)]
    [InlineData("cmp 7,1,4,5", 5UL, 0xFFFFFFFF00000005UL, Arch.GT)]
    [InlineData("cmp 0,1,4,5", 0x8000000000000000UL, 1UL, Arch.LT)]
    [InlineData("cmpl 2,0,4,5", 0xFFFFFFFF00000001UL, 2UL, Arch.LT)]
    [InlineData("cmpl 2,1,4,5", 0xFFFFFFFF00000001UL, 2UL, Arch.GT)]
    [InlineData("cmpl 0,1,4,5", 0x8000000000000000UL, 1UL, Arch.GT)]
    [InlineData("cmpi 5,0,4,-1", 0x00000000FFFFFFFFUL, 0UL, Arch.EQ)]
    [InlineData("cmpi 5,1,4,-1", 0x00000000FFFFFFFFUL, 0UL, Arch.GT)]
    [InlineData("cmpi 1,1,4,-32768", 0xFFFFFFFFFFFF8000UL, 0UL, Arch.EQ)]
    [InlineData("cmpi 0,0,4,100", 0x7FFFFFFF00000063UL, 0UL, Arch.LT)]
    [InlineData("cmpli 6,0,4,0xffff", 0xFFFFFFFF0000FFFFUL, 0UL, Arch.EQ)]
    [InlineData("cmpli 6,1,4,0xffff", 0xFFFFFFFF0000FFFFUL, 0UL, Arch.GT)]
    [InlineData("cmpli 6,0,4,0x8000", 0x7FFFUL, 0UL, Arch.LT)] // UI is zero-extended: 0x8000 > 0x7FFF
    [InlineData("cmpli 4,1,4,0", 0UL, 0UL, Arch.EQ)]
    public void Compare_sets_LT_GT_EQ_in_field_BF_only(string insn, ulong a, ulong b, uint field)
    {
        int bf = insn[insn.IndexOf(' ') + 1] - '0';
        int shift = 28 - 4 * bf;
        var r = Bench.Execute(insn, s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Cr = 0x12345678; s.Xer = 0; });
        Assert.Equal(field, r.CrField(bf));
        Assert.Equal(0x12345678u & ~(0xFu << shift), r.After.Cr & ~(0xFu << shift));
    }

    [Theory]
    [InlineData("cmp 7,1,4,5")]
    [InlineData("cmpl 2,0,4,5")]
    [InlineData("cmpi 5,0,4,-1")]
    [InlineData("cmpli 6,1,4,0xffff")]
    public void Compare_copies_XER_SO_into_the_field(string insn)
    {
        int bf = insn[insn.IndexOf(' ') + 1] - '0';
        var r = Bench.Execute(insn, s => { s.Gpr[4] = 0; s.Gpr[5] = 0; s.Xer = Arch.SO; });
        Assert.Equal(Arch.SOf, r.CrField(bf) & Arch.SOf);
    }
}
