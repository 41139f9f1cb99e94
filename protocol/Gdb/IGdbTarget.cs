namespace ActorStep.Protocol.Gdb;

/// <summary>
/// What the gdb session needs from a VM (the bridge implements it over gRPC; tests over an in-memory fake).
/// Vcpus are numbered from 0 here; gdb's thread ids (vcpu + 1) never leave the session.
/// Register values are most-significant byte first (the ISA's order) and exactly as wide as
/// <see cref="TargetDescription"/> says; the session converts them to the wire's byte order.
/// Failures are exceptions: the session answers them with an <c>E NN</c> reply and keeps the connection.
/// Optional capabilities are default members returning null (the C# form of gdbstub's IDETs): the session
/// derives qSupported and <c>vCont?</c> from which are present.
/// </summary>
public interface IGdbTarget
{
    /// <summary>Every vcpu of the VM, in index order, with its state.</summary>
    Task<IReadOnlyList<GdbThreadInfo>> GetThreadsAsync(CancellationToken ct);

    /// <summary>All registers of one (stopped) vcpu: gdb regnum → value, MSB first. A missing regnum is sent as
    /// unavailable (<c>xx</c>).</summary>
    Task<IReadOnlyDictionary<int, byte[]>> ReadRegistersAsync(int vcpu, CancellationToken ct);

    /// <summary>Writes one register of a stopped vcpu; <paramref name="value"/> is MSB first.</summary>
    Task WriteRegisterAsync(int vcpu, int regnum, byte[] value, CancellationToken ct);

    /// <summary>Reads guest memory at an effective address translated as <paramref name="vcpu"/> would (its MSR).
    /// May return fewer bytes than asked (a partial read); none means the address is not readable.</summary>
    Task<byte[]> ReadMemoryAsync(int vcpu, ulong address, int length, CancellationToken ct);

    /// <summary>Writes guest memory at an effective address translated as <paramref name="vcpu"/> would.</summary>
    Task WriteMemoryAsync(int vcpu, ulong address, byte[] data, CancellationToken ct);

    /// <summary>Plants a software breakpoint (gdb's <c>Z0,addr,4</c>); the target chooses the trap word.</summary>
    Task InsertSwBreakpointAsync(ulong address, CancellationToken ct);

    /// <summary>Removes a software breakpoint (gdb's <c>z0,addr,4</c>).</summary>
    Task RemoveSwBreakpointAsync(ulong address, CancellationToken ct);

    /// <summary>One all-stop resume (see <see cref="GdbResume"/>). Completes when the VM has stopped again, with the one
    /// event to report; if several vcpus stopped at once, the target keeps the others and reports them on the following
    /// resumes.</summary>
    Task<GdbStopEvent> ResumeAsync(GdbResume resume, CancellationToken ct);

    /// <summary>gdb's Ctrl-C: stop the VM; the pending <see cref="ResumeAsync"/> then completes (reason
    /// <see cref="GdbStopReason.Halted"/> unless something else stopped it first).</summary>
    Task InterruptAsync(CancellationToken ct);

    /// <summary>gdb detached (<c>D</c>): let the VM run on without this debugger.</summary>
    Task DetachAsync(CancellationToken ct);

    /// <summary>gdb's <c>kill</c> (<c>k</c>, <c>vKill</c>): stop the VM for good.</summary>
    Task KillAsync(CancellationToken ct);

    /// <summary>Hardware breakpoints (<c>Z1</c>/<c>z1</c>); when present qSupported says <c>hwbreak+</c>.</summary>
    IGdbHwBreakpoints? HwBreakpoints => null;

    /// <summary>gdb's <c>monitor …</c> (<c>qRcmd</c>).</summary>
    IGdbMonitor? Monitor => null;

    /// <summary>Watchpoints (<c>Z2</c>–<c>Z4</c>); without them gdb is told they are unsupported (empty reply) and falls back to
    /// software watchpoints.</summary>
    IGdbWatchpoints? Watchpoints => null;
    /// <summary>Non-stop mode (<c>set non-stop on</c>); when present qSupported says <c>QNonStop+</c> and <c>QNonStop:1</c> is
    /// accepted. Null for a VM that runs only as a whole (QEMU's gdbstub): <c>QNonStop:1</c> then gets the empty reply.</summary>
    IGdbNonStop? NonStop => null;
}

/// <summary>What a watchpoint stops: the <c>Z</c> packet's type (2 write, 3 read, 4 access).</summary>
public enum GdbWatchKind { Write = 2, Read = 3, Access = 4 }

/// <summary>Optional: watchpoints (gdb manual, "Packets", <c>Z2</c>/<c>Z3</c>/<c>Z4</c>): <paramref name="length"/> bytes from
/// <paramref name="address"/>, for every vcpu. A hit is reported as <see cref="GdbStopReason.Watchpoint"/>.</summary>
public interface IGdbWatchpoints
{
    Task InsertWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct);
    Task RemoveWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct);
}

/// <summary>A watchpoint hit as a stop reply names it: <c>watch:ADDR</c>, <c>rwatch:</c> or <c>awatch:</c> by the
/// watchpoint's kind, with the data address (a watched byte the access touched).</summary>
public readonly record struct GdbWatchHit(GdbWatchKind Kind, ulong DataAddress);

/// <summary>Optional: hardware breakpoints (gdb manual, "Packets", <c>Z1</c>).</summary>
public interface IGdbHwBreakpoints
{
    Task InsertHwBreakpointAsync(ulong address, CancellationToken ct);
    Task RemoveHwBreakpointAsync(ulong address, CancellationToken ct);
}

/// <summary>
/// Optional: non-stop mode (gdb manual, "Remote Non-Stop"): each vcpu runs and stops on its own while gdb works with the
/// stopped ones. The session calls these from its one thread; stops arrive through <see cref="NextStopAsync"/>, one event
/// per vcpu that stopped (the session turns them into <c>%Stop</c> notifications).
/// </summary>
public interface IGdbNonStop
{
    /// <summary><c>QNonStop:1</c>: from now on vcpus are resumed and stopped one by one. Every vcpu is stopped when it is called.</summary>
    Task EnterAsync(CancellationToken ct);

    /// <summary><c>QNonStop:0</c>, detach, kill or a lost connection: stop every running vcpu and return once none runs. Their stops
    /// are not reported (gdb asks with <c>?</c> when it wants them).</summary>
    Task LeaveAsync(CancellationToken ct);

    /// <summary>Starts the vcpus whose action is not <see cref="GdbResumeAction.Stay"/> (each is stopped); the others go on as
    /// they are (running or stopped). Returns once they are started; each stop comes later through <see cref="NextStopAsync"/>.</summary>
    Task ResumeAsync(GdbResume resume, CancellationToken ct);

    /// <summary>Stops one running vcpu (<c>vCont;t</c>, <c>vCtrlC</c>): its stop comes through <see cref="NextStopAsync"/>, as
    /// <see cref="GdbStopReason.Halted"/> unless something else stopped it first.</summary>
    Task StopAsync(int vcpu, CancellationToken ct);

    /// <summary>The next stop of a vcpu that was running. The session keeps one such task pending at a time.</summary>
    Task<GdbStopEvent> NextStopAsync(CancellationToken ct);
}

/// <summary>Optional: <c>monitor</c> commands (gdb manual, "General Query Packets", <c>qRcmd</c>).</summary>
public interface IGdbMonitor
{
    /// <summary>Runs one command; returns its output (shown by gdb as is), empty for none.</summary>
    Task<string> RunAsync(string command, CancellationToken ct);
}

/// <summary>One vcpu as gdb sees a thread.</summary>
/// <param name="Vcpu">The vcpu index (gdb thread id − 1).</param>
/// <param name="Alive">False once the guest stopped this vcpu for good.</param>
/// <param name="State">Human-readable state for <c>info threads</c> ("stopped at 0x1000", "halted", …).</param>
public sealed record GdbThreadInfo(int Vcpu, bool Alive, string State);

/// <summary>What one vcpu does in a resume: vCont's <c>s</c>, <c>c</c>, or nothing (vcpus no action names stay stopped).</summary>
public enum GdbResumeAction { Stay, Continue, Step }

/// <summary>The addresses [<see cref="Start"/>, <see cref="End"/>) of a range step (<c>vCont;r</c>: gdb's <c>step</c>/<c>next</c> over a line).</summary>
public readonly record struct GdbStepRange(ulong Start, ulong End);

/// <summary>
/// One resume. <paramref name="Actions"/>[vcpu] says what each vcpu does (indexed like <see cref="IGdbTarget.GetThreadsAsync"/>).
/// A stepping vcpu with an entry in <paramref name="Ranges"/> range-steps: it keeps stepping while its pc is in the range,
/// and the step is reported where it leaves it. <paramref name="HoldInterrupts"/>: steps hold asynchronous interrupts
/// (decrementer, external), as QEMU's NOIRQ step flag; when false a step may end at the first instruction of their handler.
/// </summary>
public sealed record GdbResume(IReadOnlyList<GdbResumeAction> Actions, IReadOnlyDictionary<int, GdbStepRange>? Ranges = null,
    bool HoldInterrupts = true);

/// <summary>Why a resume ended.</summary>
public enum GdbStopReason
{
    /// <summary>The stepped vcpu completed its step: <c>T05</c>.</summary>
    StepDone,
    /// <summary>A vcpu reached a software breakpoint: <c>T05 … swbreak:;</c>.</summary>
    Breakpoint,
    /// <summary>The VM was halted (gdb's Ctrl-C, or another client): <c>T02</c>.</summary>
    Halted,
    /// <summary>The guest stopped the vcpu for good with <see cref="GdbStopEvent.ExitCode"/>: <c>W</c> when no vcpu
    /// is left (<see cref="GdbStopEvent.AllVcpusGone"/>), else <c>T05</c> for that vcpu.</summary>
    GuestStopped,
    /// <summary>The vcpu cannot go on (checkstop, a failed actor): <c>T06</c> (SIGABRT).</summary>
    Error,
    /// <summary>The stepped vcpu is idle (ceded, H_CEDE) and nothing the step may take can wake it, so the step ended without
    /// running it: <c>T05</c> with the pc where it waits (gdb's <c>stepi</c> comes back), preceded by an <c>O</c> packet that
    /// prints <see cref="GdbStopEvent.Detail"/> (why, and what would wake it).</summary>
    Idle,
    /// <summary>A vcpu's access hit a watchpoint, its pc at the accessing instruction (not executed, as POWER's DAWR stops it;
    /// gdb's powerpc support steps over it itself): <c>T05 … watch:ADDR;</c> (<see cref="GdbStopEvent.Watch"/>).</summary>
    Watchpoint,
}

/// <summary>The stop a resume reports.</summary>
/// <param name="Vcpu">The vcpu the event is about (it becomes gdb's current thread).</param>
/// <param name="ExitCode">For <see cref="GdbStopReason.GuestStopped"/>: the code the guest gave.</param>
/// <param name="AllVcpusGone">For <see cref="GdbStopReason.GuestStopped"/>: no vcpu can run any more.</param>
/// <param name="Detail">Free text for logs.</param>
/// <param name="Registers">The registers of <paramref name="Vcpu"/> after the stop, when the target got them with the
/// stop (as <see cref="IGdbTarget.ReadRegistersAsync"/> returns them): the stop reply and gdb's next <c>g</c> use them.</param>
/// <param name="Watch">For <see cref="GdbStopReason.Watchpoint"/>: which kind and the data address.</param>
public sealed record GdbStopEvent(int Vcpu, GdbStopReason Reason, long ExitCode = 0, bool AllVcpusGone = false,
    string? Detail = null, IReadOnlyDictionary<int, byte[]>? Registers = null, GdbWatchHit? Watch = null);

/// <summary>Builds the MSB-first register values <see cref="IGdbTarget"/> exchanges.</summary>
public static class GdbRegisterValue
{
    public static byte[] FromUInt64(ulong value, int size)
    {
        var bytes = new byte[size];
        for (int i = 0; i < size; i++) bytes[size - 1 - i] = (byte)(value >> (8 * i));
        return bytes;
    }

    public static ulong ToUInt64(ReadOnlySpan<byte> msbFirst)
    {
        ulong v = 0;
        foreach (var b in msbFirst) v = v << 8 | b;
        return v;
    }
}
