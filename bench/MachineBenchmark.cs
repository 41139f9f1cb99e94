using System.Diagnostics;
using ActorStep.Machine;
using ActorStep.Hypervisor;

namespace ActorStep.Bench;

/// <summary>
/// Guest instructions per second on one vcpu with no debugger: the ALU/branch loop (alu-loop.elf) and
/// the demo guest, in the machine's own dispatch loop (MachineRunner quanta of 10,000). Best of 3.
/// </summary>
public sealed class MachineBenchmark : IBenchmark
{
    public string Name => "machine";
    public string Description => "guest instructions/s on one vcpu: ALU/branch loop and demo guest  [--instructions N]";

    public Task<int> RunAsync(string[] args)
    {
        long instructions = BenchArgs.Int(args, "--instructions", 200_000_000);
        Console.WriteLine($"machine: guest instructions per second, one vcpu, {instructions:N0} instructions per run, best of 3");
        foreach (var name in new[] { "alu-loop", "demo" })
        {
            double best = 0;
            for (int run = 0; run < 3; run++)
            {
                var vm = SimulatedMachine.Load(ElfImage.BuiltIn(name), new MachineOptions(Vcpus: 1));
                var sw = Stopwatch.StartNew();
                var result = MachineRunner.Run(vm, new RunOptions { MaxInstructions = instructions });
                sw.Stop();
                best = Math.Max(best, result.Vcpus[0].Instructions / sw.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"  {name,-10} {best / 1e6,8:F1} M instructions/s");
        }
        return Task.FromResult(0);
    }
}
