namespace ActorStep.Protocol.Rsp;

/// <summary>The packet could not be parsed; the session answers <see cref="RspErrors.Malformed"/> and carries on.</summary>
public sealed class RspFormatException(string message) : Exception(message);

/// <summary>A cursor over a packet payload that reads the fields gdb's packets are made of (hex numbers, separators,
/// hex data, escaped binary data). Any mismatch throws <see cref="RspFormatException"/>.</summary>
public sealed class RspReader(byte[] payload, int start = 0)
{
    private int _pos = start;

    public bool AtEnd => _pos >= payload.Length;
    public int Position => _pos;
    public ReadOnlySpan<byte> Rest => payload.AsSpan(_pos);
    public string RestText => RspEncoding.Latin1(Rest);

    public byte? Peek => AtEnd ? null : payload[_pos];

    /// <summary>Consumes <paramref name="text"/> if the payload continues with it.</summary>
    public bool TrySkip(string text)
    {
        if (payload.Length - _pos < text.Length) return false;
        for (int i = 0; i < text.Length; i++) if (payload[_pos + i] != text[i]) return false;
        _pos += text.Length;
        return true;
    }

    public void Expect(char c)
    {
        if (AtEnd || payload[_pos] != c) throw new RspFormatException($"expected '{c}' at {_pos}");
        _pos++;
    }

    /// <summary>A hex number of 1 to 16 digits.</summary>
    public ulong Hex()
    {
        int start = _pos;
        ulong value = 0;
        while (!AtEnd && RspEncoding.HexValue(payload[_pos]) is var d and >= 0)
        {
            if (_pos - start == 16) throw new RspFormatException("hex number too long");
            value = value << 4 | (uint)d;
            _pos++;
        }
        if (_pos == start) throw new RspFormatException($"expected a hex number at {start}");
        return value;
    }

    /// <summary>A hex number that must fit an int (lengths, register numbers).</summary>
    public int HexInt()
    {
        var v = Hex();
        if (v > int.MaxValue) throw new RspFormatException("number out of range");
        return (int)v;
    }

    /// <summary>Hex-encoded bytes up to <paramref name="terminator"/> (not consumed) or the end.</summary>
    public byte[] HexBytes(char? terminator = null)
    {
        int end = _pos;
        while (end < payload.Length && (terminator is null || payload[end] != terminator)) end++;
        if (!RspEncoding.TryFromHex(payload.AsSpan(_pos, end - _pos), out var bytes))
            throw new RspFormatException("malformed hex data");
        _pos = end;
        return bytes;
    }

    /// <summary>The rest of the payload as <c>}</c>-escaped binary data (X packets).</summary>
    public byte[] BinaryToEnd()
    {
        if (!RspEncoding.TryUnescapeBinary(Rest, out var data)) throw new RspFormatException("dangling escape");
        _pos = payload.Length;
        return data;
    }

    /// <summary>Text up to <paramref name="terminator"/> (consumed) or the end.</summary>
    public string Until(char terminator)
    {
        int end = _pos;
        while (end < payload.Length && payload[end] != terminator) end++;
        var s = RspEncoding.Latin1(payload.AsSpan(_pos, end - _pos));
        _pos = end < payload.Length ? end + 1 : end;
        return s;
    }

    public void ExpectEnd()
    {
        if (!AtEnd) throw new RspFormatException($"unexpected data at {_pos}");
    }
}
