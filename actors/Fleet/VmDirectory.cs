using ActorStep.Actors.Fleet.Wire;
using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using static ActorStep.Actors.Fleet.VmDirectoryProtocol;

namespace ActorStep.Actors.Fleet;

/// <summary>
/// The cluster-wide VM directory, one per node: an Akka.DistributedData LWWDictionary (vm id → VmRecord)
/// that every node writes its own VMs into, plus this node's view of membership. A VM is "lost" while its
/// node is unreachable or gone: a crashed node's VMs are reported lost as soon as the failure detector
/// marks it (seconds), and stay listed as lost rather than vanishing.
/// </summary>
public sealed class VmDirectory : ReceiveActor
{
    public static readonly LWWDictionaryKey<string, VmRecord> Key = new("vm-directory");

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly IActorRef _replicator = DistributedData.Get(Context.System).Replicator;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<string> _up = new();
    private readonly HashSet<string> _unreachable = new();
    private readonly Dictionary<string, VmRecord> _local = new();
    private IReadOnlyDictionary<string, VmRecord> _entries = new Dictionary<string, VmRecord>();

    public VmDirectory()
    {
        Receive<RegisterVm>(m =>
        {
            _local[m.Record.VmId] = m.Record;
            _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, VmRecord>.Empty, WriteLocal.Instance,
                d => d.SetItem(_cluster, m.Record.VmId, m.Record)));
        });
        Receive<UnregisterVm>(m =>
        {
            _local.Remove(m.VmId);
            _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, VmRecord>.Empty, WriteLocal.Instance,
                d => d.Remove(_cluster, m.VmId)));
        });
        Receive<UpdateSuccess>(_ => { });
        Receive<IUpdateFailure>(f => _log.Warning("directory update failed: {0}", f));
        Receive<Changed>(c =>
        {
            var data = c.Get(Key);
            _entries = data.Entries.ToDictionary(kv => kv.Key, kv => kv.Value);
        });
        Receive<LocateVm>(m =>
        {
            DirectoryEntry? entry = null;
            if (_local.TryGetValue(m.VmId, out var mine)) entry = new DirectoryEntry(mine, false);
            else if (_entries.TryGetValue(m.VmId, out var r)) entry = new DirectoryEntry(r, IsLost(r));
            Sender.Tell(new VmLocated(m.VmId, entry));
        });
        Receive<FindVms>(m =>
        {
            var all = new Dictionary<string, VmRecord>();
            foreach (var r in _entries.Values) all[r.VmId] = r;
            foreach (var (id, r) in _local) all[id] = r; // our own VMs are known before replication round-trips
            Sender.Tell(new VmsFound(all.Values.Where(r => Matches(m.Selector, r.Labels))
                .OrderBy(r => r.VmId, StringComparer.Ordinal)
                .Select(r => new DirectoryEntry(r, IsLost(r))).ToList()));
        });

        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            foreach (var m in s.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp)) _up.Add(m.Address.ToString());
            foreach (var m in s.Unreachable) _unreachable.Add(m.Address.ToString());
        });
        Receive<ClusterEvent.MemberUp>(e => _up.Add(e.Member.Address.ToString()));
        Receive<ClusterEvent.MemberWeaklyUp>(e => _up.Add(e.Member.Address.ToString()));
        Receive<ClusterEvent.MemberRemoved>(e => { _up.Remove(e.Member.Address.ToString()); _log.Info("node {0} removed: its VMs are lost", e.Member.Address); });
        Receive<ClusterEvent.MemberExited>(e => _up.Remove(e.Member.Address.ToString()));
        Receive<ClusterEvent.UnreachableMember>(e => { _unreachable.Add(e.Member.Address.ToString()); _log.Warning("node {0} unreachable: its VMs are lost", e.Member.Address); });
        Receive<ClusterEvent.ReachableMember>(e => _unreachable.Remove(e.Member.Address.ToString()));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new VmDirectory());

    private string SelfAddress => _cluster.SelfAddress.ToString();

    private bool IsLost(VmRecord r) => r.Node != SelfAddress && (!_up.Contains(r.Node) || _unreachable.Contains(r.Node));

    protected override void PreStart()
    {
        _replicator.Tell(Dsl.Subscribe(Key, Self));
        _cluster.Subscribe(Self, ClusterEvent.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        _replicator.Tell(Dsl.Unsubscribe(Key, Self));
    }
}
