using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

/// <summary>
/// Pumps one gdb connection: bytes from a stream (a NetworkStream with TCP_NODELAY, or a pipe in tests) through
/// <see cref="RspChannel"/> into <see cref="GdbSession"/>, replies back with one write per batch (an ack and its
/// reply together). While a resume runs it waits for either the stop or more bytes, so a Ctrl-C reaches the
/// target at once; packets that arrive meanwhile are served after the stop reply, in order. In non-stop mode packets are served
/// while vcpus run, and each stop the target reports is written between two replies as a <c>%Stop</c> notification.
/// Returns when gdb detaches, kills, or closes the connection (then <see cref="GdbSession.ConnectionLostAsync"/>).
/// </summary>
public sealed class GdbConnection(Stream stream, GdbSession session, RspChannel channel)
{
    public GdbConnection(Stream stream, GdbSession session) : this(stream, session, new RspChannel()) { }

    public RspChannel Channel => channel;
    public GdbSession Session => session;

    public async Task RunAsync(CancellationToken ct = default)
    {
        var buffer = new byte[channel.PacketSize];
        var backlog = new Queue<RspInput>();
        Task<int>? read = null;
        try
        {
            while (session.State != GdbSessionState.Disconnected)
            {
                while (session.State == GdbSessionState.Idle && backlog.Count > 0)
                    await ServeAsync(backlog.Dequeue(), ct);
                if (session.State == GdbSessionState.Disconnected) break;

                read ??= stream.ReadAsync(buffer, ct).AsTask();
                if (session.State is GdbSessionState.Running or GdbSessionState.Interrupting)
                {
                    var stopped = session.StopReached;
                    if (await Task.WhenAny(read, stopped) == stopped)
                    {
                        var stop = await session.WaitForStopAsync(ct);
                        await WriteAsync(stop, ct);
                        continue;
                    }
                }
                else if (session.NonStopMode)
                {
                    // Non-stop: packets are served while vcpus run, and a stop goes out as a %Stop notification between replies
                    // (this one loop writes both, so a notification never lands inside a reply).
                    var stopped = session.NonStopEventReady;
                    if (await Task.WhenAny(read, stopped) == stopped)
                    {
                        if (await session.TakeNotificationAsync(ct) is { } notification)
                        {
                            channel.SendNotification(notification);
                            await FlushAsync(ct);
                        }
                        continue;
                    }
                }

                int n = await read;
                read = null;
                if (n == 0)
                {
                    await session.ConnectionLostAsync(ct);
                    break;
                }
                foreach (var input in channel.Receive(buffer.AsSpan(0, n)))
                {
                    if (input is RspInput.Interrupt) await session.InterruptAsync(ct); // acts now, even mid-resume
                    else if (session.State == GdbSessionState.Idle && backlog.Count == 0) await ServeAsync(input, ct);
                    else backlog.Enqueue(input);
                }
                await FlushAsync(ct); // acks (and NAKs, retransmissions) of what was queued
            }
        }
        catch (IOException)
        {
            await session.ConnectionLostAsync(CancellationToken.None);
        }
    }

    private async Task ServeAsync(RspInput input, CancellationToken ct)
    {
        var reply = await session.HandleAsync(input, ct);
        await WriteAsync(reply, ct);
    }

    private async Task WriteAsync(GdbReply reply, CancellationToken ct)
    {
        if (reply.ConsoleOutput is { Length: > 0 } text) channel.Send("O" + RspEncoding.ToHex(text));
        if (reply.Payload is not null) channel.Send(reply.Payload);
        if (reply.EnterNoAckMode) channel.EnterNoAckMode();
        await FlushAsync(ct);
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        var bytes = channel.TakeOutput();
        if (bytes.Length == 0) return;
        await stream.WriteAsync(bytes, ct);
        await stream.FlushAsync(ct);
    }
}
