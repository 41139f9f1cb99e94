using ActorStep.Actors.Vm;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Differential;
using Akka.Actor;
using Xunit.Abstractions;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// ActorStep's steps of the Debian kernel on QEMU (the QEMU backend: MSR[SE], Z0 at the Trace handler, the interrupt undone)
/// against QEMU's own step of a twin started identically with the determinism options: after every step all GPRs, NIP, MSR,
/// CR, LR, CTR, XER, SRR0 and SRR1 must agree. Nothing here was written by ActorStep: the kernel is Debian's, the reference
/// is QEMU's gdbstub step.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuStepTwinTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("start_kernel", 3000, 0u)]    // early boot: spin locks (atomic sequences), the console, no interrupts yet
    [InlineData("timer_interrupt", 1500, 0u)] // the decrementer's handler: irq work, the rfid back
    [InlineData("console_init", 1500, 300u)]  // interrupts on: DEC set to fire within the steps, so a step ends at the 0x900 entry
    public void StepsOfTheKernelOnQemuEqualQemusOwnStepsOfATwin(string symbol, int steps, uint decrementer)
    {
        var args = QemuLinux.Arguments(vcpus: 1, deterministic: true);
        var created = new QemuBackend().Create(new VmImageRequest(null, null, 1, 0, HypervisorFlavour.Hv, new QemuSource(null, args)));
        var vm = (QemuVm)created.Machine;
        var console = new System.Text.StringBuilder();
        vm.ConsoleOutput += (_, bytes) => { lock (console) console.Append(System.Text.Encoding.Latin1.GetString(bytes)); };
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        using var twin = QemuTarget.StartSystem(args, registersLittleEndian: true);
        try
        {
            // The twin steps with interrupts allowed, as ActorStep must on QEMU (it cannot hold them during a step).
            Assert.Equal("OK", twin.Rsp.Request("Qqemu.sstep=1"));
            ulong at = QemuLinux.LocalEntry(symbol);
            Ask<BreakpointChanged>(coordinator, new InsertBreakpoint(at));
            var hit = Ask<Stopped>(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }));
            Assert.Equal(StopReason.Breakpoint, hit.Event.Reason);
            Assert.Equal(at, hit.Event.Nip);
            Ask<BreakpointChanged>(coordinator, new RemoveBreakpoint(at));
            twin.InsertBreakpoint(at);
            Assert.StartsWith("T05", twin.Continue(Timeout));
            twin.RemoveBreakpoint(at);
            if (decrementer != 0)
            {
                // The same decrementer on both (deterministic: with -icount the timebase follows the instruction count).
                Assert.NotEqual(0UL, hit.State.Msr & Msr.EE);
                var state = hit.State.Clone();
                state.Dec = decrementer;
                Ask<Actors.Vcpu.VcpuProtocol.Registers>(coordinator, new WriteRegisters(0, state));
                twin.WriteRegister("dec", decrementer);
            }

            var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false);
            var started = DateTime.UtcNow;
            long trips = vm.Stub.RoundTrips;
            int sequences = 0, interrupts = 0;
            for (int n = 0; n < steps; n++)
            {
                var before = twin.ReadCore();
                uint insn = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(twin.ReadMemory(before.Pc, 4));
                var stop = Ask<Stopped>(coordinator, step);
                Assert.True(stop.Event.Reason == StopReason.StepCompleted, $"step {n} from 0x{before.Pc:x}: {stop.Event}");
                if (stop.Event.StepCompletion == nameof(Actors.Engine.TraceStep.Completion.Interrupted)) interrupts++;
                Assert.StartsWith("T05", twin.Step());
                if (AtomicSequences.IsLoadAndReserve(insn))
                {
                    // ActorStep took the larx … stcx. sequence as one step (a host trip would lose the reservation); QEMU's own
                    // step keeps it, so the twin steps through the sequence to the same point.
                    sequences++;
                    for (int k = 0; k < AtomicSequences.Window + 1 && twin.ReadCore().Pc != stop.State.Nip; k++) Assert.StartsWith("T05", twin.Step());
                }
                Compare(n, before.Pc, twin, stop.State);
            }
            double seconds = (DateTime.UtcNow - started).TotalSeconds;
            output.WriteLine($"{steps} steps from {symbol}: {steps / seconds:0} steps/s (the twin's own steps and reads included), " +
                             $"{(vm.Stub.RoundTrips - trips) / (double)steps:0.0} round trips per ActorStep step; {sequences} atomic sequences, {interrupts} steps ended at an interrupt");
            if (symbol == "start_kernel") Assert.True(sequences > 0, "the kernel's boot path takes locks: some steps start at a load-and-reserve");
            if (decrementer != 0) Assert.True(interrupts > 0, "the decrementer fires within the steps: some step ends at its interrupt");

            // Then both run on, to the kernel's panic (no root file system: this guest has none), and print the same console.
            ulong panic = QemuLinux.LocalEntry("panic");
            Ask<BreakpointChanged>(coordinator, new InsertBreakpoint(panic));
            var end = Ask<Stopped>(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }));
            Assert.True(end.Event.Reason == StopReason.Breakpoint && end.Event.Nip == panic, $"{end.Event}");
            twin.InsertBreakpoint(panic);
            Assert.StartsWith("T05", twin.Continue(Timeout));
            Compare(steps, panic, twin, end.State);
            string Lines(string text) => string.Join('\n', text.Replace("\r", "").Split('\n').Where(l => l.Length > 0));
            Assert.True(SpinWait.SpinUntil(() => { lock (console) return Lines(console.ToString()) == Lines(twin.Console); }, TimeSpan.FromSeconds(10)),
                $"consoles differ:\n--- ActorStep's VM\n{console}\n--- the twin\n{twin.Console}");
            lock (console) Assert.Contains("Linux version", console.ToString());
        }
        finally
        {
            this.Release(coordinator, vm);
        }
    }

    [Fact]
    public void AKernelBreakpointIsHitOnAFourVcpuQemuVmAndEveryVcpuReadsBack()
    {
        var args = QemuLinux.Arguments(vcpus: 4, deterministic: false);
        var vm = (QemuVm)new QemuBackend().Create(new VmImageRequest(null, null, 4, 0, HypervisorFlavour.Hv, new QemuSource(null, args))).Machine;
        var coordinator = Sys.ActorOf(VmCoordinator.Props(vm));
        try
        {
            Assert.Equal(4, vm.VcpuCount);
            Assert.Equal(1UL << 30, vm.MemorySize);
            ulong at = QemuLinux.LocalEntry("start_kernel");
            Ask<BreakpointChanged>(coordinator, new InsertBreakpoint(at));
            var all = Enumerable.Range(0, 4).ToDictionary(v => v, _ => VcpuAction.Continue);
            var hit = Ask<Stopped>(coordinator, new Resume(all));
            Assert.True(hit.Event.Reason == StopReason.Breakpoint && hit.Event.Nip == at, $"{hit.Event}");
            Assert.Equal(0, hit.Event.Vcpu); // the boot vcpu; the others wait for RTAS start-cpu
            Assert.Equal([at], vm.PlantedBreakpoints);
            var step = Ask<Stopped>(coordinator, new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false));
            Assert.True(step.Event.Reason == StopReason.StepCompleted && step.Event.Nip == at + 4, $"{step.Event}");
            Assert.Equal(0UL, step.State.Msr & Msr.SE);
            Assert.Equal([at], vm.PlantedBreakpoints); // the step's handler breakpoint is gone, the user's stays
        }
        finally
        {
            this.Release(coordinator, vm);
        }
    }

    private static void Compare(int n, ulong from, QemuTarget twin, VcpuState actual)
    {
        var core = twin.ReadCore();
        var diffs = new List<string>();
        void Check(string name, ulong expected, ulong got) { if (expected != got) diffs.Add($"{name}: twin 0x{expected:x}, ActorStep 0x{got:x}"); }
        for (int i = 0; i < 32; i++) Check($"r{i}", core.Gpr[i], actual.Gpr[i]);
        Check("nip", core.Pc, actual.Nip); Check("msr", core.Msr, actual.Msr); Check("cr", core.Cr, actual.Cr);
        Check("lr", core.Lr, actual.Lr); Check("ctr", core.Ctr, actual.Ctr); Check("xer", core.Xer, actual.Xer);
        Check("srr0", twin.ReadRegister("srr0"), actual.Srr0); Check("srr1", twin.ReadRegister("srr1"), actual.Srr1);
        Assert.True(diffs.Count == 0, $"after step {n} from 0x{from:x}: " + string.Join("; ", diffs));
    }

    private static T Ask<T>(IActorRef coordinator, object message)
    {
        var reply = coordinator.Ask<object>(message, Timeout).Result;
        return reply is T t ? t : throw new Xunit.Sdk.XunitException($"{message} answered {reply}");
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class QemuCollection
{
    /// <summary>Tests that boot the Debian kernel under QEMU: one at a time (each costs seconds of both cores).</summary>
    public const string Name = "QEMU with the Debian kernel";
}
