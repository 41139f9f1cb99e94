using static ActorStep.Tests.Qemu.QemuAsk;
using System.Net;
using System.Net.Sockets;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Differential;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// What a user of a QEMU VM meets when things go wrong: QEMU killed while the VM runs or steps, an endpoint with nothing
/// behind it or something that is not a gdbstub; and what ActorStep leaves in a QEMU that lives on after it let go (no
/// breakpoint, no MSR[SE]: the guest runs on as if never debugged).
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuFaultTests : Akka.TestKit.Xunit2.TestKit
{

    [Fact]
    public void AttachingToAPortWhereNothingListensFailsAtOnceSayingSo()
    {
        int port = FreePort();
        var started = DateTime.UtcNow;
        var e = Assert.Throws<InvalidVmRequestException>(() =>
            new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv, new QemuSource($"127.0.0.1:{port}", null))));
        Assert.Contains($"cannot connect to a gdbstub at 127.0.0.1:{port}", e.Message);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), "no retrying when attaching to an endpoint");
    }

    [Fact]
    public void AttachingToSomethingThatIsNotAGdbstubFailsSayingSo()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        // An HTTP server: it answers a request it cannot parse with a 400 and closes.
        var server = Task.Run(() =>
        {
            using var c = listener.AcceptSocket();
            var buffer = new byte[256];
            c.Receive(buffer);
            c.Send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
            c.Shutdown(SocketShutdown.Both);
        });
        var e = Assert.Throws<InvalidVmRequestException>(() =>
            new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv, new QemuSource($"127.0.0.1:{port}", null))));
        Assert.Contains("not a gdbstub", e.Message);
        Wait(server);
    }

    [Fact]
    public void AnEndpointOffLoopbackIsRefused()
    {
        var e = Assert.Throws<InvalidVmRequestException>(() =>
            new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv, new QemuSource("192.0.2.1:1234", null))));
        Assert.Contains("loopback only", e.Message);
    }

    [Fact]
    public void QemuKilledWhileTheVmRunsEndsTheResumeWithAnErrorAndEveryLaterCallWithAClearStatus()
    {
        var vm = Launch(vcpus: 2, out var coordinator);
        var all = new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue, [1] = VcpuAction.Continue };
        var resume = coordinator.Ask<object>(new Resume(all), QemuAsk.Timeout);
        Thread.Sleep(1500); // the kernel boots
        vm.Process!.Dispose(); // kill -9 as far as ActorStep can tell: the gdbstub connection ends
        var stop = Assert.IsType<Stopped>(Wait(resume));
        Assert.Equal(StopReason.Error, stop.Event.Reason);
        Assert.Contains("QEMU", stop.Event.Detail);

        var regs = Call(coordinator, new ReadRegisters(0));
        Assert.Contains("the VM is lost", Assert.IsType<Failed>(regs).Message);
        var memory = Call(coordinator, new ReadMemory(0x100, 4, null));
        Assert.Contains("the VM is lost", Assert.IsType<Failed>(memory).Message);
        var again = Call(coordinator, new Resume(all));
        Assert.True(again is Stopped { Event.Reason: StopReason.Error } s && s.Event.Detail.Contains("the VM is lost"), $"{again}");
        this.Release(coordinator, vm);
    }

    [Fact]
    public void QemuKilledDuringARangeStepEndsItWithAnErrorNotAHang()
    {
        var vm = Launch(vcpus: 1, out var coordinator);
        ulong at = QemuLinux.LocalEntry("start_kernel");
        Assert.IsType<BreakpointChanged>(Call(coordinator, new InsertBreakpoint(at)));
        Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue })));
        Assert.IsType<BreakpointChanged>(Call(coordinator, new RemoveBreakpoint(at)));
        // A range the kernel stays in for a long time: all of its text.
        var range = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false,
            Ranges: new Dictionary<int, StepRange> { [0] = new StepRange(0xc000000000000000, 0xc000000004000000) });
        var step = coordinator.Ask<object>(range, QemuAsk.Timeout);
        Thread.Sleep(700);
        vm.Process!.Dispose();
        var stop = Assert.IsType<Stopped>(Wait(step));
        Assert.True(stop.Event.Reason is StopReason.Error or StopReason.GuestStopped or StopReason.Finished, $"{stop.Event}");
        this.Release(coordinator, vm);
    }

    [Fact]
    public void AfterActorStepLetsGoOfARunningQemuNoBreakpointOrTraceBitIsLeftAndTheGuestBootsOn()
    {
        using var initrd = new QemuLinux.Initramfs();
        var args = QemuLinux.Arguments(vcpus: 2, deterministic: false, append: "console=hvc0 panic=-1", initrd: initrd.Path);
        using var qemu = QemuProcess.Start(args);
        Assert.True(qemu.WaitForGdbStub(QemuAsk.Timeout), "QEMU opened no gdbstub");
        var console = new System.Text.StringBuilder();
        qemu.ConsoleOutput += bytes => { lock (console) console.Append(System.Text.Encoding.Latin1.GetString(bytes)); };
        // Attached, not launched: letting go detaches and QEMU runs on.
        var vm = QemuVm.Attach(qemu.GdbEndpoint, QemuAsk.Timeout);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        ulong at = QemuLinux.LocalEntry("start_kernel");
        Assert.IsType<BreakpointChanged>(Call(coordinator, new InsertBreakpoint(at)));
        Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue, [1] = VcpuAction.Continue })));
        for (int i = 0; i < 50; i++)
            Assert.IsType<Stopped>(Call(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false)));
        // A step's Trace-handler breakpoint may still be planted (removals wait for the next resume on TCG) when the VM is let go.
        this.Release(coordinator, vm);
        Assert.Empty(vm.PlantedBreakpoints);

        // A gdb client of its own sees a clean VM: SE off on every vcpu, and the guest boots to userspace and powers off.
        using (var check = RspClient.ConnectUnix(qemu.GdbEndpoint[5..], TimeSpan.FromSeconds(10), () => !qemu.HasExited))
        {
            check.Request("qSupported:xmlRegisters=powerpc");
            foreach (int thread in new[] { 1, 2 })
            {
                Assert.Equal("OK", check.Request($"Hg{thread}"));
                var core = CoreRegisters.Parse(check.Request("g"), littleEndian: true);
                Assert.True((core.Msr & Msr.SE) == 0, $"vcpu {thread - 1}: MSR 0x{core.Msr:x} still has SE");
            }
            check.Send("D");
        }
        Assert.True(qemu.WaitForExit(TimeSpan.FromSeconds(120)) || Poweroff(console), "the guest did not power off");
        lock (console) Assert.Contains(Support.LinuxInitramfs.UpLine, console.ToString());
    }


    private static bool Poweroff(System.Text.StringBuilder console) { lock (console) return console.ToString().Contains("reboot: Power down"); }

    private QemuVm Launch(int vcpus, out IActorRef coordinator)
    {
        var args = QemuLinux.Arguments(vcpus, deterministic: false);
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, vcpus, 0, HypervisorFlavour.Hv, new QemuSource(null, args))).Machine;
        coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        return vm;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
