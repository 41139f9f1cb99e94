using ActorStep.Actors.Fleet.Wire;

namespace ActorStep.Actors.Fleet;

/// <summary>
/// How VM ids map to directory buckets. The count bounds a bucket's size — the largest message the directory makes the
/// replicator send is <see cref="MaxBucketsPerGossip"/> buckets — at the cost of more keys to gossip digests of
/// (<c>VmDirectorySizeTests</c> and the README's fleet section have the figures that chose them).
/// </summary>
public static class VmDirectoryBuckets
{
    public const int Count = 1024;

    /// <summary>The replicator's max-delta-elements: how many buckets one Gossip message carries at most.</summary>
    public const int MaxBucketsPerGossip = 8;

    public const string KeyPrefix = "vm-directory-";

    public static readonly IReadOnlyList<VmDirectoryBucketKey> Keys =
        Enumerable.Range(0, Count).Select(i => new VmDirectoryBucketKey(KeyPrefix + i)).ToArray();

    /// <summary>The bucket of a VM id: FNV-1a of its UTF-16 code units (stable across processes, unlike string.GetHashCode).</summary>
    public static int Of(string vmId)
    {
        uint h = 2166136261;
        foreach (char c in vmId) { h ^= c; h *= 16777619; }
        return (int)(h % Count);
    }

    public static int IndexOf(string keyId) => int.Parse(keyId.AsSpan(KeyPrefix.Length));
}
