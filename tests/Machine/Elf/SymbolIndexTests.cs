using System.Text.RegularExpressions;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Elf;

/// <summary>Names for addresses (issue 13 point 7): the code symbols of an image built by GNU as, with the sizes and ELFv2 local
/// entries binutils' readelf reads from the same file.</summary>
public class SymbolIndexTests
{
    /// <summary>An unsized label, a global function with a local entry 8 bytes in, a gap no symbol covers, a local function, data.</summary>
    private const string Source = """
            .globl _start
        _start:
            nop
            nop
            .globl add_one
            .type add_one, @function
        add_one:
            nop
            nop
            .localentry add_one, .-add_one
            addi 3,3,1
            blr
            .size add_one, .-add_one
            .long 0, 0
            .type twice, @function
        twice:
            add 3,3,3
            blr
            .size twice, .-twice
            .section .data
            .type data_word, @object
        data_word:
            .quad 5
            .size data_word, 8
        """;

    private const ulong Low = 0x10000, Kernel = 0xc000000000010000;

    private static SymbolIndex Index(ulong textAddress = Low) => GuestAssembler.Build(Source, textAddress: textAddress).Code;

    /// <summary>readelf -sW's FUNC symbols: name → (value, size, local entry offset).</summary>
    private static Dictionary<string, (ulong Value, ulong Size, uint LocalEntry)> ReadElfFunctions(string elf)
    {
        var functions = new Dictionary<string, (ulong, ulong, uint)>();
        string text = GuestAssembler.Run(GuestAssembler.Tool(true, "readelf"), $"-sW {elf}");
        foreach (Match m in Regex.Matches(text, @"^\s*\d+:\s+([0-9a-f]+)\s+(\d+)\s+FUNC\s+\w+\s+\w+\s*(?:\[<localentry>: (\d+)\])?\s+\S+\s+(\S+)$", RegexOptions.Multiline))
            functions[m.Groups[4].Value] = (Convert.ToUInt64(m.Groups[1].Value, 16), ulong.Parse(m.Groups[2].Value),
                m.Groups[3].Success ? uint.Parse(m.Groups[3].Value) : 0);
        return functions;
    }

    [Fact]
    public void Functions_carry_the_addresses_sizes_and_local_entries_readelf_reads()
    {
        string elf = GuestAssembler.BuildElf(Source, textAddress: Low);
        var expected = ReadElfFunctions(elf);
        var index = ElfImage.Load(elf).Code;

        Assert.Equal(["add_one", "twice"], expected.Keys.Order());
        Assert.Contains(expected.Values, f => f.LocalEntry > 0); // the local entry really is in the file
        foreach (var (name, (value, size, localEntry)) in expected)
        {
            var symbol = index.Named(name);
            Assert.NotNull(symbol);
            Assert.Equal((value, size, localEntry), (symbol.Address, symbol.Size, symbol.LocalEntryOffset));
        }
    }

    [Fact]
    public void An_address_inside_a_function_is_named_function_plus_hex_offset()
    {
        var index = Index();
        var addOne = index.Named("add_one")!;
        Assert.Equal("add_one+0x0", index.Describe(addOne.Address, translated: true));
        Assert.Equal($"add_one+0x{addOne.Size - 4:x}", index.Describe(addOne.End - 4, translated: true));
        Assert.Equal("twice+0x4", index.Describe(index.Named("twice")!.Address + 4, translated: true));
    }

    [Fact]
    public void An_address_outside_every_symbols_extent_has_no_name()
    {
        var index = Index();
        var addOne = index.Named("add_one")!;
        var twice = index.Named("twice")!;
        Assert.True(addOne.End < twice.Address, "the source leaves a gap after add_one");
        Assert.Null(index.Describe(addOne.End, translated: true));       // the gap after add_one's size
        Assert.Null(index.Describe(twice.End, translated: true));        // past the last function
        Assert.Null(index.Describe(Low - 4, translated: true));          // before the first symbol
    }

    [Fact]
    public void An_unsized_label_reaches_the_next_symbol_and_data_symbols_name_nothing()
    {
        var index = Index();
        var start = index.Named("_start")!;
        var addOne = index.Named("add_one")!;
        Assert.Equal(addOne.Address, start.End);
        Assert.Equal("_start+0x4", index.Describe(start.Address + 4, translated: true));
        Assert.Null(index.Named("data_word"));
    }

    [Fact]
    public void A_kernel_linked_in_quadrant_3_is_named_at_its_real_address_in_real_mode_only()
    {
        var index = Index(Kernel);
        var addOne = index.Named("add_one")!;
        ulong real = addOne.Address & 0x0FFFFFFFFFFFFFFF;
        Assert.Equal("add_one+0x8", index.Describe(real + 8, translated: false));
        Assert.Equal("add_one+0x8", index.Describe(addOne.Address + 8, translated: false)); // real mode ignores EA bits 0:3
        Assert.Equal("add_one+0x8", index.Describe(addOne.Address + 8, translated: true));
        Assert.Null(index.Describe(real + 8, translated: true)); // a user address with translation on is not the kernel's
    }

    [Fact]
    public void An_image_linked_low_is_named_through_the_linear_map_in_quadrant_3()
    {
        var index = Index(Low);
        var twice = index.Named("twice")!;
        Assert.Equal("twice+0x4", index.Describe(SymbolIndex.KernelBase | (twice.Address + 4), translated: true));
        Assert.Null(index.Describe(0x4000000000000000 | twice.Address, translated: true)); // quadrant 1 is not the linear map
    }
}
