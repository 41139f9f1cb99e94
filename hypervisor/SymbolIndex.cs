namespace ActorStep.Hypervisor;

/// <summary>A code symbol of an image: where it starts, how many bytes it covers, and (ELFv2) how far its local entry point is
/// from its global one (<c>st_other</c>; the entry a local caller and gdb's <c>break NAME</c> use).</summary>
public sealed record CodeSymbol(string Name, ulong Address, ulong Size, uint LocalEntryOffset = 0)
{
    public ulong End => Address + Size;

    /// <summary>The ELFv2 local entry point (the global one when the symbol has none).</summary>
    public ulong LocalEntry => Address + LocalEntryOffset;
}

/// <summary>
/// Names for code addresses, as a kernel developer reads them: <c>start_kernel+0x8</c>. The image's code symbols sorted by
/// address; an address names the symbol whose extent holds it, and nothing outside every extent (a gap, data, another
/// image's code).
/// </summary>
public sealed class SymbolIndex
{
    /// <summary>The kernel's linear map (quadrant 3): EA <c>0xC000_0000_0000_0000 | RA</c>.</summary>
    public const ulong KernelBase = 0xC000000000000000;

    private const ulong RealModeMask = 0x0FFFFFFFFFFFFFFF;

    private readonly CodeSymbol[] _symbols;
    private readonly ulong[] _starts;
    /// <summary>The largest extent among the symbols starting at or before each index: a lookup walks back no further.</summary>
    private readonly ulong[] _reach;

    /// <param name="symbols">code symbols in any order, the preferred name first where several share an address (a symbol of size 0
    /// names nothing: the reader of an image gives an unsized label the extent up to the next symbol)</param>
    public SymbolIndex(IEnumerable<CodeSymbol> symbols)
    {
        var given = symbols as CodeSymbol[] ?? [.. symbols];
        // By address, the order given breaking ties (the index in the key: Array.Sort is not stable); a reader's symbols come
        // sorted already.
        var order = new (ulong Address, int Index)[given.Length];
        bool sorted = true;
        for (int i = 0; i < given.Length; i++)
        {
            order[i] = (given[i].Address, i);
            sorted &= i == 0 || given[i].Address >= given[i - 1].Address;
        }
        if (!sorted) Array.Sort(order);
        // At one address, the symbol that says most: the first sized one, else the first given.
        var kept = new List<CodeSymbol>(given.Length);
        for (int i = 0; i < order.Length;)
        {
            var pick = given[order[i].Index];
            int j = i + 1;
            for (; j < order.Length && order[j].Address == order[i].Address; j++)
                if (pick.Size == 0 && given[order[j].Index].Size > 0) pick = given[order[j].Index];
            kept.Add(pick);
            i = j;
        }
        _symbols = [.. kept];
        _starts = new ulong[_symbols.Length];
        for (int i = 0; i < _symbols.Length; i++) _starts[i] = _symbols[i].Address;
        _reach = new ulong[_symbols.Length];
        ulong reach = 0;
        for (int i = 0; i < _symbols.Length; i++)
        {
            reach = Math.Max(reach, _symbols[i].End);
            _reach[i] = reach;
        }
    }

    public int Count => _symbols.Length;

    public IReadOnlyList<CodeSymbol> Symbols => _symbols;

    /// <summary>The symbol whose extent holds <paramref name="address"/> (the innermost when extents nest), with the offset into it.</summary>
    public (CodeSymbol Symbol, ulong Offset)? Find(ulong address)
    {
        int i = Array.BinarySearch(_starts, address);
        if (i < 0) i = ~i - 1;
        for (; i >= 0 && _reach[i] > address; i--)
            if (address < _symbols[i].End) return (_symbols[i], address - _symbols[i].Address);
        return null;
    }

    /// <summary>
    /// <c>name+0xoff</c> for where a vcpu is, or null. With instruction relocation off (MSR[IR]=0) the address is real (EA bits
    /// 0:3 ignored) and a kernel linked at <see cref="KernelBase"/> runs there too: its linear-map alias is named first. With it
    /// on, an address in quadrant 3 of an image linked low (a guest that maps itself there) is named by its real address.
    /// </summary>
    public string? Describe(ulong address, bool translated)
    {
        var found = translated
            ? Find(address) ?? (address >> 60 == 0xC ? Find(address & RealModeMask) : null)
            : Find(KernelBase | (address & RealModeMask)) ?? Find(address & RealModeMask);
        return found is var (symbol, offset) ? $"{symbol.Name}+0x{offset:x}" : null;
    }

    /// <summary>The symbol named <paramref name="name"/>, or null.</summary>
    public CodeSymbol? Named(string name) => Array.Find(_symbols, s => s.Name == name);
}
