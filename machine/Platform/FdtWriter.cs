using System.Buffers.Binary;
using System.Text;

namespace ActorStep.Machine.Platform;

/// <summary>
/// Writes a flattened device tree blob (Devicetree Specification v0.4 §5): header version 17 (last compatible 16),
/// the memory reservation map, the structure block and the strings block, all big-endian.
/// </summary>
public sealed class FdtWriter
{
    private const uint Magic = 0xD00DFEED;
    private const uint FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3, FDT_END = 9;
    private const int HeaderSize = 40;

    private readonly List<(ulong Address, ulong Size)> _reservations = new();
    private readonly MemoryStream _structure = new();
    private readonly MemoryStream _strings = new();
    private readonly Dictionary<string, int> _stringOffsets = new(StringComparer.Ordinal);
    private int _depth;

    /// <summary>A memory reservation map entry (§5.3): the kernel keeps its hands off [address, address+size).</summary>
    public void Reserve(ulong address, ulong size) => _reservations.Add((address, size));

    public void BeginNode(string name)
    {
        Token(FDT_BEGIN_NODE);
        var bytes = Encoding.ASCII.GetBytes(name);
        _structure.Write(bytes);
        _structure.WriteByte(0);
        Align();
        _depth++;
    }

    public void EndNode()
    {
        if (_depth == 0) throw new InvalidOperationException("EndNode without a node open");
        Token(FDT_END_NODE);
        _depth--;
    }

    public void Property(string name, ReadOnlySpan<byte> value)
    {
        if (_depth == 0) throw new InvalidOperationException("a property outside any node");
        Token(FDT_PROP);
        Token((uint)value.Length);
        Token((uint)NameOffset(name));
        _structure.Write(value);
        Align();
    }

    /// <summary>An empty property (a flag such as <c>interrupt-controller</c>).</summary>
    public void Property(string name) => Property(name, ReadOnlySpan<byte>.Empty);

    /// <summary>A string list: each string NUL-terminated.</summary>
    public void Property(string name, params string[] strings) =>
        Property(name, Encoding.ASCII.GetBytes(string.Concat(strings.Select(s => s + "\0"))));

    /// <summary>A list of big-endian 32-bit cells.</summary>
    public void Cells(string name, params uint[] cells)
    {
        var bytes = new byte[cells.Length * 4];
        for (int i = 0; i < cells.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(i * 4), cells[i]);
        Property(name, bytes);
    }

    /// <summary>A 64-bit value as two cells (high, low).</summary>
    public void Cells64(string name, params ulong[] values) =>
        Cells(name, values.SelectMany(v => new[] { (uint)(v >> 32), (uint)v }).ToArray());

    /// <summary>The blob: header, reservation map (terminated by a zero entry), structure block, strings block.</summary>
    public byte[] Finish(uint bootCpuidPhys)
    {
        if (_depth != 0) throw new InvalidOperationException($"{_depth} node(s) still open");
        Token(FDT_END);
        int rsvOffset = HeaderSize; // 8-byte aligned
        int rsvSize = (_reservations.Count + 1) * 16;
        int structOffset = rsvOffset + rsvSize;
        int structSize = (int)_structure.Length;
        int stringsOffset = structOffset + structSize;
        int stringsSize = (int)_strings.Length;
        int total = stringsOffset + stringsSize;

        var blob = new byte[total];
        var h = blob.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(h[0..], Magic);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], (uint)total);
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], (uint)structOffset);
        BinaryPrimitives.WriteUInt32BigEndian(h[12..], (uint)stringsOffset);
        BinaryPrimitives.WriteUInt32BigEndian(h[16..], (uint)rsvOffset);
        BinaryPrimitives.WriteUInt32BigEndian(h[20..], 17);
        BinaryPrimitives.WriteUInt32BigEndian(h[24..], 16);
        BinaryPrimitives.WriteUInt32BigEndian(h[28..], bootCpuidPhys);
        BinaryPrimitives.WriteUInt32BigEndian(h[32..], (uint)stringsSize);
        BinaryPrimitives.WriteUInt32BigEndian(h[36..], (uint)structSize);
        for (int i = 0; i < _reservations.Count; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(h[(rsvOffset + i * 16)..], _reservations[i].Address);
            BinaryPrimitives.WriteUInt64BigEndian(h[(rsvOffset + i * 16 + 8)..], _reservations[i].Size);
        }
        _structure.ToArray().CopyTo(blob, structOffset);
        _strings.ToArray().CopyTo(blob, stringsOffset);
        return blob;
    }

    private int NameOffset(string name)
    {
        if (_stringOffsets.TryGetValue(name, out int off)) return off;
        off = (int)_strings.Length;
        _strings.Write(Encoding.ASCII.GetBytes(name));
        _strings.WriteByte(0);
        _stringOffsets[name] = off;
        return off;
    }

    private void Token(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        _structure.Write(b);
    }

    private void Align()
    {
        while ((_structure.Length & 3) != 0) _structure.WriteByte(0);
    }
}
