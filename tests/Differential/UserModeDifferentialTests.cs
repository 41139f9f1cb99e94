using System.Diagnostics;
using Xunit.Abstractions;

namespace ActorStep.Tests.Differential;

/// <summary>
/// Part 1 of issue 7: random unprivileged programs run on qemu-user and on the machine, compared after every
/// instruction. The CI size is small; <c>scripts/soak-differential</c> scales it up through the environment
/// (ACTORSTEP_DIFF_PROGRAMS, ACTORSTEP_DIFF_BLOCKS, ACTORSTEP_DIFF_SEED).
/// </summary>
public sealed class UserModeDifferentialTests(ITestOutputHelper output)
{
    private static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;

    /// <summary>The fewest instructions a program of the CI's size compares: its prologue alone is ~50, and a branch
    /// skips at most six blocks. A run that compares less did not really compare (the guard the figures rely on).</summary>
    private const int MinComparedPerProgram = 100;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RandomProgramsLeaveTheSameStateAsQemuAfterEveryInstruction(bool littleEndian)
    {
        int programs = Env("ACTORSTEP_DIFF_PROGRAMS", 20), blocks = Env("ACTORSTEP_DIFF_BLOCKS", 60);
        int firstSeed = Env("ACTORSTEP_DIFF_SEED", littleEndian ? 1000 : 2000);
        long compared = 0;
        var clock = Stopwatch.StartNew();
        for (int seed = firstSeed; seed < firstSeed + programs; seed++) compared += Compare(seed, littleEndian, blocks);
        string figure = $"{(littleEndian ? "LE" : "BE")}: {programs} programs (seeds {firstSeed}..{firstSeed + programs - 1}), "
            + $"{compared} instructions compared, 0 mismatches, {clock.Elapsed.TotalSeconds:F1} s";
        output.WriteLine(figure);
        if (Environment.GetEnvironmentVariable("ACTORSTEP_DIFF_FIGURE") is { Length: > 0 } file) File.AppendAllText(file, figure + "\n");
        if (blocks >= 60) Assert.True(compared >= (long)programs * MinComparedPerProgram, $"only {compared} instructions were compared");
    }

    /// <summary>
    /// CI's bounded run with a seed that changes every run (the theory above keeps its fixed seeds as regressions):
    /// three programs per byte order, the seed printed for replay (ACTORSTEP_DIFF_CI_SEED=N), and a guard on how many
    /// instructions were compared, so a run that compared nothing fails. A few seconds.
    /// </summary>
    [Fact]
    public void A_fresh_seed_each_run_leaves_the_same_state_as_QEMU_after_every_instruction()
    {
        const int Programs = 3, Blocks = 60;
        int seed = Env("ACTORSTEP_DIFF_CI_SEED", Random.Shared.Next(1, 1_000_000_000));
        output.WriteLine($"random seed: user-mode differential: {seed} (replay: ACTORSTEP_DIFF_CI_SEED={seed})");
        var clock = Stopwatch.StartNew();
        foreach (bool littleEndian in new[] { true, false })
        {
            long compared = 0;
            for (int k = 0; k < Programs; k++) compared += Compare(seed + k, littleEndian, Blocks);
            output.WriteLine($"{(littleEndian ? "LE" : "BE")}: seeds {seed}..{seed + Programs - 1}, {compared} instructions compared, 0 mismatches");
            Assert.True(compared >= Programs * MinComparedPerProgram,
                $"seed {seed} ({(littleEndian ? "LE" : "BE")}): only {compared} instructions were compared");
        }
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Runs one generated program on both sides; returns the instructions compared, or fails with the seed and the shrunk program.</summary>
    private static int Compare(int seed, bool littleEndian, int blocks)
    {
        var program = UserSequenceGenerator.Generate(seed, littleEndian, blocks);
        var result = UserModeComparison.Run(program);
        if (result.Mismatch is { } m)
        {
            var small = UserModeComparison.Shrink(program, p => UserModeComparison.Run(p).Mismatch?.Signature);
            var again = UserModeComparison.Run(small).Mismatch;
            Assert.Fail($"QEMU and the machine disagree, seed {seed} ({(littleEndian ? "LE" : "BE")}), {m}\n\n"
                + $"shrunk to {small.InstructionCount} instructions, {again}\n{small.Source()}");
        }
        return result.Instructions;
    }

    [Fact]
    public void GeneratedProgramsAreReproducibleFromTheirSeed()
    {
        Assert.Equal(UserSequenceGenerator.Generate(7, true, 40).Source(), UserSequenceGenerator.Generate(7, true, 40).Source());
        Assert.NotEqual(UserSequenceGenerator.Generate(7, true, 40).Source(), UserSequenceGenerator.Generate(8, true, 40).Source());
    }

    [Fact]
    public void ShrinkingKeepsOnlyTheItemsTheFailureNeeds()
    {
        var items = Enumerable.Range(0, 100).ToList();
        var small = UserModeComparison.Minimize(items, l => l.Contains(17) && l.Contains(63));
        Assert.Equal([17, 63], small);
    }

    [Fact]
    public void ABranchWhoseTargetWasShrunkAwayLandsOnTheNextRemainingBlock()
    {
        var p = new UserProgram(0, true, [], [new Block(0, ["b {T}"], 2), new Block(3, ["nop"])], new byte[16]);
        Assert.Contains("b b3", p.Source());
        Assert.Contains("b end", (p with { Blocks = [new Block(0, ["b {T}"], 2)] }).Source());
    }

    [Fact]
    public void TheComparisonReportsARegisterThatDiffers()
    {
        // A guard that the comparison compares at all: a program whose only instruction is mftb
        // (the machine's timebase counts instructions, QEMU's follows the host clock) must fail.
        var p = new UserProgram(0, true, [], [new Block(0, ["mftb r3"])], new byte[UserProgram.ScratchSize]);
        var m = UserModeComparison.Run(p).Mismatch;
        Assert.NotNull(m);
        Assert.Contains(m.Differences, d => d.StartsWith("r3:", StringComparison.Ordinal));
    }
}
