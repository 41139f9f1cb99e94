using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>A stop's registers encoded once for the wire: <c>g</c>, <c>p</c> and the expedited ones are slices of it.</summary>
public class GdbWireRegistersTests
{
    /// <summary>A distinct value per register, MSB first, as wide as the target description says.</summary>
    private static Dictionary<int, byte[]> Values() => TargetDescription.Registers.ToDictionary(r => r.Regnum,
        r => Enumerable.Range(0, r.Size).Select(i => (byte)(r.Regnum * 7 + i * 13 + 1)).ToArray());

    /// <summary>One register on the wire, encoded independently: hex of its bytes, least significant first for a little-endian image.</summary>
    private static string Expected(byte[] msbFirst, bool littleEndian) =>
        Convert.ToHexStringLower(littleEndian ? [.. msbFirst.Reverse()] : msbFirst);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void G_holds_every_register_in_regnum_order_in_the_image_byte_order(bool littleEndian)
    {
        var values = Values();
        var wire = new GdbWireRegisters(values, littleEndian);

        string expected = string.Concat(TargetDescription.Registers.Select(r => Expected(values[r.Regnum], littleEndian)));
        Assert.Equal(expected, RspEncoding.Latin1(wire.G));
        Assert.Equal(2 * TargetDescription.GPacketBytes, wire.G.Length);
        foreach (var r in TargetDescription.Registers)
            Assert.Equal(Expected(values[r.Regnum], littleEndian), RspEncoding.Latin1(wire.Wire(r.Regnum)));
    }

    [Fact]
    public void A_register_missing_or_of_the_wrong_width_is_sent_as_unavailable()
    {
        var values = Values();
        values.Remove(TargetDescription.Tb);
        values[TargetDescription.Cr] = [1, 2, 3, 4, 5, 6, 7, 8]; // cr is 32-bit
        var wire = new GdbWireRegisters(values, littleEndianTarget: false);

        Assert.Equal(new string('x', 16), RspEncoding.Latin1(wire.Wire(TargetDescription.Tb)));
        Assert.Equal(new string('x', 8), RspEncoding.Latin1(wire.Wire(TargetDescription.Cr)));
        Assert.Equal(Expected(values[TargetDescription.Lr], false), RspEncoding.Latin1(wire.Wire(TargetDescription.Lr)));
    }
}
