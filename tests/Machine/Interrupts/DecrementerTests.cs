using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>Decrementer (0x900, Book III §6.5.11, §7.3) and time: DEC and TB advance with instructions only.</summary>
public class DecrementerTests
{
    private static string Adds(int n) => string.Join("\n", Enumerable.Repeat("    addi 4, 4, 1", n));

    private static Guest CountDown(bool enable) => new($"""
            li 3, 5
            mtdec 3
            mfmsr 9
            ori 9, 9, {(enable ? 0x8000 : 0)}
            mtmsrd 9, 1
        adds:
        {Adds(20)}
        end:
            {Guest.Bp}
        """);

    [Fact]
    public void Decrementer_is_taken_with_EE_1()
    {
        var g = CountDown(enable: true);
        Assert.Equal(0x900UL, g.RunToBreak());
        Assert.InRange(g.State.Gpr[4], 1UL, 19UL);
    }

    [Fact]
    public void Decrementer_SRR0_is_the_next_instruction_to_execute()
    {
        var g = CountDown(enable: true);
        g.RunToBreak();
        Assert.Equal(g.Sym("adds") + 4 * g.State.Gpr[4], g.State.Srr0);
        Assert.Equal(Guest.Le | Msr.EE, g.State.Srr1);
    }

    [Fact]
    public void Decrementer_is_not_taken_with_EE_0()
    {
        var g = CountDown(enable: false);
        Assert.Equal(g.Sym("end"), g.RunToBreak());
        Assert.Equal(20UL, g.State.Gpr[4]);
        Assert.True((int)g.State.Dec < 0);
    }

    [Fact]
    public void Pending_decrementer_is_taken_right_after_mtmsrd_sets_EE()
    {
        var g = new Guest($"""
                li 3, 0
                mtdec 3
            {Adds(5)}
                mfmsr 9
                ori 9, 9, 0x8000
                mtmsrd 9, 1
            next:
                {Guest.Bp}
            """);
        Assert.Equal(0x900UL, g.RunToBreak());
        Assert.Equal(g.Sym("next"), g.State.Srr0);
    }

    private static Guest Looping(string handler) => new($"""
            li 3, 0
            mtdec 3
        {Asm.MsrOr(0x8000)}
        loop:
            addi 4, 4, 1
            b loop
        """, handlers: new Dictionary<ulong, string> { [0x900] = handler });

    [Fact]
    public void Decrementer_stays_pending_until_DEC_is_rewritten()
    {
        var g = Looping($"""
                addi 20, 20, 1
                cmpdi 20, 3
                bne 1f
                {Guest.Bp}
            1:  rfid
            """);
        Assert.Equal(0x90CUL, g.RunToBreak());
        Assert.Equal(3UL, g.State.Gpr[20]);
    }

    [Fact]
    public void Decrementer_is_not_taken_again_once_DEC_is_rewritten()
    {
        var g = Looping("""
                addi 20, 20, 1
                lis 21, 0x100
                mtdec 21
                rfid
            """);
        Assert.Equal(ExitReason.BudgetExpired, g.Vcpu.Run(10_000).Reason);
        Assert.Equal(1UL, g.State.Gpr[20]);
    }

    [Fact]
    public void HoldAsyncInterrupts_holds_a_pending_decrementer()
    {
        var g = Looping("    " + Guest.Bp);
        g.Vcpu.HoldAsyncInterrupts = true;
        Assert.Equal(ExitReason.BudgetExpired, g.Vcpu.Run(1000).Reason);
        Assert.Equal(0UL, g.State.Srr0);
        Assert.True((int)g.State.Dec < 0);
    }

    [Fact]
    public void Held_decrementer_is_taken_at_the_first_boundary_after_the_hold_ends()
    {
        var g = Looping("    " + Guest.Bp);
        g.Vcpu.HoldAsyncInterrupts = true;
        g.Vcpu.Run(1000);
        ulong nip = g.State.Nip;
        long retired = g.Vcpu.InstructionsRetired;
        g.Vcpu.HoldAsyncInterrupts = false;
        Assert.Equal(0x900UL, g.RunToBreak());
        Assert.Equal(nip, g.State.Srr0);
        Assert.Equal(retired, g.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void Timebase_advances_by_one_per_instruction()
    {
        var g = Looping("    " + Guest.Bp);
        ulong tb0 = g.State.Tb;
        g.Vcpu.HoldAsyncInterrupts = true;
        g.Vcpu.Run(1234);
        Assert.Equal(tb0 + 1234, g.State.Tb);
        Assert.Equal(1234, g.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void Decrementer_decreases_by_one_per_instruction()
    {
        var g = new Guest("loop: b loop");
        uint dec0 = g.State.Dec;
        g.Vcpu.Run(1000);
        Assert.Equal(dec0 - 1000, g.State.Dec);
    }

    [Fact]
    public void Time_does_not_pass_while_the_vcpu_is_not_running()
    {
        var g = new Guest($"""
                mftb 5
                nop
                mftb 7
                {Guest.Bp}
            """);
        g.Vcpu.Run(2);
        var before = g.State;
        Thread.Sleep(50);
        Assert.Equal(before.Tb, g.State.Tb);
        Assert.Equal(before.Dec, g.State.Dec);
        g.RunToBreak();
        Assert.Equal(2UL, g.State.Gpr[7] - g.State.Gpr[5]);
    }

    [Fact]
    public void Mfdec_returns_the_32_bit_decrementer_sign_extended()
    {
        var g = new Guest($"""
                li 3, 0
                mtdec 3
                nop
                mfdec 5
                {Guest.Bp}
            """);
        g.RunToBreak();
        Assert.Equal(unchecked((ulong)-2L), g.State.Gpr[5]);
    }

    [Fact]
    public void Decrementer_with_AIL_3_and_relocation_on_enters_0xC000000000004900()
    {
        var g = new Guest($"""
                li 3, 0
                mtdec 3
            {Asm.MsrOr(0x8030)}
            loop: b loop
            """);
        g.SetAil(3);
        Assert.Equal(0xC000000000004900UL, g.RunToBreak());
    }
}

/// <summary>System call (0xC00): Book III §6.5.14.</summary>
public class SystemCallTests
{
    private static Guest Sc() => new($"""
            li 5, 1
            sc
        next:
            {Guest.Bp}
        """);

    [Fact]
    public void Sc_enters_0xC00_with_SRR0_the_next_instruction()
    {
        var g = Sc();
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(g.Sym("next"), g.State.Srr0);
    }

    [Fact]
    public void Sc_SRR1_is_the_MSR()
    {
        var g = Sc();
        g.Update(s => s.Msr |= Msr.EE | Msr.RI);
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.EE | Msr.RI, g.State.Srr1);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Sc_is_a_retired_instruction()
    {
        var g = Sc();
        g.RunToBreak();
        Assert.Equal(2, g.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void Sc_1_from_problem_state_is_reflected_to_the_guest_as_a_system_call()
    {
        var g = new Guest($"""
            {Asm.EnterProblemState("user")}
            user:
                sc 1
            next:
                {Guest.Bp}
            """);
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(g.Sym("next"), g.State.Srr0);
    }
}
