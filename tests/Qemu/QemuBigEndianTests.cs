using static ActorStep.Tests.Qemu.QemuAsk;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>A QEMU whose guest runs big-endian (QEMU then sends every register in that order): ActorStep reads and steps it
/// as it does a little-endian kernel.</summary>
[Collection(QemuCollection.Name)]
public sealed class QemuBigEndianTests : Akka.TestKit.Xunit2.TestKit
{


    [Fact]
    public void ABigEndianGuestOnQemuReadsAndStepsInstructionByInstruction()
    {
        using var guest = new PowerNvGuest("count-be.s");
        {
            var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
                new QemuSource(null, guest.Arguments()))).Machine;
            var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
            try
            {
                var at = vm.GetVcpu(0).GetRegisters();
                Assert.Equal(0x10UL, at.Nip);
                Assert.Equal(0UL, at.Msr & Msr.LE);
                Assert.False(vm.ImageIsLittleEndian);
                var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
                var trail = new List<(ulong Nip, ulong R3, ulong R4)>();
                for (int i = 0; i < 9; i++)
                {
                    var s = Assert.IsType<Stopped>(Call(coordinator, step)).State;
                    trail.Add((s.Nip, s.Gpr[3], s.Gpr[4]));
                    Assert.Equal(0UL, s.Msr & Msr.SE);
                }
                Assert.Equal([
                    (0x14UL, 0x12340000UL, 0UL), (0x18, 0x12345678, 0), (0x1c, 0x12345678, 0),
                    (0x20, 0x12345678, 1), (0x24, 0x12345678, 1), (0x1c, 0x12345678, 1),
                    (0x20, 0x12345678, 2), (0x24, 0x12345678, 2), (0x1c, 0x12345678, 2)], trail);
                // memory by real address, in the guest's order: the first instruction, lis r3,0x1234
                var word = Assert.IsType<MemoryRead>(Call(coordinator, new ReadMemory(0x10, 4, null))).Data;
                Assert.Equal(new byte[] { 0x3c, 0x60, 0x12, 0x34 }, word);
            }
            finally
            {
                this.Release(coordinator, vm);
            }
        }
    }
}
