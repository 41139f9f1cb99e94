namespace ActorStep.Actors.Vm;

/// <summary>
/// Joins a VM's console output into chunks before it is published: a guest writes its console a few bytes at a time (a
/// pseries guest's <c>H_PUT_TERM_CHAR</c> carries at most 16, QEMU's stdout comes as the pipe delivers it), and one event per
/// write fills a slow reader's bounded event buffer with tiny events that it then loses. A chunk is one vcpu's consecutive
/// bytes; it is complete when another vcpu writes, when it reaches <see cref="Limit"/> bytes, or when the owner flushes it
/// (on a short timer, and before any other event so that the order of events is kept).
/// </summary>
public sealed class ConsoleCoalescer(int limit = ConsoleCoalescer.DefaultLimit)
{
    public const int DefaultLimit = 4096;

    private readonly List<byte> _pending = new();
    private int _vcpu = -1;

    public int Limit { get; } = limit > 0 ? limit : throw new ArgumentOutOfRangeException(nameof(limit), limit, "a chunk holds at least one byte");

    /// <summary>Whether bytes wait to be flushed.</summary>
    public bool HasPending => _pending.Count > 0;

    /// <summary>Takes <paramref name="vcpu"/>'s <paramref name="bytes"/>; returns the chunks they completed, in order.</summary>
    public IReadOnlyList<(int Vcpu, byte[] Bytes)> Add(int vcpu, ReadOnlySpan<byte> bytes)
    {
        List<(int, byte[])>? done = null;
        if (HasPending && vcpu != _vcpu) (done ??= new()).Add(Take());
        _vcpu = vcpu;
        while (!bytes.IsEmpty)
        {
            int n = Math.Min(bytes.Length, Limit - _pending.Count);
            _pending.AddRange(bytes[..n]);
            bytes = bytes[n..];
            if (_pending.Count == Limit) (done ??= new()).Add(Take());
        }
        return done ?? (IReadOnlyList<(int, byte[])>)Array.Empty<(int, byte[])>();
    }

    /// <summary>The pending chunk, if any, now.</summary>
    public (int Vcpu, byte[] Bytes)? Flush() => HasPending ? Take() : null;

    private (int, byte[]) Take()
    {
        var chunk = (_vcpu, _pending.ToArray());
        _pending.Clear();
        return chunk;
    }
}

/// <summary>
/// Console writes handed from vcpu threads to their coordinator: <see cref="Add"/> from any thread, <see cref="Take"/> from the
/// coordinator. <see cref="Add"/> says whether the coordinator must be told (the first write since it last took them), so a
/// guest that writes its console a thousand times between two takes costs the coordinator one message, not a thousand.
/// </summary>
public sealed class ConsoleWrites
{
    private readonly object _gate = new();
    private List<(int Vcpu, byte[] Bytes)> _writes = new();
    private bool _told;

    /// <summary>Keeps a copy of <paramref name="bytes"/>; true when the taker must be told that writes wait.</summary>
    public bool Add(int vcpu, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        lock (_gate)
        {
            _writes.Add((vcpu, copy));
            if (_told) return false;
            _told = true;
            return true;
        }
    }

    /// <summary>Every write since the last take, in order; the next <see cref="Add"/> tells again.</summary>
    public IReadOnlyList<(int Vcpu, byte[] Bytes)> Take()
    {
        lock (_gate)
        {
            _told = false;
            if (_writes.Count == 0) return Array.Empty<(int, byte[])>();
            var taken = _writes;
            _writes = new();
            return taken;
        }
    }
}
