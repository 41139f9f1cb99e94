using ActorStep.Bench;

// dotnet run -c Release --project bench -- NAME [options]
// To add a benchmark: implement IBenchmark in its own file and list it here.
IBenchmark[] benchmarks =
[
    new MachineBenchmark(),
    new StepBenchmark(),
    new GrpcBenchmark(),
    new GdbBenchmark(),
    new GdbPathBenchmark(),
    new FleetBenchmark(),
    new FleetProcessBenchmark(),
    new ChurnBenchmark(),
    new QemuBenchmark(),
    new LinuxBootBenchmark(),
    new IdleBenchmark(),
    new KernelRateBenchmark(),
];

var chosen = args.Length > 0 ? benchmarks.FirstOrDefault(b => b.Name == args[0]) : null;
if (chosen is null)
{
    Console.Error.WriteLine("usage: dotnet run -c Release --project bench -- <benchmark> [options]\n\nbenchmarks:");
    foreach (var b in benchmarks) Console.Error.WriteLine($"  {b.Name,-10} {b.Description}");
    return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
}
return await chosen.RunAsync(args[1..]);
