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
public sealed class VmCoordinator : ReceiveActor, IWithUnboundedStash
{
    private readonly IVirtualMachine _vm;
    private readonly BreakpointTable _table;
    private readonly IActorRef[] _vcpus;
    /// <summary>Each vcpu's registers as its last slice, cancelled step or register write left them.</summary>
    private readonly VcpuState[] _last;
    /// <summary>The run-control decisions (statuses, the resume in progress, kept events); this actor carries them out.</summary>
    private readonly AllStopScheduler _run;
    /// <summary>Who waits for the resume in progress to stop: its sender and any halter.</summary>
    private readonly List<IActorRef> _askers = new();
    private readonly HashSet<IActorRef> _subscribers = new();
    private readonly ConsoleOutputHandler _console;
    /// <summary>A stop whose code block the stopped vcpu's actor is reading; everything else waits until it is sent.</summary>
    private (Stopped Stop, IReadOnlyList<IActorRef> To)? _awaitingCode;

    public IStash Stash { get; set; } = null!;

    public VmCoordinator(IVirtualMachine vm, CoordinatorOptions options)
    {
        _vm = vm;
        _table = new BreakpointTable(vm);
        _vcpus = new IActorRef[vm.VcpuCount];
        _last = new VcpuState[vm.VcpuCount];
        var stoppedForGood = new bool[vm.VcpuCount];
        for (int i = 0; i < vm.VcpuCount; i++)
        {
            _last[i] = vm.GetVcpu(i).GetRegisters();
            stoppedForGood[i] = vm.GetVcpu(i).IsStoppedForGood;
            _vcpus[i] = Context.ActorOf(VcpuActor.Props(vm, i, _table).OnVcpuDispatcher(Context.System), $"vcpu-{i}");
        }
        _run = new AllStopScheduler(_last, options, stoppedForGood);
        var self = Self;
        _console = (vcpu, bytes) => self.Tell(new ConsoleBytes(vcpu, bytes.ToArray()));
        vm.ConsoleOutput += _console;

        Receive<Resume>(m => Execute(_run.Resume(m), Sender));
        Receive<Halt>(_ => Execute(_run.Halt(), Sender));
        Receive<SliceEnded>(m =>
        {
            _last[m.Vcpu] = m.State;
            Execute(_run.SliceEnded(m));
        });
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
        Receive<InsertBreakpoint>(m => { if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        Receive<RemoveBreakpoint>(m => { if (CheckVcpu(m.TranslateForVcpu)) _vcpus[m.TranslateForVcpu].Forward(m); });
        Receive<Describe>(_ => Sender.Tell(new VmDescription(_vm.VcpuCount, _vm.MemorySize, _vm.Capabilities, _run.Running,
            Positions(), _vm.ImageIsLittleEndian, _table.Count, _run.Parks, _run.Reentries)));
        Receive<Subscribe>(m => { _subscribers.Add(m.Subscriber); Context.Watch(m.Subscriber); });
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
        foreach (var r in _askers) r.Tell(new Failed(FailureCode.FailedPrecondition, "the VM was shut down"));
        // A stop that was waiting for its code block goes without it: the vcpus are gone.
        if (_awaitingCode is { } awaiting) foreach (var r in awaiting.To) r.Tell(awaiting.Stop);
        base.PostStop();
    }

    // ---- Run control: the scheduler decides, the actor carries out ----

    /// <summary>Carries out the scheduler's commands in order. <paramref name="asker"/> (a resume's or halt's sender) waits for the
    /// stop, unless its request is refused.</summary>
    private void Execute(ReadOnlySpan<RunCommand> commands, IActorRef? asker = null)
    {
        if (asker is not null)
        {
            if (commands is [{ Kind: RunCommandKind.Refuse } refused]) { asker.Tell(refused.Failure); return; }
            _askers.Add(asker);
        }
        foreach (ref readonly var c in commands)
        {
            switch (c.Kind)
            {
                case RunCommandKind.RunSlice: _vcpus[c.Vcpu].Tell(c.Slice!); break;
                case RunCommandKind.CancelStep: _vcpus[c.Vcpu].Tell(new CancelStep()); break;
                case RunCommandKind.RequestExit: _vm.GetVcpu(c.Vcpu).RequestExit(); break;
                case RunCommandKind.Publish: Publish(c.Published!); break;
                case RunCommandKind.Stop:
                    var to = _askers.ToArray();
                    _askers.Clear();
                    Deliver(Stop(c.Stop!), c.CodeBytes, to);
                    break;
            }
        }
    }

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
            });
        return positions;
    }

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
