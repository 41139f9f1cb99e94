using System.Net.Sockets;
using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>The pump over a real loopback socket, bytes as gdb sends them: acks, NAKs, Ctrl-C mid-resume, EOF.</summary>
public sealed class GdbConnectionTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = LoopbackGdb.Timeout;

    private readonly FakeGdbTarget _target = new(vcpus: 2);
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(20));
    private LoopbackGdb _loopback = null!;
    private NetworkStream _stream = null!;
    private readonly List<byte> _pending = [];

    public async Task InitializeAsync()
    {
        _loopback = await LoopbackGdb.StartAsync(_target, _cts.Token);
        _stream = _loopback.Stream;
    }

    public async Task DisposeAsync()
    {
        await _loopback.DisposeAsync();
        _cts.Dispose();
    }

    private Task Write(string raw) => _stream.WriteAsync(RspEncoding.Latin1(raw)).AsTask();
    private Task Write(byte[] raw) => _stream.WriteAsync(raw).AsTask();
    private static string Frame(string payload) => RspEncoding.Latin1(RspEncoding.Frame(RspEncoding.Latin1(payload)));

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    private async Task<string> Read(int count)
    {
        var buffer = new byte[256];
        while (_pending.Count < count)
        {
            int n = await _stream.ReadAsync(buffer).AsTask().WaitAsync(Timeout);
            if (n == 0) throw new EndOfStreamException();
            _pending.AddRange(buffer.AsSpan(0, n));
        }
        var s = RspEncoding.Latin1(_pending.Take(count).ToArray());
        _pending.RemoveRange(0, count);
        return s;
    }

    /// <summary>Reads one framed packet (<c>$…#xx</c>) and returns its payload, checking the frame.</summary>
    private async Task<string> ReadPacket()
    {
        Assert.Equal("$", await Read(1));
        var payload = "";
        while (await Read(1) is var c && c != "#") payload += c;
        Assert.Equal(Frame(payload)[^2..], await Read(2));
        return payload;
    }

    [Fact]
    public async Task Each_packet_is_acked_then_answered()
    {
        await Write("+" + Frame(GdbSessionTests.Gdb13Supported));
        Assert.Equal("+", await Read(1));
        Assert.StartsWith("PacketSize=4000;", await ReadPacket());
        await Write("+" + Frame("vMustReplyEmpty"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("", await ReadPacket());
    }

    [Fact]
    public async Task Bad_checksum_gets_a_NAK_and_the_retransmission_is_served()
    {
        await Write("$qC#00");
        Assert.Equal("-", await Read(1));
        await Write(Frame("qC"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("QC1", await ReadPacket());
    }

    [Fact]
    public async Task A_NAK_of_our_reply_gets_it_again()
    {
        await Write(Frame("qC"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("QC1", await ReadPacket());
        await Write("-");
        Assert.Equal("QC1", await ReadPacket());
    }

    [Fact]
    public async Task After_QStartNoAckMode_nothing_is_acked()
    {
        await Write(Frame("QStartNoAckMode"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("OK", await ReadPacket());
        await Write("+" + Frame("qC"));
        Assert.Equal("QC1", await ReadPacket()); // no '+' before it
    }

    [Fact]
    public async Task Oversized_packet_gets_E02_and_the_next_packet_is_served()
    {
        await Write(Frame("X1000,5000:" + new string('a', 0x5000)));
        Assert.Equal("+", await Read(1));
        Assert.Equal("E02", await ReadPacket());
        await Write(Frame("qC"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("QC1", await ReadPacket());
    }

    [Fact]
    public async Task A_stop_with_console_text_sends_it_as_an_O_packet_before_the_stop_reply()
    {
        await Write(Frame("QStartNoAckMode"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("OK", await ReadPacket());
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.Idle, Detail: "idle"));
        await Write(Frame("vCont;s:1"));
        Assert.Equal("O" + RspEncoding.ToHex("thread 1: idle\n"), await ReadPacket());
        Assert.StartsWith("T05thread:1;", await ReadPacket());
    }

    [Fact]
    public async Task Ctrl_C_during_continue_is_answered_with_T02()
    {
        await Write(Frame(GdbSessionTests.Gdb13Supported) + Frame("QStartNoAckMode")); // one read: both acked first
        Assert.Equal("++", await Read(2));
        await ReadPacket();
        Assert.Equal("OK", await ReadPacket());

        await Write(Frame("vCont;c:p1.-1"));
        await WaitFor(() => _target.Resumes.Count == 1);
        await Write([0x03]);
        Assert.Equal("T02thread:p1.1;40:0000000000001000;41:8000000000001000;01:0000000000007ff0;", await ReadPacket());
        Assert.Contains("Interrupt", _target.Calls);
    }

    [Fact]
    public async Task A_stop_is_reported_without_gdb_sending_anything()
    {
        await Write(Frame("vCont;c:p1.-1"));
        Assert.Equal("+", await Read(1));
        await WaitFor(() => _target.Resumes.Count == 1);
        _target.Stop(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        Assert.StartsWith("T05thread:2;", await ReadPacket());
    }

    [Fact]
    public async Task Packets_sent_while_running_are_served_after_the_stop_reply()
    {
        await Write(Frame("vCont;c:p1.-1"));
        Assert.Equal("+", await Read(1));
        await WaitFor(() => _target.Resumes.Count == 1);
        await Write(Frame("qC"));
        Assert.Equal("+", await Read(1));
        await Task.Delay(50);
        _target.Stop(new GdbStopEvent(1, GdbStopReason.StepDone));
        Assert.StartsWith("T05thread:2;", await ReadPacket());
        Assert.Equal("QC2", await ReadPacket());
    }

    [Fact]
    public async Task Detach_ends_the_connection()
    {
        await Write(Frame("D"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("OK", await ReadPacket());
        await _loopback.Pump.WaitAsync(Timeout);
        Assert.Equal(GdbSessionState.Disconnected, _loopback.Connection.Session.State);
    }

    [Fact]
    public async Task Closing_the_socket_cleans_up_breakpoints_and_detaches()
    {
        await Write(Frame("Z0,1000,4"));
        Assert.Equal("+", await Read(1));
        Assert.Equal("OK", await ReadPacket());
        _loopback.ShutdownSend();
        await _loopback.Pump.WaitAsync(Timeout);
        Assert.Empty(_target.SwBreakpoints);
        Assert.Equal("Detach", _target.Calls[^1]);
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException();
            await Task.Delay(5);
        }
    }
}
