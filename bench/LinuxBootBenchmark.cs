using System.Diagnostics;
using System.Text;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;

namespace ActorStep.Bench;

/// <summary>
/// Debian's ppc64le kernel with the tests' busybox initramfs (<see cref="LinuxInitramfs"/>), booted to the init's first line
/// and to the power-off: ActorStep's simulated machine (vcpus on threads, as <c>actorstep run --kernel</c>) against
/// <c>qemu-system-ppc64 -M pseries</c> TCG with SLOF (QEMU's default firmware) and with VOF (<c>x-vof=on</c>: no SLOF, the
/// kernel's prom_init talks to QEMU's minimal firmware), same kernel, initramfs, vcpu count and memory, one after the other in
/// one run. Wall time from the start: the ELF load for ActorStep in this process (its later runs reuse the code the JIT made
/// for the first), the process start for QEMU and for <c>actorstep run --kernel</c> in a fresh process (the installed
/// command, as a user runs it: ReadyToRun code, the runtime's start). The assets come from scripts/fetch-linux's cache.
/// </summary>
public sealed class LinuxBootBenchmark : IBenchmark
{
    public string Name => "linux-boot";
    public string Description => "Debian kernel + busybox initramfs to the init's line and power-off: ActorStep vs QEMU pseries TCG (SLOF, VOF)  [--vcpus N] [--runs N] [--no-blocks | --block-threshold N] [--host-access-after N] [--no-qemu] [--actorstep CMD]";

    private const int MemoryMiB = 256;

    private static string Cache => Path.Combine(Environment.GetEnvironmentVariable("ACTORSTEP_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep"), "linux");

    /// <summary>The times of one boot; <paramref name="Cpu"/>: the CPU its threads had used by the init's line (ActorStep: the
    /// vcpu threads' and the block compiler's; QEMU: the whole process's), which ranks builds on a loaded machine.</summary>
    private sealed record Boot(TimeSpan InitLine, TimeSpan PowerOff, string Cpu, string Note);

    public async Task<int> RunAsync(string[] args)
    {
        int vcpus = BenchArgs.Int(args, "--vcpus", 1), runs = BenchArgs.Int(args, "--runs", 1);
        string[] actorstep = BenchArgs.ActorStepCommand(args);
        string vmlinux = Path.Combine(Cache, "vmlinux"), busybox = Path.Combine(Cache, "busybox");
        if (!File.Exists(vmlinux) || !File.Exists(busybox)) { Console.Error.WriteLine($"no kernel or busybox in {Cache}: run scripts/fetch-linux"); return 1; }
        byte[] initrd = LinuxInitramfs.Build(busybox);
        string initrdPath = Path.Combine(Path.GetTempPath(), $"actorstep-bench-initrd-{Environment.ProcessId}.cpio");
        File.WriteAllBytes(initrdPath, initrd);
        Console.WriteLine($"linux-boot: {Environment.ProcessorCount} cpus, {vcpus} vcpu(s), {MemoryMiB} MiB, {runs} run(s) each; seconds to \"{LinuxInitramfs.UpLine}\" / to power-off");
        try
        {
            var rows = new List<(string Name, List<Boot> Boots)>
            {
                ("ActorStep (simulated pseries, vcpus on threads)", []),
                ($"{string.Join(' ', actorstep)} run --kernel (a fresh process)", []),
                ("QEMU pseries TCG, SLOF (default firmware)", []),
                ("QEMU pseries TCG, VOF (x-vof=on)", []),
            };
            for (int r = 0; r < runs; r++)
            {
                rows[0].Boots.Add(OnActorStep(vmlinux, initrd, new MachineOptions(vcpus, (ulong)MemoryMiB << 20,
                    CompileBlocks: !args.Contains("--no-blocks"),
                    BlockCompileThreshold: BenchArgs.Int(args, "--block-threshold", MachineOptions.DefaultBlockCompileThreshold),
                    BlockHostAccessAfter: BenchArgs.Int(args, "--host-access-after", (int)MachineOptions.DefaultBlockHostAccessAfter))));
                rows[1].Boots.Add(await OnProcess(actorstep, ["run", "--kernel", vmlinux, "--initrd", initrdPath, "--append", Append,
                    "--vcpus", $"{vcpus}", "--memory", $"{MemoryMiB}"], "actorstep run"));
                if (args.Contains("--no-qemu")) continue;
                rows[2].Boots.Add(await OnQemu(vmlinux, initrdPath, vcpus, vof: false));
                rows[3].Boots.Add(await OnQemu(vmlinux, initrdPath, vcpus, vof: true));
            }
            if (args.Contains("--no-qemu")) rows.RemoveRange(2, 2);
            foreach (var (name, boots) in rows)
                Console.WriteLine($"  {name,-50} {string.Join("   ", boots.Select(b => $"{b.InitLine.TotalSeconds,6:0.00} / {b.PowerOff.TotalSeconds,6:0.00}"))}   {boots[^1].Note}"
                    + $"\n  {"",-50} CPU to the init's line: {string.Join("   ", boots.Select(b => b.Cpu))}");
            if (rows.Count == 2) return 0; // --no-qemu
            double Best(int row) => rows[row].Boots.Min(b => b.InitLine.TotalSeconds);
            foreach (var (row, what) in new[] { (0, "in this process"), (1, "a fresh actorstep run") })
                Console.WriteLine($"ratio to the init's line (best runs), ActorStep {what} / QEMU: SLOF {Best(row) / Best(2):0.00}x, VOF {Best(row) / Best(3):0.00}x");
            // Each run's fresh process against the QEMU with VOF that ran right after it: the host's load changes from run to run.
            var paired = rows[1].Boots.Zip(rows[3].Boots, (a, q) => a.InitLine.TotalSeconds / q.InitLine.TotalSeconds).Order().ToList();
            Console.WriteLine($"a fresh actorstep run / QEMU VOF, run by run: {string.Join(", ", paired.Select(r => $"{r:0.00}x"))} (median {paired[paired.Count / 2]:0.00}x)");
            return 0;
        }
        finally { if (Environment.GetEnvironmentVariable("BENCH_ECHO") is null) File.Delete(initrdPath); else Console.Error.WriteLine(initrdPath); }
    }

    /// <summary>Whether the init's line is in the text appended after <paramref name="before"/> characters (with the line's
    /// length before it, for a line split across writes): only the new text is searched, as the vcpu that writes waits for this.</summary>
    private static bool UpLineArrived(StringBuilder console, int before)
    {
        int from = Math.Max(0, before - LinuxInitramfs.UpLine.Length);
        return console.ToString(from, console.Length - from).Contains(LinuxInitramfs.UpLine, StringComparison.Ordinal);
    }

    private static Boot OnActorStep(string vmlinux, byte[] initrd, MachineOptions options)
    {
        int vcpus = options.Vcpus;
        var clock = Stopwatch.StartNew();
        var kernel = ElfImage.Load(vmlinux);
        using var vm = new SimulatedMachine(options);
        var console = new StringBuilder();
        TimeSpan? initLine = null;
        double compilerBefore = CpuClock.ThreadsNamed("block compiler"), vcpuCpu = 0, compilerCpu = 0;
        bool echo = Environment.GetEnvironmentVariable("BENCH_ECHO") is not null;
        vm.ConsoleOutput += (_, bytes) =>
        {
            lock (console)
            {
                int before = console.Length;
                console.Append(Encoding.ASCII.GetString(bytes)); if (echo) Console.Error.Write(Encoding.ASCII.GetString(bytes));
                if (initLine is null && UpLineArrived(console, before))
                {
                    initLine = clock.Elapsed;
                    vcpuCpu = CpuClock.ThreadsNamed("vcpu");
                    compilerCpu = CpuClock.ThreadsNamed("block compiler") - compilerBefore;
                }
            }
        };
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel, initrd), MachineOptions.TimebaseFrequency);
        var result = MachineRunner.Run(vm, new RunOptions());
        var end = clock.Elapsed;
        if (vm.Halt?.Status != MachineHalt.PowerOff || initLine is null)
            throw new InvalidOperationException($"the simulated boot did not reach the init's line and power off: {vm.Halt?.Detail}\n{console}");
        long instructions = result.Vcpus.Sum(v => v.Instructions);
        var cpus = Enumerable.Range(0, vcpus).Select(i => (ActorStep.Machine.Cpu.SimulatedVcpu)vm.GetVcpu(i)).ToList();
        long inBlocks = cpus.Sum(v => v.InstructionsRetiredInBlocks), entries = cpus.Sum(v => v.BlockEntries);
        string blocks = vm.CompiledBlockStatistics is var (count, compileTime, _)
            ? $"; {100.0 * inBlocks / instructions:0.0} % in {count} blocks ({vm.BlocksPromoted} promoted) entered {entries / 1e6:0.0} M times, compiled in {compileTime.TotalSeconds:0.00} s" : "";
        return new Boot(initLine.Value, end, $"vcpus {vcpuCpu:0.00} s + compiler {compilerCpu:0.00} s", $"({instructions / 1e9:0.00} G instructions, {instructions / end.TotalSeconds / 1e6:0} M/s over all vcpus{blocks})");
    }

    private const string Append = "console=hvc0 panic=-1";

    private static Task<Boot> OnQemu(string vmlinux, string initrd, int vcpus, bool vof) =>
        OnProcess(["qemu-system-ppc64"], ["-M", vof ? "pseries,x-vof=on" : "pseries", "-cpu", "power9", "-smp", $"{vcpus}", "-m", $"{MemoryMiB}M",
            "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
            "-chardev", "stdio,id=console,signal=off", "-device", "spapr-vty,chardev=console",
            "-kernel", vmlinux, "-initrd", initrd, "-append", Append], "QEMU");

    /// <summary>A boot in a child process whose stdout is the guest's console: wall time from the process's start to the init's
    /// line and to its exit; the process's CPU by the line.</summary>
    private static async Task<Boot> OnProcess(string[] command, string[] arguments, string what)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string a in command.Skip(1).Concat(arguments)) psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {command[0]}");
        var stderr = process.StandardError.ReadToEndAsync();
        var console = new StringBuilder();
        TimeSpan? initLine = null;
        double cpu = 0;
        var buffer = new char[4096];
        int n;
        while ((n = await process.StandardOutput.ReadAsync(buffer)) > 0)
        {
            int before = console.Length;
            console.Append(buffer, 0, n);
            if (initLine is null && UpLineArrived(console, before)) { initLine = clock.Elapsed; cpu = CpuClock.Process(process.Id); }
        }
        await process.WaitForExitAsync();
        var end = clock.Elapsed;
        if (process.ExitCode != 0 || initLine is null || !console.ToString().Contains("reboot: Power down", StringComparison.Ordinal))
            throw new InvalidOperationException($"{what} did not reach the init's line and power off (exit {process.ExitCode})\n{console}\n{await stderr}");
        return new Boot(initLine.Value, end, $"{cpu:0.00} s", "");
    }
}
