using System.Buffers.Binary;
using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine;
using Akka.Actor;
using Xunit.Sdk;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Host-steps one guest image through a <see cref="VmCoordinator"/> on each of several backends, in lockstep with a
/// reference: the same image on the same interpreter, stopped after every instruction by its hardware single-step,
/// with no engine and no coordinator. At every stop each backend's registers and the compared memory must equal the
/// reference's and, when there are several backends, the first backend's (step-engine.md §6 invariants 1 and 2). On
/// a backend without the hardware single-step capability (the trace-interrupt technique), each step must also have
/// ended the way <see cref="TraceStep.Plan"/>, called on the state before the step, says that instruction ends
/// (<see cref="ExpectedCompletion"/>): the stop's <see cref="StopEvent.StepCompletion"/> is compared with it. A step that
/// starts at a load-and-reserve runs the whole atomic sequence (<see cref="StepPlan.Sequence"/>): the reference runs on, one
/// instruction at a time, to the first end point of that plan it reaches. The reference keeps its reservation across its
/// single steps (they model the undebugged machine, not host trips).
/// </summary>
internal static class HostStepLockstep
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>What a lockstep run ended with: steps compared, the reference's final state and memory, each backend's,
    /// and how many steps of each completion kind the trace-interrupt backends reported.</summary>
    public sealed record Outcome(
        int Steps,
        VcpuState ReferenceFinal,
        byte[] ReferenceMemory,
        IReadOnlyDictionary<HypervisorFlavour, (VcpuState State, byte[] Memory)> Final,
        IReadOnlyDictionary<TraceStep.Completion, int> Completions);

    /// <param name="what">names the program in failure messages (its seed)</param>
    /// <param name="memory">guest real-address range compared at every stop</param>
    /// <param name="program">appended to a state difference (the program's source)</param>
    public static Outcome Run(ActorSystem sys, ElfImage image, string what, IReadOnlyList<HypervisorFlavour> backends,
        bool allowInterrupts, (ulong Ra, int Length) memory, string program = "", int maxSteps = 20_000, ulong memorySize = 16UL << 20,
        VcpuRunModel runModel = VcpuRunModel.IndependentVcpus)
    {
        var options = new MachineOptions(Vcpus: 1, MemorySize: memorySize);
        var reference = SimulatedMachine.Load(image, options with { Flavour = HypervisorFlavour.Pr, HostTripKeepsReservation = true });
        var refVcpu = reference.GetVcpu(0);
        refVcpu.SetGuestDebug(GuestDebug.SingleStep);
        refVcpu.HoldAsyncInterrupts = !allowInterrupts;
        TraceStep.Translate translate = (ulong ea, ulong msr, out ulong ra) => refVcpu.TryTranslate(ea, msr, AccessKind.Fetch, out ra);
        uint Fetch(ulong ra, bool le)
        {
            Span<byte> b = stackalloc byte[4];
            reference.ReadMemory(ra, b);
            return le ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
        }

        var debugged = backends.Select(f =>
        {
            var vm = SimulatedMachine.Load(image, options with { Flavour = f });
            IVirtualMachine backend = runModel == VcpuRunModel.AllStop ? new AllStopMachine(vm) : vm;
            return (Flavour: f, Trace: !vm.Capabilities.HardwareSingleStep, Coordinator: sys.ActorOf(VmCoordinator.Props(backend)));
        }).ToList();
        var completions = Enum.GetValues<TraceStep.Completion>().ToDictionary(c => c, _ => 0);
        var resume = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: !allowInterrupts);
        try
        {
            for (int n = 0; n < maxSteps; n++)
            {
                var before = refVcpu.GetRegisters();
                var plan = TraceStep.Plan(before, translate, Fetch, allowAsync: allowInterrupts);
                // An atomic sequence runs on until the vcpu fetches an end point of its plan: an interrupt that falls due inside it
                // or as it ends is taken where it falls due and its handler runs on the way (TraceStep.PlanAtomicSequence).
                var exit = refVcpu.Run(1);
                for (int k = 0; plan.Sequence is not null && exit.Reason == ExitReason.SingleStep
                                && !FetchesEndPoint(plan, refVcpu.GetRegisters(), translate, allowInterrupts); k++)
                {
                    Assert.True(k < 100_000, $"{what}, step {n}: the reference did not reach an end point of the atomic sequence at 0x{before.Nip:x}");
                    exit = refVcpu.Run(1);
                }
                string at = $"{what}, step {n} from 0x{before.Nip:x} (msr 0x{before.Msr:x}, {Disassembler.Format(plan.Instruction, before.Nip)})";
                var stops = debugged.Select(d => (d, Stop: Ask(d.Coordinator, resume, $"{at}: the {d.Flavour} step"))).ToList();
                if (exit.Reason == ExitReason.Stopped)
                {
                    foreach (var (d, stop) in stops)
                        Assert.True(stop.Event.Reason == StopReason.GuestStopped, $"{at}: the reference stopped, {d.Flavour} reported {stop.Event}");
                    var refMemory = Read(reference, memory);
                    var final = debugged.ToDictionary(d => d.Flavour,
                        d => (Registers(d.Coordinator), Memory(d.Coordinator, memory)));
                    return new Outcome(n, refVcpu.GetRegisters(), refMemory, final, completions);
                }
                Assert.True(exit.Reason == ExitReason.SingleStep, $"{at}: the reference exited with {exit}");

                var expected = refVcpu.GetRegisters();
                var expectedMemory = Read(reference, memory);
                TraceStep.Completion? planned = null;
                VcpuState? first = null;
                foreach (var (d, stop) in stops)
                {
                    Assert.True(stop.Event.Reason == StopReason.StepCompleted, $"{at}: {d.Flavour} reported {stop.Event}");
                    var actual = Registers(d.Coordinator);
                    var diff = expected.Differences(actual);
                    Assert.True(diff.Count == 0, $"{at}: {d.Flavour} differs from the undebugged machine: {string.Join("; ", diff)}\n{program}");
                    if (first is not null)
                    {
                        var across = first.Differences(actual);
                        Assert.True(across.Count == 0, $"{at}: {d.Flavour} differs from {debugged[0].Flavour}: {string.Join("; ", across)}");
                    }
                    first ??= actual;
                    Assert.True(expectedMemory.AsSpan().SequenceEqual(Memory(d.Coordinator, memory)),
                        $"{at}: {d.Flavour}: guest memory at 0x{memory.Ra:x} differs from the undebugged machine's");
                    if (!d.Trace) continue;
                    // §6 invariant 2 and §3 point 2: the step ended at one of its plan's end points, the kind the plan
                    // gives for where the undebugged machine went.
                    planned ??= ExpectedCompletion(plan, before, expected, translate, at);
                    Assert.True(stop.Event.StepCompletion == planned.ToString(),
                        $"{at}: {d.Flavour} ended {stop.Event.StepCompletion}, its plan expects {planned} (end points: {Describe(plan)})");
                    Assert.Equal(1, stop.Event.Steps);
                    completions[planned.Value]++;
                }
            }
            throw new XunitException($"{what}: the program did not end within {maxSteps} steps");
        }
        finally
        {
            foreach (var d in debugged) sys.Stop(d.Coordinator);
        }
    }

    /// <summary>
    /// How a host step of the instruction <paramref name="plan"/> describes must end, given where the undebugged machine
    /// went (<paramref name="after"/>): at the end point of the plan it reached — the Trace handler of the guest's own
    /// Trace (GuestTrace), an interrupt handler (Interrupted), rfid's target (Returned), a successor (Completed) — or,
    /// when it reached none of them, at the Trace handler the engine undoes (Completed) if the plan arms a Trace, or at
    /// an rfid the engine performs itself (Returned: its target is its own address or has no translation).
    /// </summary>
    public static TraceStep.Completion ExpectedCompletion(StepPlan plan, VcpuState before, VcpuState after, TraceStep.Translate translate, string at)
    {
        var end = translate(after.Nip, after.Msr, out ulong ra) ? plan.EndPointAt(ra) : null;
        if (end is null)
        {
            if ((plan.Effects & InstructionEffects.ReturnFromInterrupt) != 0 && (before.Msr & Msr.PR) == 0)
                return TraceStep.Completion.Returned;
            if (plan.ArmTrace && !plan.GuestSe && plan.EndPoints.Any(e => e.Kind == EndPointKind.TraceHandler))
                return TraceStep.Completion.Completed;
            throw new XunitException($"{at}: the undebugged machine went to 0x{after.Nip:x} (msr 0x{after.Msr:x}), where the plan has no end point: {Describe(plan)}");
        }
        return end.Kind switch
        {
            EndPointKind.TraceHandler when plan.GuestSe => TraceStep.Completion.GuestTrace,
            EndPointKind.TraceHandler => throw new XunitException(
                $"{at}: the undebugged machine reached the Trace handler 0x{after.Nip:x} while the guest was not tracing itself: {Describe(plan)}"),
            EndPointKind.InterruptHandler => TraceStep.Completion.Interrupted,
            EndPointKind.ReturnTarget => TraceStep.Completion.Returned,
            _ => TraceStep.Completion.Completed,
        };
    }

    /// <summary>The vcpu's next fetch is at an end point of the plan: it is at one, and no asynchronous interrupt is deliverable
    /// there first (one that is would be taken before the fetch).</summary>
    private static bool FetchesEndPoint(StepPlan plan, VcpuState s, TraceStep.Translate translate, bool allowInterrupts) =>
        translate(s.Nip, s.Msr, out ulong ra) && plan.EndPointAt(ra) is not null && !(allowInterrupts && TraceStep.AsyncDeliverable(s));

    /// <summary>Runs the image with no debug facility at all (no single-step, no breakpoints, no coordinator) until the
    /// guest stops itself; returns its final registers and the memory range.</summary>
    public static (VcpuState State, byte[] Memory) FreeRun(ElfImage image, (ulong Ra, int Length) memory, ulong memorySize = 16UL << 20)
    {
        var vm = SimulatedMachine.Load(image, new MachineOptions(Vcpus: 1, MemorySize: memorySize));
        var vcpu = vm.GetVcpu(0);
        for (int slices = 0; ; slices++)
        {
            Assert.True(slices < 100, "the free run did not stop within 100 slices of 100,000 instructions");
            var exit = vcpu.Run(100_000);
            if (exit.Reason == ExitReason.Stopped) break;
            Assert.True(exit.Reason == ExitReason.BudgetExpired, $"the free run exited with {exit}");
        }
        return (vcpu.GetRegisters(), Read(vm, memory));
    }

    public static string Describe(StepPlan plan) =>
        $"[{string.Join(", ", plan.EndPoints.Select(e => $"{e.Kind}{(e.Interrupt is { } k ? $" {k}" : "")} 0x{e.EffectiveAddress:x}"))}]"
        + $"{(plan.ArmTrace ? ", Trace armed" : "")}{(plan.GuestSe ? ", guest SE" : "")}";

    private static Stopped Ask(IActorRef coordinator, object message, string what)
    {
        object reply;
        try
        {
            reply = coordinator.Ask<object>(message, Timeout).Result;
        }
        catch (AggregateException e)
        {
            throw new XunitException($"{what} never ended: {e.InnerException?.Message}");
        }
        return Assert.IsType<Stopped>(reply);
    }

    private static VcpuState Registers(IActorRef coordinator) =>
        coordinator.Ask<Actors.Vcpu.VcpuProtocol.Registers>(new ReadRegisters(0), Timeout).Result.State;

    private static byte[] Memory(IActorRef coordinator, (ulong Ra, int Length) memory) =>
        coordinator.Ask<MemoryRead>(new ReadMemory(memory.Ra, memory.Length, null), Timeout).Result.Data;

    private static byte[] Read(SimulatedMachine vm, (ulong Ra, int Length) memory)
    {
        var data = new byte[memory.Length];
        vm.ReadMemory(memory.Ra, data);
        return data;
    }
}
