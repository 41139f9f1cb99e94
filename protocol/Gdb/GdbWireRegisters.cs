namespace ActorStep.Protocol.Gdb;

/// <summary>
/// One stopped vcpu's registers as they go on the wire, encoded once per stop: the whole <c>g</c> payload (hex, every register
/// of <see cref="TargetDescription"/> in regnum order, <c>xx</c> for one the target did not give), from which <c>g</c>, <c>p</c>
/// and a stop reply's expedited registers are slices. A <c>g</c> after a step then costs no call, no encoding and no copy.
/// </summary>
public sealed class GdbWireRegisters
{
    private static readonly int[] Offsets = BuildOffsets();

    private readonly byte[] _g;

    /// <param name="values">gdb regnum → value, MSB first (<see cref="IGdbTarget.ReadRegistersAsync"/>)</param>
    /// <param name="littleEndianTarget">registers go on the wire in the image's byte order (see <see cref="GdbSession"/>)</param>
    public GdbWireRegisters(IReadOnlyDictionary<int, byte[]> values, bool littleEndianTarget)
    {
        Values = values;
        _g = new byte[Offsets[^1]];
        foreach (var reg in TargetDescription.Registers)
        {
            var hex = _g.AsSpan(Offsets[reg.Regnum], 2 * reg.Size);
            if (values.TryGetValue(reg.Regnum, out var msbFirst) && msbFirst.Length == reg.Size) Encode(msbFirst, littleEndianTarget, hex);
            else hex.Fill((byte)'x'); // "Packets", g: 'xx' marks an unavailable register
        }
    }

    /// <summary>The values as the target gave them (MSB first).</summary>
    public IReadOnlyDictionary<int, byte[]> Values { get; }

    /// <summary>The <c>g</c> reply's payload. Shared: callers must not change it.</summary>
    public byte[] G => _g;

    /// <summary>One register's hex on the wire (a slice of <see cref="G"/>).</summary>
    public ReadOnlySpan<byte> Wire(int regnum) => _g.AsSpan(Offsets[regnum], Offsets[regnum + 1] - Offsets[regnum]);

    private static void Encode(ReadOnlySpan<byte> msbFirst, bool littleEndian, Span<byte> hex)
    {
        const string digits = "0123456789abcdef";
        for (int i = 0; i < msbFirst.Length; i++)
        {
            byte b = msbFirst[littleEndian ? msbFirst.Length - 1 - i : i];
            hex[2 * i] = (byte)digits[b >> 4];
            hex[2 * i + 1] = (byte)digits[b & 0xf];
        }
    }

    // Offsets[regnum] = where the register's hex starts in g; the last entry is g's length (regnums have no gaps).
    private static int[] BuildOffsets()
    {
        var registers = TargetDescription.Registers;
        var offsets = new int[registers.Count + 1];
        for (int i = 0; i < registers.Count; i++)
        {
            if (registers[i].Regnum != i) throw new InvalidOperationException("the target description's regnums must have no gaps");
            offsets[i + 1] = offsets[i] + 2 * registers[i].Size;
        }
        return offsets;
    }
}
