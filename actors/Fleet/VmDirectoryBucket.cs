using Akka.DistributedData;

namespace ActorStep.Actors.Fleet.Wire;

/// <summary>
/// A bucket of the VM directory as a DistributedData state CRDT: per node, the part with the larger version wins. Each node
/// writes only its own part, so nothing is ever merged within a part. Not a delta CRDT on purpose: the replicator then sends a
/// bucket only whole — in a Write to each node when it changes, in a Gossip of at most max-delta-elements buckets to repair — so
/// every message it sends is bounded by the bucket size (<c>VmDirectorySizeTests</c>); deltas of many buckets would travel in one
/// unbounded DeltaPropagation. Treated as immutable once built (protobuf classes are mutable: never change one handed out).
/// </summary>
public sealed partial class VmDirectoryBucket : IReplicatedData<VmDirectoryBucket>
{
    public static readonly VmDirectoryBucket Empty = new();

    public VmDirectoryBucket Merge(VmDirectoryBucket other)
    {
        if (ReferenceEquals(this, other) || other.Parts.Count == 0) return this;
        if (Parts.Count == 0) return other;
        var winners = new SortedDictionary<string, VmDirectoryPart>(StringComparer.Ordinal);
        foreach (var p in Parts.Concat(other.Parts))
            if (!winners.TryGetValue(p.Node, out var held) || p.Version > held.Version) winners[p.Node] = p;
        var merged = new VmDirectoryBucket();
        merged.Parts.AddRange(winners.Values);
        return merged.Equals(this) ? this : merged.Equals(other) ? other : merged;
    }

    public IReplicatedData Merge(IReplicatedData other) => Merge((VmDirectoryBucket)other);

    /// <summary>This bucket with <paramref name="node"/>'s part replaced (dropped when it holds no VM).</summary>
    public VmDirectoryBucket WithPart(VmDirectoryPart part)
    {
        var result = new VmDirectoryBucket();
        result.Parts.AddRange(Parts.Where(p => p.Node != part.Node));
        if (part.Vms.Count > 0 || Parts.Any(p => p.Node == part.Node)) result.Parts.Add(part); // an empty part still overrides an older one
        var sorted = result.Parts.OrderBy(p => p.Node, StringComparer.Ordinal).ToList();
        result.Parts.Clear();
        result.Parts.AddRange(sorted);
        return result;
    }
}

/// <summary>The key of one directory bucket in DistributedData.</summary>
public sealed class VmDirectoryBucketKey(string id) : Key<VmDirectoryBucket>(id);
