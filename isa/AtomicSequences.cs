namespace ActorStep.Isa;

/// <summary>
/// The load-and-reserve and store-conditional instructions (Power ISA v3.0 Book II §4.6.2) by encoding — primary opcode 31
/// and the extended opcode — whether or not a backend executes them (the simulator knows only lwarx/ldarx/stwcx./stdcx.;
/// a real POWER9 has all ten), so the step engine recognises an atomic sequence on any backend. The same test as gdb's
/// <c>IS_LOAD_AND_RESERVE_INSN</c> / <c>IS_STORE_CONDITIONAL_INSN</c> (gdb/rs6000-tdep.c).
/// </summary>
public static class AtomicSequences
{
    /// <summary>How far a step looks for the store-conditional after a load-and-reserve, in instructions (gdb's
    /// <c>atomic_sequence_length</c>).</summary>
    public const int Window = 16;

    private const uint Lbarx = 52, Lharx = 116, Lwarx = 20, Ldarx = 84, Lqarx = 276;
    private const uint Stbcx = 694, Sthcx = 726, Stwcx = 150, Stdcx = 214, Stqcx = 182;

    /// <summary>lbarx, lharx, lwarx, ldarx, lqarx (the EH hint bit is ignored).</summary>
    public static bool IsLoadAndReserve(uint insn) =>
        insn >> 26 == 31 && ((insn >> 1) & 0x3FF) is Lbarx or Lharx or Lwarx or Ldarx or Lqarx;

    /// <summary>stbcx., sthcx., stwcx., stdcx., stqcx. (Rc=1: without it the encoding is invalid).</summary>
    public static bool IsStoreConditional(uint insn) =>
        insn >> 26 == 31 && (insn & 1) == 1 && ((insn >> 1) & 0x3FF) is Stbcx or Sthcx or Stwcx or Stdcx or Stqcx;
}
