using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;
using Xunit.Abstractions;

namespace ActorStep.Tests.Linux;

/// <summary>
/// Debian's ppc64le kernel entered on the simulated machine as kexec enters it (issue 13), with the busybox initramfs of
/// <see cref="LinuxInitramfs"/>: the whole boot, userspace (static glibc: FP, VMX, VSX, scv) and the power-off, compared
/// with the same kernel and initramfs under <c>qemu-system-ppc64 -M pseries</c>. Each boot on the machine runs
/// deterministically (one thread, fixed interleaving), so what it prints is the same every run.
/// </summary>
[Collection("linux")]
public sealed class SimulatedLinuxBootTests(ITestOutputHelper output)
{
    private static readonly TimeSpan QemuTimeout = TimeSpan.FromSeconds(180);

    private sealed record Booted(SimulatedMachine Vm, string Console, RunResult Result, TimeSpan Elapsed) : IDisposable
    {
        public void Dispose() => Vm.Dispose();
    }

    private static Booted Boot(int vcpus, bool initramfs, long maxInstructions)
    {
        var assets = LinuxAssets.Get();
        var kernel = ElfImage.Load(assets.Vmlinux);
        var vm = new SimulatedMachine(new MachineOptions(vcpus, 256UL << 20, RealTimeClock: new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        var console = new StringBuilder();
        vm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(Encoding.ASCII.GetString(bytes)); };
        byte[]? initrd = initramfs ? LinuxInitramfs.Build(assets.Busybox) : null;
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel, initrd), MachineOptions.TimebaseFrequency);
        var clock = Stopwatch.StartNew();
        var result = MachineRunner.Run(vm, new RunOptions { Deterministic = true, MaxInstructions = maxInstructions });
        lock (console) return new Booted(vm, console.ToString(), result, clock.Elapsed);
    }

    /// <summary>The lines /init printed (<c>ACTORSTEP-KEY: value</c>), in order, without the tty's carriage returns.</summary>
    private static List<string> InitLines(string console) =>
        Regex.Matches(console, @"^ACTORSTEP-[A-Z0-9]+: .*?(?=\r?$)", RegexOptions.Multiline).Select(m => m.Value).ToList();

    /// <summary>
    /// The issue's first test: on 1 and on 4 vcpus the kernel boots (radix under the hypervisor, the per-cpu areas through
    /// memcpy_power7's VMX, every vcpu started by RTAS, the timebase clocksource), runs /init, whose lines — values computed
    /// by busybox's userspace: uname, nproc, /proc/cpuinfo, shell arithmetic, awk's floating point, md5sum, sort — equal
    /// what QEMU's pseries prints for the same kernel and initramfs, and powers the machine off by RTAS. No instruction and
    /// no RTAS call is missing; the only unanswered hypercalls are two QEMU does not answer either.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void TheDebianKernelBootsToAnInitWhoseLinesEqualQemusAndPowersOff(int vcpus)
    {
        using var boot = Boot(vcpus, initramfs: true, maxInstructions: 3_000_000_000);
        output.WriteLine(boot.Console);
        output.WriteLine(string.Join("\n", boot.Vm.Missing));
        output.WriteLine(string.Join("\n", boot.Result.Vcpus));
        output.WriteLine($"machine: {vcpus} vcpu(s), deterministic, {boot.Elapsed.TotalSeconds:0.0} s to power-off");

        Assert.Contains($"Linux version {LinuxAssets.Get().KernelRelease} ", boot.Console);
        Assert.Contains("lpar: Using radix MMU under hypervisor", boot.Console);
        Assert.Contains("percpu: Embedded", boot.Console);
        Assert.Contains($"smp: Brought up 1 node, {vcpus} CPU{(vcpus > 1 ? "s" : "")}", boot.Console);
        Assert.Contains("clocksource: Switched to clocksource timebase", boot.Console);
        Assert.Contains("Run /init as init process", boot.Console);
        Assert.DoesNotContain("Oops", boot.Console);
        Assert.DoesNotContain("Kernel panic", boot.Console);
        Assert.Contains("reboot: Power down", boot.Console);
        Assert.Equal(MachineHalt.PowerOff, boot.Vm.Halt?.Status);
        Assert.All(boot.Result.Vcpus, v => Assert.Equal("stopped", v.Reason));
        // QEMU's pseries answers H_QUERY_VAS_CAPABILITIES (0x398, no accelerators) and H_GET_PERF_COUNTER_INFO (0xF080) with
        // H_FUNCTION too; the kernel does without them.
        Assert.DoesNotContain(boot.Vm.Missing, m => m.Kind is "instruction" or "rtas" || (m.Kind == "hypercall" && m.Value is not (0x398 or 0xF080)));

        var ours = InitLines(boot.Console);
        Assert.Equal(LinuxInitramfs.UpLine, ours.FirstOrDefault());
        Assert.Equal(LinuxInitramfs.PoweringOffLine, ours.LastOrDefault());
        Assert.Contains($"ACTORSTEP-NPROC: {vcpus}", ours);

        using var qemu = LinuxGuest.Start(new LinuxGuestOptions { Vcpus = vcpus });
        qemu.WaitFor(Regex.Escape(LinuxInitramfs.PoweringOffLine), QemuTimeout);
        int code = qemu.WaitForExit(QemuTimeout);
        output.WriteLine($"QEMU: exit code {code} at {qemu.Elapsed.TotalSeconds:0.0} s; {qemu.CommandLine}");
        Assert.Equal(0, code);
        Assert.Equal(InitLines(qemu.Console), ours);
    }

    /// <summary>Two deterministic boots on 4 vcpus through the secondaries' start and their first idle periods: the same
    /// console, timestamps included, and the same instruction count on every vcpu.</summary>
    [Fact]
    public void TwoDeterministicBootsOnFourVcpusPrintTheSameConsoleAndRetireTheSameInstructions()
    {
        const long budget = 120_000_000;
        using var first = Boot(4, initramfs: false, budget);
        using var second = Boot(4, initramfs: false, budget);

        Assert.Contains("smp: Brought up 1 node, 4 CPUs", first.Console);
        Assert.Equal(first.Console, second.Console);
        Assert.Equal(first.Result.Vcpus.Select(v => v.Instructions), second.Result.Vcpus.Select(v => v.Instructions));
        Assert.All(first.Result.Vcpus.Skip(1), v => Assert.True(v.Instructions > 0, $"vcpu {v.Vcpu} ran"));
    }
}
