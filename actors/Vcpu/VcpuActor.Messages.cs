using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
namespace ActorStep.Actors.Vcpu;

/// <summary>How a vcpu runs during one slice.</summary>
public enum SliceMode
{
    /// <summary>Run freely (continue).</summary>
    Continue,
    /// <summary>Host-step: one instruction (or the remaining count), reported when done.</summary>
    Step,
    /// <summary>An invisible step that re-enters a vcpu parked on another vcpu's step breakpoint (§4).</summary>
    Reenter,
}

/// <summary>What happened during one slice.</summary>
public enum SliceOutcome
{
    /// <summary>The budget was used; nothing to report (a step may still be in progress).</summary>
    Ran,
    /// <summary>Ceded (H_CEDE) with nothing to wake it within the budget.</summary>
    Idle,
    /// <summary>The host step (or all of its count) is done.</summary>
    StepDone,
    /// <summary>The vcpu reached a user breakpoint; NIP is its address, not executed.</summary>
    BreakpointHit,
    /// <summary>The vcpu trapped on another vcpu's step breakpoint: parked, unreported, state intact (§4).</summary>
    Parked,
    /// <summary>The guest stopped this vcpu for good (H_ACTORSTEP_STOP).</summary>
    GuestStopped,
    /// <summary>The guest cannot continue (a fault loop).</summary>
    Checkstop,
    /// <summary>The actor failed during the slice and was restarted; any step was abandoned cleanly.</summary>
    Faulted,
}

public static partial class VcpuProtocol
{
    /// <summary>Coordinator → VcpuActor: run at most <paramref name="Budget"/> instructions. Reply: <see cref="SliceEnded"/>.
    /// A step with a <paramref name="Range"/> goes on stepping while NIP stays in it (gdb's range stepping).</summary>
    public sealed record RunSlice(long Budget, SliceMode Mode, bool HoldAsyncInterrupts = true, int StepCount = 1, StepRange? Range = null);

    /// <summary>VcpuActor → coordinator: the slice is over; <paramref name="State"/> is the register state now (guest view).</summary>
    public sealed record SliceEnded(int Vcpu, SliceOutcome Outcome, VcpuState State, StepDetail? Step = null,
        ulong Address = 0, long Status = 0, string? Detail = null);

    /// <summary>Where and how a host step ended.</summary>
    public sealed record StepDetail(TraceStep.Completion Completion, ulong From, ulong To, int Steps);

    /// <summary>Coordinator → VcpuActor: abandon a step in progress (a halt or another vcpu's event). Reply: <see cref="StepCancelled"/>.</summary>
    public sealed record CancelStep;

    /// <summary>VcpuActor → coordinator: no breakpoint of its step remains and SE is the guest's own.</summary>
    public sealed record StepCancelled(int Vcpu, VcpuState State);

    /// <summary>Anyone → VcpuActor: the register state (from the cache, synced once per exit). Reply: <see cref="Registers"/>.</summary>
    public sealed record GetRegisters;

    public sealed record Registers(int Vcpu, VcpuState State);

    /// <summary>Coordinator → VcpuActor: write registers (vcpu stopped). Reply: <see cref="Registers"/> with the new state.</summary>
    public sealed record SetRegisters(VcpuState State);
}
