using ActorStep.Actors.Engine;
using ActorStep.Actors.Vcpu;
using ActorStep.Hypervisor;
using Akka.Actor;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Actors.Vm;

/// <summary>Settings of a coordinator: slice size and whether vcpus run in a fixed order on one thread at a time.</summary>
public sealed record CoordinatorOptions(long Quantum = 10_000, bool Deterministic = false);

/// <summary>
/// One per VM: the VM-wide breakpoint table, its vcpu actors (supervised), subscribers and console, and the run
/// control of step-engine.md §4–5 — scheduler locking as per-vcpu resume actions, all-stop event ordering, invisible
/// re-entry of parked vcpus — decided by an <see cref="AllStopScheduler"/> whose commands this actor carries out.
/// </summary>
public sealed class VmCoordinator : ReceiveActor, IWithUnboundedStash, IWithTimers
{
    private readonly IVirtualMachine _vm;
    private readonly BreakpointTable _table;
    private readonly IActorRef[] _vcpus;
    /// <summary>Each vcpu's registers as its last slice, cancelled step or register write left them.</summary>
    private readonly VcpuState[] _last;
    private readonly (ulong Nip, bool Translated, string? Name)?[] _names;
    /// <summary>The run-control decisions (statuses, the resume in progress, kept events); this actor carries them out.</summary>
    private readonly AllStopScheduler _run;
    /// <summary>Who waits for the resume in progress to stop: its sender and any halter.</summary>
    private readonly List<IActorRef> _askers = new();
    private readonly HashSet<IActorRef> _subscribers = new();
    private readonly ConsoleOutputHandler _console;
    private readonly GuestLifecycleHandler _lifecycle;
    /// <summary>Console writes not yet taken by this actor, appended by vcpu threads (under its own lock): one message
    /// (<see cref="ConsoleWritten"/>) per batch, not per write, so a guest that prints fast costs this actor one message per batch
    /// (every other request waits in the same mailbox).</summary>
    private readonly ConsoleWrites _consoleWrites = new();
    /// <summary>Console bytes joined into chunks (<see cref="ConsoleCoalescer"/>); flushed by <see cref="ConsoleFlushDelay"/>'s timer.</summary>
    private readonly ConsoleCoalescer _consoleChunks = new();
    /// <summary>How long console bytes may wait to be joined with the next ones: short enough for an interactive console.</summary>
    public static readonly TimeSpan ConsoleFlushDelay = TimeSpan.FromMilliseconds(20);
    /// <summary>A stop whose code block the stopped vcpu's actor is reading; everything else waits until it is sent.</summary>
    private (Stopped Stop, IReadOnlyList<IActorRef> To)? _awaitingCode;
    /// <summary>A resume whose stop carries a code block and that moves one vcpu only: that vcpu's step slices read the block as
    /// they end (<see cref="RunSlice.CodeBytes"/>), saving the stop a <see cref="ReadCode"/> round trip. <c>Spoiled</c>: another
    /// vcpu was given a slice meanwhile (it may have changed memory), so the stop reads the block as before.</summary>
    private (int Vcpu, int Bytes, bool Spoiled)? _prefetch;
    /// <summary>Counts the requests that may change what a code block reads (memory writes, breakpoints): a block read by a vcpu
    /// at the end of its slice is used only if none was handled since that slice was sent.</summary>
    private int _memoryEpoch;
    private int _prefetchEpoch;
    /// <summary>The block the slice being ended brought, while <see cref="EndSlice"/> runs (its stop may be delivered then).</summary>
    private CodeRead? _prefetched;
    /// <summary>Who waits for a resume whose kept breakpoint events the vcpus' actors are checking (<see cref="OnResume"/>).</summary>
    private IActorRef? _awaitingCheck;

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    // An all-stop VM (QEMU's gdbstub) runs only as a whole: each vcpu's slice is begun by its actor (SliceReady), then the
    // runner resumes the VM with every ready vcpu, and the exit goes back to the vcpu it is about (VcpuExited).
    private readonly IActorRef? _runner;
    private readonly IAllStopVm? _allStop;
    private readonly bool[] _ready;
    /// <summary>Vcpu actors asked to begin a slice, handle an exit or end a slice, whose answer has not come yet.</summary>
    private int _awaiting;
    /// <summary>Each vcpu's continue slice that can still be taken back before it begins (<see cref="SliceTicket"/>).</summary>
    private readonly SliceTicket?[] _tickets;
    private readonly bool _deterministic;
    private bool _halting;
    /// <summary>The machine's one clock for vcpus waiting for their decrementer on the host's clock: how much idle time each
    /// vcpu's next slice lets pass (<see cref="IdleClock"/>).</summary>
    private readonly IdleClock _idle;
    private readonly VcpuWakeHandler? _wake;
    private bool _vmRunning, _vmStopRequested;

    public VmCoordinator(IVirtualMachine vm, CoordinatorOptions options)
    {
        _vm = vm;
        _table = new BreakpointTable(vm);
        _vcpus = new IActorRef[vm.VcpuCount];
        _last = new VcpuState[vm.VcpuCount];
        _names = new (ulong, bool, string?)?[vm.VcpuCount];
        var stoppedForGood = new bool[vm.VcpuCount];
        for (int i = 0; i < vm.VcpuCount; i++)
        {
            _last[i] = vm.GetVcpu(i).GetRegisters();
            stoppedForGood[i] = vm.GetVcpu(i).IsStoppedForGood;
            _vcpus[i] = Context.ActorOf(VcpuActor.Props(vm, i, _table).OnVcpuDispatcher(Context.System), $"vcpu-{i}");
        }
        // An all-stop backend runs the VM as a whole and cannot run one vcpu for a budget: the interleaving is the backend's
        // (the simulated one's is fixed), so the coordinator's deterministic rounds do not apply.
        if (vm.Capabilities.RunModel == VcpuRunModel.AllStop) options = options with { Deterministic = false };
        ulong pacedFrequency = vm.Capabilities.PacedTimebaseFrequency;
        _run = new AllStopScheduler(_last, options, stoppedForGood, allStopBackend: vm.Capabilities.RunModel == VcpuRunModel.AllStop,
            pacedIdle: pacedFrequency != 0);
        _idle = new IdleClock(pacedFrequency, _last, _run);
        _ready = new bool[vm.VcpuCount];
        _tickets = new SliceTicket?[vm.VcpuCount];
        _deterministic = options.Deterministic;
        if (vm.Capabilities.RunModel == VcpuRunModel.AllStop)
        {
            _allStop = vm as IAllStopVm
                ?? throw new ArgumentException("a backend that runs only in all-stop must implement IAllStopVm", nameof(vm));
            _runner = Context.ActorOf(VmRunner.Props(_allStop).OnRunnerDispatcher(Context.System), "runner");
        }
        var self = Self;
        var writes = _consoleWrites;
        _console = (vcpu, bytes) => { if (writes.Add(vcpu, bytes)) self.Tell(ConsoleWritten.Instance); };
        vm.ConsoleOutput += _console;
        _lifecycle = (kind, detail) => self.Tell(new GuestLifecycleObserved(kind, detail));
        vm.GuestLifecycle += _lifecycle;
        Receive<GuestLifecycleObserved>(m =>
        {
            Publish(m);
            // A reset ends a step: the reset vcpus start again with MSR[SE] clear (the Trace interrupt the step waits for never
            // comes) and the step's plan means nothing in the guest that boots again. The resume stops as a halt that says so;
            // a continue runs on through resets, as the guest does.
            if (m.Kind == "reset" && _run.Stepping)
                HaltNow($"{m.Detail}, during the step: the step is abandoned, nothing of it stays in the guest", null);
        });
        if (pacedFrequency != 0)
        {
            _wake = vcpu => self.Tell(new VcpuWakeObserved(vcpu));
            vm.VcpuWakeRequested += _wake;
        }
        Receive<VcpuWakeObserved>(m => Execute(_run.Woken(m.Vcpu)));
        Receive<IdleTimeUp>(m => Execute(_run.Woken(m.Vcpu)));

        Receive<Resume>(OnResume);
        // A halt takes back the continue slices still waiting for a worker (SliceTicket): the user asked for everything to stop
        // now. Another vcpu's event does not: with scheduler locking off the other vcpus are meant to run meanwhile.
        Receive<Halt>(_ => HaltNow("halted on request", Sender));
        Receive<SliceEnded>(EndSlice);
        Receive<SliceReady>(m =>
        {
            _awaiting--;
            _ready[m.Vcpu] = true;
            RunAllStop();
        });
        Receive<VmRunnerProtocol.VmStopped>(OnVmStopped);
        Receive<VmRunnerProtocol.VmRunFailed>(OnVmRunFailed);
        Receive<StepCancelled>(m =>
        {
            _last[m.Vcpu] = m.State;
            Execute(_run.StepCancelled(m.Vcpu));
        });
        Receive<ReadRegisters>(m => { if (CheckVcpu(m.Vcpu)) _vcpus[m.Vcpu].Forward(new GetRegisters()); });
        Receive<WriteRegisters>(OnWriteRegisters);
        Receive<ReadMemory>(OnReadMemory);
        Receive<WriteMemory>(OnWriteMemory);
        // A breakpoint is planted by EA, translated by the vcpu's owner with its current state.
        Receive<InsertBreakpoint>(m => { _memoryEpoch++; if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        Receive<RemoveBreakpoint>(m => { _memoryEpoch++; if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        // Watchpoints are VM-wide and by effective address (as DAWR matches): no vcpu translates them.
        Receive<InsertWatchpoint>(m => ChangeWatchpoint(m.Watchpoint, insert: true));
        Receive<RemoveWatchpoint>(m => ChangeWatchpoint(m.Watchpoint, insert: false));
        Receive<Describe>(_ => Sender.Tell(new VmDescription(_vm.VcpuCount, _vm.MemorySize, _vm.Capabilities, _run.Running,
            Positions(), _vm.ImageIsLittleEndian, _table.Count, _run.Parks, _run.Reentries)));
        Receive<Subscribe>(m => { _subscribers.Add(m.Subscriber); Context.Watch(m.Subscriber); });
        Receive<Terminated>(m => _subscribers.Remove(m.ActorRef));
        // The first write of a batch: the batch is taken when the timer fires (or before any other event), so the writes made
        // meanwhile join it.
        Receive<ConsoleWritten>(_ =>
        {
            if (!Timers.IsTimerActive(FlushConsole.Instance)) Timers.StartSingleTimer(FlushConsole.Instance, FlushConsole.Instance, ConsoleFlushDelay);
        });
        Receive<FlushConsole>(_ => PublishConsole());
    }

    private void ChangeWatchpoint(Hypervisor.Watchpoint w, bool insert)
    {
        if (!_vm.Capabilities.Watchpoints)
        {
            Sender.Tell(new Failed(FailureCode.FailedPrecondition, "this VM's backend has no watchpoints"));
            return;
        }
        if (w.Invalid() is { } why)
        {
            Sender.Tell(new Failed(FailureCode.InvalidArgument, why));
            return;
        }
        try
        {
            bool changed = true;
            if (insert) _vm.InsertWatchpoint(w);
            else changed = _vm.RemoveWatchpoint(w);
            Sender.Tell(new WatchpointChanged(w, changed));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException or BackendLostException)
        {
            Sender.Tell(new Failed(e is BackendLostException ? FailureCode.FailedPrecondition : FailureCode.InvalidArgument, e.Message));
        }
    }

    public static Props Props(IVirtualMachine vm, CoordinatorOptions? options = null) =>
        Akka.Actor.Props.Create(() => new VmCoordinator(vm, options ?? new CoordinatorOptions()));

    /// <summary>A vcpu actor that throws is restarted (its state is re-read from the backend; its step is abandoned).</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 10, withinTimeRange: TimeSpan.FromMinutes(1), localOnlyDecider: _ => Directive.Restart);

    protected override void PostStop()
    {
        _vm.ConsoleOutput -= _console;
        _vm.GuestLifecycle -= _lifecycle;
        if (_wake is not null) _vm.VcpuWakeRequested -= _wake;
        PublishConsole();
        // Shutting down leaves no breakpoint in the guest: the user's go too (steps' went with the children).
        foreach (var ra in _table.Addresses(BreakpointOwner.User.Instance)) _table.Remove(ra, BreakpointOwner.User.Instance);
        foreach (var r in _askers) r.Tell(new Failed(FailureCode.FailedPrecondition, "the VM was shut down"));
        _awaitingCheck?.Tell(new Failed(FailureCode.FailedPrecondition, "the VM was shut down"));
        // A stop that was waiting for its code block goes without it: the vcpus are gone.
        if (_awaitingCode is { } awaiting) foreach (var r in awaiting.To) r.Tell(awaiting.Stop);
        base.PostStop();
    }

    // ---- Run control: the scheduler decides, the actor carries out ----

    /// <summary>
    /// A client's resume. A Breakpoint event kept from an earlier all-stop is reported by the next resume of its vcpu without
    /// running anything, but only while it still stands: since the all-stop the user may have removed the breakpoint (gdb's
    /// Ctrl-C while vcpus were hitting breakpoints, then <c>delete</c>, then <c>continue</c>) or moved the vcpu. Only a vcpu's
    /// actor translates its NIP, so each is asked first; the events that no longer stand are withdrawn (their vcpus then run
    /// and execute the instruction at NIP), and the resume goes to the scheduler. Everything else waits meanwhile.
    /// </summary>
    private void OnResume(Resume m)
    {
        if (!_run.Running) // (a resume while one runs is refused and must not touch the running one's)
        {
            _prefetch = null;
            if (_allStop is null && m.CodeBytes > 0 && LoneMover(m.Actions) is int mover) _prefetch = (mover, m.CodeBytes, false);
        }
        var kept = _run.KeptBreakpoints(m);
        if (kept.Count == 0)
        {
            Execute(_run.Resume(m), Sender);
            return;
        }
        var asker = Sender;
        _awaitingCheck = asker;
        int awaiting = kept.Count;
        foreach (var e in kept) _vcpus[e.Vcpu].Tell(new CheckKeptBreakpoint(e.Nip));
        BecomeStacked(() =>
        {
            Receive<KeptBreakpointChecked>(r =>
            {
                if (!r.Stands)
                    foreach (var e in kept)
                        if (e.Vcpu == r.Vcpu && e.Nip == r.Nip) _run.Withdraw(e);
                if (--awaiting > 0) return;
                _awaitingCheck = null;
                UnbecomeStacked();
                Execute(_run.Resume(m), asker);
                Stash.UnstashAll();
            });
            ReceiveAny(_ => Stash.Stash());
        });
    }

    /// <summary>The one vcpu a resume moves; null when it moves none or several.</summary>
    private static int? LoneMover(IReadOnlyDictionary<int, VcpuAction> actions)
    {
        int? mover = null;
        foreach (var (v, action) in actions)
        {
            if (action == VcpuAction.Stay) continue;
            if (mover is not null) return null;
            mover = v;
        }
        return mover;
    }

    private void EndSlice(SliceEnded m)
    {
        _last[m.Vcpu] = m.State;
        _tickets[m.Vcpu] = null;
        if (_allStop is not null) _awaiting--;
        _prefetched = m.Code is { } code && _prefetchEpoch == _memoryEpoch ? code : null;
        try { Execute(_run.SliceEnded(m)); }
        finally { _prefetched = null; }
        RunAllStop();
    }

    /// <summary>Stops the resume in progress now, its stop saying <paramref name="detail"/> unless an event is reported already:
    /// a client's halt (<paramref name="asker"/> waits for the stop) or a guest reset during a step. Continue slices still
    /// waiting for a worker are taken back.</summary>
    private void HaltNow(string detail, IActorRef? asker)
    {
        _halting = true;
        try { Execute(_run.Halt(detail), asker); }
        finally { _halting = false; }
    }

    /// <summary>Carries out the scheduler's commands in order. <paramref name="asker"/> (a resume's or halt's sender) waits for the
    /// stop, unless its request is refused.</summary>
    private void Execute(ReadOnlySpan<RunCommand> commands, IActorRef? asker = null)
    {
        List<int>? takenBack = null;
        if (asker is not null)
        {
            if (commands is [{ Kind: RunCommandKind.Refuse } refused]) { asker.Tell(refused.Failure); return; }
            _askers.Add(asker);
        }
        foreach (ref readonly var c in commands)
        {
            switch (c.Kind)
            {
                case RunCommandKind.RunSlice:
                    if (_allStop is not null) _awaiting++;
                    var slice = c.Slice!;
                    if (_allStop is null && !_deterministic && slice.Mode == SliceMode.Continue)
                        slice = slice with { Ticket = _tickets[c.Vcpu] = new SliceTicket() };
                    if (_prefetch is { } p)
                    {
                        if (p.Vcpu != c.Vcpu) _prefetch = p with { Spoiled = true };
                        else if (slice.Mode == SliceMode.Step && !p.Spoiled)
                        {
                            slice = slice with { CodeBytes = p.Bytes };
                            _prefetchEpoch = _memoryEpoch;
                        }
                    }
                    if (_idle.Take(c.Vcpu) is > 0 and var idle) slice = slice with { IdleTicks = idle };
                    _vcpus[c.Vcpu].Tell(slice);
                    break;
                case RunCommandKind.WaitForWake:
                    _idle.WaitBegins(c.Vcpu);
                    Timers.StartSingleTimer(new IdleTimeUp(c.Vcpu), new IdleTimeUp(c.Vcpu),
                        TimeSpan.FromSeconds(c.WakesIn / (double)_idle.Frequency));
                    break;
                case RunCommandKind.CancelStep: _vcpus[c.Vcpu].Tell(new CancelStep()); break;
                case RunCommandKind.RequestExit:
                    if (_allStop is null)
                    {
                        if (_halting && _tickets[c.Vcpu] is { } ticket && ticket.TryTakeBack()) (takenBack ??= []).Add(c.Vcpu);
                        else _vm.GetVcpu(c.Vcpu).RequestExit();
                    }
                    else if (_vmRunning && !_vmStopRequested)
                    {
                        _vmStopRequested = true;
                        _allStop.RequestStop(); // gdb's 0x03: the whole VM stops
                    }
                    break;
                case RunCommandKind.Publish: Publish(c.Published!); break;
                case RunCommandKind.Stop:
                    // Vcpus still waiting for their decrementer: the host's time they waited passes at their next slice; the
                    // time the VM then stays stopped does not (a debugger's pause is not the guest's time).
                    foreach (int v in _idle.SuspendAll()) Timers.Cancel(new IdleTimeUp(v));
                    var to = _askers.ToArray();
                    _askers.Clear();
                    Deliver(Stop(c.Stop!), c.CodeBytes, to);
                    break;
            }
        }
        // Slices taken back before they began end now, as slices that ran nothing (after the loop: the commands are a view
        // of the scheduler's list, which its next call refills).
        if (takenBack is not null)
            foreach (int v in takenBack) EndSlice(new SliceEnded(v, SliceOutcome.Ran, _last[v]));
    }

    // ---- All-stop backends ----

    /// <summary>Resumes the VM once every slice handed out is begun, or ends the begun slices once the resume is stopping. A re-entry
    /// (of a vcpu parked during the resume) runs alone: the VM is resumed with that vcpu only, the other begun slices waiting for
    /// the next VM resume, since the re-entry lifts the step breakpoint at its NIP that another vcpu's step ends on.</summary>
    private void RunAllStop()
    {
        if (_allStop is null || _vmRunning) return;
        if (_run.Stopping)
        {
            for (int v = 0; v < _ready.Length; v++)
            {
                if (!_ready[v]) continue;
                _ready[v] = false;
                _awaiting++;
                _vcpus[v].Tell(new EndSlice());
            }
            return;
        }
        if (_awaiting > 0 || !_run.Running) return;
        var running = new List<int>(_ready.Length);
        if (_run.Reentering is int reentry)
        {
            if (_ready[reentry]) running.Add(reentry);
        }
        else for (int v = 0; v < _ready.Length; v++) if (_ready[v]) running.Add(v);
        if (running.Count == 0) return;
        _vmRunning = true;
        _vmStopRequested = false;
        _runner!.Tell(new VmRunnerProtocol.RunVm(running.ToArray()));
    }

    /// <summary>The VM stopped: the exit goes to the vcpu it is about; a requested stop (BudgetExpired) is nobody's.</summary>
    private void OnVmStopped(VmRunnerProtocol.VmStopped m)
    {
        _vmRunning = false;
        if (m.Exit.Reason != ExitReason.BudgetExpired && (uint)m.Vcpu < (uint)_ready.Length && _ready[m.Vcpu])
        {
            _ready[m.Vcpu] = false;
            _awaiting++;
            _vcpus[m.Vcpu].Tell(new VcpuExited(m.Exit));
        }
        RunAllStop();
    }

    /// <summary>The backend could not run the VM: the first running vcpu's slice ends with the error, which stops the resume.</summary>
    private void OnVmRunFailed(VmRunnerProtocol.VmRunFailed m)
    {
        _vmRunning = false;
        int v = Array.IndexOf(_ready, true);
        if (v >= 0)
        {
            _ready[v] = false;
            Execute(_run.SliceEnded(new SliceEnded(v, SliceOutcome.Faulted, _last[v], Detail: $"the backend could not run the VM: {m.Error}")));
        }
        RunAllStop();
    }

    /// <summary>The reply for a stop: nothing runs now, so every vcpu's last state (from its slice's end) is exact.</summary>
    private Stopped Stop(StopEvent e) => new(e with { Symbol = Name(e.Vcpu) }, Positions(), _last[e.Vcpu], null);

    /// <summary>Where vcpu <paramref name="v"/> is, as <c>function+0xoffset</c> (null without a symbol table or outside every
    /// symbol), from its last state; the last answer is kept per vcpu, since a stopped vcpu is asked again and again.</summary>
    private string? Name(int v)
    {
        if (_vm.Symbols is not { } symbols) return null;
        var s = _last[v];
        bool translated = (s.Msr & Isa.Msr.IR) != 0;
        if (_names[v] is { } named && named.Nip == s.Nip && named.Translated == translated) return named.Name;
        string? name = symbols.Describe(s.Nip, translated);
        _names[v] = (s.Nip, translated, name);
        return name;
    }

    /// <summary>
    /// Sends a stop to those waiting for it and to the subscribers. With <paramref name="codeBytes"/>, the stopped vcpu's actor
    /// reads the code block first (only the vcpu's owner translates); until it answers, every other message waits, so
    /// nothing runs or changes memory between the stop and its code, and no event overtakes the stop.
    /// </summary>
    private void Deliver(Stopped stop, int codeBytes, IReadOnlyList<IActorRef> to)
    {
        var prefetch = _prefetch;
        _prefetch = null;
        if (codeBytes == 0)
        {
            Send(stop, to);
            return;
        }
        // The stopped vcpu read the block as its slice ended, it alone moved, and nothing changed memory since: that is the block.
        if (prefetch is { Spoiled: false } p && p.Vcpu == stop.Event.Vcpu && p.Bytes == codeBytes && _prefetched is { } read && read.Vcpu == p.Vcpu)
        {
            Send(stop with { Code = read.Code }, to);
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

    private VcpuStop[] Positions()
    {
        var positions = new VcpuStop[_vcpus.Length];
        for (int v = 0; v < positions.Length; v++)
            positions[v] = new VcpuStop(v, _last[v].Nip, _run.Status(v) switch
            {
                VcpuRunStatus.Finished => "stopped-for-good",
                VcpuRunStatus.Running => "running",
                VcpuRunStatus.Parked => "parked",
                _ => "stopped",
            }, Name(v));
        return positions;
    }

    /// <summary>Publishes <paramref name="e"/> after the console bytes written before it.</summary>
    private void Publish(VmEvent e)
    {
        PublishConsole();
        PublishNow(e);
    }

    private void PublishConsole()
    {
        foreach (var (vcpu, bytes) in _consoleWrites.Take())
            foreach (var (v, joined) in _consoleChunks.Add(vcpu, bytes)) PublishNow(new ConsoleObserved(v, joined));
        if (_consoleChunks.Flush() is { } chunk) PublishNow(new ConsoleObserved(chunk.Vcpu, chunk.Bytes));
    }

    private void PublishNow(VmEvent e)
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
        if (_run.Status(m.Vcpu) == VcpuRunStatus.Running)
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
        else Sender.Tell(Lost(() => GuestMemoryRequests.Read(m, _table, _vm.MemorySize, vcpu: null)));
    }

    private void OnWriteMemory(WriteMemory m)
    {
        _memoryEpoch++;
        if (m.TranslateForVcpu is int v) ToVcpu(m, m.Data.Length, v);
        else Sender.Tell(Lost(() => GuestMemoryRequests.Write(m, _table, _vm.MemorySize, vcpu: null)));
    }

    /// <summary>A backend that is gone (a QEMU that died) fails the request with a clear message.</summary>
    private static object Lost(Func<object> serve)
    {
        try { return serve(); }
        catch (BackendLostException e) { return new Failed(FailureCode.FailedPrecondition, $"the VM is lost: {e.Message}"); }
    }

    private void ToVcpu(object request, int length, int vcpu)
    {
        if (GuestMemoryRequests.CheckForVcpu(length, vcpu, _vcpus.Length) is { } failed) Sender.Tell(failed);
        else _vcpus[vcpu].Forward(request);
    }
}
