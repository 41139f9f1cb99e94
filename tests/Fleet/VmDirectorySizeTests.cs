using System.Collections.Immutable;
using System.Reflection;
using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using Akka.Actor;
using Akka.Configuration;
using Akka.DistributedData;
using Akka.DistributedData.Internal;
using Xunit.Abstractions;

namespace ActorStep.Tests.Fleet;

/// <summary>
/// The largest messages the VM directory makes the replicator send, encoded with the real Akka serializers (the replicator's,
/// which gzips a Gossip, over ours for the bucket) at 10,000 and 100,000 VMs, against Akka.Remote's 128,000-byte frame: a Write
/// of the largest bucket to each node, and a Gossip of the max-delta-elements largest buckets. (The buckets are not delta CRDTs,
/// so no DeltaPropagation carries them.)
/// </summary>
public class VmDirectorySizeTests(ITestOutputHelper output) : IDisposable
{
    private const int RemotingFrame = 128_000;

    private readonly ActorSystem _system = ActorSystem.Create(FleetConfig.SystemName,
        ConfigurationFactory.ParseString(FleetConfig.Hocon("127.0.0.1", 0, [], "node-a")).WithFallback(DistributedData.DefaultConfig()));

    public void Dispose() => _system.Terminate().Wait();

    /// <summary>The directory of <paramref name="vms"/> VMs spread over 3 nodes, as their VmManagers register them.</summary>
    private static VmDirectoryBucket[] Buckets(int vms)
    {
        var parts = new SortedDictionary<string, VmRecord>[3, VmDirectoryBuckets.Count];
        for (int i = 0; i < vms; i++)
        {
            int node = i % 3;
            var id = $"node-{(char)('a' + node)}-vm-{i / 3 + 1}";
            var r = new VmRecord
            {
                VmId = id, Image = "demo", Vcpus = 4, Flavour = "kvm-hv", MemorySize = 16 << 20, Entry = 0x5000, ImageLittleEndian = false,
                DebugInstruction = 0x00dddd00, HoldsAsyncInterrupts = true, Labels = { ["bench"] = "fleet", ["rack"] = $"r{i % 40}" },
            };
            int b = VmDirectoryBuckets.Of(id);
            (parts[node, b] ??= new(StringComparer.Ordinal))[id] = r;
        }
        var result = new VmDirectoryBucket[VmDirectoryBuckets.Count];
        for (int b = 0; b < result.Length; b++)
        {
            var bucket = VmDirectoryBucket.Empty;
            for (int node = 0; node < 3; node++)
            {
                var part = new VmDirectoryPart { Node = $"akka.tcp://actorstep@127.0.0.1:{40001 + node}", NodeName = $"node-{(char)('a' + node)}", Version = DateTime.UtcNow.Ticks };
                if (parts[node, b] is { } vmsHere) part.Vms.AddRange(vmsHere.Values);
                bucket = bucket.WithPart(part);
            }
            result[b] = bucket;
        }
        return result;
    }

    private static readonly Assembly DistributedDataAssembly = typeof(DataEnvelope).Assembly;
    private const BindingFlags AnyInstance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    private static DataEnvelope Envelope(IReplicatedData data) =>
        (DataEnvelope)Activator.CreateInstance(typeof(DataEnvelope), AnyInstance, null, [data, null, null], null)!;

    /// <summary>The replicator's own Write and Gossip messages (internal types, built as it builds them).</summary>
    private static object Internal(string type, params object?[] args) =>
        Activator.CreateInstance(DistributedDataAssembly.GetType($"Akka.DistributedData.Internal.{type}", throwOnError: true)!, AnyInstance, null, args, null)!;

    private int Encoded(object message) => _system.Serialization.FindSerializerFor(message).ToBinary(message).Length;

    [Theory]
    [InlineData(10_000)]
    [InlineData(100_000)]
    public void The_largest_directory_message_fits_the_remoting_frame(int vms)
    {
        var buckets = Buckets(vms);
        Assert.Equal(vms, buckets.Sum(b => b.Parts.Sum(p => p.Vms.Count)));
        var largest = buckets.Select((b, i) => (Bucket: b, Key: VmDirectoryBuckets.Keys[i].Id)).OrderByDescending(b => b.Bucket.CalculateSize()).ToList();

        int write = Encoded(Internal("Write", largest[0].Key, Envelope(largest[0].Bucket), null));
        var gossipData = largest.Take(VmDirectoryBuckets.MaxBucketsPerGossip).ToImmutableDictionary(b => b.Key, b => Envelope(b.Bucket));
        int gossip = Encoded(Internal("Gossip", gossipData, true, null, null));
        int all = buckets.Sum(b => b.CalculateSize());
        output.WriteLine($"{vms} VMs: largest bucket {largest[0].Bucket.Parts.Sum(p => p.Vms.Count)} VMs, {largest[0].Bucket.CalculateSize()} bytes; " +
                         $"Write {write} bytes, Gossip of {VmDirectoryBuckets.MaxBucketsPerGossip} buckets {gossip} bytes (gzipped); whole directory {all} bytes");

        // Headroom for the remoting envelope (recipient, sender, manifest) and for buckets fuller than these.
        Assert.True(write < RemotingFrame / 2, $"Write of the largest bucket: {write} bytes");
        Assert.True(gossip < RemotingFrame / 2, $"Gossip: {gossip} bytes");
        // Even if gzip gained nothing (labels of random text), a Gossip of the largest buckets stays under the frame.
        int raw = largest.Take(VmDirectoryBuckets.MaxBucketsPerGossip).Sum(b => b.Bucket.CalculateSize());
        Assert.True(raw < RemotingFrame * 3 / 4, $"{VmDirectoryBuckets.MaxBucketsPerGossip} largest buckets before gzip: {raw} bytes");
    }

    [Fact]
    public void A_bucket_round_trips_through_the_serializers_the_replicator_uses()
    {
        var bucket = Buckets(300)[0];
        var envelope = Envelope(bucket);
        var serializer = _system.Serialization.FindSerializerFor(envelope);
        var back = (DataEnvelope)_system.Serialization.Deserialize(serializer.ToBinary(envelope), serializer.Identifier,
            Akka.Serialization.Serialization.ManifestFor(serializer, envelope));
        Assert.Equal(bucket, back.Data);
    }
}
