using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>Non-stop mode in the session (gdb manual, "Remote Non-Stop", "Notification Packets") against an in-memory target.</summary>
public class GdbNonStopSessionTests
{
    private const string Msr = "8000000000001000";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly FakeGdbTarget _target = new(vcpus: 3);
    private readonly FakeNonStop _nonStop = new();
    private readonly GdbSession _session;

    public GdbNonStopSessionTests()
    {
        _target.NonStopCapability = _nonStop;
        _session = new GdbSession(_target, littleEndianTarget: false);
    }

    private async Task<string?> Ask(string packet) => (await _session.HandlePacketAsync(RspEncoding.Latin1(packet))).Text;

    /// <summary>Waits for the next stop the target reports and returns the notification the session sends for it (null: none now).</summary>
    private async Task<string?> Notification()
    {
        await _session.NonStopEventReady.WaitAsync(Timeout);
        var payload = await _session.TakeNotificationAsync();
        return payload is null ? null : RspEncoding.Latin1(payload);
    }

    private static string StopReply(string signal, int vcpu, string extra = "") =>
        $"T{signal}thread:p1.{vcpu + 1:x};{extra}40:{FakeGdbTarget.Pc(vcpu):x16};41:{Msr};01:{0x7ff0 + vcpu * 0x1000:x16};";

    private async Task ConnectNonStop()
    {
        await Ask(GdbSessionTests.Gdb13Supported);
        Assert.Equal("OK", await Ask("QNonStop:1"));
    }

    [Fact]
    public async Task QNonStop_is_announced_and_accepted_when_the_target_can_run_vcpus_alone()
    {
        Assert.EndsWith(";QNonStop+", await Ask(GdbSessionTests.Gdb13Supported));
        Assert.Equal("OK", await Ask("QNonStop:1"));
        Assert.True(_session.NonStopMode);
        Assert.Equal(["Enter"], _nonStop.Calls);
    }

    [Fact]
    public async Task An_all_stop_only_target_refuses_QNonStop_1_with_the_empty_reply()
    {
        var allStop = new GdbSession(new FakeGdbTarget(vcpus: 2), littleEndianTarget: false);
        Assert.DoesNotContain("QNonStop", (await allStop.HandlePacketAsync(RspEncoding.Latin1(GdbSessionTests.Gdb13Supported))).Text);
        Assert.Equal("", (await allStop.HandlePacketAsync(RspEncoding.Latin1("QNonStop:1"))).Text);
        Assert.False(allStop.NonStopMode);
    }

    [Fact]
    public async Task VCont_replies_OK_at_once_and_starts_only_the_named_thread()
    {
        await ConnectNonStop();
        Assert.Equal("OK", await Ask("vCont;c:p1.1"));
        Assert.Equal(GdbSessionState.Idle, _session.State);
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Stay, GdbResumeAction.Stay], _nonStop.Resumes.Single().Actions);
        // Packets are served while thread 1 runs: thread 2's registers.
        Assert.Equal("OK", await Ask("Hgp1.2"));
        Assert.Equal($"{FakeGdbTarget.Pc(1):x16}", await Ask("p40"));
    }

    [Fact]
    public async Task A_continue_of_all_threads_leaves_a_running_thread_alone_and_starts_the_stopped_ones()
    {
        await ConnectNonStop();
        await Ask("vCont;c:p1.1");
        Assert.Equal("OK", await Ask("vCont;s:p1.2;c"));
        Assert.Equal([GdbResumeAction.Stay, GdbResumeAction.Step, GdbResumeAction.Continue], _nonStop.Resumes[1].Actions);
    }

    [Fact]
    public async Task A_stop_is_sent_as_a_Stop_notification_and_vStopped_ends_the_sequence()
    {
        await ConnectNonStop();
        await Ask("vCont;c:p1.2");
        _nonStop.Report(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        Assert.Equal("Stop:" + StopReply("05", 1, "swbreak:;"), await Notification());
        Assert.Equal("OK", await Ask("vStopped"));
    }

    [Fact]
    public async Task Stops_during_a_sequence_wait_for_vStopped_one_at_a_time()
    {
        await ConnectNonStop();
        await Ask("vCont;c");
        _nonStop.Report(new GdbStopEvent(0, GdbStopReason.Breakpoint));
        _nonStop.Report(new GdbStopEvent(2, GdbStopReason.StepDone));
        Assert.Equal("Stop:" + StopReply("05", 0, "swbreak:;"), await Notification());
        Assert.Null(await Notification()); // only one notification outstanding
        Assert.Equal(StopReply("05", 2), await Ask("vStopped"));
        Assert.Equal("OK", await Ask("vStopped"));
        _nonStop.Report(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        Assert.Equal("Stop:" + StopReply("05", 1, "swbreak:;"), await Notification()); // the sequence ended: a new one starts
    }

    [Fact]
    public async Task Question_mark_lists_every_stopped_thread_then_OK()
    {
        await ConnectNonStop();
        await Ask("vCont;c:p1.2");
        _nonStop.Report(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        await Notification();
        await Ask("vCont;c:p1.1");
        // Thread 1 runs; thread 2 stopped at its breakpoint (reported again); thread 3 never ran (signal 0).
        Assert.Equal(StopReply("05", 1, "swbreak:;"), await Ask("?"));
        Assert.Equal(StopReply("00", 2), await Ask("vStopped"));
        Assert.Equal("OK", await Ask("vStopped"));
    }

    [Fact]
    public async Task While_gdb_connects_question_mark_reports_the_current_thread_and_the_others_follow_as_notifications()
    {
        await ConnectNonStop();
        Assert.Equal("OK", await Ask("Hgp1.2"));
        Assert.Equal(StopReply("00", 1), await Ask("?"));
        Assert.Equal("OK", await Ask("vStopped"));
        Assert.Equal("Stop:" + StopReply("00", 0), await Notification());
        Assert.Equal(StopReply("00", 2), await Ask("vStopped"));
        Assert.Equal("OK", await Ask("vStopped"));
    }

    [Fact]
    public async Task Question_mark_is_OK_when_every_thread_runs()
    {
        await ConnectNonStop();
        await Ask("vCont;c");
        Assert.Equal("OK", await Ask("?"));
    }

    [Fact]
    public async Task VCont_t_stops_a_running_thread_and_reports_signal_0()
    {
        await ConnectNonStop();
        await Ask("vCont;c");
        Assert.Equal("OK", await Ask("vCont;t:p1.2"));
        Assert.Equal("Stop 1", _nonStop.Calls.Last());
        Assert.Equal("Stop:" + StopReply("00", 1), await Notification());
    }

    [Fact]
    public async Task VCont_t_of_a_stopped_thread_changes_nothing()
    {
        await ConnectNonStop();
        await Ask("vCont;c:p1.1");
        Assert.Equal("OK", await Ask("vCont;t:p1.2"));
        Assert.DoesNotContain(_nonStop.Calls, c => c.StartsWith("Stop"));
    }

    [Fact]
    public async Task VCtrlC_stops_one_running_thread_with_SIGINT()
    {
        await ConnectNonStop();
        await Ask("vCont;c:p1.2;c:p1.3");
        Assert.Equal("OK", await Ask("vCtrlC"));
        Assert.Equal("Stop:" + StopReply("02", 1), await Notification());
        Assert.Single(_nonStop.Calls, c => c.StartsWith("Stop"));
    }

    [Fact]
    public async Task A_notification_does_not_change_the_thread_gdb_selected()
    {
        await ConnectNonStop();
        Assert.Equal("OK", await Ask("Hgp1.1"));
        await Ask("vCont;c:p1.3");
        _nonStop.Report(new GdbStopEvent(2, GdbStopReason.Breakpoint));
        await Notification();
        Assert.Equal($"{FakeGdbTarget.Pc(0):x16}", await Ask("p40"));
    }

    [Fact]
    public async Task Detach_stops_every_running_thread_before_it_detaches()
    {
        await ConnectNonStop();
        await Ask("vCont;c");
        Assert.Equal("OK", await Ask("D;1"));
        Assert.Equal("Leave", _nonStop.Calls.Last());
        Assert.Equal("Detach", _target.Calls.Last());
        Assert.Equal(GdbSessionState.Disconnected, _session.State);
    }

    [Fact]
    public async Task QNonStop_0_stops_every_thread_and_returns_to_all_stop()
    {
        await ConnectNonStop();
        await Ask("vCont;c");
        Assert.Equal("OK", await Ask("QNonStop:0"));
        Assert.False(_session.NonStopMode);
        Assert.Equal("Leave", _nonStop.Calls.Last());
        _target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        Assert.Null(await Ask("vCont;s:p1.1")); // all-stop again: the stop reply comes when the step ends
        Assert.Equal(StopReply("05", 0), (await _session.WaitForStopAsync()).Text);
    }
}
