using System.Text;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;
using Xunit.Abstractions;

namespace ActorStep.Tests.Linux;

/// <summary>
/// Debian's ppc64le kernel entered on the simulated machine as kexec enters it (issue 13): how far its boot gets today.
/// A checkpoint that moves forward as the machine grows: when the next missing piece lands, the stop below moves on.
/// Each boot runs deterministically (one thread, fixed interleaving), so what it prints is the same every run.
/// </summary>
[Collection("linux")]
public sealed class SimulatedLinuxBootTests(ITestOutputHelper output)
{
    private sealed record Booted(SimulatedMachine Vm, string Console, RunResult Result, ElfImage Kernel) : IDisposable
    {
        public void Dispose() => Vm.Dispose();
    }

    private static Booted Boot(int vcpus, bool vector, bool initramfs, long maxInstructions)
    {
        var assets = LinuxAssets.Get();
        var kernel = ElfImage.Load(assets.Vmlinux);
        var vm = new SimulatedMachine(new MachineOptions(vcpus, 256UL << 20, RealTimeClock: new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        var console = new StringBuilder();
        vm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(Encoding.ASCII.GetString(bytes)); };
        byte[]? initrd = initramfs ? LinuxInitramfs.Build(assets.Busybox) : null;
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel, initrd, AdvertiseVector: vector), MachineOptions.TimebaseFrequency);
        var result = MachineRunner.Run(vm, new RunOptions { Deterministic = true, MaxInstructions = maxInstructions });
        lock (console) return new Booted(vm, console.ToString(), result, kernel);
    }

    /// <summary>
    /// Without VMX/VSX in the tree the kernel takes its scalar paths and boots on every vcpu (RTAS start-cpu, XICS IPIs, the
    /// decrementer, H_CEDE idle) to the initramfs's /init; /init's first page faults still run VMX code (copypage_power7:
    /// CPU_FTR_VMX_COPY comes from the cpu table, not the tree), and the next instruction the machine lacks oopses the
    /// kernel: init dies and the panic reaches RTAS ibm,os-term, which stops the machine. About 0.8 G instructions on vcpu 0.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void WithoutVectorInTheTreeTheKernelBringsUpEveryVcpuAndRunsInitUntilTheNextMissingInstruction(int vcpus)
    {
        using var boot = Boot(vcpus, vector: false, initramfs: true, maxInstructions: 3_000_000_000);
        output.WriteLine(boot.Console);
        output.WriteLine(string.Join("\n", boot.Vm.Missing));
        output.WriteLine(string.Join("\n", boot.Result.Vcpus));

        Assert.Contains($"Linux version {LinuxAssets.Get().KernelRelease} ", boot.Console);
        Assert.Contains("lpar: Using radix MMU under hypervisor", boot.Console);
        Assert.Contains($"smp: Brought up 1 node, {vcpus} CPU{(vcpus > 1 ? "s" : "")}", boot.Console);
        Assert.Contains("clocksource: Switched to clocksource timebase", boot.Console);
        Assert.Contains("Trying to unpack rootfs image as initramfs", boot.Console);
        Assert.Contains("Run /init as init process", boot.Console);

        // With FP/VMX/VSX in the machine, copypage_power7 runs; /init then meets the next missing instruction (dssall in
        // switch_mm_irqs_off when measured), the kernel oopses and the panic reaches RTAS ibm,os-term.
        Assert.Contains("Kernel panic - not syncing: Attempted to kill init!", boot.Console);

        Assert.Equal(MachineHalt.OsTerm, boot.Vm.Halt?.Status);
        Assert.All(boot.Result.Vcpus, v => Assert.Equal("stopped", v.Reason));
        // Every hypercall and RTAS call of the boot is answered, but for two that QEMU's pseries answers H_FUNCTION too and the
        // kernel does without: H_QUERY_VAS_CAPABILITIES (0x398, no accelerators) and H_GET_PERF_COUNTER_INFO (0xF080); and,
        // after the oops, the panic's H_SIGNAL_SYS_RESET (0x380, an NMI to stop the other cpus; not served yet).
        Assert.DoesNotContain(boot.Vm.Missing, m => m.Kind == "rtas" || (m.Kind == "hypercall" && m.Value is not (0x398 or 0xF080 or 0x380)));
    }

    [Fact]
    public void WithVectorInTheTreeTheBootRunsMemcpyPower7AndReachesRcuSetupWithNoMissingInstruction()
    {
        using var boot = Boot(1, vector: true, initramfs: false, maxInstructions: 80_000_000);
        output.WriteLine(boot.Console);
        output.WriteLine(string.Join("\n", boot.Vm.Missing));

        // setup_per_cpu_areas copies through memcpy_power7 (lvx/vperm/stvx under enter_vmx_ops), where the machine stopped
        // before FP/VMX/VSX; now the boot goes on past the per-cpu areas to RCU's set-up without an unknown instruction.
        Assert.DoesNotContain(boot.Vm.Missing, m => m.Kind == "instruction");
        Assert.DoesNotContain("Oops", boot.Console);
        Assert.Contains("percpu: Embedded", boot.Console);
        Assert.Contains("rcu: Adjusting geometry for rcu_fanout_leaf=16, nr_cpu_ids=1", boot.Console);
    }

    /// <summary>Two deterministic boots on 4 vcpus through the secondaries' start and their first idle periods: the same
    /// console, timestamps included, and the same instruction count on every vcpu.</summary>
    [Fact]
    public void TwoDeterministicBootsOnFourVcpusPrintTheSameConsoleAndRetireTheSameInstructions()
    {
        const long budget = 120_000_000;
        using var first = Boot(4, vector: false, initramfs: false, budget);
        using var second = Boot(4, vector: false, initramfs: false, budget);

        Assert.Contains("smp: Brought up 1 node, 4 CPUs", first.Console);
        Assert.Equal(first.Console, second.Console);
        Assert.Equal(first.Result.Vcpus.Select(v => v.Instructions), second.Result.Vcpus.Select(v => v.Instructions));
        Assert.All(first.Result.Vcpus.Skip(1), v => Assert.True(v.Instructions > 0, $"vcpu {v.Vcpu} ran"));
    }
}
