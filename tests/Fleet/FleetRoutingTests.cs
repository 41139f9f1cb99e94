using System.Diagnostics;
using System.Net;
using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Grpc.Core;
using Grpc.Net.Client;
using static ActorStep.Actors.Fleet.VmDirectoryProtocol;
using ApiFleet = ActorStep.Api.V1.Fleet;

namespace ActorStep.Tests.Fleet;

/// <summary>
/// Three ActorStep servers (real Kestrel, each its own ActorSystem) in one cluster in this process, plus a bare node that is a
/// member but serves nothing (a node that never answers).
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public readonly List<RunningServer> Servers = new();
    public readonly List<GrpcChannel> Channels = new();
    public ActorSystem Mute { get; private set; } = null!;
    public IActorRef MuteDirectory { get; private set; } = null!;
    public string Seed { get; private set; } = "";

    public static DateTime Deadline => DateTime.UtcNow.AddSeconds(15);

    public async Task InitializeAsync()
    {
        // Every port is picked by the system and reported by the server (no port chosen here, then bound by another test):
        // node a starts a cluster of its own and is the seed of the others.
        foreach (var name in new[] { "a", "b", "c" })
        {
            var server = await ServerHost.StartAsync(new ServerOptions
            {
                Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false,
                LogLevel = Serilog.Events.LogEventLevel.Warning,
                Cluster = new ClusterOptions(name, 0, name == "a" ? [] : [Seed]),
            });
            Servers.Add(server);
            Channels.Add(GrpcChannel.ForAddress(server.Address));
            if (name == "a") Seed = server.ClusterAddress!;
        }
        Mute = ActorSystem.Create(FleetConfig.SystemName, ConfigurationFactory.ParseString(FleetConfig.Hocon("127.0.0.1", 0, [Seed], "mute")));
        MuteDirectory = Mute.ActorOf(VmDirectory.Props(), "vm-directory");
        await Eventually(() => Channels.All(c => new ApiFleet.FleetClient(c).GetClusterStatus(new GetClusterStatusRequest(), deadline: Deadline)
            .Members.Count(m => m.Status == "Up") == 4), "a cluster of 4 up");
    }

    public async Task DisposeAsync()
    {
        foreach (var c in Channels) c.Dispose();
        await Task.WhenAll(Servers.Select(s => s.DisposeAsync().AsTask()).Append(Mute.Terminate()));
    }

    public Vms.VmsClient Vms(int node) => new(Channels[node]);
    public RunControl.RunControlClient Run(int node) => new(Channels[node]);
    public Api.V1.Registers.RegistersClient Registers(int node) => new(Channels[node]);
    public ApiFleet.FleetClient Fleet(int node) => new(Channels[node]);

    public static async Task Eventually(Func<bool> condition, string what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            if (condition()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException($"not reached within {seconds}s: {what}");
    }

    /// <summary>Creates <paramref name="count"/> demo VMs on a node (through its own API) and waits until every node lists them.</summary>
    public async Task<List<Vm>> CreateVms(int node, int count, string label, uint vcpus = 2)
    {
        var vms = new List<Vm>();
        for (int i = 0; i < count; i++)
            vms.Add(await Vms(node).CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = vcpus, MemorySize = 2 << 20, Labels = { ["test"] = label } },
                deadline: Deadline));
        await Eventually(() => Enumerable.Range(0, 3).All(n => Vms(n).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = label } }, deadline: Deadline).Vms
            .Count(v => v.Node == vms[0].Node) >= vms.Count), "replicated to every node");
        return vms;
    }

    public static async Task<List<FleetResult>> ReadAll(AsyncServerStreamingCall<FleetResult> call)
    {
        var results = new List<FleetResult>();
        await foreach (var r in call.ResponseStream.ReadAllAsync()) results.Add(r);
        return results;
    }
}

/// <summary>Routing and fleet-wide operations across the nodes of a cluster in one process.</summary>
public class FleetRoutingTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    private static DateTime Deadline => ClusterFixture.Deadline;

    [Fact]
    public async Task A_VM_created_on_node_c_is_stepped_and_read_through_node_a()
    {
        var vm = (await cluster.CreateVms(2, 1, "route"))[0];
        Assert.StartsWith("c-vm-", vm.VmId);
        Assert.Equal("c", vm.Node);

        var step = await cluster.Run(0).StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 1, SchedulerLocking = SchedulerLocking.Step }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
        Assert.Equal(vm.Entry + 4, step.Vcpus[1].Nip);

        var viaA = await cluster.Registers(0).GetVcpuRegistersAsync(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 1, Registers = { new RegisterRef { Name = "nip" } } },
            deadline: Deadline);
        var viaC = await cluster.Registers(2).GetVcpuRegistersAsync(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 1, Registers = { new RegisterRef { Name = "nip" } } },
            deadline: Deadline);
        Assert.Equal(vm.Entry + 4, viaA.Registers[0].Value);
        Assert.Equal(viaC.Registers[0].Value, viaA.Registers[0].Value);
        var described = await cluster.Vms(1).GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal("c", described.Node);
        Assert.Equal(2, described.Vcpus.Count);
    }

    [Fact]
    public async Task Errors_of_the_owning_node_reach_the_caller_with_their_status()
    {
        var vm = (await cluster.CreateVms(1, 1, "errors"))[0];
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Registers(0).GetVcpuRegistersAsync(
            new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 7 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("vcpu 7", e.Status.Detail);
    }

    [Fact]
    public async Task A_VM_no_node_has_is_NotFound_on_every_node()
    {
        for (int node = 0; node < 3; node++)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Run(node).HaltAsync(new HaltRequest { VmId = "z-vm-404" }, deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, e.StatusCode);
            Assert.Contains("z-vm-404", e.Status.Detail);
        }
    }

    [Fact]
    public async Task Every_node_lists_every_VM_with_the_node_that_runs_it()
    {
        var a = await cluster.CreateVms(0, 1, "list");
        var c = await cluster.CreateVms(2, 2, "list");
        await ClusterFixture.Eventually(() => cluster.Vms(1).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = "list" } }, deadline: Deadline).Vms.Count == 3,
            "node b lists 3");
        var listed = cluster.Vms(1).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = "list" } }, deadline: Deadline).Vms;
        Assert.Equal(a.Concat(c).Select(v => (v.VmId, v.Node)).Order(), listed.Select(v => (v.VmId, v.Node)).Order());
        Assert.All(listed, v => Assert.False(v.Lost));
        Assert.All(listed, v => Assert.Equal(2u, v.VcpuCount));
    }

    [Fact]
    public async Task A_VM_id_taken_on_another_node_cannot_be_created_again()
    {
        var vm = (await cluster.CreateVms(2, 1, "taken"))[0];
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Vms(0).CreateVmAsync(
            new CreateVmRequest { BuiltIn = "demo", Vcpus = 1, MemorySize = 2 << 20, VmId = vm.VmId }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Contains("node c", e.Status.Detail);
    }

    [Fact]
    public async Task A_resume_routed_to_another_node_and_cut_short_by_its_deadline_halts_the_VM_there()
    {
        var vm = (await cluster.CreateVms(1, 1, "deadline-resume"))[0];
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Run(0).ContinueAsync(new ContinueRequest { VmId = vm.VmId },
            deadline: DateTime.UtcNow.AddMilliseconds(800)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        await ClusterFixture.Eventually(() => !cluster.Vms(0).GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).Running, "halted on node b", 5);
    }

    [Fact]
    public async Task An_event_stream_of_a_VM_of_another_node_is_relayed_by_that_node_until_the_VM_is_deleted()
    {
        var vm = (await cluster.CreateVms(2, 1, "events"))[0];
        using var stream = new Events.EventsClient(cluster.Channels[0]).StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.True(await stream.ResponseStream.MoveNext());
        Assert.Equal((vm.VmId, Event.KindOneofCase.Added), (stream.ResponseStream.Current.VmId, stream.ResponseStream.Current.KindCase));

        // Stepped through a third node: the stream on node a still sees it, relayed by node c.
        var step = await cluster.Run(1).StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        var seen = new List<Event>();
        while (seen.Count == 0 || seen[^1].KindCase != Event.KindOneofCase.Stopped)
        {
            Assert.True(await stream.ResponseStream.MoveNext());
            seen.Add(stream.ResponseStream.Current);
        }
        Assert.Equal([Event.KindOneofCase.Resumed, Event.KindOneofCase.Stopped], seen.Select(e => e.KindCase));
        Assert.Equal((StopReason.StepCompleted, step.Event.Nip), (seen[^1].Stopped.Event.Reason, seen[^1].Stopped.Event.Nip));
        Assert.True(seen[0].Sequence < seen[1].Sequence);

        await cluster.Vms(0).DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.True(await stream.ResponseStream.MoveNext());
        Assert.Equal(Event.KindOneofCase.Removed, stream.ResponseStream.Current.KindCase);
        Assert.False(await stream.ResponseStream.MoveNext()); // the stream ends with its VM, as on the VM's own node
    }

    [Fact]
    public async Task A_selector_event_stream_carries_the_VMs_of_every_node()
    {
        var vms = (await cluster.CreateVms(1, 1, "events-fleet")).Concat(await cluster.CreateVms(2, 1, "events-fleet")).ToList();
        using var stream = new Events.EventsClient(cluster.Channels[0]).StreamEvents(
            new StreamEventsRequest { LabelSelector = { ["test"] = "events-fleet" } }, deadline: Deadline);
        var added = new List<string>();
        while (added.Count < 2)
        {
            Assert.True(await stream.ResponseStream.MoveNext());
            Assert.Equal(Event.KindOneofCase.Added, stream.ResponseStream.Current.KindCase);
            added.Add(stream.ResponseStream.Current.VmId);
        }
        Assert.Equal(vms.Select(v => v.VmId).Order(), added.Order());

        await cluster.Run(0).StepAsync(new StepRequest { VmId = vms[1].VmId, Vcpu = 1, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Event e;
        do
        {
            Assert.True(await stream.ResponseStream.MoveNext());
            e = stream.ResponseStream.Current;
        } while (e.KindCase != Event.KindOneofCase.Stopped);
        Assert.Equal((vms[1].VmId, 1u), (e.VmId, e.Stopped.Event.Vcpu));
    }

    [Fact]
    public async Task Fleet_wide_halt_and_snapshot_answer_for_every_selected_VM_of_every_node()
    {
        var vms = (await cluster.CreateVms(0, 2, "fleet-ops")).Concat(await cluster.CreateVms(1, 2, "fleet-ops")).Concat(await cluster.CreateVms(2, 2, "fleet-ops")).ToList();
        var selector = new FleetRequest { LabelSelector = { ["test"] = "fleet-ops" }, TimeoutMs = 10_000 };

        var resumed = await ClusterFixture.ReadAll(cluster.Fleet(1).ContinueAll(selector, deadline: Deadline));
        Assert.Equal(vms.Select(v => v.VmId).Order(), resumed.Select(r => r.VmId).Order());
        Assert.All(resumed, r => Assert.True(r.Resumed?.Running, $"{r.VmId}: {r.Error}"));

        var halted = await ClusterFixture.ReadAll(cluster.Fleet(1).HaltAll(selector, deadline: Deadline));
        Assert.Equal(vms.Select(v => v.VmId).Order(), halted.Select(r => r.VmId).Order());
        Assert.All(halted, r => Assert.Equal(StopReason.Halted, r.Halted?.Event.Reason));
        Assert.All(halted, r => Assert.Equal(vms.Single(v => v.VmId == r.VmId).Node, r.Node));

        var snapshot = await ClusterFixture.ReadAll(cluster.Fleet(2).SnapshotRegisters(
            new FleetRequest(selector) { Registers = { new RegisterRef { Name = "nip" }, new RegisterRef { Name = "r3" } } }, deadline: Deadline));
        Assert.Equal(vms.Count, snapshot.Count);
        foreach (var r in snapshot)
        {
            Assert.Equal(2, r.Registers.Vcpus.Count);
            var stop = halted.Single(h => h.VmId == r.VmId).Halted;
            foreach (var v in r.Registers.Vcpus)
            {
                Assert.Equal(new[] { "nip", "r3" }, v.Registers.Select(x => x.Name));
                Assert.Equal(stop.Vcpus[(int)v.Vcpu].Nip, v.Registers[0].Value);
            }
        }

        // The same snapshot as values only: every register of every vcpu, in the catalogue's order, equal to the entries.
        var full = await ClusterFixture.ReadAll(cluster.Fleet(0).SnapshotRegisters(selector, deadline: Deadline));
        var values = await ClusterFixture.ReadAll(cluster.Fleet(0).SnapshotRegisters(new FleetRequest(selector) { ValuesOnly = true }, deadline: Deadline));
        Assert.Equal(vms.Select(v => v.VmId).Order(), values.Select(r => r.VmId).Order());
        foreach (var r in values)
        {
            var entries = full.Single(f => f.VmId == r.VmId).Registers.Vcpus;
            Assert.Equal(entries.Select(v => v.Vcpu), r.Registers.Vcpus.Select(v => v.Vcpu));
            foreach (var (v, e) in r.Registers.Vcpus.Zip(entries))
            {
                Assert.Empty(v.Registers);
                Assert.True(e.Registers.Count > 40, $"only {e.Registers.Count} registers in the catalogue");
                Assert.Equal(e.Registers.Select(x => x.Value), v.Values);
            }
        }
    }

    [Fact]
    public async Task A_fleet_wide_breakpoint_is_inserted_in_and_removed_from_every_selected_VM()
    {
        var vms = (await cluster.CreateVms(0, 1, "fleet-bp")).Concat(await cluster.CreateVms(2, 2, "fleet-bp")).ToList();
        var request = new FleetRequest { LabelSelector = { ["test"] = "fleet-bp" }, Address = vms[0].Entry + 8 };
        var inserted = await ClusterFixture.ReadAll(cluster.Fleet(0).InsertBreakpointAll(request, deadline: Deadline));
        Assert.Equal(3, inserted.Count);
        Assert.All(inserted, r => Assert.True(r.Breakpoint?.Changed, $"{r.VmId}: {r.Error}"));
        foreach (var vm in vms)
            Assert.Equal(1u, (await cluster.Vms(1).GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline)).BreakpointCount);
        var removed = await ClusterFixture.ReadAll(cluster.Fleet(0).RemoveBreakpointAll(request, deadline: Deadline));
        Assert.All(removed, r => Assert.True(r.Breakpoint?.Changed, $"{r.VmId}: {r.Error}"));
        foreach (var vm in vms)
            Assert.Equal(0u, (await cluster.Vms(1).GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline)).BreakpointCount);
    }

    [Fact]
    public async Task A_node_that_never_answers_costs_a_call_its_deadline_and_a_fleet_call_one_error_entry()
    {
        var record = new VmRecord { VmId = "mute-vm-1", Node = Cluster.Get(cluster.Mute).SelfAddress.ToString(), NodeName = "mute", Vcpus = 1, Image = "demo" };
        record.Labels["test"] = "mute";
        cluster.MuteDirectory.Tell(new RegisterVm(record));
        var answering = await cluster.CreateVms(2, 2, "mute");
        await ClusterFixture.Eventually(() => cluster.Vms(0).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = "mute" } }, deadline: Deadline).Vms.Count == 3,
            "the mute node's VM is listed");

        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Run(0).HaltAsync(new HaltRequest { VmId = "mute-vm-1" },
            deadline: DateTime.UtcNow.AddMilliseconds(1500)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.InRange(sw.ElapsedMilliseconds, 1000, 5000);

        sw.Restart();
        var results = await ClusterFixture.ReadAll(cluster.Fleet(0).HaltAll(new FleetRequest { LabelSelector = { ["test"] = "mute" }, TimeoutMs = 1500 },
            deadline: Deadline));
        Assert.InRange(sw.ElapsedMilliseconds, 1000, 5000);
        Assert.Equal(3, results.Count);
        var mute = results.Single(r => r.VmId == "mute-vm-1");
        Assert.Equal((int)StatusCode.DeadlineExceeded, mute.Error?.Code);
        Assert.Contains("node mute", mute.Error!.Message);
        Assert.All(results.Where(r => r.VmId != "mute-vm-1"), r => Assert.NotNull(r.Halted));
        Assert.All(answering, vm => Assert.True(results.Single(r => r.VmId == vm.VmId).ElapsedMs < 1000));
    }

    [Fact]
    public async Task The_VMs_of_a_node_that_leaves_are_listed_as_lost_and_calls_to_them_fail_at_once()
    {
        var leaving = ActorSystem.Create(FleetConfig.SystemName, ConfigurationFactory.ParseString(FleetConfig.Hocon("127.0.0.1", 0, [cluster.Seed], "gone")));
        try
        {
            var directory = leaving.ActorOf(VmDirectory.Props(), "vm-directory");
            await ClusterFixture.Eventually(() => Cluster.Get(leaving).State.Members.Any(m => m.Address == Cluster.Get(leaving).SelfAddress && m.Status == MemberStatus.Up),
                "joined");
            var record = new VmRecord { VmId = "gone-vm-1", Node = Cluster.Get(leaving).SelfAddress.ToString(), NodeName = "gone", Vcpus = 1, Image = "demo" };
            record.Labels["test"] = "gone";
            directory.Tell(new RegisterVm(record));
            await ClusterFixture.Eventually(() => cluster.Vms(0).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = "gone" } }, deadline: Deadline).Vms.Count == 1,
                "listed");
        }
        finally
        {
            await leaving.Terminate();
        }
        await ClusterFixture.Eventually(() => cluster.Vms(0).ListVms(new ListVmsRequest { LabelSelector = { ["test"] = "gone" } }, deadline: Deadline).Vms.Single().Lost,
            "listed as lost", 10);

        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Run(0).HaltAsync(new HaltRequest { VmId = "gone-vm-1" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("node gone", e.Status.Detail);
        Assert.True(sw.ElapsedMilliseconds < 1000, $"{sw.ElapsedMilliseconds} ms");
        var results = await ClusterFixture.ReadAll(cluster.Fleet(1).SnapshotRegisters(new FleetRequest { LabelSelector = { ["test"] = "gone" } }, deadline: Deadline));
        Assert.Equal((int)StatusCode.Unavailable, results.Single().Error?.Code);
        Assert.Contains("lost", results.Single().Error.Message);
    }

    [Fact]
    public async Task A_fleet_call_ends_once_the_nodes_with_selected_VMs_have_answered_not_at_the_deadline_of_a_member_that_runs_no_API()
    {
        var vms = await cluster.CreateVms(2, 3, "per-node");
        var sw = Stopwatch.StartNew();
        var halted = await ClusterFixture.ReadAll(cluster.Fleet(0).HaltAll(new FleetRequest { LabelSelector = { ["test"] = "per-node" }, TimeoutMs = 10_000 },
            deadline: Deadline));
        Assert.Equal(vms.Select(v => v.VmId).Order(), halted.Select(r => r.VmId).Order());
        Assert.All(halted, r => Assert.NotNull(r.Halted));
        // The mute member is asked too (one request per node) but has none of these VMs: the call does not wait for it.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"the call took {sw.Elapsed} (its fleet deadline is 10 s)");
    }

    [Fact]
    public async Task A_fleet_call_through_one_node_answers_for_a_VM_just_created_on_another_that_its_directory_does_not_list_yet()
    {
        // Created on node c and asked through node a at once: a's directory learns of it only after c's next directory write
        // and gossip (coalesced for 100 ms), so the call must wait for c's own answer, not for what a's directory lists.
        var vm = await cluster.Vms(2).CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 1, MemorySize = 2 << 20, Labels = { ["test"] = "fresh" } },
            deadline: Deadline);
        var halted = await ClusterFixture.ReadAll(cluster.Fleet(0).HaltAll(new FleetRequest { LabelSelector = { ["test"] = "fresh" }, TimeoutMs = 10_000 },
            deadline: Deadline));
        var result = Assert.Single(halted);
        Assert.Equal((vm.VmId, vm.Node), (result.VmId, result.Node));
        Assert.NotNull(result.Halted);
    }

    [Fact]
    public async Task Every_node_sees_every_member_by_name()
    {
        var status = await cluster.Fleet(2).GetClusterStatusAsync(new GetClusterStatusRequest(), deadline: Deadline);
        Assert.Equal("c", status.SelfName);
        Assert.Superset(new HashSet<string> { "a", "b", "c", "mute" }, status.Members.Where(m => m.Status == "Up").Select(m => m.Name).ToHashSet());
    }

    [Fact]
    public void Contract_messages_crossing_nodes_use_the_protobuf_serializer()
    {
        var system = cluster.Servers[0].Services.GetService(typeof(ActorSystem)) as ActorSystem;
        var serialization = system!.Serialization;
        foreach (object message in new object[]
                 {
                     new FleetCall { VmId = "a-vm-1", Method = "/actorstep.v1.RunControl/Halt" }, new RunResponse(), new RegisterSnapshot(),
                     new FleetFanOut { Method = "/actorstep.v1.RunControl/Halt", LabelSelector = { ["env"] = "ci" }, DeadlineUnixMs = 1 },
                     new FleetBatch { NodeName = "a", Done = true, Replies = { new FleetReply { VmId = "a-vm-1", StatusCode = 4, StatusMessage = "late" } } },
                 })
        {
            var serializer = serialization.FindSerializerFor(message);
            Assert.IsType<FleetSerializer>(serializer);
            var back = serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message));
            Assert.Equal(message, back);
        }
    }
}
