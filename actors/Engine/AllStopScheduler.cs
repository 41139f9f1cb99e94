using System.Runtime.InteropServices;
using ActorStep.Actors.Vcpu;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Actors.Engine;

/// <summary>Where a vcpu is between and during resumes.</summary>
public enum VcpuRunStatus
{
    /// <summary>Not running; its registers are as its last slice left them.</summary>
    Stopped,
    /// <summary>A slice is in flight.</summary>
    Running,
    /// <summary>Trapped on another vcpu's step breakpoint: unreported, re-entered alone (§4) — later in the same resume when it
    /// continues in it, else before it next continues.</summary>
    Parked,
    /// <summary>Stopped for good by the guest (or a checkstop): it never runs again.</summary>
    Finished,
}

/// <summary>What the coordinator must do for the scheduler (<see cref="RunCommand"/>).</summary>
public enum RunCommandKind
{
    /// <summary>Tell the vcpu's actor <see cref="RunCommand.Slice"/>.</summary>
    RunSlice,
    /// <summary>The continuing vcpu is idle (ceded, its decrementer due in <see cref="RunCommand.WakesIn"/> timebase ticks): it
    /// gets no slice until <see cref="AllStopScheduler.Woken"/>; the coordinator calls that when the host's clock says the time
    /// has passed, or when the backend says something else may wake it (an H_PROD, an IPI). Its next slice lets that time pass.</summary>
    WaitForWake,
    /// <summary>Tell the vcpu's actor to abandon its step (<see cref="VcpuProtocol.CancelStep"/>); it answers <see cref="VcpuProtocol.StepCancelled"/>.</summary>
    CancelStep,
    /// <summary>Make the vcpu leave its run loop now (<see cref="IVcpu.RequestExit"/>), so that its slice ends early.</summary>
    RequestExit,
    /// <summary>Send <see cref="RunCommand.Published"/> to the subscribers.</summary>
    Publish,
    /// <summary>The resume or halt is answered: reply <see cref="RunCommand.Stop"/> (with <see cref="RunCommand.CodeBytes"/>) to everyone
    /// waiting for it, and publish it.</summary>
    Stop,
    /// <summary>The request is refused: reply <see cref="RunCommand.Failure"/> to its sender alone. Always the only command.</summary>
    Refuse,
}

/// <summary>One thing the coordinator must do, in the order given; only the fields of its <see cref="Kind"/> are set.</summary>
public readonly record struct RunCommand(RunCommandKind Kind, int Vcpu = 0, RunSlice? Slice = null, VmEvent? Published = null,
    StopEvent? Stop = null, int CodeBytes = 0, Failed? Failure = null, ulong WakesIn = 0);

/// <summary>
/// The VM's run control under all-stop (step-engine.md §4–5), with no actor in it: each vcpu's status, the resume in progress,
/// the events kept from earlier all-stops, and the counts of parks and re-entries. It takes requests (<see cref="Resume"/>,
/// <see cref="Halt"/>) and outcomes (<see cref="SliceEnded"/>, <see cref="StepCancelled"/>) and returns what the coordinator
/// must do: which slice each vcpu runs next, which step to cancel, which vcpu to make exit, what to publish, and the stop to
/// reply. Scheduler-locking arrives as the resume's per-vcpu actions; the first reportable event stops every vcpu and later
/// ones are kept for later resumes; a parked vcpu that will continue re-executes its instruction alone first, so that a new
/// step's breakpoints cannot park it again forever (§4: must not starve).
/// <para>A vcpu that parks during a resume in which it continues (scheduler-locking off: the others run while one is stepped) is
/// re-entered in that resume, not only at the next one (§5: a lock holder parked after its stwcx. must release the lock while
/// the stepped vcpu spins on it). The rule, which bounds the re-entries per step: a re-entry runs alone, since it lifts the
/// step breakpoint at the parked NIP, and only once no other vcpu runs — on independent vcpus when every slice in flight has
/// ended (they end by their budget, so the stepped vcpu makes a whole slice between two re-entries of the same vcpu: at most
/// one re-entry per parked vcpu per slice of the stepper); in deterministic mode right after the slice in which it parked (at
/// most once per vcpu per round, the stepper's slice ends each round); on an all-stop backend (<c>allStopBackend</c>) its
/// park stopped the VM, so the next VM resume is its re-entry alone, while the slices begun meanwhile wait, and the one after
/// runs them all. The re-entered vcpu then continues with the others. No re-entry starts once the resume is stopping; a vcpu
/// that parks again during its own re-entry, or whose re-entry does not end in its slice (a halt), has its re-entry step
/// cancelled and stays parked for the rest of the resume.</para>
/// A vcpu ceded (H_CEDE) with nothing of its own to wake
/// it gets no slice until another vcpu has run (never a spin); a step of one that no other vcpu runs to wake ends with Idle.
/// On a backend that paces idle time (<c>pacedIdle</c>), a continuing vcpu that is idle waiting for its decrementer gets no
/// slice until <see cref="Woken"/> (<see cref="RunCommandKind.WaitForWake"/>): an idle guest costs no slices, and a halt
/// finds nothing in flight to wait for.
/// The commands returned are valid until the next call. Not thread-safe: the coordinator calls it from its one thread.
/// </summary>
public sealed class AllStopScheduler
{
    private readonly IReadOnlyList<VcpuState> _last;
    private readonly long _quantum;
    private readonly bool _deterministic;
    /// <summary>The backend runs the VM only as a whole: a slice begun runs only when the coordinator resumes the VM, so a re-entry
    /// may be handed out while other slices are in flight (the coordinator then resumes the VM with the re-entering vcpu alone).</summary>
    private readonly bool _allStopBackend;
    private readonly VcpuRunStatus[] _status;
    /// <summary>Events met after the first of an all-stop, in the order met; each is reported by a later resume of its vcpu.</summary>
    private readonly List<StopEvent> _pending = new();
    private readonly List<RunCommand> _commands = new();

    // The resume in progress; reused from one resume to the next (the coordinator is on every step's path).
    private Resume? _request;
    private readonly VcpuAction[] _actions;
    /// <summary>The vcpu the request names first: the one a Halted or Finished event is about.</summary>
    private int _firstNamed;
    private StopEvent? _primary;
    private bool _stopping, _prepared, _cancelsSent;
    /// <summary>The vcpu whose re-entry slice is in flight, or -1.</summary>
    private int _reentry = -1;
    private readonly bool[] _inFlight, _cancelling;
    /// <summary>Vcpus ceded with nothing of their own to wake them (<see cref="SliceOutcome.Ceded"/>), each with the slice that said
    /// so: no slice for them until another vcpu has run (it may have H_PROD-ded them), so that they never spin.</summary>
    private readonly SliceEnded?[] _ceded;
    /// <summary>Continuing vcpus waiting for their decrementer on the host's clock (<see cref="RunCommandKind.WaitForWake"/>).</summary>
    private readonly bool[] _waiting;
    /// <summary>A wake-up (<see cref="Woken"/>) came while the vcpu's slice was in flight: if that slice ends idle, the vcpu must
    /// not wait (the wake-up may have come after the backend looked).</summary>
    private readonly bool[] _wokenInFlight;
    private readonly bool _pacedIdle;
    /// <summary>The vcpu's last slice ended idle (<see cref="SliceOutcome.Idle"/> or <see cref="SliceOutcome.Ceded"/>).</summary>
    private readonly bool[] _idled;
    private int _inFlightCount, _cancellingCount;
    private readonly Queue<int> _reentryQueue = new();
    /// <summary>Deterministic mode: the vcpus left in the current round, in order; -1 - v is v's zero-budget planting slice.</summary>
    private readonly Queue<int> _round = new();

    /// <param name="last">the coordinator's last known registers of each vcpu (it updates them before passing an outcome on):
    /// the NIP of a Halted or Finished event, which no slice reports</param>
    /// <param name="options">the slice budget, and whether one vcpu runs at a time in a fixed order</param>
    /// <param name="stoppedForGood">the vcpus the guest had already stopped for good (none when null)</param>
    /// <param name="allStopBackend">the backend runs the VM only as a whole (<see cref="VcpuRunModel.AllStop"/>): slices handed out
    /// run only when the coordinator resumes the VM, which it does with a re-entering vcpu alone</param>
    /// <param name="pacedIdle">the backend paces idle time (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>): continue
    /// slices ask for it (<see cref="RunSlice.PaceIdle"/>), except in the deterministic mode, whose time follows instructions</param>
    public AllStopScheduler(IReadOnlyList<VcpuState> last, CoordinatorOptions options, IReadOnlyList<bool>? stoppedForGood = null,
        bool allStopBackend = false, bool pacedIdle = false)
    {
        _last = last;
        _quantum = options.Quantum;
        _deterministic = options.Deterministic;
        _allStopBackend = allStopBackend;
        int n = last.Count;
        _status = new VcpuRunStatus[n];
        _actions = new VcpuAction[n];
        _inFlight = new bool[n];
        _cancelling = new bool[n];
        _ceded = new SliceEnded?[n];
        _waiting = new bool[n];
        _wokenInFlight = new bool[n];
        _idled = new bool[n];
        _pacedIdle = pacedIdle && !options.Deterministic && !allStopBackend;
        for (int v = 0; v < n; v++) _status[v] = stoppedForGood?[v] == true ? VcpuRunStatus.Finished : VcpuRunStatus.Stopped;
    }

    public int VcpuCount => _status.Length;

    /// <summary>A resume is in progress (its stop not yet replied).</summary>
    public bool Running => _request is not null;

    /// <summary>A resume is in progress and steps a vcpu.</summary>
    public bool Stepping => _request is not null && Array.IndexOf(_actions, VcpuAction.Step) >= 0;

    /// <summary>The resume in progress has met the event it will report: the slices in flight are to end, none starts.</summary>
    public bool Stopping => _request is not null && _stopping;

    /// <summary>Times a vcpu trapped on another vcpu's step breakpoint and was parked, unreported (§4).</summary>
    public long Parks { get; private set; }

    /// <summary>Times a parked vcpu was re-entered: it re-executed its instruction alone, invisibly, before continuing (at the
    /// start of a resume, or during one).</summary>
    public long Reentries { get; private set; }

    /// <summary>The vcpu whose re-entry slice is in flight (it must run alone), or null.</summary>
    public int? Reentering => _reentry >= 0 ? _reentry : null;

    /// <summary>Events kept from earlier all-stops, not reported yet.</summary>
    public int PendingEvents => _pending.Count;

    public VcpuRunStatus Status(int vcpu) => _status[vcpu];

    /// <summary>
    /// The kept Breakpoint events (§5) of the vcpus <paramref name="request"/> resumes, which a resume would report without
    /// running anything. Each must still stand when it is reported: the user may have removed the breakpoint since, or moved
    /// the vcpu. Only the vcpu's owner can tell (it alone translates its NIP), so the coordinator asks it and
    /// <see cref="Withdraw"/>s the events that no longer stand before it hands the resume over. Empty while a resume runs.
    /// </summary>
    public IReadOnlyList<StopEvent> KeptBreakpoints(Resume request)
    {
        if (_request is not null || _pending.Count == 0) return [];
        List<StopEvent>? kept = null;
        foreach (var e in _pending)
            if (e.Reason == StopReason.Breakpoint && request.Actions.TryGetValue(e.Vcpu, out var action) && action != VcpuAction.Stay)
                (kept ??= []).Add(e);
        return kept ?? (IReadOnlyList<StopEvent>)[];
    }

    /// <summary>Drops a kept event that no longer stands (a Breakpoint event whose user breakpoint is gone from the vcpu's NIP):
    /// it is never reported, and its vcpu runs when next resumed, from its NIP, executing the instruction there. False when it
    /// was not kept (reported or dropped already).</summary>
    public bool Withdraw(StopEvent kept)
    {
        if (_request is not null) return false;
        for (int i = 0; i < _pending.Count; i++)
        {
            if (!ReferenceEquals(_pending[i], kept)) continue;
            _pending.RemoveAt(i);
            return true;
        }
        return false;
    }

    /// <summary>
    /// A client's resume: refused (busy, unknown vcpu, bad argument), answered at once (an event kept from an earlier all-stop
    /// whose vcpu it resumes — nothing runs; or nothing it resumes can run), or started: <see cref="Resumed"/> is published
    /// and the first slices handed out.
    /// </summary>
    public ReadOnlySpan<RunCommand> Resume(Resume request)
    {
        _commands.Clear();
        if (_request is not null) return Refuse(FailureCode.Busy, "the VM is already running; halt it first");
        // The actions go to _actions as they are checked (not in use: no resume is in progress).
        Array.Fill(_actions, VcpuAction.Stay);
        int firstNamed = -1;
        foreach (var (v, action) in request.Actions)
        {
            if ((uint)v >= (uint)_status.Length) return Refuse(FailureCode.NotFound, $"no vcpu {v}: this VM has vcpus 0..{_status.Length - 1}");
            if (action == VcpuAction.Step && _status[v] == VcpuRunStatus.Finished)
                return Refuse(FailureCode.FailedPrecondition, $"vcpu {v} was stopped for good by the guest and cannot be stepped");
            _actions[v] = action;
            if (firstNamed < 0) firstNamed = v;
        }
        if (request.StepCount < 1) return Refuse(FailureCode.InvalidArgument, "step count must be at least 1");
        int code = request.CodeBytes;
        if (code != 0 && (code < CodeBlock.MinBytes || code > CodeBlock.MaxBytes || (code & (code - 1)) != 0))
            return Refuse(FailureCode.InvalidArgument, $"code bytes must be 0 or a power of two in {CodeBlock.MinBytes}..{CodeBlock.MaxBytes}, not {code}");
        if (request.Ranges is { } ranges)
            foreach (var (v, range) in ranges)
            {
                string? wrong = (uint)v >= (uint)_actions.Length || _actions[v] != VcpuAction.Step ? $"vcpu {v} has a step range but does not step"
                    : range.End < range.Start ? $"step range {range} of vcpu {v} ends before it starts"
                    : request.StepCount != 1 ? "a range step has no step count: it steps while NIP is in the range"
                    : null;
                if (wrong is not null) return Refuse(FailureCode.InvalidArgument, wrong);
            }

        // An event kept from an earlier all-stop is reported now, without running anything (§5).
        for (int i = 0; i < _pending.Count; i++)
        {
            var kept = _pending[i];
            if (_actions[kept.Vcpu] == VcpuAction.Stay) continue;
            _pending.RemoveAt(i);
            return Emit(new RunCommand(RunCommandKind.Stop, kept.Vcpu, Stop: kept, CodeBytes: code));
        }

        bool any = false;
        for (int v = 0; v < _actions.Length && !any; v++) any = _actions[v] != VcpuAction.Stay && _status[v] != VcpuRunStatus.Finished;
        if (!any)
        {
            int v = Math.Max(firstNamed, 0);
            return Emit(new RunCommand(RunCommandKind.Stop, v,
                Stop: new StopEvent(StopReason.Finished, v, _last[v].Nip, "no resumed vcpu can run: all were stopped for good"), CodeBytes: code));
        }

        _request = request;
        _firstNamed = firstNamed;
        _primary = null;
        _stopping = _prepared = _cancelsSent = false;
        _reentry = -1;
        Array.Clear(_inFlight);
        Array.Clear(_cancelling);
        Array.Clear(_ceded);
        Array.Clear(_waiting);
        Array.Clear(_wokenInFlight);
        _inFlightCount = _cancellingCount = 0;
        _reentryQueue.Clear();
        _round.Clear();
        _commands.Add(new RunCommand(RunCommandKind.Publish, Published: new Resumed(request.Actions)));
        for (int v = 0; v < _status.Length; v++)
        {
            if (_status[v] != VcpuRunStatus.Parked) continue;
            // A parked vcpu that continues re-executes its instruction first, alone; one that steps just steps it.
            if (_actions[v] == VcpuAction.Continue) _reentryQueue.Enqueue(v);
            else if (_actions[v] == VcpuAction.Step) _status[v] = VcpuRunStatus.Stopped;
        }
        ContinueResume();
        return Commands();
    }

    /// <summary>A client's halt: Halted at once when nothing runs; otherwise the resume in progress stops (unless it already is) and
    /// its stop answers the halt too.</summary>
    public ReadOnlySpan<RunCommand> Halt(string detail = "halted on request")
    {
        _commands.Clear();
        if (_request is null)
            return Emit(new RunCommand(RunCommandKind.Stop, 0, Stop: new StopEvent(StopReason.Halted, 0, _last[0].Nip, "already stopped")));
        if (_primary is null) Report(new StopEvent(StopReason.Halted, _firstNamed, _last[_firstNamed].Nip, detail));
        ContinueResume();
        return Commands();
    }

    /// <summary>A vcpu's slice is over: its outcome is reported, kept, parks the vcpu, or is nothing; then the next slices.</summary>
    public ReadOnlySpan<RunCommand> SliceEnded(SliceEnded m)
    {
        _commands.Clear();
        int v = m.Vcpu;
        _status[v] = VcpuRunStatus.Stopped;
        if (_request is null) return Commands();
        if (_inFlight[v]) { _inFlight[v] = false; _inFlightCount--; }
        bool reentry = v == _reentry;
        if (reentry) _reentry = -1;
        _idled[v] = m.Outcome is SliceOutcome.Idle or SliceOutcome.Ceded;
        // Any other outcome means the vcpu may have run, and an H_PROD it made wakes a ceded vcpu: those get a slice again.
        if (m.Outcome != SliceOutcome.Ceded) Array.Clear(_ceded);
        switch (m.Outcome)
        {
            case SliceOutcome.StepDone when reentry:
                break; // invisible: the parked vcpu executed its instruction and is simply stopped (it runs on if it continues)
            case SliceOutcome.Ran or SliceOutcome.Idle or SliceOutcome.Ceded or SliceOutcome.Parked when reentry:
                // The re-entry did not end (a halt cut its slice short, it parked again, it ceded): its step is abandoned, nothing of
                // it stays in the guest, and the vcpu stays parked for the rest of the resume (re-entered again at the next one).
                _status[v] = VcpuRunStatus.Parked;
                _cancelling[v] = true;
                _cancellingCount++;
                _commands.Add(new RunCommand(RunCommandKind.CancelStep, v));
                if (m.Outcome == SliceOutcome.Parked)
                {
                    Parks++;
                    _commands.Add(new RunCommand(RunCommandKind.Publish, v,
                        Published: new VcpuParked(v, m.State.Nip, m.Address, m.Detail ?? $"parked at 0x{m.Address:x}")));
                }
                break;
            case SliceOutcome.StepDone when _actions[v] == VcpuAction.Step:
                Report(new StopEvent(StopReason.StepCompleted, v, m.State.Nip,
                    $"stepped {m.Step!.Steps} instruction(s) from 0x{m.Step.From:x}", 0, m.Step.Completion.ToString(), m.Step.Steps));
                break;
            case SliceOutcome.BreakpointHit:
                Report(new StopEvent(StopReason.Breakpoint, v, m.State.Nip, $"breakpoint at 0x{m.State.Nip:x}"));
                break;
            case SliceOutcome.WatchpointHit:
                // Also from a re-entry: the parked vcpu's own instruction made the access, which the user asked to see.
                Report(new StopEvent(StopReason.Watchpoint, v, m.State.Nip, m.Detail ?? $"watchpoint hit at 0x{m.State.Nip:x}", Watch: m.Watch));
                break;
            case SliceOutcome.GuestStopped:
                _status[v] = VcpuRunStatus.Finished;
                Report(new StopEvent(StopReason.GuestStopped, v, m.State.Nip, m.Detail ?? "stopped by the guest", m.Status));
                break;
            case SliceOutcome.Checkstop:
                _status[v] = VcpuRunStatus.Finished;
                Report(new StopEvent(StopReason.Checkstop, v, m.State.Nip, m.Detail ?? "checkstop"));
                break;
            case SliceOutcome.Faulted:
                Report(new StopEvent(StopReason.Error, v, m.State.Nip, m.Detail ?? "vcpu actor failed"));
                break;
            case SliceOutcome.Ceded:
                _ceded[v] = m;
                break;
            case SliceOutcome.Idle when m.WakesIn is { } wakesIn && _pacedIdle && !_stopping && !_wokenInFlight[v]:
                _waiting[v] = true;
                _commands.Add(new RunCommand(RunCommandKind.WaitForWake, v, WakesIn: wakesIn));
                break;
            case SliceOutcome.Parked:
                _status[v] = VcpuRunStatus.Parked;
                Parks++;
                // A vcpu that continues in this resume is re-entered in it (see the class summary for when); a stepping one that
                // parked (on another stepper's breakpoint) waits for the next resume, as does everyone once the resume is stopping.
                if (_actions[v] == VcpuAction.Continue && !_stopping) _reentryQueue.Enqueue(v);
                _commands.Add(new RunCommand(RunCommandKind.Publish, v,
                    Published: new VcpuParked(v, m.State.Nip, m.Address, m.Detail ?? $"parked at 0x{m.Address:x}")));
                break;
        }
        ContinueResume();
        return Commands();
    }

    /// <summary>
    /// Something may wake vcpu <paramref name="vcpu"/>: the host's clock reached its decrementer, or the backend raised a wake-up
    /// (an H_PROD, an interrupt raised for it). A vcpu waiting for it gets its slice now; one whose slice is in flight does not
    /// wait when that slice ends idle; otherwise nothing (a stopped vcpu's next slice sees what woke it).
    /// </summary>
    public ReadOnlySpan<RunCommand> Woken(int vcpu)
    {
        _commands.Clear();
        if (_request is null || (uint)vcpu >= (uint)_status.Length) return Commands();
        if (_inFlight[vcpu]) _wokenInFlight[vcpu] = true;
        else if (_waiting[vcpu])
        {
            _waiting[vcpu] = false;
            ContinueResume();
        }
        return Commands();
    }

    /// <summary>The vcpu waits for its decrementer on the host's clock (<see cref="RunCommandKind.WaitForWake"/>).</summary>
    public bool Waiting(int vcpu) => _waiting[vcpu];

    /// <summary>The vcpu's guest time moves with its instructions now: it runs or is about to in the resume in progress, and its last
    /// slice did not end idle (ceded, held for start-cpu). An idle vcpu's time may not run ahead of such a vcpu's (one clock per
    /// machine, as Linux assumes).</summary>
    public bool KeepsGuestTime(int vcpu) =>
        _request is not null && !_idled[vcpu] && (_status[vcpu] == VcpuRunStatus.Running || Runnable(vcpu));

    /// <summary>A vcpu's step was abandoned (<see cref="RunCommandKind.CancelStep"/>): the resume may now end.</summary>
    public ReadOnlySpan<RunCommand> StepCancelled(int vcpu)
    {
        _commands.Clear();
        if (_cancelling[vcpu]) { _cancelling[vcpu] = false; _cancellingCount--; }
        if (_request is not null) ContinueResume();
        return Commands();
    }

    /// <summary>Hands out the next slices, or finishes the resume when it is stopping and nothing is in flight.</summary>
    private void ContinueResume()
    {
        // A re-entry runs alone: nothing else starts while it is in flight.
        if (_reentry >= 0 && !_stopping) return;
        while (_reentryQueue.Count > 0 && !_stopping)
        {
            // Once no other vcpu runs: every slice in flight has ended; on an all-stop backend, slices begun wait for the VM to be
            // resumed, and the coordinator resumes it with the re-entering vcpu alone.
            if (_inFlightCount > 0 && !_allStopBackend) return;
            int parked = _reentryQueue.Dequeue();
            if (_status[parked] != VcpuRunStatus.Parked) continue;
            _reentry = parked;
            Reentries++;
            Send(parked, SliceMode.Reenter, _quantum);
            return;
        }
        if (_stopping)
        {
            if (_inFlightCount > 0 || _cancellingCount > 0) return;
            // Deterministic: the round in progress completes, as in-flight slices do on real threads; what
            // the other vcpus meet meanwhile is kept for later resumes.
            while (_deterministic && _round.Count > 0)
            {
                int next = _round.Dequeue();
                if (next < 0 || _status[next] != VcpuRunStatus.Stopped) continue;
                Send(next, ModeOf(next), _quantum);
                return;
            }
            // Steps that did not finish are abandoned (once): nothing of them stays in the guest.
            if (!_cancelsSent)
            {
                _cancelsSent = true;
                for (int v = 0; v < _status.Length; v++)
                {
                    if (_actions[v] != VcpuAction.Step || _status[v] != VcpuRunStatus.Stopped || StepReported(v)) continue;
                    _cancelling[v] = true;
                    _cancellingCount++;
                    _commands.Add(new RunCommand(RunCommandKind.CancelStep, v));
                }
            }
            if (_cancellingCount == 0) Finish();
            return;
        }

        if (_inFlightCount == 0 && !AnyRunnable())
        {
            // A stepping vcpu ceded with nothing to wake it, and no other vcpu runs to H_PROD it: the step can never end by
            // itself, so it ends here, saying why (a step is an answer, not a wait; QEMU's stub hangs here).
            for (int v = 0; v < _ceded.Length; v++)
            {
                if (_ceded[v] is not { } idle || _actions[v] != VcpuAction.Step) continue;
                Report(IdleStop(idle));
                ContinueResume();
                return;
            }
            // Continuing vcpus ceded with nothing to wake them, or waiting for their decrementer: a continue waits for the guest,
            // as it would undebugged, with nothing in flight (not a spin) until a wake-up or a halt.
            if (Array.Exists(_ceded, c => c is not null) || Array.IndexOf(_waiting, true) >= 0) return;
            // Everything resumed is parked or finished; parked vcpus wait for a step that no longer runs.
            Report(new StopEvent(StopReason.Finished, _firstNamed, _last[_firstNamed].Nip, "no resumed vcpu can run"));
            ContinueResume();
            return;
        }

        if (!_deterministic)
        {
            for (int v = 0; v < _status.Length; v++)
                if (Runnable(v)) Send(v, ModeOf(v), _quantum);
            return;
        }

        // Deterministic: one vcpu at a time. Steppers plant their breakpoints first (a zero-budget slice),
        // then each round runs the continuing vcpus in index order and the steppers last.
        if (_inFlightCount > 0) return;
        if (!_prepared)
        {
            _prepared = true;
            for (int v = 0; v < _status.Length; v++)
                if (Runnable(v) && _actions[v] == VcpuAction.Step) _round.Enqueue(-1 - v);
        }
        if (_round.Count == 0)
        {
            for (int v = 0; v < _status.Length; v++)
                if (Runnable(v) && _actions[v] != VcpuAction.Step) _round.Enqueue(v);
            for (int v = 0; v < _status.Length; v++)
                if (Runnable(v) && _actions[v] == VcpuAction.Step) _round.Enqueue(v);
        }
        while (_round.Count > 0)
        {
            int next = _round.Dequeue();
            int v = next < 0 ? -1 - next : next;
            if (_status[v] != VcpuRunStatus.Stopped || _ceded[v] is not null) continue;
            Send(v, ModeOf(v), next < 0 ? 0 : _quantum);
            return;
        }
        ContinueResume();
    }

    private bool Runnable(int v) =>
        _actions[v] != VcpuAction.Stay && _status[v] == VcpuRunStatus.Stopped && _ceded[v] is null && !_waiting[v];

    /// <summary>The stop of a step that cannot end: its vcpu is ceded, nothing of its own can wake it, and no other vcpu runs.</summary>
    private static StopEvent IdleStop(SliceEnded idle)
    {
        int steps = idle.Step?.Steps ?? 0;
        string done = steps > 0 ? $"after {steps} instruction(s) from 0x{idle.Step!.From:x}" : "without executing anything";
        return new StopEvent(StopReason.Idle, idle.Vcpu, idle.State.Nip,
            $"{idle.Detail ?? $"vcpu {idle.Vcpu} is idle in H_CEDE"}; no other vcpu runs in this resume to H_PROD it, so the step ends {done}" +
            " (continue, step with interrupts allowed, or step with the other vcpus running to let it wake)",
            Steps: steps);
    }

    private bool AnyRunnable()
    {
        for (int v = 0; v < _status.Length; v++)
            if (Runnable(v)) return true;
        return false;
    }

    private SliceMode ModeOf(int v) => _actions[v] == VcpuAction.Step ? SliceMode.Step : SliceMode.Continue;

    private bool StepReported(int v) => _primary is { Reason: StopReason.StepCompleted } p && p.Vcpu == v;

    private void Send(int v, SliceMode mode, long budget)
    {
        var request = _request!;
        _inFlight[v] = true;
        _inFlightCount++;
        _status[v] = VcpuRunStatus.Running;
        var range = mode == SliceMode.Step && request.Ranges is { } ranges && ranges.TryGetValue(v, out var r) ? r : null;
        // A re-entry executes the parked vcpu's one instruction (its atomic sequence at a larx; not the rest of one from
        // inside, as the park was a host trip that dropped the reservation, unless the machine idealises a host that keeps
        // it), whatever the count the request steps its stepping vcpu by: with that count it would step on alone, and a budget
        // that ran out mid-count would leave the step planted, the host's SE set, for the continue that follows to trap on
        // (parked at its own Trace handler breakpoint, SRR0/SRR1 clobbered, shown there to the debugger).
        int count = mode == SliceMode.Reenter ? 1 : request.StepCount;
        _wokenInFlight[v] = false;
        _commands.Add(new RunCommand(RunCommandKind.RunSlice, v,
            Slice: new RunSlice(budget, mode, request.HoldAsyncInterrupts, count, range) { PaceIdle = _pacedIdle && mode == SliceMode.Continue }));
    }

    /// <summary>The first reportable event stops every vcpu; later ones are kept for later resumes, never lost.</summary>
    private void Report(StopEvent e)
    {
        if (_primary is not null) { _pending.Add(e); return; }
        _primary = e;
        _stopping = true;
        // Deterministic: only one slice runs, on the coordinator's terms; it ends by its budget.
        if (_deterministic) return;
        for (int v = 0; v < _inFlight.Length; v++)
            if (_inFlight[v]) _commands.Add(new RunCommand(RunCommandKind.RequestExit, v));
    }

    private void Finish()
    {
        var request = _request!;
        _request = null;
        _commands.Add(new RunCommand(RunCommandKind.Stop, _primary!.Vcpu, Stop: _primary, CodeBytes: request.CodeBytes));
    }

    private ReadOnlySpan<RunCommand> Refuse(FailureCode code, string message) =>
        Emit(new RunCommand(RunCommandKind.Refuse, Failure: new Failed(code, message)));

    private ReadOnlySpan<RunCommand> Emit(RunCommand command)
    {
        _commands.Add(command);
        return Commands();
    }

    private ReadOnlySpan<RunCommand> Commands() => CollectionsMarshal.AsSpan(_commands);
}
