using System.Text;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;
using Xunit.Abstractions;

namespace ActorStep.Tests.Linux;

/// <summary>
/// Debian's ppc64le kernel entered on the simulated machine as kexec enters it (issue 13): how far its boot gets today.
/// A checkpoint that moves forward as the machine grows: when the next missing piece lands, the stop below moves on.
/// </summary>
[Collection("linux")]
public sealed class SimulatedLinuxBootTests(ITestOutputHelper output)
{
    /// <summary>The boot below reaches its stop after about 22 M instructions on 1 vcpu (38 M on 4).</summary>
    private const long Budget = 80_000_000;

    private static (SimulatedMachine Vm, StringBuilder Console, ElfImage Kernel) Boot(int vcpus)
    {
        var kernel = ElfImage.Load(LinuxAssets.Get().Vmlinux);
        var vm = new SimulatedMachine(new MachineOptions(vcpus, 256UL << 20));
        var console = new StringBuilder();
        vm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(Encoding.ASCII.GetString(bytes)); };
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel), MachineOptions.TimebaseFrequency);
        var boot = vm.Vcpu(0);
        while (boot.InstructionsRetired < Budget)
        {
            boot.Run(1_000_000);
            lock (console) if (console.ToString().Contains("end Kernel panic")) break;
        }
        return (vm, console, kernel);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void KernelEnteredWithTheBuiltDeviceTreePrintsItsBannerThroughHvcUnderRadix(int vcpus)
    {
        var (vm, console, _) = Boot(vcpus);
        using var _vm = vm;
        string text = console.ToString();
        output.WriteLine(text);

        Assert.Contains($"Linux version {LinuxAssets.Get().KernelRelease} ", text);
        Assert.Contains("lpar: Using radix MMU under hypervisor", text);
        Assert.Contains("radix-mmu: Mapped 0x0000000000000000-0x0000000002600000 with 2.00 MiB pages (exec)", text);
        Assert.Contains("printk: bootconsole [udbg0] enabled", text);
        Assert.Contains("phys_mem_size     = 0x10000000", text);
        Assert.Contains("Initmem setup node 0 [mem 0x0000000000000000-0x000000000fffffff]", text);
        Assert.True(vm.Vcpu(1 % vcpus).IsHeld || vcpus == 1, "secondaries wait for RTAS start-cpu");
    }

    [Fact]
    public void BootRunsMemcpyPower7WithVmxAndReachesRcuSetupWithNoMissingInstruction()
    {
        var (vm, console, kernel) = Boot(1);
        using var _vm = vm;
        string text = console.ToString();
        output.WriteLine(text);
        output.WriteLine(string.Join("\n", vm.Missing));
        output.WriteLine($"retired {vm.Vcpu(0).InstructionsRetired} nip {vm.Vcpu(0).GetRegisters().Nip:x}");

        // setup_per_cpu_areas copies through memcpy_power7 (lvx/vperm/stvx under enter_vmx_ops), where the machine stopped
        // before FP/VMX/VSX; now the boot goes on past the per-cpu areas to RCU's set-up without an unknown instruction.
        Assert.DoesNotContain(vm.Missing, m => m.Kind == "instruction");
        Assert.DoesNotContain("Oops", text);
        Assert.Contains("percpu: Embedded", text);
        Assert.Contains("rcu: Adjusting geometry for rcu_fanout_leaf=16, nr_cpu_ids=1", text);
        Assert.True(kernel.Symbol("memcpy_power7") != 0);
    }
}
