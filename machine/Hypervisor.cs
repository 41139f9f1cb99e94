using ActorStep.Machine.Isa;

namespace ActorStep.Machine;

/// <summary>
/// What a backend can do, as KVM capabilities say it: the one that matters is hardware single-step
/// (KVM_CAP_PPC_GUEST_DEBUG_SSTEP: 0 on KVM-HV, 1 on KVM-PR).
/// </summary>
public sealed record HypervisorCapabilities(bool HardwareSingleStep, uint DebugInstruction, string Flavour);

/// <summary>Which kind of KVM the simulated machine behaves like.</summary>
public enum HypervisorFlavour
{
    /// <summary>KVM-HV: no hardware single-step; a Trace interrupt stays in the guest.</summary>
    Hv,
    /// <summary>KVM-PR: with guest-debug single-step on, a Trace exits to the host.</summary>
    Pr,
}

/// <summary>Why <see cref="IVcpu.Run"/> returned.</summary>
public enum ExitReason
{
    /// <summary>The budget of instructions (timebase ticks) was used up.</summary>
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
}

/// <summary>One exit from running a vcpu.</summary>
public readonly record struct VcpuExit(ExitReason Reason, ulong Address, long Status = 0, string? Detail = null);

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
/// A VM as KVM presents it: capabilities, vcpus, guest memory by real address. The actors talk to
/// a VM only through this interface and <see cref="IVcpu"/>.
/// </summary>
public interface IVirtualMachine
{
    HypervisorCapabilities Capabilities { get; }
    int VcpuCount { get; }
    ulong MemorySize { get; }
    /// <summary>The byte order of the loaded image (what a debugger should assume by default).</summary>
    bool ImageIsLittleEndian { get; }
    IVcpu GetVcpu(int index);
    void ReadMemory(ulong realAddress, Span<byte> into);
    void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data);
    /// <summary>Console output from the guest (H_PUT_TERM_CHAR), per vcpu, in order.</summary>
    event ConsoleOutputHandler? ConsoleOutput;
}

public delegate void ConsoleOutputHandler(int vcpu, ReadOnlySpan<byte> bytes);

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
    void SetRegisters(VcpuState state);
    ulong GetOneReg(int spr);
    void SetOneReg(int spr, ulong value);
    bool TryTranslate(ulong effectiveAddress, ulong msr, AccessKind access, out ulong realAddress);
    void SetGuestDebug(GuestDebug debug);
    /// <summary>Hold decrementer and external interrupts (QEMU's NOIRQ|NOTIMER step flags).</summary>
    bool HoldAsyncInterrupts { get; set; }
    /// <summary>Ask a running <see cref="Run"/> on another thread to return soon (BudgetExpired).</summary>
    void RequestExit();
    bool IsStoppedForGood { get; }
    long InstructionsRetired { get; }
}
