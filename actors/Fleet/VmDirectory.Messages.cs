using ActorStep.Actors.Fleet.Wire;

namespace ActorStep.Actors.Fleet;

/// <summary>One VM as the directory sees it: where it lives and whether its node is reachable now.</summary>
public sealed record DirectoryEntry(VmRecord Record, bool Lost);

public static class VmDirectoryProtocol
{
    /// <summary>Local VmManager → directory: this node runs the VM (replicated to every node). No reply.</summary>
    public sealed record RegisterVm(VmRecord Record);

    /// <summary>Local VmManager → directory: the VM was destroyed. No reply.</summary>
    public sealed record UnregisterVm(string VmId);

    /// <summary>Anyone on this node → directory: where is a VM? Reply: <see cref="VmLocated"/>.</summary>
    public sealed record LocateVm(string VmId);

    /// <summary>Reply to <see cref="LocateVm"/>; <c>Entry</c> is null when no node has the VM.</summary>
    public sealed record VmLocated(string VmId, DirectoryEntry? Entry);

    /// <summary>Anyone on this node → directory: every VM whose labels include all of <c>Selector</c>. Reply: <see cref="VmsFound"/>.</summary>
    public sealed record FindVms(IReadOnlyDictionary<string, string> Selector);

    public sealed record VmsFound(IReadOnlyList<DirectoryEntry> Entries);

    /// <summary>True when every selector pair is among the labels (an empty selector matches all).</summary>
    public static bool Matches(IReadOnlyDictionary<string, string> selector, IDictionary<string, string> labels) =>
        selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
