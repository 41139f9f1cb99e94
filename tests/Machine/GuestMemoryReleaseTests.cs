using ActorStep.Hypervisor;
using ActorStep.Machine;

namespace ActorStep.Tests.Machine;

/// <summary>Guest RAM and the decode cache cost physical memory only where used, and all of it goes back when the VM is
/// disposed (issue 15, finding 4). Residency is the kernel's page table (mincore), not a timing or a process-wide figure.</summary>
public class GuestMemoryReleaseTests
{
    private const long Page = 4096;
    /// <summary>Room for a transparent huge page per touched page, where the kernel backs anonymous memory with them.</summary>
    private const long HugePage = 2 << 20;

    [Fact]
    public void Guest_memory_is_backed_only_where_written_and_given_back_on_release()
    {
        if (!OperatingSystem.IsLinux()) return;
        var memory = new GuestMemory(64UL << 20);
        Assert.Equal(0, memory.ResidentBytes());

        memory.Write(0x1000, [1]);
        memory.Write(32UL << 20, [2]);
        Assert.InRange(memory.ResidentBytes()!.Value, 2 * Page, 2 * HugePage);

        memory.Release();
        Assert.Equal(0, memory.ResidentBytes());
        Assert.True(memory.IsReleased);
        Assert.Throws<ObjectDisposedException>(() => memory.Read(0x1000, new byte[1]));
    }

    [Fact]
    public void A_disposed_machine_gives_back_its_ram_and_decode_cache()
    {
        if (!OperatingSystem.IsLinux()) return;
        var vm = SimulatedMachine.Load(ElfImage.BuiltIn("demo"), new MachineOptions(Vcpus: 4, MemorySize: 128UL << 20));
        for (int v = 0; v < vm.VcpuCount; v++) vm.GetVcpu(v).Run(2000);
        long used = vm.Memory.ResidentBytes()!.Value;
        // The image, the pages the guest wrote and the decode slots of the pages it ran: a little of the 128 MiB (and 256 MiB of cache).
        Assert.InRange(used, 4 * Page, 16 * HugePage);

        vm.Dispose();
        Assert.Equal(0, vm.Memory.ResidentBytes());
        Assert.Throws<ObjectDisposedException>(() => vm.ReadMemory(0, new byte[4]));
    }
}
