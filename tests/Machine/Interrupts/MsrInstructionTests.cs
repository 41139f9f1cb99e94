using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>rfid, mfmsr, mtmsrd/mtmsr: Book III §4.4.3, §6.4.3.</summary>
public class MsrInstructionTests
{
    private static Guest Rfid() => new($"""
            rfid
            nop
            nop
        target:
            {Guest.Bp}
        """);

    private static ulong RfidWith(Guest g, ulong srr0, ulong srr1)
    {
        g.Update(s => { s.Srr0 = srr0; s.Srr1 = srr1; });
        return g.RunToBreak();
    }

    [Fact]
    public void Rfid_sets_NIP_to_SRR0_with_the_low_two_bits_cleared()
    {
        var g = Rfid();
        Assert.Equal(g.Sym("target"), RfidWith(g, g.Sym("target") | 3, Guest.Le));
    }

    [Fact]
    public void Rfid_loads_the_MSR_from_SRR1()
    {
        var g = Rfid();
        ulong srr1 = Guest.Le | Msr.EE | Msr.FP | Msr.IR | Msr.DR | Msr.RI;
        RfidWith(g, g.Sym("target"), srr1);
        Assert.Equal(srr1, g.State.Msr);
    }

    [Fact]
    public void Rfid_keeps_HV_and_ME()
    {
        var g = Rfid();
        RfidWith(g, g.Sym("target"), (Guest.Le | Msr.HV) & ~Msr.ME);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Rfid_can_switch_to_big_endian()
    {
        var g = new Guest($"""
                rfid
            target:
                {Guest.ForeignWords(".long 0x00dddd00", littleEndian: true)}
            """);
        RfidWith(g, g.Sym("target"), Guest.Be);
        Assert.Equal(Guest.Be, g.State.Msr);
    }

    [Fact]
    public void Rfid_drops_SRR1_bits_33_36_and_42_47()
    {
        var g = Rfid();
        RfidWith(g, g.Sym("target"), Guest.Le | 0x783F0000);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Rfid_to_problem_state_turns_EE_IR_DR_on()
    {
        var g = Rfid();
        RfidWith(g, g.Sym("target"), Guest.Le | Msr.PR);
        Assert.Equal(Guest.Le | Msr.PR | Msr.EE | Msr.IR | Msr.DR, g.State.Msr);
    }

    [Fact]
    public void Rfid_to_32_bit_mode_clears_the_high_word_of_NIP()
    {
        // ISA: with SF=0 in the *new* MSR the next instruction comes from 0x00000000 || SRR0[32:61] || 0b00.
        var g = Rfid();
        Assert.Equal(g.Sym("target"), RfidWith(g, 0xFFFFFFFF00000000 | g.Sym("target"), Guest.Le & ~Msr.SF));
    }

    [Fact]
    public void Rfid_from_32_bit_mode_to_64_bit_mode_keeps_the_high_word_of_NIP()
    {
        var g = Rfid();
        g.Update(s => s.Msr &= ~Msr.SF);
        g.SetAil(0);
        RfidWith(g, 0xC000000000000000 | g.Sym("target"), Guest.Le);
        Assert.Equal(0xC000000000000000 | g.Sym("target"), g.State.Nip);
    }

    private static Guest MoveFromMsr() => new($"""
            mfmsr 5
        next:
            {Guest.Bp}
        """);

    [Fact]
    public void Mfmsr_returns_the_whole_MSR()
    {
        var g = MoveFromMsr();
        ulong msr = Guest.Le | Msr.HV | Msr.EE | Msr.FP | Msr.IR | Msr.DR | Msr.RI;
        g.Update(s => s.Msr = msr);
        g.RunToBreak();
        Assert.Equal(msr, g.State.Gpr[5]);
    }

    [Fact]
    public void Mfmsr_shows_an_SE_set_by_the_host()
    {
        var g = MoveFromMsr();
        g.Update(s => s.Msr |= Msr.SE);
        Assert.Equal(0xD00UL, g.RunToBreak());
        Assert.Equal(Guest.Le | Msr.SE, g.State.Gpr[5]);
    }

    private static Guest MoveToMsr(string insn, ulong rs, ulong msr)
    {
        var g = new Guest($"""
                {insn}
                {Guest.Bp}
            """);
        g.Update(s => { s.Gpr[9] = rs; s.Msr = msr; });
        g.RunToBreak();
        return g;
    }

    [Fact]
    public void Mtmsrd_L1_writes_only_EE_and_RI()
    {
        var g = MoveToMsr("mtmsrd 9, 1", ulong.MaxValue & ~(Msr.SE | Msr.PR), Guest.Le);
        Assert.Equal(Guest.Le | Msr.EE | Msr.RI, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_L1_clears_only_EE_and_RI()
    {
        var g = MoveToMsr("mtmsrd 9, 1", 0, Guest.Le | Msr.EE | Msr.RI | Msr.FP | Msr.IR);
        Assert.Equal(Guest.Le | Msr.FP | Msr.IR, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_L0_writes_SF_EE_FP_IR_DR_RI()
    {
        ulong rs = Msr.SF | Msr.EE | Msr.FP | Msr.IR | Msr.DR | Msr.RI;
        var g = MoveToMsr("mtmsrd 9", rs, Guest.Le);
        Assert.Equal(rs | Msr.ME | Msr.LE, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_L0_leaves_HV_ME_and_LE()
    {
        var g = MoveToMsr("mtmsrd 9", Msr.SF, Guest.Le | Msr.HV);
        Assert.Equal(Guest.Le | Msr.HV, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_L0_cannot_set_HV_or_switch_off_LE()
    {
        var g = MoveToMsr("mtmsrd 9", Msr.SF | Msr.HV | Msr.ME, Guest.Le);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void Mtmsrd_L0_setting_PR_turns_EE_IR_DR_on()
    {
        var g = new Guest($"""
                mtmsrd 9
                mflr 5
                {Guest.Bp}
            """);
        g.Update(s => s.Gpr[9] = Msr.SF | Msr.PR);
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.PR | Msr.EE | Msr.IR | Msr.DR, g.State.Msr);
    }

    [Fact]
    public void Mtmsr_writes_only_the_low_word()
    {
        var g = MoveToMsr("mtmsr 9", Msr.EE, Guest.Le);
        Assert.Equal(Guest.Le | Msr.EE, g.State.Msr);
    }
}
