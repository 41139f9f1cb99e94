using ActorStep.Hypervisor;
namespace ActorStep.Actors.Vm;

/// <summary>What one vcpu does in a resume (gdb's vCont actions). Vcpus not named stay stopped.</summary>
public enum VcpuAction { Stay, Continue, Step }

/// <summary>gdb's <c>set scheduler-locking</c> (step-engine.md §5).</summary>
public enum SchedulerLocking { Off, Step, On }

/// <summary>Why the VM stopped (the event reported for a resume).</summary>
public enum StopReason
{
    /// <summary>The stepped vcpu finished its step(s).</summary>
    StepCompleted,
    /// <summary>A vcpu reached a user breakpoint.</summary>
    Breakpoint,
    /// <summary>A halt request (gdb's Ctrl-C).</summary>
    Halted,
    /// <summary>The guest stopped a vcpu for good (H_ACTORSTEP_STOP).</summary>
    GuestStopped,
    /// <summary>A vcpu cannot continue (guest fault loop).</summary>
    Checkstop,
    /// <summary>Every vcpu has stopped for good: nothing can run.</summary>
    Finished,
    /// <summary>A vcpu's actor failed (and was restarted): its step was abandoned, nothing of it left in the guest.</summary>
    Error,
    /// <summary>A vcpu's data access hit a watchpoint (<see cref="StopEvent.Watch"/> says which, and the access); NIP is the
    /// accessing instruction, not executed. Resuming the vcpu performs the access without stopping for it again.</summary>
    Watchpoint,
    /// <summary>The stepped vcpu is idle — ceded (H_CEDE) — and nothing the step may take can wake it: the step holds the
    /// decrementer and external interrupts (or MSR[EE] is 0) and no other vcpu runs to H_PROD it. The step ends at once
    /// (nothing of it left in the guest); NIP is where the vcpu waits; <see cref="StopEvent.Steps"/> counts what a counted or
    /// range step did before; the detail says what would wake it.</summary>
    Idle,
}

/// <summary>One reportable stop: which vcpu, why, where; for a step, from where and how it ended; for a watchpoint, which one
/// and the access that hit it. <paramref name="Symbol"/>: NIP as <c>function+0xoffset</c> when the image has a symbol table
/// (<see cref="SymbolIndex"/>; the coordinator names it).</summary>
public sealed record StopEvent(StopReason Reason, int Vcpu, ulong Nip, string Detail, long Status = 0,
    string? StepCompletion = null, int Steps = 0, WatchpointHit? Watch = null, string? Symbol = null);

/// <summary>
/// Effective addresses [<paramref name="Start"/>, <paramref name="End"/>) a stepping vcpu keeps stepping in (gdb's
/// <c>vCont;r</c>): it steps once, then again while NIP is inside, and stops out of it or for any other reason (a
/// breakpoint, a halt). One resume then runs a whole source line instead of one round trip per instruction.
/// </summary>
public sealed record StepRange(ulong Start, ulong End)
{
    public bool Contains(ulong ea) => ea >= Start && ea < End;

    public override string ToString() => $"[0x{Start:x}, 0x{End:x})";
}

/// <summary>Where each vcpu is after a resume, for replies that say where every affected vcpu stopped.
/// <paramref name="Symbol"/>: NIP as <c>function+0xoffset</c> when the image has a symbol table.</summary>
public sealed record VcpuStop(int Vcpu, ulong Nip, string State, string? Symbol = null);

public static partial class VmProtocol
{
    /// <summary>Client → coordinator: resume with per-vcpu actions. Reply: <see cref="Stopped"/> (all-stop) or <see cref="Failed"/>.
    /// <paramref name="Ranges"/>: stepping vcpus that range-step (<see cref="StepRange"/>); their step count is 1.
    /// <paramref name="CodeBytes"/>: when not 0 (a power of two, <see cref="CodeBlock"/>), the stop also carries the
    /// memory around the stopped vcpu's NIP.</summary>
    public sealed record Resume(IReadOnlyDictionary<int, VcpuAction> Actions, bool HoldAsyncInterrupts = true, int StepCount = 1,
        IReadOnlyDictionary<int, StepRange>? Ranges = null, int CodeBytes = 0);

    /// <summary>Reply to <see cref="Resume"/> and <see cref="Halt"/>: the reported event, every vcpu's position, and the
    /// registers of the event's vcpu as the stop left them (what a debugger reads next, without another round trip).</summary>
    public sealed record Stopped(StopEvent Event, IReadOnlyList<VcpuStop> Vcpus, VcpuState State, CodeBlock? Code = null);

    /// <summary>Guest memory by effective address as the stopped vcpu translates it, breakpoints hidden: the aligned block of
    /// <see cref="Resume.CodeBytes"/> bytes holding NIP and the block before it (what a debugger reads at each stop to
    /// show the instruction and scan the function's prologue).</summary>
    public sealed record CodeBlock(ulong Address, byte[] Data)
    {
        public const int MinBytes = 16, MaxBytes = 4096;
    }

    /// <summary>A request that cannot be served; <see cref="Code"/> says why.</summary>
    public sealed record Failed(FailureCode Code, string Message);

    public enum FailureCode { NotFound, InvalidArgument, FailedPrecondition, Busy }

    /// <summary>Client → coordinator: stop every vcpu. Reply: <see cref="Stopped"/> with reason Halted (the resume in flight gets it too).</summary>
    public sealed record Halt;

    /// <summary>Client → coordinator: a vcpu's registers. Reply: <see cref="Vcpu.VcpuProtocol.Registers"/> (from the VcpuActor, within one slice) or <see cref="Failed"/>.</summary>
    public sealed record ReadRegisters(int Vcpu);

    /// <summary>Client → coordinator: replace a stopped vcpu's registers. Reply: <see cref="Vcpu.VcpuProtocol.Registers"/> or <see cref="Failed"/>.</summary>
    public sealed record WriteRegisters(int Vcpu, VcpuState State);

    /// <summary>Client → coordinator: read guest memory by EA (with the vcpu's current translation) or by RA. Reply: <see cref="MemoryRead"/> or <see cref="Failed"/>
    /// (by EA from the vcpu's actor, which alone translates, within one slice).</summary>
    public sealed record ReadMemory(ulong Address, int Length, int? TranslateForVcpu);

    public sealed record MemoryRead(ulong Address, byte[] Data);

    /// <summary>Client → coordinator: write guest memory, by EA or RA as <see cref="ReadMemory"/>. Reply: <see cref="MemoryWritten"/> or <see cref="Failed"/>.</summary>
    public sealed record WriteMemory(ulong Address, byte[] Data, int? TranslateForVcpu);

    public sealed record MemoryWritten(ulong Address, int Length);

    /// <summary>Client → coordinator: a user software breakpoint at an EA (translated with the vcpu's MSR, vcpu 0 by default). Reply: <see cref="BreakpointChanged"/> or <see cref="Failed"/>
    /// (from the vcpu's actor, which alone translates, within one slice).</summary>
    public sealed record InsertBreakpoint(ulong Address, int TranslateForVcpu = 0);

    public sealed record RemoveBreakpoint(ulong Address, int TranslateForVcpu = 0);

    public sealed record BreakpointChanged(ulong Address, ulong RealAddress, bool Changed);

    /// <summary>Client → coordinator: a data watchpoint for every vcpu, by effective address (as DAWR matches). Reply:
    /// <see cref="WatchpointChanged"/> or <see cref="Failed"/> (InvalidArgument: an empty, oversized or wrapping range;
    /// FailedPrecondition: the backend has no watchpoints). Set twice, it needs two removals.</summary>
    public sealed record InsertWatchpoint(Watchpoint Watchpoint);

    /// <summary>Client → coordinator: takes out one <see cref="InsertWatchpoint"/> of an equal watchpoint. Reply:
    /// <see cref="WatchpointChanged"/> (Changed = false: none was set) or <see cref="Failed"/>.</summary>
    public sealed record RemoveWatchpoint(Watchpoint Watchpoint);

    public sealed record WatchpointChanged(Watchpoint Watchpoint, bool Changed);

    /// <summary>Client → coordinator: describe the VM. Reply: <see cref="VmDescription"/>.</summary>
    public sealed record Describe;

    /// <summary>Reply to <see cref="Describe"/>. <paramref name="Parks"/>: times a vcpu trapped on another vcpu's step breakpoint and
    /// was parked, unreported (step-engine.md §4); <paramref name="Reentries"/>: times a parked vcpu then re-executed its
    /// instruction alone, invisibly. Both count from the coordinator's start.</summary>
    public sealed record VmDescription(int Vcpus, ulong MemorySize, HypervisorCapabilities Capabilities, bool Running,
        IReadOnlyList<VcpuStop> VcpuStates, bool ImageIsLittleEndian, int BreakpointCount, long Parks, long Reentries);

    /// <summary>Anyone → coordinator: send every <see cref="VmEvent"/> to <paramref name="Subscriber"/> until it stops.</summary>
    public sealed record Subscribe(Akka.Actor.IActorRef Subscriber);

    /// <summary>Coordinator → subscribers.</summary>
    public abstract record VmEvent;

    public sealed record StopObserved(Stopped Stop) : VmEvent;

    public sealed record ConsoleObserved(int Vcpu, byte[] Bytes) : VmEvent;

    /// <summary>Backend → coordinator (raised on the backend's thread) → subscribers: the guest was reset, panicked or shut down
    /// (<see cref="Hypervisor.IVirtualMachine.GuestLifecycle"/>: a QEMU VM with QMP), which no stop may report — a reset runs on.</summary>
    public sealed record GuestLifecycleObserved(string Kind, string Detail) : VmEvent;

    public sealed record Resumed(IReadOnlyDictionary<int, VcpuAction> Actions) : VmEvent;

    /// <summary>Coordinator → subscribers: a vcpu trapped on another vcpu's step breakpoint at <paramref name="Nip"/> (real address
    /// <paramref name="RealAddress"/>) and was parked: never reported as a stop, its state intact; it re-executes the
    /// original instruction alone (step-engine.md §4) — later in the same resume when it continues in it (scheduler-locking
    /// off), else before it next continues.</summary>
    public sealed record VcpuParked(int Vcpu, ulong Nip, ulong RealAddress, string Detail) : VmEvent;

    /// <summary>Coordinator → itself, from a vcpu thread: console writes wait in the coordinator's <see cref="ConsoleWrites"/>
    /// (sent once per batch: the first write after the coordinator took the last one).</summary>
    internal sealed record ConsoleWritten
    {
        public static readonly ConsoleWritten Instance = new();
    }

    /// <summary>Backend (raised on the thread that did it) → coordinator: something may have made vcpu <paramref name="Vcpu"/>
    /// runnable (<see cref="Hypervisor.IVirtualMachine.VcpuWakeRequested"/>: an H_PROD, an IPI); a vcpu waiting for its
    /// decrementer runs now.</summary>
    internal sealed record VcpuWakeObserved(int Vcpu);

    /// <summary>Coordinator → itself (a timer, keyed by this message): the host's clock reached the decrementer of vcpu
    /// <paramref name="Vcpu"/>, idle since <see cref="Engine.RunCommandKind.WaitForWake"/>.</summary>
    internal sealed record IdleTimeUp(int Vcpu);

    /// <summary>Coordinator → itself: console bytes have waited <see cref="VmCoordinator.ConsoleFlushDelay"/>; publish them.</summary>
    internal sealed record FlushConsole
    {
        public static readonly FlushConsole Instance = new();
    }

    /// <summary>Translates a gdb scheduler-locking mode and a stepped vcpu into per-vcpu actions (§5).</summary>
    public static IReadOnlyDictionary<int, VcpuAction> StepActions(int vcpu, int vcpuCount, SchedulerLocking locking)
    {
        var d = new Dictionary<int, VcpuAction> { [vcpu] = VcpuAction.Step };
        if (locking == SchedulerLocking.Off)
            for (int i = 0; i < vcpuCount; i++) if (i != vcpu) d[i] = VcpuAction.Continue;
        return d;
    }

    public static IReadOnlyDictionary<int, VcpuAction> ContinueActions(int vcpu, int vcpuCount, SchedulerLocking locking)
    {
        var d = new Dictionary<int, VcpuAction>();
        if (locking == SchedulerLocking.On) d[vcpu] = VcpuAction.Continue;
        else for (int i = 0; i < vcpuCount; i++) d[i] = VcpuAction.Continue;
        return d;
    }
}
