using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Load/Store String (Power ISA v3.0 Book I §3.3.7): bytes to and from the low words of consecutive registers, r31 wrapping to
/// r0; lswi/stswi count NB (0 = 32), lswx/stswx XER[57:63]. Big-endian mode only: little-endian mode takes an alignment
/// interrupt (POWER8/POWER9). GNU as refuses them little-endian, so they are written as words.
/// </summary>
public class StringTests
{
    private const ulong Base = InstructionBench.Data + 0x200;
    private const string Lswi13 = ".long 0x7E846CAA # lswi 20,4,13";
    private const string Stswi13 = ".long 0x7E846DAA # stswi 20,4,13";
    private const string Lswx = ".long 0x7E842C2A # lswx 20,4,5";
    private const string Stswx = ".long 0x7E842D2A # stswx 20,4,5";
    private const string LswiWrap = ".long 0x7FC464AA # lswi 30,4,12";

    private static readonly InstructionBench Bench = new([Lswi13, Stswi13, Lswx, Stswx, LswiWrap]);

    private static readonly byte[] Pattern = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    private static InstructionBench.Run Execute(string insn, bool littleEndian = false, ulong xer = 0) =>
        Bench.Execute(insn, s =>
        {
            s.Gpr[4] = Base;
            s.Gpr[5] = 4;
            s.Xer = xer;
            for (int r = 0; r < 32; r++) if (r is not (4 or 5)) s.Gpr[r] = 0xEEEEEEEE_EEEEEEEEUL;
            s.Gpr[20] = 0xFFFFFFFF_41424344; s.Gpr[21] = 0xFFFFFFFF_45464748; s.Gpr[22] = 0xFFFFFFFF_494A4B4C; s.Gpr[23] = 0xFFFFFFFF_4D4E4F50;
        }, littleEndian, m =>
        {
            m.Vm.WriteMemory(Base, Pattern);
            InstructionBench.PlantBranchToSelf(m, 0x600, littleEndian); // the alignment handler: the fault is all Run(1) does
        });

    [Fact]
    public void Lswi_fills_the_low_words_of_consecutive_registers_and_zeroes_the_rest_of_the_last()
    {
        var run = Execute(Lswi13);
        Assert.Equal([0x01020304UL, 0x05060708UL, 0x090A0B0CUL, 0x0D000000UL], new[] { run.Gpr(20), run.Gpr(21), run.Gpr(22), run.Gpr(23) });
        Assert.Equal(0xEEEEEEEE_EEEEEEEEUL, run.Gpr(24));
    }

    [Fact]
    public void Lswi_wraps_from_r31_to_r0()
    {
        var run = Execute(LswiWrap);
        Assert.Equal([0x01020304UL, 0x05060708UL, 0x090A0B0CUL], new[] { run.Gpr(30), run.Gpr(31), run.Gpr(0) });
    }

    [Fact]
    public void Stswi_stores_exactly_NB_bytes_from_the_low_words()
    {
        var run = Execute(Stswi13);
        Assert.Equal([0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 14, 15, 16], run.Bytes(Base, 16));
    }

    [Fact]
    public void Lswx_and_stswx_take_their_count_from_XER_at_RA_plus_RB()
    {
        var load = Execute(Lswx, xer: 6);
        Assert.Equal((0x05060708UL, 0x090A0000UL), (load.Gpr(20), load.Gpr(21)));
        var store = Execute(Stswx, xer: 5);
        Assert.Equal([1, 2, 3, 4, 0x41, 0x42, 0x43, 0x44, 0x45, 10], store.Bytes(Base, 10));
    }

    [Fact]
    public void A_count_of_zero_in_XER_changes_nothing()
    {
        var run = Execute(Lswx, xer: 0);
        Assert.Equal(0xFFFFFFFF_41424344UL, run.Gpr(20));
        Assert.Equal(run.Before.Nip + 4, run.After.Nip);
    }

    [Theory]
    [InlineData(Lswi13)]
    [InlineData(Stswi13)]
    public void Little_endian_mode_takes_an_alignment_interrupt(string insn)
    {
        var run = Execute(insn, littleEndian: true);
        Assert.Equal(0x600UL, run.After.Nip);
        Assert.Equal(run.Before.Nip, run.After.Srr0);
        Assert.Equal(Pattern[..16], run.Bytes(Base, 16));
    }
}
