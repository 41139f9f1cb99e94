using ActorStep.Isa;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>DSI (0x300) and ISI (0x400): Book III §6.5.3, §6.5.5.</summary>
public class DataStorageTests
{
    // DR=1 and EA 0x4000_0000_0000_0008: quadrant 4 has no translation on this platform.
    private static Guest Unmapped(string access) => new($"""
        {Asm.MsrOr(0x10)}
            lis 4, 0x4000
            sldi 4, 4, 32
            li 5, 77
        faulting:
            {access}
            {Guest.Bp}
        """);

    [Fact]
    public void Dsi_for_an_unmapped_EA_with_DR_1_enters_0x300() =>
        Assert.Equal(0x300UL, Unmapped("ld 5, 8(4)").RunToBreak());

    [Fact]
    public void Dsi_SRR0_is_the_faulting_instruction()
    {
        var g = Unmapped("ld 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(g.Sym("faulting"), g.State.Srr0);
    }

    [Fact]
    public void Dsi_DAR_is_the_effective_address()
    {
        var g = Unmapped("ld 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(0x4000000000000008UL, g.State.Dar);
    }

    [Fact]
    public void Dsi_on_a_load_sets_DSISR_bit_33_only()
    {
        var g = Unmapped("ld 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(0x40000000u, g.State.Dsisr);
    }

    [Fact]
    public void Dsi_on_a_store_sets_DSISR_bits_33_and_38()
    {
        var g = Unmapped("stw 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(0x42000000u, g.State.Dsisr);
    }

    [Fact]
    public void Dsi_SRR1_is_the_MSR_of_the_faulting_context()
    {
        var g = Unmapped("ld 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.DR, g.State.Srr1);
    }

    [Fact]
    public void Dsi_leaves_the_target_register_unchanged()
    {
        var g = Unmapped("ld 5, 8(4)");
        g.RunToBreak();
        Assert.Equal(77UL, g.State.Gpr[5]);
    }

    [Fact]
    public void Dsi_for_an_EA_beyond_RAM_in_real_mode_enters_0x300_with_DAR()
    {
        var g = new Guest($"""
                lis 4, 0x10          # 1 MiB = the end of this guest's RAM
            faulting:
                lwz 5, 0(4)
                {Guest.Bp}
            """);
        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(0x100000UL, g.State.Dar);
        Assert.Equal(g.Sym("faulting"), g.State.Srr0);
    }

    [Fact]
    public void Dsi_for_an_access_straddling_the_end_of_RAM()
    {
        var g = new Guest($"""
                lis 4, 0x10
                addi 4, 4, -4
                ld 5, 0(4)
                {Guest.Bp}
            """);
        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(0xFFFFCUL, g.State.Dar);
    }

    [Fact]
    public void Real_mode_ignores_EA_bits_0_to_3()
    {
        var g = new Guest($"""
                {Asm.La(6, "data")}
                lis 7, 0xC000
                sldi 7, 7, 32
                or 4, 7, 6           # EA 0xC000_0000_0000_0000 | data
                ld 5, 0(4)
                {Guest.Bp}
                .balign 8
            data: .quad 0x1234
            """);
        Assert.NotEqual(0x300UL, g.RunToBreak());
        Assert.Equal(0x1234UL, g.State.Gpr[5]);
    }
}

public class InstructionStorageTests
{
    private static Guest JumpTo(string loadTarget, int msrBits = 0) => new($"""
        {(msrBits != 0 ? Asm.MsrOr(msrBits) : "")}
            {loadTarget}
            mtctr 4
            bctr
        """);

    [Fact]
    public void Isi_for_an_unmapped_fetch_with_IR_1_enters_0x400()
    {
        var g = JumpTo("lis 4, 0x4000\n sldi 4, 4, 32", msrBits: 0x20);
        Assert.Equal(0x400UL, g.RunToBreak());
    }

    [Fact]
    public void Isi_SRR0_is_the_address_that_could_not_be_fetched()
    {
        var g = JumpTo("lis 4, 0x4000\n sldi 4, 4, 32", msrBits: 0x20);
        g.RunToBreak();
        Assert.Equal(0x4000000000000000UL, g.State.Srr0);
    }

    [Fact]
    public void Isi_sets_SRR1_bit_33_over_the_MSR()
    {
        var g = JumpTo("lis 4, 0x4000\n sldi 4, 4, 32", msrBits: 0x20);
        g.RunToBreak();
        Assert.Equal(Guest.Le | Msr.IR | 0x40000000, g.State.Srr1);
    }

    [Fact]
    public void Isi_for_a_fetch_beyond_RAM_in_real_mode()
    {
        var g = JumpTo("lis 4, 0x10");
        Assert.Equal(0x400UL, g.RunToBreak());
        Assert.Equal(0x100000UL, g.State.Srr0);
    }
}

/// <summary>Alignment (0x600): Book III §6.5.8; lwarx/ldarx/stwcx. need natural alignment, lmw/stmw need BE mode.</summary>
public class AlignmentTests
{
    private static Guest Access(string insn, bool littleEndian = true) => new($"""
            {Asm.La(4, "data")}
        faulting:
            {insn}
            {Guest.Bp}
            .balign 16
        data: .quad 0, 0, 0, 0
        """, littleEndian);

    [Fact]
    public void Lwarx_at_an_unaligned_address_enters_0x600() =>
        Assert.Equal(0x600UL, Access("addi 4, 4, 2\n lwarx 5, 0, 4").RunToBreak());

    [Fact]
    public void Alignment_SRR0_is_the_faulting_instruction_and_DAR_the_EA()
    {
        var g = Access("addi 4, 4, 2\n faulting2: lwarx 5, 0, 4");
        g.RunToBreak();
        Assert.Equal(g.Sym("faulting2"), g.State.Srr0);
        Assert.Equal(g.Sym("data") + 2, g.State.Dar);
    }

    [Fact]
    public void Ldarx_at_a_word_aligned_but_not_doubleword_aligned_address_enters_0x600() =>
        Assert.Equal(0x600UL, Access("addi 4, 4, 4\n ldarx 5, 0, 4").RunToBreak());

    [Fact]
    public void Stwcx_at_an_unaligned_address_enters_0x600() =>
        Assert.Equal(0x600UL, Access("addi 4, 4, 1\n stwcx. 5, 0, 4").RunToBreak());

    [Fact]
    public void Lmw_in_little_endian_mode_enters_0x600() =>
        Assert.Equal(0x600UL, Access(".long 0xBB840000   # lmw 28, 0(4): gas refuses it for LE").RunToBreak());

    [Fact]
    public void Stmw_in_little_endian_mode_enters_0x600() =>
        Assert.Equal(0x600UL, Access(".long 0xBF840000   # stmw 28, 0(4)").RunToBreak());

    [Fact]
    public void Lmw_in_big_endian_mode_loads_registers_up_to_r31()
    {
        var g = new Guest($"""
                {Asm.La(4, "data")}
                lmw 29, 0(4)
                {Guest.Bp}
                .balign 16
            data: .long 0x11111111, 0x22222222, 0x33333333
            """, littleEndian: false);
        Assert.NotEqual(0x600UL, g.RunToBreak());
        Assert.Equal([0x11111111UL, 0x22222222UL, 0x33333333UL], g.State.Gpr[29..32]);
    }
}

/// <summary>FP unavailable (0x800): Book III §6.5.10.</summary>
public class FloatingPointUnavailableTests
{
    private const string LoadDouble = """
            lis 4, data@h
            ori 4, 4, data@l
        faulting:
            lfd 1, 0(4)
            .long 0x00dddd00
            .balign 8
        data: .quad 0x400921FB54442D18
        """;

    [Fact]
    public void Lfd_with_MSR_FP_0_enters_0x800_with_SRR0_at_the_lfd()
    {
        var g = new Guest(LoadDouble);
        Assert.Equal(0x800UL, g.RunToBreak());
        Assert.Equal(g.Sym("faulting"), g.State.Srr0);
        Assert.Equal(Guest.Le, g.State.Srr1);
        Assert.Equal(0UL, g.State.Fpr[1]);
    }

    [Fact]
    public void Lfd_with_MSR_FP_1_loads_the_doubleword()
    {
        var g = new Guest(Asm.MsrOr(0x2000) + "\n" + LoadDouble);
        Assert.Equal(g.Sym("faulting") + 4, g.RunToBreak());
        Assert.Equal(0x400921FB54442D18UL, g.State.Fpr[1]);
    }

    [Fact]
    public void Interrupt_clears_MSR_FP()
    {
        var g = new Guest(Asm.MsrOr(0x2000) + "\n sc");
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(0UL, g.State.Msr & Msr.FP);
        Assert.Equal(Msr.FP, g.State.Srr1 & Msr.FP);
    }
}

/// <summary>Vector Unavailable (0xF20, Book III §6.5.14) and VSX Unavailable (0xF40, §6.5.15): what Linux's lazy VMX/VSX state relies on.</summary>
public class VectorUnavailableTests
{
    private static string Program(string insn) => $"""
            lis 4, data@h
            ori 4, 4, data@l
        faulting:
            {insn}
            .long 0x00dddd00
            .balign 16
        data: .quad 0x0123456789abcdef, 0xfedcba9876543210
        """;

    [Theory]
    [InlineData("lvx 2, 0, 4", 0xF20UL)]
    [InlineData("vaddubm 2, 3, 4", 0xF20UL)]
    [InlineData("lxvd2x 34, 0, 4", 0xF40UL)]
    [InlineData("xxlxor 1, 2, 3", 0xF40UL)]
    public void A_VMX_or_VSX_instruction_with_its_MSR_bit_0_enters_its_unavailable_vector_with_SRR0_at_it(string insn, ulong vector)
    {
        var g = new Guest(Program(insn));
        Assert.Equal(vector, g.RunToBreak());
        Assert.Equal(g.Sym("faulting"), g.State.Srr0);
        Assert.Equal(Guest.Le, g.State.Srr1);
    }

    [Fact]
    public void Lvx_with_MSR_VEC_1_loads_the_quadword_into_the_VR()
    {
        const string VecOn = """
                mfmsr 9
                oris 9, 9, 0x0200
                mtmsrd 9
            """;
        var g = new Guest(VecOn + "\n" + Program("lvx 2, 0, 4"));
        Assert.Equal(g.Sym("faulting") + 4, g.RunToBreak());
        // Little-endian lvx: byte 15 of the register is the byte at EA, so doubleword 0 is the second .quad.
        Assert.Equal(0xfedcba9876543210UL, g.State.Vr[4]);
        Assert.Equal(0x0123456789abcdefUL, g.State.Vr[5]);
    }
}
