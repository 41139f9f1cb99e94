using ActorStep.Actors.Engine;
using ActorStep.Actors.Vcpu;
using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>The actor protocols of VcpuActor and VmCoordinator (Akka.TestKit): replies, all-stop ordering, errors, failures.</summary>
public class CoordinatorProtocolTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const string TwoBreakpoints = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            addi 5, 5, 1
        meet:
            addi 6, 6, 1
            b _start
        """;

    [Fact]
    public void VcpuActor_answers_a_step_slice_with_StepDone_and_where_the_step_went()
    {
        var image = GuestAssembler.Build(TwoBreakpoints, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vcpu = Sys.ActorOf(VcpuActor.Props(vm, 0, new BreakpointTable(vm)));
        vcpu.Tell(new RunSlice(1000, SliceMode.Step));
        var ended = ExpectMsg<SliceEnded>();
        Assert.Equal(SliceOutcome.StepDone, ended.Outcome);
        Assert.Equal(image.Entry, ended.Step!.From);
        Assert.Equal(image.Entry + 4, ended.State.Nip);
        Assert.Equal(1UL, ended.State.Gpr[5]);
    }

    [Fact]
    public void VcpuActor_continue_slice_stops_at_a_user_breakpoint_without_executing_it()
    {
        var image = GuestAssembler.Build(TwoBreakpoints, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var table = new BreakpointTable(vm);
        table.Insert(image.Symbol("meet"), BreakpointOwner.User.Instance, image.Symbol("meet"));
        var vcpu = Sys.ActorOf(VcpuActor.Props(vm, 0, table));
        vcpu.Tell(new RunSlice(1000, SliceMode.Continue));
        var ended = ExpectMsg<SliceEnded>();
        Assert.Equal(SliceOutcome.BreakpointHit, ended.Outcome);
        Assert.Equal(image.Symbol("meet"), ended.State.Nip);
        Assert.Equal(0UL, ended.State.Gpr[6]);
    }

    [Fact]
    public void Two_vcpus_at_breakpoints_at_once_are_both_reported_one_per_resume_never_lost()
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, new CoordinatorOptions(Quantum: 100, Deterministic: true), runModel: RunModel);
        f.Ask(new InsertBreakpoint(f.Image.Symbol("meet")));
        var all = ContinueActions(0, 2, SchedulerLocking.Off);
        var first = f.Resume(all);
        var second = f.Resume(all);
        Assert.Equal(StopReason.Breakpoint, first.Event.Reason);
        Assert.Equal(StopReason.Breakpoint, second.Event.Reason);
        Assert.Equal(new[] { 0, 1 }, new[] { first.Event.Vcpu, second.Event.Vcpu }.Order());
        // The kept event was reported without running anything: vcpu 1 is still at the breakpoint.
        Assert.Equal(f.Image.Symbol("meet"), f.Registers(second.Event.Vcpu).Nip);
    }

    private const string MeetThenStop = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            addi 5, 5, 1
        meet:
            addi 6, 6, 1
            li 3, 0
            ori 3, 3, 0xF080
            li 4, 7
            sc 1
        """;

    [Fact]
    public void A_kept_breakpoint_event_whose_breakpoint_was_removed_is_not_reported_and_its_vcpu_executes_the_instruction_there()
    {
        // Deterministic on independent vcpus: both vcpus meet the breakpoint in one round, one is reported, the other kept.
        var f = new EngineFixture(Sys, MeetThenStop, vcpus: 2, new CoordinatorOptions(Quantum: 100, Deterministic: true), runModel: RunModel);
        ulong meet = f.Image.Symbol("meet");
        f.Ask(new InsertBreakpoint(meet));
        var first = f.Resume(ContinueActions(0, 2, SchedulerLocking.Off));
        Assert.Equal((StopReason.Breakpoint, meet), (first.Event.Reason, first.Event.Nip));
        int other = 1 - first.Event.Vcpu;
        if (RunModel == VcpuRunModel.IndependentVcpus) Assert.Equal(meet, f.Registers(other).Nip);

        Assert.True(Assert.IsType<BreakpointChanged>(f.Ask(new RemoveBreakpoint(meet))).Changed);
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
        var next = f.Resume(ContinueActions(0, 2, SchedulerLocking.Off));

        Assert.Equal(StopReason.GuestStopped, next.Event.Reason);
        Assert.Equal(1UL, f.Registers(next.Event.Vcpu).Gpr[6]);
        if (RunModel == VcpuRunModel.IndependentVcpus) Assert.Equal(1UL, f.Registers(other).Gpr[6]); // it ran the instruction at meet
    }

    [Fact]
    public void Halt_when_already_stopped_answers_at_once()
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, runModel: RunModel);
        var stop = Assert.IsType<Stopped>(f.Ask(new Halt()));
        Assert.Equal(StopReason.Halted, stop.Event.Reason);
        Assert.All(stop.Vcpus, v => Assert.Equal("stopped", v.State));
    }

    [Fact]
    public async Task A_second_resume_while_running_is_refused_as_busy()
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, runModel: RunModel);
        var running = f.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off)), EngineFixture.Timeout);
        await Eventually.HoldsAsync(() => Assert.IsType<VmDescription>(f.Ask(new Describe())).Running, "the first resume to run");
        Assert.False(running.IsCompleted);
        var second = Assert.IsType<Failed>(f.Ask(new Resume(ContinueActions(0, 2, SchedulerLocking.Off))));
        Assert.Equal(FailureCode.Busy, second.Code);
        f.Ask(new Halt());
        Assert.IsType<Stopped>(await running);
    }

    [Fact]
    public void Unknown_vcpu_is_NotFound_and_unaligned_breakpoint_is_InvalidArgument()
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, runModel: RunModel);
        Assert.Equal(FailureCode.NotFound, Assert.IsType<Failed>(f.Ask(new ReadRegisters(7))).Code);
        Assert.Equal(FailureCode.NotFound, Assert.IsType<Failed>(f.Ask(new Resume(new Dictionary<int, VcpuAction> { [9] = VcpuAction.Step }))).Code);
        Assert.Equal(FailureCode.InvalidArgument, Assert.IsType<Failed>(f.Ask(new InsertBreakpoint(0x1002))).Code);
        Assert.Equal(FailureCode.InvalidArgument, Assert.IsType<Failed>(f.Ask(new ReadMemory(0xFFFFFF0, 64, null))).Code);
    }

    [Fact]
    public void Stepping_a_vcpu_the_guest_stopped_for_good_is_a_failed_precondition()
    {
        var f = new EngineFixture(Sys, """
                .org 0x1000
                .globl _start
            _start:
                li 3, 0
                ori 3, 3, 0xF080
                li 4, 7
                sc 1
            """, vcpus: 1, runModel: RunModel);
        var stop = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal(StopReason.GuestStopped, stop.Event.Reason);
        Assert.Equal(7, stop.Event.Status);
        var failed = Assert.IsType<Failed>(f.Ask(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step })));
        Assert.Equal(FailureCode.FailedPrecondition, failed.Code);
        Assert.Contains("stopped for good", failed.Message);
    }

    [Fact]
    public void Stepping_a_guest_that_faults_for_good_reports_a_checkstop_then_refuses_further_steps()
    {
        var f = new EngineFixture(Sys, """
                .org 0x1000
                .globl _start
            _start:
                .long 0
            """, vcpus: 1, runModel: RunModel);
        var stop = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal(StopReason.Checkstop, stop.Event.Reason);
        Assert.Equal(FailureCode.FailedPrecondition, Assert.IsType<Failed>(f.Ask(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }))).Code);
    }

    [Fact]
    public async Task A_VcpuActor_that_fails_mid_step_is_restarted_and_leaves_no_breakpoint_and_no_SE_behind()
    {
        var image = GuestAssembler.Build(TwoBreakpoints, textAddress: 0);
        var inner = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vm = new FailingVm(inner);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        uint traceWord = Word(inner, 0xD00);
        vm.FailNextRun = true;
        var stop = await coordinator.Ask<Stopped>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }), EngineFixture.Timeout);
        Assert.Equal(StopReason.Error, stop.Event.Reason);
        Assert.Contains("abandoned", stop.Event.Detail);
        Assert.Equal(traceWord, Word(inner, 0xD00));
        Assert.Equal(0, (await coordinator.Ask<VmDescription>(new Describe(), EngineFixture.Timeout)).BreakpointCount);
        Assert.Equal(0UL, inner.GetVcpu(0).GetRegisters().Msr & Msr.SE);
        // The restarted actor serves the next step normally.
        var next = await coordinator.Ask<Stopped>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }), EngineFixture.Timeout);
        Assert.Equal(StopReason.StepCompleted, next.Event.Reason);
        Assert.Equal(image.Entry + 4, inner.GetVcpu(0).GetRegisters().Nip);
    }

    [Fact]
    public async Task A_halted_stop_carries_the_code_block_as_the_halted_vcpu_reads_it()
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, runModel: RunModel);
        var running = f.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off), CodeBytes: 64), EngineFixture.Timeout);
        await Task.Delay(20);
        var halted = Assert.IsType<Stopped>(f.Ask(new Halt()));
        var stop = Assert.IsType<Stopped>(await running);

        Assert.Equal(StopReason.Halted, stop.Event.Reason);
        var code = Assert.IsType<CodeBlock>(stop.Code);
        Assert.Equal(code, halted.Code);
        ulong nip = stop.State.Nip;
        Assert.Equal((nip & ~63UL) - 64, code.Address);
        var read = Assert.IsType<MemoryRead>(f.Ask(new ReadMemory(code.Address, code.Data.Length, stop.Event.Vcpu)));
        Assert.Equal(read.Data, code.Data);
    }

    private const string StoreIntoItsOwnCode = """
            .org 0x1000
            .globl _start
        _start:
            lis 3, 0x6000
            stw 3, patch(0)
            b _start
        patch:
            .long 0
        """;

    [Fact]
    public async Task A_step_that_stores_into_its_own_code_block_stops_with_the_block_as_the_store_left_it()
    {
        var f = new EngineFixture(Sys, StoreIntoItsOwnCode, vcpus: 1, runModel: RunModel);
        f.Step(0, SchedulerLocking.On);
        var stop = Assert.IsType<Stopped>(await f.Coordinator.Ask<object>(
            new Resume(StepActions(0, 1, SchedulerLocking.On), CodeBytes: 64), EngineFixture.Timeout));

        var code = Assert.IsType<CodeBlock>(stop.Code);
        ulong patch = f.Image.Symbol("patch");
        Assert.InRange(patch, code.Address, code.Address + (ulong)code.Data.Length - 4);
        var inMemory = new byte[4];
        f.Vm.ReadMemory(patch, inMemory);
        Assert.NotEqual(new byte[4], inMemory); // the store happened
        Assert.Equal(inMemory, code.Data.AsSpan((int)(patch - code.Address), 4).ToArray());
    }

    [Theory]
    [InlineData(SchedulerLocking.On)]  // only the stepped vcpu moves
    [InlineData(SchedulerLocking.Off)] // the others run meanwhile
    public async Task A_step_stop_carries_the_code_block_a_read_after_the_stop_returns(SchedulerLocking locking)
    {
        var f = new EngineFixture(Sys, TwoBreakpoints, vcpus: 2, runModel: RunModel);
        for (int i = 0; i < 3; i++)
        {
            var stop = Assert.IsType<Stopped>(await f.Coordinator.Ask<object>(
                new Resume(StepActions(1, 2, locking), CodeBytes: 64), EngineFixture.Timeout));
            Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
            var code = Assert.IsType<CodeBlock>(stop.Code);
            Assert.Equal((stop.State.Nip & ~63UL) - (stop.State.Nip >= 64 ? 64UL : 0), code.Address);
            var read = Assert.IsType<MemoryRead>(await f.Coordinator.Ask<object>(new ReadMemory(code.Address, code.Data.Length, 1), EngineFixture.Timeout));
            Assert.Equal(read.Data, code.Data);
        }
    }

    private static uint Word(SimulatedMachine vm, ulong ra) => vm.Memory.ReadUInt32(ra, littleEndian: false);

    /// <summary>A VM whose vcpu throws on the next Run (after the step armed SE and planted its breakpoints).</summary>
    private sealed class FailingVm(SimulatedMachine inner) : ForwardingVirtualMachine(inner)
    {
        public volatile bool FailNextRun;
        public override IVcpu GetVcpu(int index) => new FailingVcpu(this, inner.GetVcpu(index));

        private sealed class FailingVcpu(FailingVm vm, IVcpu inner) : ForwardingVcpu(inner)
        {
            public override VcpuExit Run(long budget)
            {
                if (vm.FailNextRun) { vm.FailNextRun = false; throw new InvalidOperationException("injected backend failure"); }
                return base.Run(budget);
            }
        }
    }
}

/// <summary>Every test of <see cref="CoordinatorProtocolTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class CoordinatorProtocolTestsOnAnAllStopBackend : CoordinatorProtocolTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
