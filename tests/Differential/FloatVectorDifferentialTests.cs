using System.Diagnostics;
using Xunit.Abstractions;

namespace ActorStep.Tests.Differential;

/// <summary>
/// Issue 13 point 6: random FP, VMX and VSX programs run on qemu-user and on the machine, FPRs, VSRs, VRs, FPSCR, VSCR,
/// VRSAVE, GPRs, CR and the scratch buffer compared after every instruction, in both byte orders. Every row of
/// OpcodePatterns is drawn with operands per its layout; ACTORSTEP_DIFF_FV_PROGRAMS / _BLOCKS scale it up.
/// </summary>
public sealed class FloatVectorDifferentialTests(ITestOutputHelper output)
{
    private static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Random_FP_VMX_and_VSX_programs_leave_the_same_state_as_QEMU_after_every_instruction(bool littleEndian)
    {
        int programs = Env("ACTORSTEP_DIFF_FV_PROGRAMS", 2), blocks = Env("ACTORSTEP_DIFF_FV_BLOCKS", 80);
        int first = littleEndian ? 3000 : 4000;
        var clock = Stopwatch.StartNew();
        long compared = 0;
        for (int seed = first; seed < first + programs; seed++) compared += Compare(seed, littleEndian, blocks);
        output.WriteLine($"{(littleEndian ? "LE" : "BE")}: {programs} programs (seeds {first}..{first + programs - 1}), {compared} instructions compared, "
            + $"0 mismatches, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(compared >= programs * (long)blocks, $"only {compared} instructions were compared");
    }

    [Fact]
    public void A_fresh_seed_each_run_leaves_the_same_FP_and_vector_state_as_QEMU()
    {
        int seed = Env("ACTORSTEP_DIFF_FV_CI_SEED", Random.Shared.Next(1, 1_000_000_000));
        output.WriteLine($"random seed: FP/vector differential: {seed} (replay: ACTORSTEP_DIFF_FV_CI_SEED={seed})");
        foreach (bool littleEndian in new[] { true, false })
        {
            long compared = Compare(seed, littleEndian, 60);
            output.WriteLine($"{(littleEndian ? "LE" : "BE")}: seed {seed}, {compared} instructions compared, 0 mismatches");
            Assert.True(compared >= 60, $"seed {seed}: only {compared} instructions were compared");
        }
    }

    /// <summary>
    /// The integer VMX/VSX instructions busybox's static glibc ran in a boot to /init on the machine (its string functions:
    /// strspn/strcspn's vbpermq bitmaps, strlen/strchr's vcmpequb + vgbbd, the loads, splats, shifts and moves around
    /// them). A wrong vbpermq (its VRA and VRB swapped) made the shell drop every other character of its script.
    /// </summary>
    private static readonly HashSet<string> GlibcStringRows =
        ["vbpermq", "vgbbd", "vcmpequb", "vcmpequh", "vcmpneb", "vcmpnezb", "lvsr", "lvsl", "lvx", "stvx", "vsldoi", "vspltb",
         "vsplth", "vspltisb", "vspltisw", "vsrw", "vslb", "vand", "vor", "vxor", "xxlorc", "xxpermdi", "mtvsrd", "mfvsrd",
         "mtvsrwz", "mfvsrwz", "lxvd2x", "stxvd2x", "vctzlsbb", "vclzlsbb", "vextubrx", "vextublx", "vperm", "vpermr", "lxvl",
         "lxvll", "stxvl"];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Random_programs_of_the_vector_instructions_glibc_string_code_runs_leave_the_same_state_as_QEMU(bool littleEndian)
    {
        int seed = littleEndian ? 5000 : 6000;
        long compared = Compare(seed, littleEndian, 120, GlibcStringRows.Contains);
        output.WriteLine($"{(littleEndian ? "LE" : "BE")}: seed {seed}, {compared} instructions compared, 0 mismatches");
        Assert.True(compared >= 120, $"only {compared} instructions were compared");
    }

    private static int Compare(int seed, bool littleEndian, int blocks, Func<string, bool>? only = null)
    {
        var program = FloatVectorSequenceGenerator.Generate(seed, littleEndian, blocks, only);
        var result = UserModeComparison.Run(program, compareVector: true);
        if (result.Mismatch is { } first && Environment.GetEnvironmentVariable("ACTORSTEP_DIFF_NO_SHRINK") is { Length: > 0 })
            Assert.Fail($"QEMU and the machine disagree, seed {seed} ({(littleEndian ? "LE" : "BE")}), {first}");
        if (result.Mismatch is { } m)
        {
            var small = UserModeComparison.Shrink(program, p => UserModeComparison.Run(p, compareVector: true).Mismatch?.Signature);
            var again = UserModeComparison.Run(small, compareVector: true).Mismatch;
            Assert.Fail($"QEMU and the machine disagree, seed {seed} ({(littleEndian ? "LE" : "BE")}), {m}\n\n"
                + $"shrunk to {small.InstructionCount} instructions, {again}\n{small.Source()}");
        }
        return result.Instructions;
    }
}
