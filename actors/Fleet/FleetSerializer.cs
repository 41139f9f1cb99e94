using Akka.Actor;
using Akka.Serialization;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ActorStep.Actors.Fleet;

/// <summary>
/// Serializes every protobuf message that crosses nodes (the cluster's VmRecord, FleetCall, FleetReply,
/// and the actorstep.v1 contract types they carry): compact, versioned by the message's full name,
/// never the default JSON serializer. The manifest is the protobuf full name (e.g. "actorstep.cluster.v1.VmRecord").
/// </summary>
public sealed class FleetSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private static readonly Dictionary<string, MessageParser> Parsers = new();
    private static readonly object Lock = new();

    public override int Identifier => 0x4153; // "AS"

    /// <summary>Makes a message type known for deserialization (the cluster's own types are registered up front).</summary>
    public static void Register(MessageDescriptor descriptor)
    {
        lock (Lock) Parsers[descriptor.FullName] = descriptor.Parser;
    }

    static FleetSerializer()
    {
        Register(Wire.VmRecord.Descriptor);
        Register(Wire.FleetCall.Descriptor);
        Register(Wire.FleetReply.Descriptor);
        Register(Wire.FleetSubscribe.Descriptor);
        Register(Wire.VmDirectoryBucket.Descriptor);
        Register(Wire.FleetFanOut.Descriptor);
        Register(Wire.FleetBatch.Descriptor);
        Register(Wire.VmDirectoryPart.Descriptor);
    }

    public override byte[] ToBinary(object obj) => obj is IMessage m
        ? m.ToByteArray()
        : throw new ArgumentException($"{obj.GetType()} is not a protobuf message", nameof(obj));

    public override string Manifest(object o) => ((IMessage)o).Descriptor.FullName;

    public override object FromBinary(byte[] bytes, string manifest)
    {
        MessageParser? parser;
        lock (Lock) Parsers.TryGetValue(manifest, out parser);
        if (parser is null) throw new System.Runtime.Serialization.SerializationException($"no protobuf type registered for manifest '{manifest}'");
        return parser.ParseFrom(bytes);
    }

    /// <summary>The HOCON that binds protobuf messages to this serializer.</summary>
    public const string Config = """
        akka.actor {
          serializers.actorstep-protobuf = "ActorStep.Actors.Fleet.FleetSerializer, ActorStep.Actors"
          serialization-bindings {
            "Google.Protobuf.IMessage, Google.Protobuf" = actorstep-protobuf
          }
          serialization-identifiers {
            "ActorStep.Actors.Fleet.FleetSerializer, ActorStep.Actors" = 16723
          }
        }
        """;
}
