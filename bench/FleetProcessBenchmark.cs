using System.Diagnostics;
using System.Text.RegularExpressions;
using ActorStep.Actors.Fleet;
using ActorStep.Api.V1;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Bench;

/// <summary>
/// The fleet on three <c>actorstep serve --cluster</c> processes (what the issue measured): create N VMs × 4 vcpus through the
/// three nodes, HaltAll of the stopped fleet, ContinueAll then HaltAll of the running fleet, SnapshotRegisters, all through node
/// a; memory per VM (the nodes' RSS); and the worst round trip to each node's cluster heartbeat receiver meanwhile, measured by a
/// fourth, idle member in this process (<see cref="HeartbeatProbe"/>), with the count of members marked unreachable or removed.
/// </summary>
public sealed partial class FleetProcessBenchmark : IBenchmark
{
    public string Name => "fleet-processes";
    public string Description => "fleet over 3 serve processes: create, HaltAll stopped/running, ContinueAll, SnapshotRegisters, RSS per VM, worst heartbeat round trip  [--vms N] [--reps N] [--run-seconds S] [--server PATH]";

    [GeneratedRegex(@"^ActorStep gRPC API on (http://[^ ]+) ")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"^Cluster node \S+ at (akka\.tcp://\S+);")]
    private static partial Regex ClusterLine();

    private sealed class Node(string name, Process process)
    {
        public string Name => name;
        public Process Process => process;
        public readonly TaskCompletionSource<string> Grpc = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource<string> Cluster = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly List<string> Warnings = new();
    }

    public async Task<int> RunAsync(string[] args)
    {
        int vmCount = BenchArgs.Int(args, "--vms", 3000);
        int reps = BenchArgs.Int(args, "--reps", 3);
        int runSeconds = BenchArgs.Int(args, "--run-seconds", 5);
        int i = Array.IndexOf(args, "--server");
        string dll = i >= 0 && i + 1 < args.Length ? args[i + 1] : Path.Combine(AppContext.BaseDirectory, "actorstep.dll");

        var nodes = new List<Node>();
        ActorSystem? probeSystem = null;
        var channels = new List<GrpcChannel>();
        try
        {
            nodes.Add(Start(dll, "a", null));
            string seed = await nodes[0].Cluster.Task.WaitAsync(TimeSpan.FromSeconds(60));
            nodes.Add(Start(dll, "b", seed));
            nodes.Add(Start(dll, "c", seed));
            foreach (var n in nodes) channels.Add(GrpcChannel.ForAddress(await n.Grpc.Task.WaitAsync(TimeSpan.FromSeconds(60)), new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 }));
            probeSystem = ActorSystem.Create(FleetConfig.SystemName, ConfigurationFactory.ParseString(FleetConfig.Hocon("127.0.0.1", 0, [seed], "probe")));
            Akka.DistributedData.DistributedData.Get(probeSystem); // a member like the others: the nodes' directory writes reach every member
            var fleet = new Fleet.FleetClient(channels[0]);
            await Until(() => fleet.GetClusterStatus(new GetClusterStatusRequest()).Members.Count(m => m.Status == "Up") == 4, "cluster of 3 + probe");
            var probe = probeSystem.ActorOf(HeartbeatProbe.Props(), "heartbeat-probe");
            Console.WriteLine($"ActorStep fleet over 3 serve processes ({Environment.ProcessorCount} cpus, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}): {vmCount} VMs x 4 vcpus, 16 MiB, demo guest; {reps} calls per figure through node a; heartbeat probe every {HeartbeatProbe.Interval.TotalMilliseconds:0} ms");

            long rss0 = nodes.Sum(n => Rss(n.Process.Id));
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, 3).Select(node => Task.Run(async () =>
            {
                var vms = new Vms.VmsClient(channels[node]);
                var creates = new List<Task>();
                for (int k = node; k < vmCount; k += 3)
                {
                    creates.Add(vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 4, MemorySize = 16 << 20, Labels = { ["bench"] = "fleet" } }).ResponseAsync);
                    if (creates.Count == 16) { await Task.WhenAll(creates); creates.Clear(); }
                }
                await Task.WhenAll(creates);
            })));
            var created = sw.Elapsed;
            long rss1 = nodes.Sum(n => Rss(n.Process.Id));
            Console.WriteLine($"created {vmCount} VMs in {created.TotalSeconds:0.0} s ({vmCount / created.TotalSeconds:0}/s); RSS per VM {(rss1 - rss0) / (double)vmCount / 1024:0} KiB (3 nodes)");
            await Report(probe, "creation");

            var request = new FleetRequest { LabelSelector = { ["bench"] = "fleet" }, TimeoutMs = 60_000 };
            var haltStopped = new Latencies();
            for (int r = 0; r < reps; r++) haltStopped.Add(await Timed(fleet.HaltAll(request), vmCount, "HaltAll (stopped)"));
            Print("HaltAll, stopped fleet", haltStopped);
            var snapshot = new Latencies();
            var snapshotValues = new Latencies();
            var valuesOnly = new FleetRequest(request) { ValuesOnly = true };
            for (int r = 0; r < reps; r++)
            {
                // Side by side: Register entries, then the values only (FleetRequest.values_only).
                snapshot.Add(await Timed(fleet.SnapshotRegisters(request), vmCount, "SnapshotRegisters"));
                snapshotValues.Add(await Timed(fleet.SnapshotRegisters(valuesOnly), vmCount, "SnapshotRegisters (values only)"));
            }
            Print("SnapshotRegisters", snapshot);
            Print("SnapshotRegisters, values only", snapshotValues);
            await Report(probe, "stopped-fleet calls");

            var cont = new Latencies();
            var haltRunning = new Latencies();
            for (int r = 0; r < reps; r++)
            {
                cont.Add(await Timed(fleet.ContinueAll(request), vmCount, "ContinueAll"));
                await Task.Delay(TimeSpan.FromSeconds(runSeconds)); // every vcpu runs
                haltRunning.Add(await Timed(fleet.HaltAll(request), vmCount, "HaltAll (running)"));
            }
            Print("ContinueAll", cont);
            Print($"HaltAll, running fleet ({vmCount * 4} vcpus ran {runSeconds} s)", haltRunning);
            await Report(probe, $"{vmCount * 4} running vcpus");

            var status = fleet.GetClusterStatus(new GetClusterStatusRequest());
            Console.WriteLine($"members at the end: {string.Join(", ", status.Members.Select(m => $"{m.Name} {m.Status}{(m.Reachable ? "" : " UNREACHABLE")}"))}");
            foreach (var n in nodes)
                lock (n.Warnings) Console.WriteLine($"node {n.Name}: {n.Warnings.Count} warning lines{(n.Warnings.Count > 0 ? ", first: " + n.Warnings[0] : "")}");
            return 0;
        }
        finally
        {
            foreach (var c in channels) c.Dispose();
            if (probeSystem is not null) await probeSystem.Terminate();
            foreach (var n in nodes)
            {
                try { n.Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                n.Process.WaitForExit(10_000);
            }
        }
    }

    private static Node Start(string dll, string name, string? seed)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { dll, "serve", "--cluster", "--node-name", name, "--grpc", "127.0.0.1:0", "--cluster-port", "0", "--vcpus", "1", "--memory", "2", "--no-auth" })
            psi.ArgumentList.Add(a);
        if (seed is not null) { psi.ArgumentList.Add("--seed"); psi.ArgumentList.Add(seed); }
        var node = new Node(name, new Process { StartInfo = psi });
        void Line(string? line)
        {
            if (line is null) return;
            if (GrpcLine().Match(line) is { Success: true } g) node.Grpc.TrySetResult(g.Groups[1].Value);
            if (ClusterLine().Match(line) is { Success: true } c) node.Cluster.TrySetResult(c.Groups[1].Value);
            if (line.Contains("WRN") || line.Contains("ERR") || line.Contains("unreachable", StringComparison.OrdinalIgnoreCase))
                lock (node.Warnings) node.Warnings.Add(line.Length > 200 ? line[..200] : line);
        }
        node.Process.OutputDataReceived += (_, e) => Line(e.Data);
        node.Process.ErrorDataReceived += (_, e) => Line(e.Data);
        node.Process.Start();
        node.Process.BeginOutputReadLine();
        node.Process.BeginErrorReadLine();
        return node;
    }

    private static async Task Report(IActorRef probe, string phase)
    {
        var r = await probe.Ask<HeartbeatProbe.Report>(new HeartbeatProbe.GetReport(), TimeSpan.FromSeconds(10));
        Console.WriteLine($"heartbeat round trip, worst during {phase}: {r.Worst.TotalMilliseconds:0} ms ({string.Join(", ", r.WorstRoundTrip.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value.TotalMilliseconds:0}"))}); {r.Pings} pings, {r.Unreachable} unreachable, {r.Downed} removed");
        probe.Tell(new HeartbeatProbe.Reset());
    }

    private static void Print(string what, Latencies l) =>
        Console.WriteLine($"{what}: p50 {l.PercentileMicros(0.5) / 1000:0} ms, p99 {l.PercentileMicros(0.99) / 1000:0} ms");

    private static async Task<long> Timed(AsyncServerStreamingCall<FleetResult> call, int expected, string what)
    {
        long t0 = Stopwatch.GetTimestamp();
        var results = new List<FleetResult>();
        using (call)
            await foreach (var r in call.ResponseStream.ReadAllAsync()) results.Add(r);
        long elapsed = Stopwatch.GetTimestamp() - t0;
        int errors = results.Count(r => r.Error is not null);
        if (results.Count != expected || errors > 0)
            Console.WriteLine($"  {what}: {results.Count} results of {expected}, {errors} errors ({string.Join("; ", results.Where(r => r.Error is not null)
                .GroupBy(r => System.Text.RegularExpressions.Regex.Replace(r.Error.Message, @"vm-\d+", "vm-N")).Take(3).Select(g => $"{g.Count()} x {g.First().Error}"))})");
        return elapsed;
    }

    private static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(120);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException(what);
            await Task.Delay(200);
        }
    }
}
