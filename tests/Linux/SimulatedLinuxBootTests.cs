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
    /// decrementer, H_CEDE idle) to the initramfs's /init; the first copy-on-write page fault of /init runs copypage_power7,
    /// which uses VMX whatever the tree says (CPU_FTR_VMX_COPY comes from the cpu table): the kernel oopses, init dies and
    /// the panic reaches RTAS ibm,os-term, which stops the machine. About 0.8 G instructions on vcpu 0.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void WithoutVectorInTheTreeTheKernelBringsUpEveryVcpuRunsInitAndStopsAtTheFirstVmxCopy(int vcpus)
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

        var firstInstruction = boot.Vm.Missing.First(m => m.Kind == "instruction");
        Assert.Equal(GuestAssembler.Words("lvx 7, 0, 4")[0], (uint)firstInstruction.Value);
        ulong copypage = boot.Kernel.Symbol("copypage_power7");
        Assert.InRange(firstInstruction.Nip, copypage, copypage + 0x1c0);
        Assert.Contains("Kernel panic - not syncing: Attempted to kill init!", boot.Console);

        Assert.Equal(MachineHalt.OsTerm, boot.Vm.Halt?.Status);
        Assert.All(boot.Result.Vcpus, v => Assert.Equal("stopped", v.Reason));
        // Every hypercall and RTAS call of the boot is answered, but for two that QEMU's pseries answers H_FUNCTION too and the
        // kernel does without: H_QUERY_VAS_CAPABILITIES (0x398, no accelerators) and H_GET_PERF_COUNTER_INFO (0xF080); and,
        // after the oops, the panic's H_SIGNAL_SYS_RESET (0x380, an NMI to stop the other cpus; not served yet).
        Assert.DoesNotContain(boot.Vm.Missing, m => m.Kind == "rtas" || (m.Kind == "hypercall" && m.Value is not (0x398 or 0xF080 or 0x380)));
    }

    [Fact]
    public void WithVectorInTheTreeTheBootStopsAtTheFirstVmxInstructionLvxInMemcpyPower7()
    {
        using var boot = Boot(1, vector: true, initramfs: false, maxInstructions: 80_000_000);

        // The first instruction the machine lacks: lvx v7,0,r4 (0x7ce020ce) in memcpy_power7, from setup_per_cpu_areas.
        var firstInstruction = boot.Vm.Missing.First(m => m.Kind == "instruction");
        output.WriteLine(string.Join("\n", boot.Vm.Missing));
        Assert.Equal(0x7ce020ceUL, firstInstruction.Value);
        ulong memcpy = boot.Kernel.Symbol("memcpy_power7");
        Assert.InRange(firstInstruction.Nip, memcpy, memcpy + 0x7d0);
        Assert.Contains("printk: bootconsole [udbg0] enabled", boot.Console);
        Assert.Contains("Oops: Exception in kernel mode, sig: 4", boot.Console);
        Assert.Contains("NIP [c00000000009de60] memcpy_power7+0x400/0x7d0", boot.Console);
        Assert.Contains("setup_per_cpu_areas", boot.Console);
        // So early RTAS is not set up yet: the panic cannot reach ibm,os-term, and the run ends at its instruction limit.
        Assert.Null(boot.Vm.Halt);
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
