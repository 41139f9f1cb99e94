using static ActorStep.Tests.Qemu.QemuAsk;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using Xunit.Abstractions;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// On QEMU a step's breakpoints live in the memory every vcpu runs (Z0). Four powernv threads run one lwarx/stwcx. loop
/// (tests/Qemu/guests/lock-be.s); stepping one of them through its atomic sequence while the others continue plants the
/// sequence's end point where the others pass: they trap on it (foreign traps), are parked and re-entered, and no stop of
/// theirs is ever reported — every answer is the stepped vcpu's completed step.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuForeignTrapTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);


    [Fact]
    public void OtherVcpusTrappingOnAStepsEndPointAreReenteredAndNeverReported()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        {
            var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 4, 0, HypervisorFlavour.Hv,
                new QemuSource(null, guest.Arguments(threads: 4)))).Machine;
            var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
            try
            {
                Assert.Equal(4, vm.VcpuCount);
                var all = Enumerable.Range(0, 4).ToDictionary(v => v, _ => VcpuAction.Continue);
                // Let every thread into the loop, then bring vcpu 0 to its lwarx.
                Assert.Equal(0x10UL, vm.GetVcpu(1).GetRegisters().Nip);
                Call(coordinator, new InsertBreakpoint(0x24));
                for (int i = 0; i < 8; i++) Assert.IsType<Stopped>(Call(coordinator, new Resume(all)));
                Call(coordinator, new RemoveBreakpoint(0x24));
                var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
                for (int i = 0; i < 4 && vm.GetVcpu(0).GetRegisters().Nip != 0x14; i++) Assert.IsType<Stopped>(Call(coordinator, step));
                Assert.Equal(0x14UL, vm.GetVcpu(0).GetRegisters().Nip);

                // Step vcpu 0 with the others running (gdb's scheduler-locking off), round after round.
                var stepOthersRun = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step, [1] = VcpuAction.Continue, [2] = VcpuAction.Continue, [3] = VcpuAction.Continue },
                    HoldAsyncInterrupts: false);
                uint counter = Counter(coordinator);
                int rounds = 0;
                long parks = 0, reentries = 0;
                for (; rounds < 20; rounds++)
                {
                    // From the lwarx: the whole sequence is one step, ending after the stcx. (0x20) — the end point the others trap on.
                    var done = Assert.IsType<Stopped>(Call(coordinator, stepOthersRun));
                    Assert.True(done.Event is { Reason: StopReason.StepCompleted, Vcpu: 0 }, $"round {rounds}: {done.Event}");
                    Assert.Equal(0x20UL, done.Event.Nip);
                    Assert.Equal(0UL, done.State.Msr & Msr.SE);
                    // bne- and b back to the lwarx, vcpu 0 alone.
                    while (vm.GetVcpu(0).GetRegisters().Nip != 0x14)
                        Assert.IsType<Stopped>(Call(coordinator, step));
                    var d = Assert.IsType<VmDescription>(Call(coordinator, new Describe()));
                    parks = d.Parks;
                    reentries = d.Reentries;
                }
                output.WriteLine($"{rounds} rounds: {parks} foreign traps parked, {reentries} re-entered; counter {counter} -> {Counter(coordinator)}");
                Assert.True(parks > 0, $"in {rounds} rounds no other vcpu trapped on vcpu 0's end point");
                Assert.True(reentries > 0, $"{parks} parked vcpus, none re-entered");
                Assert.True(Counter(coordinator) > counter, "the shared counter moved on");
                // What stays planted is at most the Trace handler's breakpoint (0xD00: MSR[IR]=0), kept for vcpu 0's next step.
                Assert.Empty(vm.PlantedBreakpoints.Except([0xD00UL]));
            }
            finally
            {
                this.Release(coordinator, vm);
            }
        }
    }

    [Fact]
    public void AHaltStopsAContinueThatStartsAtABreakpointJustRemoved()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 4, 0, HypervisorFlavour.Hv, new QemuSource(null, guest.Arguments(threads: 4)))).Machine;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        try
        {
            var all = Enumerable.Range(0, 4).ToDictionary(v => v, _ => VcpuAction.Continue);
            for (int round = 0; round < 5; round++)
            {
                Assert.IsType<BreakpointChanged>(Call(coordinator, new InsertBreakpoint(0x20)));
                var hit = Assert.IsType<Stopped>(Call(coordinator, new Resume(all)));
                Assert.True(hit.Event is { Reason: StopReason.Breakpoint, Nip: 0x20 }, $"round {round}: {hit.Event}");
                Assert.IsType<BreakpointChanged>(Call(coordinator, new RemoveBreakpoint(0x20)));
                var running = coordinator.Ask<object>(new Resume(all), Timeout);
                Thread.Sleep(200);
                var halted = Call(coordinator, new Halt());
                output.WriteLine($"round {round}: halt answered {halted}");
                Assert.True(halted is Stopped { Event.Reason: StopReason.Halted }, $"round {round}: {halted}");
                Assert.True(Ended(running), "the continue never ended");
            }
        }
        finally
        {
            this.Release(coordinator, vm);
        }
    }


    private static uint Counter(IActorRef coordinator) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Assert.IsType<MemoryRead>(Call(coordinator, new ReadMemory(0x2000, 4, null))).Data);
}
