using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ActorStep.Isa;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine;

/// <summary>One disassembled word as objdump printed it.</summary>
public sealed record ObjdumpLine(string Section, ulong Address, uint Word, string Text)
{
    public string Mnemonic => Text.Split(' ')[0];
    public override string ToString() => $"{Address:x}: {Word:x8}  {Text}";
}

/// <summary>
/// Assembles guests/decoder-coverage.s (plus a section of words that must not decode and a section of seeded
/// random words) once per byte order and disassembles it with the real objdump. Two objdump runs per byte
/// order: the coverage with <c>-M raw,power9,any</c> (power9 first, then any dialect, so the pre-v3.0
/// <c>mftb</c> encoding reads as mftb rather than <c>.long</c>); the illegal and random words with
/// <c>-M raw,power9</c> only, because "any" would read some of them as instructions of other families
/// (BookE <c>svc</c>, POWER10 <c>lxvp</c>, ...).
/// </summary>
public sealed partial class DecoderCoverageFixture
{
    /// <summary>Words the machine must treat as illegal; objdump -M raw,power9 must print each as .long.</summary>
    public static readonly uint[] IllegalWords =
    [
        0x00000000, // primary 0
        0x00dddd00, // primary 0 with junk
        0x04000000, // primary 1
        0x14000000, // primary 5
        0x44000000, // sc without the mandatory bit 30
        0x7c000002, // primary 31, XO 1
        0x7c0007fe, // primary 31, XO 1023
        0x7c000496, // mulhw with OE=1 (mulh* have no OE form)
        0x7c000412, // mulhdu with OE=1
        0x78000014, // primary 30, MDS XO 10
        0x78000016, // primary 30, MDS XO 11
        0x7800001e, // primary 30, MDS XO 15
        0xe8000003, // primary 58, DS XO 3
        0xf8000003, // primary 62, DS XO 3
        0x4c000002, // primary 19, XO 1
        0x4c0003fe, // primary 19, XO 511
        0xfc000002, // primary 63, XO 1
    ];

    /// <summary>
    /// Seeded random words: for every table row, words with that row's primary and extended opcode and random
    /// other fields (operands and reserved bits alike), plus fully random words.
    /// </summary>
    private static IEnumerable<uint> RandomWords()
    {
        var random = new Random(20240601);
        uint Next() => (uint)random.NextInt64(0, 1L << 32);
        foreach (var (_, _, primary, xo, _) in OpcodeTable.Rows)
        {
            for (int i = 0; i < 24; i++)
            {
                uint w = (Next() & 0x03FF_FFFF) | ((uint)primary << 26);
                if (i % 3 == 0) w &= ~1u; // many fields only allow Rc = 0
                uint x = (uint)Math.Abs(xo);
                yield return xo == -1 ? w : primary switch
                {
                    30 when xo < 4 => (w & ~(7u << 2)) | (x << 2),
                    30 => (w & ~(15u << 1)) | (x << 1),
                    58 or 62 => (w & ~3u) | x,
                    31 when xo < 0 => (w & ~(31u << 1)) | (x << 1),
                    _ => (w & ~(0x3FFu << 1)) | (x << 1),
                };
            }
        }
        foreach (var row in OpcodePatterns.Rows)
            for (int i = 0; i < 24; i++)
                yield return (Next() & ~row.Mask) | row.Match;
        for (int i = 0; i < 2000; i++) yield return Next();
    }

    public DecoderCoverageFixture()
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "guests", "decoder-coverage.s"));
        var extra = new StringBuilder("\n    .section .text.illegal, \"ax\"\n");
        foreach (uint w in IllegalWords) extra.Append(CultureInfo.InvariantCulture, $"    .long 0x{w:x8}\n");
        extra.Append("\n    .section .text.random, \"ax\"\n");
        foreach (uint w in RandomWords()) extra.Append(CultureInfo.InvariantCulture, $"    .long 0x{w:x8}\n");
        source += extra.ToString();

        string dir = Path.Combine(Path.GetTempPath(), "actorstep-decoder-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string s = Path.Combine(dir, "coverage.s");
            File.WriteAllText(s, source);
            Little = Disassemble(s, littleEndian: true, adjustVma: 0);
            // The big-endian object is listed at a high address so that branch targets are computed beyond 32 bits.
            Big = Disassemble(s, littleEndian: false, adjustVma: 0x1234_5678_9000);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public Listing Little { get; }
    public Listing Big { get; }

    /// <param name="Coverage">guests/decoder-coverage.s, read with -M raw,power9,any.</param>
    /// <param name="Illegal">The <see cref="IllegalWords"/>, read with -M raw,power9.</param>
    /// <param name="Random">Seeded random words, read with -M raw,power9.</param>
    public sealed record Listing(IReadOnlyList<ObjdumpLine> Coverage, IReadOnlyList<ObjdumpLine> Illegal, IReadOnlyList<ObjdumpLine> Random);

    private static Listing Disassemble(string source, bool littleEndian, ulong adjustVma)
    {
        string obj = Path.ChangeExtension(source, littleEndian ? ".le.o" : ".be.o");
        GuestAssembler.Run(GuestAssembler.Tool(littleEndian, "as"),
            $"-a64 -mpower9 {(littleEndian ? "-mlittle" : "-mbig --defsym BIG_ENDIAN=1")} -o {obj} {source}");
        string objdump = GuestAssembler.Tool(littleEndian, "objdump");
        string vma = $"--adjust-vma=0x{adjustVma:x}";
        var coverage = Parse(GuestAssembler.Run(objdump, $"-d -M raw,power9,any {vma} -j .text {obj}"), littleEndian);
        var strict = Parse(GuestAssembler.Run(objdump, $"-d -M raw,power9 {vma} -j .text.illegal -j .text.random {obj}"), littleEndian);
        return new Listing(coverage, strict.Where(l => l.Section == ".text.illegal").ToList(), strict.Where(l => l.Section == ".text.random").ToList());
    }

    [GeneratedRegex(@"^\s*([0-9a-f]+):\t([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) \t(.*)$")]
    private static partial Regex InsnLine();

    [GeneratedRegex(@"^Disassembly of section (\S+):$")]
    private static partial Regex SectionLine();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Blanks();

    [GeneratedRegex(@"\s*<[^>]*>$")]
    private static partial Regex SymbolSuffix();

    private static List<ObjdumpLine> Parse(string listing, bool littleEndian)
    {
        var lines = new List<ObjdumpLine>();
        string section = "";
        foreach (string raw in listing.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            var sec = SectionLine().Match(line);
            if (sec.Success) { section = sec.Groups[1].Value; continue; }
            var m = InsnLine().Match(line);
            if (!m.Success) continue;
            var bytes = new byte[4];
            for (int i = 0; i < 4; i++) bytes[i] = byte.Parse(m.Groups[2 + i].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint word = littleEndian
                ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes)
                : System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
            lines.Add(new ObjdumpLine(section, ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                word, Normalise(m.Groups[6].Value)));
        }
        return lines;
    }

    /// <summary>Drops the <c>&lt;symbol+offset&gt;</c> annotation and collapses whitespace to single spaces.</summary>
    public static string Normalise(string text) => Blanks().Replace(SymbolSuffix().Replace(text.Trim(), ""), " ");
}

public class DecoderTests(DecoderCoverageFixture fixture) : IClassFixture<DecoderCoverageFixture>
{
    /// <summary>XO-form mnemonics: each must appear plain, with '.', with 'o' and with 'o.'.</summary>
    private static readonly string[] OverflowForms =
        ["add", "addc", "adde", "addme", "addze", "subf", "subfc", "subfe", "subfme", "subfze", "neg",
         "mullw", "mulld", "divw", "divwu", "divd", "divdu"];

    /// <summary>Other mnemonics with a record form: each must appear with '.' too.</summary>
    private static readonly string[] RecordForms =
        ["mulhw", "mulhwu", "mulhd", "mulhdu", "and", "andc", "or", "orc", "xor", "nand", "nor", "eqv",
         "extsb", "extsh", "extsw", "cntlzw", "cntlzd", "rlwinm", "rlwnm", "rlwimi",
         "rldicl", "rldicr", "rldic", "rldimi", "rldcl", "rldcr",
         "slw", "srw", "sraw", "srawi", "sld", "srd", "srad", "sradi", "fmr"];

    /// <summary>Specific encodings the brief singles out; each must be in the coverage verbatim.</summary>
    private static readonly string[] RequiredTexts =
        ["mfocrf r3,128", "mtocrf 1,r31", "mtcrf 1,r31", "mtcrf 255,r3", "mfcr r3,-1", "mtmsrd r3,1", "mtmsrd r3,0",
         "mtmsr r31,1", "sc 1", "sc 0", "sradi r3,r4,32", "sradi. r31,r0,63", "rldicl r3,r4,33,0", "rldicl. r31,r0,63,63",
         "rldicr. r5,r6,32,32", "rldic r3,r4,63,1", "rldimi r3,r4,0,33", "rldcl r3,r4,r5,47", "rldcr. r31,r0,r1,32",
         "lwarx r31,0,r1,1", "mftb r3,268", "addi r3,0,16", "lwz r5,-8(0)", "sync 2"];

    [Fact]
    public void Every_supported_mnemonic_decodes_as_objdump_reads_it_little_endian() =>
        AssertAgreesWithObjdump(fixture.Little.Coverage);

    [Fact]
    public void Every_supported_mnemonic_decodes_as_objdump_reads_it_big_endian() =>
        AssertAgreesWithObjdump(fixture.Big.Coverage);

    [Fact]
    public void Both_byte_orders_assemble_the_same_instruction_words()
    {
        // BE has lmw/stmw and the string instructions in addition (gas rejects them little-endian); otherwise the words are identical.
        var big = fixture.Big.Coverage.Select(l => l.Word)
            .Where(w => w >> 26 is not (46 or 47) && OpcodeTable.Decode(w) is not (Op.Lswi or Op.Lswx or Op.Stswi or Op.Stswx)).ToArray();
        var little = fixture.Little.Coverage.Select(l => l.Word).ToArray();
        // Relative branches encode the same displacement, so the words match even though the listing addresses differ.
        Assert.Equal(little, big);
    }

    [Fact]
    public void Coverage_source_exercises_every_op_row_record_and_overflow_form()
    {
        var lines = fixture.Big.Coverage;
        var ops = lines.Select(l => OpcodeTable.Decode(l.Word)).ToHashSet();
        var missingOps = Enum.GetValues<Op>().Where(op => op != Op.Illegal && !ops.Contains(op)).ToList();
        Assert.True(missingOps.Count == 0, "ops not in the coverage source: " + string.Join(", ", missingOps));

        var littleOps = fixture.Little.Coverage.Select(l => OpcodeTable.Decode(l.Word)).ToHashSet();
        var missingLittle = Enum.GetValues<Op>().Where(op => op is not (Op.Illegal or Op.Lmw or Op.Stmw or Op.Lswi or Op.Lswx or Op.Stswi or Op.Stswx) && !littleOps.Contains(op)).ToList();
        Assert.True(missingLittle.Count == 0, "ops not in the little-endian coverage: " + string.Join(", ", missingLittle));

        var mnemonics = lines.Select(l => l.Mnemonic).ToHashSet();
        var required = OpcodeTable.Rows.Select(r => r.Mnemonic).Concat(OpcodePatterns.Rows.Select(r => r.Mnemonic))
            .Concat(["mfocrf", "mtocrf"])
            .Concat(OverflowForms.SelectMany(m => new[] { m, m + ".", m + "o", m + "o." }))
            .Concat(RecordForms.SelectMany(m => new[] { m, m + "." }))
            .Distinct();
        var missing = required.Where(m => !mnemonics.Contains(m)).ToList();
        Assert.True(missing.Count == 0, "mnemonics not in the coverage source: " + string.Join(", ", missing));

        var texts = lines.Select(l => l.Text).ToHashSet();
        var missingTexts = RequiredTexts.Where(t => !texts.Contains(t)).ToList();
        Assert.True(missingTexts.Count == 0, "encodings not in the coverage source: " + string.Join(" | ", missingTexts));

        // Every row's (primary, XO) is hit by some word, so CacheHint's five encodings are each covered.
        var words = lines.Select(l => l.Word).ToList();
        var unhit = OpcodeTable.Rows.Where(r => !words.Any(w => RowMatches(r.Primary, r.Xo, w))).Select(r => r.Mnemonic)
            .Concat(OpcodePatterns.Rows.Where(r => !words.Any(w => (w & r.Mask) == r.Match)).Select(r => r.Mnemonic)).ToList();
        Assert.True(unhit.Count == 0, "table rows no coverage word encodes: " + string.Join(", ", unhit));
    }

    [Fact]
    public void Words_objdump_prints_as_long_decode_as_illegal()
    {
        foreach (var listing in new[] { fixture.Little, fixture.Big })
        {
            Assert.Equal(DecoderCoverageFixture.IllegalWords, listing.Illegal.Select(l => l.Word).ToArray());
            foreach (var line in listing.Illegal)
            {
                Assert.Equal($".long 0x{line.Word:x}", line.Text);
                Assert.Equal(Op.Illegal, OpcodeTable.Decode(line.Word));
                Assert.Equal(line.Text, Disassembler.Format(line.Word, line.Address));
            }
        }
    }

    [Fact]
    public void Random_words_that_objdump_reads_as_a_supported_mnemonic_decode_the_same()
    {
        // The spellings objdump uses for the coverage source are exactly the instructions the machine supports.
        // Wherever objdump reads a random word as one of them, the decoder must agree with it exactly (and in
        // particular not call it illegal). The converse is deliberately not asserted: the decoder ignores
        // reserved fields and accepts invalid forms (update loads with RA = 0 or RA = RT, bc with reserved BO
        // values, Rc = 1 on X forms without a record form, mtocrf with several FXM bits, ...), which the ISA
        // leaves boundedly undefined and objdump prints as .long.
        var supported = fixture.Big.Coverage.Select(l => l.Mnemonic).ToHashSet();
        foreach (var listing in new[] { fixture.Little, fixture.Big })
        {
            Assert.True(listing.Random.Count > 5000, $"only {listing.Random.Count} random words disassembled");
            var agreeing = listing.Random.Where(l => supported.Contains(l.Mnemonic)).ToList();
            Assert.True(agreeing.Count > 2000, $"only {agreeing.Count} random words read as supported instructions");
            AssertAgreesWithObjdump(agreeing, minimum: 0);
        }
    }

    private static void AssertAgreesWithObjdump(IReadOnlyList<ObjdumpLine> lines, int minimum = 500)
    {
        Assert.True(lines.Count > minimum, $"only {lines.Count} instructions disassembled");
        var failures = new List<string>();
        foreach (var line in lines)
        {
            Op op = OpcodeTable.Decode(line.Word);
            string ours = Disassembler.Format(line.Word, line.Address);
            if (op == Op.Illegal || ours != line.Text)
                failures.Add($"{line}  <- ours: {ours} ({op})");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {lines.Count} words disagree with objdump:\n" + string.Join("\n", failures));
    }

    private static bool RowMatches(int primary, int xo, uint w)
    {
        if (w >> 26 != (uint)primary) return false;
        if (xo == -1) return true;
        int x10 = (int)(w >> 1) & 0x3FF;
        return primary switch
        {
            30 when xo < 4 => ((w >> 2) & 7) == xo,
            30 => ((w >> 1) & 15) == xo,
            58 or 62 => (w & 3) == xo,
            31 when xo < 0 => (x10 & 31) == -xo,
            31 => x10 == xo || x10 == (xo | 512),
            _ => x10 == xo,
        };
    }
}
