using ActorStep.Actors.Engine;
using ActorStep.Actors.Vcpu;
using ActorStep.Hypervisor;
using Akka.Actor;
using Akka.Event;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Actors.Vm;

/// <summary>Settings of a coordinator: slice size and whether vcpus run in a fixed order on one thread at a time.</summary>
public sealed record CoordinatorOptions(long Quantum = 10_000, bool Deterministic = false);

/// <summary>
/// One per VM: the VM-wide breakpoint table, scheduler locking as per-vcpu resume actions, all-stop
/// event ordering (the first reportable event stops everyone; others are kept and reported on later
/// resumes), and invisible re-entry of vcpus parked on another vcpu's step breakpoint (step-engine.md §4–5).
/// </summary>
public sealed class VmCoordinator : ReceiveActor, IWithUnboundedStash
{
    private enum Status { Stopped, Running, Parked, Finished }

    private readonly IVirtualMachine _vm;
    private readonly CoordinatorOptions _options;
    private readonly BreakpointTable _table;
    private readonly IActorRef[] _vcpus;
    private readonly Status[] _status;
    private readonly VcpuState[] _last;
    private readonly Queue<StopEvent> _pending = new();
    private readonly HashSet<IActorRef> _subscribers = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ConsoleOutputHandler _console;
    private ResumeOperation? _resume;
    /// <summary>A stop whose code block the stopped vcpu's actor is reading; everything else waits until it is sent.</summary>
    private (Stopped Stop, IReadOnlyList<IActorRef> To)? _awaitingCode;

    public IStash Stash { get; set; } = null!;

    /// <summary>The resume in progress.</summary>
    private sealed class ResumeOperation(Resume request, IActorRef replyTo)
    {
        public readonly Resume Request = request;
        public readonly List<IActorRef> ReplyTo = [replyTo];
        public StopEvent? Primary;
        public bool Stopping;
        public bool Reentering;
        public readonly HashSet<int> InFlight = new();
        public readonly HashSet<int> Cancelling = new();
        public readonly Queue<int> Reentries = new();
        /// <summary>Deterministic mode: the vcpus left in the current round, in order.</summary>
        public readonly Queue<int> Round = new();
        public bool Prepared;
        public bool CancelsSent;
        public VcpuAction Action(int v) => Request.Actions.TryGetValue(v, out var a) ? a : VcpuAction.Stay;
    }

    public VmCoordinator(IVirtualMachine vm, CoordinatorOptions options)
    {
        _vm = vm;
        _options = options;
        _table = new BreakpointTable(vm);
        _vcpus = new IActorRef[vm.VcpuCount];
        _status = new Status[vm.VcpuCount];
        _last = new VcpuState[vm.VcpuCount];
        for (int i = 0; i < vm.VcpuCount; i++)
        {
            _last[i] = vm.GetVcpu(i).GetRegisters();
            _status[i] = vm.GetVcpu(i).IsStoppedForGood ? Status.Finished : Status.Stopped;
            _vcpus[i] = Context.ActorOf(VcpuActor.Props(vm, i, _table).OnVcpuDispatcher(Context.System), $"vcpu-{i}");
        }
        var self = Self;
        _console = (vcpu, bytes) => self.Tell(new ConsoleBytes(vcpu, bytes.ToArray()));
        vm.ConsoleOutput += _console;

        Receive<Resume>(OnResume);
        Receive<Halt>(_ => OnHalt());
        Receive<SliceEnded>(OnSliceEnded);
        Receive<StepCancelled>(OnStepCancelled);
        Receive<ReadRegisters>(m => { if (CheckVcpu(m.Vcpu)) _vcpus[m.Vcpu].Forward(new GetRegisters()); });
        Receive<WriteRegisters>(OnWriteRegisters);
        Receive<Registers>(m => _last[m.Vcpu] = m.State);
        Receive<ReadMemory>(OnReadMemory);
        Receive<WriteMemory>(OnWriteMemory);
        // A breakpoint is planted by EA, translated by the vcpu's owner with its current state.
        Receive<InsertBreakpoint>(m => { if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        Receive<RemoveBreakpoint>(m => { if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        Receive<Describe>(_ => Sender.Tell(new VmDescription(_vm.VcpuCount, _vm.MemorySize, _vm.Capabilities, _resume is not null,
            Positions(), _vm.ImageIsLittleEndian, _table.Count)));
        Receive<Subscribe>(m => { _subscribers.Add(m.Subscriber); Context.Watch(m.Subscriber); });
        Receive<Unsubscribe>(m => { _subscribers.Remove(m.Subscriber); Context.Unwatch(m.Subscriber); });
        Receive<Terminated>(m => _subscribers.Remove(m.ActorRef));
        Receive<ConsoleBytes>(m => Publish(new ConsoleObserved(m.Vcpu, m.Bytes)));
    }

    public static Props Props(IVirtualMachine vm, CoordinatorOptions? options = null) =>
        Akka.Actor.Props.Create(() => new VmCoordinator(vm, options ?? new CoordinatorOptions()));

    /// <summary>A vcpu actor that throws is restarted (its state is re-read from the backend; its step is abandoned).</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 10, withinTimeRange: TimeSpan.FromMinutes(1), localOnlyDecider: _ => Directive.Restart);

    protected override void PostStop()
    {
        _vm.ConsoleOutput -= _console;
        // Shutting down leaves no breakpoint in the guest: the user's go too (steps' went with the children).
        foreach (var ra in _table.Addresses(BreakpointOwner.User.Instance)) _table.Remove(ra, BreakpointOwner.User.Instance);
        foreach (var r in _resume?.ReplyTo ?? []) r.Tell(new Failed(FailureCode.FailedPrecondition, "the VM was shut down"));
        // A stop that was waiting for its code block goes without it: the vcpus are gone.
        if (_awaitingCode is { } awaiting) foreach (var r in awaiting.To) r.Tell(awaiting.Stop);
        base.PostStop();
    }

    // ---- Run control ----

    private void OnResume(Resume m)
    {
        if (_resume is not null) { Sender.Tell(new Failed(FailureCode.Busy, "the VM is already running; halt it first")); return; }
        foreach (var (v, action) in m.Actions)
        {
            if (!CheckVcpu(v)) return;
            if (action == VcpuAction.Step && _status[v] == Status.Finished)
            {
                Sender.Tell(new Failed(FailureCode.FailedPrecondition, $"vcpu {v} was stopped for good by the guest and cannot be stepped"));
                return;
            }
        }
        if (m.StepCount < 1) { Sender.Tell(new Failed(FailureCode.InvalidArgument, "step count must be at least 1")); return; }
        if (m.CodeBytes != 0 && (m.CodeBytes < CodeBlock.MinBytes || m.CodeBytes > CodeBlock.MaxBytes || (m.CodeBytes & (m.CodeBytes - 1)) != 0))
        {
            Sender.Tell(new Failed(FailureCode.InvalidArgument,
                $"code bytes must be 0 or a power of two in {CodeBlock.MinBytes}..{CodeBlock.MaxBytes}, not {m.CodeBytes}"));
            return;
        }
        foreach (var (v, range) in m.Ranges ?? Enumerable.Empty<KeyValuePair<int, StepRange>>())
        {
            string? wrong = !m.Actions.TryGetValue(v, out var a) || a != VcpuAction.Step ? $"vcpu {v} has a step range but does not step"
                : range.End < range.Start ? $"step range {range} of vcpu {v} ends before it starts"
                : m.StepCount != 1 ? "a range step has no step count: it steps while NIP is in the range"
                : null;
            if (wrong is not null) { Sender.Tell(new Failed(FailureCode.InvalidArgument, wrong)); return; }
        }

        // An event kept from an earlier all-stop is reported now, without running anything (§5).
        if (_pending.FirstOrDefault(ev => m.Actions.TryGetValue(ev.Vcpu, out var a) && a != VcpuAction.Stay) is { } e)
        {
            var rest = _pending.Where(ev => !ReferenceEquals(ev, e)).ToList();
            _pending.Clear();
            foreach (var r in rest) _pending.Enqueue(r);
            Reply(Sender, Stop(e), m.CodeBytes);
            return;
        }

        var runnable = m.Actions.Where(kv => kv.Value != VcpuAction.Stay && _status[kv.Key] != Status.Finished).Select(kv => kv.Key).ToList();
        if (runnable.Count == 0)
        {
            int v = m.Actions.Keys.DefaultIfEmpty(0).First();
            Reply(Sender, Stop(new StopEvent(StopReason.Finished, v, _last[v].Nip, "no resumed vcpu can run: all were stopped for good")), m.CodeBytes);
            return;
        }

        _resume = new ResumeOperation(m, Sender);
        Publish(new Resumed(m.Actions));
        // Parked vcpus that will run re-execute their instruction first, alone and invisibly, so that a new
        // step's breakpoints cannot park them again forever (§4: must not starve).
        foreach (var v in runnable.Where(v => _status[v] == Status.Parked && m.Actions[v] == VcpuAction.Continue).OrderBy(v => v))
            _resume.Reentries.Enqueue(v);
        foreach (var v in runnable.Where(v => _status[v] == Status.Parked && m.Actions[v] == VcpuAction.Step)) _status[v] = Status.Stopped;
        ContinueResume();
    }

    /// <summary>Hands out the next slices, or finishes the resume when it is stopping and nothing is in flight.</summary>
    private void ContinueResume()
    {
        var op = _resume!;
        if (op.Reentries.Count > 0 && !op.Stopping)
        {
            if (op.InFlight.Count > 0) return;
            int v = op.Reentries.Dequeue();
            op.Reentering = true;
            SendSlice(v, SliceMode.Reenter, _options.Quantum);
            return;
        }
        op.Reentering = false;
        if (op.Stopping)
        {
            if (op.InFlight.Count > 0 || op.Cancelling.Count > 0) return;
            // Deterministic: the round in progress completes, as in-flight slices do on real threads; what
            // the other vcpus meet meanwhile is kept for later resumes.
            while (_options.Deterministic && op.Round.Count > 0)
            {
                int next = op.Round.Dequeue();
                if (next < 0 || _status[next] != Status.Stopped) continue;
                SendSlice(next, op.Action(next) == VcpuAction.Step ? SliceMode.Step : SliceMode.Continue, _options.Quantum);
                return;
            }
            // Steps that did not finish are abandoned (once): nothing of them stays in the guest.
            if (!op.CancelsSent)
            {
                op.CancelsSent = true;
                foreach (var v in Enumerable.Range(0, _vcpus.Length).Where(v => op.Action(v) == VcpuAction.Step && _status[v] == Status.Stopped && !StepReported(op, v)))
                {
                    op.Cancelling.Add(v);
                    _vcpus[v].Tell(new CancelStep());
                }
            }
            if (op.Cancelling.Count > 0) return;
            Finish();
            return;
        }

        var runnable = Enumerable.Range(0, _vcpus.Length)
            .Where(v => op.Action(v) != VcpuAction.Stay && _status[v] == Status.Stopped)
            .ToList();
        if (runnable.Count == 0 && op.InFlight.Count == 0)
        {
            // Everything resumed is parked or finished; parked vcpus wait for a step that no longer runs.
            int v = op.Request.Actions.Keys.First();
            Report(new StopEvent(StopReason.Finished, v, _last[v].Nip, "no resumed vcpu can run"));
            ContinueResume();
            return;
        }

        if (!_options.Deterministic)
        {
            foreach (var v in runnable)
                SendSlice(v, op.Action(v) == VcpuAction.Step ? SliceMode.Step : SliceMode.Continue, _options.Quantum);
            return;
        }

        // Deterministic: one vcpu at a time. Steppers plant their breakpoints first (a zero-budget slice),
        // then each round runs the continuing vcpus in index order and the steppers last.
        if (op.InFlight.Count > 0) return;
        if (!op.Prepared)
        {
            op.Prepared = true;
            foreach (var v in runnable.Where(v => op.Action(v) == VcpuAction.Step)) op.Round.Enqueue(-1 - v);
        }
        if (op.Round.Count == 0)
            foreach (var v in runnable.OrderBy(v => op.Action(v) == VcpuAction.Step ? 1 : 0).ThenBy(v => v)) op.Round.Enqueue(v);
        while (op.Round.Count > 0)
        {
            int next = op.Round.Dequeue();
            int v = next < 0 ? -1 - next : next;
            if (_status[v] != Status.Stopped) continue;
            SendSlice(v, op.Action(v) == VcpuAction.Step ? SliceMode.Step : SliceMode.Continue, next < 0 ? 0 : _options.Quantum);
            return;
        }
        ContinueResume();
    }

    private static bool StepReported(ResumeOperation op, int v) =>
        op.Primary is { Reason: StopReason.StepCompleted } p && p.Vcpu == v;

    private void SendSlice(int v, SliceMode mode, long budget)
    {
        var op = _resume!;
        op.InFlight.Add(v);
        _status[v] = Status.Running;
        var range = mode == SliceMode.Step && op.Request.Ranges is { } ranges && ranges.TryGetValue(v, out var r) ? r : null;
        _vcpus[v].Tell(new RunSlice(budget, mode, op.Request.HoldAsyncInterrupts, op.Request.StepCount, range));
    }

    private void OnSliceEnded(SliceEnded m)
    {
        _last[m.Vcpu] = m.State;
        var op = _resume;
        if (op is null) { _status[m.Vcpu] = Status.Stopped; return; }
        op.InFlight.Remove(m.Vcpu);
        _status[m.Vcpu] = Status.Stopped;
        bool reentry = op.Reentering;
        switch (m.Outcome)
        {
            case SliceOutcome.StepDone when reentry:
                break; // invisible: the parked vcpu executed its instruction and is simply stopped
            case SliceOutcome.StepDone when op.Action(m.Vcpu) == VcpuAction.Step:
                Report(new StopEvent(StopReason.StepCompleted, m.Vcpu, m.State.Nip,
                    $"stepped {m.Step!.Steps} instruction(s) from 0x{m.Step.From:x}", 0, m.Step.Completion.ToString(), m.Step.Steps));
                break;
            case SliceOutcome.BreakpointHit:
                Report(new StopEvent(StopReason.Breakpoint, m.Vcpu, m.State.Nip, $"breakpoint at 0x{m.State.Nip:x}"));
                break;
            case SliceOutcome.GuestStopped:
                _status[m.Vcpu] = Status.Finished;
                Report(new StopEvent(StopReason.GuestStopped, m.Vcpu, m.State.Nip, m.Detail ?? "stopped by the guest", m.Status));
                break;
            case SliceOutcome.Checkstop:
                _status[m.Vcpu] = Status.Finished;
                Report(new StopEvent(StopReason.Checkstop, m.Vcpu, m.State.Nip, m.Detail ?? "checkstop"));
                break;
            case SliceOutcome.Faulted:
                Report(new StopEvent(StopReason.Error, m.Vcpu, m.State.Nip, m.Detail ?? "vcpu actor failed"));
                break;
            case SliceOutcome.Parked:
                _status[m.Vcpu] = Status.Parked;
                _log.Debug("vcpu {0} {1}", m.Vcpu, m.Detail);
                break;
        }
        ContinueResume();
    }

    private void OnStepCancelled(StepCancelled m)
    {
        _last[m.Vcpu] = m.State;
        _resume?.Cancelling.Remove(m.Vcpu);
        if (_resume is not null) ContinueResume();
    }

    /// <summary>The first reportable event stops every vcpu; later ones are kept for later resumes, never lost.</summary>
    private void Report(StopEvent e)
    {
        var op = _resume!;
        if (op.Primary is null)
        {
            op.Primary = e;
            op.Stopping = true;
            if (!_options.Deterministic)
                foreach (var v in op.InFlight) _vm.GetVcpu(v).RequestExit();
        }
        else _pending.Enqueue(e);
    }

    private void OnHalt()
    {
        if (_resume is null)
        {
            var v = 0;
            Reply(Sender, Stop(new StopEvent(StopReason.Halted, v, _last[v].Nip, "already stopped")));
            return;
        }
        _resume.ReplyTo.Add(Sender);
        if (_resume.Primary is null)
        {
            int v = _resume.Request.Actions.Keys.First();
            Report(new StopEvent(StopReason.Halted, v, _last[v].Nip, "halted on request"));
        }
        ContinueResume();
    }

    private void Finish()
    {
        var op = _resume!;
        _resume = null;
        Deliver(Stop(op.Primary!), op.Request.CodeBytes, op.ReplyTo);
    }

    private void Reply(IActorRef to, Stopped stop, int codeBytes = 0) => Deliver(stop, codeBytes, [to]);

    /// <summary>The reply for a stop: nothing runs now, so every vcpu's last state (from its slice's end) is exact.</summary>
    private Stopped Stop(StopEvent e) => new(e, Positions(), _last[e.Vcpu], null);

    /// <summary>
    /// Sends a stop to those waiting for it and to the subscribers. With <paramref name="codeBytes"/>, the stopped vcpu's actor
    /// reads the code block first (only the vcpu's owner translates); until it answers, every other message waits, so
    /// nothing runs or changes memory between the stop and its code, and no event overtakes the stop.
    /// </summary>
    private void Deliver(Stopped stop, int codeBytes, IReadOnlyList<IActorRef> to)
    {
        if (codeBytes == 0)
        {
            Send(stop, to);
            return;
        }
        _awaitingCode = (stop, to);
        _vcpus[stop.Event.Vcpu].Tell(new ReadCode(codeBytes));
        BecomeStacked(() =>
        {
            Receive<CodeRead>(m =>
            {
                var (waiting, replyTo) = _awaitingCode!.Value;
                _awaitingCode = null;
                UnbecomeStacked();
                Send(waiting with { Code = m.Code }, replyTo);
                Stash.UnstashAll();
            });
            ReceiveAny(_ => Stash.Stash());
        });
    }

    private void Send(Stopped stop, IReadOnlyList<IActorRef> to)
    {
        foreach (var r in to) r.Tell(stop);
        Publish(new StopObserved(stop));
    }

    private IReadOnlyList<VcpuStop> Positions() => Enumerable.Range(0, _vcpus.Length)
        .Select(v => new VcpuStop(v, _last[v].Nip, _status[v] switch
        {
            Status.Finished => "stopped-for-good",
            Status.Running => "running",
            Status.Parked => "parked",
            _ => "stopped",
        })).ToList();

    private void Publish(VmEvent e)
    {
        foreach (var s in _subscribers) s.Tell(e);
    }

    // ---- Registers, memory, breakpoints ----

    private bool CheckVcpu(int v)
    {
        if ((uint)v < (uint)_vcpus.Length) return true;
        Sender.Tell(new Failed(FailureCode.NotFound, $"no vcpu {v}: this VM has vcpus 0..{_vcpus.Length - 1}"));
        return false;
    }

    private void OnWriteRegisters(WriteRegisters m)
    {
        if (!CheckVcpu(m.Vcpu)) return;
        if (_status[m.Vcpu] == Status.Running)
        {
            Sender.Tell(new Failed(FailureCode.FailedPrecondition, $"vcpu {m.Vcpu} is running; halt it before writing registers"));
            return;
        }
        _last[m.Vcpu] = m.State;
        _vcpus[m.Vcpu].Forward(new SetRegisters(m.State));
    }

    /// <summary>By EA: the vcpu's owner translates, with its current state, and answers; by RA: served here.</summary>
    private void OnReadMemory(ReadMemory m)
    {
        if (m.TranslateForVcpu is int v) ToVcpu(m, m.Length, v);
        else Sender.Tell(GuestMemoryRequests.Read(m, _table, _vm.MemorySize, vcpu: null));
    }

    private void OnWriteMemory(WriteMemory m)
    {
        if (m.TranslateForVcpu is int v) ToVcpu(m, m.Data.Length, v);
        else Sender.Tell(GuestMemoryRequests.Write(m, _table, _vm.MemorySize, vcpu: null));
    }

    private void ToVcpu(object request, int length, int vcpu)
    {
        if (GuestMemoryRequests.CheckForVcpu(length, vcpu, _vcpus.Length) is { } failed) Sender.Tell(failed);
        else _vcpus[vcpu].Forward(request);
    }
}
