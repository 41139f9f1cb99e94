using System.Text;

namespace ActorStep.Protocol.Rsp;

/// <summary>Hex, binary escaping and run-length encoding as gdb's manual defines them ("Overview").</summary>
public static class RspEncoding
{
    /// <summary>The escape byte of binary data: the next byte is XORed with 0x20.</summary>
    public const byte Escape = (byte)'}';
    /// <summary>The run-length marker: the previous character repeats (count char − 29) more times.</summary>
    public const byte RunLength = (byte)'*';

    private static readonly Encoding Latin1Encoding = Encoding.Latin1;

    public static string Latin1(ReadOnlySpan<byte> bytes) => Latin1Encoding.GetString(bytes);
    public static byte[] Latin1(string s) => Latin1Encoding.GetBytes(s);

    /// <summary>Checksum: the sum of the packet's on-wire characters modulo 256.</summary>
    public static byte Checksum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (var b in data) sum += b;
        return sum;
    }

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
    public static string ToHex(string text) => ToHex(Latin1(text));

    /// <summary>Decodes an even-length hex string; false on any other character or an odd length.</summary>
    public static bool TryFromHex(ReadOnlySpan<byte> hex, out byte[] bytes)
    {
        bytes = [];
        if (hex.Length % 2 != 0) return false;
        var result = new byte[hex.Length / 2];
        for (int i = 0; i < result.Length; i++)
        {
            int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) return false;
            result[i] = (byte)(hi << 4 | lo);
        }
        bytes = result;
        return true;
    }

    public static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>Escapes binary data: <c>#</c>, <c>$</c>, <c>}</c> and <c>*</c> become <c>}</c> + (byte ^ 0x20), as gdb does.</summary>
    public static byte[] EscapeBinary(ReadOnlySpan<byte> data)
    {
        var o = new List<byte>(data.Length + 8);
        foreach (var b in data)
        {
            if (b is (byte)'#' or (byte)'$' or Escape or RunLength) { o.Add(Escape); o.Add((byte)(b ^ 0x20)); }
            else o.Add(b);
        }
        return [.. o];
    }

    /// <summary>Undoes <see cref="EscapeBinary"/>; false when the data ends with a lone escape byte.</summary>
    public static bool TryUnescapeBinary(ReadOnlySpan<byte> data, out byte[] result)
    {
        var o = new List<byte>(data.Length);
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] != Escape) { o.Add(data[i]); continue; }
            if (++i == data.Length) { result = []; return false; }
            o.Add((byte)(data[i] ^ 0x20));
        }
        result = [.. o];
        return true;
    }

    /// <summary>Run-length encodes a payload as gdbserver's <c>try_rle</c> does: runs of 4 or more identical characters
    /// become <c>c*N</c> with N = extra repeats + 29, never producing <c>#</c>, <c>$</c> (manual, "Overview") nor
    /// <c>+</c>/<c>-</c> (which a careless reader could take for acks), and never beyond <c>~</c> (97 repeats).
    /// An escape pair is never split: runs are counted on characters that are not <c>}</c> or its escaped byte.</summary>
    public static byte[] EncodeRunLength(ReadOnlySpan<byte> payload)
    {
        var o = new List<byte>(payload.Length);
        int i = 0;
        while (i < payload.Length)
        {
            byte c = payload[i];
            if (c == Escape && i + 1 < payload.Length)
            {
                // An escape pair is copied as is: repeating its second byte alone would change its meaning.
                o.Add(c); o.Add(payload[i + 1]); i += 2;
                continue;
            }
            int run = 1;
            while (i + run < payload.Length && payload[i + run] == c && run < 98) run++;
            int extra = run - 1;
            while (extra is 6 or 7 or 14 or 16) extra--; // '#', '$', '+', '-'
            o.Add(c);
            if (extra >= 3) { o.Add(RunLength); o.Add((byte)(extra + 29)); i += extra + 1; }
            else i++;
        }
        return [.. o];
    }

    /// <summary>Frames a payload: <c>$payload#xx</c>.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var frame = new byte[payload.Length + 4];
        frame[0] = (byte)'$';
        payload.CopyTo(frame.AsSpan(1));
        frame[^3] = (byte)'#';
        var sum = Checksum(payload);
        frame[^2] = (byte)"0123456789abcdef"[sum >> 4];
        frame[^1] = (byte)"0123456789abcdef"[sum & 0xf];
        return frame;
    }
}
