using System.Diagnostics;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using Grpc.Core;
using Grpc.Net.Client;
using ApiFleet = ActorStep.Api.V1.Fleet;

namespace ActorStep.Tests.Fleet;

/// <summary>
/// One <c>actorstep serve --cluster</c> process on loopback, its gRPC and cluster ports picked by the system (port 0) and read
/// from what it prints, so that no port is chosen here and then taken by another test first; killed (whole tree) on dispose.
/// </summary>
public sealed partial class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = new();
    private readonly TaskCompletionSource<string> _grpc = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _cluster = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [GeneratedRegex(@"^ActorStep gRPC API on (http://[^ ]+) ")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"^Cluster node \S+ at (akka\.tcp://\S+);")]
    private static partial Regex ClusterLine();

    /// <summary>A private directory for the node's token file (each node has a secret of its own; calls routed between
    /// nodes go over Akka remoting and need none).</summary>
    private readonly string _tokenDir = Directory.CreateTempSubdirectory("actorstep-fleet-").FullName;

    private string TokenFile => Path.Combine(_tokenDir, "api.token");

    private ServeProcess(string name, string? seed, string[] extra)
    {
        Name = name;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        var args = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "actorstep.dll"), "serve", "--cluster", "--node-name", name,
            "--grpc", "127.0.0.1:0", "--cluster-port", "0", "--vcpus", "1", "--memory", "2", "--token-file", TokenFile,
        };
        if (seed is not null) args.AddRange(["--seed", seed]); // none: node of a new cluster
        args.AddRange(extra);
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => Received(e.Data);
        _process.ErrorDataReceived += (_, e) => Received(e.Data);
        _process.Exited += (_, _) =>
        {
            _grpc.TrySetException(new InvalidOperationException($"node {name} exited"));
            _cluster.TrySetException(new InvalidOperationException($"node {name} exited"));
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void Received(string? line)
    {
        if (line is null) return;
        lock (_output) _output.Add(line);
        if (GrpcLine().Match(line) is { Success: true } g) _grpc.TrySetResult(g.Groups[1].Value);
        if (ClusterLine().Match(line) is { Success: true } c) _cluster.TrySetResult(c.Groups[1].Value);
    }

    /// <summary>Starts a node and waits until it says where it listens; <paramref name="seed"/> null: it starts the cluster.</summary>
    public static async Task<ServeProcess> StartAsync(string name, string? seed, params string[] extra)
    {
        var node = new ServeProcess(name, seed, extra);
        try
        {
            await Task.WhenAll(node._grpc.Task, node._cluster.Task).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (Exception e)
        {
            string output = node.Output;
            node.Dispose();
            throw new InvalidOperationException($"node {name} did not start ({e.Message}):\n{output}");
        }
        node.Channel = ApiChannel.Create(new Uri(node._grpc.Task.Result), ApiToken.ReadFrom(node.TokenFile));
        node.ClusterAddress = node._cluster.Task.Result;
        return node;
    }

    /// <summary>Node <paramref name="names"/>[0] starts the cluster; the others join it, each with the first's address as seed.</summary>
    public static async Task<List<ServeProcess>> StartClusterAsync(IReadOnlyList<string> names, Func<string, string[]>? extra = null)
    {
        var nodes = new List<ServeProcess>();
        try
        {
            nodes.Add(await StartAsync(names[0], null, extra?.Invoke(names[0]) ?? []));
            nodes.AddRange(await Task.WhenAll(names.Skip(1).Select(n => StartAsync(n, nodes[0].ClusterAddress, extra?.Invoke(n) ?? []))));
            return nodes;
        }
        catch
        {
            foreach (var n in nodes) n.Dispose();
            throw;
        }
    }

    public string Name { get; }
    public GrpcChannel Channel { get; private set; } = null!;
    public string ClusterAddress { get; private set; } = "";
    public bool HasExited => _process.HasExited;

    public string Output { get { lock (_output) return string.Join("\n", _output.TakeLast(40)); } }

    /// <summary>SIGKILL (with its children): the node vanishes without leaving the cluster.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public void Dispose()
    {
        Channel?.Dispose();
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
        try { Directory.Delete(_tokenDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Three <c>actorstep serve --cluster</c> processes: routing across processes, fleet-wide calls, and a node that crashes.</summary>
public class FleetProcessTests
{
    private static DateTime Deadline(int seconds = 15) => DateTime.UtcNow.AddSeconds(seconds);

    [Fact]
    public async Task Three_serve_processes_route_any_call_and_report_the_VMs_of_a_killed_node_as_lost_within_the_deadline()
    {
        var nodes = await ServeProcess.StartClusterAsync(["a", "b", "c"]);
        try
        {
            var a = nodes[0];

            await Eventually(nodes, () => nodes.All(n => Members(n) == 3), "three nodes up, as each of them sees it", 40);

            // 100 VMs, each created through its own node's API: 34 on a, 33 on b, 33 on c.
            var created = await Task.WhenAll(nodes.Select((n, i) => Task.Run(async () =>
            {
                var vms = new List<Vm>();
                for (int k = i; k < 100; k += 3)
                    vms.Add(await new Vms.VmsClient(n.Channel).CreateVmAsync(new CreateVmRequest
                    {
                        BuiltIn = "demo", Vcpus = (uint)(k % 4 + 1), MemorySize = 2 << 20, Labels = { ["batch"] = "hundred" },
                    }, deadline: Deadline()));
                return vms;
            })));
            var all = created.SelectMany(v => v).ToDictionary(v => v.VmId);
            Assert.Equal(100, all.Count);
            var selector = new ListVmsRequest { LabelSelector = { ["batch"] = "hundred" } };
            await Eventually(nodes, () => new Vms.VmsClient(a.Channel).ListVms(selector, deadline: Deadline()).Vms.Count == 100, "node a lists all 100 VMs");
            // Another node's VMs are listed with their backend's capabilities, as the directory recorded them.
            var listed = new Vms.VmsClient(a.Channel).ListVms(selector, deadline: Deadline()).Vms.Where(v => v.Node != "a").ToList();
            Assert.NotEmpty(listed);
            Assert.All(listed, v => Assert.Equal((0x00dddd00u, true, false, false),
                (v.Capabilities.DebugInstruction, v.Capabilities.HoldsAsyncInterrupts, v.Capabilities.AllStop, v.Capabilities.HardwareSingleStep)));

            // A VM of node c, stepped through node a.
            var onC = created[2][0];
            Assert.Equal("c", onC.Node);
            var step = await new RunControl.RunControlClient(a.Channel).StepAsync(new StepRequest { VmId = onC.VmId, Vcpu = 0 }, deadline: Deadline());
            Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
            Assert.Equal(onC.Entry + 4, step.Vcpus[0].Nip);

            var fleet = new ApiFleet.FleetClient(a.Channel);
            var request = new FleetRequest { LabelSelector = { ["batch"] = "hundred" }, TimeoutMs = 10_000 };
            var halted = await ReadAll(fleet.HaltAll(request, deadline: Deadline()));
            Assert.Equal(all.Keys.Order(), halted.Select(r => r.VmId).Order());
            Assert.All(halted, r => Assert.True(r.Halted is not null, $"{r.VmId}: {r.Error}"));

            // An event stream through node a of a VM of node b: relayed by b while it lives, ended UNAVAILABLE when it dies.
            var onB = created[1][0];
            using var events = new Events.EventsClient(a.Channel).StreamEvents(new StreamEventsRequest { VmId = onB.VmId }, deadline: Deadline());
            Assert.True(await events.ResponseStream.MoveNext());
            Assert.Equal((onB.VmId, Event.KindOneofCase.Added), (events.ResponseStream.Current.VmId, events.ResponseStream.Current.KindCase));

            nodes[1].Kill();
            var lostStream = await Assert.ThrowsAsync<RpcException>(async () => { while (await events.ResponseStream.MoveNext()) { } });
            Assert.Equal(StatusCode.Unavailable, lostStream.StatusCode);
            var sw = Stopwatch.StartNew();
            var snapshot = await ReadAll(fleet.SnapshotRegisters(request, deadline: Deadline()));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(11), $"the snapshot took {sw.Elapsed}");
            AssertSnapshot(all, snapshot, lostCodes: [StatusCode.Unavailable, StatusCode.DeadlineExceeded]);

            // Once the failure detector has spoken, node b's VMs are listed as lost and a snapshot does not wait for them.
            await Eventually(nodes, () => new Vms.VmsClient(a.Channel).ListVms(selector, deadline: Deadline()).Vms.Where(v => v.Node == "b").All(v => v.Lost),
                "node b's VMs listed as lost", 10);
            sw.Restart();
            snapshot = await ReadAll(fleet.SnapshotRegisters(request, deadline: Deadline()));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"the snapshot took {sw.Elapsed}");
            AssertSnapshot(all, snapshot, lostCodes: [StatusCode.Unavailable]);
            Assert.All(snapshot.Where(r => r.Node == "b"), r => Assert.Contains("lost", r.Error.Message));
            Assert.False(nodes[0].HasExited || nodes[2].HasExited, "a and c keep serving");
        }
        finally
        {
            foreach (var n in nodes) n.Dispose();
        }
    }

    [Fact]
    public async Task Killing_a_node_whose_VMs_run_reports_them_lost_within_seconds_while_fleet_calls_answer_for_every_VM_and_the_others_run_on()
    {
        // Each node's initial VM (1 vcpu, the demo guest, which never stops) and a second one on b, all labelled.
        var nodes = await ServeProcess.StartClusterAsync(["a", "b", "c"], _ => ["--label", "fleet=busy"]);
        try
        {
            var (a, b, c) = (nodes[0], nodes[1], nodes[2]);
            await Eventually(nodes, () => nodes.All(n => Members(n) == 3), "three nodes up, as each of them sees it", 40);
            await new Vms.VmsClient(b.Channel).CreateVmAsync(new CreateVmRequest
            {
                BuiltIn = "demo", Vcpus = 1, MemorySize = 2 << 20, Labels = { ["fleet"] = "busy" },
            }, deadline: Deadline());
            var selector = new ListVmsRequest { LabelSelector = { ["fleet"] = "busy" } };
            await Eventually(nodes, () => new[] { a, c }.All(n => List(n, selector).Count == 4), "a and c list the 4 VMs");
            var vms = List(a, selector).ToDictionary(v => v.VmId);
            Assert.Equal(new[] { "a", "b", "b", "c" }, vms.Values.Select(v => v.Node).Order());
            var survivors = vms.Values.Where(v => v.Node != "b").Select(v => v.VmId).Order().ToList();
            var lost = vms.Values.Where(v => v.Node == "b").Select(v => v.VmId).Order().ToList();

            // Continue them all through node a, and check that each runs, as its own node says.
            var request = new FleetRequest { LabelSelector = { ["fleet"] = "busy" }, TimeoutMs = 10_000 };
            var resumed = await ReadAll(new ApiFleet.FleetClient(a.Channel).ContinueAll(request, deadline: Deadline()));
            Assert.Equal(vms.Keys.Order(), resumed.Select(r => r.VmId).Order());
            Assert.All(resumed, r => Assert.True(r.Resumed is { Running: true }, $"{r.VmId} on {r.Node}: {r.Error}"));
            foreach (var vm in vms.Values)
                Assert.True(new Vms.VmsClient(nodes.Single(n => n.Name == vm.Node).Channel).GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline()).Running,
                    $"{vm.VmId} does not run on {vm.Node}");

            b.Kill();
            var killed = Stopwatch.StartNew();

            // At once: a fleet call through c completes by its timeout, an entry for every VM, an error for each of b's.
            var timeBase = Tb(await ReadAll(new ApiFleet.FleetClient(c.Channel).SnapshotRegisters(Tbs(request), deadline: Deadline())),
                vms, survivors, lost, lostCodes: [StatusCode.Unavailable, StatusCode.DeadlineExceeded]);

            // Within seconds both survivors list b's VMs as lost.
            await Eventually(nodes, () => new[] { a, c }.All(n => List(n, selector).Where(v => v.Node == "b").All(v => v.Lost)),
                "node b's VMs listed as lost by a and c", 15);
            Assert.True(killed.Elapsed < TimeSpan.FromSeconds(15), $"lost after {killed.Elapsed}");
            Assert.All(List(a, selector).Where(v => v.Node != "b"), v => Assert.False(v.Lost, $"{v.VmId} of {v.Node} listed as lost"));

            // Now fleet calls do not wait for b: its VMs get UNAVAILABLE entries saying they are lost, and the survivors' VMs
            // have kept running all along (their time has moved on since the first snapshot).
            var sw = Stopwatch.StartNew();
            var snapshot = await ReadAll(new ApiFleet.FleetClient(a.Channel).SnapshotRegisters(Tbs(request), deadline: Deadline()));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"the snapshot took {sw.Elapsed}");
            var later = Tb(snapshot, vms, survivors, lost, lostCodes: [StatusCode.Unavailable]);
            Assert.All(snapshot.Where(r => r.Node == "b"), r => Assert.Contains("lost", r.Error.Message));
            foreach (var id in survivors) Assert.True(later[id] > timeBase[id], $"{id} did not run on after node b was killed");
            foreach (var vm in survivors)
                Assert.True(new Vms.VmsClient(nodes.Single(n => n.Name == vms[vm].Node).Channel).GetVm(new GetVmRequest { VmId = vm }, deadline: Deadline()).Running,
                    $"{vm} stopped running on {vms[vm].Node}");

            // And a fleet halt through c halts the survivors' VMs and says which it could not reach.
            var halted = await ReadAll(new ApiFleet.FleetClient(c.Channel).HaltAll(request, deadline: Deadline()));
            Assert.Equal(vms.Keys.Order(), halted.Select(r => r.VmId).Order());
            foreach (var r in halted)
            {
                if (r.Node == "b") Assert.True(r.Error is { Code: (int)StatusCode.Unavailable }, $"{r.VmId} of the killed node: {r}");
                else Assert.True(r.Halted is { Event.Reason: StopReason.Halted }, $"{r.VmId} on {r.Node}: {r.Error}");
            }
            Assert.All(survivors, vm => Assert.False(new Vms.VmsClient(a.Channel).GetVm(new GetVmRequest { VmId = vm }, deadline: Deadline()).Running));
            Assert.False(a.HasExited || c.HasExited, "a and c keep serving");
        }
        finally
        {
            foreach (var n in nodes) n.Dispose();
        }
    }

    private static List<Vm> List(ServeProcess node, ListVmsRequest selector) =>
        new Vms.VmsClient(node.Channel).ListVms(selector, deadline: Deadline()).Vms.ToList();

    private static FleetRequest Tbs(FleetRequest r) => new(r) { Registers = { new RegisterRef { Name = "tb" } } };

    /// <summary>One entry per VM: vcpu 0's time base for each survivor, an error (of <paramref name="lostCodes"/>) for each lost VM.</summary>
    private static Dictionary<string, ulong> Tb(List<FleetResult> snapshot, Dictionary<string, Vm> vms, List<string> survivors, List<string> lost,
        StatusCode[] lostCodes)
    {
        Assert.Equal(vms.Keys.Order(), snapshot.Select(r => r.VmId).Order());
        foreach (var r in snapshot.Where(r => lost.Contains(r.VmId)))
        {
            Assert.True(r.Error is not null, $"{r.VmId} of the killed node b has no error entry");
            Assert.Contains((StatusCode)r.Error.Code, lostCodes);
        }
        var tbs = new Dictionary<string, ulong>();
        foreach (var r in snapshot.Where(r => survivors.Contains(r.VmId)))
        {
            Assert.True(r.Registers is not null, $"{r.VmId} on {r.Node}: {r.Error}");
            tbs[r.VmId] = r.Registers.Vcpus.Single(v => v.Vcpu == 0).Registers.Single(x => x.Name == "tb").Value;
        }
        return tbs;
    }

    [Theory]
    [InlineData("--cluster", "--cluster needs --node-name")]
    [InlineData("--node-name a", "need --cluster")]
    [InlineData("--cluster --node-name A_1", "node name 'A_1' is not valid")]
    [InlineData("--cluster --node-name a --seed akka.tcp://actorstep@10.0.0.1:4053", "loopback only")]
    public async Task Serve_refuses_a_cluster_command_line_it_cannot_honour(string options, string message)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "actorstep.dll"));
        psi.ArgumentList.Add("serve");
        foreach (var a in options.Split(' ')) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(30_000);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(true); throw new TimeoutException("actorstep serve did not exit"); }
        Assert.Equal(2, p.ExitCode);
        Assert.Contains(message, await stderr);
    }

    /// <summary>Every VM of a and c with the registers of each of its vcpus; an error entry for each VM of b.</summary>
    private static void AssertSnapshot(Dictionary<string, Vm> all, List<FleetResult> snapshot, StatusCode[] lostCodes)
    {
        Assert.Equal(all.Keys.Order(), snapshot.Select(r => r.VmId).Order());
        foreach (var r in snapshot)
        {
            var vm = all[r.VmId];
            Assert.Equal(vm.Node, r.Node);
            if (vm.Node == "b")
            {
                Assert.True(r.Error is not null, $"{r.VmId} of the killed node b has no error entry");
                Assert.Contains((StatusCode)r.Error.Code, lostCodes);
                continue;
            }
            Assert.True(r.Registers is not null, $"{r.VmId} on {r.Node}: {r.Error}");
            Assert.Equal((int)vm.VcpuCount, r.Registers.Vcpus.Count);
            Assert.All(r.Registers.Vcpus, v => Assert.Contains(v.Registers, x => x.Name == "nip"));
        }
    }

    /// <summary>How many VMs the many-VM test runs: as many as CI's time allows on 2 shared cores (creation ~40-150 VMs/s there).</summary>
    private const int ManyVms = 1000;

    [Fact]
    public async Task Thousands_of_running_VMs_on_three_processes_halt_through_one_node_with_every_VM_answering_and_no_node_downed()
    {
        var nodes = await ServeProcess.StartClusterAsync(["a", "b", "c"]);
        try
        {
            await Eventually(nodes, () => nodes.All(n => Members(n) == 3), "three nodes up, as each of them sees it", 40);
            await Task.WhenAll(nodes.Select((n, i) => Task.Run(async () =>
            {
                var vms = new Vms.VmsClient(n.Channel);
                var creates = new List<Task>();
                for (int k = i; k < ManyVms; k += 3)
                {
                    creates.Add(vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 1, MemorySize = 2 << 20, Labels = { ["batch"] = "many" } },
                        deadline: Deadline(60)).ResponseAsync);
                    if (creates.Count == 16) { await Task.WhenAll(creates); creates.Clear(); }
                }
                await Task.WhenAll(creates);
            })));
            var fleet = new ApiFleet.FleetClient(nodes[0].Channel);
            var request = new FleetRequest { LabelSelector = { ["batch"] = "many" }, TimeoutMs = 60_000 };
            await Eventually(nodes, () => new Vms.VmsClient(nodes[0].Channel).ListVms(new ListVmsRequest { LabelSelector = { ["batch"] = "many" } },
                deadline: Deadline()).Vms.Count == ManyVms, $"node a lists all {ManyVms} VMs", 60);

            var resumed = await ReadAll(fleet.ContinueAll(request, deadline: Deadline(90)));
            // Every VM has its entry; on a loaded machine a few describe-after-continue answers time out while
            // the continue itself went through: the halt below is what must reach every VM.
            Assert.Equal(ManyVms, resumed.Select(r => r.VmId).Distinct().Count());
            Assert.All(resumed.Where(r => r.Error is not null), r => Assert.Matches("Timeout after|did not answer in time", r.Error.Message));
            await Task.Delay(TimeSpan.FromSeconds(3)); // every vcpu of every VM runs

            var halted = await ReadAll(fleet.HaltAll(request, deadline: Deadline(90)));
            Assert.Equal(ManyVms, halted.Select(r => r.VmId).Distinct().Count());
            Assert.Empty(halted.Where(r => r.Error is not null).Select(r => $"{r.VmId}: {r.Error}"));
            Assert.All(halted, r => Assert.NotNull(r.Halted));
            Assert.All(nodes, n => Assert.Equal(3, Members(n)));
            Assert.All(nodes, n => Assert.DoesNotContain("removed from the cluster", n.Output));
        }
        finally
        {
            foreach (var n in nodes) n.Dispose();
        }
    }

    private static int Members(ServeProcess node)
    {
        try
        {
            return new ApiFleet.FleetClient(node.Channel).GetClusterStatus(new GetClusterStatusRequest(), deadline: Deadline(2))
                .Members.Count(m => m.Status == "Up" && m.Reachable);
        }
        catch (RpcException) { return 0; } // not listening yet
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

    private static async Task Eventually(List<ServeProcess> nodes, Func<bool> condition, string what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            if (condition()) return;
            if (nodes.FirstOrDefault(n => n.HasExited && n.Name != "b") is { } dead)
                throw new InvalidOperationException($"node {dead.Name} exited:\n{dead.Output}");
            await Task.Delay(200);
        }
        throw new TimeoutException($"not reached within {seconds}s: {what}\n" + string.Join("\n", nodes.Select(n => $"--- {n.Name}:\n{n.Output}")));
    }
}
