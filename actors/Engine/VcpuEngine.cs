using ActorStep.Hypervisor;
using ActorStep.Isa;

namespace ActorStep.Actors.Engine;

/// <summary>
/// One backend vcpu's run loop and host-step state machine (step-engine.md §3–4): runs the guest in bounded slices,
/// plans, arms and completes host steps (or uses the hardware step where the backend has it), steps off breakpoints,
/// and never leaves a step breakpoint or the host's SE behind. Keeps a register cache synced at most once per exit.
/// A plain class with no actor plumbing: one owner drives it at a time (the VcpuActor; tests call it directly), as
/// the backend's vcpu wants.
/// </summary>
public sealed class VcpuEngine
{
    private readonly IVirtualMachine _vm;
    private readonly IVcpu _vcpu;
    private readonly BreakpointTable _table;
    private readonly BreakpointOwner.Step _owner;

    private VcpuState? _cache;
    private ActiveStep? _step;
    /// <summary>The slice in progress (<see cref="Begin"/>), and the step request its steps are made with.</summary>
    private SliceRequest _slice, _stepRequest;
    private long _sliceStart, _nonRetiring;
    /// <summary>A continue that steps off a user breakpoint at NIP first, then runs freely.</summary>
    private bool _overThenFree;
    /// <summary>How the guest stopped this vcpu for good, once it has.</summary>
    private VcpuExit? _finalExit;
    /// <summary>Registers read for the engine's own use (planning, arming): never handed out, so reused.</summary>
    private readonly VcpuState _scratch = new();
    private readonly TraceStep.Translate _translateFetch;
    private readonly Func<ulong, bool, uint> _fetchOriginal;

    /// <summary>A host step in progress: its plan, where it started, how many steps remain.</summary>
    private sealed class ActiveStep(StepPlan? plan, ulong from, int remaining, bool hardware, ulong? suspended)
    {
        /// <summary>The vcpu runs this step with asynchronous interrupts held (<see cref="TraceStep.HoldsAsyncInterrupts"/>), in
        /// every slice the step takes.</summary>
        public bool HoldsAsync;
        public StepPlan? Plan = plan;
        public ulong From = from;
        public int Remaining = remaining;
        public int Done;
        public readonly bool Hardware = hardware;
        /// <summary>A breakpoint at NIP whose original word is back in memory while this vcpu steps off it.</summary>
        public ulong? Suspended = suspended;
        /// <summary>User breakpoints inside an atomic sequence this step runs whole, out of memory until it ends.</summary>
        public List<ulong>? SuspendedInside;
        /// <summary>The engine executed the instruction itself (an rfid or rfscv whose target is its own address or has no translation).</summary>
        public bool Emulated;
    }

    /// <summary>Takes vcpu <paramref name="index"/> of <paramref name="vm"/>; <paramref name="table"/> is the VM's, shared with
    /// the other vcpus' engines. Drops any breakpoint a predecessor's steps of this vcpu left (a restart, a crash).</summary>
    public VcpuEngine(IVirtualMachine vm, int index, BreakpointTable table)
    {
        _vm = vm;
        _vcpu = vm.GetVcpu(index);
        _table = table;
        _owner = new BreakpointOwner.Step(index);
        _translateFetch = (ulong ea, ulong msr, out ulong ra) => _vcpu.TryTranslate(ea, msr, AccessKind.Fetch, out ra);
        _fetchOriginal = FetchOriginal;
        _table.RemoveAll(_owner);
    }

    public int Index => _vcpu.Index;

    /// <summary>A host step is in progress (planned, its breakpoints planted), to be finished by later slices or abandoned.</summary>
    public bool Stepping => _step is not null;

    /// <summary>The register state now, guest view. The object is a snapshot the engine never changes afterwards.</summary>
    public VcpuState Registers => _cache ??= _lastKnown = _vcpu.GetRegisters();

    /// <summary>Writes the registers (vcpu stopped), abandoning any step first. Returns the state now.</summary>
    public VcpuState SetRegisters(VcpuState state)
    {
        if (_step is not null) AbandonStep();
        _vcpu.SetRegisters(state);
        _cache = null;
        return Registers;
    }

    /// <summary>EA → RA as this vcpu translates now: its MMU, its current MSR (only the vcpu's owner may ask).</summary>
    public bool TryTranslate(ulong effectiveAddress, AccessKind access, out ulong realAddress) =>
        _vcpu.TryTranslate(effectiveAddress, Registers.Msr, access, out realAddress);

    /// <summary>The vcpu is at <paramref name="nip"/> and a user breakpoint is there, with its translation now: a Breakpoint event at
    /// <paramref name="nip"/> kept from an earlier all-stop still stands (the user may have removed the breakpoint since, or
    /// moved the vcpu).</summary>
    public bool AtUserBreakpoint(ulong nip) =>
        Registers.Nip == nip && TryTranslate(nip, AccessKind.Fetch, out ulong ra) && _table.HasUser(ra);

    /// <summary>
    /// Runs one slice on a backend whose vcpus run on their own (<see cref="VcpuRunModel.IndependentVcpus"/>): continue, a host
    /// step (or the part of one that fits the budget), or an invisible re-entry. The same as <see cref="Begin"/>, then
    /// <see cref="IVcpu.Run"/> and <see cref="OnExit"/> until the slice is over.
    /// </summary>
    public SliceResult RunSlice(SliceRequest request)
    {
        if (Begin(request) is { } prepared) return prepared;
        while (true)
        {
            long left = BudgetLeft;
            if (left <= 0) return Ended(SliceOutcome.Ran);
            if (OnExit(_vcpu.Run(left)) is { } done) return done;
        }
    }

    /// <summary>
    /// Starts a slice: plans, arms and plants a step, or readies a continue (stepping off a user breakpoint at NIP first).
    /// Returns the result when the slice is over without the vcpu running (a zero budget only prepares; an rfid the engine
    /// performs itself; a vcpu stopped for good); null when the vcpu must now run — on its own (<see cref="RunSlice"/>) or
    /// with the whole VM (<see cref="IAllStopVm.Resume"/>), each exit handed to <see cref="OnExit"/>.
    /// </summary>
    public SliceResult? Begin(SliceRequest request)
    {
        _cache = null;
        if (_vcpu.IsStoppedForGood)
        {
            var last = _finalExit ?? (_vm.Capabilities.RunModel == VcpuRunModel.IndependentVcpus
                ? _vcpu.Run(0) : new VcpuExit(ExitReason.Stopped, Registers.Nip));
            return new SliceResult(last.Reason == ExitReason.Checkstop ? SliceOutcome.Checkstop : SliceOutcome.GuestStopped,
                Registers, Status: last.Status, Detail: last.Detail ?? "the guest stopped this vcpu");
        }
        // The host's time a ceded vcpu waited for (the coordinator's pacing) passes before anything runs.
        if (request.IdleTicks > 0) _vcpu.PassIdleTime(request.IdleTicks);
        // A backend that cannot hold asynchronous interrupts (QEMU on KVM) steps with them allowed: the plan then covers their handlers.
        if (request.HoldAsyncInterrupts && !_vm.Capabilities.HoldsAsyncInterrupts) request = request with { HoldAsyncInterrupts = false };
        _vcpu.HoldAsyncInterrupts = request.Mode != SliceMode.Continue && request.HoldAsyncInterrupts;
        _slice = request;
        _sliceStart = _vcpu.InstructionsRetired;
        _nonRetiring = 0;
        _overThenFree = false;
        if (request.Mode == SliceMode.Continue)
        {
            _vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
            // Resuming from a user breakpoint at NIP (the one just reported): step over it first, or the vcpu
            // would trap on it again without moving.
            var at = Scratch();
            if (_step is null && _table.HasUser(Real(at.Nip, at.Msr)))
            {
                _overThenFree = true;
                _stepRequest = new SliceRequest(request.Budget, SliceMode.Step, HoldAsyncInterrupts: false);
                _step = BeginStep(_stepRequest);
            }
        }
        else
        {
            _stepRequest = request;
            _step ??= BeginStep(request);
            _vcpu.HoldAsyncInterrupts = _step.HoldsAsync; // a step that goes on in this slice holds as it was planned to
            if (request.Budget == 0) return Ended(SliceOutcome.Ran); // prepare only: plan and plant, run nothing
        }
        return Advance();
    }

    /// <summary>Handles one exit of the vcpu in the slice <see cref="Begin"/> started: the result when the slice is over, null
    /// when the vcpu must run on.</summary>
    public SliceResult? OnExit(VcpuExit exit)
    {
        var result = StepPhase ? OnStepExit(exit) : OnFreeExit(exit);
        return result ?? Advance();
    }

    /// <summary>The slice ends now, with nothing to report (the VM stopped for another vcpu's event, or a halt); a step in
    /// progress stays planted for the next slice or a cancel, but a continue's step off a user breakpoint goes (<see
    /// cref="Ended"/>).</summary>
    public SliceResult EndSlice() => Ended(SliceOutcome.Ran);

    /// <summary>Budget left in the slice: a trap or an emulated step retires no instruction but counts like one, so no
    /// sequence of them can hold a slice (and a halt) forever.</summary>
    private long BudgetLeft => _slice.Budget - (_vcpu.InstructionsRetired - _sliceStart + _nonRetiring);

    /// <summary>The slice is stepping: a step or a re-entry, or a continue still stepping off a user breakpoint.</summary>
    private bool StepPhase => _slice.Mode != SliceMode.Continue || _overThenFree;

    /// <summary>Steps the engine performs without running the vcpu (an rfid no breakpoint can catch), one after another while a
    /// count or a range goes on. Null when the vcpu must run.</summary>
    private SliceResult? Advance()
    {
        while (StepPhase && _step is { Emulated: true })
        {
            if (BudgetLeft <= 0) return Ended(SliceOutcome.Ran);
            _nonRetiring++;
            if (FinishStep(TraceStep.Completion.Returned, _stepRequest) is { } done && AfterStep(done) is { } result) return result;
        }
        return null;
    }

    /// <summary>A step is over: the slice's result, or null when it was a continue's step off a user breakpoint and the vcpu
    /// now runs freely.</summary>
    private SliceResult? AfterStep(SliceResult done)
    {
        if (!_overThenFree) return done;
        _overThenFree = false;
        if (done.Outcome != SliceOutcome.StepDone) return done;
        _vcpu.HoldAsyncInterrupts = false;
        _vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
        return null;
    }

    /// <summary>Abandons a step in progress: no breakpoint of it remains, SE is the guest's own (invariant 4). Afterwards
    /// <see cref="Registers"/> is read from the backend afresh.</summary>
    public void Abandon()
    {
        try { AbandonStep(); }
        catch (BackendLostException)
        {
            // The backend is gone (a QEMU that died): it holds nothing of the step any more; only the table's entries go.
            _step = null;
            _table.RemoveAll(_owner);
        }
        if (_cache is not null) _lastKnown = _cache;
        _cache = null;
    }

    private VcpuState? _lastKnown;

    /// <summary>The registers as last read, for reporting when the backend can no longer be asked (a QEMU that died).</summary>
    public VcpuState LastKnownRegisters => _cache ?? _lastKnown ?? new VcpuState();

    /// <summary><see cref="Registers"/>, or when the backend is gone the registers as last read.</summary>
    public VcpuState RegistersOrLastKnown
    {
        get
        {
            try { return Registers; }
            catch (BackendLostException) { return LastKnownRegisters; }
        }
    }

    /// <summary>An exit while running freely (continue): null when it is nothing the coordinator must know.</summary>
    private SliceResult? OnFreeExit(VcpuExit exit)
    {
        switch (exit.Reason)
        {
            case ExitReason.BudgetExpired: return Ended(SliceOutcome.Ran);
            case ExitReason.Idle:
                if (exit.WakesIn is { } wakesIn && PacedFrequency != 0)
                {
                    // The coordinator waits for it on the host's clock.
                    if (_slice.PaceIdle)
                    {
                        _cache = null;
                        return new SliceResult(SliceOutcome.Idle, Registers, WakesIn: wakesIn);
                    }
                    return PassIdle(wakesIn);
                }
                return Idle(held: false, exit.Detail);
            case ExitReason.Stopped:
                _finalExit = exit;
                return Ended(SliceOutcome.GuestStopped, exit.Address, exit.Status, exit.Detail);
            case ExitReason.Checkstop:
                _finalExit = exit;
                return Ended(SliceOutcome.Checkstop, exit.Address, 0, exit.Detail);
            case ExitReason.Watchpoint: return WatchpointHit(exit);
            case ExitReason.Debug:
            {
                ulong ra = Real(exit.Address, Scratch().Msr);
                if (ra != ulong.MaxValue && ClassifyTrap(exit.Address, ra) is { } trap) return trap;
                // Not a breakpoint of the table: gone since the fetch (re-execute), or the guest's own instruction.
                if (IsGuestDebugInstruction(ra) && !DeliverIllegalInstruction(exit.Address))
                {
                    _finalExit = new VcpuExit(ExitReason.Checkstop, exit.Address, 0, IllegalAtHandler(exit.Address));
                    return Ended(SliceOutcome.Checkstop, exit.Address, 0, IllegalAtHandler(exit.Address));
                }
                _nonRetiring++;
                return null;
            }
            default: return Ended(SliceOutcome.Ran);
        }
    }

    /// <summary>A debug exit at a breakpoint of the table: a user breakpoint, or another vcpu's step breakpoint.</summary>
    private SliceResult? ClassifyTrap(ulong nip, ulong ra)
    {
        var owners = _table.OwnersAt(ra);
        if (owners.Contains(BreakpointOwner.User.Instance)) return Ended(SliceOutcome.BreakpointHit, nip);
        if (owners.Count > 0) return Ended(SliceOutcome.Parked, ra, 0, $"parked on {string.Join(", ", owners)} at 0x{ra:x}");
        return null;
    }

    /// <summary>
    /// A debug exit that no breakpoint of the table explains, at an address that still holds the debug
    /// instruction: the guest's own. (Without it the breakpoint went away between the fetch and now.)
    /// </summary>
    private bool IsGuestDebugInstruction(ulong ra)
    {
        if (ra >= _vm.MemorySize || _vm.MemorySize - ra < 4) return false;
        Span<byte> word = stackalloc byte[4];
        // The guest's own word (breakpoints hidden, under the table's lock): a step breakpoint planted here again since
        // the trap must not pass for the guest's.
        _table.Read(ra, word);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(word) == _vm.Capabilities.DebugInstruction; // same in both byte orders
    }

    /// <summary>
    /// Gives the guest the program interrupt (illegal instruction) its own debug instruction raises without a
    /// debugger, by register writes, as QEMU does on KVM (kvm_handle_debug); without this the vcpu would trap on
    /// it forever. False when the instruction is the Program handler's first: the guest cannot recover.
    /// </summary>
    private bool DeliverIllegalInstruction(ulong nip)
    {
        var s = _vcpu.GetRegisters();
        // Book III §6.5.9: SRR0 = the instruction, SRR1[44] = illegal instruction.
        var entry = InterruptEntry.Of(InterruptKind.Program, s.Msr, s.Lpcr, nip, Srr1Bits.ProgramIllegal);
        if (entry.Nip == nip) return false;
        (s.Nip, s.Msr, s.Srr0, s.Srr1) = (entry.Nip, entry.Msr, entry.Srr0, entry.Srr1);
        _vcpu.SetRegisters(s);
        _cache = null;
        return true;
    }

    private static string IllegalAtHandler(ulong nip) =>
        $"the guest's own debug instruction (illegal) is the first instruction of its Program handler (0x{nip:x}): the guest cannot recover";

    /// <summary>An exit during a host step (§3 points 5–8): null when the step (or its count, or its range) goes on.</summary>
    private SliceResult? OnStepExit(VcpuExit exit)
    {
        var m = _stepRequest;
        switch (exit.Reason)
        {
            case ExitReason.BudgetExpired: return Ended(SliceOutcome.Ran);
            case ExitReason.Idle:
            {
                // The stepped instruction was the H_CEDE itself: it completed, and NIP is at the step's end point (NIP+4), which
                // only the next fetch would trap on (a hardware step ends there too). A step's end point is never its start.
                if (_step?.Plan is { } plan && plan.EndPointAt(Real(Scratch().Nip, _scratch.Msr)) is { } end)
                {
                    var s = _vcpu.GetRegisters();
                    var completion = TraceStep.Complete(plan, end, s);
                    _vcpu.SetRegisters(s);
                    return FinishStep(completion, m, s) is { } done ? AfterStep(done) : null;
                }
                // A step that may take the decrementer does not wait for it on the host's clock: its time passes now.
                if (exit.WakesIn is { } wakesIn && PacedFrequency != 0) return PassIdle(wakesIn);
                // The next slice of this step holds asynchronous interrupts as the step was planned to (Begin).
                return Idle(held: _step?.HoldsAsync ?? m.HoldAsyncInterrupts, exit.Detail);
            }
            case ExitReason.Stopped:
                AbandonStep();
                _finalExit = exit;
                return Ended(SliceOutcome.GuestStopped, exit.Address, exit.Status, exit.Detail);
            case ExitReason.Checkstop:
                AbandonStep();
                _finalExit = exit;
                return Ended(SliceOutcome.Checkstop, exit.Address, 0, exit.Detail);
            case ExitReason.SingleStep:
                return FinishStep(TraceStep.Completion.Completed, m) is { } hwDone ? AfterStep(hwDone) : null;
            case ExitReason.Watchpoint:
                // The access stopped before the instruction completed: no end point was reached, the step ends here
                // (its breakpoints out, SE the guest's own) and the watchpoint is what gets reported.
                AbandonStep();
                return WatchpointHit(exit);
            case ExitReason.Debug:
            {
                var s = _vcpu.GetRegisters();
                _vcpu.TryTranslate(exit.Address, s.Msr, AccessKind.Fetch, out ulong ra);
                var end = _step!.Plan?.EndPointAt(ra);
                if (end is not null)
                {
                    var completion = TraceStep.Complete(_step.Plan!, end, s);
                    _vcpu.SetRegisters(s); // the register state is written back once per step
                    return FinishStep(completion, m, s) is { } done ? AfterStep(done) : null;
                }
                // Not one of ours: a user breakpoint ends the step there (§3 point 8); another step's parks us. But at the
                // address this step suspended (the guest's own word is back in memory), the trap is that word itself.
                if (!SuspendedByThisStep(_step!, ra) || _table.IsPlanted(ra)) // planted again since (removed, then another step's)
                {
                    if (_table.HasUser(ra)) AbandonStep(); // before the state is reported: SE back to the guest's own
                    if (ClassifyTrap(exit.Address, ra) is { } trap) return trap;
                }
                _nonRetiring++; // a trap that retires nothing: it counts against the budget like an instruction
                if (!IsGuestDebugInstruction(ra)) return null; // gone since the fetch: re-execute
                if (!DeliverIllegalInstruction(exit.Address))
                {
                    AbandonStep();
                    _finalExit = new VcpuExit(ExitReason.Checkstop, exit.Address, 0, IllegalAtHandler(exit.Address));
                    return Ended(SliceOutcome.Checkstop, exit.Address, 0, IllegalAtHandler(exit.Address));
                }
                // The trace backend's end point at the Program handler catches the step next; a hardware
                // step ends here, at the handler's first instruction.
                if (_step!.Hardware && FinishStep(TraceStep.Completion.Interrupted, m) is { } interrupted) return AfterStep(interrupted);
                return null;
            }
            default: return Ended(SliceOutcome.Ran);
        }
    }

    /// <summary>Timebase ticks per second of a backend that paces idle time (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>); 0 otherwise.</summary>
    private ulong PacedFrequency => _vm.Capabilities.PacedTimebaseFrequency;

    /// <summary>On a backend that paces idle time, a slice that does not wait for its idle vcpu lets the time pass itself, up to
    /// the decrementer (<paramref name="wakesIn"/>): a step at once (it ends at the decrementer's handler without waiting for
    /// it); a continue that does not pace (the deterministic mode, whose time follows instructions) counts it against its budget
    /// like instructions, as a backend that skips idle time does. Null when the vcpu runs on.</summary>
    private SliceResult? PassIdle(ulong wakesIn)
    {
        if (StepPhase)
        {
            _vcpu.PassIdleTime(wakesIn);
            return null;
        }
        long left = BudgetLeft;
        if (left <= 0) return Ended(SliceOutcome.Ran);
        ulong pass = Math.Min(wakesIn, (ulong)left);
        _vcpu.PassIdleTime(pass);
        _nonRetiring += (long)pass;
        return null;
    }

    /// <summary>
    /// The vcpu is ceded (H_CEDE) and nothing woke it in the slice. <see cref="SliceOutcome.Idle"/> when it may wake by itself (it
    /// takes the decrementer: interrupts not <paramref name="held"/>, MSR[EE]=1) or ran something in this slice; otherwise
    /// <see cref="SliceOutcome.Ceded"/>: only another vcpu's H_PROD can wake it, which the coordinator must know rather than
    /// hand it slice after slice. A step stays planted either way.
    /// </summary>
    private SliceResult Idle(bool held, string? backendDetail = null)
    {
        var s = Registers;
        bool eeOff = (s.Msr & Msr.EE) == 0;
        // A backend that says why the vcpu does not run (QEMU: halted for a while) is believed: nothing in this slice woke it.
        if (backendDetail is null && ((!held && !eeOff) || _vcpu.InstructionsRetired != _sliceStart)) return Ended(SliceOutcome.Idle);
        string why = eeOff ? "its MSR[EE] is 0" : "this step holds the decrementer and external interrupts";
        string detail = backendDetail is not null ? $"vcpu {Index} is idle at 0x{s.Nip:x}: {backendDetail}"
            : $"vcpu {Index} is idle in H_CEDE at 0x{s.Nip:x}: an H_PROD from another vcpu, a decrementer or an external " +
              $"interrupt would wake it, and {why}";
        var step = _step is { Done: > 0 } done ? new StepDetail(TraceStep.Completion.Completed, done.From, s.Nip, done.Done) : null;
        return new SliceResult(SliceOutcome.Ceded, s, step, s.Nip, 0, detail);
    }

    /// <summary>Ends one step; starts the next when a count remains. Returns the slice result when the whole step is over.</summary>
    private SliceResult? FinishStep(TraceStep.Completion completion, SliceRequest m, VcpuState? current = null)
    {
        var step = _step!;
        ReleaseStepResources(step);
        step.Done++;
        step.Remaining--;
        _cache = null;
        var s = current ?? _vcpu.GetRegisters();
        // A range step goes on while NIP is in its range; a counted one until its count is done.
        bool more = step.Remaining > 0 || m.Range?.Contains(s.Nip) == true;
        if (more && !_table.HasUser(Real(s.Nip, s.Msr)))
        {
            var next = BeginStep(m with { StepCount = Math.Max(step.Remaining, 1) }); // a range step: one at a time
            next.From = step.From;
            next.Done = step.Done;
            _step = next;
            return null;
        }
        _step = null;
        _cache = s;
        // A user breakpoint met before the count is done (or inside the range) ends the step there and is what gets
        // reported (§3 point 8).
        var outcome = more ? SliceOutcome.BreakpointHit : SliceOutcome.StepDone;
        return new SliceResult(outcome, s, new StepDetail(completion, step.From, s.Nip, step.Done), s.Nip);
    }

    private ulong Real(ulong ea, ulong msr) => _vcpu.TryTranslate(ea, msr, AccessKind.Fetch, out ulong ra) ? ra : ulong.MaxValue;

    /// <summary>§3 points 1–4: plan, save, arm, plant. The capability, never the flavour, picks the backend.</summary>
    private ActiveStep BeginStep(SliceRequest m)
    {
        var s = Scratch();
        ulong nipRa = Real(s.Nip, s.Msr);
        // Stepping off a breakpoint planted at NIP: the original word goes back for the duration of this step.
        ulong? suspended = nipRa != ulong.MaxValue && _table.Suspend(nipRa) ? nipRa : null;

        StepPlan plan;
        if (_vm.Capabilities.HardwareSingleStep)
        {
            // A hardware step is a host trip too (KVM-PR exits after each instruction): an atomic sequence is run whole with
            // breakpoints at its end points, as on the trace backend (from its larx, or its rest from inside it while the
            // reservation is held); anything else is the hardware's one instruction.
            if (TraceStep.PlanAtomicSequence(s, _translateFetch, _fetchOriginal, allowAsync: !m.HoldAsyncInterrupts) is not { } sequence)
            {
                _vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints | GuestDebug.SingleStep);
                _vcpu.HoldAsyncInterrupts = m.HoldAsyncInterrupts;
                return new ActiveStep(null, s.Nip, m.StepCount, hardware: true, suspended) { HoldsAsync = m.HoldAsyncInterrupts };
            }
            plan = sequence;
        }
        else plan = TraceStep.Plan(s, _translateFetch, _fetchOriginal, allowAsync: !m.HoldAsyncInterrupts);
        // Decided for this step alone, the next step of a count or a range included (a hold left from an rfid's step would take a
        // decrementer allowed to fall due later in the count late: §6 invariant 1).
        var step = new ActiveStep(plan, s.Nip, m.StepCount, hardware: false, suspended)
        {
            HoldsAsync = TraceStep.HoldsAsyncInterrupts(plan, s, m.HoldAsyncInterrupts, _vm.Capabilities.HoldsAsyncInterrupts),
        };
        _vcpu.HoldAsyncInterrupts = step.HoldsAsync;
        if (plan.Op is Op.Rfid or Op.Rfscv && (s.Msr & Msr.PR) == 0 && ReturnCannotBeCaught(plan.Op, s, nipRa))
        {
            // No breakpoint can catch this rfid's (or rfscv's) end (see ReturnCannotBeCaught) and neither is ever traced, so
            // the engine performs it, time included (one timebase tick).
            (s.Nip, s.Msr) = ReturnOf(plan.Op, s);
            _vcpu.SetRegisters(s);
            _vcpu.RetireEmulatedInstruction();
            step.Emulated = true;
            return step;
        }
        foreach (var e in plan.EndPoints) _table.Insert(e.RealAddress, _owner, e.EffectiveAddress);
        if (plan.Sequence is { } atomic) SuspendUserBreakpointsInside(step, atomic);
        if (plan.ArmTrace)
        {
            s.Msr |= Msr.SE;
            _vcpu.SetRegisters(s);
        }
        _vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
        return step;
    }

    /// <summary>
    /// A user breakpoint inside an atomic sequence the step runs whole (after NIP — its larx, or where the step begins inside
    /// it with the reservation held —, through its stcx.) would end the step there, with the reservation lost on the way to
    /// the host: the stcx. would fail, and every later step would stop there again, so the loop could never be stepped past.
    /// Stepping the sequence means running it whole, so such a breakpoint is out of memory for this step only (gdb does not
    /// stop inside its atomic step either); a continue still stops there. An address another step also owns stays planted:
    /// that step's end point must not go.
    /// </summary>
    private void SuspendUserBreakpointsInside(ActiveStep step, AtomicSequence sequence)
    {
        foreach (ulong ra in sequence.InsideRealAddresses)
            if (_table.SuspendUserOnly(ra)) (step.SuspendedInside ??= new List<ulong>(1)).Add(ra);
    }

    private static bool SuspendedByThisStep(ActiveStep step, ulong ra) =>
        step.Suspended == ra || step.SuspendedInside?.Contains(ra) == true;

    /// <summary>An rfid or rfscv whose target (fetched with the MSR it installs) no breakpoint can catch: its own address (a
    /// breakpoint there traps before the instruction runs), or an address with no translation (the step must end there,
    /// before the fetch faults, as the hardware's does: a return to a userspace page not mapped yet). In problem state both
    /// are privileged: the Program handler's end point catches them instead.</summary>
    private bool ReturnCannotBeCaught(Op op, VcpuState s, ulong nipRa)
    {
        var (nip, msr) = ReturnOf(op, s);
        return !_vcpu.TryTranslate(nip, msr, AccessKind.Fetch, out ulong ra) || ra == nipRa;
    }

    /// <summary>Where an rfid (SRR0, SRR1) or an rfscv (LR, CTR) returns to and the MSR it installs (Book III §6.4, rfscv: as
    /// <see cref="SystemCallVectoredEntry"/> says).</summary>
    private static (ulong Nip, ulong Msr) ReturnOf(Op op, VcpuState s)
    {
        ulong msr = MsrRules.AfterRfid(s.Msr, op == Op.Rfscv ? s.Ctr : s.Srr1);
        return (MsrRules.ReturnAddress(op == Op.Rfscv ? s.Lr : s.Srr0, msr), msr);
    }

    private VcpuState Scratch()
    {
        _vcpu.GetRegisters(_scratch);
        return _scratch;
    }

    private uint FetchOriginal(ulong ra, bool littleEndian)
    {
        Span<byte> b = stackalloc byte[4];
        _table.Read(ra, b);
        return littleEndian
            ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b)
            : System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private void ReleaseStepResources(ActiveStep step)
    {
        _table.RemoveAll(_owner);
        if (step.Suspended is ulong ra) _table.Resume(ra);
        step.Suspended = null;
        if (step.SuspendedInside is { } inside) foreach (ulong r in inside) _table.Resume(r);
        step.SuspendedInside = null;
        if (step.Hardware) _vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
    }

    /// <summary>Abandons a step in progress: no breakpoint of it remains, SE is the guest's own (invariant 4). A continue's
    /// step off a user breakpoint is over with it (<see cref="_overThenFree"/> describes that step).</summary>
    private void AbandonStep()
    {
        var step = _step;
        _step = null;
        _overThenFree = false;
        if (step is null) return;
        if (step.Plan is { } reached && reached.EndPointAt(Real(Scratch().Nip, _scratch.Msr)) is { } end)
        {
            // The vcpu left Run between the interrupt that ends the step (a Trace: SRR0/SRR1 already clobbered) and the
            // fetch that would trap on the end point: the step is over, so complete it rather than leave it half done.
            ReleaseStepResources(step);
            var s = _vcpu.GetRegisters();
            TraceStep.Complete(reached, end, s);
            _vcpu.SetRegisters(s);
            _cache = null;
            return;
        }
        ReleaseStepResources(step);
        if (step.Plan is { ArmTrace: true } plan)
        {
            var s = Scratch();
            s.Msr = (s.Msr & ~Msr.SE) | (plan.GuestSe ? Msr.SE : 0);
            _vcpu.SetRegisters(s);
        }
        _cache = null;
    }

    /// <summary>A data access hit a watchpoint, NIP at the instruction (not executed): reported as the hit; the vcpu's next run
    /// performs the access (the backend lets that one through).</summary>
    private SliceResult WatchpointHit(VcpuExit exit)
    {
        _cache = null;
        return new SliceResult(SliceOutcome.WatchpointHit, Registers, null, exit.Address, 0, exit.Detail, exit.Watch);
    }

    private SliceResult Ended(SliceOutcome outcome, ulong address = 0, long status = 0, string? detail = null)
    {
        // A continue's step off a user breakpoint that its slice did not finish (its budget, a halt, another vcpu's event):
        // nothing cancels a continue's step, and the VM is about to be reported stopped, so it goes now (§6 invariant 4; the
        // next continue starts afresh, stepping off again if the vcpu is still at the breakpoint).
        if (outcome == SliceOutcome.Ran && _overThenFree) AbandonStep();
        _cache = null;
        return new SliceResult(outcome, Registers, null, address, status, detail);
    }
}
