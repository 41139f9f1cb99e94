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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RandomProgramsLeaveTheSameStateAsQemuAfterEveryInstruction(bool littleEndian)
    {
        int programs = Env("ACTORSTEP_DIFF_PROGRAMS", 20), blocks = Env("ACTORSTEP_DIFF_BLOCKS", 60);
        int firstSeed = Env("ACTORSTEP_DIFF_SEED", littleEndian ? 1000 : 2000);
        long compared = 0;
        var clock = Stopwatch.StartNew();
        for (int seed = firstSeed; seed < firstSeed + programs; seed++)
        {
            var program = UserSequenceGenerator.Generate(seed, littleEndian, blocks);
            var result = UserModeComparison.Run(program);
            compared += result.Instructions;
            if (result.Mismatch is { } m)
            {
                var small = UserModeComparison.Shrink(program, p => UserModeComparison.Run(p).Mismatch?.Signature);
                var again = UserModeComparison.Run(small).Mismatch;
                Assert.Fail($"QEMU and the machine disagree, seed {seed} ({(littleEndian ? "LE" : "BE")}), {m}\n\n"
                    + $"shrunk to {small.InstructionCount} instructions, {again}\n{small.Source()}");
            }
        }
        string figure = $"{(littleEndian ? "LE" : "BE")}: {programs} programs (seeds {firstSeed}..{firstSeed + programs - 1}), "
            + $"{compared} instructions compared, 0 mismatches, {clock.Elapsed.TotalSeconds:F1} s";
        output.WriteLine(figure);
        if (Environment.GetEnvironmentVariable("ACTORSTEP_DIFF_FIGURE") is { Length: > 0 } file) File.AppendAllText(file, figure + "\n");
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
