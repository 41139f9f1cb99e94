using static ActorStep.Tests.Qemu.QemuAsk;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// On QEMU, watchpoints are QEMU's own (<c>Z2</c>–<c>Z4</c>; under KVM QEMU programs DAWR): a hit is reported as a watchpoint
/// stop of the vcpu that made the access (tests/Qemu/guests/store-be.s: a store to 0x2000 at 0x1c, its load back at 0x20).
/// QEMU 10's TCG stops after the access, with a bare <c>T05</c>.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuWatchpointTests : Akka.TestKit.Xunit2.TestKit
{


    private static uint Word(QemuVm vm, ulong ra)
    {
        var b = new byte[4];
        vm.ReadMemory(ra, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    [Fact]
    public void Write_and_read_watchpoints_stop_the_vcpu_at_each_access_and_are_removed()
    {
        using var guest = new PowerNvGuest("store-be.s");
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
            new QemuSource(null, guest.Arguments(threads: 1)))).Machine;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        try
        {
            var run = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
            var write = new Watchpoint(0x2000, 4, WatchKind.Write);
            Assert.Equal(new WatchpointChanged(write, true), Call(coordinator, new InsertWatchpoint(write)));

            var first = Assert.IsType<Stopped>(Call(coordinator, run));
            Assert.Equal(StopReason.Watchpoint, first.Event.Reason);
            Assert.Equal(write, first.Event.Watch!.Watchpoint);
            Assert.Equal(0x2000UL, first.Event.Watch.DataAddress);
            ulong storeNip = first.Event.Nip;
            Assert.Contains(storeNip, new[] { 0x1cUL, 0x20UL }); // at the store (DAWR's rule, KVM) or after it (QEMU TCG's)
            uint counted = (uint)first.State.Gpr[4];

            var second = Assert.IsType<Stopped>(Call(coordinator, run));
            Assert.Equal((StopReason.Watchpoint, storeNip), (second.Event.Reason, second.Event.Nip));
            Assert.Equal(counted + 1, (uint)second.State.Gpr[4]);

            Assert.Equal(new WatchpointChanged(write, true), Call(coordinator, new RemoveWatchpoint(write)));
            var read = new Watchpoint(0x2000, 4, WatchKind.Read);
            Call(coordinator, new InsertWatchpoint(read));
            var load = Assert.IsType<Stopped>(Call(coordinator, run));
            Assert.Equal(StopReason.Watchpoint, load.Event.Reason);
            Assert.Equal(read, load.Event.Watch!.Watchpoint);
            Assert.Equal(storeNip + 4, load.Event.Nip);
            Assert.Equal((uint)load.State.Gpr[4], Word(vm, 0x2000));
        }
        finally
        {
            Sys.Stop(coordinator);
            vm.Dispose();
        }
    }
}
