using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Atomic sequences (issue 12, item 2) through the vcpu engine driven directly, with no ActorSystem: a step that starts at a
/// load-and-reserve runs the whole sequence through its store-conditional, because every other step is a trip to the host,
/// which loses the reservation (on QEMU, on a real host, and on the simulator, which models one). On both flavours: the
/// hardware step of KVM-PR is a host trip too.
/// </summary>
public class AtomicSequenceEngineTests
{
    /// <summary>The guest's vectors: a DSI handler that skips the faulting instruction, a Trace handler.</summary>
    private const string Vectors = """
            .org 0x300
        dsi_handler:
            mfsrr0 30
            addi 30, 30, 4
            mtsrr0 30
            rfid
            .org 0xD00
        trace_handler:
            addi 31, 31, 1
            rfid
            .org 0x5000
            .globl _start
        _start:
        """;

    private const ulong Word = 0x6000;

    /// <summary>A counter incremented by a lwarx/addi/stwcx./bne- retry loop, then again and again.</summary>
    public const string IncrementLoop = Vectors + """
            li 9, 0x6000
        retry:
            lwarx 5, 0, 9
            addi 5, 5, 1
            stwcx. 5, 0, 9
            bne- retry
        done:
            addi 6, 6, 1
            b retry
            .org 0x6000
            .long 41
        """;

    private const string DoublewordLoop = Vectors + """
            li 9, 0x6000
        retry:
            ldarx 5, 0, 9
            addi 5, 5, 1
            stdcx. 5, 0, 9
            bne- retry
        done:
            b done
            .org 0x6000
            .quad 0x100000000
        """;

    /// <summary>A test-and-set lock (demo.s's spin_lock): when the word is taken, the branch inside the sequence leaves it.</summary>
    private static string TestAndSet(uint lockWord) => Vectors + $$"""
            li 9, 0x6000
        lock:
            lwarx 5, 0, 9
            cmpwi 5, 0
            bne- busy
            li 5, 1
            stwcx. 5, 0, 9
            bne- lock
        locked:
            b locked
        busy:
            b busy
            .org 0x6000
            .long {{lockWord}}
        """;

    private sealed record Loaded(ElfImage Image, SimulatedMachine Vm, BreakpointTable Table)
    {
        public VcpuEngine Engine() => new(Vm, 0, Table);
        public IVcpu Vcpu => Vm.GetVcpu(0);
        public uint Memory(ulong ra) => Vm.Memory.ReadUInt32(ra, littleEndian: true);
        public ulong Sym(string name) => Image.Symbol(name);
    }

    private static Loaded Load(string source, HypervisorFlavour flavour)
    {
        var image = GuestAssembler.Build(source, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20, flavour));
        return new Loaded(image, vm, new BreakpointTable(vm));
    }

    private static SliceResult Step(VcpuEngine engine, int count = 1) =>
        engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, StepCount: count));

    /// <summary>The same image undebugged, stopped by the machine's own single-step after <paramref name="steps"/> instructions
    /// (or interrupt entries), keeping its reservation as a run with no host trip would.</summary>
    private static VcpuState Reference(Loaded g, int steps)
    {
        var reference = SimulatedMachine.Load(g.Image, g.Vm.Options with { Flavour = HypervisorFlavour.Pr, HostTripKeepsReservation = true }).GetVcpu(0);
        reference.SetGuestDebug(GuestDebug.SingleStep);
        for (int i = 0; i < steps; i++) reference.Run(1);
        return reference.GetRegisters();
    }

    [Fact]
    public void Without_the_engine_a_retry_loop_run_one_instruction_per_entry_into_the_guest_never_succeeds()
    {
        // The simulator's model of a real host: each exit to it (here KVM-PR's hardware single step) loses the reservation.
        var g = Load(IncrementLoop, HypervisorFlavour.Pr);
        g.Vcpu.SetGuestDebug(GuestDebug.SingleStep);
        for (int i = 0; i < 400; i++) Assert.Equal(ExitReason.SingleStep, g.Vcpu.Run(1).Reason);

        Assert.Equal(41u, g.Memory(Word));
        Assert.Equal(0UL, g.Vcpu.GetRegisters().Gpr[6]); // never reached done
        Assert.InRange(g.Vcpu.GetRegisters().Nip, g.Sym("retry"), g.Sym("done") - 4);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void Stepping_a_lwarx_stwcx_retry_loop_instruction_by_instruction_completes_the_increment(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        var engine = g.Engine();
        var stops = new List<StepDetail>();
        for (int i = 0; i < 10 && g.Vcpu.GetRegisters().Nip != g.Sym("done"); i++)
        {
            var r = Step(engine);
            Assert.Equal(SliceOutcome.StepDone, r.Outcome);
            stops.Add(r.Step!);
        }

        Assert.Equal(42u, g.Memory(Word));
        Assert.Equal(g.Sym("done"), g.Vcpu.GetRegisters().Nip);
        // li, the sequence lwarx … stwcx. as one step, bne- (not taken).
        Assert.Equal(3, stops.Count);
        Assert.Equal((TraceStep.Completion.Completed, g.Sym("retry"), g.Sym("retry") + 12, 1),
            (stops[1].Completion, stops[1].From, stops[1].To, stops[1].Steps));
        var diff = Reference(g, 5).Differences(g.Vcpu.GetRegisters());
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(0UL, g.Vcpu.GetRegisters().Msr & Msr.SE);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void An_ldarx_stdcx_sequence_is_one_step(HypervisorFlavour flavour)
    {
        var g = Load(DoublewordLoop, flavour);
        var engine = g.Engine();
        Step(engine); // li

        var r = Step(engine);

        Assert.Equal((TraceStep.Completion.Completed, g.Sym("retry"), g.Sym("retry") + 12), (r.Step!.Completion, r.Step.From, r.Step.To));
        var d = new byte[8];
        g.Vm.ReadMemory(Word, d);
        Assert.Equal(0x100000001UL, BitConverter.ToUInt64(d));
        Assert.Equal(2u, r.State.Cr >> 28); // CR0 = 0b0010: the stdcx. succeeded
        Assert.Equal(0, g.Table.Count);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_sequence_whose_conditional_branch_leaves_it_ends_at_the_branch_target(HypervisorFlavour flavour)
    {
        var g = Load(TestAndSet(lockWord: 3), flavour);
        var engine = g.Engine();
        Step(engine); // li

        var r = Step(engine);

        Assert.Equal((TraceStep.Completion.Completed, g.Sym("lock"), g.Sym("busy")), (r.Step!.Completion, r.Step.From, r.Step.To));
        Assert.Equal(3u, g.Memory(Word));
        var diff = Reference(g, 4).Differences(r.State);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_sequence_whose_branch_is_not_taken_ends_after_its_store_conditional(HypervisorFlavour flavour)
    {
        var g = Load(TestAndSet(lockWord: 0), flavour);
        var engine = g.Engine();
        Step(engine); // li

        var r = Step(engine);

        Assert.Equal((g.Sym("lock"), g.Sym("locked") - 4), (r.Step!.From, r.Step.To));
        Assert.Equal(1u, g.Memory(Word));
        Assert.Equal(g.Sym("locked"), Step(engine).State.Nip); // bne- lock: not taken
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv, 15, true)]
    [InlineData(HypervisorFlavour.Hv, 16, false)]
    [InlineData(HypervisorFlavour.Pr, 15, true)]
    [InlineData(HypervisorFlavour.Pr, 16, false)]
    public void With_no_store_conditional_within_16_instructions_the_larx_is_stepped_alone(HypervisorFlavour flavour, int nops, bool whole)
    {
        // lwarx, nops, stwcx.: the stwcx. is instruction nops + 1 after the lwarx.
        var g = Load(Vectors + $"""
                li 9, 0x6000
            larx:
                lwarx 5, 0, 9
                .rept {nops}
                nop
                .endr
                stwcx. 5, 0, 9
            after:
                b after
                .org 0x6000
                .long 7
            """, flavour);
        var engine = g.Engine();
        Step(engine); // li

        var r = Step(engine);

        Assert.Equal(g.Sym(whole ? "after" : "larx") + (whole ? 0UL : 4UL), r.Step!.To);
        Assert.Equal(1, r.Step.Steps);
        Assert.Equal(0, g.Table.Count);
        if (whole) return;
        // Stepped one instruction at a time, each step a host trip: the stwcx. fails, as it would on any real host.
        var rest = Step(engine, count: nops + 1);
        Assert.Equal(g.Sym("after"), rest.State.Nip);
        Assert.Equal(0u, rest.State.Cr >> 28);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_storage_interrupt_inside_a_sequence_ends_the_step_at_its_handler_with_nothing_left_behind(HypervisorFlavour flavour)
    {
        var g = Load(Vectors + """
                li 9, 0x6000
                lis 10, 0x200
            larx:
                lwarx 5, 0, 9
                addi 5, 5, 1
            faulting:
                stwcx. 5, 0, 10
            after:
                b after
                .org 0x6000
                .long 7
            """, flavour); // 0x2000000 is beyond the 16 MiB of RAM: a DSI
        var engine = g.Engine();
        Step(engine, count: 2); // li, lis

        var r = Step(engine);

        Assert.Equal((TraceStep.Completion.Interrupted, g.Sym("larx"), 0x300UL), (r.Step!.Completion, r.Step.From, r.Step.To));
        var s = g.Vcpu.GetRegisters();
        Assert.Equal(g.Sym("faulting"), s.Srr0);
        Assert.Equal(0UL, s.Srr1 & Msr.SE);
        Assert.Equal(0UL, s.Msr & Msr.SE);
        var diff = Reference(g, 5).Differences(s); // li, lis, lwarx, addi, then the DSI
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
    }

    [Fact]
    public void Running_out_of_budget_inside_a_sequence_is_not_a_host_trip_and_the_store_conditional_succeeds()
    {
        // The simulator slicing its own time (a runner's quantum, a debugger's slice) leaves the guest as an unsliced run does.
        var g = Load(IncrementLoop, HypervisorFlavour.Hv);
        for (int i = 0; i < 400; i++) Assert.Equal(ExitReason.BudgetExpired, g.Vcpu.Run(1).Reason);

        Assert.True(g.Memory(Word) > 41u, "the increment never succeeded");
        Assert.True(g.Vcpu.GetRegisters().Gpr[6] > 0, "never reached done");
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv, 1)]
    [InlineData(HypervisorFlavour.Pr, 1)]
    [InlineData(HypervisorFlavour.Hv, 3)]
    [InlineData(HypervisorFlavour.Pr, 3)]
    [InlineData(HypervisorFlavour.Hv, 5)] // as the stwcx. completes: taken before the end point is fetched
    [InlineData(HypervisorFlavour.Pr, 5)]
    public void A_decrementer_that_falls_due_inside_a_sequence_is_taken_there_and_its_handler_runs_within_the_step(
        HypervisorFlavour flavour, int dec)
    {
        // mtdec N: DEC falls due N instructions after the mtdec, after the larx and N-1 instructions of the sequence (Book III §7.3).
        var g = Load(Vectors.Replace("    .org 0xD00", """
                .org 0x900
            dec_handler:
                mfsrr0 20
                addi 21, 21, 1
                lis 22, 0x4000
                mtdec 22
                rfid
                .org 0xD00
            """) + $$"""
                li 9, 0x6000
                li 24, 0
                ori 24, 24, 0x8002
                mtmsrd 24, 1
                li 23, {{dec}}
                mtdec 23
            larx:
                lwarx 5, 0, 9
                addi 5, 5, 1
                addi 5, 5, 1
                addi 5, 5, 1
            stcx:
                stwcx. 5, 0, 9
            after:
                b after
                .org 0x6000
                .long 7
            """, flavour);
        var engine = g.Engine();
        engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, HoldAsyncInterrupts: false, StepCount: 6));

        var r = engine.RunSlice(new SliceRequest(10_000, SliceMode.Step, HoldAsyncInterrupts: false));

        Assert.Equal((TraceStep.Completion.Completed, g.Sym("larx"), g.Sym("after")), (r.Step!.Completion, r.Step.From, r.Step.To));
        var s = g.Vcpu.GetRegisters();
        Assert.Equal((1UL, g.Sym("larx") + 4UL * (ulong)dec), (s.Gpr[21], s.Gpr[20])); // the handler ran once, where it fell due
        Assert.Equal(10u, g.Memory(0x6000)); // the reservation survived the interrupt: the stwcx. stored
        // The machine run freely to the same instruction count, with no debug facility, is in exactly this state.
        var free = SimulatedMachine.Load(g.Image, new MachineOptions(1, 16UL << 20)).GetVcpu(0);
        free.Run((long)(s.Tb - free.GetRegisters().Tb));
        var diff = free.GetRegisters().Differences(s);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
    }

    /// <summary>The undebugged machine run freely from the image to the timebase of <paramref name="s"/>: the same instructions
    /// with no debug facility and no trip to the host.</summary>
    private static VcpuState Free(Loaded g, VcpuState s)
    {
        var free = SimulatedMachine.Load(g.Image, new MachineOptions(1, 16UL << 20)).GetVcpu(0);
        free.Run((long)(s.Tb - free.GetRegisters().Tb));
        return free.GetRegisters();
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_step_begun_inside_a_sequence_whose_reservation_is_held_runs_the_rest_of_it_and_its_store_conditional_succeeds(
        HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        var engine = g.Engine();
        // A continue slice that runs out its budget after li and lwarx, as the coordinator's slices do: the simulator slicing its
        // own time is no host trip, so the vcpu stands at the addi holding its reservation.
        Assert.Equal(SliceOutcome.Ran, engine.RunSlice(new SliceRequest(2, SliceMode.Continue)).Outcome);
        Assert.Equal((g.Sym("retry") + 4, true), (engine.Registers.Nip, engine.Registers.ReservationHeld));

        var r = Step(engine);

        // addi and stwcx. as one step, to the bne- after it.
        Assert.Equal((SliceOutcome.StepDone, TraceStep.Completion.Completed, g.Sym("retry") + 4, g.Sym("retry") + 12, 1),
            (r.Outcome, r.Step!.Completion, r.Step.From, r.Step.To, r.Step.Steps));
        Assert.Equal(2u, r.State.Cr >> 28); // CR0 = 0b0010: the stwcx. succeeded
        Assert.Equal(42u, g.Memory(Word));
        var diff = Free(g, r.State).Differences(r.State);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
        Assert.Equal(0UL, r.State.Msr & Msr.SE);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_step_begun_inside_a_sequence_ends_at_the_target_of_a_branch_that_leaves_it(HypervisorFlavour flavour)
    {
        var g = Load(TestAndSet(lockWord: 3), flavour);
        var engine = g.Engine();
        engine.RunSlice(new SliceRequest(2, SliceMode.Continue)); // li, lwarx: at the cmpwi, the reservation held

        var r = Step(engine);

        Assert.Equal((g.Sym("lock") + 4, g.Sym("busy"), 1), (r.Step!.From, r.Step.To, r.Step.Steps));
        var diff = Free(g, r.State).Differences(r.State);
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, g.Table.Count);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_user_breakpoint_in_the_rest_of_a_sequence_does_not_stop_a_step_begun_inside_it_and_stays_planted(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        ulong stcx = g.Sym("retry") + 8;
        g.Table.Insert(stcx, BreakpointOwner.User.Instance, stcx);
        var engine = g.Engine();
        engine.RunSlice(new SliceRequest(2, SliceMode.Continue)); // li, lwarx: at the addi, the reservation held

        var r = Step(engine);

        Assert.Equal((SliceOutcome.StepDone, stcx + 4), (r.Outcome, r.State.Nip));
        Assert.Equal(42u, g.Memory(Word));
        Assert.Equal([BreakpointOwner.User.Instance], g.Table.OwnersAt(stcx));
        Assert.True(g.Table.IsPlanted(stcx));
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_step_begun_inside_a_sequence_whose_reservation_a_host_trip_lost_steps_one_instruction(HypervisorFlavour flavour)
    {
        // A continue that stops at a user breakpoint on the addi: the stop is a trip to the host, which loses the reservation, so
        // the stwcx. will fail whatever the step does (as on hardware); the step is the one instruction.
        var g = Load(IncrementLoop, flavour);
        ulong addi = g.Sym("retry") + 4;
        g.Table.Insert(addi, BreakpointOwner.User.Instance, addi);
        var engine = g.Engine();
        Assert.Equal(SliceOutcome.BreakpointHit, engine.RunSlice(new SliceRequest(10_000, SliceMode.Continue)).Outcome);
        Assert.Equal((addi, false), (engine.Registers.Nip, engine.Registers.ReservationHeld));

        var r = Step(engine);

        Assert.Equal((TraceStep.Completion.Completed, addi, addi + 4, 1), (r.Step!.Completion, r.Step.From, r.Step.To, r.Step.Steps));
        Assert.Equal(0u, Step(engine).State.Cr >> 28); // the stwcx. fails
        Assert.Equal(41u, g.Memory(Word));
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_count_step_counts_the_sequence_as_one_step(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);

        var r = Step(g.Engine(), count: 3); // li, the sequence, bne-

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((3, g.Sym("_start"), g.Sym("done")), (r.Step!.Steps, r.Step.From, r.Step.To));
        Assert.Equal(42u, g.Memory(Word));
        Assert.Equal(0, g.Table.Count);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_range_step_that_reaches_a_larx_in_its_range_takes_the_sequence_whole(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        var range = new StepRange(g.Sym("_start"), g.Sym("done"));

        var r = g.Engine().RunSlice(new SliceRequest(10_000, SliceMode.Step, Range: range));

        Assert.Equal(SliceOutcome.StepDone, r.Outcome);
        Assert.Equal((3, g.Sym("done")), (r.Step!.Steps, r.State.Nip));
        Assert.Equal(42u, g.Memory(Word));
        Assert.Equal(0, g.Table.Count);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_user_breakpoint_inside_a_sequence_does_not_stop_its_step_and_stays_planted(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        ulong inside = g.Sym("retry") + 4; // the addi
        g.Table.Insert(inside, BreakpointOwner.User.Instance, inside);
        var engine = g.Engine();
        Step(engine); // li

        var r = Step(engine);

        Assert.Equal((SliceOutcome.StepDone, g.Sym("retry") + 12), (r.Outcome, r.State.Nip));
        Assert.Equal(42u, g.Memory(Word));
        Assert.Equal(g.Vm.Capabilities.DebugInstruction, g.Vm.Memory.ReadUInt32(inside, littleEndian: false)); // planted again
        Assert.Equal([BreakpointOwner.User.Instance], g.Table.OwnersAt(inside));
        Assert.True(g.Table.IsPlanted(inside));
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_continue_still_stops_at_a_user_breakpoint_inside_a_sequence(HypervisorFlavour flavour)
    {
        var g = Load(IncrementLoop, flavour);
        ulong inside = g.Sym("retry") + 4;
        g.Table.Insert(inside, BreakpointOwner.User.Instance, inside);

        var r = g.Engine().RunSlice(new SliceRequest(10_000, SliceMode.Continue));

        Assert.Equal((SliceOutcome.BreakpointHit, inside), (r.Outcome, r.State.Nip));
    }

    [Fact]
    public void A_guest_that_traces_itself_steps_the_larx_alone_and_takes_its_own_Trace()
    {
        var g = Load(IncrementLoop, HypervisorFlavour.Hv);
        var engine = g.Engine();
        Step(engine); // li
        var s = engine.Registers.Clone();
        s.Msr |= Msr.SE;
        engine.SetRegisters(s);

        var r = Step(engine);

        Assert.Equal((TraceStep.Completion.GuestTrace, 0xD00UL), (r.Step!.Completion, r.State.Nip));
        Assert.Equal(g.Sym("retry") + 4, r.State.Srr0);
        Assert.Equal(0, g.Table.Count);
    }
}
