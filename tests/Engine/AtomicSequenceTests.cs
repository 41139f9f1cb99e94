using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Atomic sequences through the VmCoordinator (the actors' path): a lwarx … stwcx. retry loop stepped, counted and range
/// stepped completes its increment although every host step loses the reservation; a user breakpoint inside the sequence
/// does not stop a step but still stops a continue. The plain-class tests are <see cref="AtomicSequenceEngineTests"/>.
/// </summary>
public class AtomicSequenceTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const ulong Word = 0x6000;

    private EngineFixture Fixture(HypervisorFlavour flavour) =>
        new(Sys, AtomicSequenceEngineTests.IncrementLoop, vcpus: 2, flavour: flavour, runModel: RunModel);

    private static uint Counter(EngineFixture f) => (uint)f.ReadU64(Word);

    private static void AssertNothingLeft(EngineFixture f, int userBreakpoints = 0) =>
        Assert.Equal(userBreakpoints, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void Stepping_a_retry_loop_instruction_by_instruction_completes_the_increment(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);
        ulong done = f.Image.Symbol("done");
        var stops = new List<Stopped>();
        for (int i = 0; i < 10 && f.Registers(0).Nip != done; i++) stops.Add(f.Step(0, SchedulerLocking.On));

        Assert.Equal(3, stops.Count); // li, the sequence, bne-
        Assert.All(stops, s => Assert.Equal((StopReason.StepCompleted, "Completed", 1), (s.Event.Reason, s.Event.StepCompletion, s.Event.Steps)));
        Assert.Equal(f.Image.Symbol("retry") + 12, stops[1].Event.Nip);
        Assert.Equal(42u, Counter(f));
        AssertNothingLeft(f);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_count_of_three_steps_li_the_sequence_and_the_branch(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);

        var stop = f.Step(0, SchedulerLocking.On, count: 3);

        Assert.Equal((StopReason.StepCompleted, f.Image.Symbol("done"), 3), (stop.Event.Reason, stop.Event.Nip, stop.Event.Steps));
        Assert.Equal(42u, Counter(f));
        AssertNothingLeft(f);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_range_step_over_the_loop_runs_the_sequence_whole_and_stops_where_NIP_leaves_the_range(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);
        ulong start = f.Image.Symbol("_start"), done = f.Image.Symbol("done");

        var stop = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, count: 1,
            ranges: new Dictionary<int, StepRange> { [0] = new(start, done) });

        Assert.Equal((StopReason.StepCompleted, done), (stop.Event.Reason, stop.Event.Nip));
        Assert.Equal(42u, Counter(f));
        AssertNothingLeft(f);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_user_breakpoint_inside_the_sequence_does_not_stop_the_step_but_stops_a_continue(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);
        ulong retry = f.Image.Symbol("retry"), inside = retry + 4;
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(inside)));
        f.Step(0, SchedulerLocking.On); // li

        var step = f.Step(0, SchedulerLocking.On);

        Assert.Equal((StopReason.StepCompleted, retry + 12), (step.Event.Reason, step.Event.Nip));
        Assert.Equal(42u, Counter(f));
        AssertNothingLeft(f, userBreakpoints: 1);

        // bne-, addi 6, b retry, lwarx: a continue stops at the breakpoint, which is still there.
        var hit = f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.Equal((StopReason.Breakpoint, inside), (hit.Event.Reason, hit.Event.Nip));
        Assert.Equal(42u, Counter(f));
    }
}

/// <summary>Every test of <see cref="AtomicSequenceTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class AtomicSequenceTestsOnAnAllStopBackend : AtomicSequenceTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
