namespace ActorStep.Hypervisor;

/// <summary>Which kind of KVM a backend behaves like.</summary>
public enum HypervisorFlavour
{
    /// <summary>KVM-HV: no hardware single-step; a Trace interrupt stays in the guest.</summary>
    Hv,
    /// <summary>KVM-PR: with guest-debug single-step on, a Trace exits to the host.</summary>
    Pr,
}

/// <summary>How a backend lets its vcpus run.</summary>
public enum VcpuRunModel
{
    /// <summary>Each vcpu runs on its owner's thread, independently of the others (KVM's one thread per vcpu, the simulator).</summary>
    IndependentVcpus,
    /// <summary>
    /// The VM runs as a whole in all-stop: one resume carries every vcpu's action, the first stop halts them all, and
    /// while it runs only an interrupt request may be sent (QEMU's gdbstub). Such a backend implements <see cref="IAllStopVm"/>.
    /// </summary>
    AllStop,
}

/// <summary>
/// What a backend can do, as KVM capabilities say it. The engine decides by these, never by which backend it is.
/// </summary>
/// <param name="HardwareSingleStep">KVM_CAP_PPC_GUEST_DEBUG_SSTEP: 0 on KVM-HV, 1 on KVM-PR (step-engine.md §3 point 1)</param>
/// <param name="DebugInstruction">the word whose fetch exits to the host (KVM_REG_PPC_DEBUG_INST: 0x00dddd00)</param>
/// <param name="Flavour">the kind of KVM, for people: what the VM is described as</param>
/// <param name="HoldsAsyncInterrupts">decrementer and external interrupts can be held during a step (QEMU's NOIRQ|NOTIMER);
/// QEMU's KVM path cannot, and a step there may end at their handlers</param>
/// <param name="RunModel">whether vcpus run independently or the VM only as a whole</param>
/// <param name="BreakpointsInMemory">a planted software breakpoint is a word in guest memory (the simulator, KVM), which reads
/// show and guest stores overwrite; false where the backend keeps breakpoints outside memory (QEMU's TCG matches them against
/// the fetch address), so that memory reads need no hiding</param>
/// <param name="Watchpoints">data watchpoints can be set (<see cref="IVirtualMachine.InsertWatchpoint"/>): DAWR-style, by
/// effective address, stopping before the access</param>
/// <param name="PacedTimebaseFrequency">the backend keeps the guest's time itself, one timebase tick per instruction (the
/// simulator), and lets a vcpu ceded in H_CEDE idle only when asked (<see cref="IVcpu.PassIdleTime"/>): its Run returns
/// <see cref="ExitReason.Idle"/> at once, saying when the vcpu would wake by itself (<see cref="VcpuExit.WakesIn"/>), and
/// raises <see cref="IVirtualMachine.VcpuWakeRequested"/> when something else may wake it. The engine then waits on the host's
/// clock at this many ticks per second, with no thread, so that an idle guest's clock follows the wall clock and costs no CPU.
/// 0: the backend's time is the host's (KVM, QEMU), or a ceded vcpu's Run skips its idle time at once (a test machine)</param>
public sealed record HypervisorCapabilities(
    bool HardwareSingleStep,
    uint DebugInstruction,
    HypervisorFlavour Flavour,
    bool HoldsAsyncInterrupts = true,
    VcpuRunModel RunModel = VcpuRunModel.IndependentVcpus,
    bool BreakpointsInMemory = true,
    bool Watchpoints = false,
    ulong PacedTimebaseFrequency = 0)
{
    /// <summary>The flavour as the API names it ("kvm-hv", "kvm-pr").</summary>
    public string FlavourName => Flavour == HypervisorFlavour.Pr ? "kvm-pr" : "kvm-hv";
}
