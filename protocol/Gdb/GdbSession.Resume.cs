using System.Text;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets" (vCont?, vCont, c, C, s, S), "Stop Reply Packets" and "Interrupts".
public sealed partial class GdbSession
{
    // Signals as gdb numbers them on the wire ("Stop Reply Packets" uses gdb's own signal numbers).
    private const int SigInt = 2, SigTrap = 5, SigAbrt = 6;

    /// <summary>Sent with every stop reply: pc, msr, r1 (what gdb reads first at a stop).</summary>
    private static readonly int[] ExpeditedRegisters = [TargetDescription.Pc, TargetDescription.Msr, TargetDescription.R1];

    /// <summary>The vCont? reply. <c>c</c> and <c>C</c> must be listed or gdb falls back to s/c; with <c>r</c> gdb
    /// steps a source line (<c>step</c>, <c>next</c>) in one resume instead of one <c>s</c> per instruction.</summary>
    public const string VContActions = "vCont;c;C;s;S;t;r";

    private async Task<GdbReply> VPacketAsync(RspReader r, CancellationToken ct)
    {
        if (r.TrySkip("Cont?")) return new GdbReply(VContActions);
        if (r.TrySkip("Cont;")) return await VContAsync(r, ct);
        if (r.TrySkip("Kill")) return await KillAsync(reply: true, ct);
        if (r.TrySkip("Stopped") && r.AtEnd) return StoppedAck();
        if (r.TrySkip("CtrlC") && r.AtEnd) return await CtrlCAsync(ct);
        return GdbReply.Empty; // vMustReplyEmpty, vFile, vRun, …: "an empty response" is the required answer
    }

    /// <summary>vCont;action[:thread-id]…: "For each thread, the leftmost action with a matching thread-id is applied;
    /// threads that match no action stay stopped." Signals in C/S are dropped (a VM has none to deliver).</summary>
    private async Task<GdbReply> VContAsync(RspReader r, CancellationToken ct)
    {
        var parsed = new List<(GdbResumeAction Action, GdbStepRange? Range, GdbThreadId? Thread)>();
        while (true)
        {
            var kind = r.Peek ?? throw new RspFormatException("empty vCont action");
            r.Expect((char)kind);
            GdbResumeAction action = kind switch
            {
                (byte)'c' or (byte)'C' => GdbResumeAction.Continue,
                (byte)'s' or (byte)'S' or (byte)'r' => GdbResumeAction.Step,
                (byte)'t' => GdbResumeAction.Stay,
                _ => throw new RspFormatException($"vCont action '{(char)kind}' not offered"),
            };
            if (kind is (byte)'C' or (byte)'S') r.Hex(); // the signal
            GdbStepRange? range = null;
            if (kind == (byte)'r')
            {
                // "r start,end": step once, then keep stepping while pc is in [start, end) ("Packets", vCont).
                ulong start = r.Hex();
                r.Expect(',');
                range = new GdbStepRange(start, r.Hex());
                if (range.Value.End < range.Value.Start) throw new RspFormatException($"range {start:x},{range.Value.End:x} ends before it starts");
            }
            GdbThreadId? thread = r.TrySkip(":") ? GdbThreadId.Parse(r) : null;
            parsed.Add((action, range, thread));
            if (r.AtEnd) break;
            r.Expect(';');
        }

        var threads = await ThreadsAsync(ct);
        var actions = new GdbResumeAction?[threads.Count]; // null: no action names the vcpu
        Dictionary<int, GdbStepRange>? ranges = null;
        for (int vcpu = 0; vcpu < threads.Count; vcpu++)
        {
            foreach (var (action, range, thread) in parsed)
            {
                if (thread is { } t && !t.Matches(vcpu)) continue;
                actions[vcpu] = action;
                if (range is { } rg) (ranges ??= [])[vcpu] = rg;
                break; // the leftmost matching action wins
            }
        }
        if (_nonStop) return await NonStopResumeAsync(actions, ranges, ct);
        return Resume([.. actions.Select(a => a ?? GdbResumeAction.Stay)], ct, ranges);
    }

    /// <summary>The old c/s packets ("Packets"), with gdbserver's reading of Hc: a specific Hc thread moves alone;
    /// with Hc -1, <c>s</c> steps the current thread while the others continue and <c>c</c> continues all.</summary>
    private async Task<GdbReply> OldResumeAsync(char kind, RspReader r, CancellationToken ct)
    {
        if (kind is 'C' or 'S')
        {
            r.Hex(); // the signal, dropped
            if (!r.AtEnd) r.Expect(';');
        }
        ulong? address = r.AtEnd ? null : r.Hex();
        r.ExpectEnd();

        var threads = await ThreadsAsync(ct);
        int target = _continueVcpu ?? _generalVcpu;
        if (target >= threads.Count) return new GdbReply(RspErrors.Invalid);
        if (address is { } a)
            await _target.WriteRegisterAsync(target, TargetDescription.Pc, GdbRegisterValue.FromUInt64(a, 8), ct);

        bool step = kind is 's' or 'S';
        var actions = new GdbResumeAction[threads.Count];
        for (int vcpu = 0; vcpu < threads.Count; vcpu++)
        {
            if (vcpu == target) actions[vcpu] = step ? GdbResumeAction.Step : GdbResumeAction.Continue;
            else if (_continueVcpu is null) actions[vcpu] = GdbResumeAction.Continue;
        }
        if (_nonStop) return await NonStopResumeAsync([.. actions.Select(a => a == GdbResumeAction.Stay ? (GdbResumeAction?)null : a)], null, ct);
        return Resume(actions, ct);
    }

    /// <summary>Starts the resume; its stop reply comes from <see cref="WaitForStopAsync"/>.</summary>
    private GdbReply Resume(GdbResumeAction[] actions, CancellationToken ct, IReadOnlyDictionary<int, GdbStepRange>? ranges = null)
    {
        if (!actions.Any(a => a != GdbResumeAction.Stay)) return new GdbReply(RspErrors.Invalid); // nothing would move: all-stop cannot wait for that
        _registers.Clear();
        State = GdbSessionState.Running;
        try { _resume = _target.ResumeAsync(new GdbResume(actions, ranges, HoldInterrupts: (_stepFlags & StepNoIrq) != 0), ct); }
        catch (Exception e) { _resume = Task.FromException<GdbStopEvent>(e); } // reported by WaitForStopAsync as E05
        return GdbReply.None;
    }

    /// <summary>Ctrl-C ("Interrupts"): forwarded once while running; the resume then ends and its stop is reported
    /// with <c>T02</c>. Ignored while stopped (gdb only sends it while it waits for a stop).</summary>
    public async Task InterruptAsync(CancellationToken ct = default)
    {
        if (_nonStop)
        {
            await CtrlCAsync(ct); // in non-stop gdb sends vCtrlC; the byte means the same
            return;
        }
        if (State != GdbSessionState.Running || _resume is null || _resume.IsCompleted) return;
        State = GdbSessionState.Interrupting;
        await _target.InterruptAsync(ct);
    }

    /// <summary>Waits for the resume in flight and returns its stop reply; the session is <see cref="GdbSessionState.Idle"/> again.
    /// A resume that failed is answered <c>E05</c>, which gdb takes as a stop ("Remote failure reply").</summary>
    public async Task<GdbReply> WaitForStopAsync(CancellationToken ct = default)
    {
        if (_resume is null || State is not (GdbSessionState.Running or GdbSessionState.Interrupting))
            throw new InvalidOperationException("no resume in flight");
        GdbStopEvent stop;
        try
        {
            stop = await _resume.WaitAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            _resume = null;
            State = GdbSessionState.Idle;
            return new GdbReply(RspErrors.TargetFailure);
        }
        _resume = null;
        State = GdbSessionState.Idle;
        _lastStop = stop;
        if (stop.Registers is { } regs) _registers[stop.Vcpu] = Wire(regs); // the cache until the next resume or write
        if (stop.Reason == GdbStopReason.GuestStopped) _threads = null; // a vcpu is gone: re-read the list
        var reply = new GdbReply(await StopReplyAsync(stop, ct));
        // A step that could not run says why on gdb's console (the stop itself is a plain SIGTRAP with the pc unchanged).
        if (stop.Reason == GdbStopReason.Idle && !string.IsNullOrEmpty(stop.Detail))
            reply = reply with { ConsoleOutput = $"thread {stop.Vcpu + 1}: {stop.Detail}\n" };
        return reply;
    }

    /// <summary><c>?</c>: the last stop again, or a plain SIGTRAP stop of the current thread right after connecting.</summary>
    private async Task<GdbReply> StopStatusAsync(CancellationToken ct)
    {
        if (_lastStop is { } last) return new GdbReply(await StopReplyAsync(last, ct));
        var threads = await ThreadsAsync(ct);
        var first = threads.FirstOrDefault(t => t.Alive);
        if (first is null) return new GdbReply(Exited(0));
        if (!await ExistsAsync(_generalVcpu, ct)) _generalVcpu = first.Vcpu;
        return new GdbReply(await StopReplyAsync(new GdbStopEvent(_generalVcpu, GdbStopReason.StepDone), ct));
    }

    /// <summary>"Stop Reply Packets": <c>TAAthread:id;[swbreak:;|watch:addr;]40:pc;41:msr;01:r1;</c>, or <c>W</c> when the guest
    /// stopped its last vcpu. Expediting pc, msr and r1 saves gdb a <c>g</c> round trip after each step.</summary>
    /// <param name="signal">the signal to report instead of the reason's (non-stop: 0 for a vCont;t stop)</param>
    /// <param name="selectThread">the stopped vcpu becomes the current one (all-stop; in non-stop gdb selects threads itself)</param>
    private async Task<string> StopReplyAsync(GdbStopEvent stop, CancellationToken ct, int? signal = null, bool selectThread = true)
    {
        if (stop.Reason == GdbStopReason.GuestStopped && stop.AllVcpusGone) return Exited(stop.ExitCode);
        signal ??= stop.Reason switch
        {
            GdbStopReason.Halted => SigInt,
            GdbStopReason.Error => SigAbrt,
            _ => SigTrap,
        };
        if (selectThread) _generalVcpu = stop.Vcpu;
        var sb = new StringBuilder($"T{signal.Value:x2}thread:{Tid(stop.Vcpu)};");
        if (stop.Reason == GdbStopReason.Breakpoint && _swbreak) sb.Append("swbreak:;");
        if (stop.Reason == GdbStopReason.Watchpoint && stop.Watch is { } w)
            sb.Append($"{w.Kind switch { GdbWatchKind.Read => "rwatch", GdbWatchKind.Access => "awatch", _ => "watch" }}:{w.DataAddress:x};");
        try
        {
            var regs = await RegistersAsync(stop.Vcpu, ct);
            foreach (var regnum in ExpeditedRegisters)
                if (regs.Values.ContainsKey(regnum))
                    sb.Append($"{regnum:x2}:").Append(RspEncoding.Latin1(regs.Wire(regnum))).Append(';');
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Without expedited registers gdb simply asks with g: the stop itself must still be reported.
        }
        return sb.ToString();
    }

    private string Exited(long code) =>
        _multiprocess ? $"W{(byte)code:x2};process:{GdbThreadId.ProcessId:x}" : $"W{(byte)code:x2}";
}
