namespace ActorStep.Hypervisor;

/// <summary>Why <see cref="IVcpu.Run"/> returned.</summary>
public enum ExitReason
{
    /// <summary>The budget of instructions (timebase ticks) was used up, or an exit was requested.</summary>
    BudgetExpired,
    /// <summary>The vcpu fetched the debug instruction; NIP is its address, not advanced (KVM_EXIT_DEBUG).</summary>
    Debug,
    /// <summary>Hardware single-step completed one instruction (only where the capability exists).</summary>
    SingleStep,
    /// <summary>The vcpu is ceded (H_CEDE) and nothing woke it within the budget.</summary>
    Idle,
    /// <summary>The guest stopped this vcpu for good (H_ACTORSTEP_STOP); <see cref="VcpuExit.Status"/> holds its code.</summary>
    Stopped,
    /// <summary>The guest cannot continue (an interrupt at its own handler's first instruction: a fault loop).</summary>
    Checkstop,
    /// <summary>A data access hit a watchpoint (<see cref="IVirtualMachine.InsertWatchpoint"/>): NIP is the accessing
    /// instruction, not executed (as POWER's DAWR stops it); <see cref="VcpuExit.Watch"/> says which watchpoint and access.
    /// Running the vcpu again from that instruction performs the access without stopping for it again.</summary>
    Watchpoint,
}

/// <summary>One exit from running a vcpu; <paramref name="Watch"/> only with <see cref="ExitReason.Watchpoint"/>.
/// <paramref name="WakesIn"/>, with <see cref="ExitReason.Idle"/> on a backend that paces idle time
/// (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>): timebase ticks until the ceded vcpu wakes by itself (its
/// decrementer falls due, MSR[EE]=1, interrupts not held); null when only something else can wake it (an H_PROD, an IPI).</summary>
public readonly record struct VcpuExit(ExitReason Reason, ulong Address, long Status = 0, string? Detail = null, WatchpointHit? Watch = null,
    ulong? WakesIn = null);

/// <summary>Guest-debug settings (KVM_SET_GUEST_DEBUG).</summary>
[Flags]
public enum GuestDebug
{
    None = 0,
    /// <summary>The debug instruction exits to the host instead of raising a program interrupt in the guest.</summary>
    SoftwareBreakpoints = 1,
    /// <summary>Exit after each instruction; refused unless the capability says hardware single-step.</summary>
    SingleStep = 2,
}

/// <summary>Kinds of access for translation and faults.</summary>
public enum AccessKind { Fetch, Load, Store }

/// <summary>
/// A software breakpoint as the engine asks a backend to plant it: the effective address the debugger means and the
/// real address it maps to with the vcpu's translation when it was planted. The backend decides how: the simulator
/// writes the debug word at the real address; QEMU's gdbstub is sent <c>Z0</c> at the effective address.
/// </summary>
public readonly record struct SoftwareBreakpoint(ulong EffectiveAddress, ulong RealAddress);

/// <summary>
/// The backend can no longer serve the VM (a QEMU that died or dropped its gdbstub connection): what was asked cannot be done,
/// and nothing will ever run again. The message says what happened, for the user.
/// </summary>
public class BackendLostException(string message, Exception? inner = null) : Exception(message, inner);
