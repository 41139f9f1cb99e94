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
public sealed class VmCoordinator : ReceiveActor
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
        Receive<InsertBreakpoint>(m => OnBreakpoint(m.Address, m.TranslateForVcpu, insert: true));
        Receive<RemoveBreakpoint>(m => OnBreakpoint(m.Address, m.TranslateForVcpu, insert: false));
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
                    var stop = Stop(c.Stop!, c.CodeBytes);
                    foreach (var r in _askers) r.Tell(stop);
                    _askers.Clear();
                    Publish(new StopObserved(stop));
                    break;
            }
        }
    }

    /// <summary>The reply for a stop: nothing runs now, so every vcpu's last state (from its slice's end) is exact.</summary>
    private Stopped Stop(StopEvent e, int codeBytes = 0) => new(e, Positions(), _last[e.Vcpu], codeBytes == 0 ? null : Code(e.Vcpu, codeBytes));

    /// <summary>The aligned block holding NIP and the one before it (just NIP's when that one has no translation), or null.</summary>
    private CodeBlock? Code(int vcpu, int size)
    {
        ulong block = _last[vcpu].Nip & ~((ulong)size - 1);
        foreach (ulong start in block >= (ulong)size ? new[] { block - (ulong)size, block } : [block])
        {
            int length = (int)(block + (ulong)size - start);
            if (!TryReal(start, length, vcpu, out ulong ra, out _)) continue;
            var data = new byte[length];
            _table.Read(ra, data);
            return new CodeBlock(start, data);
        }
        return null;
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

    /// <summary>EA → RA for a debugger access, with the vcpu's last known MSR; or the address itself when it is real.</summary>
    private bool TryReal(ulong address, int length, int? vcpu, out ulong ra, out string error)
    {
        ra = address;
        error = "";
        if (length < 0 || length > 1 << 20) { error = $"length {length} is not in 0..1048576"; return false; }
        if (vcpu is int v)
        {
            if ((uint)v >= (uint)_vcpus.Length) { error = $"no vcpu {v}"; return false; }
            var cpu = _vm.GetVcpu(v);
            ulong msr = _last[v].Msr;
            if (!cpu.TryTranslate(address, msr, AccessKind.Load, out ra)
                || (length > 0 && (!cpu.TryTranslate(address + (ulong)length - 1, msr, AccessKind.Load, out ulong last) || last - ra != (ulong)length - 1)))
            {
                error = $"effective address 0x{address:x} (+{length}) has no translation for vcpu {v} (MSR 0x{msr:x})";
                return false;
            }
        }
        if (ra >= _vm.MemorySize || (ulong)length > _vm.MemorySize - ra)
        {
            error = $"address 0x{address:x} (+{length}) is outside guest memory (0x{_vm.MemorySize:x} bytes)";
            return false;
        }
        return true;
    }

    private void OnReadMemory(ReadMemory m)
    {
        if (!TryReal(m.Address, m.Length, m.TranslateForVcpu, out ulong ra, out string error))
        {
            Sender.Tell(new Failed(m.TranslateForVcpu is int v && v >= _vcpus.Length ? FailureCode.NotFound : FailureCode.InvalidArgument, error));
            return;
        }
        var data = new byte[m.Length];
        _table.Read(ra, data);
        Sender.Tell(new MemoryRead(m.Address, data));
    }

    private void OnWriteMemory(WriteMemory m)
    {
        if (!TryReal(m.Address, m.Data.Length, m.TranslateForVcpu, out ulong ra, out string error))
        {
            Sender.Tell(new Failed(m.TranslateForVcpu is int v && v >= _vcpus.Length ? FailureCode.NotFound : FailureCode.InvalidArgument, error));
            return;
        }
        _table.Write(ra, m.Data);
        Sender.Tell(new MemoryWritten(m.Address, m.Data.Length));
    }

    private void OnBreakpoint(ulong address, int vcpu, bool insert)
    {
        if (!CheckVcpu(vcpu)) return;
        if ((address & 3) != 0)
        {
            Sender.Tell(new Failed(FailureCode.InvalidArgument, $"breakpoint address 0x{address:x} is not word-aligned"));
            return;
        }
        if (!_vm.GetVcpu(vcpu).TryTranslate(address, _last[vcpu].Msr, AccessKind.Fetch, out ulong ra) || _vm.MemorySize - ra < 4)
        {
            Sender.Tell(new Failed(FailureCode.InvalidArgument,
                $"breakpoint address 0x{address:x} has no translation into guest memory for vcpu {vcpu} (MSR 0x{_last[vcpu].Msr:x})"));
            return;
        }
        bool changed = insert ? _table.Insert(ra, BreakpointOwner.User.Instance, address) : _table.Remove(ra, BreakpointOwner.User.Instance);
        Sender.Tell(new BreakpointChanged(address, ra, changed));
    }
}
