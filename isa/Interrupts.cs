namespace ActorStep.Isa;

/// <summary>The interrupts a guest handles itself, with their vectors (Book III §6.5).</summary>
public enum InterruptKind
{
    DataStorage = 0x300,
    /// <summary>Radix: an EA outside the tree or in a quadrant the guest cannot use (Book III §6.5.4).</summary>
    DataSegment = 0x380,
    InstructionStorage = 0x400,
    /// <summary>Radix: the instruction-side twin of <see cref="DataSegment"/> (Book III §6.5.6).</summary>
    InstructionSegment = 0x480,
    External = 0x500,
    Alignment = 0x600,
    Program = 0x700,
    FloatingPointUnavailable = 0x800,
    Decrementer = 0x900,
    SystemCall = 0xC00,
    Trace = 0xD00,
    /// <summary>A VMX instruction with MSR[VEC]=0 (Book III §6.5.14).</summary>
    VectorUnavailable = 0xF20,
    /// <summary>A VSX instruction with MSR[VSX]=0 (Book III §6.5.15).</summary>
    VsxUnavailable = 0xF40,
}

public static class InterruptVectors
{
    /// <summary>Offset added to the vector when AIL applies (Book III §6.5, LPCR[AIL]).</summary>
    public static ulong AilOffset(int ail) => ail switch
    {
        2 => 0x18000,
        3 => 0xC000000000004000,
        _ => 0,
    };

    /// <summary>AIL applies only with MSR[IR]=1 and MSR[DR]=1 at the interrupt (Book III §6.5).</summary>
    public static bool AilApplies(ulong msr, int ail) =>
        (ail == 2 || ail == 3) && (msr & (Msr.IR | Msr.DR)) == (Msr.IR | Msr.DR);

    /// <summary>Where the handler of <paramref name="kind"/> starts for a vcpu in state (msr, lpcr).</summary>
    public static ulong HandlerAddress(InterruptKind kind, ulong msr, ulong lpcr)
    {
        int ail = Lpcr.Ail(lpcr);
        return (ulong)kind | (AilApplies(msr, ail) ? AilOffset(ail) : 0);
    }

    /// <summary>The MSR an interrupt installs: SF, HV and ME kept, LE from LPCR[ILE], IR/DR only under AIL.</summary>
    public static ulong NewMsr(ulong msr, ulong lpcr)
    {
        ulong m = Msr.SF | (msr & (Msr.HV | Msr.ME));
        if ((lpcr & Lpcr.ILE) != 0) m |= Msr.LE;
        if (AilApplies(msr, Lpcr.Ail(lpcr))) m |= Msr.IR | Msr.DR;
        return m;
    }
}

/// <summary>
/// What taking an interrupt does to the registers (Power ISA v3.0 Book III §6.5), the one place these rules live: the
/// simulator delivers interrupts with it and the engine with it when it must raise one by register writes.
/// </summary>
/// <param name="Nip">the handler's first instruction: vector | AIL offset</param>
/// <param name="Msr">the new MSR (SF, HV/ME kept, LE = LPCR[ILE], IR/DR only under AIL)</param>
/// <param name="Srr0">the address the interrupt returns to (kind-specific)</param>
/// <param name="Srr1">the MSR with bits 33:36 and 42:47 replaced by the interrupt-specific bits</param>
public readonly record struct InterruptEntry(ulong Nip, ulong Msr, ulong Srr0, ulong Srr1)
{
    /// <summary>The entry into <paramref name="kind"/> from a vcpu in state (<paramref name="msr"/>, <paramref name="lpcr"/>).</summary>
    public static InterruptEntry Of(InterruptKind kind, ulong msr, ulong lpcr, ulong srr0, ulong srr1Bits) => new(
        InterruptVectors.HandlerAddress(kind, msr, lpcr),
        InterruptVectors.NewMsr(msr, lpcr),
        srr0,
        (msr & ~ActorStep.Isa.Msr.PartialFunctionBits) | srr1Bits);
}
