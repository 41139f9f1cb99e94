namespace ActorStep.Protocol.Rsp;

/// <summary>
/// The client's side of the acknowledgment layer (gdb manual, "Packet Acknowledgment"), as gdb itself speaks it to a stub
/// that has no no-ack mode (QEMU's): each good reply is acked with <c>+</c>, sent together with the next request so that
/// a round trip costs one write each way (and never on its own: while the target runs, any byte but the interrupt would
/// pause it — QEMU's system mode does not wait for acks); a reply with a bad checksum is NAKed (<c>-</c>) and the stub resends it; a NAK
/// from the stub makes us resend our last packet. No I/O: requests go out through <see cref="Request"/>, received bytes
/// come in through <see cref="Receive"/>.
/// </summary>
public sealed class RspClientChannel
{
    private readonly RspDecoder _decoder;
    private readonly List<RspDecoder.Frame> _frames = [];
    private readonly List<byte> _output = [];
    private readonly Queue<string> _replies = new();
    private byte[]? _lastSent;
    private int _acksOwed;

    /// <param name="maxReply">the largest reply payload accepted (after run-length expansion)</param>
    public RspClientChannel(int maxReply = 0x20000) => _decoder = new RspDecoder(maxReply);

    /// <summary>Replies with a bad checksum seen (each was NAKed and resent).</summary>
    public int ChecksumErrors { get; private set; }

    /// <summary>Queues a request packet, preceded by the ack of the last reply if it is still owed.</summary>
    public void Request(string payload)
    {
        FlushAck();
        var frame = RspEncoding.Frame(RspEncoding.Latin1(payload));
        _lastSent = frame;
        _output.AddRange(frame);
    }

    /// <summary>Queues the interrupt byte (gdb's Ctrl-C), preceded by an owed ack.</summary>
    public void Interrupt()
    {
        FlushAck();
        _output.Add(0x03);
    }

    /// <summary>Queues the ack of the last reply now (before the connection closes, or when nothing else is sent).</summary>
    public void FlushAck()
    {
        for (; _acksOwed > 0; _acksOwed--) _output.Add((byte)'+');
    }

    /// <summary>Feeds bytes from the stub; complete replies become available through <see cref="TryTakeReply"/>. Acks and
    /// NAKs owed are queued for <see cref="TakeOutput"/> (an ack waits for the next request unless flushed).</summary>
    public void Receive(ReadOnlySpan<byte> bytes)
    {
        _frames.Clear();
        _decoder.Feed(bytes, _frames);
        foreach (var frame in _frames)
        {
            switch (frame)
            {
                case RspDecoder.Frame.Packet { ChecksumOk: true } p:
                    _acksOwed++; // acked with the next request
                    _replies.Enqueue(RspEncoding.Latin1(p.Payload));
                    break;
                case RspDecoder.Frame.Packet:
                    ChecksumErrors++;
                    _output.Add((byte)'-'); // the stub resends it
                    break;
                case RspDecoder.Frame.Oversized o:
                    throw new RspFormatException($"the stub sent a reply of {o.Length} bytes, more than the {_decoder.MaxPayload} accepted");
                case RspDecoder.Frame.Nak when _lastSent is not null:
                    _output.AddRange(_lastSent);
                    break;
                default:
                    break; // acks (we never wait for them: the reply is the answer) and stray bytes
            }
        }
    }

    /// <summary>The next complete reply, in the order received.</summary>
    public bool TryTakeReply(out string reply) => _replies.TryDequeue(out reply!);

    /// <summary>Bytes queued to send, in one write.</summary>
    public byte[] TakeOutput()
    {
        var bytes = _output.ToArray();
        _output.Clear();
        return bytes;
    }

    public bool HasOutput => _output.Count > 0;
}
