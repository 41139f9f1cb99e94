using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>The debug word 0x00dddd00, hardware single-step (PR flavour only) and the fault-loop checkstop.</summary>
public class DebugInstructionTests
{
    private const string Program = """
            addi 5, 5, 1
        bp: .long 0x00dddd00
            addi 5, 5, 1
        """;

    // A program handler that reports SRR0/SRR1 in r20/r21 and stops with status 7.
    private static readonly Dictionary<ulong, string> ReportingProgramHandler = new()
    {
        [0x700] = "mfsrr0 20\n mfsrr1 21\n li 3, 0\n ori 3, 3, 0xF080\n li 4, 7\n sc 1",
    };

    [Fact]
    public void Debug_word_exits_with_ExitReason_Debug_at_its_address()
    {
        var g = new Guest(Program);
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Debug, exit.Reason);
        Assert.Equal(g.Sym("bp"), exit.Address);
    }

    [Fact]
    public void Debug_word_exit_leaves_NIP_at_the_debug_word()
    {
        var g = new Guest(Program);
        g.Vcpu.Run(1000);
        Assert.Equal(g.Sym("bp"), g.State.Nip);
        Assert.Equal(1UL, g.State.Gpr[5]);
    }

    [Fact]
    public void Debug_word_exit_retires_nothing_and_repeats_until_the_word_is_replaced()
    {
        var g = new Guest(Program);
        g.Vcpu.Run(1000);
        Assert.Equal(1, g.Vcpu.InstructionsRetired);
        Assert.Equal(ExitReason.Debug, g.Vcpu.Run(1000).Reason);
        Assert.Equal(1, g.Vcpu.InstructionsRetired);
        g.Vm.Memory.WriteUInt32(g.Sym("bp"), 0x60000000, littleEndian: true); // nop
        Assert.Equal(ExitReason.BudgetExpired, g.Vcpu.Run(2).Reason);
        Assert.Equal(2UL, g.State.Gpr[5]);
    }

    [Fact]
    public void Debug_word_leaves_SRR0_SRR1_and_MSR_alone()
    {
        var g = new Guest(Program);
        g.Update(s => { s.Srr0 = 0x11; s.Srr1 = 0x22; });
        g.Vcpu.Run(1000);
        Assert.Equal((0x11UL, 0x22UL, Guest.Le), (g.State.Srr0, g.State.Srr1, g.State.Msr));
    }

    [Fact]
    public void Debug_word_is_a_program_interrupt_without_SoftwareBreakpoints()
    {
        var g = new Guest(Program, handlers: ReportingProgramHandler, breakpoints: false);
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Stopped, exit.Reason);
        Assert.Equal(7, exit.Status);
        Assert.Equal(g.Sym("bp"), g.State.Gpr[20]);
        Assert.Equal(Guest.Le | Srr1Bits.ProgramIllegal, g.State.Gpr[21]);
    }

    [Fact]
    public void Clearing_SoftwareBreakpoints_turns_the_debug_word_back_into_a_program_interrupt()
    {
        var g = new Guest(Program, handlers: ReportingProgramHandler);
        Assert.Equal(ExitReason.Debug, g.Vcpu.Run(1000).Reason);
        g.Vcpu.SetGuestDebug(GuestDebug.None);
        Assert.Equal(ExitReason.Stopped, g.Vcpu.Run(1000).Reason);
    }

    [Fact]
    public void Debug_word_exits_in_a_big_endian_guest()
    {
        var g = new Guest(Program, littleEndian: false);
        Assert.Equal(g.Sym("bp"), g.RunToBreak());
    }
}

public class SingleStepTests
{
    private const string Program = """
            addi 5, 5, 1
            addi 5, 5, 1
            sc
        """;

    [Fact]
    public void Pr_flavour_reports_hardware_single_step_and_Hv_does_not()
    {
        Assert.True(new Guest(Program, flavour: HypervisorFlavour.Pr).Vm.Capabilities.HardwareSingleStep);
        Assert.False(new Guest(Program).Vm.Capabilities.HardwareSingleStep);
    }

    [Fact]
    public void Hv_flavour_refuses_GuestDebug_SingleStep()
    {
        var g = new Guest(Program);
        Assert.Throws<NotSupportedException>(() => g.Vcpu.SetGuestDebug(GuestDebug.SingleStep | GuestDebug.SoftwareBreakpoints));
    }

    [Fact]
    public void Pr_single_step_exits_after_one_instruction()
    {
        var g = new Guest(Program, flavour: HypervisorFlavour.Pr);
        g.Vcpu.SetGuestDebug(GuestDebug.SingleStep | GuestDebug.SoftwareBreakpoints);
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.SingleStep, exit.Reason);
        Assert.Equal(Guest.Start + 4, exit.Address);
        Assert.Equal(1UL, g.State.Gpr[5]);
        Assert.Equal(1, g.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void Pr_single_step_of_sc_stops_at_the_first_instruction_of_the_handler()
    {
        var g = new Guest(Program, flavour: HypervisorFlavour.Pr);
        g.Vcpu.SetGuestDebug(GuestDebug.SingleStep | GuestDebug.SoftwareBreakpoints);
        g.Vcpu.Run(1000);
        g.Vcpu.Run(1000);
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.SingleStep, exit.Reason);
        Assert.Equal(0xC00UL, exit.Address);
        Assert.Equal(Guest.Start + 12, g.State.Srr0);
    }

    [Fact]
    public void Pr_single_step_does_not_raise_a_Trace_in_the_guest()
    {
        var g = new Guest(Program, flavour: HypervisorFlavour.Pr);
        g.Vcpu.SetGuestDebug(GuestDebug.SingleStep);
        g.Vcpu.Run(1000);
        Assert.Equal(0UL, g.State.Srr0);
        Assert.Equal(0UL, g.State.Msr & Msr.SE);
    }
}

public class CheckstopTests
{
    // Program vector without a handler: the word there is 0, itself illegal.
    private static Guest NoProgramHandler() => new("""
            addi 5, 5, 1
            .long 0
        """, handlers: new Dictionary<ulong, string> { [0x700] = ".long 0" });

    [Fact]
    public void Fault_at_the_first_instruction_of_its_own_handler_checkstops()
    {
        var g = NoProgramHandler();
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Checkstop, exit.Reason);
        Assert.Equal(0x700UL, exit.Address);
        Assert.Contains("0x700", exit.Detail);
    }

    [Fact]
    public void Checkstop_leaves_the_state_of_the_first_fault()
    {
        var g = NoProgramHandler();
        g.Vcpu.Run(1000);
        Assert.Equal(Guest.Start + 4, g.State.Srr0);
        Assert.Equal(0x700UL, g.State.Nip);
    }

    [Fact]
    public void Checkstopped_vcpu_never_runs_again()
    {
        var g = NoProgramHandler();
        g.Vcpu.Run(1000);
        Assert.True(g.Vcpu.IsStoppedForGood);
        Assert.Equal(ExitReason.Checkstop, g.Vcpu.Run(1000).Reason);
    }

    [Fact]
    public void Dsi_with_no_handler_ends_in_a_checkstop_at_the_program_vector()
    {
        var g = new Guest("""
                lis 4, 0x10
                ld 5, 0(4)
            """, handlers: new Dictionary<ulong, string> { [0x300] = ".long 0", [0x700] = ".long 0" });
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Checkstop, exit.Reason);
        Assert.Equal(0x700UL, exit.Address);
    }
}
