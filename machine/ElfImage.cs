using System.Buffers.Binary;
using System.Text;
using ActorStep.Hypervisor;

namespace ActorStep.Machine;

/// <summary>A loadable segment: file bytes placed at a physical address, zero-filled up to MemorySize. <paramref name="Data"/> is a
/// view of the file's bytes, not a copy (a Debian vmlinux's segments are 30 MB).</summary>
public sealed record ElfSegment(ulong PhysicalAddress, ulong VirtualAddress, ReadOnlyMemory<byte> Data, ulong MemorySize);

/// <summary>The image file is not an ELF64 PowerPC executable we can load.</summary>
public sealed class ElfFormatException(string message) : Exception(message);

/// <summary>An ELF64 ppc64 executable (either byte order): PT_LOAD segments, entry point and symbols.</summary>
public sealed class ElfImage
{
    private const ushort EM_PPC64 = 21;
    private const uint PT_LOAD = 1;
    private const uint SHT_SYMTAB = 2;

    private const ulong SHF_EXECINSTR = 0x4;
    private const byte STT_NOTYPE = 0, STT_FUNC = 2;
    private const ushort SHN_LORESERVE = 0xff00;

    private ElfImage(ulong entry, bool littleEndian, IReadOnlyList<ElfSegment> segments, Lazy<SymbolTables> symbols, string name)
    {
        Entry = entry;
        LittleEndian = littleEndian;
        Segments = segments;
        _symbols = symbols;
        Name = name;
    }

    /// <summary>What .symtab says, read at its first use from a copy of the symbol and string tables taken with the segments
    /// (~5 MB of a Debian vmlinux's 45): a boot with nobody asking for names spends nothing on its ~100,000 symbols, whose
    /// reading on the thread pool took ~0.13 s of CPU from the vcpu and the block compiler in the boot's first 0.2 s.</summary>
    internal sealed record SymbolTables(IReadOnlyDictionary<string, ulong> Symbols, SymbolIndex Code);

    private readonly Lazy<SymbolTables> _symbols;

    /// <summary>The symbol table, read at its first use, for a machine that keeps the names and not the image's segments.</summary>
    internal Lazy<SymbolTables> SymbolTablesOnFirstUse => _symbols;

    public ulong Entry { get; }
    public bool LittleEndian { get; }
    public IReadOnlyList<ElfSegment> Segments { get; }
    /// <summary>Symbol name → value, from .symtab when present (the first ask reads the symbol table).</summary>
    public IReadOnlyDictionary<string, ulong> Symbols => Tables.Symbols;
    /// <summary>The code symbols of .symtab (functions, and labels in executable sections) as names for addresses; empty without
    /// one (the first ask reads the symbol table).</summary>
    public SymbolIndex Code => Tables.Code;

    private SymbolTables Tables => _symbols.Value;
    public string Name { get; }

    public ulong Symbol(string name) => Symbols.TryGetValue(name, out var v) ? v
        : throw new KeyNotFoundException($"symbol '{name}' is not in {Name}");

    /// <summary>The largest image file <see cref="Load"/> reads: above the 45 MiB of a Debian ppc64 vmlinux, and bounded,
    /// so that one request cannot fill the server's memory.</summary>
    public const long MaxFileSize = 256L << 20;

    /// <summary>Loads an image file: a regular file of at most <see cref="MaxFileSize"/> bytes (a FIFO or a device such as
    /// /dev/zero is refused without being read; see <see cref="ImageFile"/>).
    /// The segments are read at once; the symbol table at the first ask for <see cref="Symbols"/> or <see cref="Code"/>: a
    /// kernel's boot needs no names.</summary>
    public static ElfImage Load(string path) => Parse(ImageFile.Read(path, MaxFileSize), Path.GetFileName(path));

    /// <summary>The built-in guest images committed under machine/guests (e.g. "demo").</summary>
    public static ElfImage BuiltIn(string name)
    {
        using var s = typeof(ElfImage).Assembly.GetManifestResourceStream($"guests/{name}.elf")
            ?? throw new ElfFormatException($"no built-in guest image named {ClientText.Quote(name)}");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return Parse(ms.ToArray(), $"{name}.elf");
    }

    public static ElfImage Parse(ReadOnlySpan<byte> f, string name = "image") => Parse(f.ToArray(), name);

    private static ElfImage Parse(byte[] file, string name)
    {
        ReadOnlySpan<byte> f = file;
        string Where(string what) => $"{name}: {what}";
        if (f.Length < 4) throw new ElfFormatException(Where($"too short to be an ELF file ({f.Length} bytes)"));
        if (f[0] != 0x7F || f[1] != (byte)'E' || f[2] != (byte)'L' || f[3] != (byte)'F')
            throw new ElfFormatException(Where("not an ELF file (bad magic)"));
        if (f.Length < 64) throw new ElfFormatException(Where($"truncated: too short for an ELF64 header ({f.Length} bytes)"));
        if (f[4] != 2) throw new ElfFormatException(Where("not ELF64 (EI_CLASS is not ELFCLASS64)"));
        bool le = f[5] switch
        {
            1 => true,
            2 => false,
            _ => throw new ElfFormatException(Where($"unknown data encoding {f[5]}")),
        };

        ushort machine = U16(f[18..], le);
        if (machine != EM_PPC64) throw new ElfFormatException(Where($"machine type {machine} is not PowerPC64 (EM_PPC64 = 21)"));
        ulong entry = U64(f[24..], le);
        ulong phoff = U64(f[32..], le);
        ushort phentsize = U16(f[54..], le), phnum = U16(f[56..], le);
        if (phnum == 0) throw new ElfFormatException(Where("no program headers"));
        if (phentsize < 56 || !Fits(f, phoff, (ulong)phentsize * phnum))
            throw new ElfFormatException(Where("program headers are truncated"));

        var segments = new List<ElfSegment>();
        for (int i = 0; i < phnum; i++)
        {
            var ph = f.Slice((int)phoff + i * phentsize, phentsize);
            if (U32(ph, le) != PT_LOAD) continue;
            ulong offset = U64(ph[8..], le), vaddr = U64(ph[16..], le), paddr = U64(ph[24..], le);
            ulong filesz = U64(ph[32..], le), memsz = U64(ph[40..], le);
            if (filesz > memsz) throw new ElfFormatException(Where($"segment {i}: file size exceeds memory size"));
            if (!Fits(f, offset, filesz)) throw new ElfFormatException(Where($"segment {i} is truncated (file ends before its data)"));
            if (memsz == 0) continue;
            segments.Add(new ElfSegment(paddr, vaddr, file.AsMemory((int)offset, (int)filesz), memsz));
        }
        if (segments.Count == 0) throw new ElfFormatException(Where("no loadable (PT_LOAD) segments"));

        var source = SymbolSource.Copy(file, le);
        return new ElfImage(entry, le, segments, new Lazy<SymbolTables>(() => ReadSymbols(source)), name);
    }

    /// <summary>What reading the symbols needs of the file, copied out of it (so that a machine that never asks for names does
    /// not keep the whole file): each section's flags, address and size, and each .symtab with its string table. Tables whose
    /// offsets leave the file are left out: names are a help, not a condition of running the image.</summary>
    private sealed record SymbolSource(bool LittleEndian, (ulong Flags, ulong Address, ulong Size)[] Sections,
        List<(byte[] Symbols, int EntrySize, byte[] Strings)> Tables)
    {
        public static SymbolSource Copy(byte[] file, bool le)
        {
            ReadOnlySpan<byte> f = file;
            ulong shoff = U64(f[40..], le);
            ushort shentsize = U16(f[58..], le), shnum = U16(f[60..], le);
            var tables = new List<(byte[], int, byte[])>();
            if (shnum == 0 || shentsize < 64 || !Fits(f, shoff, (ulong)shentsize * shnum)) return new(le, [], tables);
            var sections = new (ulong Flags, ulong Address, ulong Size)[shnum];
            for (int i = 0; i < shnum; i++)
            {
                var sh = f.Slice((int)shoff + i * shentsize, shentsize);
                sections[i] = (U64(sh[8..], le), U64(sh[16..], le), U64(sh[32..], le));
            }
            for (int i = 0; i < shnum; i++)
            {
                var sh = f.Slice((int)shoff + i * shentsize, shentsize);
                if (U32(sh[4..], le) != SHT_SYMTAB) continue;
                ulong off = U64(sh[24..], le), size = U64(sh[32..], le), entsize = U64(sh[56..], le);
                uint link = U32(sh[40..], le);
                if (entsize is < 24 or > 1024 || !Fits(f, off, size) || link >= shnum) continue;
                var strh = f.Slice((int)shoff + (int)link * shentsize, shentsize);
                ulong stroff = U64(strh[24..], le), strsize = U64(strh[32..], le);
                if (!Fits(f, stroff, strsize)) continue;
                tables.Add((f.Slice((int)off, (int)size).ToArray(), (int)entsize, f.Slice((int)stroff, (int)strsize).ToArray()));
            }
            return new(le, sections, tables);
        }
    }

    /// <summary>One code symbol as read, with what orders the symbols that share an address (<see cref="WithExtents"/>).</summary>
    private readonly record struct CodeEntry(CodeSymbol Symbol, int Section, int Rank);

    /// <summary>.symtab's names and code symbols; none when the file has no usable one.</summary>
    private static SymbolTables ReadSymbols(SymbolSource source)
    {
        bool le = source.LittleEndian;
        var sections = source.Sections;
        var symbols = new Dictionary<string, ulong>(source.Tables.Sum(t => t.Symbols.Length / t.EntrySize), StringComparer.Ordinal);
        var code = new List<CodeEntry>();
        foreach (var (table, entsize, strings) in source.Tables)
        {
            ReadOnlySpan<byte> strtab = strings;
            for (int s = 0; s + entsize <= table.Length; s += entsize)
            {
                // Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size (ELF gABI, "Symbol Table").
                var sym = new ReadOnlySpan<byte>(table, s, entsize);
                uint nameOff = U32(sym, le);
                if (nameOff == 0 || nameOff >= strtab.Length) continue;
                int end = strtab[(int)nameOff..].IndexOf((byte)0);
                if (end <= 0) continue;
                string symName = Encoding.ASCII.GetString(strtab.Slice((int)nameOff, end));
                ulong value = U64(sym[8..], le);
                symbols.TryAdd(symName, value);
                byte type = (byte)(sym[4] & 0xF), bind = (byte)(sym[4] >> 4);
                ushort shndx = U16(sym[6..], le);
                if (type is not (STT_FUNC or STT_NOTYPE) || shndx == 0 || shndx >= SHN_LORESERVE || shndx >= sections.Length
                    || (sections[shndx].Flags & SHF_EXECINSTR) == 0)
                    continue;
                // The preferred name where several share an address: a function over a label, global over weak over local.
                int rank = (type == STT_FUNC ? 0 : 4) + (bind switch { 1 => 0, 2 => 1, _ => 2 });
                code.Add(new CodeEntry(new CodeSymbol(symName, value, U64(sym[16..], le), LocalEntryOffset(sym[5])), shndx, rank));
            }
        }
        return new SymbolTables(symbols, new SymbolIndex(WithExtents(code, sections)));
    }

    /// <summary>ELFv2's local entry point, from st_other bits 5:7 (the 64-bit ELF V2 ABI, "Symbol Table Entries"): 0 and 1 say it is
    /// the global entry; 2..6 say 4, 8, … 64 bytes after it.</summary>
    private static uint LocalEntryOffset(byte other)
    {
        int v = other >> 5;
        return v <= 1 ? 0 : ((1u << v) >> 2) << 2;
    }

    /// <summary>The symbols with their sizes, by section and address, the preferred first at an address (by rank, then name);
    /// an assembly label without a size (<c>start_here_common</c>) reaches the next code symbol of its section, or the
    /// section's end.</summary>
    private static CodeSymbol[] WithExtents(List<CodeEntry> code, (ulong Flags, ulong Address, ulong Size)[] sections)
    {
        var sorted = code.ToArray();
        Array.Sort(sorted, static (a, b) =>
            a.Section != b.Section ? a.Section.CompareTo(b.Section)
            : a.Symbol.Address != b.Symbol.Address ? a.Symbol.Address.CompareTo(b.Symbol.Address)
            : a.Rank != b.Rank ? a.Rank.CompareTo(b.Rank)
            : string.CompareOrdinal(a.Symbol.Name, b.Symbol.Name));
        var result = new CodeSymbol[sorted.Length];
        for (int i = 0; i < sorted.Length;)
        {
            // The symbols at one address, [i, j); the next address of the section, if any, is at j.
            var (first, section, _) = sorted[i];
            int j = i + 1;
            while (j < sorted.Length && sorted[j].Section == section && sorted[j].Symbol.Address == first.Address) j++;
            ulong next = j < sorted.Length && sorted[j].Section == section ? sorted[j].Symbol.Address
                : Math.Max(sections[section].Address + sections[section].Size, first.Address);
            for (int k = i; k < j; k++)
                result[k] = sorted[k].Symbol.Size > 0 ? sorted[k].Symbol : sorted[k].Symbol with { Size = next - first.Address };
            i = j;
        }
        return result;
    }

    private static ushort U16(ReadOnlySpan<byte> s, bool le) => le ? BinaryPrimitives.ReadUInt16LittleEndian(s) : BinaryPrimitives.ReadUInt16BigEndian(s);
    private static uint U32(ReadOnlySpan<byte> s, bool le) => le ? BinaryPrimitives.ReadUInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32BigEndian(s);
    private static ulong U64(ReadOnlySpan<byte> s, bool le) => le ? BinaryPrimitives.ReadUInt64LittleEndian(s) : BinaryPrimitives.ReadUInt64BigEndian(s);

    private static bool Fits(ReadOnlySpan<byte> f, ulong offset, ulong length) =>
        offset <= (ulong)f.Length && length <= (ulong)f.Length - offset;
}
