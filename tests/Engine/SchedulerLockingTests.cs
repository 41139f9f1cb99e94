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
        new(Sys, Counters, vcpus: 4, new CoordinatorOptions(Quantum: Quantum, Deterministic: deterministic), runModel: RunModel);

    private static ulong[] Clocks(EngineFixture f) => Enumerable.Range(0, 4).Select(v => f.Registers(v).Tb).ToArray();

    /// <summary>
    /// Steps vcpu 0 with locking off until every other vcpu has moved (at most 20 steps). Other vcpus may run during a step, not
    /// must: a single instruction's step can end before another vcpu had a turn (on an all-stop VM the turns rotate from the
    /// vcpu after the one that stopped it last; on independent vcpus the others wait for a worker) — over a few steps they do run.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Step_with_locking_off_moves_every_other_vcpu(bool deterministic)
    {
        var f = Fixture(deterministic);
        var before = Clocks(f);
        var after = before;
        int steps = 0;
        while (steps < 20 && !Enumerable.Range(1, 3).All(v => after[v] > before[v]))
        {
            Assert.Equal(StopReason.StepCompleted, f.Step(0, SchedulerLocking.Off).Event.Reason);
            steps++;
            after = Clocks(f);
        }
        Assert.Equal(before[0] + (ulong)steps, after[0]); // vcpu 0 moved by its steps, one instruction each
        for (int v = 1; v < 4; v++) Assert.True(after[v] > before[v], $"vcpu {v} did not run during {steps} steps of vcpu 0");
    }

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void Step_with_locking_step_or_on_moves_only_the_stepped_vcpu(SchedulerLocking locking)
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        for (int i = 0; i < 5; i++) f.Step(2, locking);
        var after = Clocks(f);
        Assert.Equal(before[2] + 5, after[2]);
        foreach (int v in new[] { 0, 1, 3 }) Assert.Equal(before[v], after[v]);
    }

    /// <summary>
    /// Continues with <paramref name="actions"/> and halts, again and again, until <paramref name="enough"/> holds of the vcpus'
    /// clocks (or 15 s): a running VM is looked at only while halted, as an all-stop VM's registers can be read only then.
    /// Each continue must run until the halt, never end by itself.
    /// </summary>
    private static async Task<ulong[]> ContinueUntilAsync(EngineFixture f, VmProtocol.Resume actions, Func<ulong[], bool> enough)
    {
        var until = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var running = f.Coordinator.Ask<object>(actions, EngineFixture.Timeout);
            await Task.Delay(20);
            Assert.False(running.IsCompleted, "the continue ended by itself");
            Assert.Equal(StopReason.Halted, Assert.IsType<VmProtocol.Stopped>(f.Ask(new VmProtocol.Halt())).Event.Reason);
            Assert.IsType<VmProtocol.Stopped>(await running);
            var clocks = Clocks(f);
            if (enough(clocks)) return clocks;
            Assert.True(DateTime.UtcNow < until, "the vcpus did not get there within 15 s of continues");
        }
    }

    [Theory]
    [InlineData(SchedulerLocking.Off)]
    [InlineData(SchedulerLocking.Step)]
    public async Task Continue_with_locking_off_or_step_runs_every_vcpu(SchedulerLocking locking)
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        var after = await ContinueUntilAsync(f, new VmProtocol.Resume(VmProtocol.ContinueActions(0, 4, locking)),
            clocks => clocks.Zip(before).All(c => c.First > c.Second));
        for (int v = 0; v < 4; v++) Assert.True(after[v] > before[v], $"vcpu {v} did not run");
    }

    [Fact]
    public async Task Continue_with_locking_on_runs_only_the_current_vcpu_until_halted()
    {
        var f = Fixture(deterministic: false);
        var before = Clocks(f);
        // Ten quanta of vcpu 1: time enough for the others to have had turns, were they scheduled.
        var after = await ContinueUntilAsync(f, new VmProtocol.Resume(VmProtocol.ContinueActions(1, 4, SchedulerLocking.On)),
            clocks => clocks[1] >= before[1] + 10 * Quantum);
        Assert.True(after[1] >= before[1] + 10 * Quantum);
        foreach (int v in new[] { 0, 2, 3 }) Assert.Equal(before[v], after[v]);
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
