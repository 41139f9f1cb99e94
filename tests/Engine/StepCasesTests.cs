using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// The cases of step-engine.md §3–§4 that the last posted QEMU version left open, one test each. Every
/// step is also compared with the same program stopped by the machine's own single-step (no debugger).
/// </summary>
public class StepCasesTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    /// <summary>Vectors that skip the faulting instruction, a syscall handler and a guest Trace handler.</summary>
    private const string Vectors = """
            .org 0x300
            mfsrr0 30
            addi 30, 30, 4
            mtsrr0 30
            rfid
            .org 0x700
        program_handler:
            mfsrr0 30
            addi 30, 30, 4
            mtsrr0 30
            rfid
            .org 0xC00
        syscall_handler:
            addi 3, 3, 1
            rfid
            .org 0xD00
        trace_handler:
            addi 31, 31, 1
            rfid
            .org 0x4D00
        trace_handler_ail:
            addi 29, 29, 1
            rfid
            .org 0x5000
            .globl _start
        _start:
        """;

    private sealed class Pair
    {
        public required EngineFixture Debugged;
        public required IVcpu Reference;

        /// <summary>Steps vcpu 0 in both; checks every register and returns the debugged stop.</summary>
        public Stopped Step()
        {
            var stop = Debugged.Step(0, SchedulerLocking.On);
            Reference.Run(1);
            var diff = Reference.GetRegisters().Differences(Debugged.Registers(0));
            Assert.True(diff.Count == 0, $"after the step from 0x{stop.Event.Nip:x}: {string.Join("; ", diff)}");
            Assert.Equal(0, Assert.IsType<VmDescription>(Debugged.Ask(new Describe())).BreakpointCount);
            return stop;
        }

        public VcpuState State => Debugged.Registers(0);
    }

    private Pair Build(string body, HypervisorFlavour flavour = HypervisorFlavour.Hv)
    {
        var f = new EngineFixture(Sys, Vectors + body, vcpus: 1, flavour: flavour, runModel: RunModel);
        var reference = SimulatedMachine.Load(f.Image, f.Vm.Options with { Flavour = HypervisorFlavour.Pr });
        var r = reference.GetVcpu(0);
        r.SetGuestDebug(GuestDebug.SingleStep);
        return new Pair { Debugged = f, Reference = r };
    }

    private static void StepTo(Pair p, string symbol)
    {
        ulong target = p.Debugged.Image.Symbol(symbol);
        for (int i = 0; i < 200 && p.State.Nip != target; i++) p.Step();
        Assert.Equal(target, p.State.Nip);
    }

    [Fact]
    public void Step_over_mfmsr_hides_host_SE()
    {
        var p = Build("    mfmsr 5\n    b .\n");
        p.Step();
        Assert.Equal(0UL, p.State.Gpr[5] & Msr.SE);
        Assert.Equal(0UL, p.State.Msr & Msr.SE);
    }

    [Fact]
    public void Step_preserves_the_guests_SRR0_and_SRR1()
    {
        var p = Build("    li 5, 0x1234\n    mtsrr0 5\n    li 6, 0x5678\n    mtsrr1 6\n    addi 7, 7, 1\n    b .\n");
        for (int i = 0; i < 5; i++) p.Step();
        Assert.Equal(0x1234UL, p.State.Srr0);
        Assert.Equal(0x5678UL, p.State.Srr1);
    }

    [Fact]
    public void Step_over_mtmsrd_that_sets_SE_lets_the_guest_trace_from_the_next_instruction()
    {
        var p = Build("    mfmsr 5\n    ori 5, 5, 0x400\n    mtmsrd 5\n    addi 6, 6, 1\n    b .\n");
        for (int i = 0; i < 3; i++) p.Step();
        Assert.NotEqual(0UL, p.State.Msr & Msr.SE);
        var stop = p.Step(); // the addi is traced by the guest itself: the stop is at its Trace handler
        Assert.Equal(0xD00UL, p.State.Nip);
        Assert.Equal(nameof(TraceStep.Completion.GuestTrace), stop.Event.StepCompletion);
        Assert.Equal(Srr1Bits.Bit33, p.State.Srr1 & Srr1Bits.Bit33);
    }

    [Fact]
    public void Step_over_mtmsrd_that_clears_SE_is_the_guests_last_trace()
    {
        var p = Build("    mfmsr 5\n    ori 5, 5, 0x400\n    mtmsrd 5\n    li 6, 0x400\n    andc 5, 5, 6\n    mtmsrd 5\n    addi 7, 7, 1\n    b .\n");
        for (int i = 0; i < 30 && p.State.Gpr[7] == 0; i++) p.Step();
        Assert.Equal(1UL, p.State.Gpr[7]);
        Assert.Equal(0UL, p.State.Msr & Msr.SE);
        Assert.Equal(3UL, p.State.Gpr[31]); // li, andc and the mtmsrd that cleared SE (traced by the SE before it)
    }

    [Fact]
    public void Step_over_mtmsrd_that_turns_relocation_on_ends_at_the_AIL_Trace_handler_and_is_undone()
    {
        var p = Build("""
                li 3, 0x31C
                li 4, 3
                li 5, 3
                li 6, 0
                li 7, 0
                sc 1
                mfmsr 5
                ori 5, 5, 0x30
                mtmsrd 5
            relocated:
                addi 8, 8, 1
                b .
            """);
        StepTo(p, "relocated");
        Assert.Equal(Msr.IR | Msr.DR, p.State.Msr & (Msr.IR | Msr.DR));
        Assert.Equal(3, Lpcr.Ail(p.State.Lpcr));
    }

    [Fact]
    public void Step_over_rfid_ends_at_its_target_before_the_target_executes()
    {
        var p = Build("""
                lis 5, target@ha
                addi 5, 5, target@l
                mtsrr0 5
                mfmsr 6
                mtsrr1 6
                rfid
                b .
            target:
                addi 9, 9, 1
                b .
            """);
        ulong target = p.Debugged.Image.Symbol("target");
        for (int i = 0; i < 6; i++) p.Step();
        Assert.Equal(target, p.State.Nip);
        Assert.Equal(0UL, p.State.Gpr[9]);
    }

    [Fact]
    public void Step_over_rfid_to_its_own_address_completes_there()
    {
        var p = Build("    lis 5, back@h\n    ori 5, 5, back@l\n    mtsrr0 5\n    mfmsr 6\n    mtsrr1 6\nback:\n    rfid\n");
        ulong back = p.Debugged.Image.Symbol("back");
        StepTo(p, "back");
        var stop = p.Step();
        Assert.Equal((StopReason.StepCompleted, back, 1), (stop.Event.Reason, stop.Event.Nip, stop.Event.Steps));
        p.Step();
        Assert.Equal(back, p.State.Nip);
    }

    [Fact]
    public void Step_over_rfid_to_an_address_without_translation_ends_there_and_the_next_step_at_the_ISI_handler()
    {
        // 0x4000000 is beyond this VM's 16 MiB: the fetch there faults, but only on the next step, as the hardware's.
        var p = Build("    lis 5, 0x400\n    mtsrr0 5\n    mfmsr 6\n    mtsrr1 6\n    rfid\n");
        for (int i = 0; i < 5; i++) p.Step();
        Assert.Equal(0x4000000UL, p.State.Nip);
        p.Step();
        Assert.Equal(0x400UL, p.State.Nip);
        Assert.Equal(0x4000000UL, p.State.Srr0);
    }

    [Fact]
    public void Step_over_rfid_into_32_bit_mode_ends_at_SRR0s_low_word()
    {
        // The MSR rfid installs has SF = 0, so it returns to 0x00000000 || SRR0[32:61] || 0b00 (Book III §4.4.3): SRR0's high
        // word (1 here) is dropped — also where the step's breakpoint goes.
        var p = Build("    lis 5, there@h\n    ori 5, 5, there@l\n    li 6, 1\n    sldi 6, 6, 32\n    or 5, 5, 6\n    mtsrr0 5\n"
            + "    mfmsr 7\n    clrldi 7, 7, 1\n    mtsrr1 7\n    rfid\nthere:\n    addi 8, 8, 1\n    b .\n");
        StepTo(p, "there");
        Assert.Equal(0UL, p.State.Msr & Msr.SF);
        p.Step();
        Assert.Equal(1UL, p.State.Gpr[8]);
    }

    [Fact]
    public void Step_over_rfscv_to_an_address_without_translation_ends_there_and_the_next_step_at_the_ISI_handler()
    {
        // rfscv returns through LR and CTR: 0x4000000 is beyond this VM's 16 MiB, as for the rfid above.
        var p = Build("    lis 5, 0x400\n    mtlr 5\n    mfmsr 6\n    mtctr 6\n    rfscv\n");
        for (int i = 0; i < 5; i++) p.Step();
        Assert.Equal(0x4000000UL, p.State.Nip);
        p.Step();
        Assert.Equal(0x400UL, p.State.Nip);
        Assert.Equal(0x4000000UL, p.State.Srr0);
    }

    [Fact]
    public void Step_over_rfid_with_the_guests_SE_in_SRR1_then_stops_at_the_guests_Trace_handler()
    {
        var p = Build("""
                lis 5, target@ha
                addi 5, 5, target@l
                mtsrr0 5
                mfmsr 6
                ori 6, 6, 0x400
                mtsrr1 6
                rfid
            target:
                addi 9, 9, 1
                b .
            """);
        StepTo(p, "target");
        Assert.NotEqual(0UL, p.State.Msr & Msr.SE);
        p.Step();
        Assert.Equal(0xD00UL, p.State.Nip);
        Assert.Equal(p.Debugged.Image.Symbol("target") + 4, p.State.Srr0);
    }

    [Fact]
    public void Step_over_sc_ends_at_the_first_instruction_of_the_system_call_handler()
    {
        var p = Build("    sc\n    b .\n");
        var stop = p.Step();
        Assert.Equal(0xC00UL, p.State.Nip);
        Assert.Equal(nameof(TraceStep.Completion.Interrupted), stop.Event.StepCompletion);
        Assert.Equal(0UL, p.State.Srr1 & Msr.SE); // the host's SE never reaches the guest's SRR1
    }

    [Fact]
    public void Step_over_a_trap_that_traps_ends_at_the_program_handler()
    {
        var p = Build("    li 5, 3\n    tweq 5, 5\n    b .\n");
        p.Step();
        p.Step();
        Assert.Equal(0x700UL, p.State.Nip);
        Assert.Equal(Srr1Bits.ProgramTrap, p.State.Srr1 & Srr1Bits.ProgramTrap);
    }

    [Fact]
    public void Step_over_a_faulting_load_ends_at_the_DSI_handler()
    {
        var p = Build("    lis 5, 0x7000\n    ld 6, 0(5)\n    b .\n");
        p.Step();
        p.Step();
        Assert.Equal(0x300UL, p.State.Nip);
        Assert.Equal(0x70000000UL, p.State.Dar);
    }

    [Fact]
    public void Step_when_AIL_changes_by_H_SET_MODE_between_steps_uses_the_new_Trace_handler()
    {
        var p = Build("""
                mfmsr 5
                ori 5, 5, 0x30
                mtmsrd 5
                li 3, 0x31C
                li 4, 3
                li 5, 3
                li 6, 0
                li 7, 0
                sc 1
            after:
                addi 8, 8, 1
                addi 8, 8, 1
                b .
            """);
        StepTo(p, "after");
        p.Step();
        p.Step();
        Assert.Equal(2UL, p.State.Gpr[8]);
    }

    [Fact]
    public void Step_starting_at_the_Trace_handler_executes_its_first_instruction_once()
    {
        var p = Build("    mfmsr 5\n    ori 5, 5, 0x400\n    mtmsrd 5\n    addi 6, 6, 1\n    b .\n");
        for (int i = 0; i < 4; i++) p.Step();
        Assert.Equal(0xD00UL, p.State.Nip);
        p.Step(); // addi 31, 31, 1 at the handler itself
        Assert.Equal(1UL, p.State.Gpr[31]);
        p.Step(); // its rfid
        Assert.Equal(1UL, p.State.Gpr[31]);
    }

    [Fact]
    public void A_user_breakpoint_at_the_Trace_handler_coexists_with_steps()
    {
        var p = Build("    addi 5, 5, 1\n    addi 5, 5, 1\n    b .\n");
        uint original = p.Debugged.RawWord(0xD00);
        var changed = Assert.IsType<BreakpointChanged>(p.Debugged.Ask(new InsertBreakpoint(0xD00)));
        Assert.True(changed.Changed);
        p.Debugged.Step(0, SchedulerLocking.On);
        p.Debugged.Step(0, SchedulerLocking.On);
        Assert.Equal(2UL, p.State.Gpr[5]);
        Assert.Equal(0x00dddd00u, p.Debugged.RawWord(0xD00)); // the user's breakpoint is still planted
        Assert.IsType<BreakpointChanged>(p.Debugged.Ask(new RemoveBreakpoint(0xD00)));
        Assert.Equal(original, p.Debugged.RawWord(0xD00));
    }

    [Fact]
    public void A_user_breakpoint_reached_mid_step_ends_the_step_there_with_nothing_left_behind()
    {
        // Stepping three instructions with interrupts allowed: the decrementer is taken and its handler
        // starts at a user breakpoint, which ends the step after two.
        var p = Build("""
                li 5, 0
                mtdec 5
                mfmsr 5
                ori 5, 5, 0x8000
                mtmsrd 5, 1
                addi 6, 6, 1
                b .
            """);
        ulong addi = p.Debugged.Image.Symbol("_start") + 20;
        for (int i = 0; i < 4; i++) p.Step();
        Assert.IsType<BreakpointChanged>(p.Debugged.Ask(new InsertBreakpoint(0x900)));
        var stop = p.Debugged.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, hold: false, count: 3);
        Assert.Equal(StopReason.Breakpoint, stop.Event.Reason);
        Assert.Equal(0x900UL, p.State.Nip);
        Assert.Equal(0UL, p.State.Msr & Msr.SE);
        Assert.Equal(addi, p.State.Srr0);
        Assert.Equal(0UL, p.State.Srr1 & Msr.SE);
        Assert.Equal(1, Assert.IsType<VmDescription>(p.Debugged.Ask(new Describe())).BreakpointCount); // only the user's
    }

    private const string DecrementerDue = """
            li 5, 0
            mtdec 5
            mfmsr 5
            ori 5, 5, 0x8000
            mtmsrd 5, 1
            addi 6, 6, 1
            addi 6, 6, 1
            b .
        """;

    [Fact]
    public void Step_with_interrupts_allowed_may_end_at_the_first_instruction_of_the_decrementer_handler()
    {
        var p = Build(DecrementerDue);
        for (int i = 0; i < 5; i++) p.Step();
        var stop = p.Debugged.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, hold: false);
        Assert.Equal(nameof(TraceStep.Completion.Interrupted), stop.Event.StepCompletion);
        Assert.Equal(0x900UL, p.State.Nip);
        Assert.Equal(p.Debugged.Image.Symbol("_start") + 20, p.State.Srr0);
        Assert.Equal(0UL, p.State.Srr1 & Msr.SE);
    }

    [Fact]
    public void Step_with_interrupts_held_executes_the_instruction_and_the_decrementer_waits()
    {
        var f = new EngineFixture(Sys, Vectors + DecrementerDue, vcpus: 1, runModel: RunModel);
        for (int i = 0; i < 5; i++) f.Step(0, SchedulerLocking.On);
        f.Step(0, SchedulerLocking.On);
        var s = f.Registers(0);
        Assert.Equal(1UL, s.Gpr[6]);
        Assert.True((int)s.Dec < 0, "the decrementer is due");
        // Released on continue: the interrupt is taken at the next instruction boundary.
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(0x900)));
        f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal(0x900UL, f.Registers(0).Nip);
        Assert.Equal(f.Image.Symbol("_start") + 24, f.Registers(0).Srr0);
    }

    [Fact]
    public void The_PR_backend_steps_with_the_hardware_capability_and_plants_no_breakpoint()
    {
        var p = Build("    addi 5, 5, 1\n    sc\n    b .\n", HypervisorFlavour.Pr);
        uint traceWord = p.Debugged.RawWord(0xD00);
        p.Step();
        p.Step();
        Assert.Equal(0xC00UL, p.State.Nip);
        Assert.Equal(traceWord, p.Debugged.RawWord(0xD00));
    }
    private const string GuestDebugInstruction = "    addi 5, 5, 1\n    .long 0x00dddd00\nafter:\n    addi 6, 6, 1\n    b .\n";

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void Step_over_the_guests_own_debug_instruction_ends_at_the_program_handler_as_an_illegal_instruction(HypervisorFlavour flavour)
    {
        var p = Build(GuestDebugInstruction, flavour);
        ulong own = p.Debugged.Image.Symbol("_start") + 4;
        p.Step();
        var stop = p.Step();
        Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
        Assert.Equal(0x700UL, p.State.Nip);
        Assert.Equal(own, p.State.Srr0);
        Assert.Equal(Srr1Bits.ProgramIllegal, p.State.Srr1 & Srr1Bits.ProgramIllegal);
        StepTo(p, "after"); // through the handler, which skips the word, compared step by step
        p.Step();
        Assert.Equal(1UL, p.State.Gpr[6]);
    }

    [Fact]
    public void Continue_over_the_guests_own_debug_instruction_runs_its_program_handler()
    {
        var f = new EngineFixture(Sys, Vectors + GuestDebugInstruction.Replace("    b .", "done:\n    b ."), vcpus: 1, runModel: RunModel);
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(f.Image.Symbol("done"))));
        var stop = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal(StopReason.Breakpoint, stop.Event.Reason);
        var s = f.Registers(0);
        Assert.Equal(f.Image.Symbol("done"), s.Nip);
        Assert.Equal(1UL, s.Gpr[6]);
        Assert.Equal(f.Image.Symbol("after"), s.Srr0); // the handler moved SRR0 past the illegal word
        Assert.Equal(Srr1Bits.ProgramIllegal, s.Srr1 & Srr1Bits.ProgramIllegal);
    }

    [Fact]
    public void A_user_breakpoint_on_the_guests_own_debug_instruction_is_reported_once_then_the_instruction_raises_its_interrupt()
    {
        var f = new EngineFixture(Sys, Vectors + "    addi 5, 5, 1\nown:\n    .long 0x00dddd00\n    addi 6, 6, 1\ndone:\n    b .\n", vcpus: 1, runModel: RunModel);
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(f.Image.Symbol("own"))));
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(f.Image.Symbol("done"))));
        var continueAll = new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue };
        var first = f.Resume(continueAll);
        Assert.Equal((StopReason.Breakpoint, f.Image.Symbol("own")), (first.Event.Reason, first.Event.Nip));
        var second = f.Resume(continueAll);
        Assert.Equal((StopReason.Breakpoint, f.Image.Symbol("done")), (second.Event.Reason, second.Event.Nip));
        var s = f.Registers(0);
        Assert.Equal(1UL, s.Gpr[6]);
        Assert.Equal(Srr1Bits.ProgramIllegal, s.Srr1 & Srr1Bits.ProgramIllegal);
    }

    [Fact]
    public void A_debug_instruction_that_is_the_guests_program_handler_checkstops_the_vcpu_instead_of_trapping_forever()
    {
        var f = new EngineFixture(Sys, ".org 0x700\n    .long 0x00dddd00\n    .org 0x5000\n    .globl _start\n_start:\n    .long 0x00dddd00\n", vcpus: 1, runModel: RunModel);
        var stop = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal(StopReason.Checkstop, stop.Event.Reason);
        Assert.Equal(0x700UL, stop.Event.Nip);
        Assert.Contains("cannot recover", stop.Event.Detail);
    }
}

/// <summary>Every test of <see cref="StepCasesTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class StepCasesTestsOnAnAllStopBackend : StepCasesTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
