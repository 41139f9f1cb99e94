namespace ActorStep.Protocol.Rsp;

/// <summary>One thing the framer recognised in gdb's byte stream (gdb manual, "Overview" and "Interrupts").</summary>
public abstract record RspInput
{
    /// <summary>A complete packet with a valid checksum (or any checksum in no-ack mode), run-length encoding expanded.
    /// <c>}</c> escapes are left in place: only binary packets (<c>X</c>) unescape their data.</summary>
    public sealed record Packet(byte[] Payload) : RspInput
    {
        /// <summary>The payload as ASCII, for logs and tests.</summary>
        public string Text => RspEncoding.Latin1(Payload);
        public override string ToString() => $"Packet({Text})";
    }

    /// <summary>The 0x03 byte between packets: gdb's Ctrl-C ("Interrupts").</summary>
    public sealed record Interrupt : RspInput;

    /// <summary>A packet longer than the PacketSize we advertised: it was acknowledged (so gdb does not resend it) and
    /// must be answered with <see cref="RspErrors.PacketTooLong"/>; the connection stays usable.</summary>
    public sealed record Oversized(int Length, int Limit) : RspInput;
}
