using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorStep.Actors.Fleet;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Bench;

/// <summary>
/// Fleet-wide calls over a three-node cluster (three servers, each its own ActorSystem and Kestrel, in this process, talking
/// over loopback remoting): HaltAll of running VMs and SnapshotRegisters (every register of every vcpu) through node a,
/// p50/p99 over repeated calls, at 100 and then 1,000 VMs × 4 vcpus spread evenly; and the memory an idle VM costs.
/// </summary>
public sealed class FleetBenchmark : IBenchmark
{
    public string Name => "fleet";
    public string Description => "fleet-wide halt and register snapshot (p50/p99) over 3 nodes at 100 and 1,000 VMs x 4 vcpus; memory per idle VM  [--reps N] [--vms N,N] [--running: ContinueAll before each HaltAll]";

    public async Task<int> RunAsync(string[] args)
    {
        int reps = BenchArgs.Int(args, "--reps", 20);
        bool running = args.Contains("--running");
        int i = Array.IndexOf(args, "--vms");
        var sizes = i >= 0 && i + 1 < args.Length ? args[i + 1].Split(',').Select(int.Parse).ToArray() : [100, 1000];

        int seedPort = Loopback.FreePort();
        string seed = $"akka.tcp://{FleetConfig.SystemName}@127.0.0.1:{seedPort}";
        var servers = new List<RunningServer>();
        foreach (var name in new[] { "a", "b", "c" })
            servers.Add(await ServerHost.StartAsync(new ServerOptions
            {
                Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false,
                LogLevel = Serilog.Events.LogEventLevel.Warning,
                Cluster = new ClusterOptions(name, name == "a" ? seedPort : 0, [seed]),
            }));
        var channels = servers.Select(s => GrpcChannel.ForAddress(s.Address, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 })).ToList();
        try
        {
            var fleet = new Fleet.FleetClient(channels[0]);
            await Until(() => fleet.GetClusterStatus(new GetClusterStatusRequest()).Members.Count(m => m.Status == "Up") == 3, "cluster of 3");
            Console.WriteLine($"ActorStep fleet benchmark: 3 nodes in one process, {Environment.ProcessorCount} cpus, demo guest, 4 vcpus and 16 MiB per VM, {reps} calls per figure, through node a");

            var (heap0, ws0) = Memory();
            int have = 0;
            foreach (int size in sizes)
            {
                var sw = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, 3).Select(node => Task.Run(async () =>
                {
                    var vms = new Vms.VmsClient(channels[node]);
                    var creates = new List<Task>();
                    for (int k = have + node; k < size; k += 3)
                    {
                        creates.Add(vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 4, MemorySize = 16 << 20, Labels = { ["bench"] = "fleet" } }).ResponseAsync);
                        if (creates.Count == 16) { await Task.WhenAll(creates); creates.Clear(); }
                    }
                    await Task.WhenAll(creates);
                })));
                have = size;
                var vmsA = new Vms.VmsClient(channels[0]);
                await Until(() => vmsA.ListVms(new ListVmsRequest { LabelSelector = { ["bench"] = "fleet" } }).Vms.Count == size, $"{size} VMs listed on node a");
                var created = sw.Elapsed;
                var (heap, ws) = Memory();
                Console.WriteLine($"{size,5} VMs: created in {created.TotalSeconds:0.0} s; idle memory per VM: GC heap {(heap - heap0) / size / 1024.0,6:0.0} KiB, working set {(ws - ws0) / size / 1024.0,6:0.0} KiB (all three nodes' share)");

                var request = new FleetRequest { LabelSelector = { ["bench"] = "fleet" }, TimeoutMs = 60_000 };
                var halt = new Latencies();
                var snapshot = new Latencies();
                var resumeAll = new Latencies();
                for (int r = 0; r < reps + 2; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    if (running) Check(await ReadAll(fleet.ContinueAll(request)), size, "ContinueAll");
                    long t1 = Stopwatch.GetTimestamp();
                    Check(await ReadAll(fleet.HaltAll(request)), size, "HaltAll");
                    long t2 = Stopwatch.GetTimestamp();
                    Check(await ReadAll(fleet.SnapshotRegisters(request)), size, "SnapshotRegisters");
                    long t3 = Stopwatch.GetTimestamp();
                    if (r < 2) continue; // warm-up
                    if (running) resumeAll.Add(t1 - t0);
                    halt.Add(t2 - t1);
                    snapshot.Add(t3 - t2);
                }
                Console.WriteLine($"{size,5} VMs: HaltAll ({(running ? "running" : "stopped")} VMs)  p50 {halt.PercentileMicros(0.5) / 1000,8:0.0} ms   p99 {halt.PercentileMicros(0.99) / 1000,8:0.0} ms");
                Console.WriteLine($"{size,5} VMs: SnapshotRegisters    p50 {snapshot.PercentileMicros(0.5) / 1000,8:0.0} ms   p99 {snapshot.PercentileMicros(0.99) / 1000,8:0.0} ms   (84 registers x {size * 4} vcpus)");
                if (running) Console.WriteLine($"{size,5} VMs: ContinueAll          p50 {resumeAll.PercentileMicros(0.5) / 1000,8:0.0} ms   p99 {resumeAll.PercentileMicros(0.99) / 1000,8:0.0} ms");
            }
        }
        finally
        {
            foreach (var c in channels) c.Dispose();
            foreach (var s in servers) await s.DisposeAsync();
        }
        return 0;
    }

    private static void Check(List<FleetResult> results, int expected, string what)
    {
        int errors = results.Count(r => r.Error is not null);
        if (results.Count != expected || errors > 0)
            throw new InvalidOperationException($"{what}: {results.Count} results, {errors} errors (first: {results.FirstOrDefault(r => r.Error is not null)?.Error})");
    }

    private static async Task<List<FleetResult>> ReadAll(AsyncServerStreamingCall<FleetResult> call)
    {
        using (call)
        {
            var results = new List<FleetResult>();
            await foreach (var r in call.ResponseStream.ReadAllAsync()) results.Add(r);
            return results;
        }
    }

    /// <summary>GC heap after a full collection and the process working set, in bytes.</summary>
    private static (long Heap, long WorkingSet) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var p = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(true), p.WorkingSet64);
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(120);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException(what);
            await Task.Delay(100);
        }
    }

}
