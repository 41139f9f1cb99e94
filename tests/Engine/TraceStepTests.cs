using ActorStep.Actors.Engine;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Engine;

/// <summary>
/// <see cref="TraceStep.Plan"/> and <see cref="TraceStep.Complete"/> as pure functions of a register state (no machine,
/// no ActorSystem): where a step can end (step-engine.md §3 point 2) and how the Trace interrupt is undone (points 5–7).
/// </summary>
public class TraceStepTests
{
    private const ulong Nip = 0x1000;
    private const ulong GuestMsr = Msr.SF | Msr.ME | Msr.LE;

    /// <summary>The platform's fixed map (as the simulator's): real mode and quadrant 3 drop the top bits; 16 MiB of RAM.</summary>
    private static bool Translate(ulong ea, ulong msr, out ulong ra)
    {
        ra = ea & 0x0FFFFFFFFFFFFFFF;
        return ra < 16UL << 20;
    }

    private static uint Insn(string asm) => GuestAssembler.Words(asm)[0];

    private static VcpuState State(ulong nip = Nip, ulong msr = GuestMsr, ulong lpcr = 0) =>
        new() { Nip = nip, Msr = msr, Lpcr = lpcr, Srr0 = 0x1234, Srr1 = 0x5678 };

    /// <summary>Plans a step of <paramref name="insn"/> at the state's NIP (every other word a nop).</summary>
    private static StepPlan Plan(uint insn, VcpuState s, bool allowAsync = false) =>
        TraceStep.Plan(s, Translate, (ra, _) => ra == (s.Nip & 0x0FFFFFFFFFFFFFFF) ? insn : 0x60000000, allowAsync);

    /// <summary>The state a Trace interrupt leaves after the instruction at <paramref name="plan"/>'s NIP completed with SE armed.</summary>
    private static VcpuState AfterTrace(StepPlan plan, VcpuState before)
    {
        var s = before.Clone();
        s.Srr0 = plan.Nip + 4;
        s.Srr1 = (s.Msr | Msr.SE) & ~Msr.PartialFunctionBits | Srr1Bits.Bit33;
        s.Nip = InterruptVectors.HandlerAddress(InterruptKind.Trace, s.Msr, s.Lpcr);
        s.Msr = InterruptVectors.NewMsr(s.Msr, s.Lpcr);
        return s;
    }

    [Theory]
    [InlineData(GuestMsr, 0, 0xD00UL, 0xD00UL)]
    [InlineData(GuestMsr | Msr.IR | Msr.DR, 3, 0xC000000000004D00UL, 0x4D00UL)]
    [InlineData(GuestMsr | Msr.IR, 3, 0xD00UL, 0xD00UL)] // AIL applies only with IR and DR both on
    public void An_ordinary_instruction_arms_SE_and_ends_at_the_Trace_handler_of_the_vcpus_mode_now(ulong msr, int ail, ulong handler, ulong handlerRa)
    {
        var plan = Plan(Insn("addi 5, 5, 1"), State(msr: msr, lpcr: Lpcr.WithAil(0, ail)));

        Assert.True(plan.ArmTrace);
        Assert.False(plan.GuestSe);
        var end = Assert.Single(plan.EndPoints);
        Assert.Equal((handler, handlerRa, EndPointKind.TraceHandler), (end.EffectiveAddress, end.RealAddress, end.Kind));
        Assert.Equal((0x1234UL, 0x5678UL), (plan.SavedSrr0, plan.SavedSrr1));
    }

    [Theory]
    [InlineData("addi 5, 5, 1", 0x10u, false, true, false)] // traced: the Trace is taken before an interrupt that falls due
    [InlineData("rfid", 0x10u, false, true, true)] // untraced: its end is the next fetch, where a due interrupt would come first
    [InlineData("sc 1", 0x10u, false, true, true)]
    [InlineData("rfid", 0xFFFFFFF0u, false, true, false)] // one deliverable now ends the step at its handler, before the rfid
    [InlineData("rfid", 0x10u, false, false, false)] // a backend that cannot hold them (QEMU on KVM)
    [InlineData("addi 5, 5, 1", 0x10u, true, true, true)] // held as asked
    [InlineData("addi 5, 5, 1", 0x10u, true, false, false)]
    public void A_step_holds_asynchronous_interrupts_when_asked_or_when_it_arms_no_Trace_and_none_is_deliverable_now(string asm,
        uint dec, bool requested, bool backendHolds, bool holds)
    {
        var s = State(msr: GuestMsr | Msr.EE);
        s.Dec = dec;
        s.Srr0 = 0x2000;
        s.Srr1 = GuestMsr | Msr.EE;

        var plan = Plan(Insn(asm), s, allowAsync: !requested);

        Assert.Equal(holds, TraceStep.HoldsAsyncInterrupts(plan, s, requested, backendHolds));
    }

    [Fact]
    public void An_H_CEDE_with_interrupts_allowed_is_not_held_and_ends_at_the_handler_of_the_interrupt_that_wakes_it()
    {
        var s = State(lpcr: Lpcr.WithAil(0, 3)); // MSR[EE]=0 before the hypercall: H_CEDE sets it
        s.Gpr[3] = Papr.H_CEDE;
        s.Dec = 0x10;

        var plan = Plan(Insn("sc 1"), s, allowAsync: true);

        Assert.True(plan.Cedes);
        Assert.False(TraceStep.HoldsAsyncInterrupts(plan, s, requested: false, backendHolds: true));
        Assert.True(TraceStep.HoldsAsyncInterrupts(plan, s, requested: true, backendHolds: true));
        Assert.Equal(new[] { Nip + 4, 0x900UL, 0x500UL }, plan.EndPoints.Select(e => e.EffectiveAddress)); // real mode: no AIL offset
        Assert.Equal(TraceStep.Completion.Interrupted, TraceStep.Complete(plan, plan.EndPoints[1], s.Clone()));
    }

    [Fact]
    public void Another_hypercall_holds_the_interrupts_it_allows()
    {
        var s = State(msr: GuestMsr | Msr.EE);
        s.Gpr[3] = Papr.H_PUT_TERM_CHAR;

        var plan = Plan(Insn("sc 1"), s, allowAsync: true);

        Assert.False(plan.Cedes);
        Assert.True(TraceStep.HoldsAsyncInterrupts(plan, s, requested: false, backendHolds: true));
    }

    [Fact]
    public void An_atomic_sequences_step_does_not_hold_the_interrupts_it_allows_even_with_none_deliverable()
    {
        var s = State(msr: GuestMsr | Msr.EE);
        s.Dec = 0x10;
        uint[] words = GuestAssembler.Words("lwarx 5, 0, 3\naddi 5, 5, 1\nstwcx. 5, 0, 3");
        var plan = TraceStep.Plan(s, Translate, (ra, _) => ra >= Nip && ra < Nip + 12 ? words[(ra - Nip) / 4] : 0x60000000, allowAsync: true);

        Assert.NotNull(plan.Sequence);
        Assert.False(TraceStep.HoldsAsyncInterrupts(plan, s, requested: false, backendHolds: true));
    }

    [Fact]
    public void Rfid_is_not_armed_and_ends_at_its_target_fetched_with_the_MSR_it_installs()
    {
        var s = State();
        s.Srr0 = 0xC000000000002003; // the low bits are ignored; quadrant 3 with relocation on
        s.Srr1 = GuestMsr | Msr.IR | Msr.DR;

        var plan = Plan(Insn("rfid"), s);

        Assert.False(plan.ArmTrace);
        var target = Assert.Single(plan.EndPoints, e => e.Kind == EndPointKind.ReturnTarget);
        Assert.Equal((0xC000000000002000UL, 0x2000UL), (target.EffectiveAddress, target.RealAddress));
    }

    [Fact]
    public void Rfscv_is_not_armed_and_ends_at_LR_fetched_with_the_MSR_from_CTR()
    {
        var s = State();
        s.Lr = 0xC000000000002003;
        s.Ctr = GuestMsr | Msr.IR | Msr.DR;

        var plan = Plan(Insn("rfscv"), s);

        Assert.False(plan.ArmTrace);
        var target = Assert.Single(plan.EndPoints, e => e.Kind == EndPointKind.ReturnTarget);
        Assert.Equal((0xC000000000002000UL, 0x2000UL), (target.EffectiveAddress, target.RealAddress));
    }

    [Theory]
    [InlineData("scv 0", GuestMsr | Msr.PR | Msr.IR | Msr.DR, 3, 0xC000000000003000UL)]
    [InlineData("scv 2", GuestMsr | Msr.PR | Msr.IR | Msr.DR, 3, 0xC000000000003040UL)]
    [InlineData("scv 0", GuestMsr | Msr.PR | Msr.IR | Msr.DR, 0, 0x17000UL)]
    [InlineData("scv 1", GuestMsr, 3, 0x17020UL)] // real mode: AIL does not apply
    public void Scv_is_not_armed_and_ends_at_its_own_vector_or_the_facility_unavailable_handler(string scv, ulong msr, int ail, ulong vector)
    {
        var plan = Plan(Insn(scv), State(msr: msr, lpcr: Lpcr.WithAil(0, ail)));

        Assert.False(plan.ArmTrace);
        Assert.Contains(plan.EndPoints, e => e.EffectiveAddress == vector && e.Kind == EndPointKind.InterruptHandler);
        Assert.Contains(plan.EndPoints, e => e.EffectiveAddress == InterruptVectors.HandlerAddress(InterruptKind.FacilityUnavailable, msr, Lpcr.WithAil(0, ail)));
        Assert.DoesNotContain(plan.EndPoints, e => e.EffectiveAddress == InterruptVectors.HandlerAddress(InterruptKind.SystemCall, msr, Lpcr.WithAil(0, ail)));
    }

    [Fact]
    public void A_step_of_the_Trace_handlers_own_first_instruction_ends_at_its_successors_without_a_Trace()
    {
        var plan = Plan(Insn("bne .+0x40"), State(nip: 0xD00));

        Assert.False(plan.ArmTrace);
        Assert.All(plan.EndPoints, e => Assert.Equal(EndPointKind.Successor, e.Kind));
        Assert.Equal(new[] { 0xD40UL, 0xD04UL }, plan.EndPoints.Select(e => e.EffectiveAddress));
    }

    [Fact]
    public void A_step_never_plants_a_breakpoint_at_NIP_itself()
    {
        var plan = Plan(Insn("b ."), State(nip: 0xD00));

        Assert.Empty(plan.EndPoints);
    }

    [Theory]
    [InlineData("bdnz .-0x10", 0xFF0UL)]
    [InlineData("blr", 0x2000UL)]
    [InlineData("bctrl", 0x3000UL)]
    public void Branch_successors_are_the_target_and_the_next_instruction(string branch, ulong target)
    {
        var s = State();
        s.Lr = 0x2003;
        s.Ctr = 0x3002;
        uint insn = Insn(branch);

        Assert.Equal(new[] { target, Nip + 4 }, TraceStep.Successors(OpcodeTable.Decode(insn), insn, s));
    }

    [Fact]
    public void Complete_at_the_Trace_handler_undoes_the_interrupt()
    {
        var before = State();
        var plan = Plan(Insn("addi 5, 5, 1"), before);
        var s = AfterTrace(plan, before);

        var completion = TraceStep.Complete(plan, plan.EndPoints[0], s);

        Assert.Equal(TraceStep.Completion.Completed, completion);
        Assert.Equal((Nip + 4, GuestMsr, 0x1234UL, 0x5678UL), (s.Nip, s.Msr, s.Srr0, s.Srr1));
    }

    [Fact]
    public void Complete_after_mfmsr_hides_the_host_SE_from_RT()
    {
        var before = State();
        var plan = Plan(Insn("mfmsr 5"), before);
        var s = AfterTrace(plan, before);
        s.Gpr[5] = GuestMsr | Msr.SE; // what mfmsr read with the host's SE armed

        TraceStep.Complete(plan, plan.EndPoints.Single(e => e.Kind == EndPointKind.TraceHandler), s);

        Assert.Equal(GuestMsr, s.Gpr[5]);
    }

    [Fact]
    public void Complete_after_mtsrr0_keeps_what_the_instruction_wrote()
    {
        var before = State();
        before.Gpr[7] = 0xABC0;
        var plan = Plan(Insn("mtsrr0 7"), before);
        var s = AfterTrace(plan, before);

        TraceStep.Complete(plan, plan.EndPoints.Single(e => e.Kind == EndPointKind.TraceHandler), s);

        Assert.Equal((0xABC0UL, 0x5678UL), (s.Srr0, s.Srr1));
    }

    [Fact]
    public void Complete_when_the_guest_traces_itself_leaves_its_Trace_interrupt_taken()
    {
        var before = State(msr: GuestMsr | Msr.SE);
        var plan = Plan(Insn("addi 5, 5, 1"), before);
        var s = AfterTrace(plan, before);
        var taken = s.Clone();

        Assert.Equal(TraceStep.Completion.GuestTrace, TraceStep.Complete(plan, plan.EndPoints[0], s));

        Assert.Equal(taken, s);
    }

    [Fact]
    public void Complete_at_a_fault_handler_gives_SRR1_the_guests_own_SE()
    {
        var before = State();
        var plan = Plan(Insn("ld 6, 0(5)"), before);
        var dsi = plan.EndPoints.Single(e => e.Interrupt == InterruptKind.DataStorage);
        var s = before.Clone();
        s.Srr0 = Nip;
        s.Srr1 = GuestMsr | Msr.SE; // the interrupt captured the host's SE
        s.Nip = 0x300;
        s.Msr = InterruptVectors.NewMsr(GuestMsr, 0);

        Assert.Equal(TraceStep.Completion.Interrupted, TraceStep.Complete(plan, dsi, s));

        Assert.Equal((0x300UL, Nip, GuestMsr), (s.Nip, s.Srr0, s.Srr1));
    }
}
