using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "General Query Packets", qXfer:object:read:annex:offset,length. Replies are 'm' + data (more follows)
// or 'l' + data (last chunk), the data binary-escaped.
public sealed partial class GdbSession
{
    private byte[]? _threadsDocument; // kept between the chunks of one read, rebuilt at offset 0 (as gdbserver does)

    private async Task<GdbReply> XferAsync(RspReader r, CancellationToken ct)
    {
        var obj = r.Until(':');
        if (r.Until(':') != "read") return GdbReply.Empty;
        var annex = r.Until(':');
        int offset = r.HexInt();
        r.Expect(',');
        int length = r.HexInt();
        r.ExpectEnd();

        byte[]? document;
        switch (obj)
        {
            case "features":
                document = TargetDescription.Annex(annex);
                break;
            case "threads":
                if (annex.Length != 0) return new GdbReply(RspErrors.BadAnnex);
                if (offset == 0 || _threadsDocument is null) _threadsDocument = await ThreadsXmlAsync(ct);
                document = _threadsDocument;
                break;
            default:
                return GdbReply.Empty;
        }
        if (document is null) return new GdbReply(RspErrors.BadAnnex);
        return new GdbReply(Chunk(document, offset, length, _packetSize));
    }

    /// <summary>One qXfer chunk: at most <paramref name="length"/> bytes from <paramref name="offset"/>, cut short when
    /// escaping would overflow the packet size; 'l' when it reaches the end.</summary>
    public static byte[] Chunk(byte[] document, int offset, int length, int packetSize)
    {
        if (offset >= document.Length) return [(byte)'l'];
        int budget = packetSize - 5; // "$m" … "#xx"
        var chunk = new List<byte>(Math.Min(length, document.Length - offset) + 1) { (byte)'m' };
        int taken = 0, escaped = 0;
        while (taken < length && offset + taken < document.Length)
        {
            var one = RspEncoding.EscapeBinary(document.AsSpan(offset + taken, 1));
            if (escaped + one.Length > budget) break;
            chunk.AddRange(one);
            escaped += one.Length;
            taken++;
        }
        if (offset + taken >= document.Length) chunk[0] = (byte)'l';
        return [.. chunk];
    }
}
