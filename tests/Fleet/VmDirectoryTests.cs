using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using static ActorStep.Actors.Fleet.VmDirectoryProtocol;

namespace ActorStep.Tests.Fleet;

/// <summary>The cluster-wide VM directory across three real ActorSystems on loopback (Akka.Cluster + DistributedData).</summary>
public class VmDirectoryTests : IAsyncLifetime
{
    private readonly List<ActorSystem> _nodes = new();
    private readonly List<IActorRef> _directories = new();

    public async Task InitializeAsync()
    {
        // Node a binds a port of the system's choosing and starts a cluster of its own; its address is the others' seed.
        string seed = "";
        for (int i = 0; i < 3; i++)
        {
            var config = ConfigurationFactory.ParseString(FleetConfig.Hocon("127.0.0.1", 0, i == 0 ? [] : [seed], $"node-{(char)('a' + i)}"));
            var system = ActorSystem.Create(FleetConfig.SystemName, config);
            _nodes.Add(system);
            _directories.Add(system.ActorOf(VmDirectory.Props(), "vm-directory"));
            if (i == 0)
            {
                Cluster.Get(system).Join(Cluster.Get(system).SelfAddress);
                seed = Cluster.Get(system).SelfAddress.ToString();
            }
        }
        await Eventually(() => Task.FromResult(_nodes.All(n => Cluster.Get(n).State.Members.Count(m => m.Status == MemberStatus.Up) == 3)), "cluster of 3 up");
    }

    public async Task DisposeAsync()
    {
        foreach (var n in _nodes) await n.Terminate();
    }

    private static VmRecord Record(ActorSystem node, string id, params (string, string)[] labels)
    {
        var r = new VmRecord { VmId = id, Node = Cluster.Get(node).SelfAddress.ToString(), Image = "demo", Vcpus = 4, Flavour = "kvm-hv" };
        foreach (var (k, v) in labels) r.Labels[k] = v;
        return r;
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException($"not reached within {seconds}s: {what}");
    }

    private static async Task<VmsFound> Find(IActorRef directory, params (string, string)[] selector) =>
        await directory.Ask<VmsFound>(new FindVms(selector.ToDictionary(s => s.Item1, s => s.Item2)), TimeSpan.FromSeconds(5));

    [Fact]
    public async Task Every_node_sees_every_VM_with_its_owning_node_and_selects_by_labels()
    {
        _directories[0].Tell(new RegisterVm(Record(_nodes[0], "vm-a1", ("env", "canary"))));
        _directories[1].Tell(new RegisterVm(Record(_nodes[1], "vm-b1", ("env", "canary"), ("image", "x"))));
        _directories[2].Tell(new RegisterVm(Record(_nodes[2], "vm-c1", ("env", "prod"))));

        foreach (var d in _directories)
            await Eventually(async () => (await Find(d)).Entries.Count == 3, "3 VMs seen everywhere");
        var canary = await Find(_directories[2], ("env", "canary"));
        Assert.Equal(new[] { "vm-a1", "vm-b1" }, canary.Entries.Select(e => e.Record.VmId));
        Assert.All(canary.Entries, e => Assert.False(e.Lost));
        var located = await _directories[0].Ask<VmLocated>(new LocateVm("vm-c1"), TimeSpan.FromSeconds(5));
        Assert.Equal(Cluster.Get(_nodes[2]).SelfAddress.ToString(), located.Entry!.Record.Node);
        Assert.Null((await _directories[0].Ask<VmLocated>(new LocateVm("nope"), TimeSpan.FromSeconds(5))).Entry);
    }

    [Fact]
    public async Task VMs_of_a_node_that_leaves_are_reported_lost_and_the_others_keep_serving()
    {
        _directories[0].Tell(new RegisterVm(Record(_nodes[0], "vm-a1")));
        _directories[1].Tell(new RegisterVm(Record(_nodes[1], "vm-b1")));
        await Eventually(async () => (await Find(_directories[0])).Entries.Count == 2, "both VMs replicated");

        await _nodes[1].Terminate();
        await Eventually(async () => (await Find(_directories[0])).Entries.Single(e => e.Record.VmId == "vm-b1").Lost, "vm-b1 lost", seconds: 15);
        var all = await Find(_directories[2]);
        Assert.False(all.Entries.Single(e => e.Record.VmId == "vm-a1").Lost);
    }

    [Fact]
    public void Messages_crossing_nodes_use_the_protobuf_serializer_and_round_trip()
    {
        var serialization = _nodes[0].Serialization;
        var record = Record(_nodes[0], "vm-x", ("env", "canary"));
        var serializer = serialization.FindSerializerFor(record);
        Assert.IsType<FleetSerializer>(serializer);
        var bytes = serializer.ToBinary(record);
        var back = serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, record));
        Assert.Equal(record, back);
        Assert.True(bytes.Length < 100, $"{bytes.Length} bytes");
    }

    [Fact]
    public async Task A_destroyed_VM_disappears_from_every_node()
    {
        _directories[1].Tell(new RegisterVm(Record(_nodes[1], "vm-b1")));
        await Eventually(async () => (await Find(_directories[0])).Entries.Count == 1, "replicated");
        _directories[1].Tell(new UnregisterVm("vm-b1"));
        await Eventually(async () => (await Find(_directories[0])).Entries.Count == 0, "removed everywhere");
    }
}
