using System.Net;
using System.Net.Sockets;
using System.Text;
using ActorStep.Host.Gdb;
using ActorStep.Protocol.Rsp;
using Akka.Actor;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorStep.Tests.Gdb;

/// <summary>What the bridge does when clients misbehave, vanish, come back, or come two at a time.</summary>
[Collection("gdb")]
public sealed class GdbBridgeRobustnessTests(GdbFixture fx)
{
    /// <summary>A bare RSP client over TCP: writes raw bytes, reads raw bytes.</summary>
    private sealed class RawClient : IDisposable
    {
        private readonly TcpClient _tcp = new() { NoDelay = true };
        private readonly byte[] _buffer = new byte[1 << 16];
        private readonly StringBuilder _pending = new();

        public static async Task<RawClient> ConnectAsync(IPEndPoint endpoint)
        {
            var c = new RawClient();
            await c._tcp.ConnectAsync(endpoint);
            return c;
        }

        public Task SendRawAsync(string bytes) => _tcp.GetStream().WriteAsync(Encoding.Latin1.GetBytes(bytes)).AsTask();

        public static string Frame(string payload) => $"${payload}#{payload.Aggregate(0, (s, ch) => (s + ch) & 0xff):x2}";

        /// <summary>Reads until <paramref name="done"/> holds for what arrived (or 10 s pass).</summary>
        public async Task<string> ReadUntilAsync(Func<string, bool> done)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!done(_pending.ToString()))
            {
                int n = await _tcp.GetStream().ReadAsync(_buffer, cts.Token);
                if (n == 0) break;
                _pending.Append(Encoding.Latin1.GetString(_buffer, 0, n));
            }
            var s = _pending.ToString();
            _pending.Clear();
            return s;
        }

        public static bool HasPacket(string s) => s.Contains('#') && s.IndexOf('#') + 2 < s.Length;

        /// <summary>Bytes received and not read yet.</summary>
        public int Available => _pending.Length + _tcp.Available;

        public void Dispose() => _tcp.Dispose();
    }

    [Fact]
    public async Task A_bad_checksum_is_naked_and_the_retransmission_served_and_bad_packets_get_errors()
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var c = await RawClient.ConnectAsync(bridge.Endpoint);

        await c.SendRawAsync("$g#00");
        Assert.Equal("-", await c.ReadUntilAsync(s => s.Length >= 1));
        await c.SendRawAsync(RawClient.Frame("g"));
        var reply = await c.ReadUntilAsync(RawClient.HasPacket);
        Assert.StartsWith("+$", reply);
        Assert.Contains("0050000000000000", reply); // pc = 0x5000, little-endian image

        await c.SendRawAsync(RawClient.Frame("mzz,4"));
        Assert.Equal("+" + RawClient.Frame(RspErrors.Malformed), await c.ReadUntilAsync(RawClient.HasPacket));
        await c.SendRawAsync(RawClient.Frame("X" + new string('0', RspChannel.DefaultPacketSize + 100)));
        Assert.EndsWith(RawClient.Frame(RspErrors.PacketTooLong), await c.ReadUntilAsync(RawClient.HasPacket));
        await c.SendRawAsync(RawClient.Frame("m5000,4"));
        Assert.Equal("+" + RawClient.Frame(EntryWordHex()), await c.ReadUntilAsync(RawClient.HasPacket));
    }

    /// <summary>The demo image's bytes at its entry, as hex (what <c>m5000,4</c> must return).</summary>
    private static string EntryWordHex()
    {
        var image = ActorStep.Machine.ElfImage.BuiltIn("demo");
        var seg = image.Segments.First(s => s.PhysicalAddress <= image.Entry && image.Entry < s.PhysicalAddress + (ulong)s.Data.Length);
        return Convert.ToHexString(seg.Data.Span.Slice((int)(image.Entry - seg.PhysicalAddress), 4)).ToLowerInvariant();
    }

    [Theory]
    [InlineData(false)] // the bridge inside the server (serve --gdb)
    [InlineData(true)]  // the bridge as a gRPC client (actorstep gdb --server)
    public async Task A_client_vanishing_mid_step_leaves_the_vm_halted_and_clean(bool remote)
    {
        // Thread 2 (vcpu 1) range-steps from the entry to go_virtual: its wait for vcpu 0 (secondary_wait), which stays
        // stopped, never leaves that range, so the step is still in progress whenever the client goes.
        var vm = fx.NewVm("demo");
        var demo = ActorStep.Machine.ElfImage.BuiltIn("demo");
        ulong wait = demo.Symbol("secondary_wait"), leave = demo.Symbol("go_virtual");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId, remote);
        using (var c = await RawClient.ConnectAsync(bridge.Endpoint))
        {
            await c.SendRawAsync(RawClient.Frame("Z0,c0000000000051b8,4"));
            Assert.Contains("OK", await c.ReadUntilAsync(RawClient.HasPacket));
            await c.SendRawAsync(RawClient.Frame($"vCont;r{vm.Entry:x},{leave:x}:2"));
            Assert.Equal("+", await c.ReadUntilAsync(s => s.Length >= 1)); // the ack alone: the step is on its way

            await WaitAsync(() => fx.GetVm(vm.VmId).Running, "the range step to start");
            ulong tb = Register(vm.VmId, 1, "tb");
            await WaitAsync(() => Register(vm.VmId, 1, "tb") > tb + 200, "vcpu 1 to step round its loop");
            Assert.True(fx.GetVm(vm.VmId).Running, "the step ended before the client vanished");
            Assert.Equal(0, c.Available); // and no stop reply is on its way
        } // gone in the middle of the step
        await AssertHaltedAndCleanAsync(vm.VmId);
        Assert.Equal(0UL, Register(vm.VmId, 1, "msr") & 0x400);           // no MSR[SE] left from the step
        Assert.InRange(Register(vm.VmId, 1, "nip"), wait, leave - 4);     // halted where it was stepping
        Assert.Equal(vm.Entry, Register(vm.VmId, 0, "nip"));              // thread 1 was never resumed
    }

    private ulong Register(string vmId, uint vcpu, string name) =>
        fx.Registers.GetVcpuRegisters(new Api.V1.GetVcpuRegistersRequest { VmId = vmId, Vcpu = vcpu, Registers = { new Api.V1.RegisterRef { Name = name } } },
            deadline: GdbFixture.Deadline).Registers.Single().Value;

    [Theory]
    [InlineData(false)] // the bridge inside the server (serve --gdb)
    [InlineData(true)]  // the bridge as a gRPC client (actorstep gdb --server)
    public async Task Gdb_killed_mid_continue_leaves_the_vm_halted_and_clean_and_a_second_gdb_is_refused_meanwhile(bool remote)
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId, remote);
        // Breakpoints nothing reaches (unexpected_interrupt): continue runs until gdb is killed.
        using var first = new GdbProcess(bridge.Endpoint, null, littleEndian: true, ["break *0x1000", "break *0x1004", "continue"]);
        await WaitAsync(() => fx.GetVm(vm.VmId).Running, "the first gdb's continue to start");
        Assert.Equal(2u, fx.GetVm(vm.VmId).BreakpointCount);

        string second = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true, "info registers pc");
        if (first.HasExited) Assert.Fail($"the first gdb's continue ended by itself:\n{await first.OutputAsync(TimeSpan.FromSeconds(5))}");
        Assert.True(second.Contains("another gdb is attached"), $"the second gdb was not refused:\n{second}");
        Assert.True(fx.GetVm(vm.VmId).Running, "the refused gdb did not disturb the first one's continue");

        first.Kill();
        await AssertHaltedAndCleanAsync(vm.VmId);

        // And a new gdb is served as if nothing happened.
        string third = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true, "set scheduler-locking step", "stepi", "info breakpoints", "p/x $pc");
        Assert.DoesNotContain("another gdb", third);
        Assert.Contains("No breakpoints or watchpoints.", third);
        Assert.Matches(@"\$1 = 0x[0-9a-f]+", third);
        Assert.Equal(2, bridge.Sessions);
    }

    [Fact]
    public async Task Gdb_can_detach_and_reconnect()
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        ulong[] expected = [0x5004, 0x5008, 0x5014]; // _start: mr, cmpldi, blt taken (vcpu 0 < NR_CPUS)
        for (int i = 1; i <= 3; i++)
        {
            string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true, "set scheduler-locking step", "stepi", "p/x $pc", "detach");
            Assert.Contains($"$1 = 0x{expected[i - 1]:x}", output); // each session continues where the last one left the VM
        }
        Assert.Equal(3, bridge.Sessions);
    }

    [Fact]
    public async Task The_bridge_refuses_a_non_loopback_address_and_an_unknown_vm()
    {
        var e = await Assert.ThrowsAsync<GdbBridgeException>(() =>
            GdbBridge.StartAsync(fx.Channel, fx.NewVm("demo").VmId, new IPEndPoint(IPAddress.Any, 0), NullLogger.Instance));
        Assert.Contains("loopback", e.Message);
        e = await Assert.ThrowsAsync<GdbBridgeException>(() =>
            GdbBridge.StartAsync(fx.Channel, "no-such-vm", new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance));
        Assert.Contains("no VM 'no-such-vm'", e.Message);
    }

    private async Task AssertHaltedAndCleanAsync(string vmId)
    {
        await WaitAsync(() => !fx.GetVm(vmId).Running, "the VM to halt after the client vanished");
        await WaitAsync(() => fx.GetVm(vmId).BreakpointCount == 0, "the client's breakpoints to be removed");
        // Raw guest memory (past the API, which hides breakpoints): no breakpoint word of any kind is left behind.
        var info = fx.Server.Manager.Ask<ActorStep.Actors.Node.VmManagerProtocol.VmList>(
            new ActorStep.Actors.Node.VmManagerProtocol.ListVms(new Dictionary<string, string>()), TimeSpan.FromSeconds(5)).Result.Vms.Single(v => v.VmId == vmId);
        Assert.Equal(0, Grpc.GrpcServerFixture.BreakpointWords(info));
        Assert.All(fx.GetVm(vmId).Vcpus, v => Assert.Equal(Api.V1.VcpuState.Stopped, v.State));
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }
}
