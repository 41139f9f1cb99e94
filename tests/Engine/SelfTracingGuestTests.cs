using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Invariant 3 (step-engine.md §6): a guest that single-steps itself (rfid into a function with SRR1[SE],
/// its Trace handler logging SRR0/SRR1) sees exactly the Trace interrupts it sees undebugged while the
/// host steps it through everything, handler included.
/// </summary>
public class SelfTracingGuestTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const string Source = """
            .org 0xD00
        trace_handler:
            mtsprg 0, 3
            mtsprg 1, 4
            lis 3, 2
            ld 4, 0(3)
            addi 4, 4, 1
            std 4, 0(3)
            sldi 4, 4, 4
            add 3, 3, 4
            mfsrr0 4
            std 4, 0(3)
            mfsrr1 4
            std 4, 8(3)
            mfsrr0 4
            cmpld 4, 30
            bne 1f
            mfsrr1 4
            li 3, 0x400
            andc 4, 4, 3
            mtsrr1 4
        1:  mfsprg 4, 1
            mfsprg 3, 0
            rfid
            .org 0x1000
            .globl _start
        _start:
            lis 30, back@ha
            addi 30, 30, back@l
            lis 5, traced@ha
            addi 5, 5, traced@l
            mtsrr0 5
            mfmsr 6
            ori 6, 6, 0x400
            mtsrr1 6
            mtlr 30
            rfid
        back:
            li 3, 0
            ori 3, 3, 0xF080
            li 4, 0
            sc 1
        traced:
            li 7, 5
            mtctr 7
        loop:
            addi 8, 8, 3
            bdnz loop
            mfmsr 9
            blr
        """;

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void The_guests_Trace_handler_sees_the_same_SRR0_SRR1_sequence_when_host_stepped(HypervisorFlavour flavour)
    {
        var f = new EngineFixture(Sys, Source, vcpus: 1, flavour: flavour, runModel: RunModel);
        int steps = 0;
        while (true)
        {
            var stop = f.Step(0, SchedulerLocking.On);
            steps++;
            if (stop.Event.Reason == StopReason.GuestStopped) break;
            Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
            Assert.True(steps < 2000);
        }
        var reference = f.Reference();
        Assert.Equal(ExitReason.Stopped, reference.GetVcpu(0).Run(100_000).Reason);

        ulong count = Read(reference, 0x20000);
        Assert.Equal(14UL, count); // li, mtctr, 5×(addi, bdnz), mfmsr, blr: one Trace each
        Assert.Equal(count, f.ReadU64(0x20000));
        for (ulong k = 1; k <= count; k++)
        {
            Assert.Equal(Read(reference, 0x20000 + 16 * k), f.ReadU64(0x20000 + 16 * k));
            ulong srr1 = f.ReadU64(0x20000 + 16 * k + 8);
            Assert.Equal(Read(reference, 0x20000 + 16 * k + 8), srr1);
            Assert.Equal(Srr1Bits.Bit33 | Msr.SE, srr1 & (Srr1Bits.Bit33 | Msr.SE));
        }
        var diff = reference.GetVcpu(0).GetRegisters().Differences(f.Registers(0));
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.True(steps > 14 * 10, "the host stepped through the guest's handler too");
    }

    private static ulong Read(SimulatedMachine vm, ulong ra)
    {
        var b = new byte[8];
        vm.ReadMemory(ra, b);
        return BitConverter.ToUInt64(b);
    }
}

/// <summary>Every test of <see cref="SelfTracingGuestTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class SelfTracingGuestTestsOnAnAllStopBackend : SelfTracingGuestTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
