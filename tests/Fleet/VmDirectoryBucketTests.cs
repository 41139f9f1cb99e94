using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;

namespace ActorStep.Tests.Fleet;

/// <summary>The directory bucket's merge rule and the bucket hash, as plain data.</summary>
public class VmDirectoryBucketTests
{
    private static VmDirectoryPart Part(string node, long version, params string[] vms)
    {
        var p = new VmDirectoryPart { Node = node, NodeName = node, Version = version };
        p.Vms.AddRange(vms.Select(v => new VmRecord { VmId = v }));
        return p;
    }

    [Fact]
    public void Merge_keeps_each_nodes_newer_part_and_is_commutative()
    {
        var x = VmDirectoryBucket.Empty.WithPart(Part("a", 1, "a-1")).WithPart(Part("b", 5, "b-1", "b-2"));
        var y = VmDirectoryBucket.Empty.WithPart(Part("a", 2, "a-1", "a-2")).WithPart(Part("b", 4, "b-1")).WithPart(Part("c", 1, "c-1"));

        var xy = x.Merge(y);
        Assert.Equal(xy, y.Merge(x));
        Assert.Equal(new[] { "a", "b", "c" }, xy.Parts.Select(p => p.Node));
        Assert.Equal(new[] { "a-1", "a-2" }, xy.Parts[0].Vms.Select(v => v.VmId));
        Assert.Equal(new[] { "b-1", "b-2" }, xy.Parts[1].Vms.Select(v => v.VmId));
        Assert.Same(xy, xy.Merge(x)); // idempotent: nothing newer, the same value
    }

    [Fact]
    public void An_empty_newer_part_overrides_an_older_one_so_a_removed_VM_stays_removed()
    {
        var before = VmDirectoryBucket.Empty.WithPart(Part("a", 1, "a-1"));
        var after = before.WithPart(Part("a", 2));
        var merged = before.Merge(after);
        Assert.Empty(merged.Parts.Single().Vms);
        Assert.Equal(2, merged.Parts.Single().Version);
    }

    [Fact]
    public void The_bucket_of_an_id_is_stable_and_spreads_ids_evenly()
    {
        Assert.Equal(VmDirectoryBuckets.Of("node-a-vm-1"), VmDirectoryBuckets.Of(new string("node-a-vm-1".ToCharArray())));
        var counts = new int[VmDirectoryBuckets.Count];
        for (int i = 0; i < 100_000; i++) counts[VmDirectoryBuckets.Of($"node-{(char)('a' + i % 3)}-vm-{i / 3 + 1}")]++;
        double mean = 100_000.0 / VmDirectoryBuckets.Count;
        Assert.True(counts.Max() < mean * 1.5, $"fullest bucket {counts.Max()} VMs, mean {mean:0}");
        Assert.True(counts.Min() > mean * 0.5, $"emptiest bucket {counts.Min()} VMs, mean {mean:0}");
    }
}
