namespace ActorStep.Protocol.Rsp;

/// <summary>
/// The acknowledgment layer over <see cref="RspDecoder"/> (gdb manual, "Overview" and "Packet Acknowledgment"):
/// acks each good packet with <c>+</c>, NAKs a bad checksum with <c>-</c> so gdb retransmits, retransmits our last
/// packet when gdb NAKs it, and stops all of that once no-ack mode is on (<c>QStartNoAckMode</c>). No I/O: bytes in
/// through <see cref="Receive"/>, bytes out collected until <see cref="TakeOutput"/>, so that an ack and its reply
/// leave in one socket write.
/// </summary>
public sealed class RspChannel
{
    /// <summary>The PacketSize this stub advertises by default (gdbserver uses 0x3fff).</summary>
    public const int DefaultPacketSize = 0x4000;

    private readonly RspDecoder _decoder;
    private readonly List<RspDecoder.Frame> _frames = [];
    private readonly List<byte> _output = [];
    private byte[]? _lastSent;

    public RspChannel(int packetSize = DefaultPacketSize, bool runLengthEncodeOutput = false)
    {
        _decoder = new RspDecoder(packetSize);
        RunLengthEncodeOutput = runLengthEncodeOutput;
    }

    /// <summary>The largest packet payload accepted; advertised as PacketSize in qSupported.</summary>
    public int PacketSize => _decoder.MaxPayload;

    /// <summary>Whether outgoing payloads are run-length encoded (optional for stubs: "Overview").</summary>
    public bool RunLengthEncodeOutput { get; set; }

    /// <summary>True once QStartNoAckMode was answered: no more <c>+</c>/<c>-</c> either way ("Packet Acknowledgment").</summary>
    public bool NoAckMode { get; private set; }

    /// <summary>Bad checksums seen (in no-ack mode they are accepted, as gdbserver does: gdb would never resend).</summary>
    public int ChecksumErrors { get; private set; }

    /// <summary>Turns acknowledgments off; call after queuing the <c>OK</c> that answers QStartNoAckMode.</summary>
    public void EnterNoAckMode() { NoAckMode = true; _lastSent = null; }

    /// <summary>Feeds received bytes; returns the packets and interrupts to act on, in order. Acks, NAKs and
    /// retransmissions are queued for <see cref="TakeOutput"/>.</summary>
    public IReadOnlyList<RspInput> Receive(ReadOnlySpan<byte> bytes)
    {
        _frames.Clear();
        _decoder.Feed(bytes, _frames);
        var inputs = new List<RspInput>();
        foreach (var frame in _frames)
        {
            switch (frame)
            {
                case RspDecoder.Frame.Packet p when p.ChecksumOk || NoAckMode:
                    if (!p.ChecksumOk) ChecksumErrors++;
                    Acknowledge((byte)'+');
                    inputs.Add(new RspInput.Packet(p.Payload));
                    break;
                case RspDecoder.Frame.Packet:
                    ChecksumErrors++;
                    Acknowledge((byte)'-'); // gdb resends the packet
                    break;
                case RspDecoder.Frame.Oversized o:
                    // Acked, not NAKed: a resend would be just as long. The session answers it with an error.
                    Acknowledge((byte)'+');
                    inputs.Add(new RspInput.Oversized(o.Length, PacketSize));
                    break;
                case RspDecoder.Frame.Interrupt:
                    inputs.Add(new RspInput.Interrupt());
                    break;
                case RspDecoder.Frame.Nak when !NoAckMode && _lastSent is not null:
                    _output.AddRange(_lastSent); // gdb did not get our last packet intact
                    break;
                case RspDecoder.Frame.Ack:
                case RspDecoder.Frame.Nak:
                    break; // we never wait for acks: the next packet is only sent after gdb's next request
            }
        }
        return inputs;
    }

    /// <summary>Frames a payload (escaping is the caller's business: only binary replies need it) and queues it.</summary>
    public void Send(ReadOnlySpan<byte> payload)
    {
        var frame = RspEncoding.Frame(RunLengthEncodeOutput ? RspEncoding.EncodeRunLength(payload) : payload);
        if (!NoAckMode) _lastSent = frame;
        _output.AddRange(frame);
    }

    public void Send(string payload) => Send(RspEncoding.Latin1(payload));

    /// <summary>Queues a notification (<c>%name:payload#xx</c>, "Notification Packets"): never acknowledged, never retransmitted.</summary>
    public void SendNotification(ReadOnlySpan<byte> payload)
    {
        var frame = RspEncoding.Frame(RunLengthEncodeOutput ? RspEncoding.EncodeRunLength(payload) : payload);
        frame[0] = (byte)'%';
        _output.AddRange(frame);
    }

    /// <summary>Everything queued since the last call, to be written in one socket write.</summary>
    public byte[] TakeOutput()
    {
        var bytes = _output.ToArray();
        _output.Clear();
        return bytes;
    }

    private void Acknowledge(byte ack)
    {
        if (!NoAckMode) _output.Add(ack);
    }
}
