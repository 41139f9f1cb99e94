using System.Net.Sockets;
using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>Non-stop over a real loopback socket: packets served while vcpus run, stops written as <c>%Stop</c> notifications.</summary>
public sealed class GdbNonStopConnectionTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = LoopbackGdb.Timeout;

    private readonly FakeGdbTarget _target = new(vcpus: 2);
    private readonly FakeNonStop _nonStop = new();
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(20));
    private LoopbackGdb _loopback = null!;
    private NetworkStream _stream = null!;
    private readonly List<byte> _pending = [];

    public async Task InitializeAsync()
    {
        _target.NonStopCapability = _nonStop;
        _loopback = await LoopbackGdb.StartAsync(_target, _cts.Token);
        _stream = _loopback.Stream;
    }

    public async Task DisposeAsync()
    {
        await _loopback.DisposeAsync();
        _cts.Dispose();
    }

    private Task Send(string payload) => _stream.WriteAsync(RspEncoding.Frame(RspEncoding.Latin1(payload))).AsTask();

    /// <summary>The next frame gdb would read ('$' or '%' … '#xx'), checksum checked; acks are skipped.</summary>
    private async Task<string> ReadFrame()
    {
        var buffer = new byte[512];
        while (true)
        {
            while (_pending.Count > 0 && _pending[0] == (byte)'+') _pending.RemoveAt(0);
            int hash = _pending.IndexOf((byte)'#');
            if (hash >= 0 && _pending.Count >= hash + 3)
            {
                var frame = RspEncoding.Latin1(_pending.Take(hash + 3).ToArray());
                _pending.RemoveRange(0, hash + 3);
                var expected = RspEncoding.Latin1(RspEncoding.Frame(RspEncoding.Latin1(frame[1..hash])));
                Assert.Equal(expected[^2..], frame[^2..]);
                return frame[..hash];
            }
            int n = await _stream.ReadAsync(buffer).AsTask().WaitAsync(Timeout);
            if (n == 0) throw new EndOfStreamException();
            _pending.AddRange(buffer.AsSpan(0, n));
        }
    }

    [Fact]
    public async Task A_stop_while_gdb_waits_is_written_as_a_Stop_notification_and_packets_are_served_meanwhile()
    {
        await Send("QNonStop:1");
        Assert.Equal("$OK", await ReadFrame());
        await Send("vCont;c:1");
        Assert.Equal("$OK", await ReadFrame());
        await Send("qC"); // served while thread 1 runs
        Assert.Equal("$QC1", await ReadFrame());
        _nonStop.Report(new GdbStopEvent(0, GdbStopReason.Breakpoint));
        Assert.StartsWith("%Stop:T05thread:1;", await ReadFrame());
        await Send("vStopped");
        Assert.Equal("$OK", await ReadFrame());
    }

    [Fact]
    public void A_notification_is_never_retransmitted_on_a_NAK()
    {
        var channel = new RspChannel();
        channel.Send("OK");
        channel.TakeOutput();
        channel.SendNotification(RspEncoding.Latin1("Stop:T05"));
        Assert.Equal("%Stop:T05#" + RspEncoding.Latin1(RspEncoding.Frame(RspEncoding.Latin1("Stop:T05")))[^2..], RspEncoding.Latin1(channel.TakeOutput()));
        channel.Receive("-"u8);
        Assert.Equal("$OK#9a", RspEncoding.Latin1(channel.TakeOutput())); // gdb NAKed our last packet, not the notification
    }
}
