using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Engine;

/// <summary>
/// The vcpu engine driven directly, with no ActorSystem: what one slice does to the guest and to the VM's breakpoint
/// table (step-engine.md §3–4, invariants 2 and 4).
/// </summary>
public class VcpuEngineTests
{
    private const string Straight = """
            .org 0xD00
        trace_handler:
            addi 31, 31, 1
            rfid
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            addi 5, 5, 1
            addi 5, 5, 1
            addi 5, 5, 1
            addi 5, 5, 1
            b _start
        """;

    /// <summary>vcpu 0 loops at <c>stepped</c>; vcpu 1 (r3 = 1) branches to the Trace handler, where vcpu 0's step plants its breakpoint.</summary>
    private const string IntoTheTraceHandler = """
            .org 0xD00
        trace_handler:
            addi 31, 31, 1
            rfid
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 1
            beq other
        stepped:
            addi 5, 5, 1
            b stepped
        other:
            li 4, 0xD00
            mtctr 4
            bctr
        """;

    private const ulong TraceHandler = 0xD00;

    private sealed record Loaded(ElfImage Image, SimulatedMachine Vm, BreakpointTable Table)
    {
        public VcpuEngine Engine(int vcpu) => new(Vm, vcpu, Table);
        public IVcpu Vcpu(int vcpu) => Vm.GetVcpu(vcpu);
        public uint Word(ulong ra) => Vm.Memory.ReadUInt32(ra, littleEndian: false);
    }

    private static Loaded Load(string source, int vcpus = 1)
    {
        var image = GuestAssembler.Build(source, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(vcpus, 16UL << 20));
        return new Loaded(image, vm, new BreakpointTable(vm));
    }

    /// <summary>The simulator behind capabilities that say asynchronous interrupts cannot be held (QEMU's KVM path).</summary>
    private sealed class CannotHoldInterrupts(SimulatedMachine inner) : ForwardingVirtualMachine(inner)
    {
        public override HypervisorCapabilities Capabilities { get; } = inner.Capabilities with { HoldsAsyncInterrupts = false };
    }

    [Theory]
    [InlineData(true, 0x900UL, TraceStep.Completion.Interrupted)]
    [InlineData(false, 0x1004UL, TraceStep.Completion.Completed)]
    public void A_step_asked_to_hold_interrupts_ends_at_a_due_decrementers_handler_only_where_the_backend_cannot_hold_them(
        bool backendCannotHold, ulong expectedNip, TraceStep.Completion expected)
    {
        var g = Load(Straight);
        IVirtualMachine vm = backendCannotHold ? new CannotHoldInterrupts(g.Vm) : g.Vm;
        var table = new BreakpointTable(vm);
        var s = g.Vcpu(0).GetRegisters();
        s.Msr |= Msr.EE;
        s.Dec = 0xFFFF_FFFF; // due now
        g.Vcpu(0).SetRegisters(s);

        var r = new VcpuEngine(vm, 0, table).RunSlice(new SliceRequest(1000, SliceMode.Step, HoldAsyncInterrupts: true));

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((expected, expectedNip), (r.Step!.Completion, r.State.Nip));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void One_step_retires_exactly_one_instruction_and_leaves_no_breakpoint_and_the_guests_own_SE()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        uint traceWord = g.Word(TraceHandler);
        var reference = SimulatedMachine.Load(g.Image, g.Vm.Options).GetVcpu(0);
        long retired = g.Vcpu(0).InstructionsRetired;

        var r = engine.RunSlice(new SliceRequest(1000, SliceMode.Step));

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((TraceStep.Completion.Completed, g.Image.Entry, g.Image.Entry + 4, 1), (r.Step!.Completion, r.Step.From, r.Step.To, r.Step.Steps));
        Assert.Equal(1, g.Vcpu(0).InstructionsRetired - retired);
        reference.Run(1);
        var diff = reference.GetRegisters().Differences(g.Vcpu(0).GetRegisters());
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0UL, g.Vcpu(0).GetRegisters().Msr & Msr.SE);
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(traceWord, g.Word(TraceHandler));
        Assert.False(engine.Stepping);
    }

    [Fact]
    public void A_step_of_a_guest_that_traces_itself_ends_at_its_Trace_handler_with_its_own_SE_in_SRR1()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        var s = engine.Registers.Clone();
        s.Msr |= Msr.SE;
        engine.SetRegisters(s);

        var r = engine.RunSlice(new SliceRequest(1000, SliceMode.Step));

        Assert.Equal((SliceOutcome.StepDone, TraceStep.Completion.GuestTrace), (r.Outcome, r.Step!.Completion));
        var now = g.Vcpu(0).GetRegisters();
        Assert.Equal(TraceHandler, now.Nip);
        Assert.Equal(g.Image.Entry + 4, now.Srr0);
        Assert.Equal(Msr.SE, now.Srr1 & Msr.SE);
        Assert.Equal(0UL, now.Msr & Msr.SE); // the interrupt cleared it, as it would undebugged
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void A_step_with_a_count_stops_after_that_many_instructions()
    {
        var g = Load(Straight);
        long retired = g.Vcpu(0).InstructionsRetired;

        var r = g.Engine(0).RunSlice(new SliceRequest(1000, SliceMode.Step, StepCount: 3));

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((3, g.Image.Entry, g.Image.Entry + 12), (r.Step!.Steps, r.Step.From, r.Step.To));
        Assert.Equal(3, g.Vcpu(0).InstructionsRetired - retired);
        Assert.Equal(3UL, r.State.Gpr[5]);
        Assert.Equal(0, g.Table.Count);
    }

    /// <summary>Returns with rfid into <c>armed</c> with MSR[EE]=1, arms the decrementer to fall due 20 instructions later, then
    /// counts in r5; the decrementer's handler (0x900) counts in r20, pushes DEC far away and returns.</summary>
    private const string DecrementerAfterAnRfid = """
            .org 0x900
        decrementer:
            addi 20, 20, 1
            lis 21, 0x7fff
            mtdec 21
            rfid
            .org 0x1000
            .globl _start
        _start:
            mfmsr 6
            ori 6, 6, 0x8000
            mtsrr1 6
            li 7, armed
            mtsrr0 7
            rfid
        armed:
            li 4, 20
            mtdec 4
            .rept 60
            addi 5, 5, 1
            .endr
            b .
        """;

    [Theory]
    [InlineData(1000)] // every step of the count in one slice
    [InlineData(3)] // the count goes on over many slices
    public void A_counted_step_with_interrupts_allowed_takes_a_decrementer_that_falls_due_after_an_rfid_in_the_count_where_it_falls_due(
        long slice)
    {
        // An rfid's step holds interrupts (its end is the next fetch); that hold must end with it, not last the whole count.
        var g = Load(DecrementerAfterAnRfid);
        var engine = g.Engine(0);
        var reference = SimulatedMachine.Load(g.Image, g.Vm.Options).GetVcpu(0);
        ulong rfid = g.Image.Symbol("armed") - 4;
        var request = new SliceRequest(slice, SliceMode.Step, HoldAsyncInterrupts: false, StepCount: 50);
        Assert.Equal(SliceOutcome.StepDone, engine.RunSlice(new SliceRequest(1000, SliceMode.Step, StepCount: 5)).Outcome);
        Assert.Equal(rfid, g.Vcpu(0).GetRegisters().Nip);
        reference.Run(5);

        SliceResult r;
        do r = engine.RunSlice(request); while (r.Outcome == SliceOutcome.Ran);

        Assert.Equal((SliceOutcome.StepDone, 50), (r.Outcome, r.Step!.Steps));
        var now = g.Vcpu(0).GetRegisters();
        reference.Run((long)(now.Tb - reference.GetRegisters().Tb));
        var diff = reference.GetRegisters().Differences(now);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(1UL, now.Gpr[20]); // the handler ran, within the count
        Assert.Equal(0, g.Table.Count);
    }

    /// <summary>Arms the decrementer to fall due 300 ticks later and cedes (H_CEDE); the handler (0x900) counts in r20.</summary>
    private const string CedesUntilTheDecrementer = """
            .org 0x900
        decrementer:
            addi 20, 20, 1
            lis 21, 0x7fff
            mtdec 21
            rfid
            .org 0x1000
            .globl _start
        _start:
            li 4, 300
            mtdec 4
            li 3, 0xE0
            sc 1
        after:
            addi 6, 6, 1
            b after
        """;

    [Fact]
    public void A_step_of_an_H_CEDE_with_interrupts_allowed_ends_at_the_handler_of_the_decrementer_that_wakes_it_when_it_falls_due()
    {
        var g = Load(CedesUntilTheDecrementer);
        var engine = g.Engine(0);
        var reference = SimulatedMachine.Load(g.Image, g.Vm.Options).GetVcpu(0);
        ulong after = g.Image.Symbol("after");

        var r = engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, HoldAsyncInterrupts: false, StepCount: 4));

        Assert.Equal((SliceOutcome.StepDone, TraceStep.Completion.Interrupted, 0x900UL), (r.Outcome, r.Step!.Completion, r.State.Nip));
        var now = g.Vcpu(0).GetRegisters();
        Assert.Equal(after, now.Srr0);
        // The undebugged vcpu woke at the same count (the decrementer fell due) and takes it at its next instruction.
        while (reference.GetRegisters().Tb < now.Tb) reference.Run((long)(now.Tb - reference.GetRegisters().Tb));
        var expected = reference.GetRegisters();
        Assert.Equal((after, now.Tb), (expected.Nip, expected.Tb));
        var entry = InterruptEntry.Of(InterruptKind.Decrementer, expected.Msr, expected.Lpcr, expected.Nip, 0);
        (expected.Nip, expected.Msr, expected.Srr0, expected.Srr1) = (entry.Nip, entry.Msr, entry.Srr0, entry.Srr1);
        var diff = expected.Differences(now);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void A_counted_step_longer_than_the_slice_goes_on_in_the_next_slice()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        var request = new SliceRequest(2, SliceMode.Step, StepCount: 3);

        var first = engine.RunSlice(request);
        Assert.Equal(SliceOutcome.Ran, first.Outcome);
        Assert.True(engine.Stepping);
        var second = engine.RunSlice(request);

        Assert.Equal(SliceOutcome.StepDone, second.Outcome);
        Assert.Equal((3, g.Image.Entry, g.Image.Entry + 12), (second.Step!.Steps, second.Step.From, second.Step.To));
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void A_range_step_goes_on_while_NIP_is_in_the_range()
    {
        var g = Load(Straight);
        var range = new StepRange(g.Image.Entry, g.Image.Entry + 12);

        var r = g.Engine(0).RunSlice(new SliceRequest(1000, SliceMode.Step, Range: range));

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((3, g.Image.Entry + 12), (r.Step!.Steps, r.State.Nip));
        Assert.Equal(3UL, r.State.Gpr[5]);
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void Abandoning_a_prepared_step_leaves_nothing_behind()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        uint traceWord = g.Word(TraceHandler);
        var before = g.Vcpu(0).GetRegisters();

        Assert.Equal(SliceOutcome.Ran, engine.RunSlice(new SliceRequest(0, SliceMode.Step)).Outcome); // plan and plant only
        Assert.True(engine.Stepping);
        Assert.Equal(g.Vm.Capabilities.DebugInstruction, g.Word(TraceHandler));
        Assert.Equal(Msr.SE, g.Vcpu(0).GetRegisters().Msr & Msr.SE); // the host's, armed

        engine.Abandon();

        Assert.False(engine.Stepping);
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(traceWord, g.Word(TraceHandler));
        Assert.Equal(before, g.Vcpu(0).GetRegisters());
        Assert.Equal(before, engine.Registers);
    }

    [Fact]
    public void Abandoning_a_step_whose_Trace_was_taken_but_not_yet_caught_completes_it_and_leaves_nothing_behind()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        uint traceWord = g.Word(TraceHandler);

        // Two of five steps fit the budget; the second's Trace interrupt is taken as the budget ends, before the fetch at
        // the handler would trap on the step's breakpoint.
        Assert.Equal(SliceOutcome.Ran, engine.RunSlice(new SliceRequest(2, SliceMode.Step, StepCount: 5)).Outcome);
        Assert.True(engine.Stepping);
        Assert.Equal(TraceHandler, g.Vcpu(0).GetRegisters().Nip);

        engine.Abandon();

        Assert.False(engine.Stepping);
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(traceWord, g.Word(TraceHandler));
        var s = g.Vcpu(0).GetRegisters();
        Assert.Equal((g.Image.Entry + 8, 2UL, 0UL, 0UL), (s.Nip, s.Gpr[5], s.Srr0, s.Srr1));
        Assert.Equal(0UL, s.Msr & Msr.SE);
        Assert.Equal(s, engine.Registers);
    }

    [Fact]
    public void A_vcpu_that_traps_on_another_vcpus_step_breakpoint_is_parked_with_its_state_intact()
    {
        var g = Load(IntoTheTraceHandler, vcpus: 2);
        var stepper = g.Engine(0);
        var other = g.Engine(1);
        Assert.Equal(SliceOutcome.Ran, stepper.RunSlice(new SliceRequest(0, SliceMode.Step)).Outcome); // plants at the Trace handler

        var parked = other.RunSlice(new SliceRequest(1000, SliceMode.Continue));

        Assert.Equal((SliceOutcome.Parked, TraceHandler), (parked.Outcome, parked.Address));
        Assert.Contains("step of vcpu 0", parked.Detail);
        Assert.Equal((TraceHandler, 0UL), (parked.State.Nip, parked.State.Gpr[31]));
        // Once the owner's step is over, the parked vcpu re-enters and runs the instruction it trapped on, once.
        Assert.Equal(SliceOutcome.StepDone, stepper.RunSlice(new SliceRequest(1000, SliceMode.Step)).Outcome);
        Assert.Equal(0, g.Table.Count);
        var reentered = other.RunSlice(new SliceRequest(1000, SliceMode.Reenter));
        Assert.Equal(SliceOutcome.StepDone, reentered.Outcome);
        Assert.Equal((TraceHandler + 4, 1UL), (reentered.State.Nip, reentered.State.Gpr[31]));
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void Continue_stops_at_a_user_breakpoint_and_the_next_continue_steps_off_it()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        ulong third = g.Image.Entry + 8;
        g.Table.Insert(third, BreakpointOwner.User.Instance, third);

        var hit = engine.RunSlice(new SliceRequest(1000, SliceMode.Continue));
        Assert.Equal((SliceOutcome.BreakpointHit, third, 2UL), (hit.Outcome, hit.State.Nip, hit.State.Gpr[5]));
        var next = engine.RunSlice(new SliceRequest(1000, SliceMode.Continue));

        Assert.Equal((SliceOutcome.BreakpointHit, third), (next.Outcome, next.State.Nip));
        Assert.Equal(7UL, next.State.Gpr[5]); // once around the loop: five addi, then the two before the breakpoint
        Assert.Equal(1, g.Table.Count); // only the user's
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_continue_cut_short_while_stepping_off_a_user_breakpoint_leaves_no_step_breakpoint_and_the_next_continue_steps_off_again(bool exitRequested)
    {
        // The continue's first act is a step off the breakpoint at NIP. A halt or another vcpu's event may end the slice
        // before the vcpu ran (its exit request, or the all-stop ending the slice): the VM is stopped and reported, so the
        // step's breakpoint must not stay in guest memory (GetVm counts it), nor be run into by the next continue.
        var g = Load(Straight);
        var engine = g.Engine(0);
        ulong third = g.Image.Entry + 8;
        g.Table.Insert(third, BreakpointOwner.User.Instance, third);
        Assert.Equal(SliceOutcome.BreakpointHit, engine.RunSlice(new SliceRequest(1000, SliceMode.Continue)).Outcome);

        Assert.Null(engine.Begin(new SliceRequest(1000, SliceMode.Continue)));
        Assert.Equal(2, g.Table.Count); // the user's, and the step off it
        var cut = exitRequested ? engine.OnExit(new VcpuExit(ExitReason.BudgetExpired, third))!.Value : engine.EndSlice();

        Assert.Equal((SliceOutcome.Ran, third, 2UL), (cut.Outcome, cut.State.Nip, cut.State.Gpr[5]));
        Assert.Equal(1, g.Table.Count); // only the user's
        Assert.Equal(0UL, g.Vcpu(0).GetRegisters().Msr & Msr.SE);
        var next = engine.RunSlice(new SliceRequest(1000, SliceMode.Continue));
        Assert.Equal((SliceOutcome.BreakpointHit, third, 7UL), (next.Outcome, next.State.Nip, next.State.Gpr[5]));
        Assert.Equal(1, g.Table.Count);
    }

    [Fact]
    public void A_step_of_the_H_CEDE_itself_completes_and_the_next_step_with_interrupts_held_says_the_vcpu_is_ceded()
    {
        var g = Load(CedingGuest.Source, vcpus: 2);
        var engine = g.Engine(1);
        ulong after = g.Image.Symbol("after");

        var ceded = engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, StepCount: CedingGuest.StepsToCede));
        Assert.Equal((SliceOutcome.StepDone, after, CedingGuest.StepsToCede), (ceded.Outcome, ceded.State.Nip, ceded.Step!.Steps));
        Assert.Equal(0, g.Table.Count);

        var idle = engine.RunSlice(new SliceRequest(10_000, SliceMode.Step));
        Assert.Equal((SliceOutcome.Ceded, after), (idle.Outcome, idle.State.Nip));
        Assert.Null(idle.Step);
        Assert.Equal("vcpu 1 is idle in H_CEDE at 0x" + after.ToString("x") + ": an H_PROD from another vcpu, a decrementer or an " +
                     "external interrupt would wake it, and this step holds the decrementer and external interrupts", idle.Detail);
        Assert.Equal(0UL, g.Vcpu(1).GetRegisters().Gpr[6]);
        Assert.True(engine.Stepping); // planted until the coordinator cancels it
        engine.Abandon();
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(0UL, g.Vcpu(1).GetRegisters().Msr & Msr.SE);
    }

    [Fact]
    public void A_ceded_vcpu_that_may_take_the_decrementer_is_only_Idle_and_its_step_ends_at_the_handler_that_wakes_it()
    {
        var g = Load(CedingGuest.Source, vcpus: 2);
        var engine = g.Engine(1);
        engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, StepCount: CedingGuest.StepsToCede));

        SliceResult r;
        int slices = 0;
        do r = engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, HoldAsyncInterrupts: false));
        while (r.Outcome == SliceOutcome.Idle && ++slices < 100);

        Assert.Equal((SliceOutcome.StepDone, CedingGuest.DecrementerHandler, TraceStep.Completion.Interrupted),
            (r.Outcome, r.State.Nip, r.Step!.Completion));
        Assert.InRange(slices, 1, 10); // the decrementer was armed 65536 ticks ahead: a few slices of idle time
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void A_continuing_ceded_vcpu_is_only_Idle_and_the_decrementer_wakes_it()
    {
        var g = Load(CedingGuest.Source, vcpus: 2);
        var engine = g.Engine(1);
        engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, StepCount: CedingGuest.StepsToCede));
        g.Table.Insert(CedingGuest.DecrementerHandler, BreakpointOwner.User.Instance, CedingGuest.DecrementerHandler);

        SliceResult r;
        int slices = 0;
        do r = engine.RunSlice(new SliceRequest(10_000, SliceMode.Continue));
        while (r.Outcome == SliceOutcome.Idle && ++slices < 100);

        Assert.Equal((SliceOutcome.BreakpointHit, CedingGuest.DecrementerHandler), (r.Outcome, r.State.Nip));
    }

    [Fact]
    public void A_kept_breakpoint_stands_only_while_the_vcpu_is_at_it_and_a_user_breakpoint_is_there()
    {
        var g = Load(Straight);
        var engine = g.Engine(0);
        ulong third = g.Image.Entry + 8;
        g.Table.Insert(third, BreakpointOwner.User.Instance, third);
        var hit = engine.RunSlice(new SliceRequest(1000, SliceMode.Continue));
        Assert.Equal((SliceOutcome.BreakpointHit, third), (hit.Outcome, hit.State.Nip));

        Assert.True(engine.AtUserBreakpoint(third));
        Assert.False(engine.AtUserBreakpoint(third + 4));
        g.Table.Remove(third, BreakpointOwner.User.Instance);
        Assert.False(engine.AtUserBreakpoint(third));
        g.Table.Insert(third, BreakpointOwner.User.Instance, third);
        var moved = engine.Registers.Clone();
        moved.Nip = g.Image.Entry;
        engine.SetRegisters(moved);
        Assert.False(engine.AtUserBreakpoint(third));
    }
}
