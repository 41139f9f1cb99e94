using System.Runtime.CompilerServices;

namespace ActorStep.Isa;

/// <summary>Where a branch goes when taken (Power ISA v3.0 Book I §2.4): the machine executes branches with it, the step
/// engine predicts their successors with it.</summary>
public static class Branches
{
    /// <summary>
    /// The target of branch <paramref name="op"/> (b, bc, bclr, bcctr) at <paramref name="nip"/>, with LR and CTR as they
    /// are before the branch executes (a bclrl goes to the old LR). Not reduced to 32 bits: the caller applies the
    /// addressing mode.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Target(Op op, uint insn, ulong nip, ulong lr, ulong ctr) => op switch
    {
        Op.B => Displaced(new FormI(insn).AA, new FormI(insn).LI, nip),
        Op.Bc => Displaced(new FormB(insn).AA, new FormB(insn).BD, nip),
        Op.Bclr => lr & ~3UL,
        Op.Bcctr => ctr & ~3UL,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not a branch"),
    };

    /// <summary>AA=1: the displacement is the address; AA=0: it is relative to the branch.</summary>
    private static ulong Displaced(bool absolute, long displacement, ulong nip) =>
        absolute ? (ulong)displacement : nip + (ulong)displacement;
}
