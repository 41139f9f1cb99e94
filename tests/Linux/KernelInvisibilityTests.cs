using System.Diagnostics;
using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Xunit.Abstractions;
using Xunit.Sdk;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Linux;

/// <summary>
/// Issue 13's invisibility test (step-engine.md §6 invariant 1) on Debian's kernel: the same kernel booted twice on the
/// simulated machine in the deterministic mode, one boot driven through a <see cref="VmCoordinator"/> as a debugger drives it
/// (continues to breakpoints, single steps, count steps and range steps on the HV backend, whose steps are the Trace-handler
/// breakpoint technique, asynchronous interrupts allowed), the other run with no debug facility at all and stopped, after each
/// stop of the first, at the same timebase (one tick per instruction). At every stop the whole architected state of the vcpu
/// (GPRs, FPRs, VRs, VSRs, NIP, MSR, CR, LR, CTR, XER, FPSCR, SRR0/1, SPRGs, DAR, DSISR, DEC, TB, LPCR) must be equal, and the
/// whole guest memory at a few stops. Stretches: the early boot in real mode from the kernel's first instruction, the MMU
/// switch-on (start_here_multiplatform's rfid into start_here_common with AIL=3), the first timer interrupt's exception path, a
/// decrementer falling due in a count step that began at a hypercall, and decrementers set to fall due within single, count
/// and range steps (a stop at the handler of an interrupt that fell due as a step ended is compared with the undebugged
/// run's entry into it). Booted with the tests' busybox initramfs: userspace's natural instruction storage interrupts (a
/// fetch from a page not mapped yet, /init's first instruction included), its system calls by <c>scv 0</c> and <c>sc</c>, and
/// the kernel's returns by <c>rfscv</c> and <c>rfid</c>, stepped across (a stop at a fault's entry, which retired nothing, is
/// compared with the entry the undebugged state takes). On two vcpus: the secondary's bring-up, both vcpus stepped, compared
/// with a twin that replays the debugged run's interleaving, a step begun inside a larx … stcx. sequence whose reservation the
/// vcpu holds included.
/// </summary>
[Collection("linux")]
public sealed class KernelInvisibilityTests(ITestOutputHelper output) : TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly DateTimeOffset Clock = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The debugged run and its undebugged twin. On one vcpu the twin is brought to each stop's timebase. On several,
    /// the twin replays the debugged run's slices, which <paramref name="interleaving"/> records, in order (each from the
    /// timebase its debugged vcpu began it at to the one it ended it at): the same instructions in the same interleaving; at
    /// the end of each slice that ran out its budget the vcpu is compared, and at a stop every vcpu.</summary>
    private sealed class Lockstep(IActorRef debugged, SimulatedMachine debuggedVm, SimulatedMachine freeVm, ITestOutputHelper output,
        InterleavingRecorder? interleaving = null)
    {
        private readonly int _vcpus = debuggedVm.VcpuCount;
        private readonly VcpuState[] _last = Enumerable.Range(0, debuggedVm.VcpuCount).Select(v => debuggedVm.GetVcpu(v).GetRegisters()).ToArray();
        public int Stops, Compared, InterruptEntries, InstructionStorageEntries, FaultEntriesAfterRetiring, MemoryChecks, SlicesCompared;
        public readonly Dictionary<string, int> Completions = [];
        /// <summary>Vcpu 0's state at the last stop.</summary>
        public VcpuState Last { get => _last[0]; private set => _last[0] = value; }
        public VcpuState LastOf(int vcpu) => _last[vcpu];
        /// <summary>The vcpus a step took from translation off to IR and DR on.</summary>
        public readonly HashSet<int> SteppedIntoRelocation = [];

        public Stopped Resume(Resume resume, string what)
        {
            var reply = debugged.Ask<object>(resume, Timeout).Result;
            var stop = Assert.IsType<Stopped>(reply);
            Check(stop, what);
            return stop;
        }

        /// <summary>A step of <paramref name="vcpu"/>; with scheduler locking off the other vcpus continue meanwhile.</summary>
        public Stopped Step(int count = 1, StepRange? range = null, string what = "step", int vcpu = 0, SchedulerLocking locking = SchedulerLocking.On)
        {
            if (BeginsInsideASequence(vcpu) is { } sequence)
            {
                StepsBegunInsideASequence++;
                output.WriteLine($"{what}: begins inside an atomic sequence at 0x{_last[vcpu].Nip:x}, its stcx. at 0x{sequence.StoreConditional:x}");
            }
            return Resume(new Resume(StepActions(vcpu, _vcpus, locking), HoldAsyncInterrupts: false, StepCount: count,
                Ranges: range is null ? null : new Dictionary<int, StepRange> { [vcpu] = range }), what);
        }

        /// <summary>Steps that began inside a larx … stcx. sequence whose reservation the vcpu held (a continue slice that ran
        /// out its budget left it there): the engine runs the rest of the sequence whole, and its stcx. succeeds or fails as the
        /// undebugged run's does.</summary>
        public int StepsBegunInsideASequence;

        /// <summary>The rest of the atomic sequence a step of <paramref name="vcpu"/> from its last stop is planned to run, when it
        /// holds a reservation there and NIP is after the larx; the words read from the undebugged twin (no breakpoint in its
        /// memory, at the same count). The plan is the engine's own: it only counts; the comparisons check the step.</summary>
        private AtomicSequence? BeginsInsideASequence(int vcpu)
        {
            var s = _last[vcpu];
            if (!s.ReservationHeld) return null;
            var twin = freeVm.GetVcpu(vcpu);
            var plan = TraceStep.Plan(s, (ulong ea, ulong msr, out ulong ra) => twin.TryTranslate(ea, msr, AccessKind.Fetch, out ra), (ra, le) =>
            {
                uint w = ReadWord(freeVm, ra);
                return le ? w : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(w);
            }, allowAsync: true);
            return AtomicSequences.IsLoadAndReserve(plan.Instruction) ? null : plan.Sequence;
        }

        /// <summary>The coordinator's description of the VM (its counts of parks and re-entries).</summary>
        public VmDescription Describe() => debugged.Ask<VmDescription>(new Describe(), Timeout).Result;

        /// <summary>Every vcpu continues.</summary>
        private Resume ContinueAll() => new(ContinueActions(0, _vcpus, SchedulerLocking.Off), HoldAsyncInterrupts: false);

        /// <summary>Continues to a user breakpoint at <paramref name="address"/> until <paramref name="enough"/> holds at a stop.</summary>
        public int ContinueToUntil(ulong address, Func<VcpuState, bool> enough, int maxHits, string what)
        {
            debugged.Ask<BreakpointChanged>(new InsertBreakpoint(address), Timeout).Wait();
            int hits = 0;
            for (; !enough(Last); hits++)
            {
                Assert.True(hits < maxHits, $"{what}: not within {maxHits} stops at 0x{address:x} (tb {Last.Tb})");
                Resume(ContinueAll(), $"{what}, continue");
            }
            debugged.Ask<BreakpointChanged>(new RemoveBreakpoint(address), Timeout).Wait();
            return hits;
        }

        /// <summary>Continues to a user breakpoint at any of <paramref name="addresses"/>.</summary>
        public Stopped ContinueToAny(IReadOnlyList<ulong> addresses, string what)
        {
            foreach (ulong a in addresses) debugged.Ask<BreakpointChanged>(new InsertBreakpoint(a), Timeout).Wait();
            var stop = Resume(ContinueAll(), what);
            Assert.True(stop.Event.Reason == StopReason.Breakpoint && addresses.Contains(stop.State.Nip), $"{what}: ended {stop.Event}");
            foreach (ulong a in addresses) debugged.Ask<BreakpointChanged>(new RemoveBreakpoint(a), Timeout).Wait();
            return stop;
        }

        public Stopped ContinueTo(ulong address)
        {
            debugged.Ask<BreakpointChanged>(new InsertBreakpoint(address), Timeout).Wait();
            var stop = Resume(ContinueAll(), $"continue to 0x{address:x}");
            Assert.True(stop.Event.Reason == StopReason.Breakpoint && ((stop.State.Nip ^ address) & 0x0FFFFFFFFFFFFFFF) == 0, $"the continue to 0x{address:x} ended {stop.Event}");
            debugged.Ask<BreakpointChanged>(new RemoveBreakpoint(address), Timeout).Wait();
            return stop;
        }

        /// <summary>Brings the free run to the stop's timebases and compares every vcpu. A stop that retired nothing since the last
        /// one entered an interrupt (the undebugged run at that count is still before it): its SRR0 must be where the free run is,
        /// and the next stop, after the handler's first instruction, compares everything.</summary>
        private void Check(Stopped stop, string what)
        {
            Stops++;
            Assert.True(stop.Event.Reason is StopReason.StepCompleted or StopReason.Breakpoint, $"{what}: {stop.Event}");
            if (stop.Event.StepCompletion is { } c) Completions[c] = Completions.GetValueOrDefault(c) + 1;
            // The stopped vcpu as the debugger sees it; the others as the machine holds them (nothing runs at a stop).
            var states = new VcpuState[_vcpus];
            for (int v = 0; v < _vcpus; v++) states[v] = v == stop.Event.Vcpu ? stop.State : debuggedVm.GetVcpu(v).GetRegisters();
            var free = Advance(states, what);
            for (int v = 0; v < _vcpus; v++)
            {
                var s = states[v];
                var last = _last[v];
                string at = $"{what}: vcpu {v} from 0x{last.Nip:x} to 0x{s.Nip:x} (tb {s.Tb}, msr 0x{s.Msr:x}, {stop.Event.StepCompletion})";
                if (free[v].Nip != s.Nip && AsynchronousEntry(free[v], s) is { } entered)
                {
                    // The vcpu is at the first instruction of the handler of an interrupt that fell due as its slice ended (after
                    // the instructions a count or a range retired, or none); the undebugged run at that count takes it at its next
                    // instruction: the entry's state must be what that entry makes of the undebugged state, and the next stop
                    // compares everything.
                    InterruptEntries++;
                    var diff = entered.Differences(s);
                    Assert.True(diff.Count == 0, $"{at}: an interrupt entry unlike the undebugged run's: {string.Join("; ", diff)}");
                }
                else if (free[v].Nip != s.Nip && ((s.Tb == last.Tb && s.Nip != last.Nip) || FaultEntry(free[v], s) is not null))
                {
                    // An instruction-caused interrupt (a fault: the instruction did not complete, no tick; or the fetch of the next
                    // one faulted, an ISI after an rfid that retired): the undebugged run is still before it. SRR0 must be where it
                    // is, the MSR the entry installs and SRR1 the undebugged MSR but for the interrupt's own bits, and nothing but
                    // what the entry writes may differ; the next stop, after the handler's first instruction, compares everything.
                    InterruptEntries++;
                    if (FaultEntry(free[v], s) == InterruptKind.InstructionStorage) InstructionStorageEntries++;
                    if (s.Tb != last.Tb) FaultEntriesAfterRetiring++;
                    Assert.True(s.Srr0 == free[v].Nip, $"{at}: an interrupt entry with SRR0 0x{s.Srr0:x}, the undebugged run is at 0x{free[v].Nip:x}");
                    Assert.True(s.Msr == InterruptVectors.NewMsr(free[v].Msr, free[v].Lpcr) && (s.Srr1 & ~Msr.PartialFunctionBits) == (free[v].Msr & ~Msr.PartialFunctionBits),
                        $"{at}: an interrupt entry with MSR 0x{s.Msr:x} and SRR1 0x{s.Srr1:x}, from the undebugged MSR 0x{free[v].Msr:x}");
                    string[] entryWrites = ["nip:", "msr:", "srr0:", "srr1:", "dar:", "dsisr:"];
                    var diff = free[v].Differences(s).Where(d => !entryWrites.Any(d.StartsWith)).ToList();
                    Assert.True(diff.Count == 0, $"{at}: an interrupt entry that changed more than the entry writes: {string.Join("; ", diff)}");
                }
                else
                {
                    var diff = free[v].Differences(s);
                    Assert.True(diff.Count == 0, $"{at}: differs from the undebugged run: {string.Join("; ", diff)} (retired {debuggedVm.GetVcpu(v).InstructionsRetired} vs {freeVm.GetVcpu(v).InstructionsRetired})");
                    Compared++;
                }
                if ((last.Msr & (Msr.IR | Msr.DR)) == 0 && (s.Msr & (Msr.IR | Msr.DR)) == (Msr.IR | Msr.DR) && stop.Event.Reason == StopReason.StepCompleted
                    && v == stop.Event.Vcpu)
                    SteppedIntoRelocation.Add(v);
                _last[v] = s;
            }
        }

        /// <summary>The instruction-caused interrupt that retires nothing (a storage, segment, alignment, program or facility
        /// interrupt) whose handler <paramref name="stop"/> is at, taken from the undebugged state; null when it is at none.</summary>
        private static InterruptKind? FaultEntry(VcpuState free, VcpuState stop)
        {
            foreach (var kind in (InterruptKind[])[InterruptKind.InstructionStorage, InterruptKind.InstructionSegment, InterruptKind.DataStorage,
                         InterruptKind.DataSegment, InterruptKind.Alignment, InterruptKind.Program, InterruptKind.FloatingPointUnavailable,
                         InterruptKind.VectorUnavailable, InterruptKind.VsxUnavailable, InterruptKind.FacilityUnavailable])
                if (InterruptVectors.HandlerAddress(kind, free.Msr, free.Lpcr) == stop.Nip) return kind;
            return null;
        }

        /// <summary>The undebugged state with the asynchronous interrupt (decrementer or external) whose handler
        /// <paramref name="stop"/> is at taken now, or null when the stop is at no such handler.</summary>
        private static VcpuState? AsynchronousEntry(VcpuState free, VcpuState stop)
        {
            if ((free.Msr & Msr.EE) == 0) return null;
            foreach (var kind in (InterruptKind[])[InterruptKind.Decrementer, InterruptKind.External])
            {
                var e = InterruptEntry.Of(kind, free.Msr, free.Lpcr, free.Nip, 0);
                if (e.Nip != stop.Nip) continue;
                var s = free.Clone();
                (s.Nip, s.Msr, s.Srr0, s.Srr1) = (e.Nip, e.Msr, e.Srr0, e.Srr1);
                return s;
            }
            return null;
        }

        /// <summary>Changes a register in both runs, as a debugger's <c>set $reg</c> would (the undebugged run is at the same
        /// count).</summary>
        public void SetRegister(Action<VcpuState> change)
        {
            var s = Last.Clone();
            change(s);
            var written = debugged.Ask<ActorStep.Actors.Vcpu.VcpuProtocol.Registers>(new WriteRegisters(0, s), Timeout).Result;
            var twin = freeVm.GetVcpu(0);
            var free = twin.GetRegisters();
            change(free);
            twin.SetRegisters(free);
            Last = written.State;
            var diff = free.Differences(Last);
            Assert.True(diff.Count == 0, $"the register write left the runs apart: {string.Join("; ", diff)}");
        }

        /// <summary>Replays the debugged run's slices since the last stop on the twin, comparing the vcpu at the end of each that
        /// ran out its budget with its asynchronous interrupts allowed (a clean boundary: nothing of a step in it but MSR[SE], the
        /// host's while a step goes on); then brings each twin vcpu to its debugged vcpu's timebase at this stop.</summary>
        private VcpuState[] Advance(VcpuState[] debuggedStates, string what)
        {
            if (interleaving is not null)
                foreach (var slice in interleaving.TakeSlices(what))
                {
                    Advance(slice.Vcpu, slice.Start.Tb, what);
                    var twin = Advance(slice.Vcpu, slice.End.Tb, what);
                    if (slice.Exit.Reason is not (ExitReason.BudgetExpired or ExitReason.Idle) || slice.HeldAsync) continue;
                    var ended = slice.End.Clone();
                    ended.Msr = (ended.Msr & ~Msr.SE) | (twin.Msr & Msr.SE);
                    var diff = twin.Differences(ended);
                    Assert.True(diff.Count == 0, $"{what}: vcpu {slice.Vcpu}'s slice from 0x{slice.Start.Nip:x} (tb {slice.Start.Tb}) to 0x{slice.End.Nip:x} "
                        + $"(tb {slice.End.Tb}, {slice.Exit.Reason}) ended unlike the undebugged run: {string.Join("; ", diff)}");
                    SlicesCompared++;
                }
            var free = new VcpuState[_vcpus];
            for (int v = 0; v < _vcpus; v++) free[v] = Advance(v, debuggedStates[v].Tb, what);
            return free;
        }

        private VcpuState Advance(int vcpu, ulong tb, string what)
        {
            var twin = freeVm.GetVcpu(vcpu);
            for (int k = 0; ; k++)
            {
                var now = twin.GetRegisters();
                Assert.True(now.Tb <= tb, $"{what}: the undebugged run's vcpu {vcpu} is past the stop's timebase ({now.Tb} > {tb})");
                if (now.Tb == tb) return now;
                var exit = twin.Run((long)(tb - now.Tb));
                Assert.True(exit.Reason is ExitReason.BudgetExpired or ExitReason.Idle && k < 1000, $"{what}: the undebugged run's vcpu {vcpu} exited with {exit}");
            }
        }

        /// <summary>Both guests' whole memory, equal (no breakpoint of a step or of the user is left in it).</summary>
        public void CompareMemory(string where)
        {
            var sw = Stopwatch.StartNew();
            var a = new byte[1 << 20];
            var b = new byte[1 << 20];
            for (ulong ra = 0; ra < freeVm.Options.MemorySize; ra += (ulong)a.Length)
            {
                freeVm.ReadMemory(ra, a);
                debuggedVm.ReadMemory(ra, b);
                if (!a.AsSpan().SequenceEqual(b))
                {
                    int i = a.AsSpan().CommonPrefixLength(b);
                    throw new XunitException($"{where}: guest memory at 0x{ra + (ulong)i:x} differs from the undebugged run's");
                }
            }
            MemoryChecks++;
            output.WriteLine($"memory equal {where} ({sw.ElapsedMilliseconds} ms)");
        }
    }

    /// <summary>
    /// The debugged machine as its coordinator sees it, recording each slice its vcpus run (every <see cref="IVcpu.Run"/>: the
    /// vcpu's registers before and after, its exit, whether it held asynchronous interrupts), in order. The deterministic mode runs
    /// one vcpu at a time (checked here), so a twin that runs each slice's vcpu from the slice's first timebase to its last, in
    /// this order, executes the same instructions in the same interleaving: a vcpu's timebase counts its instructions (and the
    /// idle time of its budgets), and whatever a vcpu does to memory or to another vcpu (an IPI, a start) is an instruction.
    /// </summary>
    private sealed class InterleavingRecorder : ForwardingVirtualMachine
    {
        public sealed record Slice(int Vcpu, VcpuState Start, VcpuExit Exit, VcpuState End, bool HeldAsync);

        private readonly IVcpu[] _vcpus;
        private readonly List<Slice> _slices = [];
        private int _running = -1;
        private string? _overlap;

        public InterleavingRecorder(SimulatedMachine inner) : base(inner) =>
            _vcpus = Enumerable.Range(0, inner.VcpuCount).Select(v => (IVcpu)new RecordingVcpu(this, inner.GetVcpu(v))).ToArray();

        public override IVcpu GetVcpu(int index) => _vcpus[index];

        /// <summary>The slices since the last call, in order; fails if two vcpus ever ran at once.</summary>
        public List<Slice> TakeSlices(string what)
        {
            lock (_slices)
            {
                Assert.True(_overlap is null, $"{what}: {_overlap}");
                var taken = _slices.ToList();
                _slices.Clear();
                return taken;
            }
        }

        private void Begins(int vcpu)
        {
            lock (_slices)
            {
                if (_running >= 0) _overlap ??= $"vcpu {vcpu} began to run while vcpu {_running} ran: the interleaving cannot be replayed";
                _running = vcpu;
            }
        }

        private void Ends(Slice? slice)
        {
            lock (_slices)
            {
                if (slice is not null) _slices.Add(slice);
                _running = -1;
            }
        }

        private sealed class RecordingVcpu(InterleavingRecorder recorder, IVcpu inner) : ForwardingVcpu(inner)
        {
            public override VcpuExit Run(long budget)
            {
                recorder.Begins(Index);
                Slice? slice = null;
                try
                {
                    var start = Inner.GetRegisters();
                    bool held = Inner.HoldAsyncInterrupts;
                    var exit = base.Run(budget);
                    slice = new Slice(Index, start, exit, Inner.GetRegisters(), held);
                    return exit;
                }
                finally { recorder.Ends(slice); }
            }
        }
    }

    private static SimulatedMachine Boot(ElfImage kernel, int vcpus = 1, byte[]? initramfs = null)
    {
        var vm = new SimulatedMachine(new MachineOptions(vcpus, 256UL << 20, HypervisorFlavour.Hv, RealTimeClock: Clock));
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel, initramfs), MachineOptions.TimebaseFrequency);
        return vm;
    }

    /// <summary>Steps <paramref name="steps"/> times, cycling single steps, count steps of 5 and range steps over the next 8
    /// instructions (gdb's <c>vCont;r</c> over a line), as a developer at a gdb prompt would.</summary>
    private static void Stretch(Lockstep l, int steps, string what)
    {
        for (int n = 0; n < steps; n++)
        {
            switch (n % 4)
            {
                case 1: l.Step(count: 5, what: $"{what}, count step {n}"); break;
                case 3: l.Step(range: new StepRange(l.Last.Nip, l.Last.Nip + 32), what: $"{what}, range step {n}"); break;
                default: l.Step(what: $"{what}, step {n}"); break;
            }
        }
    }

    [Fact]
    public void Host_stepping_the_booting_kernel_leaves_it_at_every_stop_as_an_undebugged_boot_is_at_the_same_count()
    {
        var kernel = ElfImage.Load(LinuxAssets.Get().Vmlinux);
        using var debuggedVm = Boot(kernel);
        using var freeVm = Boot(kernel);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(debuggedVm, new CoordinatorOptions(Deterministic: true)));
        var l = new Lockstep(coordinator, debuggedVm, freeVm, output);
        var clock = Stopwatch.StartNew();
        ulong Symbol(string name) => kernel.Symbols[name];

        // The early boot, translation off, from the kernel's first instruction.
        Assert.Equal(0UL, l.Last.Msr & (Msr.IR | Msr.DR));
        Stretch(l, 1500, "early boot");
        Assert.Equal(0UL, l.Last.Msr & (Msr.IR | Msr.DR));
        l.CompareMemory("after the early boot's steps");

        // The MMU switch-on: early_setup returns (start_here_multiplatform's bctrl), then its rfid enters start_here_common
        // with IR and DR on, whose Trace handler is at 0xC000…4D00 (AIL=3) from then on.
        ulong afterEarlySetup = 0;
        for (ulong a = Symbol("start_here_multiplatform"); a < Symbol("start_here_common"); a += 4)
            if (ReadWord(debuggedVm, a & 0x0FFFFFFFFFFFFFFF) == 0x4E800421) afterEarlySetup = a + 4; // bctrl
        Assert.NotEqual(0UL, afterEarlySetup);
        l.ContinueTo(afterEarlySetup);
        Stretch(l, 1500, "the MMU switch-on");
        Assert.True(l.SteppedIntoRelocation.Contains(0), "no step turned translation on");
        Assert.Equal(Msr.IR | Msr.DR, l.Last.Msr & (Msr.IR | Msr.DR));
        l.CompareMemory("after the MMU switch-on");

        // The first timer interrupt's exception path (interrupts on, a decrementer interrupt taken freely before it).
        l.ContinueTo(Symbol("timer_interrupt") + 8); // its local entry point (ELFv2): the interrupt code calls it there
        Stretch(l, 1500, "the timer interrupt");

        // A decrementer that falls due in a count step after a hypercall in the same count: the kernel printing to its
        // console (plpar_hcall_norets, H_PUT_TERM_CHAR) shortly before its timer falls due. The sc 1's step holds interrupts
        // (it arms no Trace); the steps after it must not, or the decrementer is taken late (6 M host steps of count steps
        // diverged so, another task running at the next compare).
        ulong hcall = Symbol("plpar_hcall_norets");
        while (ReadWord(debuggedVm, hcall & 0x0FFFFFFFFFFFFFFF) != 0x44000022) hcall += 4; // its sc 1
        int hcalls = l.ContinueToUntil(hcall, s => (int)s.Dec <= 5000 && (s.Msr & Msr.EE) != 0, 1000,
            "to a hypercall within 5000 instructions of the decrementer falling due");
        uint due = l.Last.Dec;
        l.Step(count: (int)due + 200, what: "the count step from a hypercall across the decrementer");
        for (int n = 0; n < 10 && l.Last.Dec <= due; n++) l.Step(count: 2000, what: $"count step {n} in the decrementer's handler");
        Assert.True(l.Last.Dec > due, "the decrementer was not taken in the count steps");
        output.WriteLine($"{hcalls} hypercalls, the last at DEC {due}; tb {l.Last.Tb}");
        l.CompareMemory("after the count steps across the decrementer");

        // Single, count and range steps across decrementers set to fall due a few instructions on (as a debugger's set $dec),
        // wherever the kernel is with MSR[EE]=1: each is taken where it falls due, its entry a stop or inside a step.
        for (int round = 0; round < 3; round++)
        {
            for (int n = 0; n < 200 && (l.Last.Msr & Msr.EE) == 0; n++) l.Step(count: 20, what: $"to MSR[EE]=1, round {round}");
            Assert.NotEqual(0UL, l.Last.Msr & Msr.EE);
            int entries = l.InterruptEntries;
            l.SetRegister(r => r.Dec = 3 + 7 * (uint)round);
            Stretch(l, 40, $"across a decrementer set to fall due, round {round}");
            // Taken, the kernel sets DEC again (its timer code, or its masked-interrupt path when interrupts are soft-disabled).
            for (int n = 0; n < 200 && (int)l.Last.Dec < 0; n++) l.Step(count: 50, what: $"until the kernel sets DEC again, round {round}");
            Assert.True((int)l.Last.Dec > 0, $"round {round}: the decrementer was not taken (DEC 0x{l.Last.Dec:x})");
            output.WriteLine($"round {round}: {l.InterruptEntries - entries} stops at an interrupt entry, tb {l.Last.Tb}, DEC 0x{l.Last.Dec:x}");
        }
        l.CompareMemory("after the decrementers");

        // A DSI taken during a step (the fault path): at the next D-form load whose base register is not r0, r1, r2 or r13, the
        // base is set (in both runs) to an address with no translation; the step ends at the DSI handler with SRR0, SRR1, DAR
        // and DSISR the guest's own, and the kernel's fault handling (an Oops: the last stretch) is stepped on and compared.
        uint load = 0;
        for (int n = 0; n < 2000; n++)
        {
            uint w = ReadWord(debuggedVm, l.Last.Nip & 0x0FFFFFFFFFFFFFFF);
            int ra = (int)(w >> 16) & 31;
            if ((w >> 26 is 32 or 34 or 40 || (w >> 26 == 58 && (w & 3) == 0)) && ra is not (0 or 1 or 2 or 13)) { load = w; break; }
            l.Step(what: $"to a load, step {n}");
        }
        Assert.NotEqual(0u, load);
        int baseRegister = (int)(load >> 16) & 31;
        ulong faultAt = l.Last.Nip;
        l.SetRegister(r => r.Gpr[baseRegister] = 0xC000000080000000); // 2 GiB into the linear map; the guest has 256 MiB
        var dsi = l.Step(what: "the load that faults");
        Assert.Equal(("Interrupted", InterruptVectors.HandlerAddress(InterruptKind.DataStorage, l.Last.Msr | Msr.IR | Msr.DR, l.Last.Lpcr)),
            (dsi.Event.StepCompletion, dsi.State.Nip));
        Assert.Equal(faultAt, dsi.State.Srr0);
        Assert.Equal(0xC000000080000000UL, dsi.State.Dar & ~0xFFFFUL);
        Stretch(l, 400, "the kernel's fault handling");
        l.CompareMemory("at the end");

        output.WriteLine($"{l.Stops} stops ({l.Compared} compared in full, {l.InterruptEntries} interrupt entries), {l.MemoryChecks} memory "
                         + $"comparisons, completions {string.Join(", ", l.Completions.Select(c => $"{c.Key} {c.Value}"))}; "
                         + $"tb {l.Last.Tb}; {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(l.Completions.GetValueOrDefault("Returned") > 0, "no step returned from an interrupt (rfid)");
        Assert.True(l.Compared > 4000, $"only {l.Compared} stops were compared");
    }

    /// <summary>Steps as <see cref="Stretch(Lockstep, int, string)"/> does until <paramref name="done"/> holds at a stop, at most
    /// <paramref name="steps"/> times; whether it came to hold.</summary>
    private static bool StretchUntil(Lockstep l, int steps, Func<VcpuState, bool> done, string what)
    {
        for (int n = 0; n < steps; n++)
        {
            if (done(l.Last)) return true;
            switch (n % 4)
            {
                case 1: l.Step(count: 5, what: $"{what}, count step {n}"); break;
                case 3: l.Step(range: new StepRange(l.Last.Nip, l.Last.Nip + 32), what: $"{what}, range step {n}"); break;
                default: l.Step(what: $"{what}, step {n}"); break;
            }
        }
        return done(l.Last);
    }

    private static bool InUserspace(VcpuState s) => (s.Msr & Msr.PR) != 0;

    /// <summary>
    /// Issue 13's invisibility on the kernel's paths between userspace and itself, as they come in the boot of the tests'
    /// busybox /init (<see cref="LinuxInitramfs"/>): the natural instruction storage interrupt (0x400, at 0xC000…4400 with
    /// AIL=3) that a userspace fetch from a page not mapped yet takes — the first instruction of /init after its exec (busybox's
    /// ELF entry), reached by a step of the kernel's rfid, which no breakpoint can catch there and the engine performs, then
    /// the pages glibc's startup runs into — and the system calls glibc makes with <c>scv 0</c> (entered at 0xC000…3000,
    /// system_call_vectored_common) or <c>sc</c> (0xC000…4C00), and the kernel's returns through <c>rfscv</c> and <c>rfid</c>.
    /// The debugged boot continues to an exit to userspace (a user breakpoint at every <c>rfscv</c> and <c>rfid</c> of the
    /// kernel's exit paths to userspace: the scv and sc paths, interrupt_return_srr_user), steps across it (to LR with CTR's
    /// MSR after rfscv, to SRR0 with SRR1's after rfid), steps userspace (single, count and range steps) until it enters the
    /// kernel, and steps on through the kernel's entry (from the scv vector into system_call_vectored_common) and 120 steps
    /// more; then the next round. At every stop it is compared with the undebugged twin, as in
    /// <see cref="Host_stepping_the_booting_kernel_leaves_it_at_every_stop_as_an_undebugged_boot_is_at_the_same_count"/> (a stop
    /// at a fault's entry, which retired nothing, against the entry the undebugged state takes), and its whole memory twice.
    /// The entries from userspace into the ISI and scv vectors and the returns through rfscv and rfid are counted and must be
    /// some of each, so the test cannot pass without crossing them. Then the same rounds from a forked child's first return
    /// (ret_from_fork_scv: rfscv with r3 = 0), later in /init: fork copies no PTE of a file-backed text page, so the child's
    /// rfscv returns to a page with no translation; no breakpoint can catch that end and the engine performs the rfscv (before
    /// it did, the step ran on freely through the ISI and the resume never ended).
    /// </summary>
    [Fact]
    public void Host_stepping_across_userspace_page_faults_and_system_calls_leaves_the_kernel_as_an_undebugged_boot_is()
    {
        var assets = LinuxAssets.Get();
        var kernel = ElfImage.Load(assets.Vmlinux);
        ulong init = ElfImage.Load(assets.Busybox).Entry;
        byte[] initramfs = LinuxInitramfs.Build(assets.Busybox);
        using var debuggedVm = Boot(kernel, initramfs: initramfs);
        using var freeVm = Boot(kernel, initramfs: initramfs);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(debuggedVm, new CoordinatorOptions(Deterministic: true)));
        var l = new Lockstep(coordinator, debuggedVm, freeVm, output);
        var clock = Stopwatch.StartNew();
        ulong Symbol(string name) => kernel.Symbols[name];
        string Where(VcpuState s) => InUserspace(s) ? $"0x{s.Nip:x} (userspace)" : kernel.Code.Describe(s.Nip, (s.Msr & Msr.IR) != 0) ?? $"0x{s.Nip:x}";

        // The kernel's exits to userspace: the rfscv and rfid of the scv path, the rfid of the sc path and of every other
        // interrupt's return to userspace.
        const uint rfscv = 0x4C0000A4, rfid = 0x4C000024;
        var exits = new List<ulong>();
        foreach (var (from, to) in ((string, string)[])[("system_call_vectored_common", "syscall_vectored_common_restart"),
                     ("system_call_common", "syscall_restart"), ("interrupt_return_srr_user", "interrupt_return_srr_user_restart")])
            for (ulong a = Symbol(from); a < Symbol(to); a += 4)
                if (ReadWord(debuggedVm, a & 0x0FFFFFFFFFFFFFFF) is rfscv or rfid) exits.Add(a);
        Assert.True(exits.Count >= 3, "the kernel's exits to userspace were not found");
        ulong isiVector = InterruptVectors.HandlerAddress(InterruptKind.InstructionStorage, Msr.IR | Msr.DR, l.Last.Lpcr | (3UL << 23));
        ulong scvCommon = Symbol("system_call_vectored_common"), scvCommonEnd = Symbol("syscall_vectored_common_restart");
        ulong scVector = InterruptVectors.HandlerAddress(InterruptKind.SystemCall, Msr.IR | Msr.DR, l.Last.Lpcr | (3UL << 23));

        // /init's first instruction: the kernel returns from its exec to busybox's entry, whose page is not mapped yet. The step
        // of the rfid ends there (the engine performs it), and the next one at the ISI, SRR0 the entry.
        l.ContinueToAny(exits, "continue to the first exit to userspace");
        output.WriteLine($"the first exit to userspace at {Where(l.Last)}, tb {l.Last.Tb}, {clock.Elapsed.TotalSeconds:0.0} s");
        var first = l.Step(what: "the first return to userspace");
        Assert.Equal(("Returned", init, Msr.PR), (first.Event.StepCompletion, first.State.Nip, first.State.Msr & Msr.PR));
        var fault = l.Step(what: "the fetch of /init's first instruction");
        Assert.Equal(("Interrupted", isiVector, init), (fault.Event.StepCompletion, fault.State.Nip, fault.State.Srr0));
        Stretch(l, 120, "the ISI's handling");
        l.CompareMemory("in /init's first page fault");

        int isiEntries = 1, scvEntries = 0, scEntries = 0, otherEntries = 0, rfscvReturns = 0, rfidReturns = 0, round = 0;
        // Continues to an exit to userspace, steps across it, steps userspace until it enters the kernel and on through the
        // kernel's entry; returns the state at the exit.
        VcpuState Round()
        {
            l.ContinueToAny(exits, $"round {round}: continue to an exit to userspace");
            var exit = l.Last;
            bool viaRfscv = ReadWord(debuggedVm, exit.Nip & 0x0FFFFFFFFFFFFFFF) == rfscv;
            var back = l.Step(what: $"round {round}: the return to userspace");
            // rfscv returns to LR with CTR's MSR, rfid to SRR0 with SRR1's.
            Assert.Equal(("Returned", Msr.PR, (viaRfscv ? exit.Lr : exit.Srr0) & ~3UL), (back.Event.StepCompletion, l.Last.Msr & Msr.PR, l.Last.Nip));
            if (viaRfscv) rfscvReturns++; else rfidReturns++;

            // Userspace until it enters the kernel (a count or a range step may end a few instructions into the entry).
            Assert.True(StretchUntil(l, 3000, s => !InUserspace(s), $"round {round}: userspace"), $"round {round}: userspace did not enter the kernel");
            var entry = l.Last;
            if (entry.Nip - isiVector < 0x80) isiEntries++;
            else if (entry.Nip - SystemCallVectoredEntry.Ail3Vector < 0x20) scvEntries++;
            else if (entry.Nip - scVector < 0x80) scEntries++;
            else otherEntries++;
            output.WriteLine($"round {round}: {Where(exit)} -> {Where(back.State)}; entered the kernel at {Where(entry)} "
                             + $"(SRR0 0x{entry.Srr0:x}, LR 0x{entry.Lr:x}), tb {entry.Tb}");

            // Through some of the kernel's entry: from the scv vector into system_call_vectored_common.
            if (entry.Nip - SystemCallVectoredEntry.Ail3Vector < 0x20)
                Assert.True(StretchUntil(l, 200, s => s.Nip - scvCommon < scvCommonEnd - scvCommon, $"round {round}: to system_call_vectored_common"),
                    $"round {round}: the steps from the scv vector did not reach system_call_vectored_common");
            Stretch(l, 120, $"round {round}: the kernel's entry");
            round++;
            return exit;
        }

        // glibc's startup in /init: its pages faulted in, its first system calls.
        while (round < 80 && (isiEntries < 6 || scvEntries < 8 || rfscvReturns < 4)) Round();

        // A forked child's first return to userspace: the shell's first fork (clone by scv) comes back in the child through
        // ret_from_fork_scv, which joins the scv path's exit: rfscv with r3 = 0.
        var fork = l.ContinueToAny([Symbol("ret_from_fork_scv"), Symbol("ret_from_fork")], "continue to a forked child's first return");
        output.WriteLine($"a child's first return from {Where(fork.State)}, tb {l.Last.Tb}, {clock.Elapsed.TotalSeconds:0.0} s");
        var child = Round();
        Assert.Equal(0UL, child.Gpr[3]);
        if (fork.State.Nip == Symbol("ret_from_fork_scv")) Assert.Equal(rfscv, ReadWord(debuggedVm, child.Nip & 0x0FFFFFFFFFFFFFFF));
        for (int n = 0; n < 8; n++) Round();
        l.CompareMemory("at the end");
        output.WriteLine($"{round} rounds: entries from userspace: {isiEntries} ISI, {scvEntries} scv, {scEntries} sc, {otherEntries} other; returns: "
                         + $"{rfscvReturns} rfscv, {rfidReturns} rfid; {l.Stops} stops ({l.Compared} compared in full, {l.InterruptEntries} at an "
                         + $"interrupt's entry, {l.InstructionStorageEntries} of them an ISI's, "
                         + $"{l.FaultEntriesAfterRetiring} a fault's at the end of a step that retired instructions), completions "
                         + $"{string.Join(", ", l.Completions.Select(c => $"{c.Key} {c.Value}"))}; tb {l.Last.Tb}; {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(isiEntries > 1 && scvEntries > 0 && rfscvReturns > 0 && rfidReturns > 0,
            "the stretch did not step into an ISI after /init's first, an scv, a return by rfscv and one by rfid");
        Assert.True(l.InstructionStorageEntries > 1, "no stop after /init's first was at an ISI's entry");
    }

    /// <summary>Steps vcpu <paramref name="vcpu"/> (or both in turn when null) <paramref name="steps"/> times, cycling single
    /// steps, count steps of 5 and range steps over the next 8 instructions, with <paramref name="locking"/>.</summary>
    private static void Stretch(Lockstep l, int? vcpu, int steps, SchedulerLocking locking, string what)
    {
        for (int n = 0; n < steps; n++)
        {
            int v = vcpu ?? n % 2;
            switch (n / (vcpu is null ? 2 : 1) % 4)
            {
                case 1: l.Step(count: 5, what: $"{what}, count step {n} of vcpu {v}", vcpu: v, locking: locking); break;
                case 3:
                    var at = l.LastOf(v).Nip;
                    l.Step(range: new StepRange(at, at + 32), what: $"{what}, range step {n} of vcpu {v}", vcpu: v, locking: locking);
                    break;
                default: l.Step(what: $"{what}, step {n} of vcpu {v}", vcpu: v, locking: locking); break;
            }
        }
    }

    /// <summary>Runs <paramref name="vm"/> undebugged, its vcpus in turn (vcpu 1 one tick at a time), until RTAS start-cpu has
    /// started vcpu 1 and it has retired its first instruction. Deterministic: two machines run so are equal.</summary>
    private static void RunUntilTheSecondaryStarts(SimulatedMachine vm)
    {
        while (vm.GetVcpu(1).InstructionsRetired == 0)
        {
            Assert.True(vm.GetVcpu(0).InstructionsRetired < 1_000_000_000, "vcpu 1 was not started");
            for (int v = 0; v < vm.VcpuCount; v++)
            {
                var exit = vm.GetVcpu(v).Run(v == 0 ? 10_000 : 1);
                Assert.True(exit.Reason is ExitReason.BudgetExpired or ExitReason.Idle, $"vcpu {v} exited with {exit}");
            }
        }
    }

    /// <summary>
    /// The same property on two vcpus, as the kernel brings up its secondary. Both machines boot undebugged, identically (vcpu 0
    /// for 10,000 ticks, vcpu 1 for one, in turn), until RTAS start-cpu has started vcpu 1 at generic_secondary_smp_init; from
    /// there the debugged one is driven through a deterministic coordinator: both vcpus stepped in turn, each while scheduler
    /// locking holds the other (vcpu 0 waiting in __cpu_up, vcpu 1 through its MMU switch-on into start_secondary), then each
    /// alone; both continued to smp_cpus_done ("smp: Brought up 1 node, 2 CPUs" printed); then each stepped in turn while the
    /// other runs its slice (scheduler locking off), which parks the running vcpu on the stepped one's breakpoints now and then
    /// (step-engine.md §4: re-entered invisibly, §6 invariant 5).
    /// <para>What the twin is compared with: an SMP guest's state depends on the interleaving of its vcpus, and no undebugged
    /// runner makes the coordinator's (its slices of 10,000 ticks, a step's slice ending at the step, the planting slices, a
    /// round completed after a stop). So the twin replays the debugged run's own interleaving, slice by slice
    /// (<see cref="InterleavingRecorder"/>: the deterministic mode runs one vcpu at a time, checked), and the property
    /// compared is that the debugged machine is where an undebugged machine whose vcpus retired the same instructions in the
    /// same order is: every architected register of both vcpus at every stop and at the end of every slice that ran out its
    /// budget, and the whole memory at a few stops. Without the replay (each twin vcpu brought to its timebase in turn) the
    /// runs part at the first continue.</para>
    /// <para>With scheduler locking off a continue slice that runs out its budget can leave the other vcpu between a larx and
    /// its stcx., its reservation held (the simulator slicing its own time is no host trip). A step of that vcpu begun there
    /// runs the rest of the sequence whole (<see cref="Lockstep.StepsBegunInsideASequence"/> counts them: this deterministic run
    /// has one, vcpu 0 at _raw_spin_lock_irqsave's bne- between its lwarx and stwcx.). A step of the instruction alone would end
    /// in a host trip that loses the reservation, and the stcx. would fail where the undebugged run's succeeds (the guest
    /// retries: 5 instructions more): before the engine ran such a step whole, that step made the runs part, vcpu 0's next
    /// slice ending elsewhere than the twin's.</para>
    /// </summary>
    [Fact]
    public void Host_stepping_both_vcpus_as_the_kernel_brings_up_its_secondary_leaves_them_as_an_undebugged_run_in_the_same_interleaving()
    {
        var kernel = ElfImage.Load(LinuxAssets.Get().Vmlinux);
        using var debuggedVm = Boot(kernel, vcpus: 2);
        using var freeVm = Boot(kernel, vcpus: 2);
        var console = new System.Text.StringBuilder();
        debuggedVm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(System.Text.Encoding.ASCII.GetString(bytes)); };
        var clock = Stopwatch.StartNew();
        Parallel.Invoke(() => RunUntilTheSecondaryStarts(debuggedVm), () => RunUntilTheSecondaryStarts(freeVm));
        output.WriteLine($"vcpu 1 started: vcpu 0 retired {debuggedVm.GetVcpu(0).InstructionsRetired}, {clock.Elapsed.TotalSeconds:0.0} s");

        var interleaving = new InterleavingRecorder(debuggedVm);
        var coordinator = Sys.ActorOf(VmCoordinator.Props(interleaving, new CoordinatorOptions(Deterministic: true)));
        var l = new Lockstep(coordinator, debuggedVm, freeVm, output, interleaving);
        for (int v = 0; v < 2; v++) Assert.Empty(freeVm.GetVcpu(v).GetRegisters().Differences(l.LastOf(v)));
        l.CompareMemory("as vcpu 1 starts");
        void Where(string when) => output.WriteLine($"{when}: " + string.Join("; ", Enumerable.Range(0, 2).Select(v =>
            $"vcpu {v} at {kernel.Code.Describe(l.LastOf(v).Nip, (l.LastOf(v).Msr & Msr.IR) != 0)}, tb {l.LastOf(v).Tb}")));
        Where("vcpu 1 started");
        Assert.Equal(0UL, l.LastOf(1).Msr & (Msr.IR | Msr.DR));

        // Both vcpus stepped in turn, each while scheduler locking holds the other: vcpu 0 waits in __cpu_up for vcpu 1's
        // callin, vcpu 1 goes from generic_secondary_smp_init through its MMU switch-on into start_secondary.
        Stretch(l, vcpu: null, 600, SchedulerLocking.On, "both vcpus in turn");
        Assert.True(l.SteppedIntoRelocation.Contains(1), "no step of vcpu 1 turned translation on");
        Where("after both vcpus' steps in turn");
        Stretch(l, vcpu: 1, 300, SchedulerLocking.On, "vcpu 1 alone");
        Stretch(l, vcpu: 0, 300, SchedulerLocking.On, "vcpu 0 alone");
        Where("after each vcpu's steps alone");
        l.CompareMemory("after the steps with scheduler locking on");

        // Both continue until vcpu 0 is past the bring-up: smp_init has printed its line and calls smp_cpus_done.
        l.ContinueTo(kernel.Symbols["smp_cpus_done"] + 8); // its local entry point (ELFv2)
        lock (console) Assert.Contains("smp: Brought up 1 node, 2 CPUs", console.ToString());
        Where("at smp_cpus_done");
        l.CompareMemory("at smp_cpus_done");

        // Each vcpu stepped while the other runs its slice (scheduler locking off): the kernel's init on vcpu 0, vcpu 1 idle or
        // running what the scheduler gives it.
        Stretch(l, vcpu: null, 400, SchedulerLocking.Off, "scheduler locking off");
        Where($"after the steps with scheduler locking off ({l.StepsBegunInsideASequence} began inside an atomic sequence, its reservation held)");
        l.CompareMemory("after the steps with scheduler locking off");

        output.WriteLine($"{l.Stops} stops ({l.Compared} vcpu states compared in full, {l.InterruptEntries} interrupt entries), "
                         + $"{l.SlicesCompared} slice ends compared, {l.MemoryChecks} memory comparisons, completions "
                         + $"{string.Join(", ", l.Completions.Select(c => $"{c.Key} {c.Value}"))}; {clock.Elapsed.TotalSeconds:0.0} s");
        var described = l.Describe();
        output.WriteLine($"{described.Parks} parks on the other vcpu's step breakpoints, {described.Reentries} re-entries");
        Assert.True(described.Parks > 0, "no vcpu parked on the other's step breakpoints: no re-entry was compared");
        Assert.True(l.Compared > 3000, $"only {l.Compared} vcpu states were compared at stops");
        Assert.True(l.SlicesCompared > 1000, $"only {l.SlicesCompared} slice ends were compared");
        Assert.True(l.StepsBegunInsideASequence > 0, "no step began inside an atomic sequence with its reservation held");
    }

    private static uint ReadWord(SimulatedMachine vm, ulong ra)
    {
        Span<byte> b = stackalloc byte[4];
        vm.ReadMemory(ra, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
    }
}
