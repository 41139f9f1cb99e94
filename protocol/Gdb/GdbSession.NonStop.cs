using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Remote Non-Stop" and "Notification Packets": QNonStop, vCont replying OK, %Stop notifications acknowledged
// by vStopped, '?' listing every stopped thread, vCont;t and vCtrlC. Only with a target that has IGdbNonStop.
public sealed partial class GdbSession
{
    private const int SigNone = 0;

    private bool _nonStop;
    /// <summary>Vcpus resumed in non-stop whose stop gdb has not been sent yet.</summary>
    private readonly HashSet<int> _running = [];
    /// <summary>Stop replies of the notification sequence in progress; the head is the one gdb was last sent ("Notification
    /// Packets": it leaves the queue at gdb's next vStopped).</summary>
    private readonly Queue<string> _stopReplies = new();
    /// <summary>A sequence is in progress (a %Stop or a '?' reply sent, not yet drained by vStopped down to OK): no new notification.</summary>
    private bool _sequenceOpen;
    /// <summary>Each vcpu's last stop in non-stop (for '?', which reports every stopped thread again).</summary>
    private readonly Dictionary<int, (GdbStopEvent Stop, int? Signal)> _lastStops = [];
    /// <summary>Vcpus gdb asked to stop, with the signal their stop reports: 0 for vCont;t ("Packets", vCont), SIGINT for vCtrlC.</summary>
    private readonly Dictionary<int, int> _stopSignals = [];
    private Task<GdbStopEvent>? _nextStop;
    /// <summary>No vCont yet in this non-stop session: gdb is still connecting (see <see cref="NonStopStatusAsync"/>).</summary>
    private bool _connecting = true;
    /// <summary>Stop replies of stopped threads held back from a connection-time '?', sent as notifications once its sequence ends.</summary>
    private readonly Queue<string> _deferred = new();

    /// <summary>gdb turned non-stop mode on (<c>QNonStop:1</c>): packets are served while vcpus run, stops are notifications.</summary>
    public bool NonStopMode => _nonStop;

    /// <summary>In non-stop mode, completes when a vcpu has stopped: then <see cref="TakeNotificationAsync"/>. Never completes otherwise.</summary>
    public Task NonStopEventReady
    {
        get
        {
            if (!_nonStop || _target.NonStop is not { } nonStop) return Task.Delay(Timeout.Infinite);
            if (_deferred.Count > 0 && !_sequenceOpen) return Task.CompletedTask;
            return _nextStop ??= nonStop.NextStopAsync(CancellationToken.None);
        }
    }

    /// <summary>Takes the stop that <see cref="NonStopEventReady"/> announced into the queue; returns the <c>Stop:…</c> notification
    /// payload to send now (gdb is not in a sequence), or null (it will be the reply to a later vStopped).</summary>
    public async Task<byte[]?> TakeNotificationAsync(CancellationToken ct = default)
    {
        if (_nonStop && _deferred.Count > 0 && !_sequenceOpen)
        {
            while (_deferred.TryDequeue(out var held)) _stopReplies.Enqueue(held);
            _sequenceOpen = true;
            return RspEncoding.Latin1("Stop:" + _stopReplies.Peek());
        }
        if (_nextStop is not { IsCompleted: true } next) return null;
        _nextStop = null;
        GdbStopEvent stop;
        try { stop = await next; }
        catch (Exception e) when (e is not OperationCanceledException) { return null; }
        if (!_nonStop) return null; // left non-stop meanwhile: gdb asks with '?'
        int? signal = stop.Reason == GdbStopReason.Halted && _stopSignals.TryGetValue(stop.Vcpu, out var asked) ? asked : null;
        _stopSignals.Remove(stop.Vcpu);
        _running.Remove(stop.Vcpu);
        _lastStops[stop.Vcpu] = (stop, signal);
        if (stop.Registers is { } regs) _registers[stop.Vcpu] = Wire(regs);
        if (stop.Reason == GdbStopReason.GuestStopped)
        {
            _threads = null;
            if (stop.AllVcpusGone) _running.Clear();
        }
        _stopReplies.Enqueue(await StopReplyAsync(stop, ct, signal, selectThread: false));
        if (_sequenceOpen) return null;
        _sequenceOpen = true;
        return RspEncoding.Latin1("Stop:" + _stopReplies.Peek());
    }

    /// <summary>The state <c>info threads</c> shows: in non-stop a thread gdb resumed is "running" until its stop is reported (the
    /// target's own text may lag behind, or show a moment when the target reshuffles which vcpus run).</summary>
    private string StateText(GdbThreadInfo t) => _nonStop && _running.Contains(t.Vcpu) ? "running" : t.State;

    private async Task<GdbReply> SetNonStopAsync(RspReader r, CancellationToken ct)
    {
        bool on = r.HexInt() != 0;
        r.ExpectEnd();
        if (_target.NonStop is not { } nonStop) return GdbReply.Empty; // all-stop only: "an empty response" means unsupported
        if (on == _nonStop) return GdbReply.Ok;
        if (on)
        {
            await nonStop.EnterAsync(ct);
            _nonStop = true;
        }
        else await LeaveNonStopAsync(ct); // "targets must stop all threads … when entering all-stop mode"
        return GdbReply.Ok;
    }

    private async Task LeaveNonStopAsync(CancellationToken ct)
    {
        if (!_nonStop || _target.NonStop is not { } nonStop) return;
        _nonStop = false;
        await nonStop.LeaveAsync(ct);
        _running.Clear();
        _stopReplies.Clear();
        _stopSignals.Clear();
        _lastStops.Clear();
        _sequenceOpen = false;
        _deferred.Clear();
        _connecting = true;
        _registers.Clear();
    }

    /// <summary>vCont in non-stop: threads no action names go on as they are; an action on a thread that already runs (c, s) or is
    /// stopped (t) changes nothing. Replies OK at once; each stop is a later notification.</summary>
    private async Task<GdbReply> NonStopResumeAsync(GdbResumeAction?[] actions, IReadOnlyDictionary<int, GdbStepRange>? ranges, CancellationToken ct)
    {
        var nonStop = _target.NonStop!;
        _connecting = false;
        var threads = await ThreadsAsync(ct);
        var start = new GdbResumeAction[actions.Length];
        bool any = false;
        for (int v = 0; v < actions.Length; v++)
        {
            if (actions[v] is not { } action || action == GdbResumeAction.Stay || _running.Contains(v) || !threads[v].Alive) continue;
            start[v] = action;
            any = true;
        }
        var stops = new List<int>();
        for (int v = 0; v < actions.Length; v++)
            if (actions[v] == GdbResumeAction.Stay && _running.Contains(v) && !_stopSignals.ContainsKey(v)) stops.Add(v);

        if (any)
        {
            for (int v = 0; v < start.Length; v++)
            {
                if (start[v] == GdbResumeAction.Stay) continue;
                _running.Add(v);
                _registers.Remove(v);
                _lastStops.Remove(v);
            }
            Dictionary<int, GdbStepRange>? started = ranges?.Where(kv => start[kv.Key] == GdbResumeAction.Step).ToDictionary();
            await nonStop.ResumeAsync(new GdbResume(start, started, HoldInterrupts: (_stepFlags & StepNoIrq) != 0), ct);
        }
        foreach (var v in stops) await RequestStopAsync(v, SigNone, ct);
        return GdbReply.Ok;
    }

    private async Task RequestStopAsync(int vcpu, int signal, CancellationToken ct)
    {
        _stopSignals[vcpu] = signal;
        await _target.NonStop!.StopAsync(vcpu, ct);
    }

    /// <summary>vCtrlC ("Packets"): in non-stop, stop one running thread (gdb's current one if it runs) and report it with SIGINT;
    /// in all-stop, the same as the interrupt byte.</summary>
    private async Task<GdbReply> CtrlCAsync(CancellationToken ct)
    {
        if (!_nonStop)
        {
            await InterruptAsync(ct);
            return GdbReply.Ok;
        }
        if (_running.Count == 0) return GdbReply.Ok;
        int vcpu = _running.Contains(_generalVcpu) ? _generalVcpu : _running.Min();
        if (!_stopSignals.ContainsKey(vcpu)) await RequestStopAsync(vcpu, SigInt, ct);
        return GdbReply.Ok;
    }

    /// <summary>vStopped: gdb got the head of the sequence; reply the next stop, or OK when none is left (the sequence ends).</summary>
    private GdbReply StoppedAck()
    {
        if (!_nonStop) return GdbReply.Empty;
        if (_stopReplies.Count > 0) _stopReplies.Dequeue();
        if (_stopReplies.Count > 0) return new GdbReply(_stopReplies.Peek());
        _sequenceOpen = false;
        return GdbReply.Ok;
    }

    /// <summary>
    /// '?' in non-stop ("Remote Non-Stop"): the sequence in progress is abandoned and a new one reports every stopped thread,
    /// reported before or not; the first is the reply, the rest follow vStopped. OK when every thread runs.
    /// <para>While gdb connects (no vCont yet) the sequence holds one thread, gdb's current one, and the other stopped threads follow
    /// as <c>%Stop</c> notifications once it has ended: gdb 13.1 (Debian's gdb-multiarch) fails an assertion in
    /// <c>remote_target::wait</c> when the '?' of its connection reports more than one stop in non-stop mode (its
    /// <c>queued_stop_reply</c> marks the event token before the target is asynchronous). gdb sees every thread stopped either way.</para>
    /// </summary>
    private async Task<GdbReply> NonStopStatusAsync(CancellationToken ct)
    {
        _stopReplies.Clear();
        _deferred.Clear();
        _sequenceOpen = false;
        var threads = await ThreadsAsync(ct, refresh: true);
        var stopped = threads.Where(t => t.Alive && !_running.Contains(t.Vcpu)).OrderBy(t => t.Vcpu == _generalVcpu ? 0 : 1).ToList();
        foreach (var t in stopped)
        {
            // A thread gdb never saw stop reports signal 0, as gdbserver does for threads with no stop of their own.
            var (stop, signal) = _lastStops.TryGetValue(t.Vcpu, out var last) ? last : (new GdbStopEvent(t.Vcpu, GdbStopReason.Halted), SigNone);
            var reply = await StopReplyAsync(stop, ct, signal, selectThread: false);
            if (_connecting && _stopReplies.Count > 0) _deferred.Enqueue(reply);
            else _stopReplies.Enqueue(reply);
        }
        if (_stopReplies.Count == 0) return GdbReply.Ok;
        _sequenceOpen = true;
        return new GdbReply(_stopReplies.Peek());
    }
}
