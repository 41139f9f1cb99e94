using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>Program interrupt (0x700): Book III §6.5.9; SRR1[44] illegal, [45] privileged, [46] trap.</summary>
public class ProgramInterruptTests
{
    private static Guest Run(string code, out ulong stop)
    {
        var g = new Guest($"""
                li 3, 5
                lis 4, 1
                ori 4, 4, 5           # r4 = 0x1_0000_0005: same low word as r3
                sldi 4, 4, 0
                rldicr 4, 4, 32, 31
                ori 4, 4, 5
            insn:
                {code}
            after:
                {Guest.Bp}
            """);
        stop = g.RunToBreak();
        return g;
    }

    [Fact]
    public void Illegal_instruction_enters_0x700_with_SRR0_at_it()
    {
        var g = Run(".long 0", out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
    }

    [Fact]
    public void Illegal_instruction_sets_SRR1_bit_44()
    {
        var g = Run(".long 0", out _);
        Assert.Equal(Guest.Le | 0x80000, g.State.Srr1);
    }

    [Theory]
    [InlineData("tw 4, 3, 3")]     // eq
    [InlineData("td 31, 3, 3")]    // trap (unconditional)
    [InlineData("twi 4, 3, 5")]    // 5 == 5
    [InlineData("tdi 8, 3, 4")]    // 5 > 4
    [InlineData("tw 4, 3, 4")]     // word compare: low words of 5 and 0x1_0000_0005 are equal
    [InlineData("tdi 2, 3, 6")]    // 5 <u 6
    public void Trap_that_traps_enters_0x700_with_SRR1_bit_46(string trap)
    {
        var g = Run(trap, out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
        Assert.Equal(Guest.Le | 0x20000, g.State.Srr1);
    }

    [Theory]
    [InlineData("tw 16, 3, 3")]    // 5 < 5 is false
    [InlineData("td 4, 3, 4")]     // doubleword compare: 5 != 0x1_0000_0005
    [InlineData("twi 4, 3, 6")]
    [InlineData("tdi 16, 3, 5")]
    [InlineData("tdi 1, 3, -1")]   // 5 >u 0xFFFF_FFFF_FFFF_FFFF is false
    public void Trap_not_taken_completes_like_a_no_op(string trap)
    {
        var g = Run(trap, out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(0UL, g.State.Srr0);
    }

    private static Guest InProblemState(string code, out ulong stop)
    {
        var g = new Guest($"""
            {Asm.EnterProblemState("user")}
            user:
                {code}
                {Guest.Bp}
            """);
        stop = g.RunToBreak();
        return g;
    }

    [Fact]
    public void Mfmsr_in_problem_state_sets_SRR1_bit_45()
    {
        var g = InProblemState("mfmsr 5", out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("user"), g.State.Srr0);
        Assert.Equal(Guest.Le | Msr.PR | Msr.EE | Msr.IR | Msr.DR | 0x40000, g.State.Srr1);
    }

    [Theory]
    [InlineData("mtmsrd 5")]
    [InlineData("mtmsrd 5, 1")]
    [InlineData("mtsrr0 5")]
    [InlineData("mfsrr1 5")]
    [InlineData("mtdec 5")]
    [InlineData("mfsprg 5, 0")]
    [InlineData("rfid")]
    public void Privileged_instruction_in_problem_state_sets_SRR1_bit_45(string insn)
    {
        var g = InProblemState(insn, out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(0x40000UL, g.State.Srr1 & 0x783F0000);
    }

    [Fact]
    public void Program_interrupt_from_problem_state_enters_supervisor_state()
    {
        var g = InProblemState("mfmsr 5", out _);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Mflr_in_problem_state_is_not_privileged()
    {
        var g = InProblemState("mflr 5", out ulong stop);
        Assert.Equal(g.Sym("user") + 4, stop);
    }

    [Fact]
    public void Hrfid_in_a_guest_is_privileged()
    {
        var g = Run("hrfid", out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(0x40000UL, g.State.Srr1 & 0x783F0000);
    }
}
