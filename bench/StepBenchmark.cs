using System.Diagnostics;
using System.Runtime.CompilerServices;
using ActorStep.Actors.Vm;
using ActorStep.Machine;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Bench;

/// <summary>
/// In-process host steps through the VmCoordinator (the path every frontend uses): latency p50/p99 and
/// steps/s for one vcpu; the HV trace-interrupt step against the PR hardware step on the same program
/// (ratio, side by side in one run); aggregate steps/s with 64 VMs stepped concurrently.
/// </summary>
public sealed class StepBenchmark : IBenchmark
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public string Name => "steps";
    public string Description => "in-process host steps: p50/p99 and steps/s, HV vs PR ratio, 64 VMs concurrently  [--steps N] [--rounds N] [--warmup-seconds N]";

    public async Task<int> RunAsync(string[] args)
    {
        int steps = BenchArgs.Int(args, "--steps", 20_000);
        // The host's configuration: vcpu actors on their own threads (VcpuDispatcher).
        using var system = ActorSystem.Create("bench", "akka.loglevel = WARNING\n" + ActorStep.Actors.Vcpu.VcpuDispatcher.Hocon());
        Console.WriteLine($"steps: in-process host steps through the VmCoordinator, {steps:N0} steps per measurement");

        // Warm up both paths until the JIT has settled (tiered compilation and dynamic PGO promote the hot
        // methods only after many calls and a quiet period; a few thousand steps measure tier-0 code), then
        // alternate HV and PR rounds so machine noise hits both alike, and compare them round by round.
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(BenchArgs.Int(args, "--warmup-seconds", 4)))
        {
            await Measure(system, HypervisorFlavour.Hv, 5000);
            await Measure(system, HypervisorFlavour.Pr, 5000);
        }
        int rounds = BenchArgs.Int(args, "--rounds", 5);
        var ratios = new List<double>();
        var hvRounds = new List<(double StepsPerSecond, double P50, double P99, double BytesPerStep)>();
        var prRounds = new List<(double StepsPerSecond, double P50, double P99, double BytesPerStep)>();
        for (int round = 0; round < rounds; round++)
        {
            var h = await Measure(system, HypervisorFlavour.Hv, steps);
            var p = await Measure(system, HypervisorFlavour.Pr, steps);
            hvRounds.Add(h);
            prRounds.Add(p);
            ratios.Add(p.StepsPerSecond / h.StepsPerSecond);
        }
        var hv = Median(hvRounds);
        var pr = Median(prRounds);
        Console.WriteLine($"  HV trace-interrupt step: {hv.StepsPerSecond,10:N0} steps/s   p50 {hv.P50,6:F1} µs   p99 {hv.P99,6:F1} µs   {hv.BytesPerStep,6:N0} B allocated/step");
        Console.WriteLine($"  PR hardware step:        {pr.StepsPerSecond,10:N0} steps/s   p50 {pr.P50,6:F1} µs   p99 {pr.P99,6:F1} µs   {pr.BytesPerStep,6:N0} B allocated/step");
        ratios.Sort();
        Console.WriteLine($"  HV/PR time per step:     {ratios[ratios.Count / 2],10:F2}× median of {rounds} paired rounds (min {ratios[0]:F2}×, max {ratios[^1]:F2}×; target ≤ 1.5×)");

        int vms = 64;
        var coordinators = Enumerable.Range(0, vms).Select(_ => system.ActorOf(VmCoordinator.Props(NewVm(HypervisorFlavour.Hv)))).ToArray();
        int perVm = Math.Max(200, steps / 16);
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(coordinators.Select(async c =>
        {
            var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
            for (int i = 0; i < perVm; i++) await c.Ask<Stopped>(step, Timeout);
        }));
        sw.Stop();
        Console.WriteLine($"  64 VMs stepped concurrently: {vms * perVm / sw.Elapsed.TotalSeconds,10:N0} steps/s aggregate ({vms}×{perVm:N0} steps)");
        return 0;
    }

    /// <summary>The round with the median rate (its latencies and allocation with it).</summary>
    private static T Median<T>(List<T> rounds) where T : struct, ITuple =>
        rounds.OrderBy(r => (double)r[0]!).ElementAt(rounds.Count / 2);

    private static SimulatedMachine NewVm(HypervisorFlavour flavour) =>
        SimulatedMachine.Load(ElfImage.BuiltIn("alu-loop"), new MachineOptions(Vcpus: 1, MemorySize: 16UL << 20, Flavour: flavour));

    private static async Task<(double StepsPerSecond, double P50, double P99, double BytesPerStep)> Measure(ActorSystem system, HypervisorFlavour flavour, int steps)
    {
        var coordinator = system.ActorOf(VmCoordinator.Props(NewVm(flavour)));
        var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
        var latencies = new double[steps];
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        var total = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var stop = await coordinator.Ask<Stopped>(step, Timeout);
            latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            if (stop.Event.Reason != StopReason.StepCompleted) throw new InvalidOperationException($"unexpected stop {stop.Event}");
        }
        total.Stop();
        allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
        await coordinator.GracefulStop(Timeout);
        Array.Sort(latencies);
        return (steps / total.Elapsed.TotalSeconds, latencies[steps / 2], latencies[(int)(steps * 0.99)], (double)allocated / steps);
    }
}
