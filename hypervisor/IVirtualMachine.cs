namespace ActorStep.Hypervisor;

/// <summary>
/// A VM as KVM presents it: capabilities, vcpus, guest memory by real address, software breakpoints. The actors
/// talk to a VM only through this interface and <see cref="IVcpu"/>.
/// </summary>
public interface IVirtualMachine
{
    HypervisorCapabilities Capabilities { get; }
    int VcpuCount { get; }
    ulong MemorySize { get; }
    /// <summary>The byte order of the loaded image (what a debugger should assume by default).</summary>
    bool ImageIsLittleEndian { get; }
    IVcpu GetVcpu(int index);
    /// <summary>Guest memory by real address, as the guest's stores left it (a planted breakpoint may show).</summary>
    void ReadMemory(ulong realAddress, Span<byte> into);
    void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data);
    /// <summary>
    /// Plants a software breakpoint: from now on a vcpu that fetches it exits with <see cref="ExitReason.Debug"/>
    /// instead of executing the word there. The engine's breakpoint table calls this once per address and hides the
    /// breakpoint from debugger reads itself.
    /// </summary>
    void InsertSoftwareBreakpoint(SoftwareBreakpoint breakpoint);
    /// <summary>Takes a breakpoint planted by <see cref="InsertSoftwareBreakpoint"/> out; the guest's word runs again.</summary>
    void RemoveSoftwareBreakpoint(SoftwareBreakpoint breakpoint);
    /// <summary>The VM's console (H_PUT_TERM_CHAR, a vty), in the order written.</summary>
    event ConsoleOutputHandler? ConsoleOutput;
}

/// <summary>Bytes written to a VM's console; <paramref name="vcpu"/> is the vcpu that wrote them, or -1 when the backend cannot tell.</summary>
public delegate void ConsoleOutputHandler(int vcpu, ReadOnlySpan<byte> bytes);

/// <summary>
/// A VM that can only be resumed as a whole (<see cref="VcpuRunModel.AllStop"/>, QEMU's gdbstub): one call carries
/// every vcpu's action and returns at the first stop, with every vcpu halted.
/// </summary>
public interface IAllStopVm : IVirtualMachine
{
    /// <summary>Runs the vcpus as <paramref name="actions"/> says (a vcpu not named stays) until one of them exits
    /// or <see cref="RequestStop"/>. Returns the vcpu that stopped first and why.</summary>
    (int Vcpu, VcpuExit Exit) Resume(IReadOnlyDictionary<int, VcpuResumeAction> actions, CancellationToken cancel);
    /// <summary>Asks a running <see cref="Resume"/> to return (gdb's 0x03); any thread may call it.</summary>
    void RequestStop();
}

/// <summary>What one vcpu does in an all-stop resume.</summary>
public enum VcpuResumeAction { Stay, Continue }
