using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>gdb manual, "Overview", "Packet Acknowledgment", "Interrupts": framing, acks and encodings.</summary>
public class RspCodecTests
{
    private static byte[] B(string s) => RspEncoding.Latin1(s);
    private static string S(byte[] b) => RspEncoding.Latin1(b);
    private static string Frame(string payload) => S(RspEncoding.Frame(B(payload)));
    private static string[] Texts(IReadOnlyList<RspInput> inputs) =>
        inputs.Select(i => i switch
        {
            RspInput.Packet p => p.Text,
            RspInput.Interrupt => "^C",
            RspInput.Oversized o => $"oversized {o.Length}",
            _ => "?",
        }).ToArray();

    [Fact]
    public void A_good_packet_is_acked_and_delivered()
    {
        var channel = new RspChannel();
        var inputs = channel.Receive(B("$qC#b4"));
        Assert.Equal(["qC"], Texts(inputs));
        Assert.Equal("+", S(channel.TakeOutput()));
    }

    [Fact]
    public void A_packet_split_across_reads_is_reassembled()
    {
        var channel = new RspChannel();
        var all = new List<RspInput>();
        foreach (var chunk in new[] { "$vMust", "ReplyEm", "pty#", "3", "a" }) all.AddRange(channel.Receive(B(chunk)));
        Assert.Equal(["vMustReplyEmpty"], Texts(all));
        Assert.Equal("+", S(channel.TakeOutput()));
    }

    [Fact]
    public void Bad_checksum_gets_a_NAK_and_the_retransmission_is_served()
    {
        var channel = new RspChannel();
        Assert.Empty(channel.Receive(B("$g#00")));
        Assert.Equal("-", S(channel.TakeOutput()));
        Assert.Equal(1, channel.ChecksumErrors);

        Assert.Equal(["g"], Texts(channel.Receive(B("$g#67"))));
        Assert.Equal("+", S(channel.TakeOutput()));
    }

    [Fact]
    public void Non_hex_checksum_digits_get_a_NAK()
    {
        var channel = new RspChannel();
        Assert.Empty(channel.Receive(B("$g#zz")));
        Assert.Equal("-", S(channel.TakeOutput()));
    }

    [Fact]
    public void A_NAK_from_gdb_retransmits_our_last_packet()
    {
        var channel = new RspChannel();
        channel.Send("OK");
        Assert.Equal("$OK#9a", S(channel.TakeOutput()));
        channel.Receive(B("-"));
        Assert.Equal("$OK#9a", S(channel.TakeOutput()));
        channel.Receive(B("+"));
        Assert.Empty(channel.TakeOutput());
    }

    [Fact]
    public void Garbage_between_packets_is_ignored()
    {
        var channel = new RspChannel();
        var inputs = channel.Receive(B("xyz\r\n#00$qC#b4 junk!$?#3f"));
        Assert.Equal(["qC", "?"], Texts(inputs));
        Assert.Equal("++", S(channel.TakeOutput()));
    }

    [Fact]
    public void A_dollar_inside_a_packet_restarts_it()
    {
        var channel = new RspChannel();
        Assert.Equal(["qC"], Texts(channel.Receive(B("$qfThr$qC#b4"))));
    }

    [Fact]
    public void The_interrupt_byte_between_packets_is_an_interrupt()
    {
        var channel = new RspChannel();
        var inputs = channel.Receive([0x03, .. B("$?#3f"), 0x03]);
        Assert.Equal(["^C", "?", "^C"], Texts(inputs));
        Assert.Equal("+", S(channel.TakeOutput())); // Ctrl-C is not acked
    }

    [Fact]
    public async Task Oversized_packet_gets_an_error_and_the_connection_stays_usable()
    {
        var channel = new RspChannel(packetSize: 64);
        var big = "M1000,40:" + new string('a', 128);
        var inputs = channel.Receive(B(Frame(big)));
        var oversized = Assert.IsType<RspInput.Oversized>(Assert.Single(inputs));
        Assert.Equal(big.Length, oversized.Length);
        Assert.Equal(64, oversized.Limit);
        Assert.Equal("+", S(channel.TakeOutput())); // acked: a retransmission would be as long

        var session = new GdbSession(new FakeGdbTarget(), littleEndianTarget: false, packetSize: 64);
        Assert.Equal(RspErrors.PacketTooLong, (await session.HandleAsync(oversized)).Text);
        Assert.Equal(GdbSessionState.Idle, session.State);

        Assert.Equal(["qC"], Texts(channel.Receive(B("$qC#b4"))));
    }

    [Fact]
    public void A_packet_exactly_at_the_limit_is_accepted()
    {
        var channel = new RspChannel(packetSize: 64);
        var payload = new string('q', 64);
        Assert.Equal([payload], Texts(channel.Receive(B(Frame(payload)))));
    }

    [Fact]
    public void Run_length_encoding_is_expanded_on_input()
    {
        var channel = new RspChannel();
        // "0* " is '0' plus 3 more; the checksum covers the encoded characters.
        var inputs = channel.Receive(B(S(RspEncoding.Frame(B("X0* y")))));
        Assert.Equal(["X0000y"], Texts(inputs));
    }

    [Fact]
    public void An_escaped_star_is_data_not_run_length()
    {
        var channel = new RspChannel();
        var inputs = channel.Receive(RspEncoding.Frame(B("X1,1:}\n")));
        Assert.Equal(["X1,1:}\n"], Texts(inputs));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("0000")]
    [InlineData("00000000000000000000000000000000ffffffffffffffff")]
    [InlineData("xxxxxxx")]               // a run of 7: '$' would be the count
    [InlineData("yyyyyyyy")]              // a run of 8: '#' would be the count
    [InlineData("zzzzzzzzzzzzzzzz")]      // 16: '+' would be the count
    [InlineData("}]}]}]}]}]ab}]")]        // escape pairs are never split
    public void Run_length_encoding_round_trips(string payload)
    {
        var encoded = RspEncoding.EncodeRunLength(B(payload));
        Assert.DoesNotContain((byte)'#', encoded.Where((b, i) => i > 0 && encoded[i - 1] == '*'));
        Assert.DoesNotContain((byte)'$', encoded.Where((b, i) => i > 0 && encoded[i - 1] == '*'));
        var channel = new RspChannel();
        Assert.Equal([payload], Texts(channel.Receive(RspEncoding.Frame(encoded))));
    }

    [Fact]
    public void Long_runs_are_encoded_in_several_pieces()
    {
        var payload = new string('0', 300);
        var encoded = RspEncoding.EncodeRunLength(B(payload));
        Assert.True(encoded.Length < 20, S(encoded));
        Assert.All(encoded.Where((b, i) => i > 0 && encoded[i - 1] == '*'), c => Assert.InRange(c, (byte)' ', (byte)'~'));
        var channel = new RspChannel();
        Assert.Equal([payload], Texts(channel.Receive(RspEncoding.Frame(encoded))));
    }

    [Fact]
    public void Output_is_run_length_encoded_when_asked()
    {
        var channel = new RspChannel(runLengthEncodeOutput: true);
        channel.Send("00000000"); // 7 repeats would need '$' and 6 '#': 5 ('"') then two plain zeros
        Assert.Equal("$0*\"00#" + Convert.ToHexStringLower([RspEncoding.Checksum(B("0*\"00"))]), S(channel.TakeOutput()));
        channel.Send("1111");
        Assert.Equal("$1* #" + Convert.ToHexStringLower([RspEncoding.Checksum(B("1* "))]), S(channel.TakeOutput()));
    }

    [Fact]
    public void Binary_escaping_round_trips_every_byte()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var escaped = RspEncoding.EscapeBinary(all);
        Assert.DoesNotContain((byte)'#', escaped);
        Assert.DoesNotContain((byte)'$', escaped);
        Assert.DoesNotContain((byte)'*', escaped);
        Assert.True(RspEncoding.TryUnescapeBinary(escaped, out var back));
        Assert.Equal(all, back);

        var channel = new RspChannel();
        var packet = Assert.IsType<RspInput.Packet>(Assert.Single(channel.Receive(RspEncoding.Frame([.. B("X0,100:"), .. escaped]))));
        Assert.True(RspEncoding.TryUnescapeBinary(packet.Payload.AsSpan(7), out var data));
        Assert.Equal(all, data);
    }

    [Fact]
    public void A_dangling_escape_is_malformed()
    {
        Assert.False(RspEncoding.TryUnescapeBinary(B("ab}"), out _));
    }

    [Fact]
    public void No_ack_mode_sends_no_acks_and_accepts_what_arrives()
    {
        var channel = new RspChannel();
        Assert.Equal(["QStartNoAckMode"], Texts(channel.Receive(B(Frame("QStartNoAckMode")))));
        channel.Send("OK");
        channel.EnterNoAckMode();
        Assert.Equal("+$OK#9a", S(channel.TakeOutput()));

        Assert.Equal(["g"], Texts(channel.Receive(B("+$g#67"))));  // gdb's ack of the OK is harmless
        Assert.Empty(channel.TakeOutput());
        Assert.Equal(["qC"], Texts(channel.Receive(B("$qC#00")))); // gdbserver too accepts it: gdb would never resend
        Assert.Empty(channel.TakeOutput());
        channel.Send("OK");
        channel.Receive(B("-"));
        Assert.Equal("$OK#9a", S(channel.TakeOutput()));           // no retransmission either
    }

    [Theory]
    [InlineData("m1000")]          // missing length
    [InlineData("m10g0,4")]        // bad hex
    [InlineData("mzz,4")]
    [InlineData("M1000,2:12")]     // data shorter than the length
    [InlineData("M1000,1:1")]      // odd hex
    [InlineData("M1000,1:zz")]
    [InlineData("X1000,2:a}")]     // dangling escape
    [InlineData("p")]              // missing register number
    [InlineData("P40=12")]         // wrong width for pc
    [InlineData("P40")]            // missing value
    [InlineData("Z0,1000")]        // missing kind
    [InlineData("Z0,,4")]
    [InlineData("Hgpx.1")]
    [InlineData("vCont;q")]        // an action not offered
    [InlineData("vCont;s:p1.zz")]
    [InlineData("qXfer:features:read:target.xml:0")]
    [InlineData("G123")]
    [InlineData("m11111111111111111,4")] // address longer than 64 bits
    public async Task Malformed_packets_get_E01_and_the_session_carries_on(string packet)
    {
        var target = new FakeGdbTarget();
        var session = new GdbSession(target, littleEndianTarget: false);
        var reply = await session.HandlePacketAsync(B(packet));
        Assert.Equal("E01", reply.Text);
        Assert.Equal(GdbSessionState.Idle, session.State);
        Assert.Equal($"QC{1:x}", (await session.HandlePacketAsync(B("qC"))).Text);
    }
}
