namespace ActorStep.Hypervisor;

/// <summary>
/// One vcpu as KVM presents it. Not thread-safe: one owner drives it (KVM's one-thread-per-vcpu rule),
/// except <see cref="RequestExit"/>, which any thread may call (KVM's immediate_exit / signal).
/// </summary>
public interface IVcpu
{
    int Index { get; }
    VcpuExit Run(long budget);
    /// <summary>A fresh snapshot of the registers (KVM_GET_REGS and friends into a new buffer).</summary>
    VcpuState GetRegisters();
    /// <summary>Fills the caller's buffer, as KVM_GET_REGS does: no allocation on a hot path.</summary>
    void GetRegisters(VcpuState into);
    /// <summary>Writes the registers (KVM_SET_REGS). The engine writes back only what it read from the stopped vcpu, so
    /// time (TB, DEC) is never moved by it; a debugger's explicit DEC write goes through here too.</summary>
    void SetRegisters(VcpuState state);
    ulong GetOneReg(int spr);
    void SetOneReg(int spr, ulong value);
    /// <summary>
    /// EA → RA as this vcpu's MMU would translate it now (its page tables, its partition), with the relocation and
    /// privilege of <paramref name="msr"/>: the owner asks with its current MSR, or with the MSR an instruction is about
    /// to install (an rfid's target, an interrupt handler).
    /// </summary>
    bool TryTranslate(ulong effectiveAddress, ulong msr, AccessKind access, out ulong realAddress);
    void SetGuestDebug(GuestDebug debug);
    /// <summary>Hold decrementer and external interrupts (QEMU's NOIRQ|NOTIMER step flags); only where
    /// <see cref="HypervisorCapabilities.HoldsAsyncInterrupts"/> says so.</summary>
    bool HoldAsyncInterrupts { get; set; }
    /// <summary>The engine performed one instruction itself (an rfid no breakpoint can catch): time advances as if the
    /// vcpu had run it. The backend keeps the clock; the engine never writes TB or DEC.</summary>
    void RetireEmulatedInstruction();
    /// <summary>A vcpu ceded in H_CEDE lets <paramref name="ticks"/> of guest time pass, running nothing: the host's time that
    /// passed while the engine waited for it (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>). Nothing when it is
    /// not ceded, or on a backend whose time is the host's. The engine never writes TB or DEC; the backend moves them.</summary>
    void PassIdleTime(ulong ticks) { }
    /// <summary>Ask a running <see cref="Run"/> on another thread to return soon (BudgetExpired).</summary>
    void RequestExit();
    bool IsStoppedForGood { get; }
    long InstructionsRetired { get; }
}
