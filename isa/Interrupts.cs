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
    /// <summary>A facility FSCR disables (here: scv with FSCR[SCV]=0); FSCR[IC] names it (Book III, "Facility Unavailable Interrupt").</summary>
    FacilityUnavailable = 0xF60,
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

/// <summary>
/// What <c>scv LEV</c> does (Power ISA v3.0 Book III, "System Call Vectored Interrupt"; QEMU's powerpc_excp_books): SRR0/SRR1 are
/// left alone; LR = the next instruction, CTR = the MSR with bits 33:36 and 42:47 cleared; the new MSR is an interrupt's with
/// EE and RI kept; the handler is at 0x17000 + LEV×0x20, or 0xC000000000003000 + LEV×0x20 when AIL=3 applies (AIL=2 sets
/// IR/DR but keeps the address). <c>rfscv</c> returns: NIP = LR &amp; ~3, MSR ← CTR as <c>rfid</c> installs SRR1.
/// </summary>
public readonly record struct SystemCallVectoredEntry(ulong Nip, ulong Msr, ulong Lr, ulong Ctr)
{
    public const ulong Vector = 0x17000, Ail3Vector = 0xC000000000003000;

    public static SystemCallVectoredEntry Of(int lev, ulong msr, ulong lpcr, ulong nextInstruction)
    {
        int ail = Lpcr.Ail(lpcr);
        ulong vector = (ail == 3 && InterruptVectors.AilApplies(msr, ail) ? Ail3Vector : Vector) + 0x20UL * (ulong)lev;
        ulong newMsr = InterruptVectors.NewMsr(msr, lpcr) | (msr & (ActorStep.Isa.Msr.EE | ActorStep.Isa.Msr.RI));
        return new(vector, newMsr, nextInstruction, msr & ~ActorStep.Isa.Msr.PartialFunctionBits);
    }
}

/// <summary>FSCR (SPR 153, Book III "Facility Status and Control Register"): the facility enables and IC, bits 0:7, the cause of a Facility Unavailable interrupt.</summary>
public static class Fscr
{
    /// <summary>FSCR[SCV] (bit 51): scv is allowed.</summary>
    public const ulong SCV = 1UL << 12;
    /// <summary>The IC value of a disabled scv (the facility's bit number from the right, as Linux's FSCR_SCV_LG).</summary>
    public const ulong CauseScv = 12;
    public static ulong WithCause(ulong fscr, ulong cause) => (fscr & ~(0xFFUL << 56)) | (cause << 56);
}
