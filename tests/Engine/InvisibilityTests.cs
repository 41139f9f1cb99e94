using ActorStep.Actors.Engine;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// step-engine.md §6 invariants 1, 2 and 4, property-based: random programs from the whole supported
/// instruction set are host-stepped to the end through the VmCoordinator, and every stop is compared field by
/// field with an undebugged run of the same program on the same interpreter stopped after each instruction by its
/// hardware single-step (<see cref="HostStepLockstep"/>). On the HV backend (the trace-interrupt technique) every
/// step must also end the way <see cref="TraceStep.Plan"/> says that instruction ends. The PR backend (hardware
/// step) is compared with the undebugged run, with the HV backend stepping the same program, and at the end with a
/// run that uses no debug facility at all.
/// </summary>
public class InvisibilityTests(ITestOutputHelper output) : TestKit
{
    /// <summary>Seeds that found bugs or cover a case; run every time besides the fresh ones. 1900403370 and 1183832872: a
    /// decrementer falls due inside an atomic sequence, which the engine used to hold to the sequence's end (its handler's
    /// mtdec a tick late); 2005847066: one that falls due as a sequence ends (taken before the end point is fetched).</summary>
    private static readonly int[] PrRegressionSeeds = [104729, 209458, 314187, 418916, 523645, 628374, 1900403370, 1183832872, 2005847066];

    [Fact]
    public void Random_programs_host_stepped_on_HV_match_the_undebugged_machine_at_every_stop()
    {
        int steps = 0;
        var seeds = new List<int>();
        var completions = Enum.GetValues<TraceStep.Completion>().ToDictionary(c => c, _ => 0);
        var property = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed =>
        {
            seeds.Add(seed);
            var outcome = CheckProgram(seed, [HypervisorFlavour.Hv], allowInterrupts: true);
            steps += outcome.Steps;
            foreach (var (k, v) in outcome.Completions) completions[k] += v;
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithQuietOnSuccess(true), property);
        output.WriteLine($"random seed: HV invisibility (FsCheck): {string.Join(",", seeds)}");
        output.WriteLine($"{steps} host steps compared; completions {string.Join(", ", completions.Select(c => $"{c.Key} {c.Value}"))}");
        Assert.True(steps > 3000, $"only {steps} steps were compared");
        // Each way a step can end was checked against its plan, so none of the checks is vacuous.
        Assert.All(completions, c => Assert.True(c.Value > 0, $"no step ended {c.Key}: that check never ran"));
    }

    [Fact]
    public void Random_programs_host_stepped_on_PR_match_the_undebugged_machine_and_the_HV_backend()
    {
        // Fresh seeds every run (ACTORSTEP_PR_SEEDS=a,b,… replays given ones), plus the fixed regression seeds.
        var fresh = Environment.GetEnvironmentVariable("ACTORSTEP_PR_SEEDS") is { Length: > 0 } given
            ? given.Split(',').Select(int.Parse).ToArray()
            : Enumerable.Range(0, 6).Select(_ => Random.Shared.Next()).ToArray();
        output.WriteLine($"random seed: PR invisibility: {string.Join(",", fresh)} (replay: ACTORSTEP_PR_SEEDS={string.Join(",", fresh)})");
        int steps = 0;
        foreach (int seed in fresh.Concat(PrRegressionSeeds))
        {
            var outcome = CheckProgram(seed, [HypervisorFlavour.Pr, HypervisorFlavour.Hv], allowInterrupts: true);
            steps += outcome.Steps;
            // The end state also equals a run with no debug facility at all (no single-step, no breakpoint, no coordinator).
            var free = HostStepLockstep.FreeRun(Image(seed, decrementerOff: false), (RandomGuest.Scratch, RandomGuest.ScratchBytes));
            foreach (var (name, state, memory) in outcome.Final.Select(f => (f.Key.ToString(), f.Value.State, f.Value.Memory))
                         .Append(("the hardware-stepped reference", outcome.ReferenceFinal, outcome.ReferenceMemory)))
            {
                var diff = free.State.Differences(state);
                Assert.True(diff.Count == 0, $"seed {seed}: {name} ends unlike the free run: {string.Join("; ", diff)}");
                Assert.True(free.Memory.AsSpan().SequenceEqual(memory), $"seed {seed}: {name}'s memory at the end differs from the free run's");
            }
        }
        output.WriteLine($"{steps} host steps compared on PR and HV");
        Assert.True(steps > 500, $"only {steps} steps were compared");
    }

    [Fact]
    public void Random_programs_host_stepped_on_an_all_stop_HV_backend_match_the_undebugged_machine_at_every_stop()
    {
        // The VM runs only as a whole (QEMU's gdbstub): the coordinator begins each step, resumes the VM, hands the exit back.
        var seeds = Enumerable.Range(0, 8).Select(_ => Random.Shared.Next()).ToArray();
        output.WriteLine($"random seed: all-stop HV invisibility: {string.Join(",", seeds)}");
        int steps = 0;
        foreach (int seed in seeds)
            steps += CheckProgram(seed, [HypervisorFlavour.Hv], allowInterrupts: true, runModel: VcpuRunModel.AllStop).Steps;
        Assert.True(steps > 300, $"only {steps} steps were compared");
    }

    [Fact]
    public void Random_programs_host_stepped_with_interrupts_held_match_where_no_interrupt_falls_due()
    {
        int steps = 0;
        for (int seed = 1; seed <= 10; seed++)
            steps += CheckProgram(seed * 7919, [HypervisorFlavour.Hv], allowInterrupts: false, decrementerOff: true).Steps;
        Assert.True(steps > 300);
    }

    /// <summary>Steps one random program to its end on each backend in lockstep with the reference. Throws with the seed on a difference.</summary>
    private HostStepLockstep.Outcome CheckProgram(int seed, HypervisorFlavour[] backends, bool allowInterrupts, bool decrementerOff = false,
        VcpuRunModel runModel = VcpuRunModel.IndependentVcpus)
    {
        string source = Source(seed, decrementerOff);
        return HostStepLockstep.Run(Sys, Image(seed, decrementerOff), $"seed {seed}", backends, allowInterrupts,
            (RandomGuest.Scratch, RandomGuest.ScratchBytes), program: $"program:\n{source}", runModel: runModel);
    }

    private static string Source(int seed, bool decrementerOff)
    {
        string source = RandomGuest.Generate(seed);
        return decrementerOff ? source.Replace("mtdec 23", "nop") : source;
    }

    private static ElfImage Image(int seed, bool decrementerOff) =>
        GuestAssembler.Build(Source(seed, decrementerOff), littleEndian: true, textAddress: 0);
}
