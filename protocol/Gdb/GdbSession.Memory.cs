using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets": m, M, X. Addresses are effective addresses, translated as the Hg thread would.
public sealed partial class GdbSession
{
    private async Task<GdbReply> ReadMemoryAsync(RspReader r, CancellationToken ct)
    {
        var address = r.Hex();
        r.Expect(',');
        int length = r.HexInt();
        r.ExpectEnd();
        length = Math.Min(length, (_packetSize - 4) / 2); // a partial read is allowed; gdb asks for the rest
        if (length == 0) return new GdbReply("");
        var data = await _target.ReadMemoryAsync(_generalVcpu, address, length, ct);
        if (data.Length == 0) return new GdbReply(RspErrors.BadAddress);
        return new GdbReply(RspEncoding.ToHex(data.AsSpan(0, Math.Min(data.Length, length))));
    }

    private async Task<GdbReply> WriteMemoryHexAsync(RspReader r, CancellationToken ct)
    {
        var (address, length) = AddressLength(r);
        var data = r.HexBytes();
        return await WriteMemoryAsync(address, length, data, ct);
    }

    /// <summary>X: binary data, <c>}</c>-escaped. gdb probes with a zero-length X before using it.</summary>
    private async Task<GdbReply> WriteMemoryBinaryAsync(RspReader r, CancellationToken ct)
    {
        var (address, length) = AddressLength(r);
        var data = r.BinaryToEnd();
        return await WriteMemoryAsync(address, length, data, ct);
    }

    private static (ulong Address, int Length) AddressLength(RspReader r)
    {
        var address = r.Hex();
        r.Expect(',');
        int length = r.HexInt();
        r.Expect(':');
        return (address, length);
    }

    private async Task<GdbReply> WriteMemoryAsync(ulong address, int length, byte[] data, CancellationToken ct)
    {
        if (data.Length != length) throw new RspFormatException($"length {length} but {data.Length} bytes");
        if (length == 0) return GdbReply.Ok;
        await _target.WriteMemoryAsync(_generalVcpu, address, data, ct);
        return GdbReply.Ok;
    }
}
