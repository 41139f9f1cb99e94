using ActorStep.Hypervisor;
using ActorStep.Actors.Vm;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;

namespace ActorStep.Tests.Engine;

/// <summary>step-engine.md §5: which vcpus may move during a step and during a continue, per gdb's scheduler-locking mode.</summary>
public class SchedulerLockingTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const string Counters = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            b _start
        """;

    private const int Quantum = 500;

    private EngineFixture Fixture(bool deterministic) =>
        new(Sys, Counters, vcpus: 4, new CoordinatorOptions(Quantum: Quantum, Deterministic: deterministic));

    private static ulong[] Clocks(EngineFixture f) => Enumerable.Range(0, 4).Select(v => f.Registers(v).Tb).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Step_with_locking_off_moves_every_other_vcpu(bool deterministic)
    {
        var f = Fixture(deterministic);
        var before = Clocks(f);
        var stop = f.Step(0, SchedulerLocking.Off);
        var after = Clocks(f);
        Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
        Assert.Equal(before[0] + 1, after[0]);
        for (int v = 1; v < 4; v++) Assert.True(after[v] > before[v], $"vcpu {v} did not run during the step");
    }

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void Step_with_locking_step_or_on_moves_only_the_stepped_vcpu(SchedulerLocking locking)
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        f.Step(2, locking);
        var after = Clocks(f);
        Assert.Equal(before[2] + 1, after[2]);
        foreach (int v in new[] { 0, 1, 3 }) Assert.Equal(before[v], after[v]);
    }

    [Fact]
    public async Task Continue_with_locking_on_runs_only_the_current_vcpu_until_halted()
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        var running = f.Coordinator.Ask<object>(new VmProtocol.Resume(VmProtocol.ContinueActions(1, 4, SchedulerLocking.On)), EngineFixture.Timeout);
        // Ten quanta of vcpu 1: time enough for the others to have had turns, were they scheduled.
        await Eventually.HoldsAsync(() => running.IsCompleted || f.Registers(1).Tb >= before[1] + 10 * Quantum, "vcpu 1 to run ten quanta");
        Assert.False(running.IsCompleted, "the continue ended by itself");
        var halted = Assert.IsType<VmProtocol.Stopped>(f.Ask(new VmProtocol.Halt()));
        Assert.Equal(StopReason.Halted, halted.Event.Reason);
        Assert.IsType<VmProtocol.Stopped>(await running);
        var after = Clocks(f);
        Assert.True(after[1] > before[1]);
        foreach (int v in new[] { 0, 2, 3 }) Assert.Equal(before[v], after[v]);
    }

    [Theory]
    [InlineData(SchedulerLocking.Off)]
    [InlineData(SchedulerLocking.Step)]
    public async Task Continue_with_locking_off_or_step_runs_every_vcpu(SchedulerLocking locking)
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        var running = f.Coordinator.Ask<object>(new VmProtocol.Resume(VmProtocol.ContinueActions(0, 4, locking)), EngineFixture.Timeout);
        await Eventually.HoldsAsync(() => running.IsCompleted || Clocks(f).Zip(before).All(c => c.First > c.Second), "every vcpu to run");
        Assert.False(running.IsCompleted, "the continue ended by itself");
        Assert.Equal(StopReason.Halted, Assert.IsType<VmProtocol.Stopped>(f.Ask(new VmProtocol.Halt())).Event.Reason);
        Assert.IsType<VmProtocol.Stopped>(await running);
        var after = Clocks(f);
        for (int v = 0; v < 4; v++) Assert.True(after[v] > before[v], $"vcpu {v} did not run");
    }

    [Fact]
    public void A_vcpu_spinning_on_a_lock_gets_it_while_another_is_stepped_with_locking_off()
    {
        // vcpu 1 holds the lock for a while, then releases it; vcpu 0 spins until it can take it.
        var f = new EngineFixture(Sys, """
                .org 0x1000
                .globl _start
            _start:
                lis 9, 2
                cmpdi 3, 1
                beq holder
                li 4, 1
            spin:
                lwarx 5, 0, 9
                cmpwi 5, 0
                bne spin
                stwcx. 4, 0, 9
                bne spin
            got_it:
                b got_it
            holder:
                li 4, 2
                stw 4, 0(9)
                lis 6, 1
                mtctr 6
            hold:
                bdnz hold
                li 4, 0
                stw 4, 0(9)
            done:
                b done
            """, vcpus: 2, new CoordinatorOptions(Quantum: 2000), runModel: RunModel);
        ulong gotIt = f.Image.Symbol("got_it");
        // Let the holder take the lock first.
        f.Step(1, SchedulerLocking.On, count: 3);
        for (int i = 0; i < 2000 && f.Registers(0).Nip != gotIt; i++) f.Step(0, SchedulerLocking.Off);
        Assert.Equal(gotIt, f.Registers(0).Nip);
    }
}

/// <summary>Every test of <see cref="SchedulerLockingTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class SchedulerLockingTestsOnAnAllStopBackend : SchedulerLockingTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
