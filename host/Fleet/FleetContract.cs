using ActorStep.Actors.Fleet;
using Google.Protobuf.Reflection;

namespace ActorStep.Host.Fleet;

/// <summary>The actorstep.v1 contract types, made known to the <see cref="FleetSerializer"/> so that they may cross nodes.</summary>
public static class FleetContract
{
    private static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        var files = new[]
        {
            Api.V1.CommonReflection.Descriptor, Api.V1.VmsReflection.Descriptor, Api.V1.RunControlReflection.Descriptor,
            Api.V1.RegistersReflection.Descriptor, Api.V1.MemoryReflection.Descriptor, Api.V1.BreakpointsReflection.Descriptor,
            Api.V1.EventsReflection.Descriptor, Api.V1.FleetReflection.Descriptor,
        };
        foreach (var file in files)
            foreach (var message in All(file.MessageTypes))
                FleetSerializer.Register(message);
    }

    private static IEnumerable<MessageDescriptor> All(IEnumerable<MessageDescriptor> messages) =>
        messages.SelectMany(m => All(m.NestedTypes).Prepend(m)).Where(m => m.Parser is not null && !m.IsMapEntry);
}
