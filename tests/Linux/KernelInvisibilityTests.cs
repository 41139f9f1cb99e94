using System.Diagnostics;
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
/// run's entry into it).
/// </summary>
[Collection("linux")]
public sealed class KernelInvisibilityTests(ITestOutputHelper output) : TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly DateTimeOffset Clock = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private sealed class Lockstep(IActorRef debugged, SimulatedMachine debuggedVm, SimulatedMachine freeVm, ITestOutputHelper output)
    {
        private readonly IVcpu _free = freeVm.GetVcpu(0);
        public int Stops, Compared, InterruptEntries, MemoryChecks;
        public readonly Dictionary<string, int> Completions = [];
        public VcpuState Last = debuggedVm.GetVcpu(0).GetRegisters();
        public bool SteppedIntoRelocation;

        public Stopped Resume(Resume resume, string what)
        {
            var reply = debugged.Ask<object>(resume, Timeout).Result;
            var stop = Assert.IsType<Stopped>(reply);
            Check(stop, what);
            return stop;
        }

        public Stopped Step(int count = 1, StepRange? range = null, string what = "step") =>
            Resume(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false, StepCount: count,
                Ranges: range is null ? null : new Dictionary<int, StepRange> { [0] = range }), what);

        /// <summary>Continues to a user breakpoint at <paramref name="address"/> until <paramref name="enough"/> holds at a stop.</summary>
        public int ContinueToUntil(ulong address, Func<VcpuState, bool> enough, int maxHits, string what)
        {
            debugged.Ask<BreakpointChanged>(new InsertBreakpoint(address), Timeout).Wait();
            int hits = 0;
            for (; !enough(Last); hits++)
            {
                Assert.True(hits < maxHits, $"{what}: not within {maxHits} stops at 0x{address:x} (tb {Last.Tb})");
                Resume(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }, HoldAsyncInterrupts: false), $"{what}, continue");
            }
            debugged.Ask<BreakpointChanged>(new RemoveBreakpoint(address), Timeout).Wait();
            return hits;
        }

        public Stopped ContinueTo(ulong address)
        {
            debugged.Ask<BreakpointChanged>(new InsertBreakpoint(address), Timeout).Wait();
            var stop = Resume(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }, HoldAsyncInterrupts: false),
                $"continue to 0x{address:x}");
            Assert.True(stop.Event.Reason == StopReason.Breakpoint && ((stop.State.Nip ^ address) & 0x0FFFFFFFFFFFFFFF) == 0, $"the continue to 0x{address:x} ended {stop.Event}");
            debugged.Ask<BreakpointChanged>(new RemoveBreakpoint(address), Timeout).Wait();
            return stop;
        }

        /// <summary>Brings the free run to the stop's timebase and compares. A stop that retired nothing since the last one
        /// entered an interrupt (the undebugged run at that count is still before it): its SRR0 must be where the free run is,
        /// and the next stop, after the handler's first instruction, compares everything.</summary>
        private void Check(Stopped stop, string what)
        {
            Stops++;
            var s = stop.State;
            Assert.True(stop.Event.Reason is StopReason.StepCompleted or StopReason.Breakpoint, $"{what}: {stop.Event}");
            if (stop.Event.StepCompletion is { } c) Completions[c] = Completions.GetValueOrDefault(c) + 1;
            var free = Advance(s.Tb, what);
            string at = $"{what} from 0x{Last.Nip:x} to 0x{s.Nip:x} (tb {s.Tb}, msr 0x{s.Msr:x}, {stop.Event.StepCompletion})";
            if (free.Nip != s.Nip && AsynchronousEntry(free, s) is { } entered)
            {
                // The step ended at the first instruction of the handler of an interrupt that fell due as it ended (after the
                // instructions a count or a range retired, or none); the undebugged run at that count takes it at its next
                // instruction: the entry's state must be what that entry makes of the undebugged state, and the next stop
                // compares everything.
                InterruptEntries++;
                var diff = entered.Differences(s);
                Assert.True(diff.Count == 0, $"{at}: an interrupt entry unlike the undebugged run's: {string.Join("; ", diff)}");
            }
            else if (s.Tb == Last.Tb && s.Nip != Last.Nip && free.Nip != s.Nip)
            {
                // An instruction-caused interrupt (a fault: the instruction did not complete, no tick): the undebugged run is
                // still before it. SRR0 must be where it is and nothing but what the entry writes may differ; the next stop,
                // after the handler's first instruction, compares everything.
                InterruptEntries++;
                Assert.True(s.Srr0 == free.Nip, $"{at}: an interrupt entry with SRR0 0x{s.Srr0:x}, the undebugged run is at 0x{free.Nip:x}");
                string[] entryWrites = ["nip:", "msr:", "srr0:", "srr1:", "dar:", "dsisr:"];
                var diff = free.Differences(s).Where(d => !entryWrites.Any(d.StartsWith)).ToList();
                Assert.True(diff.Count == 0, $"{at}: an interrupt entry that changed more than the entry writes: {string.Join("; ", diff)}");
            }
            else
            {
                var diff = free.Differences(s);
                Assert.True(diff.Count == 0, $"{at}: differs from the undebugged run: {string.Join("; ", diff)} (retired {debuggedVm.GetVcpu(0).InstructionsRetired} vs {_free.InstructionsRetired})");
                Compared++;
            }
            if ((Last.Msr & (Msr.IR | Msr.DR)) == 0 && (s.Msr & (Msr.IR | Msr.DR)) == (Msr.IR | Msr.DR) && stop.Event.Reason == StopReason.StepCompleted)
                SteppedIntoRelocation = true;
            Last = s;
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
            var free = _free.GetRegisters();
            change(free);
            _free.SetRegisters(free);
            Last = written.State;
            var diff = free.Differences(Last);
            Assert.True(diff.Count == 0, $"the register write left the runs apart: {string.Join("; ", diff)}");
        }

        private VcpuState Advance(ulong tb, string what)
        {
            for (int k = 0; ; k++)
            {
                var now = _free.GetRegisters();
                Assert.True(now.Tb <= tb, $"{what}: the undebugged run is past the stop's timebase ({now.Tb} > {tb})");
                if (now.Tb == tb) return now;
                var exit = _free.Run((long)(tb - now.Tb));
                Assert.True(exit.Reason is ExitReason.BudgetExpired or ExitReason.Idle && k < 1000, $"{what}: the undebugged run exited with {exit}");
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

    private static SimulatedMachine Boot(ElfImage kernel)
    {
        var vm = new SimulatedMachine(new MachineOptions(1, 256UL << 20, HypervisorFlavour.Hv, RealTimeClock: Clock));
        LinuxBoot.Load(vm, new LinuxBootRequest(kernel), MachineOptions.TimebaseFrequency);
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
        Assert.True(l.SteppedIntoRelocation, "no step turned translation on");
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

    private static uint ReadWord(SimulatedMachine vm, ulong ra)
    {
        Span<byte> b = stackalloc byte[4];
        vm.ReadMemory(ra, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
    }
}
