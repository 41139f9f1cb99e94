using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Watchpoints through the coordinator: a hit is a reported stop (which watchpoint, which access) with NIP at the accessing
/// instruction, not executed, from a continue or in the middle of a host step (the step ends there, nothing of it left);
/// resuming performs the access.
/// </summary>
public class WatchpointEngineTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    /// <summary>The kind of KVM; the PR variant steps with the hardware single-step.</summary>
    protected virtual HypervisorFlavour Flavour => HypervisorFlavour.Hv;

    // vcpu 1 counts in r9 and stores the count to `counter`; the others spin on registers only.
    private const string Guest = """
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 1
            beq writer
        spin:
            addi 5, 5, 1
            b spin
        writer:
            addi 9, 9, 1
            addi 8, 8, 1
        store:
            stw 9, 0x2000(0)
            b writer
            .org 0x2000
        counter:
            .long 0
        """;

    private EngineFixture Fixture() => new(Sys, Guest, vcpus: 3, new CoordinatorOptions(Quantum: 500), Flavour, runModel: RunModel);

    private static uint Counter(EngineFixture f) => (uint)f.ReadU64(f.Image.Symbol("counter"));

    private static Watchpoint CounterWatch(EngineFixture f, WatchKind kind) => new(f.Image.Symbol("counter") + 2, 1, kind);

    private static IReadOnlyDictionary<int, VcpuAction> All(VcpuAction action) =>
        Enumerable.Range(0, 3).ToDictionary(v => v, _ => action);

    [Fact]
    public void A_continue_stops_at_the_store_before_it_completes_and_the_next_step_completes_it()
    {
        var f = Fixture();
        var watch = CounterWatch(f, WatchKind.Write);
        Assert.Equal(new WatchpointChanged(watch, true), f.Ask(new InsertWatchpoint(watch)));

        var stop = f.Resume(All(VcpuAction.Continue));

        Assert.Equal(StopReason.Watchpoint, stop.Event.Reason);
        Assert.Equal(1, stop.Event.Vcpu);
        Assert.Equal(f.Image.Symbol("store"), stop.Event.Nip);
        Assert.Equal(new WatchpointHit(watch, f.Image.Symbol("counter"), 4, Store: true), stop.Event.Watch);
        Assert.Equal(1UL, stop.State.Gpr[9]);
        Assert.Equal(0u, Counter(f));

        var step = f.Step(1, SchedulerLocking.On);
        Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
        Assert.Equal(f.Image.Symbol("store") + 4, step.Event.Nip);
        Assert.Equal(1u, Counter(f));

        var again = f.Resume(All(VcpuAction.Continue));
        Assert.Equal(StopReason.Watchpoint, again.Event.Reason);
        Assert.Equal(2UL, again.State.Gpr[9]);
        Assert.Equal(1u, Counter(f));
    }

    [Fact]
    public void A_step_that_meets_a_watchpoint_ends_there_with_nothing_of_it_left_and_the_next_step_performs_the_access()
    {
        var f = Fixture();
        var watch = CounterWatch(f, WatchKind.Access);
        f.Ask(new InsertWatchpoint(watch));

        var stop = f.Step(1, SchedulerLocking.On, count: 50);

        Assert.Equal(StopReason.Watchpoint, stop.Event.Reason);
        Assert.Equal(f.Image.Symbol("store"), stop.Event.Nip);
        Assert.Equal(0, f.Vm.PlantedBreakpoints);
        Assert.Equal(0UL, stop.State.Msr & Isa.Msr.SE);
        Assert.Equal(0u, Counter(f));

        var step = f.Step(1, SchedulerLocking.On);
        Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
        Assert.Equal(f.Image.Symbol("store") + 4, step.Event.Nip);
        Assert.Equal(1u, Counter(f));
    }

    [Fact]
    public void Removed_or_read_only_watchpoints_do_not_stop_a_store()
    {
        var f = Fixture();
        var write = CounterWatch(f, WatchKind.Write);
        f.Ask(new InsertWatchpoint(write));
        f.Ask(new InsertWatchpoint(CounterWatch(f, WatchKind.Read)));
        Assert.Equal(new WatchpointChanged(write, true), f.Ask(new RemoveWatchpoint(write)));
        Assert.Equal(new WatchpointChanged(write, false), f.Ask(new RemoveWatchpoint(write)));

        var stop = f.Step(1, SchedulerLocking.On, count: 50);

        Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
        Assert.True(Counter(f) > 0);
    }

    [Fact]
    public void A_watchpoint_that_covers_nothing_is_refused()
    {
        var f = Fixture();
        var reply = f.Ask(new InsertWatchpoint(new Watchpoint(0x2000, 0, WatchKind.Write)));
        Assert.Equal(FailureCode.InvalidArgument, Assert.IsType<Failed>(reply).Code);
    }
}

/// <summary>The same on a VM that runs only as a whole (QEMU's gdbstub's model).</summary>
public sealed class AllStopWatchpointEngineTests : WatchpointEngineTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}

/// <summary>The same on the PR flavour, whose steps are the hardware's single step.</summary>
public sealed class PrWatchpointEngineTests : WatchpointEngineTests
{
    protected override HypervisorFlavour Flavour => HypervisorFlavour.Pr;
}
