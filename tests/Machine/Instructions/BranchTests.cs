namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Branches (Power ISA v3.0 Book I §2.4): b/ba/bl, bc with every BO class — BO[0] ignore the condition,
/// BO[1] the value CR[BI] must have, BO[2] don't decrement CTR, BO[3] branch when CTR=0 — LR ← CIA+4 when
/// LK=1 (taken or not), bclr/bcctr to LR/CTR with the low two bits cleared, bcctr with BO[2]=0 illegal.
/// </summary>
public class BranchTests
{
    private static readonly int[] Bos = [0, 2, 4, 7, 8, 10, 12, 15, 16, 18, 20, 25];

    // GNU as refuses bcctr with CTR decrement ("invalid counter access"): XL-form 19/528, BO, BI.
    private const string BcctrDecrement = ".long 0x4E000420 # bcctr 16,0";
    private const string BcctrDecrementOnCondition = ".long 0x4C020420 # bcctr 0,2";
    private const string BcctrCtrZero = ".long 0x4E400420 # bcctr 18,0";

    private static readonly InstructionBench Bench = new(
        new[] { "b target", "bl target", "ba 0x1000", "bla 0x1000", "b _start" }
            .Concat(Bos.Select(bo => $"bc {bo},2,target"))
            .Concat(
            [
                "bcl 20,0,target", "bcl 4,2,target", "bca 20,0,0x2000",
                "bclr 20,0", "bclr 12,2", "bclr 16,0", "bclrl 20,0",
                "bcctr 20,0", "bcctr 12,2", "bcctr 4,2", "bcctrl 20,0",
                BcctrDecrement, BcctrDecrementOnCondition, BcctrCtrZero,
            ]),
        extra: "target:\n    b target\n");

    private const ulong LrIn = 0x12347, CtrIn = 0x23456;

    /// <summary>CR with only CR0[EQ] (bit 2) under control; LT, GT and SO are its opposite to catch a wrong BI.</summary>
    private static uint Cr(bool eq) => eq ? 0x2ABCDEF0u : 0xDABCDEF0u;

    [Theory]
    [InlineData("b target", "target", false)]
    [InlineData("bl target", "target", true)]
    [InlineData("b _start", "_start", false)] // backward: LI is sign-extended
    public void Relative_branch_goes_to_the_target_and_LK_saves_the_return_address(string insn, string target, bool link)
    {
        var r = Bench.Execute(insn, s => s.Lr = LrIn);
        Assert.Equal(r.Machine.Sym(target), r.After.Nip);
        Assert.Equal(link ? r.Address + 4 : LrIn, r.After.Lr);
    }

    [Theory]
    [InlineData("ba 0x1000", false)]
    [InlineData("bla 0x1000", true)]
    public void Absolute_branch_goes_to_the_immediate_address(string insn, bool link)
    {
        var r = Bench.Execute(insn, s => s.Lr = LrIn);
        Assert.Equal(0x1000UL, r.After.Nip);
        Assert.Equal(link ? r.Address + 4 : LrIn, r.After.Lr);
    }

    [Theory]
    // 0000z: decrement, branch if CTR≠0 and CR[BI]=0
    [InlineData(0, 2UL, false, true, 1UL)]
    [InlineData(0, 1UL, false, false, 0UL)]
    [InlineData(0, 2UL, true, false, 1UL)]
    // 0001z: decrement, branch if CTR=0 and CR[BI]=0
    [InlineData(2, 1UL, false, true, 0UL)]
    [InlineData(2, 2UL, false, false, 1UL)]
    [InlineData(2, 1UL, true, false, 0UL)]
    // 001at: branch if CR[BI]=0, CTR untouched
    [InlineData(4, 5UL, false, true, 5UL)]
    [InlineData(4, 5UL, true, false, 5UL)]
    [InlineData(7, 5UL, false, true, 5UL)]
    // 0100z: decrement, branch if CTR≠0 and CR[BI]=1
    [InlineData(8, 2UL, true, true, 1UL)]
    [InlineData(8, 1UL, true, false, 0UL)]
    [InlineData(8, 2UL, false, false, 1UL)]
    // 0101z: decrement, branch if CTR=0 and CR[BI]=1
    [InlineData(10, 1UL, true, true, 0UL)]
    [InlineData(10, 2UL, true, false, 1UL)]
    [InlineData(10, 1UL, false, false, 0UL)]
    // 011at: branch if CR[BI]=1
    [InlineData(12, 5UL, true, true, 5UL)]
    [InlineData(12, 5UL, false, false, 5UL)]
    [InlineData(15, 5UL, true, true, 5UL)]
    // 1a00t: decrement, branch if CTR≠0
    [InlineData(16, 2UL, false, true, 1UL)]
    [InlineData(16, 1UL, true, false, 0UL)]
    [InlineData(16, 0UL, false, true, 0xFFFFFFFFFFFFFFFFUL)]
    [InlineData(25, 2UL, false, true, 1UL)]
    // 1a01t: decrement, branch if CTR=0
    [InlineData(18, 1UL, false, true, 0UL)]
    [InlineData(18, 2UL, true, false, 1UL)]
    // 1z1zz: branch always
    [InlineData(20, 0UL, false, true, 0UL)]
    [InlineData(20, 0UL, true, true, 0UL)]
    public void Bc_branches_per_its_BO_class_and_decrements_CTR_unless_told_not_to(int bo, ulong ctr, bool eq, bool taken, ulong ctrAfter)
    {
        var r = Bench.Execute($"bc {bo},2,target", s => { s.Ctr = ctr; s.Cr = Cr(eq); s.Lr = LrIn; });
        Assert.Equal(taken ? r.Machine.Sym("target") : r.Address + 4, r.After.Nip);
        Assert.Equal(ctrAfter, r.After.Ctr);
        Assert.Equal(LrIn, r.After.Lr);
        Assert.Equal(Cr(eq), r.After.Cr);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void Bdnz_tests_only_the_low_word_of_CTR_in_32_bit_mode(bool mode64, bool taken)
    {
        var r = Bench.Execute("bc 16,2,target", s => { if (!mode64) s.Msr &= ~Arch.MsrSF; s.Ctr = 0x100000001; });
        Assert.Equal(taken ? r.Machine.Sym("target") : r.Address + 4, r.After.Nip);
        Assert.Equal(0x100000000UL, r.After.Ctr);
    }

    [Theory]
    [InlineData("bcl 20,0,target", false, true)]
    [InlineData("bcl 4,2,target", true, false)]
    public void Bc_with_LK_sets_LR_whether_or_not_it_branches(string insn, bool eq, bool taken)
    {
        var r = Bench.Execute(insn, s => { s.Cr = Cr(eq); s.Lr = LrIn; });
        Assert.Equal(taken ? r.Machine.Sym("target") : r.Address + 4, r.After.Nip);
        Assert.Equal(r.Address + 4, r.After.Lr);
    }

    [Fact]
    public void Bca_goes_to_the_absolute_displacement()
    {
        var r = Bench.Execute("bca 20,0,0x2000");
        Assert.Equal(0x2000UL, r.After.Nip);
    }

    [Theory]
    [InlineData("bclr 20,0", 5UL, false, true, 5UL)]
    [InlineData("bclr 12,2", 5UL, false, false, 5UL)]
    [InlineData("bclr 12,2", 5UL, true, true, 5UL)]
    [InlineData("bclr 16,0", 2UL, false, true, 1UL)]
    [InlineData("bclr 16,0", 1UL, false, false, 0UL)]
    public void Bclr_branches_to_LR_with_the_low_bits_cleared(string insn, ulong ctr, bool eq, bool taken, ulong ctrAfter)
    {
        var r = Bench.Execute(insn, s => { s.Lr = LrIn; s.Ctr = ctr; s.Cr = Cr(eq); });
        Assert.Equal(taken ? LrIn & ~3UL : r.Address + 4, r.After.Nip);
        Assert.Equal(ctrAfter, r.After.Ctr);
        Assert.Equal(LrIn, r.After.Lr);
    }

    [Fact]
    public void Bclrl_branches_to_the_old_LR_and_sets_LR_to_the_next_instruction()
    {
        var r = Bench.Execute("bclrl 20,0", s => s.Lr = LrIn);
        Assert.Equal(LrIn & ~3UL, r.After.Nip);
        Assert.Equal(r.Address + 4, r.After.Lr);
    }

    [Theory]
    [InlineData("bcctr 20,0", false, true)]
    [InlineData("bcctr 12,2", false, false)]
    [InlineData("bcctr 4,2", false, true)]
    public void Bcctr_branches_to_CTR_with_the_low_bits_cleared_and_leaves_CTR(string insn, bool eq, bool taken)
    {
        var r = Bench.Execute(insn, s => { s.Ctr = CtrIn; s.Lr = LrIn; s.Cr = Cr(eq); });
        Assert.Equal(taken ? CtrIn & ~3UL : r.Address + 4, r.After.Nip);
        Assert.Equal(CtrIn, r.After.Ctr);
        Assert.Equal(LrIn, r.After.Lr);
    }

    [Fact]
    public void Bcctrl_branches_to_CTR_and_sets_LR_to_the_next_instruction()
    {
        var r = Bench.Execute("bcctrl 20,0", s => { s.Ctr = CtrIn; s.Lr = LrIn; });
        Assert.Equal(CtrIn & ~3UL, r.After.Nip);
        Assert.Equal(r.Address + 4, r.After.Lr);
    }

    [Theory]
    [InlineData(BcctrDecrement)]
    [InlineData(BcctrDecrementOnCondition)]
    [InlineData(BcctrCtrZero)]
    public void Bcctr_that_would_decrement_CTR_is_an_illegal_instruction(string insn)
    {
        var r = Bench.Execute(insn, s => { s.Ctr = CtrIn; s.Lr = LrIn; s.Cr = 0; },
            prepare: m => InstructionBench.PlantBranchToSelf(m, 0x700, littleEndian: true));
        Assert.Equal(0x700UL, r.After.Nip);
        Assert.Equal(r.Address, r.After.Srr0);
        Assert.NotEqual(0UL, r.After.Srr1 & (1UL << (63 - 44))); // SRR1[44]: illegal instruction
        Assert.Equal(CtrIn, r.After.Ctr);
        Assert.Equal(LrIn, r.After.Lr);
    }

    [Fact]
    public void Branches_work_the_same_in_a_big_endian_guest()
    {
        var r = Bench.Execute("bc 16,2,target", s => s.Ctr = 3, littleEndian: false);
        Assert.Equal(r.Machine.Sym("target"), r.After.Nip);
        Assert.Equal(2UL, r.After.Ctr);
    }
}
