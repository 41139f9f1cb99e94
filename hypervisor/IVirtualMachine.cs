namespace ActorStep.Hypervisor;

/// <summary>
/// A VM as KVM presents it: capabilities, vcpus, guest memory by real address, software breakpoints. The actors
/// talk to a VM only through this interface and <see cref="IVcpu"/>.
/// </summary>
/// <remarks><see cref="IDisposable.Dispose"/> gives back what the VM holds (guest RAM, a backend's process); its owner calls it
/// once nothing runs or reads the VM any more (the VM manager: after the VM's coordinator and vcpu actors have stopped).</remarks>
public interface IVirtualMachine : IDisposable
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

    /// <summary>What happened to the guest as a whole that no stop reports (a QEMU VM with QMP: a reset, a panic, a power-off);
    /// backends that cannot tell never raise it. Raised on any thread.</summary>
    event GuestLifecycleHandler? GuestLifecycle { add { } remove { } }

    /// <summary>Something may have made a ceded vcpu runnable (an H_PROD, an interrupt raised for it, RTAS start-cpu, the guest
    /// halting the machine): raised on the thread that did it, by backends that pace idle time
    /// (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>), so that an engine waiting for the vcpu's decrementer
    /// runs it at once.</summary>
    event VcpuWakeHandler? VcpuWakeRequested { add { } remove { } }

    /// <summary>
    /// Sets a data watchpoint for every vcpu (only where <see cref="HypervisorCapabilities.Watchpoints"/> says so): from now on a
    /// vcpu whose access matches it exits with <see cref="ExitReason.Watchpoint"/>. Setting the same one twice needs two
    /// removals (one per owner).
    /// </summary>
    void InsertWatchpoint(Watchpoint watchpoint) =>
        throw new NotSupportedException("this backend has no watchpoints");

    /// <summary>Takes out one <see cref="InsertWatchpoint"/> of an equal watchpoint; false when none was set.</summary>
    bool RemoveWatchpoint(Watchpoint watchpoint) => false;

    /// <summary>Names for the loaded image's code addresses (its symbol table), or null when it has none.</summary>
    SymbolIndex? Symbols => null;
}

/// <summary>The guest was reset, panicked or shut down: <paramref name="kind"/> ("reset", "panicked", "shutdown") and a one-line
/// <paramref name="detail"/> naming the backend's own reason.</summary>
public delegate void GuestLifecycleHandler(string kind, string detail);

/// <summary>Vcpu <paramref name="vcpu"/> may have become runnable (<see cref="IVirtualMachine.VcpuWakeRequested"/>).</summary>
public delegate void VcpuWakeHandler(int vcpu);

/// <summary>Bytes written to a VM's console; <paramref name="vcpu"/> is the vcpu that wrote them, or -1 when the backend cannot tell.</summary>
public delegate void ConsoleOutputHandler(int vcpu, ReadOnlySpan<byte> bytes);

/// <summary>
/// A VM that can only be resumed as a whole (<see cref="VcpuRunModel.AllStop"/>, QEMU's gdbstub): one call carries
/// every vcpu's action and returns at the first stop, with every vcpu halted. Its vcpus' <see cref="IVcpu.Run"/> is not
/// used; registers, translation and guest debug are per vcpu as on any backend, and only while the VM is stopped.
/// </summary>
public interface IAllStopVm : IVirtualMachine
{
    /// <summary>
    /// Runs the vcpus <paramref name="running"/> names (the others stay) until one of them exits with something to tell
    /// (<see cref="ExitReason.Debug"/>, <see cref="ExitReason.SingleStep"/>, <see cref="ExitReason.Watchpoint"/>, <see cref="ExitReason.Stopped"/>,
    /// <see cref="ExitReason.Checkstop"/>) or <see cref="RequestStop"/> is called; then every vcpu is stopped. Returns
    /// the vcpu that stopped the VM and its exit; a requested stop returns the first running vcpu with
    /// <see cref="ExitReason.BudgetExpired"/>. A backend that can tell that every running vcpu is ceded with nothing able to
    /// wake it may return one of them with <see cref="ExitReason.Idle"/> (QEMU's gdbstub cannot: such a resume runs until
    /// <see cref="RequestStop"/>). Blocks its caller: one thread drives the VM, as one gdb client drives QEMU.
    /// </summary>
    (int Vcpu, VcpuExit Exit) Resume(IReadOnlyCollection<int> running);
    /// <summary>Asks a <see cref="Resume"/> in progress (or the next one, if it has not started yet) to return soon
    /// (gdb's 0x03); any thread may call it.</summary>
    void RequestStop();
}
