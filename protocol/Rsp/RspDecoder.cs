namespace ActorStep.Protocol.Rsp;

/// <summary>
/// Incremental framing of gdb's byte stream (gdb manual, "Overview"): <c>$payload#xx</c> packets, <c>+</c>/<c>-</c>
/// acknowledgments, the 0x03 interrupt byte between packets ("Interrupts"). Bytes may arrive split anywhere.
/// Run-length encoding (<c>c*N</c>) is expanded while reading, as gdb's own <c>read_frame</c> does; anything else
/// between packets is line noise and is skipped. No I/O: the caller feeds bytes and gets <see cref="Frame"/>s.
/// </summary>
public sealed class RspDecoder
{
    /// <summary>What the framer saw: a packet (with whether its checksum matched), an oversized packet, a byte.</summary>
    public abstract record Frame
    {
        public sealed record Packet(byte[] Payload, bool ChecksumOk) : Frame;
        public sealed record Oversized(int Length) : Frame;
        public sealed record Interrupt : Frame;
        public sealed record Ack : Frame;
        public sealed record Nak : Frame;
    }

    private enum State { BetweenPackets, Payload, Checksum1, Checksum2 }

    private readonly int _maxPayload;
    private readonly byte[] _buffer;
    private State _state = State.BetweenPackets;
    private int _length;          // decoded payload length, counted past the limit too
    private byte _sum;            // checksum over the on-wire characters
    private bool _afterEscape;    // the previous on-wire character was an unescaped '}'
    private bool _runPending;     // a '*' was read; the next character is its count
    private int _checksumHigh;

    /// <param name="maxPayload">The largest payload accepted (after run-length expansion): the PacketSize we advertise.</param>
    public RspDecoder(int maxPayload)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 16);
        _maxPayload = maxPayload;
        _buffer = new byte[maxPayload];
    }

    public int MaxPayload => _maxPayload;

    /// <summary>Consumes bytes; appends every complete frame to <paramref name="output"/>.</summary>
    public void Feed(ReadOnlySpan<byte> bytes, List<Frame> output)
    {
        foreach (var b in bytes) Step(b, output);
    }

    private void Step(byte b, List<Frame> output)
    {
        switch (_state)
        {
            case State.BetweenPackets:
                switch (b)
                {
                    case (byte)'$': StartPacket(); break;
                    case (byte)'+': output.Add(new Frame.Ack()); break;
                    case (byte)'-': output.Add(new Frame.Nak()); break;
                    case 0x03: output.Add(new Frame.Interrupt()); break;
                    default: break; // line noise between packets is ignored
                }
                break;

            case State.Payload:
                if (_runPending)
                {
                    _runPending = false;
                    _sum += b;
                    int repeat = b - 29;
                    // A count character gdb would never send ('#', '$', < 3 repeats) leaves the '*' meaningless: drop it.
                    if (repeat >= 3 && repeat <= 97 && _length > 0 && b != '#' && b != '$')
                    {
                        byte previous = _length <= _maxPayload ? _buffer[_length - 1] : (byte)0;
                        for (int i = 0; i < repeat; i++) Append(previous);
                        _afterEscape = false;
                    }
                    else if (b == '#') { _state = State.Checksum1; }
                    else if (b == '$') { StartPacket(); }
                    return;
                }
                // As in gdb's read_frame: '$' restarts the packet, '#' always ends it (binary data escapes both).
                if (b == '$') { StartPacket(); return; }
                if (b == '#') { _state = State.Checksum1; return; }
                _sum += b;
                if (b == RspEncoding.RunLength && !_afterEscape && _length > 0) { _runPending = true; return; }
                _afterEscape = b == RspEncoding.Escape && !_afterEscape;
                Append(b);
                break;

            case State.Checksum1:
                _checksumHigh = RspEncoding.HexValue(b);
                _state = State.Checksum2;
                break;

            case State.Checksum2:
                int low = RspEncoding.HexValue(b);
                bool ok = _checksumHigh >= 0 && low >= 0 && (byte)(_checksumHigh << 4 | low) == _sum;
                _state = State.BetweenPackets;
                if (_length > _maxPayload) output.Add(new Frame.Oversized(_length));
                else output.Add(new Frame.Packet(_buffer.AsSpan(0, _length).ToArray(), ok));
                break;
        }
    }

    private void StartPacket()
    {
        _state = State.Payload;
        _length = 0;
        _sum = 0;
        _afterEscape = false;
        _runPending = false;
    }

    private void Append(byte b)
    {
        // Past the limit the packet is only measured, never stored: memory stays bounded whatever gdb sends.
        if (_length < _maxPayload) _buffer[_length] = b;
        if (_length < int.MaxValue) _length++;
    }
}
