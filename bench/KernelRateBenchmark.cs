using System.Diagnostics;
using System.Text;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Machine.Cpu;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;

namespace ActorStep.Bench;

/// <summary>
/// The simulated machine's instruction rate on the code a kernel developer runs: Debian's kernel and the tests' busybox initramfs
/// booted on one vcpu to the power-off, run in quanta of a prime number of instructions, each quantum timed and classified by the
/// state it began and ended in (real mode, kernel code with translation on — MSR[IR] = 1 and NIP in the kernel's quadrant 3 —,
/// userspace, idle). The issue's goal is the second row: at least 100 M/s. The NIP at each quantum's end is a sample of where the
/// guest spends its instructions; the hottest kernel functions are listed (names from the vmlinux's symbol table).
/// </summary>
public sealed class KernelRateBenchmark : IBenchmark
{
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Timespec { public long Seconds, Nanoseconds; }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    /// <summary>This thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID): the time the vcpu ran, whatever else the shared
    /// host ran meanwhile.</summary>
    private static long ThreadCpuNanoseconds() => ClockGetTime(3, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : 0;

    public string Name => "kernel-rate";
    public string Description => "Debian kernel boot on 1 vcpu: guest instructions/s in real mode, kernel code with translation on, userspace; hottest functions  [--quantum N] [--top N] [--no-blocks | --block-threshold N] [--host-access-after N]";

    private static string Cache => Path.Combine(Environment.GetEnvironmentVariable("ACTORSTEP_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep"), "linux");

    private enum Kind { RealMode, KernelTranslated, User, Mixed, Idle }

    public Task<int> RunAsync(string[] args)
    {
        long quantum = BenchArgs.Int(args, "--quantum", 10_007);
        int top = BenchArgs.Int(args, "--top", 15);
        string vmlinux = Path.Combine(Cache, "vmlinux"), busybox = Path.Combine(Cache, "busybox");
        if (!File.Exists(vmlinux) || !File.Exists(busybox)) { Console.Error.WriteLine($"no kernel or busybox in {Cache}: run scripts/fetch-linux"); return Task.FromResult(1); }
        var kernel = ElfImage.Load(vmlinux);
        using var vm = new SimulatedMachine(new MachineOptions(1, 256UL << 20, CompileBlocks: !args.Contains("--no-blocks"),
            BlockCompileThreshold: BenchArgs.Int(args, "--block-threshold", MachineOptions.DefaultBlockCompileThreshold),
            BlockHostAccessAfter: BenchArgs.Int(args, "--host-access-after", (int)MachineOptions.DefaultBlockHostAccessAfter)));
        var console = new StringBuilder();
        vm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(Encoding.ASCII.GetString(bytes)); };
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel, LinuxInitramfs.Build(busybox)), MachineOptions.TimebaseFrequency);
        var vcpu = vm.GetVcpu(0);
        var instructions = new long[5];
        var ticks = new long[5];
        var cpu = new long[5];
        long otherInstructions = 0, otherCpu = 0; // kernel quanta ending outside the multi-precision arithmetic (mpihelp_*, mpih_*)
        var samples = new Dictionary<string, int>();
        var rates = Enum.GetValues<Kind>().Select(_ => new List<double>()).ToArray(); // M/s of each full quantum
        var total = Stopwatch.StartNew();
        while (true)
        {
            var before = vcpu.GetRegisters();
            long retired = vcpu.InstructionsRetired;
            long start = Stopwatch.GetTimestamp(), cpuStart = ThreadCpuNanoseconds();
            var exit = vcpu.Run(quantum);
            long elapsed = Stopwatch.GetTimestamp() - start, cpuElapsed = ThreadCpuNanoseconds() - cpuStart;
            if (exit.Reason is ExitReason.Stopped or ExitReason.Checkstop) break;
            var after = vcpu.GetRegisters();
            long ran = vcpu.InstructionsRetired - retired;
            var kind = exit.Reason == ExitReason.Idle && ran < quantum / 2 ? Kind.Idle : Classify(before) == Classify(after) ? Classify(after) : Kind.Mixed;
            instructions[(int)kind] += ran;
            ticks[(int)kind] += elapsed;
            cpu[(int)kind] += cpuElapsed;
            if (ran == quantum && elapsed > 0) rates[(int)kind].Add(ran / (elapsed / (double)Stopwatch.Frequency) / 1e6);
            if (kind == Kind.KernelTranslated && kernel.Code.Find(after.Nip) is { } at)
            {
                samples[at.Symbol.Name] = samples.GetValueOrDefault(at.Symbol.Name) + 1;
                if (!at.Symbol.Name.StartsWith("mpih", StringComparison.Ordinal)) { otherInstructions += ran; otherCpu += cpuElapsed; }
            }
        }
        var wall = total.Elapsed;
        if (vm.Halt?.Status != MachineHalt.PowerOff || !console.ToString().Contains(LinuxInitramfs.UpLine, StringComparison.Ordinal))
            throw new InvalidOperationException($"the boot did not reach the init's line and power off: {vm.Halt?.Detail}\n{console}");
        Console.WriteLine($"kernel-rate: Debian kernel + busybox initramfs, 1 vcpu, quanta of {quantum} instructions, {wall.TotalSeconds:0.00} s to the power-off");
        Console.WriteLine($"  {"state at both ends of a quantum",-44} {"instructions",14} {"seconds",9} {"M/s",8} {"median quantum M/s",19} {"M/s of CPU time",16}");
        foreach (var kind in Enum.GetValues<Kind>())
        {
            double seconds = ticks[(int)kind] / (double)Stopwatch.Frequency;
            Console.WriteLine($"  {Describe(kind),-44} {instructions[(int)kind],14:N0} {seconds,9:0.00} {(seconds > 0 ? instructions[(int)kind] / seconds / 1e6 : 0),8:0.0} {Median(rates[(int)kind]),19:0.0} {(cpu[(int)kind] > 0 ? instructions[(int)kind] / (cpu[(int)kind] / 1e9) / 1e6 : 0),16:0.0}");
        }
        Console.WriteLine($"  {"  of which ending outside mpihelp_*/mpih_*",-44} {otherInstructions,14:N0} {otherCpu / 1e9,9:0.00} {"",8} {"",19} {(otherCpu > 0 ? otherInstructions / (otherCpu / 1e9) / 1e6 : 0),16:0.0}");
        int sampled = samples.Values.Sum();
        if (vm.CompiledBlockStatistics is var (blocks, compileTime, _))
            Console.WriteLine($"  block compiler: {blocks:N0} blocks compiled ({vm.BlocksPromoted:N0} of them again with host translations) in {compileTime.TotalSeconds:0.000} s; {((SimulatedVcpu)vcpu).InstructionsRetiredInBlocks * 100.0 / vcpu.InstructionsRetired:0.0} % of the instructions retired in blocks");
        else Console.WriteLine("  block compiler: off");
        if (vm.CompileBlocksAgain() is var (again, compileAgain))
            Console.WriteLine($"  block compiler, the same blocks again on one thread: {again:N0} in {compileAgain.TotalSeconds:0.000} s, {compileAgain.TotalMicroseconds / Math.Max(again, 1):0} µs a block");
        Console.WriteLine($"  hottest kernel functions (share of {sampled:N0} quantum ends in kernel code with translation on):");
        foreach (var (name, n) in samples.OrderByDescending(s => s.Value).Take(top))
            Console.WriteLine($"    {n * 100.0 / sampled,5:0.0} %  {name}");
        return Task.FromResult(0);
    }

    /// <summary>The median of the full quanta's rates: a quantum (~0.1 ms) the host preempted is slow, but few are, so the median is
    /// the machine's speed while it runs even on a shared host; the totals beside it are the wall's.</summary>
    private static double Median(List<double> rates)
    {
        if (rates.Count == 0) return 0;
        rates.Sort();
        return rates[rates.Count / 2];
    }

    private static Kind Classify(VcpuState s) =>
        (s.Msr & Isa.Msr.IR) == 0 ? Kind.RealMode
        : (s.Msr & Isa.Msr.PR) != 0 ? Kind.User
        : s.Nip >= SymbolIndex.KernelBase ? Kind.KernelTranslated : Kind.Mixed;

    private static string Describe(Kind kind) => kind switch
    {
        Kind.RealMode => "real mode (MSR[IR] = 0)",
        Kind.KernelTranslated => "kernel code, translation on (the goal's row)",
        Kind.User => "userspace (MSR[PR] = 1)",
        Kind.Mixed => "quanta that changed state",
        _ => "idle (H_CEDE: time skipped)",
    };
}
