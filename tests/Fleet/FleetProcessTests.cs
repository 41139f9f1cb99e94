using System.Diagnostics;
using ActorStep.Actors.Fleet;
using ActorStep.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;
using ApiFleet = ActorStep.Api.V1.Fleet;

namespace ActorStep.Tests.Fleet;

/// <summary>One <c>actorstep serve --cluster</c> process on loopback; killed (whole tree) on dispose.</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = new();

    public ServeProcess(string name, int grpcPort, int clusterPort, string seed)
    {
        Name = name;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "actorstep.dll"), "serve", "--cluster", "--node-name", name,
                     "--grpc", $"127.0.0.1:{grpcPort}", "--cluster-port", clusterPort.ToString(), "--seed", seed, "--vcpus", "1", "--memory", "2",
                 })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
    }

    public string Name { get; }
    public GrpcChannel Channel { get; }
    public bool HasExited => _process.HasExited;

    public string Output { get { lock (_output) return string.Join("\n", _output.TakeLast(40)); } }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public void Dispose()
    {
        Channel.Dispose();
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
    }
}

/// <summary>Three <c>actorstep serve --cluster</c> processes: routing across processes, fleet-wide calls, and a node that crashes.</summary>
public class FleetProcessTests
{
    private static DateTime Deadline(int seconds = 15) => DateTime.UtcNow.AddSeconds(seconds);

    [Fact]
    public async Task Three_serve_processes_route_any_call_and_report_the_VMs_of_a_killed_node_as_lost_within_the_deadline()
    {
        int seedPort = VmDirectoryTests.FreePort();
        string seed = $"akka.tcp://{FleetConfig.SystemName}@127.0.0.1:{seedPort}";
        var nodes = new List<ServeProcess>();
        try
        {
            foreach (var name in new[] { "a", "b", "c" })
                nodes.Add(new ServeProcess(name, VmDirectoryTests.FreePort(), name == "a" ? seedPort : VmDirectoryTests.FreePort(), seed));
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
