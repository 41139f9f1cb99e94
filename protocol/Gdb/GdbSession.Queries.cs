using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "General Query Packets": qSupported, QStartNoAckMode, qAttached, qOffsets, qRcmd; qXfer is in
// GdbSession.Xfer.cs and the thread queries in GdbSession.Threads.cs.
public sealed partial class GdbSession
{
    private async Task<GdbReply> QueryAsync(RspReader r, CancellationToken ct)
    {
        if (r.TrySkip("Supported")) return Supported(r);
        if (r.TrySkip("Xfer:")) return await XferAsync(r, ct);
        if (r.TrySkip("fThreadInfo")) return await FirstThreadInfoAsync(ct);
        if (r.TrySkip("sThreadInfo")) return new GdbReply("l");
        if (r.TrySkip("ThreadExtraInfo,")) return await ThreadExtraInfoAsync(r, ct);
        if (r.TrySkip("C") && r.AtEnd) return await CurrentThreadAsync(ct);
        if (r.TrySkip("Attached")) return new GdbReply("1"); // we attached to a running VM: detach, not kill, on quit
        if (r.TrySkip("Offsets") && r.AtEnd) return await OffsetsAsync(ct);
        if (r.TrySkip("Rcmd,")) return await MonitorAsync(r, ct);
        return GdbReply.Empty;
    }

    /// <summary>qSupported: what gdb offered decides <c>swbreak</c> and <c>multiprocess</c>; the target's optional
    /// capabilities decide <c>hwbreak</c>.</summary>
    private GdbReply Supported(RspReader r)
    {
        var offered = new HashSet<string>();
        if (r.TrySkip(":"))
            foreach (var f in r.RestText.Split(';', StringSplitOptions.RemoveEmptyEntries)) offered.Add(f);
        _swbreak = offered.Contains("swbreak+");
        _multiprocess = offered.Contains("multiprocess+");

        var features = new List<string>
        {
            $"PacketSize={_packetSize:x}",
            "qXfer:features:read+",
            "qXfer:threads:read+",
            "vContSupported+",
            "QStartNoAckMode+",
        };
        if (_multiprocess) features.Add("multiprocess+");
        if (_swbreak) features.Add("swbreak+");
        if (_target.HwBreakpoints is not null && offered.Contains("hwbreak+")) features.Add("hwbreak+");
        return new GdbReply(string.Join(';', features));
    }

    private GdbReply Set(RspReader r)
    {
        // "Packet Acknowledgment": the OK still travels in ack mode; everything after it does not.
        if (r.TrySkip("StartNoAckMode") && r.AtEnd) return new GdbReply("OK", enterNoAckMode: true);
        return GdbReply.Empty;
    }

    private async Task<GdbReply> OffsetsAsync(CancellationToken ct)
    {
        if (_target.SectionOffsets is not { } offsets) return GdbReply.Empty;
        var (text, data) = await offsets.GetOffsetsAsync(ct);
        return new GdbReply($"Text={text:x};Data={data:x};Bss={data:x}");
    }

    /// <summary>qRcmd (gdb's <c>monitor</c>): the command and its output are hex-encoded; no output is <c>OK</c>.</summary>
    private async Task<GdbReply> MonitorAsync(RspReader r, CancellationToken ct)
    {
        if (_target.Monitor is not { } monitor) return GdbReply.Empty;
        var command = RspEncoding.Latin1(r.HexBytes());
        var output = await monitor.RunAsync(command, ct);
        return output.Length == 0 ? GdbReply.Ok : new GdbReply(RspEncoding.ToHex(output));
    }
}
