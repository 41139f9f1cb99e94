using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;

namespace ActorStep.Actors.Engine;

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
    /// <summary>Ceded (H_CEDE) with nothing to wake it within the budget; time passed, and a later slice may see it woken (by
    /// the decrementer, which this vcpu may take, or by another vcpu's H_PROD). In a slice that paces idle time
    /// (<see cref="SliceRequest.PaceIdle"/>) no time passed: <see cref="SliceResult.WakesIn"/> says when the decrementer
    /// falls due, for the coordinator to wait on the host's clock.</summary>
    Idle,
    /// <summary>Ceded (H_CEDE), and it ran nothing in the slice: nothing of its own can wake it — the slice holds the decrementer
    /// and external interrupts (a step's default) or MSR[EE] is 0 — so only another vcpu's H_PROD can. Giving it more slices
    /// before another vcpu has run would only spin. <see cref="SliceResult.Detail"/> says why; a step stays planted (its steps
    /// done so far in <see cref="SliceResult.Step"/>).</summary>
    Ceded,
    /// <summary>The host step (or all of its count) is done.</summary>
    StepDone,
    /// <summary>The vcpu reached a user breakpoint; NIP is its address, not executed.</summary>
    BreakpointHit,
    /// <summary>The vcpu trapped on another vcpu's step breakpoint: parked, unreported, state intact (§4).</summary>
    Parked,
    /// <summary>A data access hit a watchpoint: NIP is the accessing instruction, not executed (<see cref="SliceResult.Watch"/>).
    /// A step in progress was abandoned (nothing of it left); resuming the vcpu performs that access.</summary>
    WatchpointHit,
    /// <summary>The guest stopped this vcpu for good (H_ACTORSTEP_STOP).</summary>
    GuestStopped,
    /// <summary>The guest cannot continue (a fault loop).</summary>
    Checkstop,
    /// <summary>The actor failed during the slice and was restarted; any step was abandoned cleanly.</summary>
    Faulted,
}

/// <summary>
/// One slice for <see cref="VcpuEngine.RunSlice"/>: run at most <paramref name="Budget"/> instructions in
/// <paramref name="Mode"/>. A step of <paramref name="StepCount"/> instructions may span several slices; a step with a
/// <paramref name="Range"/> goes on stepping while NIP stays in it (gdb's range stepping). A budget of 0 only prepares a
/// step (plans it and plants its breakpoints). On a backend that paces idle time
/// (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>): <paramref name="IdleTicks"/> of guest time pass first on a
/// ceded vcpu (the host's time it waited); a continue with <paramref name="PaceIdle"/> ends as
/// <see cref="SliceOutcome.Idle"/> when the vcpu idles (the coordinator waits for it), any other slice lets the idle time pass
/// itself, counted against its budget like instructions (a step ends at the waking interrupt's handler without waiting for
/// it on the host's clock; the deterministic mode's time follows instructions).
/// </summary>
public readonly record struct SliceRequest(long Budget, SliceMode Mode, bool HoldAsyncInterrupts = true, int StepCount = 1, StepRange? Range = null,
    ulong IdleTicks = 0, bool PaceIdle = false);

/// <summary>
/// How a slice ended: <paramref name="State"/> is the register state now (guest view; the engine never changes that object
/// again); <paramref name="Step"/> says where and how a finished host step went; <paramref name="Address"/>,
/// <paramref name="Status"/> and <paramref name="Detail"/> are the exit's (a parked vcpu's breakpoint, the guest's stop code);
/// <paramref name="Watch"/> the watchpoint and access of a <see cref="SliceOutcome.WatchpointHit"/>; <paramref name="WakesIn"/>
/// the timebase ticks until an <see cref="SliceOutcome.Idle"/> vcpu of a pacing slice wakes by itself.
/// </summary>
public readonly record struct SliceResult(SliceOutcome Outcome, VcpuState State, StepDetail? Step = null,
    ulong Address = 0, long Status = 0, string? Detail = null, WatchpointHit? Watch = null, ulong? WakesIn = null);

/// <summary>Where and how a host step ended.</summary>
public sealed record StepDetail(TraceStep.Completion Completion, ulong From, ulong To, int Steps);
