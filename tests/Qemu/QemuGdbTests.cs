using ActorStep.Tests.Support;
using System.Net;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using ActorStep.Tests.Gdb;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// An unmodified gdb-multiarch, with the Debian vmlinux's symbols, debugging that kernel on a 4-vcpu QEMU through ActorStep:
/// the VM created through gRPC (CreateVm with QEMU's arguments), the bridge over the API, gdb's own commands.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuGdbTests(ITestOutputHelper log) : ServerTest(QemuLaunchingServer.StartAsync)
{


    private static IReadOnlyList<ulong> Values(string output) =>
        Regex.Matches(output, @"^\$\d+ = (0x[0-9a-f]+)", RegexOptions.Multiline).Select(m => Convert.ToUInt64(m.Groups[1].Value, 16)).ToList();

    [Fact]
    public async Task A_QEMU_VMs_console_and_stops_come_through_the_event_stream()
    {
        var vms = new Vms.VmsClient(Channel);
        var launch = new QemuLaunch();
        launch.Arguments.AddRange(QemuLinux.Arguments(vcpus: 1, deterministic: false));
        var vm = await vms.CreateVmAsync(new CreateVmRequest { Qemu = new QemuSource { Launch = launch }, VmId = "console" },
            deadline: DateTime.UtcNow.AddSeconds(60));
        using var events = new Events.EventsClient(Channel).StreamEvents(new StreamEventsRequest { VmId = vm.VmId });
        var run = new RunControl.RunControlClient(Channel);
        // With no root file system this kernel panics once it has booted: the continue ends at a breakpoint on panic().
        await new Breakpoints.BreakpointsClient(Channel).InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = QemuLinux.LocalEntry("panic") });
        var continuing = run.ContinueAsync(new ContinueRequest { VmId = vm.VmId });
        // The stream's buffer is bounded (a slow reader loses the oldest events and is told how many: a gap in the numbers), and
        // QEMU writes its console in small pieces: read until the stop, then check what came and what was said lost.
        var console = new System.Text.StringBuilder();
        ulong expected = 1, lost = 0;
        using var within = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        Event? stop = null;
        while (stop is null && await events.ResponseStream.MoveNext(within.Token))
        {
            var ev = events.ResponseStream.Current;
            lost += ev.Sequence - expected;
            expected = ev.Sequence + 1;
            if (ev.Console is { } c)
            {
                Assert.Equal(uint.MaxValue, c.Vcpu); // QEMU's serial port: the backend cannot tell which vcpu wrote
                console.Append(c.Data.ToStringUtf8());
            }
            if (ev.KindCase == Event.KindOneofCase.Stopped) stop = ev;
        }
        Assert.NotNull(stop);
        Assert.Equal(StopReason.Breakpoint, stop.Stopped.Event.Reason);
        Assert.Matches(@"\[\s+\d+\.\d+\] ", console.ToString()); // the kernel's own lines
        if (lost == 0) Assert.Contains("Linux version 6.1.0", console.ToString());
        var stopped = await continuing;
        Assert.True(stopped.Event.Reason == StopReason.Breakpoint && stopped.Event.Nip == QemuLinux.LocalEntry("panic"), $"{stopped.Event}");
        await vms.DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId });
    }

    [Fact]
    public async Task GdbWithTheVmlinuxSymbolsBreaksStepsAndSwitchesVcpusOnAFourVcpuKernelUnderQemu()
    {
        var vms = new Vms.VmsClient(Channel);
        var launch = new QemuLaunch();
        launch.Arguments.AddRange(QemuLinux.Arguments(vcpus: 4, deterministic: false));
        var vm = await vms.CreateVmAsync(new CreateVmRequest { Qemu = new QemuSource { Launch = launch }, VmId = "linux" },
            deadline: DateTime.UtcNow.AddSeconds(60));
        Assert.Equal(4u, vm.VcpuCount);
        Assert.Equal(1UL << 30, vm.MemorySize);
        Assert.True(vm.ImageLittleEndian); // the kernel's byte order, though VOF (big-endian) runs first
        await using var bridge = await GdbBridge.StartAsync(Channel, vm.VmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance);
        ulong startKernel = QemuLinux.LocalEntry("start_kernel"), doIdle = QemuLinux.LocalEntry("do_idle");
        using var gdb = new GdbProcess(bridge.Endpoint, QemuLinux.Vmlinux, littleEndian: true,
        [
            "set scheduler-locking off",
            "info threads",
            "break start_kernel", "continue", "bt 2", "x/2i $pc", "p/x $pc",
            "stepi", "stepi", "p/x $pc",
            // a secondary vcpu runs once the kernel brings it up: the first into do_idle stops everything there
            "delete", "break do_idle", "continue", "p/x $pc", "info threads",
            "delete",
            "thread 2", "p/x $pc", "stepi", "p/x $pc",
            "set scheduler-locking step", "stepi", "p/x $pc",
            "set scheduler-locking on", "stepi", "p/x $pc",
            // vcpu 2 is not started yet (RTAS start-cpu comes later): alone, it cannot execute, and the step says so
            "thread 3", "p/x $pc", "stepi", "p/x $pc",
            "detach",
        ]);
        string output = await gdb.OutputAsync(TimeSpan.FromSeconds(150));
        log.WriteLine(output);
        for (int v = 0; v < 4; v++) Assert.Matches($@"Thread 1\.{v + 1} ""vcpu{v}""", output);
        Assert.Contains("hit Breakpoint 1, 0x", output);
        Assert.Matches(@"#0\s+0x[0-9a-f]+ in start_kernel \(\)", output);
        Assert.Matches(@"#1\s+0x[0-9a-f]+ in start_here_common \(\)", output);
        Assert.Matches(@"=> 0x[0-9a-f]+ <start_kernel\+8>:\s+mflr\s+r0", output); // the guest's word, not a trap
        var pcs = Values(output);
        Assert.True(pcs.Count == 9, output); // $1 … $9
        Assert.Equal(startKernel, pcs[0]);
        Assert.NotEqual(startKernel, pcs[1]); // two instructions later (the second is a call to mcount)
        Assert.Matches($@"hit Breakpoint 2, 0x{pcs[2]:x16} in do_idle \(\)", output); // gdb breaks past the prologue
        Assert.InRange(pcs[2], doIdle, doIdle + 0x100);
        Assert.NotEqual(pcs[3], pcs[4]); // thread 2 (vcpu 1) stepped: scheduler-locking off,
        Assert.NotEqual(pcs[4], pcs[5]); // step
        Assert.NotEqual(pcs[5], pcs[6]); // and on
        Assert.Equal(pcs[7], pcs[8]);    // thread 3 (vcpu 2, never started) did not move,
        Assert.Contains("vcpu 2 is idle", output); // and gdb was told why
        Assert.DoesNotContain("SIGABRT", output);
        Assert.DoesNotContain("SIGTRAP", output.Replace("Breakpoint", "")); // no stray stop: a foreign trap is never reported

        var after = await vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId });
        log.WriteLine($"foreign traps {after.ForeignTraps}, re-entries {after.Reentries}, breakpoints {after.BreakpointCount}");
        Assert.Equal(0u, after.BreakpointCount);
        Assert.Equal(after.ForeignTraps, after.Reentries);
        await vms.DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId });
    }
}
