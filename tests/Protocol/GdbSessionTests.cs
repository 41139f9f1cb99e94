using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>The session against an in-memory target: gdb 13's packets (gdb-bridge.md) and their exact replies.</summary>
public class GdbSessionTests
{
    /// <summary>What gdb-multiarch 13.1 sends first.</summary>
    public const string Gdb13Supported =
        "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+";

    private const string Msr = "8000000000001000";

    private readonly FakeGdbTarget _target = new(vcpus: 2);
    private readonly GdbSession _session;

    public GdbSessionTests() => _session = new GdbSession(_target, littleEndianTarget: false);

    private async Task<string?> Ask(string packet) => (await _session.HandlePacketAsync(RspEncoding.Latin1(packet))).Text;

    private async Task<string> Stop() => (await _session.WaitForStopAsync()).Text!;

    private async Task Connect()
    {
        await Ask(Gdb13Supported);
        await Ask("QStartNoAckMode");
    }

    private static string StopReply(string signal, int vcpu, string extra = "") =>
        $"T{signal}thread:p1.{vcpu + 1:x};{extra}40:{FakeGdbTarget.Pc(vcpu):x16};41:{Msr};01:{0x7ff0 + vcpu * 0x1000:x16};";

    [Fact]
    public async Task The_gdb13_connect_sequence_gets_the_replies_gdb_expects()
    {
        Assert.Equal("PacketSize=4000;qXfer:features:read+;qXfer:threads:read+;vContSupported+;QStartNoAckMode+;multiprocess+;swbreak+",
            await Ask(Gdb13Supported));
        Assert.Equal("", await Ask("vMustReplyEmpty"));
        var noAck = await _session.HandlePacketAsync(RspEncoding.Latin1("QStartNoAckMode"));
        Assert.Equal("OK", noAck.Text);
        Assert.True(noAck.EnterNoAckMode);
        Assert.Equal("OK", await Ask("Hgp0.0"));

        var first = await Ask("qXfer:features:read:target.xml:0,ffb");
        Assert.StartsWith("m<?xml", first);
        var second = await Ask($"qXfer:features:read:target.xml:{first!.Length - 1:x},ffb");
        Assert.StartsWith("l", second);
        Assert.Equal(TargetDescription.TargetXml, first[1..] + second![1..]);

        Assert.Equal("", await Ask("qTStatus"));
        Assert.Equal(StopReply("05", 0), await Ask("?"));
        Assert.Equal("mp1.1,p1.2", await Ask("qfThreadInfo"));
        Assert.Equal("l", await Ask("qsThreadInfo"));
        Assert.Equal("1", await Ask("qAttached:1"));
        Assert.Equal("OK", await Ask("Hc-1"));
        Assert.Equal("", await Ask("qOffsets"));
        var g = await Ask("g");
        Assert.Equal(2 * TargetDescription.GPacketBytes, g!.Length);
        Assert.Equal("0000000000000000" + "0000000000007ff0" + "0000000000000002", g[..48]);
        _target.Memory[0x1000] = 0x7f; _target.Memory[0x1001] = 0xe0; _target.Memory[0x1002] = 0x00; _target.Memory[0x1003] = 0x08;
        Assert.Equal("7fe00008", await Ask("m1000,4"));
    }

    [Fact]
    public async Task Swbreak_is_not_announced_when_gdb_did_not_offer_it()
    {
        Assert.Equal("PacketSize=4000;qXfer:features:read+;qXfer:threads:read+;vContSupported+;QStartNoAckMode+",
            await Ask("qSupported:vContSupported+"));
    }

    [Fact]
    public async Task Hwbreak_is_announced_only_when_the_target_has_hardware_breakpoints()
    {
        _target.HwBreakpointsCapability = new FakeHwBreakpoints();
        Assert.EndsWith(";swbreak+;hwbreak+", await Ask(Gdb13Supported));
        Assert.Equal("OK", await Ask("Z1,2000,4"));
    }

    [Fact]
    public async Task Unknown_packets_get_an_empty_reply()
    {
        foreach (var p in new[] { "vMustReplyEmpty", "qTStatus", "bc", "vFile:setfs:0", "QNonStop:1", "qSymbol::", "Z2,1000,4", "Z1,1000,4", "!" })
            Assert.Equal("", await Ask(p));
    }

    [Fact]
    public async Task The_target_description_numbers_registers_as_documented()
    {
        var xml = TargetDescription.TargetXml;
        Assert.Contains("<architecture>powerpc:common64</architecture>", xml);
        Assert.Contains("<feature name=\"org.gnu.gdb.power.core\">", xml);
        Assert.Contains("<feature name=\"org.gnu.gdb.power.fpu\">", xml);
        Assert.Contains("<feature name=\"org.actorstep.power.spr\">", xml);
        Assert.Contains("<reg name=\"cr\" bitsize=\"32\" type=\"uint32\" regnum=\"66\"/>", xml);
        Assert.Contains("<reg name=\"xer\" bitsize=\"32\" type=\"uint32\" regnum=\"69\"/>", xml);
        Assert.Contains("<reg name=\"fpscr\" bitsize=\"32\" type=\"uint32\" regnum=\"70\" group=\"float\"/>", xml);
        string[] sprs = ["srr0", "srr1", "sprg0", "sprg1", "sprg2", "sprg3", "dar", "dsisr", "dec", "lpcr", "pir", "pvr", "tb"];
        for (int i = 0; i < sprs.Length; i++) Assert.Contains($"<reg name=\"{sprs[i]}\" bitsize=\"{(sprs[i] is "dsisr" or "dec" ? 32 : 64)}\"", xml);
        Assert.Equal(sprs, TargetDescription.Registers.Skip(71).Select(r => r.Name));
        Assert.Equal(84, TargetDescription.Registers.Count);
        Assert.Equal(652, TargetDescription.GPacketBytes);
        System.Xml.Linq.XDocument.Parse(xml); // well-formed
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Qxfer_chunks_follow_offset_and_length()
    {
        var xml = TargetDescription.TargetXml;
        Assert.Equal("m" + xml[..16], await Ask("qXfer:features:read:target.xml:0,10"));
        Assert.Equal("m" + xml[16..32], await Ask("qXfer:features:read:target.xml:10,10"));
        Assert.Equal("l" + xml[^5..], await Ask($"qXfer:features:read:target.xml:{xml.Length - 5:x},10"));
        Assert.Equal("l", await Ask($"qXfer:features:read:target.xml:{xml.Length:x},10"));
        Assert.Equal("E00", await Ask("qXfer:features:read:power-core.xml:0,10"));
    }

    [Fact]
    public void Qxfer_chunks_are_escaped_and_shortened_to_fit_the_packet()
    {
        var doc = RspEncoding.Latin1("a*#$}b");
        Assert.Equal("la}\n}\u0003}\u0004}]b", RspEncoding.Latin1(GdbSession.Chunk(doc, 0, 100, 0x4000)));
        var stars = RspEncoding.Latin1(new string('*', 100));
        var chunk = GdbSession.Chunk(stars, 0, 100, 25); // 20 bytes of room: 10 escaped stars
        Assert.Equal("m" + string.Concat(Enumerable.Repeat("}\n", 10)), RspEncoding.Latin1(chunk));
    }

    [Fact]
    public async Task Threads_are_listed_with_their_state()
    {
        await Connect();
        Assert.Equal(RspEncoding.ToHex("stopped at 0x1100"), await Ask("qThreadExtraInfo,p1.2"));
        Assert.Equal("QCp1.1", await Ask("qC"));
        Assert.Equal("OK", await Ask("Tp1.2"));
        Assert.Equal("E16", await Ask("Tp1.3"));
        Assert.Equal("E16", await Ask("Hgp1.3"));
        var xml = await Ask("qXfer:threads:read::0,fff");
        Assert.Equal("l<?xml version=\"1.0\"?>\n<threads>\n" +
                     "<thread id=\"p1.1\" core=\"0\" name=\"vcpu0\">stopped at 0x1000</thread>\n" +
                     "<thread id=\"p1.2\" core=\"1\" name=\"vcpu1\">stopped at 0x1100</thread>\n</threads>\n", xml);
    }

    [Fact]
    public async Task Thread_ids_without_multiprocess_are_plain_numbers()
    {
        await Ask("qSupported:swbreak+");
        Assert.Equal("m1,2", await Ask("qfThreadInfo"));
        Assert.Equal("OK", await Ask("Hg2"));
        Assert.Equal("QC2", await Ask("qC"));
    }

    [Fact]
    public async Task Registers_travel_in_the_image_byte_order_not_the_msr()
    {
        var le = new GdbSession(_target, littleEndianTarget: true);
        Assert.Equal("0010000000000000", (await le.HandlePacketAsync(RspEncoding.Latin1("p40"))).Text);
        Assert.Equal("42000000", (await le.HandlePacketAsync(RspEncoding.Latin1("p42"))).Text); // cr is 32-bit
        Assert.Equal("OK", (await le.HandlePacketAsync(RspEncoding.Latin1("P40=0020000000000000"))).Text);
        Assert.Equal(0x2000UL, _target.Reg(0, TargetDescription.Pc));

        Assert.Equal("0000000000002000", await Ask("p40"));
        Assert.Equal("00000042", await Ask("p42"));
        Assert.Equal("00000045", await Ask("p45")); // xer
        Assert.Equal("0000000000000053", await Ask("p53")); // tb (83)
        Assert.Equal("E16", await Ask("p54"));
    }

    [Fact]
    public async Task P_writes_the_hg_thread()
    {
        await Connect();
        Assert.Equal("OK", await Ask("Hgp1.2"));
        Assert.Equal("OK", await Ask("P3=00000000deadbeef"));
        Assert.Equal(0xdeadbeefUL, _target.Reg(1, 3));
        Assert.Equal("00000000deadbeef", await Ask("p3"));
        Assert.Equal(3UL, _target.Reg(0, 3)); // vcpu 0 untouched
    }

    [Fact]
    public async Task Unavailable_registers_are_sent_as_xx()
    {
        _target.Registers[0].Remove(TargetDescription.Tb);
        Assert.Equal("xxxxxxxxxxxxxxxx", await Ask("p53"));
        Assert.EndsWith("xxxxxxxxxxxxxxxx", await Ask("g"));
    }

    [Fact]
    public async Task G_writes_only_the_registers_that_changed()
    {
        var g = (await Ask("g"))!;
        var changed = g[..16] + "00000000000000aa" + g[32..];
        _target.Calls.Clear();
        Assert.Equal("OK", await Ask("G" + changed));
        Assert.Equal(["WriteRegister 0 1 00000000000000aa"], _target.Calls.Where(c => c.StartsWith("Write")));
        Assert.Equal("OK", await Ask("G" + g[..32])); // a shorter G is fine: r0, r1
        Assert.Equal(0x7ff0UL, _target.Reg(0, 1));
        Assert.Equal("E01", await Ask("G" + g + "00"));
    }

    [Fact]
    public async Task Memory_reads_and_writes_reach_the_target()
    {
        Assert.Equal("OK", await Ask("M2000,3:0a0b0c"));
        Assert.Equal("0a0b0c", await Ask("m2000,3"));
        Assert.Equal("0b0c", await Ask("m2001,8")); // a partial read
        Assert.Equal("E0e", await Ask("m9000,4"));
        _target.Calls.Clear();
        Assert.Equal("OK", await Ask("X2000,0:")); // gdb's probe
        Assert.Empty(_target.Calls);
        Assert.Equal("OK", await Ask("X2000,4:}]}\u0003}\u0004}\n"));
        Assert.Equal("7d23242a", await Ask("m2000,4"));
    }

    [Fact]
    public async Task Memory_is_read_through_the_hg_thread()
    {
        await Connect();
        _target.Memory[0x10] = 1;
        await Ask("Hgp1.2");
        await Ask("m10,1");
        Assert.Contains("ReadMemory 1 10 1", _target.Calls);
    }

    [Fact]
    public async Task Breakpoints_are_kind_4_software_breakpoints()
    {
        Assert.Equal("OK", await Ask("Z0,1000,4"));
        Assert.Contains(0x1000UL, _target.SwBreakpoints);
        Assert.Equal("E16", await Ask("Z0,1004,2"));
        Assert.Equal("OK", await Ask("z0,1000,4"));
        Assert.Empty(_target.SwBreakpoints);
    }

    [Fact]
    public async Task Vcont_query_lists_c_and_C_and_range_stepping()
    {
        Assert.Equal("vCont;c;C;s;S;t;r", await Ask("vCont?"));
    }

    [Fact]
    public async Task A_range_step_steps_its_thread_with_the_range_and_the_others_as_vCont_says()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone));
        Assert.Null(await Ask("vCont;r1000,1010:p1.2;c:p1.-1"));
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Step], _target.Resumes.Single());
        Assert.Equal(new GdbStepRange(0x1000, 0x1010), _target.ResumeRanges.Single()[1]);
        Assert.Single(_target.ResumeRanges.Single());
        Assert.Equal(StopReply("05", 1), await Stop());
    }

    [Fact]
    public async Task Qemu_step_flags_are_offered_and_NOIRQ_decides_whether_steps_hold_interrupts()
    {
        await Connect();
        Assert.Equal("ENABLE=1,NOIRQ=2,NOTIMER=4", await Ask("qqemu.sstepbits"));
        Assert.Equal("0x7", await Ask("qqemu.sstep"));
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        await Ask("vCont;s:p1.1");
        await Stop();
        Assert.Equal("OK", await Ask("Qqemu.sstep=0x5")); // ENABLE|NOTIMER: the documented way to step into handlers
        Assert.Equal("OK", await Ask("Qqemu.sstep=5"));
        Assert.Equal("0x5", await Ask("qqemu.sstep"));
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        await Ask("vCont;s:p1.1");
        await Stop();
        Assert.Equal([true, false], _target.ResumeHoldsInterrupts);
    }

    [Fact]
    public async Task A_step_of_an_idle_vcpu_is_a_plain_SIGTRAP_stop_preceded_by_the_reason_on_gdbs_console()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Idle, Detail: "vcpu 1 is idle in H_CEDE"));
        await Ask("vCont;s:p1.2");
        var reply = await _session.WaitForStopAsync();
        Assert.Equal(StopReply("05", 1), reply.Text);
        Assert.Equal("thread 2: vcpu 1 is idle in H_CEDE\n", reply.ConsoleOutput);

        // The next stop carries no console text.
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone));
        await Ask("vCont;s:p1.2");
        Assert.Null((await _session.WaitForStopAsync()).ConsoleOutput);
    }

    [Theory]
    [InlineData("Qqemu.sstep=6")]  // without ENABLE
    [InlineData("Qqemu.sstep=f")]  // an unknown bit
    [InlineData("Qqemu.sstep=")]
    [InlineData("Qqemu.sstep=100000005")] // 5 in its low 32 bits
    public async Task Bad_qemu_step_flags_get_an_error_and_change_nothing(string packet)
    {
        await Connect();
        Assert.StartsWith("E", await Ask(packet));
        Assert.Equal("0x7", await Ask("qqemu.sstep"));
    }

    [Fact]
    public async Task Monitor_interrupts_switches_the_same_flag_and_help_lists_it()
    {
        await Connect();
        static string Hex(string s) => RspEncoding.ToHex(s);
        static string Text(string? hex) => RspEncoding.Latin1(Convert.FromHexString(hex!));
        Assert.Contains("interrupts [held|allowed]", Text(await Ask($"qRcmd,{Hex("help")}")));
        Assert.Contains("allow", Text(await Ask($"qRcmd,{Hex("interrupts allowed")}")));
        Assert.Equal("0x1", await Ask("qqemu.sstep"));
        Assert.Contains("usage", Text(await Ask($"qRcmd,{Hex("interrupts sometimes")}")));
        Assert.Contains("hold", Text(await Ask($"qRcmd,{Hex("interrupts held")}")));
        Assert.Equal("0x7", await Ask("qqemu.sstep"));
    }

    [Theory]
    [InlineData("vCont;r1010,1000:p1.1")]
    [InlineData("vCont;r1000:p1.1")]
    [InlineData("vCont;r,1000:p1.1")]
    public async Task A_malformed_range_step_gets_an_error_and_runs_nothing(string packet)
    {
        await Connect();
        Assert.StartsWith("E", await Ask(packet));
        Assert.Empty(_target.Resumes);
        Assert.Equal(GdbSessionState.Idle, _session.State);
    }

    [Fact]
    public async Task Stepi_with_locking_off_steps_one_vcpu_and_continues_the_others()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone));
        Assert.Null(await Ask("vCont;s:p1.2;c:p1.-1"));
        Assert.Equal(GdbSessionState.Running, _session.State);
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Step], _target.Resumes.Single());
        Assert.Equal(StopReply("05", 1), await Stop());
        Assert.Equal(GdbSessionState.Idle, _session.State);
        Assert.Equal("QCp1.2", await Ask("qC")); // the stopped thread is gdb's current one
    }

    [Fact]
    public async Task Stepi_with_locking_step_moves_only_the_stepped_vcpu()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone));
        await Ask("vCont;s:p1.2");
        Assert.Equal([GdbResumeAction.Stay, GdbResumeAction.Step], _target.Resumes.Single());
        Assert.Equal(StopReply("05", 1), await Stop());
    }

    [Fact]
    public async Task Continue_runs_every_vcpu_and_a_breakpoint_says_swbreak()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.Breakpoint));
        await Ask("vCont;c:p1.-1");
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Continue], _target.Resumes.Single());
        Assert.Equal(StopReply("05", 0, "swbreak:;"), await Stop());
    }

    [Fact]
    public async Task Continue_with_locking_on_runs_only_the_current_vcpu()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        await Ask("vCont;c:p1.2");
        Assert.Equal([GdbResumeAction.Stay, GdbResumeAction.Continue], _target.Resumes.Single());
        Assert.Equal(StopReply("05", 1, "swbreak:;"), await Stop());
    }

    [Fact]
    public async Task A_breakpoint_stop_has_no_swbreak_when_gdb_did_not_offer_it()
    {
        await Ask("qSupported:multiprocess+");
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.Breakpoint));
        await Ask("vCont;c:p1.-1");
        Assert.Equal(StopReply("05", 0), await Stop());
    }

    [Fact]
    public async Task The_leftmost_matching_vcont_action_wins_and_unnamed_threads_stay()
    {
        var target = new FakeGdbTarget(vcpus: 4);
        var session = new GdbSession(target, littleEndianTarget: false);
        await session.HandlePacketAsync(RspEncoding.Latin1(Gdb13Supported));
        target.Stops.Enqueue(new GdbStopEvent(2, GdbStopReason.StepDone));
        target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));

        await session.HandlePacketAsync(RspEncoding.Latin1("vCont;t:p1.1;s:p1.3;c"));
        await session.WaitForStopAsync();
        Assert.Equal([GdbResumeAction.Stay, GdbResumeAction.Continue, GdbResumeAction.Step, GdbResumeAction.Continue], target.Resumes[0]);

        await session.HandlePacketAsync(RspEncoding.Latin1("vCont;s:1;c:4"));
        await session.WaitForStopAsync();
        Assert.Equal([GdbResumeAction.Step, GdbResumeAction.Stay, GdbResumeAction.Stay, GdbResumeAction.Continue], target.Resumes[1]);

        await session.HandlePacketAsync(RspEncoding.Latin1("vCont;S05:p1.1;C05:p-1.-1"));
        await session.WaitForStopAsync();
        Assert.Equal([GdbResumeAction.Step, GdbResumeAction.Continue, GdbResumeAction.Continue, GdbResumeAction.Continue], target.Resumes[2]);
    }

    [Fact]
    public async Task A_vcont_that_moves_no_thread_is_refused()
    {
        await Connect();
        Assert.Equal("E16", await Ask("vCont;t:p1.-1"));
        Assert.Equal("E16", await Ask("vCont;c:p2.-1")); // another process: matches nothing
        Assert.Empty(_target.Resumes);
        Assert.Equal(GdbSessionState.Idle, _session.State);
    }

    [Fact]
    public async Task Old_s_with_hc_all_steps_the_current_thread_and_continues_the_others()
    {
        await Connect();
        await Ask("Hgp1.2");
        await Ask("Hc-1");
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone));
        Assert.Null(await Ask("s"));
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Step], _target.Resumes.Single());
        Assert.Equal(StopReply("05", 1), await Stop());
    }

    [Fact]
    public async Task Old_c_with_a_specific_hc_thread_moves_it_alone()
    {
        await Connect();
        await Ask("Hcp1.2");
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        await Ask("c");
        Assert.Equal([GdbResumeAction.Stay, GdbResumeAction.Continue], _target.Resumes.Single());
        await Stop();
    }

    [Fact]
    public async Task Old_c_with_an_address_sets_the_pc_first()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.Breakpoint));
        await Ask("c3000");
        Assert.Equal(0x3000UL, _target.Reg(0, TargetDescription.Pc));
        await Stop();
    }

    [Fact]
    public async Task Ctrl_C_while_running_stops_with_T02_for_the_interrupted_thread()
    {
        await Connect();
        await Ask("vCont;c:p1.-1");
        Assert.False(_session.StopReached.IsCompleted);
        await _session.HandleAsync(new RspInput.Interrupt());
        Assert.Equal(GdbSessionState.Interrupting, _session.State);
        Assert.Equal(StopReply("02", 0), await Stop());
        Assert.Equal(GdbSessionState.Idle, _session.State);
        Assert.Single(_target.Calls, "Interrupt");
    }

    [Fact]
    public async Task Ctrl_C_while_stopped_is_ignored()
    {
        await Connect();
        await _session.HandleAsync(new RspInput.Interrupt());
        Assert.Equal(GdbSessionState.Idle, _session.State);
        Assert.DoesNotContain("Interrupt", _target.Calls);
    }

    [Fact]
    public async Task Packets_while_running_are_a_caller_error()
    {
        await Connect();
        await Ask("vCont;c:p1.-1");
        await Assert.ThrowsAsync<InvalidOperationException>(() => Ask("g"));
    }

    [Fact]
    public async Task A_vcpu_the_guest_stopped_is_a_T05_while_others_remain()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.GuestStopped, ExitCode: 3));
        await Ask("vCont;c:p1.-1");
        Assert.Equal(StopReply("05", 1), await Stop());
    }

    [Fact]
    public async Task The_last_vcpu_stopping_is_an_exit_with_its_code()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.GuestStopped, ExitCode: 42, AllVcpusGone: true));
        await Ask("vCont;c:p1.-1");
        Assert.Equal("W2a;process:1", await Stop());
    }

    [Fact]
    public async Task A_vcpu_error_stops_with_SIGABRT()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Error));
        await Ask("vCont;c:p1.-1");
        Assert.Equal(StopReply("06", 1), await Stop());
    }

    [Fact]
    public async Task A_failed_resume_is_an_error_reply_and_the_session_goes_on()
    {
        await Connect();
        Assert.Equal("mp1.1,p1.2", await Ask("qfThreadInfo"));
        _target.FailEverything = true;
        Assert.Null(await Ask("vCont;c:p1.-1"));
        Assert.Equal("E05", await Stop());
        Assert.Equal(GdbSessionState.Idle, _session.State);
    }

    [Fact]
    public async Task Target_failures_are_E05_replies()
    {
        _target.FailEverything = true;
        Assert.Equal("E05", await Ask("g"));
        Assert.Equal("E05", await Ask("m1000,4"));
        Assert.Equal("E05", await Ask("Z0,1000,4"));
        Assert.Equal(GdbSessionState.Idle, _session.State);
    }

    [Fact]
    public async Task The_stop_reply_saves_a_register_round_trip()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        await Ask("vCont;s:p1.1");
        await Stop();
        int reads = _target.RegisterReads;
        await Ask("g");
        await Ask("p40");
        Assert.Equal(reads, _target.RegisterReads);

        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        _target.Registers[0][TargetDescription.Pc] = GdbRegisterValue.FromUInt64(0x1004, 8);
        await Ask("vCont;s:p1.1");
        var stop = await Stop();
        Assert.Contains("40:0000000000001004;", stop); // the cache does not outlive a resume
    }

    [Fact]
    public async Task Registers_that_come_with_the_stop_serve_the_stop_reply_and_g_without_a_read()
    {
        await Connect();
        var withStop = new Dictionary<int, byte[]>(_target.Registers[1]) { [TargetDescription.Pc] = GdbRegisterValue.FromUInt64(0x2468, 8) };
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.StepDone, Registers: withStop));
        int reads = _target.RegisterReads;

        await Ask("vCont;s:p1.2");
        var stop = await Stop();
        var g = await Ask("g") ?? "";

        Assert.Equal(reads, _target.RegisterReads);
        Assert.Contains("40:0000000000002468;", stop);
        Assert.Equal("0000000000002468", g.Substring(64 * 16, 16)); // pc: regnum 64 after r0–r31 (8 bytes) and f0–f31 (8 bytes)
    }

    [Fact]
    public async Task Question_mark_repeats_the_last_stop()
    {
        await Connect();
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        await Ask("vCont;c:p1.-1");
        var stop = await Stop();
        Assert.Equal(stop, await Ask("?"));
    }

    [Fact]
    public async Task Detach_replies_OK_and_ends_the_session()
    {
        await Connect();
        Assert.Equal("OK", await Ask("D;1"));
        Assert.Contains("Detach", _target.Calls);
        Assert.Equal(GdbSessionState.Disconnected, _session.State);
        Assert.Null(await Ask("g"));
    }

    [Fact]
    public async Task Kill_gets_no_reply_and_vKill_gets_OK()
    {
        Assert.Null(await Ask("k"));
        Assert.Contains("Kill", _target.Calls);
        Assert.Equal(GdbSessionState.Disconnected, _session.State);

        var other = new GdbSession(_target, littleEndianTarget: false);
        Assert.Equal("OK", (await other.HandlePacketAsync(RspEncoding.Latin1("vKill;1"))).Text);
    }

    [Fact]
    public async Task A_lost_connection_removes_breakpoints_and_detaches()
    {
        await Connect();
        await Ask("Z0,1000,4");
        await Ask("vCont;c:p1.-1");
        await _session.ConnectionLostAsync();
        Assert.Equal(["Interrupt", "RemoveSwBreakpoint 1000", "Detach"], _target.Calls.SkipWhile(c => !c.StartsWith("Interrupt")));
        Assert.Empty(_target.SwBreakpoints);
        Assert.Equal(GdbSessionState.Disconnected, _session.State);
    }

    [Fact]
    public async Task Monitor_commands_reach_the_target_hex_encoded()
    {
        Assert.Equal("", await Ask("qRcmd," + RspEncoding.ToHex("frobnicate"))); // no target monitor: not supported
        _target.MonitorCapability = new FakeMonitor();
        Assert.Equal(RspEncoding.ToHex("ran: frobnicate\n"), await Ask("qRcmd," + RspEncoding.ToHex("frobnicate")));
        Assert.Equal("OK", await Ask("qRcmd," + RspEncoding.ToHex("quiet")));
        // help: the session's own command, then the target's
        var help = RspEncoding.Latin1(Convert.FromHexString((await Ask("qRcmd," + RspEncoding.ToHex("help")))!));
        Assert.StartsWith("interrupts [held|allowed]", help);
        Assert.EndsWith("ran: help\n", help);
    }

    private sealed class FakeHwBreakpoints : IGdbHwBreakpoints
    {
        public Task InsertHwBreakpointAsync(ulong address, CancellationToken ct) => Task.CompletedTask;
        public Task RemoveHwBreakpointAsync(ulong address, CancellationToken ct) => Task.CompletedTask;
    }

    private sealed class FakeMonitor : IGdbMonitor
    {
        public Task<string> RunAsync(string command, CancellationToken ct) => Task.FromResult(command == "quiet" ? "" : $"ran: {command}\n");
    }
}
