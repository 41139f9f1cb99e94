using System.Text;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Machine.Cpu;
using ActorStep.Machine.Mmu;
using ActorStep.Tests.Machine.Mmu;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine;

/// <summary>
/// The block compiler (MachineOptions.CompileBlocks) runs guest code exactly as the interpreter does: every program here runs
/// on two machines, one compiling every block at its first arrival and one without the compiler, and both must end in the same
/// registers, memory, timebase and retired count, whatever stops them (a budget, a fault, a breakpoint, a watchpoint).
/// </summary>
public class BlockCompilerTests
{
    private const ulong Scratch = 0x80000;
    private const int ScratchBytes = 0x1000;

    private static TestMachine Machine(string source, bool le, bool compile) =>
        new(source, le, options: o => o with { CompileBlocks = compile, BlockCompileThreshold = 0, CompileInBackground = false, BlockHostAccessAfter = 0 });

    /// <summary>A loop of <paramref name="body"/> run <paramref name="iterations"/> times (CTR), then <c>done: b done</c>.
    /// r2 = the scratch memory (or what <paramref name="start"/> sets it to), r21 = r2 + 256 again at each iteration (the base of
    /// the update forms), r31 an index.</summary>
    private static string Loop(string body, int iterations = 40, string? start = null) => $"""
            .globl _start
        _start:
        {start ?? $"    lis 2, {Scratch >> 16}"}
            li 30, {iterations}
            mtctr 30
        loop:
            addi 21, 2, 256
            li 31, 72
        {body}
            bdnz loop
        done:
            b done
        """;

    private static void SameState(TestMachine compiled, TestMachine plain, string context)
    {
        Assert.True(compiled.Vm.CompiledBlockStatistics is null or { Failed: 0 }, $"{context}: a block failed to compile");
        var diff = compiled.State.Differences(plain.State);
        Assert.True(diff.Count == 0, $"{context}: {string.Join("; ", diff)}");
        Assert.Equal(plain.Vcpu.InstructionsRetired, compiled.Vcpu.InstructionsRetired);
        Assert.Equal(Bytes(plain, Scratch - ScratchBytes, 3 * ScratchBytes), Bytes(compiled, Scratch - ScratchBytes, 3 * ScratchBytes));
    }

    /// <summary>Runs both machines in the same quanta (of a few lengths, so budgets end before, inside and after blocks) until
    /// the compiled one is at <paramref name="done"/> (at most <paramref name="maxQuanta"/>), comparing their exits, states and,
    /// when given, the 4 KiB at real address <paramref name="data"/> after each; then asserts it got there. With no
    /// <paramref name="done"/> (a guest that ends in an interrupt), <paramref name="maxQuanta"/> quanta.</summary>
    private static void RunSideBySide(TestMachine compiled, TestMachine plain, ulong? done, string context, int maxQuanta = 400,
        ulong? data = null)
    {
        for (int q = 0; compiled.State.Nip != done && q < maxQuanta; q++)
        {
            long quantum = new[] { 1, 7, 61, 250, 1000 }[q % 5];
            var a = compiled.Run(quantum);
            var b = plain.Run(quantum);
            Assert.True(a == b, $"{context}, quantum {q}: {a} vs {b}");
            SameState(compiled, plain, $"{context}, quantum {q}");
            if (data is { } ra) Assert.Equal(Bytes(plain, ra, 0x1000), Bytes(compiled, ra, 0x1000));
        }
        if (done is { } end) Assert.Equal(end, compiled.State.Nip);
    }

    /// <summary>A compiled and an interpreting machine for <paramref name="source"/> with the data page (random bytes from
    /// <paramref name="seed"/>) mapped at quadrant 3's page 1 for reading and writing in privileged state, and
    /// <paramref name="more"/> leaves.</summary>
    private static (TestMachine Compiled, TestMachine Plain) WithDataPage(string source, bool le, int seed,
        params (int Page, ulong RealAddress, ulong Leaf)[] more)
    {
        var pair = (Machine(source, le, compile: true), Machine(source, le, compile: false));
        foreach (var m in new[] { pair.Item1, pair.Item2 })
        {
            var data = new byte[0x1000];
            new Random(seed).NextBytes(data);
            m.Vm.WriteMemory(DataPage, data);
            RadixGuest.Tables(m.Vm, [(1, DataPage, RadixGuest.ReadWrite), .. more]);
        }
        return pair;
    }

    private static byte[] Bytes(TestMachine m, ulong ra, int length)
    {
        var b = new byte[length];
        m.Vm.ReadMemory(ra, b);
        return b;
    }

    private static long InBlocks(TestMachine m) => ((SimulatedVcpu)m.Vm.GetVcpu(0)).InstructionsRetiredInBlocks;

    // --- Random straight-line blocks from a fixed table of instruction forms. ---

    private static readonly int[] Data = [0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];

    private static readonly Func<Random, string>[] Forms =
    [
        r => $"{Pick(r, "add", "addc", "adde", "subf", "subfc", "subfe", "mullw", "mulld", "divw", "divwu", "divd", "divdu")}{Maybe(r, "o")}{Maybe(r, ".")} {D(r)},{D(r)},{D(r)}",
        r => $"{Pick(r, "mulhw", "mulhwu", "mulhd", "mulhdu")}{Maybe(r, ".")} {D(r)},{D(r)},{D(r)}",
        r => $"{Pick(r, "neg", "addme", "addze", "subfme", "subfze")}{Maybe(r, "o")}{Maybe(r, ".")} {D(r)},{D(r)}",
        r => $"{Pick(r, "and", "andc", "or", "orc", "xor", "nand", "nor", "eqv", "slw", "srw", "sraw", "sld", "srd", "srad")}{Maybe(r, ".")} {D(r)},{D(r)},{D(r)}",
        r => $"cmpb {D(r)},{D(r)},{D(r)}",
        r => $"{Pick(r, "extsb", "extsh", "extsw", "cntlzw", "cntlzd")}{Maybe(r, ".")} {D(r)},{D(r)}",
        r => $"{Pick(r, "popcntb", "popcntw", "popcntd")} {D(r)},{D(r)}",
        r => $"{Pick(r, "addi", "addis", "addic", "addic.", "subfic", "mulli")} {D(r)},{D(r)},{r.Next(-32768, 32768)}",
        r => $"{Pick(r, "andi.", "andis.", "ori", "oris", "xori", "xoris")} {D(r)},{D(r)},{r.Next(65536)}",
        r => $"{Pick(r, "cmpw", "cmpd", "cmplw", "cmpld")} {r.Next(8)},{D(r)},{D(r)}",
        r => $"{Pick(r, "cmpwi", "cmpdi")} {r.Next(8)},{D(r)},{r.Next(-32768, 32768)}",
        r => $"{Pick(r, "cmplwi", "cmpldi")} {r.Next(8)},{D(r)},{r.Next(65536)}",
        r => $"{Pick(r, "rlwinm", "rlwimi")}{Maybe(r, ".")} {D(r)},{D(r)},{r.Next(32)},{r.Next(32)},{r.Next(32)}",
        r => $"rlwnm{Maybe(r, ".")} {D(r)},{D(r)},{D(r)},{r.Next(32)},{r.Next(32)}",
        r => $"{Pick(r, "rldicl", "rldicr", "rldic", "rldimi")}{Maybe(r, ".")} {D(r)},{D(r)},{r.Next(64)},{r.Next(64)}",
        r => $"{Pick(r, "rldcl", "rldcr")}{Maybe(r, ".")} {D(r)},{D(r)},{D(r)},{r.Next(64)}",
        r => $"srawi{Maybe(r, ".")} {D(r)},{D(r)},{r.Next(32)}",
        r => $"sradi{Maybe(r, ".")} {D(r)},{D(r)},{r.Next(64)}",
        r => $"{Pick(r, "crand", "cror", "crxor", "crnand", "crnor", "creqv", "crandc", "crorc")} {r.Next(32)},{r.Next(32)},{r.Next(32)}",
        r => $"mcrf {r.Next(8)},{r.Next(8)}",
        r => $"isel {D(r)},{D(r)},{D(r)},{r.Next(32)}",
        r => $"mfcr {D(r)}",
        r => $"mtcrf {r.Next(256)},{D(r)}",
        r => $"mfocrf {D(r)},{1 << r.Next(8)}",
        r => $"mtocrf {1 << r.Next(8)},{D(r)}",
        r => $"{Pick(r, "mflr", "mfxer", "mfctr")} {D(r)}",
        r => $"{Pick(r, "mtlr", "mtxer")} {D(r)}",
        r => $"{Pick(r, "lbz", "lhz", "lha", "lwz")} {D(r)},{r.Next(0, 400)}(2)",
        r => $"{Pick(r, "ld", "lwa")} {D(r)},{4 * r.Next(0, 100)}(2)",
        r => $"{Pick(r, "lbzu", "lhzu", "lhau", "lwzu")} {DNot0(r)},{r.Next(-64, 64)}(21)",
        r => $"ldu {DNot0(r)},{4 * r.Next(-16, 16)}(21)",
        r => $"{Pick(r, "lbzx", "lhzx", "lhax", "lwzx", "lwax", "ldx", "lhbrx", "lwbrx", "ldbrx")} {D(r)},2,31",
        r => $"{Pick(r, "lbzux", "lhzux", "lhaux", "lwzux", "lwaux", "ldux")} {DNot0(r)},21,31",
        r => $"{Pick(r, "stb", "sth", "stw")} {D(r)},{r.Next(0, 400)}(2)",
        r => $"std {D(r)},{4 * r.Next(0, 100)}(2)",
        r => $"{Pick(r, "stbu", "sthu", "stwu")} {D(r)},{r.Next(-64, 64)}(21)",
        r => $"stdu {D(r)},{4 * r.Next(-16, 16)}(21)",
        r => $"{Pick(r, "stbx", "sthx", "stwx", "stdx", "sthbrx", "stwbrx", "stdbrx", "stbux", "sthux", "stwux", "stdux")} {D(r)},{(r.Next(2) == 0 ? 2 : 21)},31",
        // A conditional branch over the next instruction: a basic block ends inside the compiled block.
        r => $"b{Pick(r, "lt", "gt", "eq", "so", "ge", "le", "ne", "ns")} {r.Next(8)}, 1f\n    addi {D(r)},{D(r)},{r.Next(-100, 100)}\n1:",
        // The position-independent idiom (bcl 20,31 to the next word: LR set, through the handler) and traps that never trap.
        r => "bcl 20, 31, 1f\n1:",
        r => $"{Pick(r, "twi", "tdi")} 0, {D(r)}, {r.Next(-100, 100)}",
    ];

    private static string Pick(Random r, params string[] names) => names[r.Next(names.Length)];
    private static string Maybe(Random r, string suffix) => r.Next(2) == 0 ? suffix : "";
    private static int D(Random r) => Data[r.Next(Data.Length)];
    private static int DNot0(Random r) => Data[1 + r.Next(Data.Length - 1)];

    /// <summary><paramref name="length"/> random instructions; with <paramref name="keepLr"/>, none that writes LR (for code
    /// that calls and returns).</summary>
    private static string RandomBody(Random r, int length, bool keepLr = false) =>
        string.Join("\n", Enumerable.Range(0, length).Select(_ =>
        {
            string form;
            do form = Forms[r.Next(Forms.Length)](r);
            while (keepLr && (form.StartsWith("mtlr", StringComparison.Ordinal) || form.StartsWith("bcl", StringComparison.Ordinal)));
            return "    " + form;
        }));

    private static void RandomRegisters(TestMachine m, int seed)
    {
        var r = new Random(seed);
        m.Update(s =>
        {
            foreach (int g in Data) s.Gpr[g] = (ulong)r.NextInt64() ^ ((ulong)r.Next(4) << 62);
            s.Cr = (uint)r.Next();
            s.Xer = (ulong)r.Next(32) << 29 | (r.Next(2) == 0 ? 0 : 1UL << 18 | 1UL << 19);
            s.Lr = (ulong)r.NextInt64();
        });
        var bytes = new byte[3 * ScratchBytes];
        r.NextBytes(bytes);
        m.Vm.WriteMemory(Scratch - ScratchBytes, bytes);
    }

    /// <summary>The program on a machine that compiles every block at its first arrival and on one without the compiler, both
    /// with <see cref="RandomRegisters"/> of <paramref name="seed"/>.</summary>
    private static (TestMachine Compiled, TestMachine Plain) RandomPair(string source, bool le, int seed)
    {
        var compiled = Machine(source, le, compile: true);
        var plain = Machine(source, le, compile: false);
        RandomRegisters(compiled, seed);
        RandomRegisters(plain, seed);
        return (compiled, plain);
    }

    public static IEnumerable<object[]> Seeds() =>
        from seed in Enumerable.Range(1, 12) from le in new[] { true, false } select new object[] { seed, le };

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_integer_blocks_end_in_the_interpreters_state_at_every_quantum(int seed, bool le)
    {
        var r = new Random(seed);
        string source = Loop(RandomBody(r, r.Next(8, 70)));
        var (compiled, plain) = RandomPair(source, le, seed);
        ulong done = compiled.Sym("done");
        RunSideBySide(compiled, plain, done, $"seed {seed} le {le}");
        Assert.True(InBlocks(compiled) > 0, $"seed {seed}: no block ran");
        Assert.Equal(0, InBlocks(plain));
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    public void Branches_and_reads_of_CR_fields_compared_in_earlier_basic_blocks_see_those_compares(int seed, bool le)
    {
        // Fields 3 and 6 are compared, then read by branches two and three basic blocks later (no call between), by an
        // exit (the budget), by mfcr and across the loop's back edge (bso 6 at the top of the next iteration); XER[SO] set
        // in some seeds' registers shows in the SO bits.
        string source = Loop("""
                bso 6, 5f
                addi 11, 11, 1
            5:  cmpd 3, 4, 5
                cmpld 6, 5, 4
                beq 0, 1f
                addi 6, 6, 1
            1:  bgt 3, 2f
                addi 7, 7, 1
            2:  blt 6, 3f
                addi 8, 8, 3
            3:  bso 3, 4f
                addi 9, 9, 1
            4:  addi 4, 4, 0x1234
                rldicl 5, 5, 13, 0
                xor 5, 5, 4
                cmpwi 0, 9, 0
                ble 6, 6f
                mfcr 10
            6:  std 10, 0(2)
            """);
        var (compiled, plain) = RandomPair(source, le, seed);
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"seed {seed} le {le}");
        Assert.True(InBlocks(compiled) > 0, $"seed {seed}: no block ran");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_load_that_faults_in_the_middle_of_a_block_raises_the_interpreters_data_storage_interrupt(bool le)
    {
        // r5 walks 4 MiB a time from the scratch memory: at the 5th iteration it is beyond the 16 MiB of RAM.
        string source = Loop("""
                addi 3, 3, 1
                ld 4, 0(5)
            fault:
                ld 6, 0(5)
                add 7, 7, 6
                addis 5, 5, 64
                mulld 8, 7, 3
            """);
        var runs = new[] { Machine(source, le, compile: true), Machine(source, le, compile: false) };
        foreach (var m in runs)
        {
            m.SetGpr(5, Scratch);
            m.Vm.WriteMemory(0x300, BitConverter.GetBytes(le ? 0x48000000u : 0x00000048u)); // the handler: b .
        }
        runs[0].Run(200);
        runs[1].Run(200);
        SameState(runs[0], runs[1], "after the fault");
        var s = runs[0].State;
        Assert.Equal(0x300UL, s.Nip);
        Assert.Equal(runs[0].Sym("fault") - 4, s.Srr0);
        Assert.Equal(Scratch + (4UL << 22), s.Dar);
        Assert.True(InBlocks(runs[0]) > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_budget_that_ends_inside_a_block_leaves_the_block_to_the_interpreter(bool le)
    {
        // The loop's block: addi, li, 30 addi, bdnz = 33 instructions; _start's 3 lead into it.
        string body = string.Join("\n", Enumerable.Range(0, 30).Select(k => $"    addi {3 + k % 10}, {3 + (k + 3) % 10}, {k}"));
        var compiled = Machine(Loop(body), le, compile: true);
        var plain = Machine(Loop(body), le, compile: false);
        // The block is compiled at the loop's first arrival by its branch, run from the next.
        foreach (var m in new[] { compiled, plain }) m.Run(3 + 3 * 33);
        Assert.Equal(compiled.Sym("loop"), compiled.State.Nip);
        long inBlocks = InBlocks(compiled);
        Assert.Equal(33, inBlocks);

        Assert.Equal(plain.Run(5), compiled.Run(5));
        Assert.Equal(inBlocks, InBlocks(compiled));
        SameState(compiled, plain, "5 instructions into the block");
        Assert.Equal(compiled.Sym("loop") + 20, compiled.State.Nip);

        Assert.Equal(plain.Run(33 + 28), compiled.Run(33 + 28)); // the rest of this iteration, then the next one from the block
        Assert.Equal(inBlocks + 33, InBlocks(compiled));
        SameState(compiled, plain, "at the block's head again");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_breakpoint_planted_in_a_compiled_block_is_hit_at_the_next_entry(bool le)
    {
        string source = Loop("""
                addi 3, 3, 1
                mulld 4, 3, 3
            planted:
                add 5, 5, 4
                addi 6, 6, 2
            """, iterations: 100);
        var runs = new[] { Machine(source, le, compile: true), Machine(source, le, compile: false) };
        foreach (var m in runs)
        {
            m.Vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
            m.Run(60); // ten iterations: compiled, run from the block since
        }
        Assert.True(InBlocks(runs[0]) > 0);
        foreach (var m in runs) m.Vm.WriteMemory(m.Sym("planted"), le ? BitConverter.GetBytes(SimulatedVcpu.DebugInstruction)
            : BitConverter.GetBytes(SimulatedVcpu.DebugInstruction).Reverse().ToArray());
        var exits = runs.Select(m => m.Run(1000)).ToArray();
        Assert.Equal(ExitReason.Debug, exits[0].Reason);
        Assert.Equal(runs[0].Sym("planted"), exits[0].Address);
        Assert.Equal(exits[1], exits[0]);
        SameState(runs[0], runs[1], "at the breakpoint");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_store_of_the_block_into_its_own_later_word_runs_the_new_word(bool le)
    {
        // The 10th iteration's store (r9 = target then, the scratch memory before and after) turns the word at 'target' from
        // li 3, 1 into li 3, 7, which the same iteration runs: it is inside the compiled block, after the store.
        string source = Loop("""
                addi 8, 8, 1
                cmpwi 0, 8, 10
                isel 9, 6, 10, 2
                stw 5, 0(9)
                addi 11, 11, 1
            target:
                li 3, 1
                add 4, 4, 3
            """);
        var runs = new[] { Machine(source, le, compile: true), Machine(source, le, compile: false) };
        foreach (var m in runs)
            m.Update(s =>
            {
                s.Gpr[5] = 0x38600007; // li 3, 7
                s.Gpr[6] = m.Sym("target");
                s.Gpr[10] = Scratch;
            });
        for (int q = 0; q < 40; q++)
        {
            runs[0].Run(13);
            runs[1].Run(13);
            SameState(runs[0], runs[1], $"quantum {q}");
        }
        foreach (var m in runs) m.Run(10_000);
        SameState(runs[0], runs[1], "at the end");
        Assert.Equal(9UL * 1 + 31 * 7, runs[0].State.Gpr[4]);
        Assert.True(InBlocks(runs[0]) > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_loop_that_stores_new_words_into_its_own_code_runs_each_new_word(bool le)
    {
        // Even iterations store li 3, i at 'target', which the same iteration then runs; odd ones store it into the scratch
        // memory (so the block compiled at their start survives to run the next). The block's first store into its page made
        // a host translation for the page's stores: the page was executed, so each later store must still go the way that
        // invalidates the words it changes.
        string source = Loop("""
                addi 8, 8, 1
                oris 5, 8, 0x3860
                andi. 7, 8, 1
                isel 9, 6, 10, 2
                stw 5, 0(9)
                addi 11, 11, 1
            target:
                li 3, 1
                add 4, 4, 3
            """);
        var runs = new[] { Machine(source, le, compile: true), Machine(source, le, compile: false) };
        foreach (var m in runs)
            m.Update(s =>
            {
                s.Gpr[6] = m.Sym("target");
                s.Gpr[10] = Scratch;
            });
        RunSideBySide(runs[0], runs[1], runs[0].Sym("done"), $"le {le}");
        Assert.Equal(1UL + 20 * 21 + 19 * 20, runs[0].State.Gpr[4]); // li 3, 1; then the last even i's word
        Assert.True(InBlocks(runs[0]) > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_block_that_retired_its_share_is_compiled_again_with_host_translations_and_runs_on_in_the_interpreters_state(bool le)
    {
        // The first compile calls for each load and store; once the loop's block has retired 300 instructions it is compiled
        // again with host translations, and the run goes on in the new block from its next entry.
        string source = Loop("""
                ld 3, 8(2)
                addi 3, 3, 5
                std 3, 8(2)
                lwzu 4, 4(21)
                add 5, 5, 4
                stwu 5, 4(21)
            """, iterations: 200);
        TestMachine Make(bool compile) => new(source, le, options: o => o with
        {
            CompileBlocks = compile, BlockCompileThreshold = 0, CompileInBackground = false, BlockHostAccessAfter = 300,
        });
        var compiled = Make(compile: true);
        var plain = Make(compile: false);
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"le {le}");
        Assert.True(compiled.Vm.BlocksPromoted >= 1, $"{compiled.Vm.BlocksPromoted} promoted");
        Assert.True(InBlocks(compiled) > 1000, $"{InBlocks(compiled)} in blocks");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_watchpoint_hit_inside_a_block_stops_as_in_the_interpreter(bool le)
    {
        string source = Loop("""
                addi 3, 3, 1
                std 3, 8(2)
            load:
                ld 4, 16(2)
                add 4, 4, 3
                std 4, 16(2)
                mulld 5, 4, 3
            """);
        var runs = new[] { Machine(source, le, compile: true), Machine(source, le, compile: false) };
        foreach (var m in runs) m.Run(50);
        Assert.True(InBlocks(runs[0]) > 0);
        foreach (var m in runs) m.Vm.InsertWatchpoint(new Watchpoint(Scratch + 16, 8, WatchKind.Read));
        for (int hit = 0; hit < 5; hit++)
        {
            var exits = runs.Select(m => m.Run(1000)).ToArray();
            Assert.Equal(ExitReason.Watchpoint, exits[0].Reason);
            Assert.Equal(runs[0].Sym("load"), exits[0].Address);
            Assert.Equal(exits[1], exits[0]);
            SameState(runs[0], runs[1], $"hit {hit}");
        }
    }

    public static IEnumerable<object[]> Seeds32() =>
        from seed in Enumerable.Range(101, 6) from le in new[] { true, false } select new object[] { seed, le };

    [Theory]
    [MemberData(nameof(Seeds32))]
    public void Random_blocks_in_32_bit_mode_end_in_the_interpreters_state_at_every_quantum(int seed, bool le)
    {
        // MSR[SF] = 0: CTR and effective addresses are 32 bits, CR0 and the carries come from the low word.
        var r = new Random(seed);
        string source = Loop(RandomBody(r, r.Next(8, 40)), start: $"""
                mfmsr 9
                rldicl 9, 9, 0, 1
                mtmsrd 9
                lis 2, {Scratch >> 16}
            """);
        var (compiled, plain) = RandomPair(source, le, seed);
        ulong done = compiled.Sym("done");
        RunSideBySide(compiled, plain, done, $"seed {seed} le {le}");
        Assert.Equal(0UL, compiled.State.Msr & ActorStep.Isa.Msr.SF);
        Assert.True(InBlocks(compiled) > 0, $"seed {seed}: no block ran");
    }

    /// <summary>Operands whose sums carry out of the low word and not the high one, out of the high one only, out of both,
    /// out of neither, and through every bit (a + ~0 + 1).</summary>
    private static readonly (ulong A, ulong B)[] CarryOperands =
    [
        (0x8000_0000, 0x8000_0000), (0xFFFF_FFFF, 1), (0x7FFF_FFFF, 1), (0x8000_0000_0000_0000, 0x8000_0000_0000_0000),
        (0xFFFF_FFFF_FFFF_FFFF, 1), (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF), (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321),
        (0, 0), (0x0000_0001_7FFF_FFFF, 0x7FFF_FFFF_8000_0001),
    ];

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void Carries_of_the_add_family_in_blocks_are_the_interpreters_at_the_word_and_doubleword_boundaries(bool le, bool mode32)
    {
        // Each carrying form over operands at the carries' boundaries, CA both ways in; XER (CA and CA32) and the result after
        // each are folded into r10 and r11 (rotate, xor), so every form's carries are in the registers compared at the end.
        string[] forms =
        [
            "addc 3, 4, 5", "adde 3, 4, 5", "subfc 3, 4, 5", "subfe 3, 4, 5", "addme 3, 4", "addze 3, 4", "subfme 3, 4",
            "subfze 3, 4", "addic 3, 4, 1", "addic. 3, 4, -1", "subfic 3, 4, 0", "subfic 3, 4, -1", "neg 3, 4", "add 3, 4, 5",
            "subfe 3, 4, 4", "subfe. 3, 5, 5", // a compiler's "carry as 0 or -1", which blocks compute apart
        ];
        var body = new StringBuilder();
        foreach (string form in forms)
            foreach (bool carryIn in new[] { false, true })
            {
                body.AppendLine(carryIn ? "    li 9, -1\n    addic 9, 9, 1" : "    li 9, 0\n    addic 9, 9, 0"); // CA in
                body.AppendLine($"    {form}\n    mfxer 9\n    rldicl 10, 10, 5, 0\n    xor 10, 10, 9\n    rldicl 11, 11, 3, 0\n    xor 11, 11, 3");
            }
        const ulong operandsAt = Scratch + 0x3000;
        string source = $"""
                .globl _start
            _start:
            {(mode32 ? "    mfmsr 9\n    rldicl 9, 9, 0, 1\n    mtmsrd 9" : "")}
                lis 2, {Scratch >> 16}
                lis 6, {operandsAt >> 16}
                ori 6, 6, {operandsAt & 0xFFFF}
                li 30, {CarryOperands.Length}
                mtctr 30
            loop:
                ld 4, 0(6)
                ld 5, 8(6)
            {body}
                addi 6, 6, 16
                bdnz loop
            done:
                b done
            """;
        var compiled = Machine(source, le, compile: true);
        var plain = Machine(source, le, compile: false);
        foreach (var m in new[] { compiled, plain })
        {
            // The doublewords in the guest's byte order.
            var operands = new byte[16 * CarryOperands.Length];
            void Put(int at, ulong v)
            {
                if (le) System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(operands.AsSpan(at), v);
                else System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(operands.AsSpan(at), v);
            }
            for (int k = 0; k < CarryOperands.Length; k++) { Put(16 * k, CarryOperands[k].A); Put(16 * k + 8, CarryOperands[k].B); }
            m.Vm.WriteMemory(operandsAt, operands);
        }
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"le {le} 32-bit {mode32}");
        Assert.True(InBlocks(compiled) > compiled.Vcpu.InstructionsRetired / 2, $"{InBlocks(compiled)} in blocks");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_block_compiled_in_64_bit_mode_is_compiled_again_for_32_bit_mode(bool le)
    {
        // The same subroutine called in both modes: its carries, CR0 and EA differ between them, so a 64-bit block run in
        // 32-bit mode would end in another state than the interpreter's.
        string source = $"""
                .globl _start
            _start:
                lis 2, {Scratch >> 16}
                li 30, 40
                mtctr 30
            loop64:
                bl body
                bdnz loop64
            mode32:
                mfmsr 9
                rldicl 9, 9, 0, 1
                mtmsrd 9
                li 30, 40
                mtctr 30
            loop32:
                bl body
                bdnz loop32
            done:
                b done
            body:
                addc. 3, 4, 5
                adde 6, 3, 4
                subfc. 7, 5, 4
                add. 8, 3, 3
                rldicl. 10, 6, 32, 0
                stw 3, 8(2)
                blr
            """;
        var (compiled, plain) = RandomPair(source, le, seed: 7);
        foreach (var m in new[] { compiled, plain }) m.Update(s => { s.Gpr[4] = 0x0000_0001_FFFF_FFFF; s.Gpr[5] = 1; });
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"le {le}");
        Assert.Equal(0UL, compiled.State.Msr & ActorStep.Isa.Msr.SF);
        // The 64-bit half retires 3 + 40 × 9 instructions in all: more in blocks means blocks ran in 32-bit mode too.
        Assert.True(InBlocks(compiled) > 3 + 40 * 9, $"no block ran in 32-bit mode ({InBlocks(compiled)} in blocks)");
    }

    [Fact]
    public void Straight_code_longer_than_a_block_is_compiled_block_after_block_once_its_head_is_hot()
    {
        // 300 straight instructions in a loop: the loop's head turns hot at its 51st arrival; the words each block falls into
        // are as hot as the block, so the body's next block is compiled at the next arrival, not after 50 more.
        string body = string.Join("\n", Enumerable.Range(0, 300).Select(k => k % 2 == 0 ? $"    addi {3 + k % 7},{3 + k % 7},{k}" : $"    xor {3 + k % 5},{4 + k % 7},{3 + k % 3}"));
        string source = Loop(body, iterations: 60);
        var compiled = new TestMachine(source, littleEndian: true,
            options: o => o with { CompileBlocks = true, BlockCompileThreshold = 50, CompileInBackground = false });
        var plain = Machine(source, le: true, compile: false);
        // One quantum: blocks of 64 instructions need room to run (RunSideBySide's small quanta would interpret them).
        Assert.Equal(plain.Run(30_000), compiled.Run(30_000));
        SameState(compiled, plain, "straight code");
        Assert.Equal(compiled.Sym("done"), compiled.State.Nip);
        // 10 iterations from the 51st: each compiles the next block of the body (on the vcpu's thread here) until all 300 words
        // run compiled, ~2,000 instructions in blocks; were only heads with 50 arrivals compiled, the first block alone: 10 × 64.
        Assert.True(InBlocks(compiled) > 5 * 300, $"{InBlocks(compiled)} instructions in blocks");
    }

    [Fact]
    public void A_branch_into_a_compiled_functions_basic_block_runs_that_block_from_there_and_compiles_no_block_of_its_own()
    {
        // f's block holds three basic blocks (f, mid after the beq, skip its target); g jumps to mid. Against a g that returns
        // at once, the machine compiles the same number of blocks: mid is an entry of f's, not a block of its own.
        string Source(string gTail) => $"""
                .globl _start
            _start:
                li 3, 0
                li 30, 40
                mtctr 30
            loop:
                bl f
                bl g
                bdnz loop
            done:
                b done
            f:
                addi 3, 3, 1
                cmpdi 3, 1000
                beq skip
            mid:
                addi 4, 4, 1
                addi 5, 5, 2
            skip:
                addi 6, 6, 3
                blr
            g:
                addi 7, 7, 1
                {gTail}
            """;
        var intoMid = Machine(Source("b mid"), le: true, compile: true);
        var plain = Machine(Source("b mid"), le: true, compile: false);
        var returns = Machine(Source("blr"), le: true, compile: true);
        Assert.Equal(plain.Run(30_000), intoMid.Run(30_000));
        SameState(intoMid, plain, "g into f's middle");
        Assert.Equal(intoMid.Sym("done"), intoMid.State.Nip);
        returns.Run(30_000);
        Assert.Equal(returns.Sym("done"), returns.State.Nip);
        Assert.Equal(returns.Vm.CompiledBlockStatistics!.Value.Blocks, intoMid.Vm.CompiledBlockStatistics!.Value.Blocks);
        // From the second call on, g's way through mid, the addi after it, skip and the blr (4 words a call) runs compiled: the
        // words interpreted are no more than with the g that returns at once, give or take g's first call.
        long Interpreted(TestMachine m) => m.Vcpu.InstructionsRetired - InBlocks(m);
        Assert.True(Interpreted(intoMid) <= Interpreted(returns) + 8, $"{Interpreted(intoMid)} vs {Interpreted(returns)} interpreted");
        // In quanta that end before, inside and after the block, entered at mid or at f: the interpreter's state after each.
        RunSideBySide(Machine(Source("b mid"), le: true, compile: true), Machine(Source("b mid"), le: true, compile: false),
            intoMid.Sym("done"), "g into f's middle, in quanta");
    }

    [Fact]
    public void Compiling_the_blocks_again_for_a_measurement_compiles_each_once_and_leaves_the_machines_blocks_running()
    {
        string body = string.Join("\n", Enumerable.Range(0, 150).Select(k => $"    addi {3 + k % 7},{3 + k % 7},{k}"));
        string source = Loop(body, iterations: 200);
        var compiled = Machine(source, le: true, compile: true);
        var plain = Machine(source, le: true, compile: false);
        Assert.Equal(plain.Run(2_000), compiled.Run(2_000));
        var before = compiled.Vm.CompiledBlockStatistics!.Value.Blocks;
        Assert.True(before >= 3, $"{before} blocks");
        var (again, elapsed) = compiled.Vm.CompileBlocksAgain()!.Value;
        Assert.Equal(before, again);
        Assert.True(elapsed > TimeSpan.Zero);
        // The machine's own table is untouched: no block counted twice, and its blocks still run to the interpreter's state.
        Assert.Equal(before, compiled.Vm.CompiledBlockStatistics!.Value.Blocks);
        long inBlocks = InBlocks(compiled);
        Assert.Equal(plain.Run(10_000), compiled.Run(10_000));
        SameState(compiled, plain, "after the compile again");
        Assert.True(InBlocks(compiled) > inBlocks + 5_000, "the machine's blocks stopped running");
        Assert.Null(Machine(source, le: true, compile: false).Vm.CompileBlocksAgain());
    }

    // --- Translated data: a block's loads and stores through the radix tree, the translation cache's fast path. ---

    /// <summary>The real page that EA page 1 of quadrant 3 maps to in <see cref="TranslatedLoop"/>.</summary>
    private const ulong DataPage = 0x200000;

    /// <summary><see cref="Loop"/> with MSR[DR] on and r2 = EA page 1 of quadrant 3 (mapped to <see cref="DataPage"/>).</summary>
    /// <summary>The radix tree registered, MSR[DR] on, r2 = quadrant 3's page 1 (the data page).</summary>
    private static readonly string DataTranslated = $"""
        {RadixGuest.Register}
            mfmsr 9
            ori 9, 9, 0x10
            mtmsrd 9
        {RadixGuest.LoadEa(2, RadixGuest.Page(1))}
        """;

    private static string TranslatedLoop(string body, int iterations = 40) => Loop(body, iterations, start: DataTranslated);

    /// <summary>The kernel's side of the state-bit tests: <see cref="DataTranslated"/>, <paramref name="setup"/>, then a loop
    /// of 20 loads from r2's page in a block, which makes a host translation for it.</summary>
    private static string KernelLoadsFromDataPage(string setup = "") => $"""
            .globl _start
        _start:
        {DataTranslated}
        {setup}
            li 30, 20
            mtctr 30
        loop:
            ld 13, 8(2)
            add 20, 20, 13
            bdnz loop
        """;

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_blocks_with_translated_loads_and_stores_end_in_the_interpreters_state_at_every_quantum(int seed, bool le)
    {
        var r = new Random(seed);
        string source = TranslatedLoop(RandomBody(r, r.Next(8, 40)));
        var (compiled, plain) = RandomPair(source, le, seed);
        foreach (var m in new[] { compiled, plain })
        {
            var data = new byte[0x1000];
            new Random(seed).NextBytes(data);
            m.Vm.WriteMemory(DataPage, data);
            RadixGuest.Tables(m.Vm, (1, DataPage, RadixGuest.ReadWrite));
        }
        ulong done = compiled.Sym("done");
        RunSideBySide(compiled, plain, done, $"seed {seed} le {le}", data: DataPage);
        Assert.NotEqual(0UL, compiled.State.Msr & ActorStep.Isa.Msr.DR);
        Assert.True(InBlocks(compiled) > 0, $"seed {seed}: no block ran");
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void A_blocks_first_access_to_a_page_walks_the_tree_inside_the_block_instead_of_leaving(bool le, bool referencedAndChanged)
    {
        // Each iteration loads and stores on the next of the 16 4 KiB pages of one 64 KiB leaf: the first touch of a page misses
        // the translation cache, which the block fills itself (as the interpreter's walk would: a leaf without R and C gets
        // them, R at the load, C at the store) and runs on.
        const int iterations = 48;
        string source = TranslatedLoop("""
                addi 10, 10, 1
                andi. 11, 10, 15
                sldi 11, 11, 12
                add 12, 2, 11
                ld 13, 8(12)
                addi 13, 13, 3
                std 13, 16(12)
                lwz 14, 24(12)
                stw 14, 32(12)
            """, iterations);
        var compiled = Machine(source, le, compile: true);
        var plain = Machine(source, le, compile: false);
        foreach (var m in new[] { compiled, plain })
        {
            var data = new byte[0x10000];
            new Random(7).NextBytes(data);
            m.Vm.WriteMemory(DataPage, data);
            ulong leaf = referencedAndChanged ? RadixGuest.ReadWrite : RadixGuest.ReadWrite & ~(RadixWalk.PteR | RadixWalk.PteC);
            RadixGuest.Tables(m.Vm, (1, DataPage, leaf));
        }
        Assert.Equal(plain.Run(10_000), compiled.Run(10_000));
        SameState(compiled, plain, "after the loop");
        var pte = Bytes(compiled, RadixGuest.PteAddress(1), 8);
        Assert.Equal(Bytes(plain, RadixGuest.PteAddress(1), 8), pte);
        ulong leafNow = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(pte);
        Assert.Equal(RadixWalk.PteR | RadixWalk.PteC, leafNow & (RadixWalk.PteR | RadixWalk.PteC));
        Assert.Equal(compiled.Sym("done"), compiled.State.Nip);
        Assert.Equal(Bytes(plain, DataPage, 0x10000), Bytes(compiled, DataPage, 0x10000));
        // Everything after the second iteration ran in one block (the loop and the code after it), the 14 iterations that
        // touched a page first included: the code before the loop, its first iteration (which falls into the loop's head: not
        // a head yet) and its second (whose arrival compiled the block) are the only code interpreted.
        long interpreted = (long)(compiled.Sym("loop") - compiled.Sym("_start")) / 4 + 2 * 12;
        Assert.Equal(compiled.Vcpu.InstructionsRetired - interpreted, InBlocks(compiled));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_block_in_real_mode_does_not_load_through_a_translation_made_with_data_relocation_on(bool le)
    {
        // The same EA, r2 (quadrant 3, page 1), is loaded with MSR[DR] = 1 (through the tree: the data page) and then with
        // MSR[DR] = 0 (real mode: EA bits 0:3 ignored, real address 0x10000 + 8) in every iteration, each in a block of its own:
        // a host translation made in one state must not answer in the other.
        string source = TranslatedLoop("""
                ld 13, 8(2)
                add 20, 20, 13
                mfmsr 9
                xori 9, 9, 0x10
                mtmsrd 9
                ld 14, 8(2)
                add 21, 21, 14
                mfmsr 9
                xori 9, 9, 0x10
                mtmsrd 9
            """);
        var (compiled, plain) = WithDataPage(source, le, seed: 11);
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"le {le}", data: DataPage);
        Assert.NotEqual(compiled.State.Gpr[20], compiled.State.Gpr[21]);
        Assert.True(InBlocks(compiled) > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_block_in_problem_state_does_not_load_through_a_translation_made_in_privileged_state(bool le)
    {
        // The kernel's loop loads from a privileged page (r2: quadrant 3, page 1) in a block, which makes a host translation
        // for it; then rfid enters problem state (the code's page mapped for it as page 2), where a block's loop loads from
        // page 2 until its tenth iteration loads from the kernel's EA: that load must take the data storage interrupt
        // (protection), not the bytes.
        string source = $"""
            {KernelLoadsFromDataPage()}
            {RadixGuest.LoadEa(9, RadixGuest.Page(2))}
                ori 9, 9, user - _start
                mtsrr0 9
                mfmsr 10
                ori 10, 10, 0x4020
                mtsrr1 10
                rfid
            user:
                li 30, 20
                mtctr 30
            {RadixGuest.LoadEa(15, RadixGuest.Page(2))}
            again:
                addi 22, 22, 1
                cmpwi 22, 10
                isel 12, 2, 15, 2
                ld 14, 8(12)
                add 21, 21, 14
                bdnz again
            spin:
                b spin
            """;
        // Page 2: the image's page, which problem state may read and execute.
        const ulong userCode = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC | RadixWalk.EaaRead
                               | RadixWalk.EaaExecute;
        var (compiled, plain) = WithDataPage(source, le, seed: 13, (2, 0x10000, userCode));
        RunSideBySide(compiled, plain, done: null, $"le {le}", maxQuanta: 60);
        Assert.True(InBlocks(compiled) > 0);
        Assert.Equal(RadixGuest.Page(1) + 8, compiled.State.Dar);
        Assert.Equal(10UL, compiled.State.Gpr[22]); // nine loads from page 2, then the tenth iteration's faulted
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_block_in_32_bit_mode_does_not_load_through_a_translation_made_in_64_bit_mode(bool le)
    {
        // A 64-bit block loads from r2 = quadrant 3, page 1, which makes a host translation for that EA page. Then, in 32-bit
        // mode with PIDR = 1 (no process table entry: every quadrant-0 access faults), a block's load from 8(r2) has the EA
        // 0x10008, the low word of r2 + 8: it must take the data storage interrupt, not the bytes of the 64-bit EA's page.
        string source = $"""
            {KernelLoadsFromDataPage(setup: "    li 3, 1\n    mtspr 48, 3")}
                mfmsr 9
                clrldi 9, 9, 1
                mtmsrd 9
                li 30, 20
                mtctr 30
            again:
                addi 22, 22, 1
                cmpwi 22, 10
                blt skip
                ld 14, 8(2)
                add 21, 21, 14
            skip:
                bdnz again
            spin:
                b spin
            """;
        var (compiled, plain) = WithDataPage(source, le, seed: 17);
        RunSideBySide(compiled, plain, done: null, $"le {le}", maxQuanta: 60);
        Assert.True(InBlocks(compiled) > 0);
        Assert.Equal(0x10008UL, compiled.State.Dar);
        Assert.Equal(10UL, compiled.State.Gpr[22]); // nine iterations skipped the load, the tenth's faulted
    }

    // --- Blocks of several runs: a loop's code around a call, jumps over cold code. ---

    /// <summary>A loop whose body calls out. The block from the call's return holds, besides the code after the call, the loop
    /// back to its head (before the block's entry in memory), the path of odd iterations (it ends with a conditional branch and
    /// falls into the call, a word the block holds: a jump), the path past a jump over cold code in iterations 2 and 3 of every
    /// four (it falls into a word the block holds too) and the call again; a path taken once, in iteration <paramref
    /// name="lateIteration"/> (odd) after the compile, leaves the block. <paramref name="body"/> gives the code of each place
    /// (a name of the program), <paramref name="start"/> the code before the loop, which sets r2.</summary>
    private static string CallingLoop(Func<string, string> body, int iterations, int lateIteration, string? start = null) => $"""
            .globl _start
        _start:
        {start ?? $"    lis 2, {Scratch >> 16}"}
            li 30, {iterations}
            mtctr 30
            li 29, 0
        loop:
            addi 21, 2, 256
            li 31, 72
            addi 29, 29, 1
        {body("loop")}
            andi. 28, 29, 1
            beq call
            b odd
        odd:
        {body("odd")}
            cmpwi 7, 29, {lateIteration}
            beq 7, late
        call:
            bl sub
        {body("after the call")}
            andi. 28, 29, 2
            beq over
            b twos
            trap
        twos:
        {body("twos")}
        over:
        {body("over")}
            bdnz loop
        done:
            b done
        late:
        {body("late")}
            b call
        sub:
        {body("sub")}
            blr
        """;

    private static TestMachine Compiling(string source, bool le, int threshold) =>
        new(source, le, options: o => o with { CompileBlocks = true, BlockCompileThreshold = threshold, CompileInBackground = false });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_loop_whose_body_calls_out_runs_from_the_return_to_the_call_again_in_one_block(bool le)
    {
        const int iterations = 60;
        string source = CallingLoop(place => place switch
        {
            "odd" => "    addi 4, 4, 7\n    xor 5, 5, 4",
            "loop" => "    std 29, 16(2)",
            "after the call" => "    mulld 7, 29, 29\n    std 7, 8(2)",
            "twos" => "    addi 11, 11, 3",
            "over" => "    add 6, 6, 7",
            "late" => "    li 9, 1",
            _ => "    add 8, 8, 29\n    ld 10, 8(2)", // sub
        }, iterations, lateIteration: 45);
        var compiled = Compiling(source, le, threshold: 2);
        var plain = Machine(source, le, compile: false);
        Assert.Equal(plain.Run(20_000), compiled.Run(20_000));
        SameState(compiled, plain, "after the loop");
        Assert.Equal(compiled.Sym("done"), compiled.State.Nip);
        Assert.Equal(1UL, compiled.State.Gpr[9]); // the late path ran, out of the block
        var vcpu = (SimulatedVcpu)compiled.Vm.GetVcpu(0);
        // Once hot, an iteration enters two blocks: the subroutine's and the one from its return to the call, which holds the
        // loop's head, the odd path and the code past the jump (a block per run would be entered four to six times).
        Assert.True(vcpu.BlockEntries <= 2 * iterations + 10, $"{vcpu.BlockEntries} block entries in {iterations} iterations");
        long perIteration = (compiled.Vcpu.InstructionsRetired - (long)(compiled.Sym("loop") - compiled.Sym("_start")) / 4) / iterations;
        Assert.True(InBlocks(compiled) > (iterations - 6) * perIteration, $"{InBlocks(compiled)} of {compiled.Vcpu.InstructionsRetired} in blocks");
    }

    public static IEnumerable<object[]> RegionSeeds() =>
        from seed in Enumerable.Range(201, 8) from le in new[] { true, false } select new object[] { seed, le, seed % 4 == 0 };

    [Theory]
    [MemberData(nameof(RegionSeeds))]
    public void Random_blocks_of_several_runs_end_in_the_interpreters_state_at_every_quantum(int seed, bool le, bool mode32)
    {
        // Compiled at the third arrival, when the paths around the call have run: each block holds runs of random code that
        // are not consecutive in memory, joined by jumps, and long bodies cut the runs at the block's length.
        var r = new Random(seed);
        string source = CallingLoop(_ => RandomBody(r, r.Next(1, 16), keepLr: true), iterations: 30, lateIteration: 21,
            start: mode32 ? $"""
                    mfmsr 9
                    rldicl 9, 9, 0, 1
                    mtmsrd 9
                    lis 2, {Scratch >> 16}
                """ : null);
        var compiled = Compiling(source, le, threshold: 2);
        var plain = Machine(source, le, compile: false);
        RandomRegisters(compiled, seed);
        RandomRegisters(plain, seed);
        RunSideBySide(compiled, plain, compiled.Sym("done"), $"seed {seed} le {le} 32-bit {mode32}");
        Assert.True(InBlocks(compiled) > compiled.Vcpu.InstructionsRetired / 2, $"seed {seed}: {InBlocks(compiled)} in blocks");
    }

    // --- Blocks compiled on the worker thread. ---

    private const string Endless = """
            .globl _start
        _start:
            li 3, 0
        loop:
            addi 3, 3, 1
            mulld 4, 3, 3
        planted:
            add 5, 5, 4
            b loop
        """;

    [Fact]
    public void Blocks_compiled_in_the_background_run_once_ready_and_leave_the_interpreters_state()
    {
        var background = new TestMachine(Endless, options: o => o with { CompileBlocks = true, BlockCompileThreshold = 0, CompileInBackground = true });
        var plain = Machine(Endless, le: true, compile: false);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (InBlocks(background) == 0 && DateTime.UtcNow < deadline)
        {
            Assert.Equal(plain.Run(997), background.Run(997));
            SameState(background, plain, "while the compile is queued");
        }
        Assert.True(InBlocks(background) > 0, "the worker never delivered the block");
        Assert.Equal(plain.Run(100_000), background.Run(100_000));
        SameState(background, plain, "after the block ran");
    }

    [Fact]
    public void Machines_disposed_with_compiles_queued_leave_the_worker_compiling_for_the_next()
    {
        for (int k = 0; k < 20; k++)
        {
            var m = new TestMachine(Endless, options: o => o with { CompileBlocks = true, BlockCompileThreshold = 0 });
            m.Run(50);
            m.Vm.Dispose(); // its compiles may be queued or running: they must not read the released memory
        }
        var last = new TestMachine(Endless, options: o => o with { CompileBlocks = true, BlockCompileThreshold = 0 });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (InBlocks(last) == 0 && DateTime.UtcNow < deadline) last.Run(1000);
        Assert.True(InBlocks(last) > 0);
    }

    [Fact]
    public void A_breakpoint_planted_while_a_compiled_loop_runs_stops_it_within_the_same_run()
    {
        // The loop runs inside its compiled block (its branch back is a jump in the block's code); a breakpoint planted by
        // another thread meanwhile must stop it at once, as the interpreter's next fetch would, not at the end of the budget
        // (minutes at this loop's compiled rate). The planting thread is a thread of its own: a busy thread pool cannot delay it.
        var m = Machine(Endless, le: true, compile: true);
        m.Vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
        m.Run(1000);
        Assert.True(InBlocks(m) > 0);
        const long budget = 400_000_000_000;
        var plant = new Thread(() =>
        {
            Thread.Sleep(100);
            m.Vm.WriteMemory(m.Sym("planted"), BitConverter.GetBytes(SimulatedVcpu.DebugInstruction));
        });
        plant.Start();
        var exit = m.Run(budget);
        plant.Join();
        Assert.Equal(ExitReason.Debug, exit.Reason);
        Assert.Equal(m.Sym("planted"), exit.Address);
        Assert.True(m.Vcpu.InstructionsRetired < budget / 4, $"{m.Vcpu.InstructionsRetired:N0} retired before the stop");
    }

    [Fact]
    public void A_block_whose_load_flushes_the_translation_cache_leaves_so_the_next_fetch_sees_the_remapped_page()
    {
        // The code runs translated from EA page 1, which maps the image's own page or a copy of it whose `variant` word differs;
        // `remap` swaps the leaf and tlbies (as another vcpu's tlbie would), then returns into a block whose first load misses
        // the translation cache and flushes it: the interpreter fetches `variant` through the new leaf, and so must the block.
        const ulong image = 0x10000, copy = 0x300000;
        const ulong leaf = RadixGuest.ReadWrite | ActorStep.Machine.Mmu.RadixWalk.EaaExecute;
        string source = $"""
                .globl _start
            _start:
            {RadixGuest.Register}
                lis 10, 0xc000
                sldi 10, 10, 32
                oris 10, 10, translated@h
                ori 10, 10, translated@l
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x30
                mtsrr1 9
                rfid
            translated:
                li 3, 0
            outer:
                bl remap
            back:
                ld 4, 0(23)
            variant:
                addi 6, 6, 1
                addi 3, 3, 1
                cmpdi 3, 30
                bne outer
            done:
                b done
            remap:
                stdbrx 20, 0, 22
                xor 20, 20, 21
                xor 21, 20, 21
                xor 20, 20, 21
                ptesync
                tlbie 4,0,0,0,1
                ptesync
                blr
            """;
        var runs = new[] { Machine(source, le: true, compile: true), Machine(source, le: true, compile: false) };
        foreach (var m in runs)
        {
            RadixGuest.Tables(m.Vm, (1, image, leaf), (2, RadixGuest.Pud, RadixGuest.ReadWrite));
            var page = Bytes(m, image, 0x10000);
            BitConverter.GetBytes(0x38C60064u).CopyTo(page, (int)(m.Sym("variant") - image)); // addi 6, 6, 100
            m.Vm.WriteMemory(copy, page);
            m.Update(s =>
            {
                s.Gpr[20] = leaf | copy;
                s.Gpr[21] = leaf | image;
                s.Gpr[22] = RadixGuest.Page(2) + (RadixGuest.PteAddress(1) - RadixGuest.Pud);
                s.Gpr[23] = RadixGuest.Page(2) + 0x8000;
            });
        }
        ulong done = RadixGuest.Quadrant3 | runs[0].Sym("done");
        RunSideBySide(runs[0], runs[1], done, "remapped", maxQuanta: 2000);
        Assert.Equal(15UL * 100 + 15 * 1, runs[0].State.Gpr[6]); // odd passes through the copy, even ones through the image
        Assert.True(InBlocks(runs[0]) > 0);
    }
}
