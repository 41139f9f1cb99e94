namespace ActorStep.Protocol.Gdb;

/// <summary>
/// The decisions of non-stop mode (<see cref="IGdbNonStop"/>) over a run control whose resumes are all-stop (one resume at a
/// time; its first event stops every vcpu it resumed; events met meanwhile are kept and reported by the next resume of their
/// vcpu, as ActorStep's RunControl.Resume does). Every vcpu has a wish — stay stopped, continue, step — and the owner keeps one
/// resume running with every vcpu that wishes to move. When a vcpu stops, only its wish ends: the next resume takes the
/// others on where they were. When gdb starts or stops a vcpu while a resume runs, the owner halts it (<see cref="Changed"/>)
/// and resumes with the new wishes. No actor, no I/O: the owner (<c>GrpcNonStop</c> in the bridge) runs the loop and locks.
/// </summary>
public sealed class NonStopOverAllStop
{
    private readonly GdbResumeAction[] _wish;
    private readonly Dictionary<int, GdbStepRange> _ranges = [];
    /// <summary>Vcpus gdb asked to stop (vCont;t, vCtrlC) whose stop is owed: reported once no resume runs them.</summary>
    private readonly bool[] _stopOwed;
    private bool _holdInterrupts = true;

    public NonStopOverAllStop(int vcpus)
    {
        _wish = new GdbResumeAction[vcpus];
        _stopOwed = new bool[vcpus];
    }

    /// <summary>The wishes changed since the last <see cref="NextResume"/>: a resume in flight must be halted and resumed anew.</summary>
    public bool Changed { get; private set; }

    public bool Runs(int vcpu) => _wish[vcpu] != GdbResumeAction.Stay;

    /// <summary>gdb resumed some vcpus (<see cref="IGdbNonStop.ResumeAsync"/>): each named one that is stopped moves.</summary>
    public void Start(GdbResume resume)
    {
        for (int v = 0; v < _wish.Length && v < resume.Actions.Count; v++)
        {
            if (resume.Actions[v] == GdbResumeAction.Stay || Runs(v)) continue;
            _wish[v] = resume.Actions[v];
            _ranges.Remove(v);
            if (resume.Actions[v] == GdbResumeAction.Step && resume.Ranges is { } ranges && ranges.TryGetValue(v, out var range)) _ranges[v] = range;
            _stopOwed[v] = false;
            Changed = true;
        }
        _holdInterrupts = resume.HoldInterrupts;
    }

    /// <summary>gdb stops one vcpu: false when it does not run (its stop was reported, or is on its way).</summary>
    public bool Stop(int vcpu)
    {
        if ((uint)vcpu >= (uint)_wish.Length || !Runs(vcpu)) return false;
        End(vcpu);
        _stopOwed[vcpu] = true;
        Changed = true;
        return true;
    }

    /// <summary>Non-stop ends: nothing runs any more and no stop is owed.</summary>
    public void StopAll()
    {
        for (int v = 0; v < _wish.Length; v++)
        {
            if (Runs(v)) Changed = true;
            End(v);
            _stopOwed[v] = false;
        }
    }

    /// <summary>The resume to run now (every vcpu that wishes to move), or null when none does.</summary>
    public GdbResume? NextResume()
    {
        Changed = false;
        if (!Array.Exists(_wish, w => w != GdbResumeAction.Stay)) return null;
        return new GdbResume([.. _wish], _ranges.Count == 0 ? null : new Dictionary<int, GdbStepRange>(_ranges), _holdInterrupts);
    }

    /// <summary>The stops owed to gdb for vcpus it asked to stop, once no resume runs them (before the next resume).</summary>
    public IReadOnlyList<GdbStopEvent> TakeOwedStops()
    {
        List<GdbStopEvent>? owed = null;
        for (int v = 0; v < _stopOwed.Length; v++)
        {
            if (!_stopOwed[v]) continue;
            _stopOwed[v] = false;
            (owed ??= []).Add(new GdbStopEvent(v, GdbStopReason.Halted, Detail: "stopped on request"));
        }
        return owed ?? (IReadOnlyList<GdbStopEvent>)[];
    }

    /// <summary>
    /// The resume ended with <paramref name="stop"/>; <paramref name="haltedByOwner"/>: the owner halted it to change the wishes.
    /// Returns the stops to report to gdb: the event's vcpu (its wish ends; the others move again in the next resume), then the
    /// owed stops. A halt the owner made reports nothing of its own; a halt by someone else (another client of the VM) stops every
    /// vcpu that was moving, as it would in all-stop; a guest that stopped its last vcpu ends every wish.
    /// </summary>
    public IReadOnlyList<GdbStopEvent> Stopped(GdbStopEvent stop, bool haltedByOwner)
    {
        var report = new List<GdbStopEvent>();
        if (stop.Reason == GdbStopReason.Halted)
        {
            if (!haltedByOwner)
                for (int v = 0; v < _wish.Length; v++)
                {
                    if (!Runs(v)) continue;
                    End(v);
                    report.Add(v == stop.Vcpu ? stop : new GdbStopEvent(v, GdbStopReason.Halted, Detail: stop.Detail));
                }
        }
        else
        {
            if ((uint)stop.Vcpu < (uint)_wish.Length)
            {
                End(stop.Vcpu);
                _stopOwed[stop.Vcpu] = false; // its own stop answers gdb's request to stop it
            }
            report.Add(stop);
            if (stop.Reason == GdbStopReason.GuestStopped && stop.AllVcpusGone) StopAll();
        }
        report.AddRange(TakeOwedStops());
        return report;
    }

    /// <summary>The resume failed (the server refused it, the connection broke): every vcpu that was moving stops with an error.</summary>
    public IReadOnlyList<GdbStopEvent> Failed(string detail)
    {
        var report = new List<GdbStopEvent>();
        for (int v = 0; v < _wish.Length; v++)
        {
            if (!Runs(v)) continue;
            End(v);
            _stopOwed[v] = false;
            report.Add(new GdbStopEvent(v, GdbStopReason.Error, Detail: detail));
        }
        report.AddRange(TakeOwedStops());
        return report;
    }

    private void End(int v)
    {
        _wish[v] = GdbResumeAction.Stay;
        _ranges.Remove(v);
    }
}
