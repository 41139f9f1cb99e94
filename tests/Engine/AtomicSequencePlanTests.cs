using ActorStep.Actors.Engine;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Engine;

/// <summary>
/// <see cref="TraceStep.Plan"/> at a load-and-reserve, or inside a sequence whose reservation the vcpu holds, as a pure
/// function of the registers and the words after NIP: the end points of a step that runs the atomic sequence (or its rest)
/// whole (gdb's <c>ppc_deal_with_atomic_sequence</c>), and when the instruction is stepped alone instead.
/// </summary>
public class AtomicSequencePlanTests
{
    private const ulong Nip = 0x1000;
    private const ulong GuestMsr = Msr.SF | Msr.ME | Msr.LE;

    private static bool Translate(ulong ea, ulong msr, out ulong ra)
    {
        ra = ea & 0x0FFFFFFFFFFFFFFF;
        return ra < 16UL << 20;
    }

    private static VcpuState State(ulong msr = GuestMsr, bool reservationHeld = false) =>
        new() { Nip = Nip, Msr = msr, Srr0 = 0x1234, Srr1 = 0x5678, Dec = 0x7FFFFFFF, ReservationHeld = reservationHeld };

    /// <summary>Plans a step at NIP with <paramref name="asm"/> assembled from <paramref name="from"/> on (every other word a
    /// nop).</summary>
    private static StepPlan Plan(string asm, VcpuState? state = null, bool allowAsync = false, ulong from = Nip)
    {
        var words = GuestAssembler.Words(asm);
        var s = state ?? State();
        return TraceStep.Plan(s, Translate, (ra, _) =>
        {
            ulong i = (ra - from) / 4;
            return ra >= from && i < (ulong)words.Length ? words[i] : 0x60000000;
        }, allowAsync);
    }

    /// <summary>A step at NIP inside a sequence whose larx, at NIP-4, the vcpu ran in a continue slice that then ran out its
    /// budget (the reservation <paramref name="held"/>: no host trip since); <paramref name="asm"/> follows the larx.</summary>
    private static StepPlan PlanInside(string asm, bool held = true, ulong msr = GuestMsr) =>
        Plan("lwarx 5, 0, 9\n" + asm, State(msr, reservationHeld: held), from: Nip - 4);

    private static ulong[] Ends(StepPlan plan, EndPointKind kind) =>
        plan.EndPoints.Where(e => e.Kind == kind).Select(e => e.EffectiveAddress).ToArray();

    [Fact]
    public void A_step_at_a_larx_ends_after_its_store_conditional_with_no_Trace_armed()
    {
        var plan = Plan("lwarx 5, 0, 9\n addi 5, 5, 1\n stwcx. 5, 0, 9\n bne- .-12");

        Assert.False(plan.ArmTrace);
        Assert.Equal((Nip + 8, 3), (plan.Sequence!.StoreConditional, plan.Sequence.Instructions));
        Assert.Equal([Nip + 4, Nip + 8], plan.Sequence.InsideRealAddresses);
        Assert.Equal([Nip + 12], Ends(plan, EndPointKind.Successor));
        Assert.Empty(Ends(plan, EndPointKind.TraceHandler));
        // The loads and stores of the sequence can take a DSI or an alignment interrupt: their handlers end the step too.
        Assert.Equal([0x300UL, 0x600UL], Ends(plan, EndPointKind.InterruptHandler));
        Assert.DoesNotContain(plan.EndPoints, e => e.RealAddress == Nip);
    }

    [Theory]
    [InlineData("lbarx 5, 0, 9", "stbcx. 5, 0, 9")]
    [InlineData("lharx 5, 0, 9", "sthcx. 5, 0, 9")]
    [InlineData("lwarx 5, 0, 9", "stwcx. 5, 0, 9")]
    [InlineData("ldarx 5, 0, 9", "stdcx. 5, 0, 9")]
    [InlineData("lqarx 4, 0, 9", "stqcx. 4, 0, 9")]
    [InlineData("lwarx 5, 0, 9, 1", "stwcx. 5, 0, 9")] // the EH hint
    public void Every_load_and_reserve_opens_a_sequence_that_its_store_conditional_closes(string larx, string stcx)
    {
        var plan = Plan($"{larx}\n {stcx}");

        Assert.Equal(Nip + 4, plan.Sequence?.StoreConditional);
        Assert.Equal([Nip + 8], Ends(plan, EndPointKind.Successor));
    }

    [Fact]
    public void A_conditional_branch_that_leaves_the_sequence_adds_its_target()
    {
        var plan = Plan("lwarx 5, 0, 9\n cmpwi 5, 0\n bne- .+0x40\n stwcx. 4, 0, 9");

        Assert.Equal([Nip + 16, Nip + 8 + 0x40], Ends(plan, EndPointKind.Successor));
    }

    [Theory]
    [InlineData("beq- .-8")]  // back to the larx: a retry inside the step
    [InlineData("beq- .+4")]  // to the stcx.
    public void A_conditional_branch_that_stays_inside_the_sequence_adds_no_end_point(string branch)
    {
        var plan = Plan($"lwarx 5, 0, 9\n addi 5, 5, 1\n {branch}\n stwcx. 5, 0, 9");

        Assert.Equal([Nip + 16], Ends(plan, EndPointKind.Successor));
    }

    [Theory]
    [InlineData(15, true)]
    [InlineData(16, false)]
    public void The_store_conditional_is_looked_for_within_16_instructions_after_the_larx(int nops, bool found)
    {
        var plan = Plan($"lwarx 5, 0, 9\n .rept {nops}\n nop\n .endr\n stwcx. 5, 0, 9");

        Assert.Equal(found, plan.Sequence is not null);
        Assert.Equal(!found, plan.ArmTrace); // else: the larx alone, traced
        if (!found) Assert.Equal([0xD00UL], Ends(plan, EndPointKind.TraceHandler));
    }

    [Theory]
    [InlineData("sc")]
    [InlineData("sc 1")]
    [InlineData("rfid")]
    [InlineData("mtmsrd 6")]
    [InlineData("b .+0x40")]
    [InlineData("blr")]
    [InlineData("bctr")]
    public void A_sequence_holding_what_the_plan_cannot_follow_is_not_taken_whole(string insn)
    {
        var plan = Plan($"lwarx 5, 0, 9\n {insn}\n stwcx. 5, 0, 9");

        Assert.Null(plan.Sequence);
        Assert.True(plan.ArmTrace);
    }

    [Fact]
    public void A_guest_that_traces_itself_steps_the_larx_alone()
    {
        var plan = Plan("lwarx 5, 0, 9\n stwcx. 5, 0, 9", State(GuestMsr | Msr.SE));

        Assert.Null(plan.Sequence);
        Assert.True(plan.GuestSe);
        Assert.Equal([0xD00UL], Ends(plan, EndPointKind.TraceHandler));
    }

    [Fact]
    public void A_step_begun_inside_a_sequence_whose_reservation_is_held_runs_the_rest_of_it_with_no_Trace_armed()
    {
        var plan = PlanInside("addi 5, 5, 1\n stwcx. 5, 0, 9\n bne- .-12");

        Assert.False(plan.ArmTrace);
        Assert.Equal((Nip + 4, 2), (plan.Sequence!.StoreConditional, plan.Sequence.Instructions));
        Assert.Equal([Nip + 4], plan.Sequence.InsideRealAddresses);
        Assert.Equal([Nip + 8], Ends(plan, EndPointKind.Successor));
        Assert.Empty(Ends(plan, EndPointKind.TraceHandler));
        Assert.Equal([0x300UL, 0x600UL], Ends(plan, EndPointKind.InterruptHandler));
    }

    [Fact]
    public void A_step_at_a_store_conditional_whose_reservation_is_held_is_the_store_conditional_alone_with_no_Trace_armed()
    {
        var plan = PlanInside("stwcx. 5, 0, 9\n bne- .-8");

        Assert.False(plan.ArmTrace);
        Assert.Equal((Nip, 1), (plan.Sequence!.StoreConditional, plan.Sequence.Instructions));
        Assert.Empty(plan.Sequence.InsideRealAddresses);
        Assert.Equal([Nip + 4], Ends(plan, EndPointKind.Successor));
    }

    [Fact]
    public void A_step_begun_inside_a_sequence_ends_at_its_larx_when_a_branch_goes_back_to_it()
    {
        // The larx is before NIP: a branch back to it is a retry that leaves the rest of the sequence; the next step, at the
        // larx, takes the sequence whole.
        var plan = PlanInside("cmpwi 5, 0\n bne- .-8\n stwcx. 4, 0, 9");

        Assert.Equal([Nip + 12, Nip - 4], Ends(plan, EndPointKind.Successor));
    }

    [Fact]
    public void A_step_begun_inside_a_sequence_without_its_reservation_is_the_instruction_alone()
    {
        var plan = PlanInside("addi 5, 5, 1\n stwcx. 5, 0, 9", held: false);

        Assert.Null(plan.Sequence);
        Assert.True(plan.ArmTrace);
        Assert.Equal([0xD00UL], Ends(plan, EndPointKind.TraceHandler));
    }

    [Fact]
    public void A_guest_that_traces_itself_steps_an_instruction_inside_a_sequence_alone()
    {
        var plan = PlanInside("addi 5, 5, 1\n stwcx. 5, 0, 9", msr: GuestMsr | Msr.SE);

        Assert.Null(plan.Sequence);
        Assert.True(plan.GuestSe);
    }

    [Fact]
    public void A_reservation_held_where_a_larx_comes_before_any_store_conditional_is_stale_and_the_instruction_is_stepped_alone()
    {
        // A branch out of a sequence (or a compare that failed) left the reservation: NIP is before the next sequence, not in one.
        var plan = Plan("addi 5, 5, 1\n lwarx 5, 0, 9\n stwcx. 5, 0, 9", State(reservationHeld: true));

        Assert.Null(plan.Sequence);
        Assert.True(plan.ArmTrace);
    }

    [Theory]
    [InlineData("sc", true)]
    [InlineData("rfid", true)]
    [InlineData("mtmsrd 6", true)]
    [InlineData("b .+0x40", true)]
    [InlineData("blr", true)]
    [InlineData("bctr", false)]
    [InlineData("sc 1", false)]
    public void The_rest_of_a_sequence_holding_what_the_plan_cannot_follow_is_not_taken_whole(string insn, bool atNip)
    {
        var plan = PlanInside(atNip ? $"{insn}\n stwcx. 5, 0, 9" : $"addi 5, 5, 1\n {insn}\n stwcx. 5, 0, 9");

        Assert.Null(plan.Sequence);
    }

    [Fact]
    public void The_store_conditional_is_looked_for_within_16_instructions_after_NIP_when_the_step_begins_inside()
    {
        Assert.NotNull(PlanInside(".rept 16\n nop\n .endr\n stwcx. 5, 0, 9").Sequence);
        Assert.Null(PlanInside(".rept 17\n nop\n .endr\n stwcx. 5, 0, 9").Sequence);
    }

    [Theory]
    [InlineData(true, Msr.EE, 0xFFFFFFFFu, true)]
    [InlineData(false, Msr.EE, 0xFFFFFFFFu, false)]
    [InlineData(true, 0UL, 0xFFFFFFFFu, false)]
    [InlineData(true, Msr.EE, 5u, false)]
    public void The_asynchronous_interrupt_handlers_are_end_points_only_when_one_is_deliverable_at_the_larx(bool allowAsync, ulong ee,
        uint dec, bool expected)
    {
        var s = State(GuestMsr | ee);
        s.Dec = dec;
        var plan = Plan("lwarx 5, 0, 9\n stwcx. 5, 0, 9", s, allowAsync);

        // One that falls due inside the sequence is taken there and its handler runs within the step (no end point).
        var handlers = Ends(plan, EndPointKind.InterruptHandler);
        Assert.Equal(expected, handlers.Contains(0x900UL));
        Assert.Equal(expected, handlers.Contains(0x500UL));
    }

    [Fact]
    public void The_handlers_are_those_of_the_vcpus_mode_now()
    {
        var s = State(GuestMsr | Msr.IR | Msr.DR);
        s.Nip = 0xC000000000001000;
        s.Lpcr = Lpcr.WithAil(0, 3);
        var words = GuestAssembler.Words("lwarx 5, 0, 9\n stwcx. 5, 0, 9");
        var plan = TraceStep.Plan(s, Translate, (ra, _) => ra == 0x1000 ? words[0] : ra == 0x1004 ? words[1] : 0x60000000, allowAsync: false);

        Assert.Equal([0xC000000000001008UL], Ends(plan, EndPointKind.Successor));
        Assert.Equal([0xC000000000004300UL, 0xC000000000004600UL], Ends(plan, EndPointKind.InterruptHandler));
    }

    [Fact]
    public void Complete_at_the_end_of_a_sequence_reports_Completed_and_changes_nothing()
    {
        var plan = Plan("lwarx 5, 0, 9\n stwcx. 5, 0, 9");
        var s = State();
        s.Nip = Nip + 8;
        var after = s.Clone();

        Assert.Equal(TraceStep.Completion.Completed, TraceStep.Complete(plan, plan.EndPointAt(Nip + 8)!, s));

        Assert.Empty(after.Differences(s));
    }

    [Fact]
    public void Complete_at_an_interrupt_inside_a_sequence_reports_Interrupted_and_keeps_the_guests_SRR0_SRR1()
    {
        var plan = Plan("lwarx 5, 0, 9\n stwcx. 5, 0, 9");
        var s = State();
        (s.Nip, s.Srr0, s.Srr1, s.Msr) = (0x300, Nip + 4, GuestMsr, InterruptVectors.NewMsr(GuestMsr, 0));
        var after = s.Clone();

        Assert.Equal(TraceStep.Completion.Interrupted, TraceStep.Complete(plan, plan.EndPointAt(0x300)!, s));

        Assert.Empty(after.Differences(s));
    }
}
