using static ActorStep.Tests.Qemu.QemuAsk;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// QEMU's QMP monitor: the client against a real QEMU and against things that are not QMP; attaching to a QEMU that has only
/// a QMP socket (libvirt's case: ActorStep starts the gdbstub and stops it again); and a guest that powers off, with and
/// without -no-shutdown, reported as that — not as a lost VM or a bare "QEMU exited".
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuQmpTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void TheClientGreetsARealQemuRunsCommandsAndReportsTheirErrors()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var qemu = new BareQemu(guest.Arguments(threads: 1), gdb: false, paused: true);
        using var qmp = QmpClient.Connect(qemu.QmpEndpoint);
        Assert.Matches(@"^\d+\.\d+\.\d+$", qmp.Version);
        Assert.Equal("prelaunch", qmp.RunState()); // -S: paused before the first instruction
        var e = Assert.Throws<QmpErrorException>(() => qmp.Execute("no-such-command"));
        Assert.Equal("CommandNotFound", e.ErrorClass);
        Assert.Contains("no-such-command", e.Message);
        Assert.Contains("VM status: paused", qmp.HumanMonitor("info status"));
    }

    [Fact]
    public void ConnectingWhereNothingListensSaysSo()
    {
        int port = FreePort();
        var e = Assert.Throws<QemuLostException>(() => QmpClient.Connect($"127.0.0.1:{port}"));
        Assert.Contains($"cannot connect to QMP at 127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public void SomethingThatIsNotQmpIsRefusedSayingSo()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(() =>
        {
            using var c = listener.AcceptSocket();
            c.Send("SSH-2.0-OpenSSH_9.2\r\n"u8.ToArray());
            Thread.Sleep(500);
        });
        var e = Assert.Throws<QemuLostException>(() => QmpClient.Connect($"127.0.0.1:{port}"));
        Assert.Contains("not QEMU's QMP", e.Message);
        Wait(server);

        // A gdbstub says nothing until asked: no greeting.
        var silent = Task.Run(() =>
        {
            using var c = listener.AcceptSocket();
            Thread.Sleep(1500);
        });
        var quiet = Assert.Throws<QemuLostException>(() => QmpClient.Connect($"127.0.0.1:{port}", TimeSpan.FromSeconds(1)));
        Assert.Contains("sent no QMP greeting", quiet.Message);
        Wait(silent);
    }

    [Fact]
    public void AttachingThroughQmpAloneStepsTheVmAndLeavesNoGdbstubBehind()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var qemu = new BareQemu(guest.Arguments(threads: 2), gdb: false, paused: false);
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 2, 0, HypervisorFlavour.Hv,
            new QemuSource(null, null, qemu.QmpEndpoint))).Machine;
        Assert.StartsWith("127.0.0.1:", vm.Endpoint);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
        var nips = new HashSet<ulong>();
        for (int i = 0; i < 6; i++)
        {
            var done = Assert.IsType<Stopped>(Call(coordinator, step));
            Assert.Equal(StopReason.StepCompleted, done.Event.Reason);
            Assert.Equal(0UL, done.State.Msr & Msr.SE);
            nips.Add(done.Event.Nip);
        }
        Assert.True(nips.Count >= 3, $"six steps of the loop visited {string.Join(", ", nips.Select(n => $"0x{n:x}"))}");
        this.Release(coordinator, vm);

        using var qmp = QmpClient.Connect(qemu.QmpEndpoint);
        // The gdbstub's chardev ("gdb: filename=tcp:…") is gone; QEMU keeps only its internal monitor chardev for qRcmd.
        Assert.DoesNotContain(qmp.HumanMonitor("info chardev").Split('\n'), line => line.StartsWith("gdb:", StringComparison.Ordinal));
        Assert.Equal("running", qmp.RunState());
        // No vcpu keeps SE (the Trace interrupt would have taken it out of its loop), and the guest runs on: its counter moves.
        string registers = qmp.HumanMonitor("info registers -a");
        var msrs = Regex.Matches(registers, @"MSR\s+([0-9a-fA-F]{16})").Select(m => Convert.ToUInt64(m.Groups[1].Value, 16)).ToList();
        Assert.Equal(2, msrs.Count);
        Assert.All(msrs, msr => Assert.True((msr & Msr.SE) == 0, $"MSR 0x{msr:x} has SE"));
        uint first = Counter(qmp);
        Thread.Sleep(200);
        Assert.NotEqual(first, Counter(qmp));
    }

    [Fact]
    public async Task Serve_with_only_a_QMP_endpoint_serves_that_QEMU_and_closes_its_gdbstub_when_it_ends()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var qemu = new BareQemu(guest.Arguments(threads: 1), gdb: false, paused: false);
        using (var serve = Host.ServeCommandProcess.Start("--no-auth", "--grpc", "127.0.0.1:0", "--qemu-qmp", qemu.QmpEndpoint))
        {
            await serve.GrpcAddressAsync(TimeSpan.FromSeconds(60));
            var until = DateTime.UtcNow.AddSeconds(10); // the VM's line follows the address line
            while (!serve.Output.Contains("qemu with QMP at", StringComparison.Ordinal) && DateTime.UtcNow < until) await Task.Delay(20);
            Assert.Contains($"qemu with QMP at {qemu.QmpEndpoint}", serve.Output);
            serve.Terminate(); // SIGTERM: the server lets the VM go
            Assert.True(await serve.WaitForExitAsync(TimeSpan.FromSeconds(30)), "the server did not end");
        }
        using var qmp = QmpClient.Connect(qemu.QmpEndpoint);
        Assert.DoesNotContain(qmp.HumanMonitor("info chardev").Split('\n'), line => line.StartsWith("gdb:", StringComparison.Ordinal));
        Assert.Equal("running", qmp.RunState());
    }

    [Fact]
    public void AQemuWithAGdbstubOfItsOwnIsNotAttachedThroughQmp()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var qemu = new BareQemu(guest.Arguments(threads: 1), gdb: true, paused: true);
        var e = Assert.Throws<InvalidVmRequestException>(() => new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
            new QemuSource(null, null, qemu.QmpEndpoint))));
        Assert.Contains("has a gdbstub already", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AGuestThatPowersOffIsReportedAsPoweredOff(bool noShutdown)
    {
        using var guest = new PseriesGuest("poweroff-pseries.s");
        using var qemu = new BareQemu([.. guest.Arguments(), .. noShutdown ? new[] { "-no-shutdown" } : []], gdb: true, paused: true);
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
            new QemuSource(qemu.GdbEndpoint, null, qemu.QmpEndpoint))).Machine;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var run = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        var stop = Assert.IsType<Stopped>(Call(coordinator, run));
        Assert.True(stop.Event.Reason == StopReason.GuestStopped, $"{stop.Event}");
        Assert.Contains("the guest powered off (QMP SHUTDOWN, guest-shutdown)", stop.Event.Detail);
        Assert.Contains(noShutdown ? "QEMU holds the VM paused" : "QEMU exited with status 0", stop.Event.Detail);
        Assert.Equal("stopped-for-good", Assert.Single(stop.Vcpus).State);
        // It stays so: a later resume ends at once, saying why, and nothing hangs.
        var again = Assert.IsType<Stopped>(Call(coordinator, run));
        Assert.True(again.Event.Reason is StopReason.GuestStopped or StopReason.Finished, $"{again.Event}");
        this.Release(coordinator, vm);
        if (!noShutdown) Assert.True(qemu.WaitForExit(Timeout), "QEMU did not exit after the guest powered off");
    }

    [Fact]
    public void AQemuActorStepStartsHasAQmpSocketOfItsOwnWhichReportsThePoweroffAndEndsQemu()
    {
        using var guest = new PseriesGuest("poweroff-pseries.s");
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
            new QemuSource(null, guest.Arguments()))).Machine;
        var process = vm.Process!;
        Assert.NotNull(vm.Qmp);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var stop = Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue })));
        Assert.True(stop.Event.Reason == StopReason.GuestStopped, $"{stop.Event}");
        Assert.Contains("the guest powered off (QMP SHUTDOWN, guest-shutdown); QEMU holds the VM paused (-no-shutdown)", stop.Event.Detail);
        this.Release(coordinator, vm);
        Assert.True(process.ExitCode == 0, $"QEMU did not quit by itself (exit code {process.ExitCode})"); // QMP quit, not SIGKILL
    }

    [Fact]
    public void AGuestThatPanicsUnderNoShutdownIsReportedAsPanicked()
    {
        using var attached = new AttachedPseries("panic-pseries.s");
        var vm = attached.Vm;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var stop = Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue })));
        Assert.True(stop.Event.Reason == StopReason.Checkstop, $"{stop.Event}");
        Assert.Contains("the guest panicked (QMP GUEST_PANICKED, QEMU's action: pause)", stop.Event.Detail);
        Assert.Contains("guest-panicked", stop.Event.Detail); // HMP info status
        Assert.Contains("T8f", stop.Event.Detail); // QEMU 10's gdbstub: GDB_SIGNAL_UNKNOWN for RUN_STATE_GUEST_PANICKED
        this.Release(coordinator, vm);
    }

    [Fact]
    public void AGuestThatResetsIsReportedAsAnEventWhileTheVmRunsOn()
    {
        using var attached = new AttachedPseries("reset-pseries.s");
        var vm = attached.Vm;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var events = CreateTestProbe();
        coordinator.Tell(new Subscribe(events.Ref));
        var running = coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }), QemuAsk.Timeout);
        var reset = events.FishForMessage<GuestLifecycleObserved>(_ => true, TimeSpan.FromSeconds(30));
        Assert.Equal("reset", reset.Kind);
        Assert.Contains("(QMP RESET, guest-reset)", reset.Detail);
        Assert.False(running.IsCompleted, "a reset stopped the resume"); // the gdbstub reports none: the VM runs on
        Assert.IsType<Stopped>(Call(coordinator, new Halt()));
        var stop = Assert.IsType<Stopped>(Wait(running));
        Assert.Equal(StopReason.Halted, stop.Event.Reason);
        this.Release(coordinator, vm);
    }

    [Fact]
    public void AGuestThatResetsDuringAStepEndsTheStepAsAHaltThatSaysSo()
    {
        using var attached = new AttachedPseries("reset-pseries.s");
        var vm = attached.Vm;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        // The guest's `sc 1` (H_RTAS system-reboot) is 0x30 into its text, which QEMU loaded where `info roms` says (pseries puts
        // an image linked at 0 at 0x400000).
        ulong sc = GuestLoadAddress(vm.Qmp!) + 0x30; // QMP takes one client: the VM's own
        Assert.IsType<BreakpointChanged>(Call(coordinator, new InsertBreakpoint(sc)));
        var atSc = Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue })));
        Assert.True(atSc.Event.Reason == StopReason.Breakpoint && atSc.State.Nip == sc, $"{atSc.Event}");
        Assert.IsType<BreakpointChanged>(Call(coordinator, new RemoveBreakpoint(sc)));

        // The step's instruction resets the machine: the Trace interrupt never comes. Without the reset ending it the step
        // waited for ever.
        var stop = Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step })));
        Assert.True(stop.Event.Reason == StopReason.Halted, $"{stop.Event}");
        Assert.Contains("(QMP RESET, guest-reset), during the step: the step is abandoned", stop.Event.Detail);
        Assert.Equal(0UL, Assert.IsType<ActorStep.Actors.Vcpu.VcpuProtocol.Registers>(Call(coordinator, new ReadRegisters(0))).State.Msr & 0x400); // MSR[SE]
        // The VM goes on as any other: a continue runs (the guest rebooting again and again) until halted.
        var running = coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }), QemuAsk.Timeout);
        Thread.Sleep(200);
        Assert.False(running.IsCompleted, "the continue after the reset ended by itself");
        Assert.IsType<Stopped>(Call(coordinator, new Halt()));
        Assert.Equal(StopReason.Halted, Assert.IsType<Stopped>(Wait(running)).Event.Reason);
        this.Release(coordinator, vm);
    }

    [Fact]
    public void AttachingToAQemuWhoseGuestPoweredOffAlreadyReportsItWithoutHanging()
    {
        using var guest = new PseriesGuest("poweroff-pseries.s");
        using var qemu = new BareQemu([.. guest.Arguments(), "-no-shutdown"], gdb: true, paused: false);
        using (var qmp = QmpClient.Connect(qemu.QmpEndpoint))
        {
            var until = DateTime.UtcNow + Timeout;
            while (qmp.RunState() != "shutdown" && DateTime.UtcNow < until) Thread.Sleep(20);
            Assert.Equal("shutdown", qmp.RunState());
        }
        // gdbstub only: QEMU's monitor (info status) says so.
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv, new QemuSource(qemu.GdbEndpoint, null))).Machine;
        Assert.Contains("powered off before ActorStep attached", vm.FinalState);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        var stop = Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue })));
        Assert.True(stop.Event.Reason is StopReason.GuestStopped or StopReason.Finished, $"{stop.Event}");
        this.Release(coordinator, vm);
    }

    private static ulong GuestLoadAddress(QmpClient qmp)
    {
        // "addr=0000000000400000 size=0x000038 mem=ram name="g.elf ELF program header segment 0""
        var m = Regex.Match(qmp.HumanMonitor("info roms"), @"addr=([0-9a-fA-F]+)[^\n]*g\.elf");
        Assert.True(m.Success, "info roms does not list the guest");
        return Convert.ToUInt64(m.Groups[1].Value, 16);
    }

    private static uint Counter(QmpClient qmp)
    {
        // "0000000000002000: 0x0000abcd"
        var m = Regex.Match(qmp.HumanMonitor("xp /1wx 0x2000"), @":\s*0x([0-9a-fA-F]+)");
        Assert.True(m.Success, "xp gave no word");
        return Convert.ToUInt32(m.Groups[1].Value, 16);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>The same through the API: CreateVm with a QMP endpoint alone, a continue to the guest's poweroff, DeleteVm.</summary>
[Collection(QemuCollection.Name)]
public sealed class QemuQmpApiTests() : ServerTest(QemuLaunchingServer.StartAsync)
{
    [Fact]
    public async Task A_VM_created_from_a_QMP_endpoint_reports_the_guests_poweroff_and_leaves_no_gdbstub_when_deleted()
    {
        using var guest = new PseriesGuest("poweroff-pseries.s");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var qemu = new BareQemu([.. guest.Arguments(), "-no-shutdown"], gdb: false, paused: true, qmpPort: port);
        var vms = new Api.V1.Vms.VmsClient(Channel);
        var vm = await vms.CreateVmAsync(new Api.V1.CreateVmRequest { Qemu = new Api.V1.QemuSource { QmpEndpoint = qemu.QmpEndpoint }, VmId = "by-qmp" },
            deadline: DateTime.UtcNow.AddSeconds(60));
        Assert.True(vm.Capabilities.AllStop);
        var run = new Api.V1.RunControl.RunControlClient(Channel);
        var stop = await run.ContinueAsync(new Api.V1.ContinueRequest { VmId = vm.VmId }, deadline: DateTime.UtcNow.AddSeconds(60));
        Assert.True(stop.Event.Reason == Api.V1.StopReason.GuestStopped, $"{stop.Event}");
        Assert.Contains("the guest powered off (QMP SHUTDOWN, guest-shutdown)", stop.Event.Detail);
        await vms.DeleteVmAsync(new Api.V1.DeleteVmRequest { VmId = vm.VmId });

        using var qmp = QmpClient.Connect(qemu.QmpEndpoint);
        Assert.DoesNotContain(qmp.HumanMonitor("info chardev").Split('\n'), line => line.StartsWith("gdb:", StringComparison.Ordinal));
        Assert.Equal("shutdown", qmp.RunState());
    }
}

/// <summary>A qemu-system-ppc64 started as a user or libvirt would: a QMP socket, a gdbstub only when asked, no -no-shutdown
/// unless the arguments say so, in a private directory; killed and removed on dispose.</summary>
internal sealed class BareQemu : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    public BareQemu(IReadOnlyList<string> args, bool gdb, bool paused, int? qmpPort = null)
    {
        _dir = Directory.CreateTempSubdirectory("actorstep-bareqemu-").FullName;
        QmpEndpoint = qmpPort is int port ? $"127.0.0.1:{port}" : $"unix:{_dir}/qmp.sock";
        var psi = new ProcessStartInfo(QemuProcess.DefaultBinary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var added = new List<string> { "-qmp", (qmpPort is null ? QmpEndpoint : "tcp:" + QmpEndpoint) + ",server=on,wait=off", "-display", "none", "-monitor", "none", "-serial", "null" };
        if (gdb) added.AddRange(["-gdb", $"unix:{_dir}/gdb.sock,server=on,wait=off"]);
        if (paused) added.Add("-S");
        foreach (var a in added) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var until = DateTime.UtcNow.AddSeconds(30);
        while ((qmpPort is null && !File.Exists($"{_dir}/qmp.sock")) || (gdb && !File.Exists($"{_dir}/gdb.sock")) || (qmpPort is int p && !Listening(p)))
        {
            if (_process.HasExited || DateTime.UtcNow > until) throw new InvalidOperationException("QEMU did not open its sockets");
            Thread.Sleep(10);
        }
        Thread.Sleep(100); // bound, then listening
    }

    public string QmpEndpoint { get; }

    /// <summary>Whether something listens on the loopback TCP port (without connecting: QMP takes one client).</summary>
    private static bool Listening(int port) => System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties()
        .GetActiveTcpListeners().Any(e => e.Port == port && IPAddress.IsLoopback(e.Address));
    public string GdbEndpoint => $"unix:{_dir}/gdb.sock";
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
        _process.Dispose();
        Directory.Delete(_dir, true);
    }
}

/// <summary>A bare pseries guest from tests/Qemu/guests/*.s (big-endian, linked at 0) for <c>-M pseries,x-vof=on -kernel</c>.</summary>
/// <summary>A pseries guest in a QEMU started paused under -no-shutdown with a gdbstub and a QMP socket, attached through both.</summary>
internal sealed class AttachedPseries : IDisposable
{
    private readonly PseriesGuest _guest;
    private readonly BareQemu _qemu;

    public AttachedPseries(string source)
    {
        _guest = new PseriesGuest(source);
        _qemu = new BareQemu([.. _guest.Arguments(), "-no-shutdown"], gdb: true, paused: true);
        Vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv,
            new QemuSource(_qemu.GdbEndpoint, null, _qemu.QmpEndpoint))).Machine;
    }

    /// <summary>The attached VM (the test releases it).</summary>
    public QemuVm Vm { get; }

    public void Dispose()
    {
        _qemu.Dispose();
        _guest.Dispose();
    }
}

internal sealed class PseriesGuest : IDisposable
{
    private readonly string _dir;
    private readonly string _elf;

    public PseriesGuest(string source)
    {
        _dir = Directory.CreateTempSubdirectory("actorstep-pseries-").FullName;
        _elf = PowerNvGuest.BuildElf(source, _dir);
    }

    public List<string> Arguments() => ["-M", "pseries,x-vof=on", "-cpu", "power9", "-m", "256M", "-nodefaults", "-kernel", _elf];

    public void Dispose() => Directory.Delete(_dir, true);
}
