using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using static ActorStep.Actors.Vm.VmProtocol;
namespace ActorStep.Actors.Vcpu;

/// <summary>
/// What a <see cref="VcpuActor"/> receives and sends. It also serves the coordinator's memory and breakpoint requests
/// that name its vcpu (<see cref="VmProtocol.ReadMemory"/>, <see cref="VmProtocol.WriteMemory"/>,
/// <see cref="VmProtocol.InsertBreakpoint"/>, <see cref="VmProtocol.RemoveBreakpoint"/>), which the coordinator forwards:
/// the vcpu's owner translates with its current state and answers the original sender.
/// </summary>
public static partial class VcpuProtocol
{
    /// <summary>Coordinator → VcpuActor: run at most <paramref name="Budget"/> instructions. Reply: <see cref="SliceEnded"/>; on an
    /// all-stop VM (<see cref="VcpuRunModel.AllStop"/>), <see cref="SliceReady"/> when the vcpu must now run with the VM.
    /// A step with a <paramref name="Range"/> goes on stepping while NIP stays in it (gdb's range stepping).</summary>
    public sealed record RunSlice(long Budget, SliceMode Mode, bool HoldAsyncInterrupts = true, int StepCount = 1, StepRange? Range = null)
    {
        /// <summary>The same slice as the engine takes it.</summary>
        public SliceRequest Request => new(Budget, Mode, HoldAsyncInterrupts, StepCount, Range, IdleTicks, PaceIdle);

        /// <summary>Guest time a ceded vcpu lets pass first: the host's time it waited (<see cref="SliceRequest.IdleTicks"/>).</summary>
        public ulong IdleTicks { get; init; }

        /// <summary>A continue whose idle vcpu comes back as Idle at once, for the coordinator to wait for it (<see cref="SliceRequest.PaceIdle"/>).</summary>
        public bool PaceIdle { get; init; }

        /// <summary>Lets the coordinator take the slice back while it waits for a worker (<see cref="SliceTicket"/>); null: it
        /// cannot be taken back.</summary>
        public SliceTicket? Ticket { get; init; }

        /// <summary>When not 0: the resume's stop will carry a code block of this size and this vcpu is the only one that moves,
        /// so its actor reads the block as the slice ends (<see cref="SliceEnded.Code"/>) and the stop needs no
        /// <see cref="ReadCode"/> round trip.</summary>
        public int CodeBytes { get; init; }
    }

    /// <summary>
    /// A continue slice waiting for a worker can be taken back: a halt then ends it at once, as a
    /// slice that ran nothing, instead of waiting for the vcpu's turn behind every other running vcpu of the node and running
    /// a whole slice first (a running fleet's halt waited about one round of all its vcpus). Exactly one side wins: the vcpu's
    /// actor starting it, or the coordinator taking it back; the actor then skips it and sends nothing.
    /// </summary>
    public sealed class SliceTicket
    {
        private int _state; // 0 waiting, 1 started, 2 taken back

        /// <summary>The vcpu's actor begins the slice; false: taken back, skip it.</summary>
        public bool TryStart() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

        /// <summary>The coordinator takes the slice back; false: it has begun (ask the vcpu to exit instead).</summary>
        public bool TryTakeBack() => Interlocked.CompareExchange(ref _state, 2, 0) == 0;
    }

    /// <summary>VcpuActor → coordinator: the slice is over; <paramref name="State"/> is the register state now (guest view).</summary>
    public sealed record SliceEnded(int Vcpu, SliceOutcome Outcome, VcpuState State, StepDetail? Step = null,
        ulong Address = 0, long Status = 0, string? Detail = null, WatchpointHit? Watch = null, ulong? WakesIn = null)
    {
        public static SliceEnded From(int vcpu, in SliceResult r) => new(vcpu, r.Outcome, r.State, r.Step, r.Address, r.Status, r.Detail, r.Watch, r.WakesIn);

        /// <summary>The code block read as the slice ended (<see cref="RunSlice.CodeBytes"/>), as <see cref="ReadCode"/> would
        /// answer it now; null when not asked.</summary>
        public CodeRead? Code { get; init; }
    }

    /// <summary>Coordinator → VcpuActor: abandon a step in progress (a halt or another vcpu's event). Reply: <see cref="StepCancelled"/>.</summary>
    public sealed record CancelStep;

    /// <summary>VcpuActor → coordinator: no breakpoint of its step remains and SE is the guest's own.</summary>
    public sealed record StepCancelled(int Vcpu, VcpuState State);

    /// <summary>Anyone → VcpuActor: the register state (from the cache, synced once per exit). Reply: <see cref="Registers"/>.</summary>
    public sealed record GetRegisters;

    public sealed record Registers(int Vcpu, VcpuState State);

    /// <summary>Coordinator → VcpuActor: write registers (vcpu stopped). Reply: <see cref="Registers"/> with the new state.</summary>
    public sealed record SetRegisters(VcpuState State);

    /// <summary>Coordinator → VcpuActor (stopped): the code block of <paramref name="Bytes"/> a stop carries
    /// (<see cref="Resume.CodeBytes"/>), read with the vcpu's current translation. Reply: <see cref="CodeRead"/>.</summary>
    public sealed record ReadCode(int Bytes);

    /// <summary>VcpuActor → coordinator: the aligned block holding NIP and the one before it, or null when NIP has no translation.</summary>
    public sealed record CodeRead(int Vcpu, CodeBlock? Code);

    /// <summary>Coordinator → VcpuActor (VM stopped): a Breakpoint event at <paramref name="Nip"/> kept from an earlier all-stop is
    /// about to be reported; does it still stand — is the vcpu still at <paramref name="Nip"/>, with a user breakpoint there as
    /// it translates its NIP now? Reply: <see cref="KeptBreakpointChecked"/>.</summary>
    public sealed record CheckKeptBreakpoint(ulong Nip);

    /// <summary>VcpuActor → coordinator: whether the kept Breakpoint event at <paramref name="Nip"/> still stands.</summary>
    public sealed record KeptBreakpointChecked(int Vcpu, ulong Nip, bool Stands);

    /// <summary>VcpuActor → coordinator (all-stop VM): the slice is begun (a step planned, armed and planted) and the vcpu must run
    /// with the VM; its exits come back through <see cref="VcpuExited"/>.</summary>
    public sealed record SliceReady(int Vcpu);

    /// <summary>Coordinator → VcpuActor (all-stop VM): the VM stopped on this vcpu's exit. Reply: <see cref="SliceEnded"/>, or
    /// <see cref="SliceReady"/> when the slice goes on (a count, a range, a trap that retired nothing).</summary>
    public sealed record VcpuExited(VcpuExit Exit);

    /// <summary>Coordinator → VcpuActor (all-stop VM): the VM stopped for another reason and the slice ends here, a step in
    /// progress staying planted. Reply: <see cref="SliceEnded"/> (Ran).</summary>
    public sealed record EndSlice;
}
