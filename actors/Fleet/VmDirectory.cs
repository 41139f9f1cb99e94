using ActorStep.Actors.Fleet.Wire;
using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using static ActorStep.Actors.Fleet.VmDirectoryProtocol;

namespace ActorStep.Actors.Fleet;

/// <summary>
/// The cluster-wide VM directory, one per node. The directory is split into <see cref="VmDirectoryBuckets.Count"/> DistributedData
/// values by a hash of the VM id (<see cref="VmDirectoryBucket"/>), each holding one part per node that only that node writes, so
/// no replicated value holds every VM and no message the replicator sends grows with the fleet (a whole bucket at most, a Gossip of
/// at most <see cref="VmDirectoryBuckets.MaxBucketsPerGossip"/>). This node's changes are coalesced and written every
/// <see cref="FlushInterval"/>, each changed bucket once, to every node (WriteAll; gossip repairs what a write misses). Lookups
/// are answered from this node's index of every bucket, kept up to date by subscription. A VM is "lost" while its node is
/// unreachable or gone, and stays listed as lost rather than vanishing.
/// </summary>
public sealed class VmDirectory : ReceiveActor, IWithTimers
{
    /// <summary>How long changes wait to be written together (a burst of creations writes each bucket once).</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Buckets written per flush at most: bounds the writes in flight when a whole node's VMs change at once.</summary>
    public const int MaxBucketsPerFlush = 64;

    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(3);

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly IActorRef _replicator = DistributedData.Get(Context.System).Replicator;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _nodeName = Context.System.Settings.Config.GetString("actorstep.node-name", "");
    private readonly HashSet<string> _up = new();
    private readonly HashSet<string> _unreachable = new();

    // This node's VMs (authoritative here), by bucket, and the buckets to write.
    private readonly Dictionary<string, VmRecord> _local = new();
    private readonly SortedDictionary<string, VmRecord>[] _mine = new SortedDictionary<string, VmRecord>[VmDirectoryBuckets.Count];
    private readonly long[] _written = new long[VmDirectoryBuckets.Count];
    private readonly SortedSet<int> _dirty = new();
    private long _version;

    // Other nodes' VMs as replicated here, by bucket.
    private readonly Dictionary<string, VmRecord> _remote = new();
    private readonly List<string>?[] _remoteIds = new List<string>?[VmDirectoryBuckets.Count];

    public ITimerScheduler Timers { get; set; } = null!;

    public VmDirectory()
    {
        Receive<RegisterVm>(m => Change(m.Record.VmId, m.Record));
        Receive<UnregisterVm>(m => Change(m.VmId, null));
        Receive<Flush>(_ => FlushSome());
        Receive<UpdateSuccess>(_ => { });
        Receive<UpdateTimeout>(_ => { }); // written here; a node that did not acknowledge gets it by gossip
        Receive<IUpdateFailure>(f => _log.Warning("directory update failed: {0}", f));
        Receive<Changed>(c => Index(VmDirectoryBuckets.IndexOf(c.Key.Id), (VmDirectoryBucket)c.Data));
        Receive<LocateVm>(m =>
        {
            DirectoryEntry? entry = null;
            if (_local.TryGetValue(m.VmId, out var mine)) entry = new DirectoryEntry(mine, false);
            else if (_remote.TryGetValue(m.VmId, out var r)) entry = new DirectoryEntry(r, IsLost(r));
            Sender.Tell(new VmLocated(m.VmId, entry));
        });
        Receive<FindVms>(m =>
        {
            var found = new List<VmRecord>();
            foreach (var r in _remote.Values) if (!_local.ContainsKey(r.VmId) && Matches(m.Selector, r.Labels)) found.Add(r);
            foreach (var r in _local.Values) if (Matches(m.Selector, r.Labels)) found.Add(r); // ours are known before replication
            found.Sort((a, b) => StringComparer.Ordinal.Compare(a.VmId, b.VmId));
            Sender.Tell(new VmsFound(found.Select(r => new DirectoryEntry(r, IsLost(r))).ToList()));
        });

        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            foreach (var m in s.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp)) _up.Add(m.Address.ToString());
            foreach (var m in s.Unreachable) _unreachable.Add(m.Address.ToString());
        });
        Receive<ClusterEvent.MemberUp>(e => _up.Add(e.Member.Address.ToString()));
        Receive<ClusterEvent.MemberWeaklyUp>(e => _up.Add(e.Member.Address.ToString()));
        Receive<ClusterEvent.MemberRemoved>(e =>
        {
            _up.Remove(e.Member.Address.ToString());
            if (e.Member.Address == _cluster.SelfAddress)
                _log.Error("this node was removed from the cluster (downed by the others): it keeps its {0} VMs and serves them through its own API only; " +
                           "to rejoin, the node must restart, and its VMs end then", _local.Count);
            else _log.Warning("node {0} removed: its {1} VMs are lost", e.Member.Address, CountOn(e.Member.Address));
        });
        Receive<ClusterEvent.MemberExited>(e => _up.Remove(e.Member.Address.ToString()));
        Receive<ClusterEvent.UnreachableMember>(e => { _unreachable.Add(e.Member.Address.ToString()); _log.Warning("node {0} unreachable: its {1} VMs are lost while it is", e.Member.Address, CountOn(e.Member.Address)); });
        Receive<ClusterEvent.ReachableMember>(e => { _unreachable.Remove(e.Member.Address.ToString()); _log.Warning("node {0} reachable again: its {1} VMs are served again", e.Member.Address, CountOn(e.Member.Address)); });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new VmDirectory());

    private string SelfAddress => _cluster.SelfAddress.ToString();

    private bool IsLost(VmRecord r) => r.Node != SelfAddress && (!_up.Contains(r.Node) || _unreachable.Contains(r.Node));

    private int CountOn(Address node)
    {
        var address = node.ToString();
        return _remote.Values.Count(r => r.Node == address);
    }

    private void Change(string vmId, VmRecord? record)
    {
        int bucket = VmDirectoryBuckets.Of(vmId);
        var mine = _mine[bucket] ??= new SortedDictionary<string, VmRecord>(StringComparer.Ordinal);
        if (record is null) { _local.Remove(vmId); mine.Remove(vmId); }
        else
        {
            _local[vmId] = record;
            var entry = record.Clone();
            entry.Node = ""; // the part names the node once for all its VMs
            entry.NodeName = "";
            mine[vmId] = entry;
        }
        MarkDirty(bucket);
    }

    private void MarkDirty(int bucket)
    {
        _dirty.Add(bucket);
        if (!Timers.IsTimerActive(nameof(Flush))) Timers.StartSingleTimer(nameof(Flush), Flush.Instance, FlushInterval);
    }

    private void FlushSome()
    {
        foreach (int bucket in _dirty.Take(MaxBucketsPerFlush).ToList())
        {
            _dirty.Remove(bucket);
            var part = new VmDirectoryPart { Node = SelfAddress, NodeName = _nodeName, Version = _version = Math.Max(_version + 1, DateTime.UtcNow.Ticks) };
            if (_mine[bucket] is { } mine) part.Vms.AddRange(mine.Values);
            _written[bucket] = part.Version;
            _replicator.Tell(Dsl.Update(VmDirectoryBuckets.Keys[bucket], VmDirectoryBucket.Empty, new WriteAll(WriteTimeout), b => b.WithPart(part)));
        }
        if (_dirty.Count > 0) Timers.StartSingleTimer(nameof(Flush), Flush.Instance, FlushInterval);
    }

    /// <summary>Replaces what this node knows of a bucket's other parts; a part of its own that it did not write (left by an
    /// earlier run of this node at the same address) is overwritten with what this node runs now.</summary>
    private void Index(int bucket, VmDirectoryBucket data)
    {
        if (_remoteIds[bucket] is { } old) foreach (var id in old) _remote.Remove(id);
        var ids = new List<string>();
        foreach (var part in data.Parts)
        {
            if (part.Node == SelfAddress)
            {
                if (part.Version != _written[bucket]) MarkDirty(bucket);
                continue;
            }
            foreach (var vm in part.Vms)
            {
                var r = vm.Clone();
                r.Node = part.Node;
                r.NodeName = part.NodeName;
                _remote[r.VmId] = r;
                ids.Add(r.VmId);
            }
        }
        _remoteIds[bucket] = ids.Count > 0 ? ids : null;
    }

    protected override void PreStart()
    {
        foreach (var key in VmDirectoryBuckets.Keys) _replicator.Tell(Dsl.Subscribe(key, Self));
        _cluster.Subscribe(Self, ClusterEvent.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        foreach (var key in VmDirectoryBuckets.Keys) _replicator.Tell(Dsl.Unsubscribe(key, Self));
    }

    private sealed class Flush
    {
        public static readonly Flush Instance = new();
    }
}
