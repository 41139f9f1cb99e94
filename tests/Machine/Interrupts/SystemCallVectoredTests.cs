using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>
/// <c>scv</c> and <c>rfscv</c> (Power ISA v3.0 Book III, System Call Vectored interrupt), as Linux uses them for userspace's
/// system calls when AIL=3: the handler at 0xC000000000003000 + LEV×0x20, LR = the next instruction, CTR = the MSR, SRR0 and
/// SRR1 untouched; FSCR[SCV]=0 makes it a Facility Unavailable interrupt. Real mode (AIL off) is compared with QEMU
/// powernv in PrivilegedDifferentialTests.
/// </summary>
public class SystemCallVectoredTests
{
    private const ulong UserMsr = Msr.SF | Msr.ME | Msr.LE | Msr.PR | Msr.EE | Msr.IR | Msr.DR;

    /// <summary>FSCR[SCV] as given, problem state with relocation on, then <c>scv</c> at <c>before</c>.</summary>
    private static Guest Scv(string scv, bool enabled, IReadOnlyDictionary<ulong, string>? handlers = null)
    {
        var g = new Guest($"""
                lis 5, 0x7fff
                mtdec 5
                li 5, {(enabled ? 0x1000 : 0)}
                mtspr 153, 5
                {Asm.MsrOr(0xC030)}
            before:
                {scv}
            after:
                {Guest.Bp}
            """, handlers: handlers ?? new Dictionary<ulong, string> { [0x3000] = Guest.Bp, [0x3040] = Guest.Bp, [0x4F60] = Guest.Bp });
        g.SetAil(3);
        g.Update(s => { s.Srr0 = 0x1111; s.Srr1 = 0x2222; });
        return g;
    }

    [Theory]
    [InlineData("scv 0", 0xC000000000003000UL)]
    [InlineData("scv 2", 0xC000000000003040UL)]
    public void Scv_enters_its_AIL_3_vector_with_LR_the_next_instruction_and_CTR_the_MSR(string scv, ulong vector)
    {
        var g = Scv(scv, enabled: true);

        Assert.Equal(vector, g.RunToBreak());
        var s = g.State;
        Assert.Equal(g.Sym("after"), s.Lr);
        Assert.Equal(UserMsr, s.Ctr);
        // An interrupt's MSR (PR off, relocation on under AIL) that keeps EE, unlike other interrupts.
        Assert.Equal(Msr.SF | Msr.ME | Msr.EE | Msr.IR | Msr.DR, s.Msr & ~Msr.LE);
        Assert.Equal((0x1111UL, 0x2222UL), (s.Srr0, s.Srr1));
    }

    [Fact]
    public void Rfscv_returns_to_LR_with_the_MSR_from_CTR()
    {
        var g = Scv("scv 0", enabled: true, new Dictionary<ulong, string> { [0x3000] = "    rfscv" });

        Assert.Equal(g.Sym("after"), g.RunToBreak());
        Assert.Equal(UserMsr, g.State.Msr);
    }

    [Fact]
    public void Rfscv_from_problem_state_is_a_privileged_program_interrupt()
    {
        var g = Scv("rfscv", enabled: true, new Dictionary<ulong, string>());

        Assert.Equal(0xC000000000004700UL, g.RunToBreak());
        Assert.Equal(g.Sym("before"), g.State.Srr0);
        Assert.NotEqual(0UL, g.State.Srr1 & Srr1Bits.ProgramPrivileged);
    }

    [Fact]
    public void Scv_with_FSCR_SCV_clear_is_a_Facility_Unavailable_interrupt_at_the_scv()
    {
        var g = Scv("scv 0", enabled: false);

        Assert.Equal(0xC000000000004F60UL, g.RunToBreak());
        Assert.Equal(g.Sym("before"), g.State.Srr0);
        Assert.Equal(UserMsr, g.State.Srr1);
    }
}
