using System.Diagnostics;
using ActorStep.Actors.Vm;
using ActorStep.Machine;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;

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
    public string Description => "in-process host steps: p50/p99 and steps/s, HV vs PR ratio, 64 VMs concurrently  [--steps N]";

    public async Task<int> RunAsync(string[] args)
    {
        int steps = BenchArgs.Int(args, "--steps", 20_000);
        using var system = ActorSystem.Create("bench", "akka.loglevel = WARNING");
        Console.WriteLine($"steps: in-process host steps through the VmCoordinator, {steps:N0} steps per measurement");

        // Warm up both paths, then alternate HV and PR rounds so machine noise hits both alike.
        await Measure(system, HypervisorFlavour.Hv, 2000);
        await Measure(system, HypervisorFlavour.Pr, 2000);
        var hv = new List<double>();
        var pr = new List<double>();
        (double P50, double P99) hvLatency = default, prLatency = default;
        for (int round = 0; round < 3; round++)
        {
            var h = await Measure(system, HypervisorFlavour.Hv, steps);
            var p = await Measure(system, HypervisorFlavour.Pr, steps);
            hv.Add(h.StepsPerSecond);
            pr.Add(p.StepsPerSecond);
            hvLatency = (h.P50, h.P99);
            prLatency = (p.P50, p.P99);
        }
        double hvRate = hv.Max(), prRate = pr.Max();
        Console.WriteLine($"  HV trace-interrupt step: {hvRate,10:N0} steps/s   p50 {hvLatency.P50,6:F1} µs   p99 {hvLatency.P99,6:F1} µs");
        Console.WriteLine($"  PR hardware step:        {prRate,10:N0} steps/s   p50 {prLatency.P50,6:F1} µs   p99 {prLatency.P99,6:F1} µs");
        Console.WriteLine($"  HV/PR time per step:     {prRate / hvRate,10:F2}× mean, {hvLatency.P50 / prLatency.P50:F2}× p50   (target ≤ 1.5×)");

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

    private static SimulatedMachine NewVm(HypervisorFlavour flavour) =>
        SimulatedMachine.Load(ElfImage.BuiltIn("alu-loop"), new MachineOptions(Vcpus: 1, MemorySize: 16UL << 20, Flavour: flavour));

    private static async Task<(double StepsPerSecond, double P50, double P99)> Measure(ActorSystem system, HypervisorFlavour flavour, int steps)
    {
        var coordinator = system.ActorOf(VmCoordinator.Props(NewVm(flavour)));
        var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step });
        var latencies = new double[steps];
        var total = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var stop = await coordinator.Ask<Stopped>(step, Timeout);
            latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            if (stop.Event.Reason != StopReason.StepCompleted) throw new InvalidOperationException($"unexpected stop {stop.Event}");
        }
        total.Stop();
        await coordinator.GracefulStop(Timeout);
        Array.Sort(latencies);
        return (steps / total.Elapsed.TotalSeconds, latencies[steps / 2], latencies[(int)(steps * 0.99)]);
    }
}
