using ActorStep.Isa;

namespace ActorStep.Actors.Engine;

/// <summary>Where a host step can end (step-engine.md §3 point 2).</summary>
public enum EndPointKind
{
    /// <summary>The Trace handler: the instruction completed and was traced.</summary>
    TraceHandler,
    /// <summary>The first instruction of an interrupt handler (sc, a fault, an allowed asynchronous interrupt).</summary>
    InterruptHandler,
    /// <summary>The target of rfid, before it executes.</summary>
    ReturnTarget,
    /// <summary>A successor of the instruction (NIP+4 or a branch target) reached without a Trace; for an atomic sequence, the
    /// instruction after its store-conditional or the target of a conditional branch that leaves it.</summary>
    Successor,
}

/// <summary>One breakpoint a step owns: an effective address, the real address it maps to, and what reaching it means.</summary>
public sealed record EndPoint(ulong EffectiveAddress, ulong RealAddress, EndPointKind Kind, InterruptKind? Interrupt = null);

/// <summary>
/// A load-and-reserve … store-conditional sequence that one step runs whole (no Trace armed), because a trip to the host
/// between its instructions loses the reservation and the store-conditional would never succeed: from its larx, or from inside
/// it when the vcpu still holds its reservation (<see cref="ActorStep.Hypervisor.VcpuState.ReservationHeld"/>), the rest of it.
/// </summary>
/// <param name="StoreConditional">the effective address of the store-conditional that closes the sequence</param>
/// <param name="Instructions">the step's length in instructions, from NIP (the larx, or where the step begins inside) through
/// the store-conditional</param>
/// <param name="InsideRealAddresses">the real addresses of the instructions after NIP, through the store-conditional: a user
/// breakpoint there is out of memory for the step (the step would lose the reservation)</param>
public sealed record AtomicSequence(ulong StoreConditional, int Instructions, IReadOnlyList<ulong> InsideRealAddresses);

/// <summary>
/// The plan of one host step on the trace-interrupt backend: the end points, whether MSR[SE] is armed,
/// and what the step will clobber (SRR0, SRR1, the guest's own SE) — step-engine.md §3 points 2–3. With
/// <see cref="Sequence"/> the step is a whole atomic sequence, on either backend (the hardware step too).
/// </summary>
public sealed record StepPlan(
    ulong Nip,
    ulong NipRealAddress,
    uint Instruction,
    Op Op,
    InstructionEffects Effects,
    bool ArmTrace,
    bool GuestSe,
    ulong SavedSrr0,
    ulong SavedSrr1,
    ulong SourceValue,
    IReadOnlyList<EndPoint> EndPoints,
    AtomicSequence? Sequence = null)
{
    /// <summary>The instruction is an <c>sc 1</c> calling H_CEDE: the vcpu idles until an interrupt wakes it, and with
    /// interrupts allowed the step ends at that interrupt's handler.</summary>
    public bool Cedes { get; init; }

    public EndPoint? EndPointAt(ulong realAddress)
    {
        foreach (var e in EndPoints) if (e.RealAddress == realAddress) return e;
        return null;
    }
}
