using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// step-engine.md §4 and invariant 5: with scheduler-locking off, vcpu 0 is host-stepped while vcpu 1
/// single-steps itself, so vcpu 1 keeps fetching vcpu 0's step breakpoint at the shared Trace handler.
/// vcpu 1 must reach exactly its undebugged state and never be reported.
/// </summary>
public class ForeignTrapRaceTests : TestKit
{
    private const string Source = """
            .org 0xD00
        trace_handler:
            mtsprg 0, 3
            mtsprg 1, 4
            lis 3, 2
            ld 4, 0(3)
            addi 4, 4, 1
            std 4, 0(3)
            mfsrr0 4
            std 4, 8(3)
            mfsrr1 4
            std 4, 16(3)
            mfsprg 4, 1
            mfsprg 3, 0
            rfid
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 1
            beq tracer
        stepped:
            addi 5, 5, 1
            addi 6, 6, 2
            b stepped
        tracer:
            mfmsr 4
            ori 4, 4, 0x400
            mtmsrd 4
        traced:
            addi 7, 7, 1
            xor 8, 8, 7
            b traced
        """;

    private static void CheckAgainstReference(EngineFixture f)
    {
        var reference = f.Reference();
        for (int v = 0; v < 2; v++)
        {
            var actual = f.Registers(v);
            var refVcpu = reference.GetVcpu(v);
            refVcpu.Run((long)actual.Tb);
            var expected = refVcpu.GetRegisters();
            var diff = expected.Differences(actual);
            Assert.True(diff.Count == 0, $"vcpu {v}: {string.Join("; ", diff)}");
        }
        var log = new byte[24];
        reference.ReadMemory(0x20000, log);
        for (int k = 0; k < 3; k++) Assert.Equal(BitConverter.ToUInt64(log, k * 8), f.ReadU64(0x20000 + (ulong)k * 8));
    }

    [Fact]
    public void Deterministic_vcpu_trapping_on_another_vcpus_step_breakpoint_reaches_its_undebugged_state_unreported()
    {
        var f = new EngineFixture(Sys, Source, vcpus: 2, new CoordinatorOptions(Quantum: 7, Deterministic: true));
        bool parkedSeen = false;
        for (int i = 0; i < 300; i++)
        {
            var stop = f.Step(0, SchedulerLocking.Off);
            Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
            Assert.Equal(0, stop.Event.Vcpu);
            parkedSeen |= stop.Vcpus[1].Nip == 0xD00;
        }
        Assert.True(parkedSeen, "vcpu 1 never met vcpu 0's breakpoint at the Trace handler: the race was not exercised");
        Assert.True(f.ReadU64(0x20000) > 100, "vcpu 1 did not keep tracing itself");
        CheckAgainstReference(f);
    }

    [Fact]
    public void On_real_threads_the_race_never_reports_the_other_vcpu_and_leaves_it_exact()
    {
        for (int round = 0; round < 10; round++)
        {
            var f = new EngineFixture(Sys, Source, vcpus: 2, new CoordinatorOptions(Quantum: 200));
            for (int i = 0; i < 100; i++)
            {
                var stop = f.Step(0, SchedulerLocking.Off);
                Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
                Assert.Equal(0, stop.Event.Vcpu);
            }
            CheckAgainstReference(f);
            Assert.Equal(0, Assert.IsType<VmProtocol.VmDescription>(f.Ask(new VmProtocol.Describe())).BreakpointCount);
        }
    }
}
