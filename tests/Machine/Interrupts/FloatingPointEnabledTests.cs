using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>
/// Floating-Point Enabled Exception type Program interrupt (Book III §6.5.9: (MSR[FE0] | MSR[FE1]) &amp; FPSCR[FEX], SRR1[43])
/// and what an enabled exception does to the result (Book I §4.4) with and without the interrupt.
/// </summary>
public class FloatingPointEnabledTests
{
    private const ulong FpOn = 0x2000, FeBoth = 0x900; // MSR[FP]; MSR[FE0] | MSR[FE1]
    private const ulong Srr1FpEnabled = 0x100000, Srr1Subsequent = 0x10000; // SRR1 bits 43 and 47
    private const uint FX = 0x80000000, FEX = 0x40000000, VX = 0x20000000, OX = 0x10000000, UX = 0x08000000, ZX = 0x04000000,
        XX = 0x02000000, VXIMZ = 0x00100000, VXSQRT = 0x200, FPRF = 0x1F000;
    private const ulong Sentinel = 0x4045000000000000; // 42.0: what FRT held before

    /// <summary>f1, f2 = <paramref name="a"/>, <paramref name="b"/>; f3 = 42.0; the FPSCR bits <paramref name="fpscrBits"/>
    /// set with mtfsb1; MSR[FP] and <paramref name="msrFe"/> on; then <c>insn:</c> <paramref name="code"/>,
    /// <c>after:</c> a stop.</summary>
    private static Guest Run(ulong a, ulong b, string code, ulong msrFe, int[] fpscrBits, out ulong stop, string before = "",
        ulong extraMsr = 0)
    {
        string enables = string.Join("\n", fpscrBits.Select(bit => $"    mtfsb1 {bit}"));
        ulong msr = FpOn | msrFe | extraMsr;
        var g = new Guest($"""
                mfmsr 9
                ori 9, 9, 0x{msr & 0xFFFF:x}
                oris 9, 9, 0x{msr >> 16:x}
                mtmsrd 9
                lis 4, data@h
                ori 4, 4, data@l
                lfd 1, 0(4)
                lfd 2, 8(4)
                lfd 3, 16(4)
            {enables}
            {before}
            insn:
                {code}
            after:
                {Guest.Bp}
                .balign 8
            data: .quad 0x{a:x}, 0x{b:x}, 0x{Sentinel:x}
            """);
        stop = g.RunToBreak();
        return g;
    }

    private static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);

    // FPSCR bit numbers (Book I §4.2.2) for mtfsb1: VE 24, OE 25, UE 26, ZE 27, XE 28.
    private const int VE = 24, OE = 25, UE = 26, ZE = 27, XE = 28;

    [Fact]
    public void Fdiv_by_zero_with_ZE_and_FE0_FE1_enters_0x700_with_SRR1_bit_43_SRR0_at_the_fdiv_and_FRT_unchanged()
    {
        var g = Run(Bits(1.0), Bits(0.0), "fdiv 3, 1, 2", FeBoth, [ZE], out ulong stop);
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), s.Srr0);
        Assert.Equal(Guest.Le | FpOn | FeBoth | Srr1FpEnabled, s.Srr1);
        Assert.Equal(Sentinel, s.Fpr[3]);
        Assert.Equal(FX | FEX | ZX, s.Fpscr & (FX | FEX | VX | OX | UX | ZX | XX));
        Assert.Equal(0UL, s.Msr & (FeBoth | FpOn)); // the handler runs with FP, FE0 and FE1 off
    }

    [Fact]
    public void Fdiv_by_zero_with_ZE_and_FE0_FE1_0_does_not_trap_sets_FEX_and_leaves_FRT_unchanged()
    {
        var g = Run(Bits(1.0), Bits(0.0), "fdiv 3, 1, 2", 0, [ZE], out ulong stop);
        var s = g.State;
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(0UL, s.Srr0);
        Assert.Equal(Sentinel, s.Fpr[3]); // Book I §4.4.2: enabled Zero Divide suppresses the result in every MSR[FE] mode
        Assert.Equal(FX | FEX | ZX, s.Fpscr & (FX | FEX | ZX));
    }

    [Theory]
    [InlineData(0x900UL)]
    [InlineData(0x800UL)]
    [InlineData(0x100UL)]
    public void Every_non_zero_FE0_FE1_mode_traps_precisely_at_the_instruction(ulong fe)
    {
        var g = Run(Bits(1.0), Bits(0.0), "fdiv 3, 1, 2", fe, [ZE], out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
        Assert.Equal(Guest.Le | FpOn | fe | Srr1FpEnabled, g.State.Srr1);
    }

    [Fact]
    public void Fdiv_by_zero_with_ZE_0_and_FE0_FE1_writes_infinity_and_does_not_trap()
    {
        var g = Run(Bits(1.0), Bits(0.0), "fdiv 3, 1, 2", FeBoth, [], out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(Bits(double.PositiveInfinity), g.State.Fpr[3]);
        Assert.Equal(FX | ZX, g.State.Fpscr & (FX | FEX | ZX));
    }

    [Fact]
    public void Record_form_trapping_on_a_suppressed_zero_divide_leaves_CR1_as_the_instruction_is_not_executed()
    {
        var g = Run(Bits(1.0), Bits(0.0), "fdiv. 3, 1, 2", FeBoth, [ZE], out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(0u, (g.State.Cr >> 24) & 0xF);
        Assert.Equal(0L, g.Vcpu.InstructionsRetired - CountBefore(g));
    }

    [Fact]
    public void Record_form_trapping_on_an_enabled_overflow_sets_CR1_from_FX_FEX_VX_OX_as_the_instruction_is_executed()
    {
        var g = Run(Bits(1e300), Bits(1e300), "fmul. 3, 1, 2", FeBoth, [OE], out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(0b1101u, (g.State.Cr >> 24) & 0xF);
        Assert.Equal(1L, g.Vcpu.InstructionsRetired - CountBefore(g));
    }

    /// <summary>Instructions before <c>insn:</c>, all retired: straight-line code from the entry point.</summary>
    private static long CountBefore(Guest g) => (long)(g.Sym("insn") - g.Image.Entry) / 4;

    [Theory]
    [InlineData("fmul 3, 1, 2", 0.0, double.PositiveInfinity, VXIMZ)]  // 0 × ∞
    [InlineData("fsqrt 3, 1", -4.0, 0.0, VXSQRT)]                       // √−4
    [InlineData("fmadd 3, 1, 2, 2", 0.0, double.PositiveInfinity, VXIMZ)]
    public void Invalid_operation_with_VE_and_FE0_FE1_traps_and_leaves_FRT_and_FPRF_unchanged(string insn, double a, double b, uint cause)
    {
        var g = Run(Bits(a), Bits(b), insn, FeBoth, [VE], out ulong stop, before: "    lfd 5, 16(4)\n    fadd 5, 5, 5");
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), s.Srr0);
        Assert.Equal(Srr1FpEnabled, s.Srr1 & 0x783F0000);
        Assert.Equal(Sentinel, s.Fpr[3]);
        Assert.Equal(FX | FEX | VX | cause, s.Fpscr & (FX | FEX | VX | cause));
        Assert.Equal(0x4000u, s.Fpscr & FPRF); // the fadd's +normal, not the NaN's class
    }

    [Fact]
    public void Invalid_operation_with_VE_and_FE0_FE1_0_leaves_FRT_unchanged_without_trapping()
    {
        var g = Run(Bits(0.0), Bits(double.PositiveInfinity), "fmul 3, 1, 2", 0, [VE], out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(Sentinel, g.State.Fpr[3]);
        Assert.Equal(FEX | VX | VXIMZ, g.State.Fpscr & (FEX | VX | VXIMZ));
    }

    [Fact]
    public void Overflow_with_OE_and_FE0_FE1_traps_with_the_exponent_adjusted_by_minus_1536_written()
    {
        var g = Run(Bits(1e300), Bits(1e300), "fmul 3, 1, 2", FeBoth, [OE], out ulong stop);
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), s.Srr0);
        // 1e300 × 1e300 × 2^−1536 rounded once (scaling by a power of two in the normal range is exact).
        Assert.Equal(Bits(1e300 * Math.ScaleB(1e300, -1536)), s.Fpr[3]);
        Assert.Equal(FX | FEX | OX | XX, s.Fpscr & (FX | FEX | OX | UX | XX)); // the adjusted result is inexact
        Assert.Equal(0x4000u, s.Fpscr & FPRF);
    }

    [Fact]
    public void Overflow_with_OE_and_FE0_FE1_0_writes_the_adjusted_result_and_sets_FEX()
    {
        var g = Run(Bits(1e300), Bits(-1e300), "fmul 3, 1, 2", 0, [OE], out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(Bits(1e300 * Math.ScaleB(-1e300, -1536)), g.State.Fpr[3]);
        Assert.Equal(FEX | OX, g.State.Fpscr & (FEX | OX));
        Assert.Equal(0x8000u, g.State.Fpscr & FPRF); // −normal
    }

    [Fact]
    public void Underflow_with_UE_and_FE0_FE1_traps_with_the_exponent_adjusted_by_plus_1536_written()
    {
        var g = Run(Bits(1e-300), Bits(1e-300), "fmul 3, 1, 2", FeBoth, [UE], out ulong stop);
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), s.Srr0);
        Assert.Equal(Bits(1e-300 * Math.ScaleB(1e-300, 1536)), s.Fpr[3]);
        Assert.Equal(FX | FEX | UX | XX, s.Fpscr & (FX | FEX | OX | UX | XX));
    }

    [Fact]
    public void Inexact_with_XE_and_FE0_FE1_traps_with_the_rounded_result_written()
    {
        var g = Run(Bits(1.0), Bits(3.0), "fdiv 3, 1, 2", FeBoth, [XE], out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
        Assert.Equal(Bits(1.0 / 3.0), g.State.Fpr[3]);
        Assert.Equal(FX | FEX | XX, g.State.Fpscr & (FX | FEX | XX));
    }

    [Fact]
    public void Xsdivdp_by_zero_with_ZE_and_FE0_FE1_traps_and_leaves_XT_unchanged()
    {
        var g = Run(Bits(1.0), Bits(0.0), "xsdivdp 3, 1, 2", FeBoth, [ZE], out ulong stop, extraMsr: Msr.VSX);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
        Assert.Equal(Sentinel, g.State.Fpr[3]);
        Assert.Equal(FEX | ZX, g.State.Fpscr & (FEX | ZX));
    }

    [Fact]
    public void Mtfsb1_of_ZE_while_ZX_is_set_with_FE0_FE1_traps_at_the_mtfsb1_after_writing_the_FPSCR()
    {
        // ZX from a divide by zero while ZE = 0 (no FEX); then ZE = 1 sets FEX.
        var g = Run(Bits(1.0), Bits(0.0), $"mtfsb1 {ZE}", FeBoth, [], out ulong stop, before: "    fdiv 6, 1, 2");
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), s.Srr0);
        Assert.Equal(Guest.Le | FpOn | FeBoth | Srr1FpEnabled, s.Srr1);
        Assert.Equal(FEX | ZX | 0x10u, s.Fpscr & (FEX | ZX | 0x10u));
    }

    [Theory]
    [InlineData("mtfsfi 6, 1")]   // field 6 = bits 24:27 (VE OE UE ZE): ZE
    [InlineData("mtfsf 0xff, 7")] // f7 = the FPSCR image read back with ZE set
    public void Mtfsfi_and_mtfsf_that_enable_a_set_exception_trap_with_FE0_FE1(string insn)
    {
        var g = Run(Bits(1.0), Bits(0.0), insn, FeBoth, [], out ulong stop,
            before: $"    fdiv 6, 1, 2\n    mffs 7\n    stfd 7, 24(4)\n    lwz 8, 24(4)\n    ori 8, 8, 0x10\n    stw 8, 24(4)\n    lfd 7, 24(4)");
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("insn"), g.State.Srr0);
        Assert.Equal(FEX | ZX | 0x10u, g.State.Fpscr & (FEX | ZX | 0x10u));
    }

    [Fact]
    public void Mtfsb0_and_instructions_without_an_exception_do_not_trap_with_FEX_clear()
    {
        var g = Run(Bits(1.0), Bits(2.0), "fadd 3, 1, 2\n    mtfsb0 27", FeBoth, [ZE], out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(Bits(3.0), g.State.Fpr[3]);
    }

    [Fact]
    public void Mtmsrd_setting_FE0_while_FEX_is_set_traps_with_SRR0_at_the_next_instruction()
    {
        // With FE0 = FE1 = 0 the enabled divide by zero only sets FEX; the mtmsrd that sets FE0 then takes the interrupt.
        var g = Run(Bits(1.0), Bits(0.0), """
                fdiv 3, 1, 2
                mfmsr 9
                ori 9, 9, 0x800
            setfe:
                mtmsrd 9
            """, 0, [ZE], out ulong stop);
        var s = g.State;
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("setfe") + 4, s.Srr0);
        Assert.Equal(Guest.Le | FpOn | 0x800 | Srr1FpEnabled | Srr1Subsequent, s.Srr1);
    }

    [Fact]
    public void Rfid_to_an_MSR_with_FE0_FE1_while_FEX_is_set_traps_with_SRR0_at_the_rfid_target()
    {
        var g = Run(Bits(1.0), Bits(0.0), $"""
                fdiv 3, 1, 2
            {Asm.La(10, "target")}
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x900
                mtsrr1 9
                rfid
                nop
            target:
                nop
            """, 0, [ZE], out ulong stop);
        Assert.Equal(0x700UL, stop);
        Assert.Equal(g.Sym("target"), g.State.Srr0);
        Assert.Equal(Guest.Le | FpOn | FeBoth | Srr1FpEnabled | Srr1Subsequent, g.State.Srr1);
    }

    [Fact]
    public void Mtmsrd_setting_FE0_with_FEX_clear_does_not_trap()
    {
        var g = Run(Bits(1.0), Bits(0.0), """
                fdiv 3, 1, 2
                mfmsr 9
                ori 9, 9, 0x900
                mtmsrd 9
            """, 0, [], out ulong stop);
        Assert.Equal(g.Sym("after"), stop);
        Assert.Equal(FeBoth, g.State.Msr & FeBoth);
    }

    [Fact]
    public void The_step_planner_counts_a_Program_interrupt_for_FP_and_VSX_instructions_only_when_FE0_or_FE1_is_set()
    {
        const uint fadd = 0xFC22182A; // fadd 1, 2, 3
        Assert.Equal(InstructionEffects.None, InstructionClassifier.Classify(Op.Fadd, fadd, Guest.Le | FpOn) & InstructionEffects.Program);
        Assert.Equal(InstructionEffects.Program, InstructionClassifier.Classify(Op.Fadd, fadd, Guest.Le | FpOn | 0x100) & InstructionEffects.Program);
        Assert.Equal(InstructionEffects.Program, InstructionClassifier.Classify(Op.Xsadddp, 0xF0000000, Guest.Le | 0x800) & InstructionEffects.Program);
        Assert.Equal(InstructionEffects.None, InstructionClassifier.Classify(Op.Add, 0x7C000214, Guest.Le | FeBoth) & InstructionEffects.Program);
    }
}
