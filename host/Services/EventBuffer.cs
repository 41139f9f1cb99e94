using Grpc.Core;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ActorStep.Api.V1;

namespace ActorStep.Host.Services;

/// <summary>
/// One event stream's buffer: bounded, and full means the oldest event is dropped, never that the writer waits, so a
/// slow reader cannot slow a VM or another reader. The reader sees an <see cref="EventsDropped"/> before the events that
/// follow a drop. One writer (the stream's <see cref="EventPump"/>), one reader (the gRPC call).
/// </summary>
public sealed class EventBuffer
{
    private readonly Channel<Event> _channel;
    private long _dropped;
    private ulong _sequence;

    /// <param name="capacity">events kept for a slow reader</param>
    /// <param name="dropped">told of each event dropped (the node's metrics)</param>
    public EventBuffer(int capacity, Action<long>? dropped = null)
    {
        _channel = Channel.CreateBounded<Event>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            _ => { Interlocked.Increment(ref _dropped); dropped?.Invoke(1); });
    }

    /// <summary>Numbers the event and queues it; never blocks.</summary>
    public void Write(Event e)
    {
        e.Sequence = ++_sequence;
        _channel.Writer.TryWrite(e);
    }

    /// <summary>No more events: the reader ends after the queued ones.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    /// <summary>The stream ends with <paramref name="error"/> after the queued events (e.g. the VM's node was lost).</summary>
    public void Fail(RpcException error) => _channel.Writer.TryComplete(error);

    public async IAsyncEnumerable<Event> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _channel.Reader.WaitToReadAsync(cancellationToken))
        {
            // Events dropped before this read were older than what is queued now, so the marker goes first.
            long dropped = Interlocked.Exchange(ref _dropped, 0);
            if (dropped > 0) yield return new Event { Dropped = new EventsDropped { Count = (ulong)dropped } };
            if (_channel.Reader.TryRead(out var e)) yield return e;
        }
        long rest = Interlocked.Exchange(ref _dropped, 0);
        if (rest > 0) yield return new Event { Dropped = new EventsDropped { Count = (ulong)rest } };
    }
}
