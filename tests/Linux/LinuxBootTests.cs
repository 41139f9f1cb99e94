using System.Text.RegularExpressions;
using ActorStep.Tests.Differential;
using ActorStep.Tests.Support;
using Xunit.Abstractions;

namespace ActorStep.Tests.Linux;

/// <summary>Each boot costs seconds on the 2 cores: the Linux tests run one after the other.</summary>
[CollectionDefinition("linux")]
public sealed class LinuxCollection;

/// <summary>
/// Debian's ppc64le kernel (scripts/fetch-linux) booted by QEMU pseries (TCG, VOF) to a busybox /init built at test
/// time: the ground the QEMU backend (attached to this QEMU's gdbstub) and, later, the simulator stand on.
/// </summary>
[Collection("linux")]
public sealed class LinuxBootTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    private const string PowerDown = "reboot: Power down";

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void DebianKernelBootsToBusyboxRunsUserspaceAndPowersOffByItself(int vcpus)
    {
        using var guest = LinuxGuest.Start(new LinuxGuestOptions { Vcpus = vcpus });
        string console = Boot(guest, $"{vcpus} vcpu(s)");

        Assert.Contains($"Linux version {guest.Assets.KernelRelease} ", console);
        Assert.Equal(guest.Assets.KernelRelease, Printed(console, "UNAME"));
        Assert.Equal($"{vcpus}", Printed(console, "NPROC"));
        Assert.Equal($"{vcpus}", Printed(console, "CPUINFO"));
        Assert.Equal("42", Printed(console, "ARITH"));
    }

    [Fact]
    public void TwoBootsWithTheDeterminismOptionsPrintTheSameConsoleOutputTimestampsIncluded()
    {
        string Once(int n)
        {
            using var guest = LinuxGuest.Start(new LinuxGuestOptions { Vcpus = 4, Deterministic = true });
            string console = Boot(guest, $"4 vcpus, deterministic, boot {n}");
            return console[..(console.IndexOf(PowerDown, StringComparison.Ordinal) + PowerDown.Length)];
        }
        string first = Once(1), second = Once(2);

        // The kernel's printk timestamps are in the text: equal text means equal virtual time at every line.
        Assert.Matches(@"\[\s+\d+\.\d{6}\] Run /init as init process", first);
        if (first != second)
        {
            string[] a = first.Split('\n'), b = second.Split('\n');
            int i = 0;
            while (i < Math.Min(a.Length, b.Length) && a[i] == b[i]) i++;
            Assert.Fail($"the consoles differ first at line {i + 1}:\n  boot 1: {(i < a.Length ? a[i] : "(end)")}\n  boot 2: {(i < b.Length ? b[i] : "(end)")}");
        }
    }

    [Fact]
    public void GuestStartedStoppedUnderTheGdbstubOnAUnixSocketBootsOnceContinued()
    {
        using var guest = LinuxGuest.Start(new LinuxGuestOptions { Vcpus = 2, Deterministic = true, GdbStub = true, Qmp = true });
        using var rsp = RspClient.ConnectUnix(guest.GdbSocket!, TimeSpan.FromSeconds(20), () => !guest.HasExited);
        Assert.StartsWith("T05", rsp.Request("?"));
        Assert.True(File.Exists(guest.QmpSocket), "the QMP socket exists");
        Assert.Equal("", guest.Console);   // -S: not one instruction yet, so nothing on the console

        rsp.Send("c");
        string console = Boot(guest, "2 vcpus, deterministic, gdbstub continued");
        Assert.Equal("2", Printed(console, "NPROC"));
    }

    [Fact]
    public void DisposingAGuestKillsItsQemuAndRemovesItsSockets()
    {
        var guest = LinuxGuest.Start(new LinuxGuestOptions { GdbStub = true });
        int pid = guest.ProcessId;
        string dir = Path.GetDirectoryName(guest.GdbSocket)!;
        Assert.False(guest.HasExited);

        guest.Dispose();

        Assert.True(ProcessGone(pid), $"QEMU (pid {pid}) still runs after Dispose");
        Assert.False(Directory.Exists(dir), $"{dir} is left behind");
    }

    private static bool ProcessGone(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return p.HasExited;
        }
        catch (ArgumentException) { return true; }
    }

    /// <summary>Waits for the init line and for QEMU to exit with code 0 after the guest's poweroff; reports the times.</summary>
    private string Boot(LinuxGuest guest, string what)
    {
        guest.WaitFor(Regex.Escape(LinuxInitramfs.UpLine), Timeout);
        var up = guest.Elapsed;
        int code = guest.WaitForExit(Timeout);
        var end = guest.Elapsed;
        string console = guest.Console;
        output.WriteLine($"{what}: init line at {up.TotalSeconds:0.00} s, QEMU exited (code {code}) at {end.TotalSeconds:0.00} s");
        output.WriteLine($"command: {guest.CommandLine}");
        Assert.True(code == 0, $"QEMU exited with code {code}: {guest.Stderr}");
        Assert.Contains(LinuxInitramfs.PoweringOffLine, console);
        Assert.Contains(PowerDown, console);   // the kernel's own poweroff, not a panic (panic=-1 with -no-reboot also exits)
        return console;
    }

    /// <summary>What /init printed on its line "ACTORSTEP-KEY: value".</summary>
    private static string Printed(string console, string key)
    {
        var m = Regex.Match(console, $@"^ACTORSTEP-{key}: (.*?)\r?$", RegexOptions.Multiline);
        Assert.True(m.Success, $"the console has no line ACTORSTEP-{key}:\n{console[^Math.Min(console.Length, 2000)..]}");
        return m.Groups[1].Value;
    }
}
