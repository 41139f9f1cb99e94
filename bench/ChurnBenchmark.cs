using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Grpc.Net.Client;

namespace ActorStep.Bench;

/// <summary>
/// Memory kept after VMs are gone (issue 15, finding 4): against a real <c>actorstep serve</c> (a child process, as a tester
/// runs it; or in this process with <c>--in-process</c>, which also forces full compacting collections and reports the GC
/// heap), creates N demo VMs over gRPC, steps each a few times, deletes them all, and reports the server's RSS fresh, after a
/// warm-up churn (what JIT'd code, Kestrel's and gRPC's pools cost once), at the peak with N alive, and after the deletion.
/// Exits 1 when a bound is broken: RSS after the churn at most <c>--bound-after</c> KiB per churned VM above the warm baseline, and at
/// most <c>--bound-per-vm</c> KiB of RSS per live VM (guest RAM is lazily backed: an idle demo guest touches a few pages).
/// <c>--compare PATH</c> runs the same churn first against another build's actorstep.dll (e.g. /work/wt-base's) and prints
/// the two side by side; the bounds apply to this build's server only.
/// </summary>
public sealed class ChurnBenchmark : IBenchmark
{
    public string Name => "churn";
    public string Description => "RSS of a server that creates, steps and deletes N VMs: fresh, warm, peak, after  [--vms N] [--memory MIB] [--steps K] [--in-process] [--server DLL] [--compare DLL] [--bound-after KIB-PER-VM] [--bound-per-vm KIB]";

    private sealed record Figures(string Label, long Fresh, long Warm, long Peak, long After, long? HeapWarm = null, long? HeapPeak = null, long? HeapAfter = null)
    {
        public double PerVmKiB(int vms) => (Peak - Warm) / 1024.0 / vms;
    }

    public async Task<int> RunAsync(string[] args)
    {
        int vms = BenchArgs.Int(args, "--vms", 1000);
        int memoryMiB = BenchArgs.Int(args, "--memory", 0); // 0: the API's default (128 MiB)
        int steps = BenchArgs.Int(args, "--steps", 5);
        int boundAfterKiB = BenchArgs.Int(args, "--bound-after", 128); // per churned VM
        int boundPerVmKiB = BenchArgs.Int(args, "--bound-per-vm", 256);
        bool inProcess = args.Contains("--in-process");
        string server = Arg(args, "--server") ?? Path.Combine(AppContext.BaseDirectory, "actorstep.dll");
        string? compare = Arg(args, "--compare");

        Console.WriteLine($"ActorStep churn benchmark: {vms} demo VMs (4 vcpus, {(memoryMiB == 0 ? "default memory (128 MiB)" : $"{memoryMiB} MiB")}), " +
                          $"{steps} steps each, {Environment.ProcessorCount} cpus, server {(inProcess ? "in this process" : "a child process")}; RSS in MiB");
        var results = new List<Figures>();
        if (compare is not null) results.Add(await ChildProcess("compared", compare, vms, memoryMiB, steps));
        results.Add(inProcess ? await InProcess(vms, memoryMiB, steps) : await ChildProcess("this build", server, vms, memoryMiB, steps));

        Console.WriteLine();
        Console.WriteLine($"{"server",-12} {"fresh",8} {"warm",8} {"peak",8} {"after",8} {"after-warm",11} {"per live VM",12}");
        foreach (var f in results)
            Console.WriteLine($"{f.Label,-12} {MiB(f.Fresh),8:0.0} {MiB(f.Warm),8:0.0} {MiB(f.Peak),8:0.0} {MiB(f.After),8:0.0} {MiB(f.After - f.Warm),11:+0.0;-0.0} {f.PerVmKiB(vms),8:0} KiB");
        foreach (var f in results.Where(f => f.HeapAfter is not null))
            Console.WriteLine($"{f.Label,-12} GC heap after a full compacting collection: warm {MiB(f.HeapWarm!.Value):0.0}, peak {MiB(f.HeapPeak!.Value):0.0}, after {MiB(f.HeapAfter!.Value):0.0} MiB ({(f.HeapPeak!.Value - f.HeapWarm!.Value) / 1024.0 / vms:0.0} KiB per live VM)");
        if (results.Count == 2)
            Console.WriteLine($"kept after the churn (after - warm): {MiB(results[0].After - results[0].Warm):0.0} vs {MiB(results[1].After - results[1].Warm):0.0} MiB; " +
                              $"per live VM {results[0].PerVmKiB(vms):0} vs {results[1].PerVmKiB(vms):0} KiB (compared vs this build)");

        var mine = results[^1];
        bool afterOk = mine.After - mine.Warm <= (long)boundAfterKiB * 1024 * vms;
        bool perVmOk = mine.PerVmKiB(vms) <= boundPerVmKiB;
        Console.WriteLine($"bound: RSS after the churn <= warm + {boundAfterKiB} KiB x {vms} VMs ({boundAfterKiB * vms / 1024.0:0} MiB): {(afterOk ? "met" : "BROKEN")}; " +
                          $"RSS per live VM <= {boundPerVmKiB} KiB: {(perVmOk ? "met" : "BROKEN")}");
        return afterOk && perVmOk ? 0 : 1;
    }

    /// <summary>The churn against <c>actorstep serve</c> started from <paramref name="dll"/>, as a tester runs it (with its own
    /// runtimeconfig: Server GC). Nothing forces a collection there: "after" is RSS once it has settled.</summary>
    private static async Task<Figures> ChildProcess(string label, string dll, int vms, int memoryMiB, int steps)
    {
        int grpcPort = Loopback.FreePort(), gdbPort = Loopback.FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "serve", "--grpc", $"127.0.0.1:{grpcPort}", "--gdb", $"127.0.0.1:{gdbPort}", "--no-auth" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {dll}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
            var client = new Vms.VmsClient(channel);
            await Until(async () => { try { await client.ListVmsAsync(new ListVmsRequest()); return true; } catch { return false; } }, "the server to answer");
            Func<long> rss = () => Rss(process.Id);
            var f = await Churn(label, channel, vms, memoryMiB, steps, rss, settle: () => Settle(rss));
            return f;
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>The churn against a server in this process: full compacting collections (LOH too) before each figure, and the GC heap.</summary>
    private static async Task<Figures> InProcess(int vms, int memoryMiB, int steps)
    {
        await using var server = await ServerHost.StartAsync(new ServerOptions
        {
            Grpc = new IPEndPoint(IPAddress.Loopback, 0), HandleSignals = false, RequireToken = false, LogLevel = Serilog.Events.LogEventLevel.Warning,
        });
        using var channel = GrpcChannel.ForAddress(server.Address);
        var heaps = new List<long>();
        Func<long> rss = () => Rss(Environment.ProcessId);
        var f = await Churn("this build", channel, vms, memoryMiB, steps, rss, settle: async () =>
        {
            heaps.Add(FullCollection());
            return await Settle(rss);
        });
        return f with { HeapWarm = heaps[1], HeapPeak = heaps[2], HeapAfter = heaps[3] }; // [0]: fresh
    }

    private static async Task<Figures> Churn(string label, GrpcChannel channel, int vms, int memoryMiB, int steps, Func<long> rss, Func<Task<long>> settle)
    {
        long fresh = await settle();
        // The warm-up makes the server run every path of the churn once (JIT, Kestrel's and gRPC's pools, actor dispatchers).
        await CreateStepDelete(channel, Math.Min(vms, 50), memoryMiB, steps, "warm");
        long warm = await settle();
        var sw = Stopwatch.StartNew();
        var ids = await Create(channel, vms, memoryMiB, "churn");
        await Step(channel, ids, steps);
        long peak = await settle();
        Console.WriteLine($"{label}: {vms} VMs created and stepped in {sw.Elapsed.TotalSeconds:0.0} s; RSS {MiB(peak):0.0} MiB");
        sw.Restart();
        await Delete(channel, ids);
        long after = await settle();
        Console.WriteLine($"{label}: deleted in {sw.Elapsed.TotalSeconds:0.0} s; RSS {MiB(after):0.0} MiB");
        return new Figures(label, fresh, warm, peak, after);
    }

    private static async Task CreateStepDelete(GrpcChannel channel, int vms, int memoryMiB, int steps, string prefix)
    {
        var ids = await Create(channel, vms, memoryMiB, prefix);
        await Step(channel, ids, steps);
        await Delete(channel, ids);
    }

    private const int Concurrency = 16;

    private static async Task<List<string>> Create(GrpcChannel channel, int vms, int memoryMiB, string prefix)
    {
        var client = new Vms.VmsClient(channel);
        var ids = new List<string>();
        for (int i = 0; i < vms; i += Concurrency)
        {
            var batch = Enumerable.Range(i, Math.Min(Concurrency, vms - i)).Select(k => client.CreateVmAsync(new CreateVmRequest
            {
                BuiltIn = "demo", Vcpus = 4, MemorySize = (ulong)memoryMiB << 20, VmId = $"{prefix}-{k}",
            }).ResponseAsync);
            ids.AddRange((await Task.WhenAll(batch)).Select(v => v.VmId));
        }
        return ids;
    }

    private static async Task Step(GrpcChannel channel, List<string> ids, int steps)
    {
        var client = new RunControl.RunControlClient(channel);
        for (int i = 0; i < ids.Count; i += Concurrency)
            await Task.WhenAll(ids.Skip(i).Take(Concurrency).Select(async id =>
            {
                for (int s = 0; s < steps; s++)
                    await client.StepAsync(new StepRequest { VmId = id, Vcpu = (uint)(s & 3), SchedulerLocking = SchedulerLocking.Step });
            }));
    }

    private static async Task Delete(GrpcChannel channel, List<string> ids)
    {
        var client = new Vms.VmsClient(channel);
        for (int i = 0; i < ids.Count; i += Concurrency)
            await Task.WhenAll(ids.Skip(i).Take(Concurrency).Select(id => client.DeleteVmAsync(new DeleteVmRequest { VmId = id }).ResponseAsync));
    }

    /// <summary>RSS once it stops moving: sampled every 250 ms until two samples 1 s apart differ by under 1 MiB (at most 15 s).</summary>
    private static async Task<long> Settle(Func<long> rss)
    {
        long last = rss();
        for (int i = 0; i < 15; i++)
        {
            await Task.Delay(1000);
            long now = rss();
            if (Math.Abs(now - last) < 1 << 20) return now;
            last = now;
        }
        return last;
    }

    /// <summary>Full blocking compacting collection of every generation and the LOH; the GC heap size after it.</summary>
    private static long FullCollection()
    {
        for (int i = 0; i < 2; i++)
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetGCMemoryInfo(GCKind.Any).HeapSizeBytes;
    }

    /// <summary>Resident set size of a process (Linux: VmRSS of /proc/PID/status), in bytes.</summary>
    private static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim()) * 1024;
        throw new InvalidOperationException("no VmRSS in /proc/PID/status (not Linux?)");
    }

    private static double MiB(long bytes) => bytes / (1024.0 * 1024.0);

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"waited 60 s for {what}");
            await Task.Delay(200);
        }
    }

}
