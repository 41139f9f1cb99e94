using static ActorStep.Tests.Qemu.QemuAsk;
using System.Net;
using System.Net.Sockets;
using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Tests.Differential;
using ActorStep.Tests.Support;
using Akka.Actor;
using Xunit.Abstractions;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// The connection to QEMU's gdbstub drops while QEMU lives on (here: a TCP relay in front of QEMU's socket cuts it): the resume
/// in flight ends with an error naming QEMU, every later call says the VM is lost, nothing waits, and letting the VM go works.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuDroppedConnectionTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);


    [Fact]
    public void ADroppedConnectionEndsTheResumeInFlightWithAnErrorAndLaterCallsSayTheVmIsLost()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        {
            using var qemu = QemuProcess.Start(guest.Arguments(threads: 2));
            Assert.True(qemu.WaitForGdbStub(Timeout), "QEMU opened no gdbstub");
            using var relay = new Relay(qemu.GdbEndpoint[5..]);
            var vm = QemuVm.Attach($"127.0.0.1:{relay.Port}", Timeout);
            var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
            try
            {
                var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
                for (int i = 0; i < 3; i++) Assert.IsType<Stopped>(Call(coordinator, step));

                // 1. Dropped while the VM runs: the continue ends with an error that says what happened.
                var running = coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue, [1] = VcpuAction.Continue }), Timeout);
                Thread.Sleep(300);
                relay.Drop();
                var failed = Assert.IsType<Stopped>(Wait(running));
                output.WriteLine($"the resume in flight: {failed.Event}");
                Assert.Equal(StopReason.Error, failed.Event.Reason);
                Assert.Contains("QEMU", failed.Event.Detail);

                // 2. Every later call says the VM is lost; none waits.
                Assert.Contains("the VM is lost", Assert.IsType<Failed>(Call(coordinator, new ReadRegisters(0))).Message);
                Assert.Contains("the VM is lost", Assert.IsType<Failed>(Call(coordinator, new ReadMemory(0x10, 4, null))).Message);
                var again = Call(coordinator, step);
                Assert.True(again is Stopped { Event.Reason: StopReason.Error } st && st.Event.Detail.Contains("the VM is lost"), $"{again}");
            }
            finally
            {
                this.Release(coordinator, vm);
            }

            // QEMU lives on and takes a new client (what it keeps of the old one is in backends/qemu/README.md).
            Assert.False(qemu.HasExited);
            using var check = RspClient.ConnectUnix(qemu.GdbEndpoint[5..], TimeSpan.FromSeconds(10), () => !qemu.HasExited);
            Assert.Matches("^T0[25]", check.Request("?")); // stopped (by the new client)
        }
    }

    /// <summary>A TCP relay on loopback in front of QEMU's unix socket, whose connections can be cut.</summary>
    private sealed class Relay : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _target;
        private readonly List<Socket> _open = [];

        public Relay(string unixPath)
        {
            _target = unixPath;
            _listener.Start();
            _ = Task.Run(AcceptLoop);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        private async Task AcceptLoop()
        {
            while (true)
            {
                Socket client;
                try { client = await _listener.AcceptSocketAsync(); }
                catch (Exception) { return; }
                var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_target));
                lock (_open) { _open.Add(client); _open.Add(upstream); }
                _ = Pump(client, upstream);
                _ = Pump(upstream, client);
            }
        }

        private static async Task Pump(Socket from, Socket to)
        {
            var buffer = new byte[8192];
            try
            {
                int n;
                while ((n = await from.ReceiveAsync(buffer)) > 0) await to.SendAsync(buffer.AsMemory(0, n));
            }
            catch (Exception) { }
            try { to.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        }

        public void Drop()
        {
            lock (_open)
            {
                foreach (var s in _open) { try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { } s.Dispose(); }
                _open.Clear();
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            Drop();
        }
    }
}
