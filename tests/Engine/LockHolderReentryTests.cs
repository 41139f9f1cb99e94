using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// step-engine.md §5 ("a vcpu spinning on a lock that another holds must get it while you step it") against §4 (a vcpu that
/// traps on another vcpu's step breakpoint is parked). Every vcpu runs the same lwarx/stwcx. spin lock; the stepped vcpu's
/// step at its lwarx takes the sequence whole, with end points after the stwcx. and at the wait loop, exactly where the
/// others take the lock or wait for it. One that takes the lock and then fetches the end point after its stwcx. parks holding
/// it: unless it is re-entered while the step goes on, the stepped vcpu spins on that lock for its whole count (or for ever,
/// stepping a range). Parked vcpus are re-entered during the resume, so the holder releases the lock.
/// </summary>
public class LockHolderReentryTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const ulong Lock = 0x20000, Counter = 0x20008, PerVcpu = 0x20100;

    /// <summary>Each vcpu: take the lock, count in the shared counter and in its own (a critical section of ~30 instructions),
    /// release, work ~3,000 instructions outside, again. The lock word holds the owner + 1. No interrupt is ever taken. (The work
    /// outside is longer than a turn of the all-stop machine, <see cref="ActorStep.Machine.AllStopMachine.Quantum"/>: with a
    /// shorter loop a contender that runs its turn while the stepped vcpu waits at its lwarx always takes the lock again within
    /// that turn, and parks holding it, so the stepped vcpu can meet it held at every lwarx — see the README.)</summary>
    private const string Source = """
            .org 0x1000
            .globl _start
        _start:
            lis 9, 2
            addi 10, 9, 8
            sldi 28, 3, 3
            addi 28, 28, 0x100
            add 28, 28, 9
            addi 4, 3, 1
        loop:
            bl spin_lock
        critical:
            ld 6, 0(10)
            addi 6, 6, 1
            std 6, 0(10)
            ld 7, 0(28)
            addi 7, 7, 1
            std 7, 0(28)
            li 8, 20
            mtctr 8
        hold:
            bdnz hold
            lwsync
            li 5, 0
            stw 5, 0(9)
            li 8, 3000
            mtctr 8
        outside:
            bdnz outside
            b loop
        spin_lock:
            lwarx 5, 0, 9
            cmpwi 5, 0
            bne- wait
            stwcx. 4, 0, 9
            bne- spin_lock
            isync
            blr
        wait:
            lwz 5, 0(9)
            cmpwi 5, 0
            bne wait
            b spin_lock
        spin_lock_end:
            nop
        """;

    private EngineFixture Fixture(int vcpus, bool deterministic) =>
        new(Sys, Source, vcpus, new CoordinatorOptions(Quantum: 500, Deterministic: deterministic), runModel: RunModel);

    private static VmDescription Describe(EngineFixture f) => Assert.IsType<VmDescription>(f.Ask(new Describe()));

    /// <summary>Brings <paramref name="vcpus"/> (vcpu 0 by default) to their spin_lock's lwarx, the others staying at their
    /// entry: the lock is free.</summary>
    private static void ToSpinLock(EngineFixture f, params int[] vcpus)
    {
        ulong spinLock = f.Image.Symbol("spin_lock");
        foreach (int v in vcpus.Length == 0 ? [0] : vcpus)
        {
            for (int i = 0; i < 20 && f.Registers(v).Nip != spinLock; i++) f.Step(v, SchedulerLocking.On);
            Assert.Equal(spinLock, f.Registers(v).Nip);
        }
        Assert.Equal(0UL, f.ReadU64(Lock) & 0xffffffff);
    }

    /// <summary>Nothing of a step left on any vcpu or in memory; the lock kept mutual exclusion (the shared counter is the sum
    /// of the per-vcpu ones, but for the one increment of a vcpu between its two stores).</summary>
    private static void CheckNothingLeft(EngineFixture f, int vcpus)
    {
        var d = Describe(f);
        Assert.Equal(0, d.BreakpointCount);
        var reference = f.Reference();
        ulong end = f.Image.Symbol("spin_lock_end") + 4;
        for (int v = 0; v < vcpus; v++)
        {
            var initial = reference.GetVcpu(v).GetRegisters();
            var r = f.Registers(v);
            Assert.Equal(0UL, r.Msr & Msr.SE);
            Assert.True((initial.Srr0, initial.Srr1) == (r.Srr0, r.Srr1), $"vcpu {v}: SRR0/SRR1 0x{r.Srr0:x}/0x{r.Srr1:x} clobbered");
            Assert.InRange(r.Nip, 0x1000UL, end);
        }
        var original = new byte[4];
        for (ulong a = 0x1000; a < end; a += 4)
        {
            reference.ReadMemory(a, original);
            Assert.True((uint)(original[0] << 24 | original[1] << 16 | original[2] << 8 | original[3]) == f.RawWord(a), $"a word of ActorStep's left at 0x{a:x}");
        }
        ulong sum = 0;
        for (int v = 0; v < vcpus; v++) sum += f.ReadU64(PerVcpu + 8 * (ulong)v);
        ulong counter = f.ReadU64(Counter);
        Assert.True(counter - sum <= 1, $"mutual exclusion broken: counter {counter}, per-vcpu sum {sum}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_vcpu_stepped_by_a_count_across_its_spin_lock_gets_the_lock_while_the_others_contend_for_it(bool deterministic)
    {
        // Deterministic (and on the all-stop machine, whose turns are fixed): vcpu 0's step plants its end points first, then
        // vcpu 1 takes the free lock and parks at the end point after its stwcx., holding it; vcpus 2 and 3 park at the wait
        // loop. On real threads every vcpu starts at its lwarx and it depends on the threads: rounds go on (bounded) until a
        // re-entry has happened, and every round must give vcpu 0 the lock.
        bool threads = !deterministic && RunModel == VcpuRunModel.IndependentVcpus;
        long reentries = 0;
        for (int round = 0; round < 3 || (threads && reentries == 0 && round < 30); round++)
        {
            var f = Fixture(4, deterministic);
            if (threads) ToSpinLock(f, 1, 2, 3, 0);
            else ToSpinLock(f);
            var stop = f.Step(0, SchedulerLocking.Off, count: 20_000);
            Assert.Equal((StopReason.StepCompleted, 0, 20_000), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Steps));
            Assert.True(f.ReadU64(PerVcpu) > 0, $"round {round}: vcpu 0 never got the lock in 20,000 steps (lock word {f.ReadU64(Lock) & 0xffffffff}, parks {Describe(f).Parks}, re-entries {Describe(f).Reentries})");
            CheckNothingLeft(f, 4);
            // (On real threads which contender gets the lock is the threads' business; one may be parked when the step ends.)
            if (!threads) for (int v = 1; v < 4; v++) Assert.True(f.ReadU64(PerVcpu + 8 * (ulong)v) > 0, $"vcpu {v} never got the lock: it did not run on");
            reentries += Describe(f).Reentries;
        }
        if (!threads) Assert.True(reentries > 0, "no vcpu was re-entered during the step: the race was not exercised");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_range_step_over_spin_lock_ends_holding_the_lock_that_a_parked_vcpu_held(bool deterministic)
    {
        var f = Fixture(2, deterministic);
        ToSpinLock(f);
        var range = new StepRange(f.Image.Symbol("spin_lock"), f.Image.Symbol("spin_lock_end"));
        var resume = new Resume(StepActions(0, 2, SchedulerLocking.Off), Ranges: new Dictionary<int, StepRange> { [0] = range });
        var reply = f.Coordinator.Ask<object>(resume, TimeSpan.FromSeconds(60));
        if (await Task.WhenAny(reply, Task.Delay(TimeSpan.FromSeconds(30))) != reply)
        {
            var d = Describe(f);
            f.Ask(new Halt());
            Assert.Fail($"the range step over spin_lock never ended (parks {d.Parks}, re-entries {d.Reentries})");
        }
        var stop = Assert.IsType<Stopped>(await reply);
        Assert.Equal((StopReason.StepCompleted, 0, f.Image.Symbol("critical")), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip));
        Assert.Equal(1UL, f.ReadU64(Lock) & 0xffffffff); // vcpu 0 holds it: owner + 1
        CheckNothingLeft(f, 2);
    }
}

/// <summary>Every test of <see cref="LockHolderReentryTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class LockHolderReentryTestsOnAnAllStopBackend : LockHolderReentryTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
