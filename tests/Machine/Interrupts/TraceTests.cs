using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>
/// The Trace interrupt (0xD00) and the interrupt-entry rules of step-engine.md §2 it shares with every
/// interrupt: SRR0/SRR1, the new MSR, the vector with AIL.
/// </summary>
public class TraceTests
{
    /// <summary>SE on (the mtmsrd that sets it is not traced), then <paramref name="traced"/>.</summary>
    private static Guest Traced(string traced, int extraMsr = 0, string tail = "") => new($"""
        {Asm.MsrOr(0x400 | extraMsr)}
        traced:
            {traced}
        successor:
            {Guest.Bp}
        {tail}
        """);

    [Fact]
    public void Trace_enters_0xD00_after_one_instruction()
    {
        var g = Traced("addi 5, 5, 1");
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(1UL, g.State.Gpr[5]);
    }

    [Fact]
    public void Trace_SRR0_is_the_successor_of_the_traced_instruction()
    {
        var g = Traced("addi 5, 5, 1");
        g.RunToBreak();
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    [Fact]
    public void Trace_SRR0_is_the_target_of_a_taken_branch()
    {
        var g = Traced("b target", tail: "target: " + Guest.Bp);
        g.RunToBreak();
        Assert.Equal(g.Sym("target"), g.State.Srr0);
    }

    [Fact]
    public void Trace_SRR0_is_the_successor_of_a_branch_not_taken()
    {
        var g = Traced("cmpdi 5, 1\n beq target2", tail: "target2: " + Guest.Bp);
        g.RunToBreak();
        Assert.Equal(g.Sym("traced") + 4, g.State.Srr0); // after the cmpdi
        g.Update(s => { s.Nip = s.Srr0; s.Msr = s.Srr1 & ~0x783F0000UL; });
        g.RunToBreak();
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    [Fact]
    public void Trace_interrupt_sets_SRR1_bit_33()
    {
        var g = Traced("addi 5, 5, 1");
        g.RunToBreak();
        Assert.Equal(0x40000000UL, g.State.Srr1 & 0x40000000);
    }

    [Fact]
    public void Trace_SRR1_is_the_MSR_with_SE_and_bit_33()
    {
        var g = Traced("addi 5, 5, 1");
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.SE | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void Trace_does_not_set_SRR1_bits_35_36_for_loads_and_stores()
    {
        // Documented choice (as QEMU): hardware would mark a traced load (35) / store (36).
        var g = Traced("ld 5, 0(0)");
        g.RunToBreak();
        Assert.Equal(0UL, g.State.Srr1 & 0x18000000);
    }

    [Fact]
    public void Interrupt_SRR1_replaces_MSR_bits_33_36_and_42_47()
    {
        var g = new Guest($"""
                addi 5, 5, 1
                {Guest.Bp}
            """);
        g.Update(s => s.Msr |= Msr.SE | 0x783F0000);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le | Msr.SE | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void Interrupt_MSR_is_SF_ME_and_LE_from_LPCR_ILE()
    {
        var g = Traced("addi 5, 5, 1");
        g.RunToBreak();
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Interrupt_clears_EE_PR_FP_SE_BE_RI_FE0_FE1()
    {
        var g = new Guest($"""
                addi 5, 5, 1
                {Guest.Bp}
            """);
        g.Update(s => s.Msr |= Msr.EE | Msr.FP | Msr.SE | Msr.BE | Msr.RI | Msr.FE0 | Msr.FE1);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Interrupt_from_problem_state_clears_PR_IR_DR_without_AIL()
    {
        var g = new Guest($"""
            {Asm.La(10, "user")}
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x4400      # PR | SE
                mtsrr1 9
                rfid
            user:
                addi 5, 5, 1
                {Guest.Bp}
            """);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("user") + 4, g.State.Srr0);
        Assert.Equal(Guest.Le, g.State.Msr);
        Assert.Equal(Guest.Le | Msr.PR | Msr.EE | Msr.IR | Msr.DR | Msr.SE | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void Interrupt_keeps_MSR_HV()
    {
        var g = Traced("addi 5, 5, 1");
        g.Update(s => s.Msr |= Msr.HV);
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.HV, g.State.Msr);
    }

    [Fact]
    public void Interrupt_keeps_MSR_ME_clear_when_it_was_clear()
    {
        var g = Traced("addi 5, 5, 1");
        g.Update(s => s.Msr &= ~Msr.ME);
        g.RunToBreak();
        Assert.Equal(Guest.Le & ~Msr.ME, g.State.Msr);
    }

    [Fact]
    public void Interrupt_sets_SF_from_32_bit_mode()
    {
        var g = Traced("addi 5, 5, 1");
        g.Update(s => s.Msr &= ~Msr.SF);
        g.RunToBreak();
        Assert.Equal(Guest.Le, g.State.Msr);
        Assert.Equal(Msr.ME | Msr.LE | Msr.SE | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void First_instruction_of_the_trace_handler_is_not_traced()
    {
        var g = new Guest($"""
            {Asm.MsrOr(0x400)}
                addi 5, 5, 1
                {Guest.Bp}
            """, handlers: new Dictionary<ulong, string> { [0xD00] = $"addi 6, 6, 1\n {Guest.Bp}" });
        Assert.Equal(0xD04UL, g.RunToBreak());
        Assert.Equal(1UL, g.State.Gpr[6]);
    }

    // --- Vector and AIL ---

    [Fact]
    public void Trace_vector_is_0xD00_in_real_mode_even_with_AIL_3()
    {
        var g = Traced("addi 5, 5, 1");
        g.SetAil(3);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Trace_with_AIL_3_and_relocation_on_enters_0xC000000000004D00()
    {
        var g = Traced("addi 5, 5, 1", extraMsr: 0x30);
        g.SetAil(3);
        Assert.Equal(0xC000000000004D00UL, g.RunToBreak());
    }

    [Fact]
    public void Interrupt_with_AIL_applying_turns_IR_and_DR_on()
    {
        var g = Traced("addi 5, 5, 1", extraMsr: 0x30);
        g.SetAil(3);
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.IR | Msr.DR, g.State.Msr);
    }

    [Fact]
    public void Trace_with_AIL_2_and_relocation_on_enters_0x18D00()
    {
        var g = Traced("addi 5, 5, 1", extraMsr: 0x30);
        g.SetAil(2);
        Assert.Equal(0x18D00UL, g.RunToBreak());
        Assert.Equal(Guest.Le | Msr.IR | Msr.DR, g.State.Msr);
    }

    [Fact]
    public void Trace_with_AIL_0_and_relocation_on_enters_0xD00_with_relocation_off()
    {
        var g = Traced("addi 5, 5, 1", extraMsr: 0x30);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Theory]
    [InlineData(0x20)] // IR only
    [InlineData(0x10)] // DR only
    public void AIL_is_ignored_unless_both_IR_and_DR_are_on(int relocation)
    {
        var g = Traced("addi 5, 5, 1", extraMsr: relocation);
        g.SetAil(3);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void System_call_with_AIL_3_and_relocation_on_enters_0xC000000000004C00()
    {
        var g = new Guest(Asm.MsrOr(0x30) + "\n sc");
        g.SetAil(3);
        Assert.Equal(0xC000000000004C00UL, g.RunToBreak());
    }

    [Fact]
    public void Dsi_with_AIL_2_and_relocation_on_enters_0x18300()
    {
        var g = new Guest(Asm.MsrOr(0x30) + "\n lis 4, 0x4000\n sldi 4, 4, 32\n ld 5, 0(4)");
        g.SetAil(2);
        Assert.Equal(0x18300UL, g.RunToBreak());
    }

    [Fact]
    public void AIL_set_by_H_SET_MODE_moves_the_trace_vector()
    {
        var g = new Guest($"""
            {Asm.Hcall(0x31C, 3, 3)}
            {Asm.MsrOr(0x430)}
                addi 5, 5, 1
                {Guest.Bp}
            """);
        Assert.Equal(0xC000000000004D00UL, g.RunToBreak());
    }

    // --- What is not traced ---

    [Fact]
    public void No_trace_follows_rfid()
    {
        var g = new Guest($"""
            {Asm.La(10, "target")}
                mtsrr0 10
                mfmsr 9
                mtsrr1 9              # SRR1 without SE
                ori 9, 9, 0x400
                mtmsrd 9              # SE on
                rfid
            target:
                {Guest.Bp}
            """);
        Assert.Equal(g.Sym("target"), g.RunToBreak());
    }

    [Fact]
    public void Rfid_to_an_SRR1_with_SE_traces_the_target_instruction_not_the_rfid()
    {
        var g = new Guest($"""
            {Asm.La(10, "target")}
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x400
                mtsrr1 9
                rfid
            target:
                addi 5, 5, 1
                {Guest.Bp}
            """);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("target") + 4, g.State.Srr0);
    }

    [Fact]
    public void No_trace_follows_sc()
    {
        var g = Traced("sc");
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
        Assert.Equal(Guest.Le | Msr.SE, g.State.Srr1);
    }

    [Fact]
    public void No_trace_follows_a_hypercall()
    {
        var g = new Guest($"""
                li 9, 0x400
                mfmsr 10
                or 9, 9, 10
            {Asm.Hcall(0x31C, 0, 3)}
            successor:
                {Guest.Bp}
            """);
        // Enter at the sc 1 with SE on and the arguments in place.
        g.Update(s => { s.Nip = g.Sym("successor") - 4; s.Msr |= Msr.SE; s.Gpr[3] = 0x31C; s.Gpr[4] = 0; s.Gpr[5] = 3; });
        Assert.Equal(g.Sym("successor"), g.RunToBreak());
        Assert.Equal(0UL, g.State.Gpr[3]);
    }

    [Fact]
    public void No_trace_follows_a_trap_that_traps()
    {
        var g = Traced("trap");
        Assert.Equal(0x700UL, g.RunToBreak());
        Assert.Equal(g.Sym("traced"), g.State.Srr0);
        Assert.Equal(Guest.Le | Msr.SE | 0x20000, g.State.Srr1);
    }

    [Fact]
    public void Trace_follows_a_trap_that_does_not_trap()
    {
        var g = Traced("tdi 4, 5, 1");
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    [Fact]
    public void No_trace_follows_a_faulting_load()
    {
        var g = Traced("lis 4, 0x10\n faulting: ld 5, 0(4)");
        // The lis is traced first; resume from the Trace as the guest's rfid would.
        Assert.Equal(0xD00UL, g.RunToBreak());
        g.Update(s => { s.Nip = s.Srr0; s.Msr = s.Srr1 & ~0x783F0000UL; });
        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(g.Sym("faulting"), g.State.Srr0);
    }

    [Fact]
    public void No_trace_follows_an_illegal_instruction() =>
        Assert.Equal(0x700UL, Traced(".long 0").RunToBreak());

    [Fact]
    public void No_trace_follows_an_FP_unavailable_interrupt() =>
        Assert.Equal(0x800UL, Traced("lfd 1, 0(0)").RunToBreak());

    [Fact]
    public void No_trace_follows_an_alignment_interrupt() =>
        Assert.Equal(0x600UL, Traced("li 4, 2\n lwarx 5, 0, 4", tail: "").RunToBreakAfterTrace());

    [Fact]
    public void Trace_is_taken_before_a_pending_decrementer()
    {
        var g = Traced("addi 5, 5, 1");
        ulong mtmsrdDone = 3; // mfmsr, ori, mtmsrd
        g.Update(s => { s.Msr |= Msr.EE; s.Dec = (uint)mtmsrdDone; });
        // DEC reaches -1 (an exception exists) as the traced instruction completes.
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.True((int)g.State.Dec < 0, $"DEC 0x{g.State.Dec:x} should be pending");
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    [Fact]
    public void Pending_decrementer_is_taken_once_the_trace_handler_returns()
    {
        var g = Traced("addi 5, 5, 1");
        g.Update(s => { s.Msr |= Msr.EE; s.Dec = 3; });
        g.RunToBreak();
        g.Update(s => { s.Nip = s.Srr0; s.Msr = s.Srr1 & ~(0x783F0000UL | Msr.SE); });
        Assert.Equal(0x900UL, g.RunToBreak());
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    // --- mtmsrd is traced by the SE in force before it ---

    [Fact]
    public void Mtmsrd_that_sets_SE_is_not_traced()
    {
        var g = Traced("addi 5, 5, 1");
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("successor"), g.State.Srr0); // the first Trace follows the addi, not the mtmsrd
    }

    [Fact]
    public void Mtmsrd_is_traced_by_the_SE_in_force_before_it()
    {
        var g = new Guest($"""
            clear:
                mtmsrd 9
            successor:
                {Guest.Bp}
            """);
        g.Update(s => { s.Nip = g.Sym("clear"); s.Gpr[9] = s.Msr; s.Msr |= Msr.SE; }); // r9: SE off
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("successor"), g.State.Srr0);
    }

    [Fact]
    public void Trace_after_an_mtmsrd_that_clears_SE_has_SRR1_from_the_MSR_it_installed()
    {
        var g = new Guest($"""
            clear:
                mtmsrd 9
                {Guest.Bp}
            """);
        g.Update(s => { s.Nip = g.Sym("clear"); s.Gpr[9] = s.Msr; s.Msr |= Msr.SE; });
        g.RunToBreak();
        Assert.Equal(Guest.Le | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void Mtmsrd_that_turns_relocation_on_is_traced_at_the_AIL_vector()
    {
        var g = new Guest($"""
                ori 9, 9, 0x30
            insn:
                mtmsrd 9
                {Guest.Bp}
            """);
        g.SetAil(3);
        g.Update(s => { s.Nip = g.Sym("insn"); s.Gpr[9] = s.Msr | Msr.IR | Msr.DR; s.Msr |= Msr.SE; });
        Assert.Equal(0xC000000000004D00UL, g.RunToBreak());
        Assert.Equal(Guest.Le | Msr.IR | Msr.DR, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_that_turns_relocation_off_is_traced_at_the_real_mode_vector()
    {
        var g = new Guest($"""
            insn:
                mtmsrd 9
                {Guest.Bp}
            """);
        g.SetAil(3);
        g.Update(s => { s.Nip = g.Sym("insn"); s.Gpr[9] = s.Msr | Msr.SE; s.Msr |= Msr.SE | Msr.IR | Msr.DR; });
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(g.Sym("insn") + 4, g.State.Srr0);
    }

    [Fact]
    public void Mtmsrd_that_clears_SE_and_turns_relocation_on_is_traced_at_the_AIL_vector()
    {
        var g = new Guest($"""
            insn:
                mtmsrd 9
                {Guest.Bp}
            """);
        g.SetAil(3);
        g.Update(s => { s.Nip = g.Sym("insn"); s.Gpr[9] = s.Msr | Msr.IR | Msr.DR; s.Msr |= Msr.SE; });
        Assert.Equal(0xC000000000004D00UL, g.RunToBreak());
        Assert.Equal(Guest.Le | Msr.IR | Msr.DR | 0x40000000, g.State.Srr1);
    }
}

internal static class GuestExtensions
{
    /// <summary>Runs to a stop; a Trace stop (0xD00) is resumed once, as the guest handler's rfid would.</summary>
    public static ulong RunToBreakAfterTrace(this Guest g)
    {
        ulong stop = g.RunToBreak();
        while (stop == 0xD00)
        {
            g.Update(s => { s.Nip = s.Srr0; s.Msr = s.Srr1 & ~0x783F0000UL; });
            stop = g.RunToBreak();
        }
        return stop;
    }
}
