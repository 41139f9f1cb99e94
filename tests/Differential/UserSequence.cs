using System.Globalization;
using System.Text;

namespace ActorStep.Tests.Differential;

/// <summary>
/// One unit of a generated program: a few lines of assembly that belong together (an instruction and the
/// set-up of its address register, a load-reserve/store-conditional pair, a CTR loop). Forward branches
/// only land on block boundaries, so a block is never entered in the middle; the shrinker removes whole
/// blocks. <c>{T}</c> in a line stands for the label of block <see cref="Target"/> (or the end).
/// </summary>
internal sealed record Block(int Id, string[] Lines, int Target = -1);

/// <summary>A generated user-mode program: fixed prologue (register values, CR, XER, CTR), body blocks, scratch bytes.</summary>
internal sealed record UserProgram(int Seed, bool LittleEndian, string[] Prologue, IReadOnlyList<Block> Blocks, byte[] Scratch)
{
    /// <summary>Where .text is linked: low enough to sit inside the simulated RAM, high enough for Linux to map it.</summary>
    public const ulong TextAddress = 0x100000;
    public const int ScratchSize = 256;

    public UserProgram WithBlocks(IReadOnlyList<Block> blocks) => this with { Blocks = blocks };

    public int InstructionCount => Prologue.Length + Blocks.Sum(b => b.Lines.Length);

    /// <summary>The assembly source (GNU as, -mregnames): ELFv2 so that qemu-user takes e_entry as a code address in both byte orders.</summary>
    public string Source()
    {
        var sb = new StringBuilder();
        sb.Append("    .abiversion 2\n    .text\n    .globl _start\n_start:\n");
        foreach (string l in Prologue) sb.Append("    ").Append(l).Append('\n');
        var ids = Blocks.Select(b => b.Id).ToArray();
        foreach (var b in Blocks)
        {
            sb.Append('b').Append(b.Id).Append(":\n");
            string target = "end";
            if (b.Target >= 0)
            {
                int next = Array.FindIndex(ids, id => id >= b.Target);
                if (next >= 0) target = "b" + ids[next];
            }
            foreach (string l in b.Lines)
                sb.Append(l.EndsWith(':') ? "" : "    ").Append(l.Replace("{T}", target)).Append('\n');
        }
        sb.Append("end:\n    li r0, 1\n    sc\n    .data\n    .balign 256\nscratch:\n");
        for (int i = 0; i < Scratch.Length; i += 16)
            sb.Append("    .byte ").AppendJoin(", ", Scratch.Skip(i).Take(16).Select(x => "0x" + x.ToString("x2"))).Append('\n');
        return sb.ToString();
    }

    public override string ToString() => $"seed {Seed} ({(LittleEndian ? "LE" : "BE")}), {Blocks.Count} blocks:\n" + Source();
}

/// <summary>
/// Fields the Power ISA leaves undefined, which the generator either avoids or makes visible to the
/// comparison with a label. This is not a QEMU departure: both sides are right whatever they put there.
/// </summary>
internal static class IsaUndefined
{
    /// <summary>
    /// Book I §3.3.9: in 64-bit mode mulhw/mulhwu/divw/divwu leave RT[0:31] undefined (and CR0's LT/GT/EQ of
    /// their record forms, which the generator therefore never emits). The instruction carries a label
    /// <c>hiundef_rN_K</c>; the comparison after it ignores the high word of rN, and the next instruction
    /// (<c>clrldi rN,rN,32</c>) makes it defined again.
    /// </summary>
    public const string HighWordLabel = "hiundef_r";

    /// <summary>
    /// Book I §3.3.9: a divisor of 0 (and 0x8000…/−1) leaves the quotient undefined. The generator makes
    /// every divisor even and nonzero first (<c>ori rB,rB,2; rldicr rB,rB,0,62</c>): never 0, never −1.
    /// Book II §4.4.2: a store conditional to another address or size than the reservation's is undefined
    /// in whether it stores; the generator pairs them exactly.
    /// </summary>
    public static readonly string[] DivisorGuard = ["ori {B}, {B}, 2", "rldicr {B}, {B}, 0, 62"];
}

/// <summary>Random straight-line and branching programs over the unprivileged instructions the machine implements.</summary>
internal static class UserSequenceGenerator
{
    // r14 = scratch + 128 (base), r15 = copy of it for update forms, r16 = index/address/branch-target register.
    private const string Base = "r14", Upd = "r15", Idx = "r16";
    internal static readonly string[] Pool =
        ["r0", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
         "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31"];

    private static readonly ulong[] Special =
        [0, 1, 2, ulong.MaxValue, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFF80000000, 0x8000000000000000,
         0x7FFFFFFFFFFFFFFF, 0x100000000, 0xFFFFFFFF00000000, 0x00000000FFFF0000, 31, 32, 63, 64];

    public static UserProgram Generate(int seed, bool littleEndian, int blocks)
    {
        var r = new Random(seed);
        var prologue = new List<string> { $"lis {Base}, (scratch+128)@ha", $"addi {Base}, {Base}, (scratch+128)@l" };
        foreach (string reg in Pool) prologue.AddRange(LoadConstant(reg, Value(r)));
        prologue.AddRange(LoadConstant("r16", (ulong)r.NextInt64()));
        prologue.Add("mtcrf 0xff, r16");
        prologue.AddRange(LoadConstant("r16", XerValue(r)));
        prologue.Add("mtxer r16");
        prologue.AddRange(LoadConstant("r16", Value(r)));
        prologue.Add("mtctr r16");
        var scratch = new byte[UserProgram.ScratchSize];
        r.NextBytes(scratch);

        var list = new List<Block>();
        var g = new Gen(r, littleEndian);
        if (r.Next(2) == 0) list.Add(new Block(0, g.StoreConditionalWithoutReservation()));
        while (list.Count < blocks)
        {
            int id = list.Count;
            list.Add(g.Next(id));
        }
        return new UserProgram(seed, littleEndian, prologue.ToArray(), list, scratch);
    }

    private static ulong Value(Random r) => r.Next(6) switch
    {
        0 or 1 => Special[r.Next(Special.Length)],
        2 => (ulong)(long)r.Next(-64, 64),
        3 => (ulong)(long)(int)r.NextInt64(),
        4 => (uint)r.NextInt64(),
        _ => (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63),
    };

    /// <summary>Architected XER bits only: SO, OV, CA, OV32, CA32 and the byte count (Book I §3.2.2).</summary>
    private static ulong XerValue(Random r) =>
        (ulong)(r.Next(2) << 31 | r.Next(2) << 30 | r.Next(2) << 29 | r.Next(2) << 19 | r.Next(2) << 18 | r.Next(128));

    internal static IEnumerable<string> LoadConstant(string reg, ulong v)
    {
        yield return $"lis {reg}, {(short)(v >> 48)}";
        yield return $"ori {reg}, {reg}, {(v >> 32) & 0xFFFF}";
        yield return $"sldi {reg}, {reg}, 32";
        yield return $"oris {reg}, {reg}, {(v >> 16) & 0xFFFF}";
        yield return $"ori {reg}, {reg}, {v & 0xFFFF}";
    }

    private sealed class Gen(Random r, bool littleEndian)
    {
        private int _undef, _reservation;
        private string P() => Pool[r.Next(Pool.Length)];
        private string PNot0() { string p; do p = P(); while (p == "r0"); return p; }
        private string Rc() => r.Next(2) == 0 ? "" : ".";
        private string OeRc() => new[] { "", "o", ".", "o." }[r.Next(4)];
        private int Cr() => r.Next(8);
        private int Bit() => r.Next(32);

        public Block Next(int id)
        {
            int k = r.Next(100);
            if (k < 30) return new Block(id, [Arithmetic()]);
            if (k < 36) return new Block(id, Divide());
            if (k < 50) return new Block(id, [RotateShift()]);
            if (k < 58) return new Block(id, [Logical()]);
            if (k < 63) return new Block(id, [Compare()]);
            if (k < 69) return new Block(id, [ConditionRegister()]);
            if (k < 72) return new Block(id, SpecialRegister());
            if (k < 86) return new Block(id, LoadStore());
            if (k < 89) return new Block(id, Reserved());
            if (k < 97) return Branch(id);
            return new Block(id, CtrLoop(id));
        }

        public string Arithmetic()
        {
            string t = P(), a = P(), b = P();
            return r.Next(12) switch
            {
                0 => $"addi {t}, {a}, {r.Next(-32768, 32768)}",
                1 => $"addis {t}, {a}, {r.Next(-32768, 32768)}",
                2 => $"addic{Rc()} {t}, {a}, {r.Next(-32768, 32768)}",
                3 => $"subfic {t}, {a}, {r.Next(-32768, 32768)}",
                4 => $"mulli {t}, {a}, {r.Next(-32768, 32768)}",
                5 or 6 or 7 => $"{new[] { "add", "addc", "adde", "subf", "subfc", "subfe", "mullw", "mulld" }[r.Next(8)]}{OeRc()} {t}, {a}, {b}",
                8 or 9 => $"{new[] { "addme", "addze", "subfme", "subfze", "neg" }[r.Next(5)]}{OeRc()} {t}, {a}",
                _ => $"{new[] { "mulhd", "mulhdu" }[r.Next(2)]}{Rc()} {t}, {a}, {b}",
            };
        }

        public string[] Divide()
        {
            string t = P(), a = P(), b = P();
            var guard = IsaUndefined.DivisorGuard.Select(l => l.Replace("{B}", b));
            int k = r.Next(6);
            if (k < 2)
            {
                string op = new[] { "divd", "divdu" }[k];
                return [.. guard, $"{op}{OeRc()} {t}, {a}, {b}"];
            }
            // 32-bit forms (and mulhw): RT[0:31] undefined in 64-bit mode, so no record form; clear it after.
            string op32 = new[] { "divw", "divwu", "mulhw", "mulhwu" }[k - 2];
            string oe = op32.StartsWith("div") && r.Next(2) == 0 ? "o" : "";
            string label = $"{IsaUndefined.HighWordLabel}{t[1..]}_{_undef++}:";
            return [.. op32.StartsWith("div") ? guard : [], label, $"{op32}{oe} {t}, {a}, {b}", $"clrldi {t}, {t}, 32"];
        }

        public string RotateShift()
        {
            string a = P(), s = P(), b = P();
            return r.Next(14) switch
            {
                0 => $"rlwinm{Rc()} {a}, {s}, {r.Next(32)}, {r.Next(32)}, {r.Next(32)}",
                1 => $"rlwnm{Rc()} {a}, {s}, {b}, {r.Next(32)}, {r.Next(32)}",
                2 => $"rlwimi{Rc()} {a}, {s}, {r.Next(32)}, {r.Next(32)}, {r.Next(32)}",
                3 => $"rldicl{Rc()} {a}, {s}, {r.Next(64)}, {r.Next(64)}",
                4 => $"rldicr{Rc()} {a}, {s}, {r.Next(64)}, {r.Next(64)}",
                5 => $"rldic{Rc()} {a}, {s}, {r.Next(64)}, {r.Next(64)}",
                6 => $"rldimi{Rc()} {a}, {s}, {r.Next(64)}, {r.Next(64)}",
                7 => $"rldcl{Rc()} {a}, {s}, {b}, {r.Next(64)}",
                8 => $"rldcr{Rc()} {a}, {s}, {b}, {r.Next(64)}",
                9 => $"srawi{Rc()} {a}, {s}, {r.Next(32)}",
                10 => $"sradi{Rc()} {a}, {s}, {r.Next(64)}",
                _ => $"{new[] { "slw", "srw", "sraw", "sld", "srd", "srad" }[r.Next(6)]}{Rc()} {a}, {s}, {b}",
            };
        }

        public string Logical()
        {
            string a = P(), s = P(), b = P();
            return r.Next(6) switch
            {
                0 => $"{new[] { "andi.", "andis.", "ori", "oris", "xori", "xoris" }[r.Next(6)]} {a}, {s}, {r.Next(65536)}",
                1 or 2 => $"{new[] { "and", "andc", "or", "orc", "xor", "nand", "nor", "eqv" }[r.Next(8)]}{Rc()} {a}, {s}, {b}",
                3 => $"{new[] { "extsb", "extsh", "extsw", "cntlzw", "cntlzd" }[r.Next(5)]}{Rc()} {a}, {s}",
                4 => $"{new[] { "popcntb", "popcntw", "popcntd" }[r.Next(3)]} {a}, {s}",
                _ => $"cmpb {a}, {s}, {b}",
            };
        }

        public string Compare()
        {
            string a = P(), b = P();
            return r.Next(6) switch
            {
                0 => $"cmpwi cr{Cr()}, {a}, {r.Next(-32768, 32768)}",
                1 => $"cmpdi cr{Cr()}, {a}, {r.Next(-32768, 32768)}",
                2 => $"cmplwi cr{Cr()}, {a}, {r.Next(65536)}",
                3 => $"cmpldi cr{Cr()}, {a}, {r.Next(65536)}",
                _ => $"{new[] { "cmpw", "cmpd", "cmplw", "cmpld" }[r.Next(4)]} cr{Cr()}, {a}, {b}",
            };
        }

        public string ConditionRegister() => r.Next(6) switch
        {
            0 or 1 => $"{new[] { "crand", "cror", "crxor", "crnand", "crnor", "creqv", "crandc", "crorc" }[r.Next(8)]} {Bit()}, {Bit()}, {Bit()}",
            2 => $"mcrf cr{Cr()}, cr{Cr()}",
            3 => $"mfcr {P()}",
            4 => $"mtcrf {r.Next(256)}, {P()}",
            _ => $"isel {P()}, {P()}, {P()}, {Bit()}",
        };

        public string[] SpecialRegister() => r.Next(6) switch
        {
            0 => [$"mtlr {P()}"],
            1 => [$"mflr {P()}"],
            2 => [$"mfctr {P()}"],
            3 => [$"mtctr {P()}"],
            4 => [$"mfxer {P()}"],
            _ => [.. LoadConstant(Idx, XerValue(r)), $"mtxer {Idx}"],
        };

        /// <summary>A displacement from r14 that keeps an access of <paramref name="size"/> inside the scratch buffer.</summary>
        private int Disp(int size, int align) => (r.Next(-128, 128 - size + 1) / align) * align;

        public string[] LoadStore()
        {
            string t = P();
            int k = r.Next(littleEndian ? 11 : 12);
            (string name, int size, int align)[] dForm =
                [("lbz", 1, 1), ("lhz", 2, 1), ("lha", 2, 1), ("lwz", 4, 1), ("ld", 8, 4), ("lwa", 4, 4),
                 ("stb", 1, 1), ("sth", 2, 1), ("stw", 4, 1), ("std", 8, 4)];
            (string name, int size)[] xForm =
                [("lbzx", 1), ("lhzx", 2), ("lhax", 2), ("lwzx", 4), ("lwax", 4), ("ldx", 8), ("lhbrx", 2), ("lwbrx", 4), ("ldbrx", 8),
                 ("stbx", 1), ("sthx", 2), ("stwx", 4), ("stdx", 8), ("sthbrx", 2), ("stwbrx", 4), ("stdbrx", 8)];
            (string name, int size, int align, bool x)[] update =
                [("lbzu", 1, 1, false), ("lhzu", 2, 1, false), ("lhau", 2, 1, false), ("lwzu", 4, 1, false), ("ldu", 8, 4, false),
                 ("stbu", 1, 1, false), ("sthu", 2, 1, false), ("stwu", 4, 1, false), ("stdu", 8, 4, false),
                 ("lbzux", 1, 1, true), ("lhzux", 2, 1, true), ("lhaux", 2, 1, true), ("lwzux", 4, 1, true), ("lwaux", 4, 1, true), ("ldux", 8, 1, true),
                 ("stbux", 1, 1, true), ("sthux", 2, 1, true), ("stwux", 4, 1, true), ("stdux", 8, 1, true)];
            switch (k)
            {
                case 0 or 1 or 2:
                {
                    var (name, size, align) = dForm[r.Next(dForm.Length)];
                    return [$"{name} {t}, {Disp(size, align)}({Base})"];
                }
                case 3 or 4 or 5:
                {
                    var (name, size) = xForm[r.Next(xForm.Length)];
                    int d = Disp(size, 1);
                    return r.Next(2) == 0
                        ? [$"li {Idx}, {d}", $"{name} {t}, {Base}, {Idx}"]
                        : [$"addi {Idx}, {Base}, {d}", $"{name} {t}, 0, {Idx}"];
                }
                case 6 or 7 or 8:
                {
                    var (name, size, align, x) = update[r.Next(update.Length)];
                    int d = Disp(size, align);
                    return x
                        ? [$"mr {Upd}, {Base}", $"li {Idx}, {d}", $"{name} {t}, {Upd}, {Idx}"]
                        : [$"mr {Upd}, {Base}", $"{name} {t}, {d}({Upd})"];
                }
                case 9:
                    return [$"addi {Idx}, {Base}, {(r.Next(2) == 0 ? -128 : 0)}", $"dcbz 0, {Idx}"];
                case 10:
                    // Barriers and the VMX data-stream hints (no-ops on POWER9, QEMU and the machine).
                    return [new[] { "sync", "lwsync", "isync", "eieio", "dssall", "dss 1", $"dst {Base}, {Idx}, 2", $"dststt {Base}, {Idx}, 3" }[r.Next(8)]];
                default:
                {
                    // Big-endian only: lmw/stmw in little-endian mode take an alignment interrupt (Book I §3.3.6).
                    int rt = r.Next(24, 32);
                    int d = (r.Next(-128, 128 - 4 * (32 - rt) + 1) / 4) * 4;
                    return [$"{(r.Next(2) == 0 ? "lmw" : "stmw")} r{rt}, {d}({Base})"];
                }
            }
        }

        /// <summary>lwarx/ldarx … stwcx./stdcx. to the same address and size, sometimes a second (failing) stcx.</summary>
        public string[] Reserved()
        {
            int size = r.Next(2) == 0 ? 4 : 8;
            string l = size == 4 ? "lwarx" : "ldarx", s = size == 4 ? "stwcx." : "stdcx.";
            int d = Disp(size, size);
            bool indexed = r.Next(2) == 0;
            var lines = new List<string> { indexed ? $"li {Idx}, {d}" : $"addi {Idx}, {Base}, {d}" };
            string ra = indexed ? Base : "0";
            int k = _reservation++;
            lines.Add($"{QemuDepartures.ReservationBeginLabel}{k}:");
            lines.Add($"{l} {P()}, {ra}, {Idx}");
            for (int n = r.Next(3); n > 0; n--) lines.Add(Arithmetic());
            lines.Add($"{s} {P()}, {ra}, {Idx}");
            lines.Add($"{QemuDepartures.ReservationEndLabel}{k}:");
            if (r.Next(3) == 0) lines.Add($"{s} {P()}, {ra}, {Idx}");
            return lines.ToArray();
        }

        public string[] StoreConditionalWithoutReservation()
        {
            int size = r.Next(2) == 0 ? 4 : 8;
            return [$"addi {Idx}, {Base}, {Disp(size, size)}", $"{(size == 4 ? "stwcx." : "stdcx.")} {P()}, 0, {Idx}"];
        }

        private static readonly int[] ConditionalBo = [4, 12, 20, 0, 2, 8, 10, 16, 18];
        private static readonly int[] NoCtrBo = [4, 12, 20];

        public Block Branch(int id)
        {
            int target = id + 1 + r.Next(6);
            string lk = r.Next(3) == 0 ? "l" : "";
            return r.Next(5) switch
            {
                0 => new Block(id, [$"b{lk} {{T}}"], target),
                1 or 2 => new Block(id, [$"bc{lk} {ConditionalBo[r.Next(ConditionalBo.Length)]}, {Bit()}, {{T}}"], target),
                3 => new Block(id, [$"lis {Idx}, {{T}}@ha", $"addi {Idx}, {Idx}, {{T}}@l", $"mtlr {Idx}",
                    $"bclr{lk} {ConditionalBo[r.Next(ConditionalBo.Length)]}, {Bit()}"], target),
                _ => new Block(id, [$"lis {Idx}, {{T}}@ha", $"addi {Idx}, {Idx}, {{T}}@l", $"mtctr {Idx}",
                    $"bcctr{lk} {NoCtrBo[r.Next(NoCtrBo.Length)]}, {Bit()}"], target),
            };
        }

        /// <summary>A counted loop: CTR = 1..4, a body of straight-line instructions, bdnz back.</summary>
        public string[] CtrLoop(int id)
        {
            var lines = new List<string> { $"li {Idx}, {r.Next(1, 5)}", $"mtctr {Idx}", $"loop{id}:" };
            for (int n = r.Next(1, 4); n > 0; n--)
                lines.Add(r.Next(3) switch { 0 => Arithmetic(), 1 => RotateShift(), _ => Logical() });
            lines.Add($"bdnz loop{id}");
            return lines.ToArray();
        }
    }
}
