using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine;

/// <summary>Stores into code already executed (and so decoded): the next execution runs the new word.</summary>
public class SelfModifyingCodeTests
{
    [Fact]
    public void An_unaligned_store_that_ends_in_the_next_page_changes_the_code_there()
    {
        // f (page-aligned) runs once, so its li 3, 1 at f+4 is decoded; then an 8-byte store at f-3 rewrites f-3..f+4:
        // the nop at f unchanged, the low byte of the li (little-endian) 1 → 2. Word 1 of f's page must be decoded again.
        var m = new TestMachine("""
                .org 0x5000
                .globl _start
            _start:
                bl f
                mr 10, 3
                lis 4, 0x0260
                sldi 4, 4, 32
                lis 5, f@h
                ori 5, 5, f@l
                addi 5, 5, -3
                std 4, 0(5)
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
        Assert.Equal(2UL, m.State.Gpr[11]);
    }

    [Fact]
    public void An_aligned_store_over_executed_code_changes_it()
    {
        var m = new TestMachine("""
                .org 0x5000
                .globl _start
            _start:
                bl f
                mr 10, 3
                lis 4, 0x3860
                ori 4, 4, 7
                lis 5, f@h
                ori 5, 5, f@l
                stw 4, 4(5)
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
        Assert.Equal(7UL, m.State.Gpr[11]);
    }

    [Fact]
    public void The_isas_sequence_for_modified_code_runs_the_new_word()
    {
        // Book II §1.7: store, dcbst, sync, icbi, isync, then execute. icbi drops the block's decoded words.
        var m = new TestMachine("""
                .org 0x5000
                .globl _start
            _start:
                bl f
                mr 10, 3
                lis 4, 0x3860
                ori 4, 4, 9
                lis 5, f@h
                ori 5, 5, f@l
                stw 4, 4(5)
                dcbst 0, 5
                sync
                icbi 0, 5
                isync
                bl f
                mr 11, 3
                lis 6, 0x7000
                icbi 0, 6
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
        Assert.Equal(9UL, m.State.Gpr[11]);
        Assert.Equal(m.Sym("done"), m.State.Nip); // icbi of an address outside RAM did not fault
    }
}
