using System.Security;
using System.Text;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets" (H, T) and "General Query Packets" (qfThreadInfo, qsThreadInfo, qC, qThreadExtraInfo) and
// "Thread List Format" (qXfer:threads:read). Thread id = vcpu index + 1 in process 1.
public sealed partial class GdbSession
{
    /// <summary>H op thread-id: <c>Hg</c> selects the thread for registers and memory, <c>Hc</c> the one the old
    /// <c>s</c>/<c>c</c> packets act on. 0 ("any") keeps the current choice; -1 ("all") is only meaningful for Hc.</summary>
    private async Task<GdbReply> SetThreadAsync(RspReader r, CancellationToken ct)
    {
        var op = r.Peek;
        if (op is not ((byte)'g' or (byte)'c')) return GdbReply.Empty;
        r.Expect((char)op.Value);
        var id = GdbThreadId.Parse(r);
        r.ExpectEnd();
        if (id.IsAll || id.IsAny)
        {
            if (op == 'c') _continueVcpu = null;
            return GdbReply.Ok;
        }
        if (id.Vcpu is not { } vcpu || !await ExistsAsync(vcpu, ct)) return new GdbReply(RspErrors.Invalid);
        if (op == 'g') _generalVcpu = vcpu;
        else _continueVcpu = vcpu;
        return GdbReply.Ok;
    }

    /// <summary>T thread-id: OK while the vcpu exists and has not been stopped for good.</summary>
    private async Task<GdbReply> ThreadAliveAsync(RspReader r, CancellationToken ct)
    {
        var id = GdbThreadId.Parse(r);
        r.ExpectEnd();
        await ThreadsAsync(ct, refresh: true);
        return id.Vcpu is { } vcpu && await ExistsAsync(vcpu, ct) ? GdbReply.Ok : new GdbReply(RspErrors.Invalid);
    }

    private async Task<GdbReply> FirstThreadInfoAsync(CancellationToken ct)
    {
        var alive = (await ThreadsAsync(ct, refresh: true)).Where(t => t.Alive).ToList();
        if (alive.Count == 0) return new GdbReply("l");
        return new GdbReply("m" + string.Join(',', alive.Select(t => Tid(t.Vcpu))));
    }

    private async Task<GdbReply> CurrentThreadAsync(CancellationToken ct)
    {
        await ThreadsAsync(ct);
        return new GdbReply("QC" + Tid(_generalVcpu));
    }

    /// <summary>qThreadExtraInfo: the vcpu's state text, hex-encoded (shown by <c>info threads</c>).</summary>
    private async Task<GdbReply> ThreadExtraInfoAsync(RspReader r, CancellationToken ct)
    {
        var id = GdbThreadId.Parse(r);
        r.ExpectEnd();
        var threads = await ThreadsAsync(ct, refresh: true);
        if (id.Vcpu is not { } vcpu || vcpu >= threads.Count) return new GdbReply(RspErrors.Invalid);
        return new GdbReply(RspEncoding.ToHex(StateText(threads[vcpu])));
    }

    /// <summary>The qXfer:threads:read document: every live vcpu named <c>vcpuN</c> with its state.</summary>
    private async Task<byte[]> ThreadsXmlAsync(CancellationToken ct)
    {
        var threads = await ThreadsAsync(ct, refresh: true);
        var sb = new StringBuilder("<?xml version=\"1.0\"?>\n<threads>\n");
        foreach (var t in threads.Where(t => t.Alive))
            sb.Append($"<thread id=\"{Tid(t.Vcpu)}\" core=\"{t.Vcpu}\" name=\"vcpu{t.Vcpu}\">{SecurityElement.Escape(StateText(t))}</thread>\n");
        sb.Append("</threads>\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
