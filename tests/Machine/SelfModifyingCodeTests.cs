using ActorStep.Tests.Machine.Interrupts;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine;

/// <summary>Stores into code already executed (and so decoded): the next execution runs the new word.</summary>
public class SelfModifyingCodeTests
{
    /// <summary>Calls f (page-aligned: nop, li 3, 1, blr) into r10, runs <paramref name="modify"/> (r5 = f), calls f again
    /// into r11; returns the machine stopped at <c>done</c>.</summary>
    private static TestMachine Run(string modify)
    {
        var m = new TestMachine($"""
                .org 0x5000
                .globl _start
            _start:
                bl f
                mr 10, 3
                lis 5, f@h
                ori 5, 5, f@l
            {modify}
                bl f
                mr 11, 3
            done:
                b done
                .org 0x6000
            f:
                nop
                li 3, 1
                blr
            """);
        m.RunTo("done");
        Assert.Equal(1UL, m.State.Gpr[10]);
        return m;
    }

    [Fact]
    public void An_aligned_store_over_executed_code_changes_it()
    {
        var m = Run("""
                lis 4, 0x3860
                ori 4, 4, 7
                stw 4, 4(5)
            """);
        Assert.Equal(7UL, m.State.Gpr[11]);
    }

    [Fact]
    public void An_unaligned_store_that_ends_in_the_next_page_changes_the_code_there()
    {
        // 8 bytes at f-3 rewrite f-3..f+4: the nop at f unchanged, the low byte of the li (little-endian) 1 → 2. Word 1
        // of f's page, reached only by the store's last byte, must be decoded again.
        var m = Run("""
                lis 4, 0x0260
                sldi 4, 4, 32
                addi 6, 5, -3
                std 4, 0(6)
            """);
        Assert.Equal(2UL, m.State.Gpr[11]);
    }

    [Fact]
    public void The_isas_sequence_for_modified_code_runs_the_new_word()
    {
        // Book II §1.7: store, dcbst, sync, icbi, isync, then execute. icbi drops the block's decoded words; an icbi of an
        // address outside RAM does nothing (the run reaches done).
        var m = Run("""
                lis 4, 0x3860
                ori 4, 4, 9
                stw 4, 4(5)
                dcbst 0, 5
                sync
                icbi 0, 5
                isync
                lis 6, 0x7000
                icbi 0, 6
            """);
        Assert.Equal(9UL, m.State.Gpr[11]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_dcbz_over_executed_code_leaves_zero_words_that_the_next_call_meets(bool le)
    {
        // dcbz clears f's 128-byte block after f ran: the call after it fetches a zero word, an illegal instruction (Program
        // interrupt at 0x700 with SRR0 = f), not the li that was decoded there.
        var g = new Guest($"""
                bl f
                lis 5, f@h
                ori 5, 5, f@l
                dcbz 0, 5
                bl f
                {Guest.Bp}
                .balign 128
            f:
                li 3, 1
                blr
            """, le);
        Assert.Equal(0x700UL, g.RunToBreak());
        Assert.Equal(g.Sym("f"), g.State.Srr0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_stvx_over_executed_code_changes_it(bool le)
    {
        // stvx copies 16 bytes that lvx loaded from `code` over f after f ran (byte for byte in either byte order): the second
        // call runs the new words.
        var g = new Guest($"""
                mfmsr 9
                oris 9, 9, 0x0200
                mtmsrd 9
                bl f
                mr 10, 3
                lis 5, f@h
                ori 5, 5, f@l
                lis 6, code@h
                ori 6, 6, code@l
                lvx 0, 0, 6
                stvx 0, 0, 5
                bl f
                mr 11, 3
                {Guest.Bp}
                .balign 16
            code:
                li 3, 7
                blr
                nop
                nop
            f:
                li 3, 1
                blr
                nop
                nop
            """, le);
        g.RunToBreak();
        Assert.Equal(1UL, g.State.Gpr[10]);
        Assert.Equal(7UL, g.State.Gpr[11]);
    }
}
