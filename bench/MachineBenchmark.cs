using System.Diagnostics;
using ActorStep.Machine;
using ActorStep.Hypervisor;

namespace ActorStep.Bench;

/// <summary>
/// Guest instructions per second on one vcpu with no debugger: the ALU/branch loop (alu-loop.elf), the demo guest, a
/// load/store loop, a loop calling a function on another page and Linux's mpihelp_submul_1 on 64 limbs (bench/guests/
/// load-store-loop.s, call-loop.s and mul-loop.s, assembled here: the call loop enters and leaves a compiled block every four
/// instructions, the multiply loop is where Debian's kernel spends most of its boot), in the machine's own dispatch loop
/// (MachineRunner quanta of 10,000). Each guest runs with no watchpoint and with one watchpoint set on a doubleword it never touches (the check on
/// every data access, no stop), alternately in the same run; best of 3 each, and their ratio.
/// </summary>
public sealed class MachineBenchmark : IBenchmark
{
    public string Name => "machine";
    public string Description => "guest instructions/s on one vcpu, with no watchpoint and with one set: ALU loop, demo, load/store loop, call loop, multiply loop  [--instructions N]";

    public Task<int> RunAsync(string[] args)
    {
        long instructions = BenchArgs.Int(args, "--instructions", 200_000_000);
        Console.WriteLine($"machine: guest instructions per second, one vcpu, {instructions:N0} instructions per run, best of 3, " +
                          "no watchpoint / one watchpoint set (never hit), alternately");
        var loadStore = ElfImage.Load(Build("load-store-loop"));
        var calls = ElfImage.Load(Build("call-loop"));
        var multiply = ElfImage.Load(Build("mul-loop"));
        foreach (var (name, image) in new[] { ("alu-loop", ElfImage.BuiltIn("alu-loop")), ("demo", ElfImage.BuiltIn("demo")), ("load-store", loadStore), ("call-loop", calls), ("mul-loop", multiply) })
        {
            // A doubleword the guest never accesses: below the image for the built-in guests and the call and multiply loops, the
            // load/store loop's `untouched`.
            ulong quiet = image == loadStore ? image.Symbol("untouched") : 0x100;
            double none = 0, one = 0;
            for (int run = 0; run < 3; run++)
            {
                none = Math.Max(none, Rate(image, instructions, null));
                one = Math.Max(one, Rate(image, instructions, new Watchpoint(quiet, 8, WatchKind.Access)));
            }
            Console.WriteLine($"  {name,-10} {none / 1e6,8:F1} M instructions/s  {one / 1e6,8:F1} with a watchpoint  ({one / none:F2}×)");
        }
        return Task.FromResult(0);
    }

    private static double Rate(ElfImage image, long instructions, Watchpoint? watch)
    {
        var vm = SimulatedMachine.Load(image, new MachineOptions(Vcpus: 1));
        if (watch is { } w) vm.InsertWatchpoint(w);
        var sw = Stopwatch.StartNew();
        var result = MachineRunner.Run(vm, new RunOptions { MaxInstructions = instructions });
        sw.Stop();
        if (result.Vcpus[0].Instructions < instructions) throw new InvalidOperationException($"the guest stopped early: {result.Vcpus[0].Reason}");
        double rate = result.Vcpus[0].Instructions / sw.Elapsed.TotalSeconds;
        vm.Dispose();
        return rate;
    }

    /// <summary>Assembles bench/guests/<paramref name="name"/>.s with GNU as (little-endian) into an ELF in a temporary directory.</summary>
    private static string Build(string name)
    {
        string source = FindSource($"{name}.s");
        string dir = Directory.CreateTempSubdirectory("actorstep-bench-").FullName;
        string obj = Path.Combine(dir, $"{name}.o"), elf = Path.Combine(dir, $"{name}.elf");
        Run("powerpc64le-linux-gnu-as", $"-a64 -mlittle -mpower9 -o {obj} {source}");
        Run("powerpc64le-linux-gnu-ld", $"-nostdlib -static --build-id=none --no-warn-rwx-segments -N -e _start -Ttext=0x10000 -o {elf} {obj}");
        return elf;
    }

    private static string FindSource(string name)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var path = Path.Combine(d.FullName, "bench", "guests", name);
                if (File.Exists(path)) return path;
            }
        throw new FileNotFoundException($"bench/guests/{name} not found; run from the repository");
    }

    private static void Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args}: {err}");
    }
}
