using ActorStep.Actors.Node;
using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using ActorStep.Machine;
using ActorStep.Protocol.Registers;
using Google.Protobuf;
using Grpc.Core;
using ApiVcpuAction = ActorStep.Api.V1.VcpuAction;
using ApiVcpuState = ActorStep.Api.V1.VcpuState;
using ApiStopEvent = ActorStep.Api.V1.StopEvent;
using ApiStopReason = ActorStep.Api.V1.StopReason;
using ApiLocking = ActorStep.Api.V1.SchedulerLocking;
using ActorStep.Hypervisor;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Host.Services;

/// <summary>Translations between the API's messages and the actors' (no decisions here).</summary>
public static class ApiMapping
{
    public static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    public static RpcException NotFound(string message) => new(new Status(StatusCode.NotFound, message));

    public static Actors.Vm.SchedulerLocking Locking(ApiLocking l) => l switch
    {
        ApiLocking.Step => Actors.Vm.SchedulerLocking.Step,
        ApiLocking.On => Actors.Vm.SchedulerLocking.On,
        ApiLocking.Unspecified or ApiLocking.Off => Actors.Vm.SchedulerLocking.Off,
        _ => throw Invalid($"unknown scheduler-locking mode {(int)l}"),
    };

    public const int MaxStepCount = 1_000_000;

    public static int StepCount(uint count) => count switch
    {
        0 => 1,
        <= MaxStepCount => (int)count,
        _ => throw Invalid($"step_count must be 1..{MaxStepCount}, not {count}"),
    };

    public static Actors.Vm.VcpuAction Action(ApiVcpuAction a) => a switch
    {
        ApiVcpuAction.Step => Actors.Vm.VcpuAction.Step,
        ApiVcpuAction.Continue => Actors.Vm.VcpuAction.Continue,
        ApiVcpuAction.Unspecified or ApiVcpuAction.Stay => Actors.Vm.VcpuAction.Stay,
        _ => throw Invalid($"unknown vcpu action {(int)a}"),
    };

    public static ApiVcpuAction Action(Actors.Vm.VcpuAction a) => a switch
    {
        Actors.Vm.VcpuAction.Step => ApiVcpuAction.Step,
        Actors.Vm.VcpuAction.Continue => ApiVcpuAction.Continue,
        _ => ApiVcpuAction.Stay,
    };

    public static IReadOnlyDictionary<int, Actors.Vm.VcpuAction> Actions(IEnumerable<VcpuActionEntry> entries)
    {
        var d = new Dictionary<int, Actors.Vm.VcpuAction>();
        foreach (var e in entries)
            if (!d.TryAdd((int)e.Vcpu, Action(e.Action))) throw Invalid($"vcpu {e.Vcpu} is named twice; give one action per vcpu");
        if (d.Count == 0) throw Invalid("no actions: name at least one vcpu and what it does (step or continue)");
        return d;
    }

    /// <summary>The step ranges of a resume's entries (range stepping), or null when none has one.</summary>
    public static IReadOnlyDictionary<int, Actors.Vm.StepRange>? Ranges(IEnumerable<VcpuActionEntry> entries)
    {
        Dictionary<int, Actors.Vm.StepRange>? d = null;
        foreach (var e in entries)
            if (e.StepRange is { } r) (d ??= [])[(int)e.Vcpu] = new Actors.Vm.StepRange(r.Start, r.End);
        return d;
    }

    public static HypervisorFlavour Flavour(Api.V1.Flavour f) => f switch
    {
        Api.V1.Flavour.Pr => HypervisorFlavour.Pr,
        Api.V1.Flavour.Unspecified or Api.V1.Flavour.Hv => HypervisorFlavour.Hv,
        _ => throw Invalid($"unknown flavour {(int)f}"),
    };

    public static Api.V1.Flavour Flavour(HypervisorFlavour f) => f == HypervisorFlavour.Pr ? Api.V1.Flavour.Pr : Api.V1.Flavour.Hv;

    public static ApiVcpuState State(string s) => s switch
    {
        "running" => ApiVcpuState.Running,
        "stopped-for-good" => ApiVcpuState.StoppedForGood,
        // Parked on another vcpu's step breakpoint: invisible to debuggers, stopped as far as they can tell (§4).
        "stopped" or "parked" => ApiVcpuState.Stopped,
        _ => ApiVcpuState.Unspecified,
    };

    public static VcpuStatus Status(VcpuStop s) => new() { Vcpu = (uint)s.Vcpu, Nip = s.Nip, State = State(s.State), Symbol = s.Symbol ?? "" };

    public static ApiStopReason Reason(Actors.Vm.StopReason r) => r switch
    {
        Actors.Vm.StopReason.StepCompleted => ApiStopReason.StepCompleted,
        Actors.Vm.StopReason.Breakpoint => ApiStopReason.Breakpoint,
        Actors.Vm.StopReason.Halted => ApiStopReason.Halted,
        Actors.Vm.StopReason.GuestStopped => ApiStopReason.GuestStopped,
        Actors.Vm.StopReason.Checkstop => ApiStopReason.Checkstop,
        Actors.Vm.StopReason.Finished => ApiStopReason.Finished,
        Actors.Vm.StopReason.Error => ApiStopReason.Error,
        Actors.Vm.StopReason.Idle => ApiStopReason.Idle,
        Actors.Vm.StopReason.Watchpoint => ApiStopReason.Watchpoint,
        _ => ApiStopReason.Unspecified,
    };

    public static ApiStopEvent Event(Actors.Vm.StopEvent e) => new()
    {
        Reason = Reason(e.Reason),
        Vcpu = (uint)e.Vcpu,
        Nip = e.Nip,
        Detail = e.Detail,
        Status = e.Status,
        StepCompletion = e.StepCompletion ?? "",
        Steps = (uint)e.Steps,
        Watchpoint = e.Watch is { } w ? Hit(w) : null,
        Symbol = e.Symbol ?? "",
    };

    public static Api.V1.Watchpoint Watchpoint(Hypervisor.Watchpoint w) => new()
    {
        Address = w.Address, Length = w.Length,
        Kind = w.Kind switch
        {
            Hypervisor.WatchKind.Write => WatchpointKind.Write,
            Hypervisor.WatchKind.Read => WatchpointKind.Read,
            Hypervisor.WatchKind.Access => WatchpointKind.Access,
            _ => WatchpointKind.Unspecified,
        },
    };

    /// <summary>A watchpoint as a client gave it; an unspecified kind (or none given) is INVALID_ARGUMENT.</summary>
    public static Hypervisor.Watchpoint Watchpoint(Api.V1.Watchpoint? w) =>
        w is null ? throw Invalid("a watchpoint is required (address, length, kind)")
        : new(w.Address, w.Length, w.Kind switch
        {
            WatchpointKind.Write => Hypervisor.WatchKind.Write,
            WatchpointKind.Read => Hypervisor.WatchKind.Read,
            WatchpointKind.Access => Hypervisor.WatchKind.Access,
            _ => throw Invalid($"watchpoint kind {w.Kind} is not WRITE, READ or ACCESS"),
        });

    public static Api.V1.WatchpointHit Hit(Hypervisor.WatchpointHit h) => new()
    {
        Watchpoint = Watchpoint(h.Watchpoint), DataAddress = h.DataAddress, WatchedAddress = h.WatchedAddress,
        Size = (uint)h.Size, Store = h.Store,
    };

    public static RunResponse Run(VmProtocol.Stopped s)
    {
        var r = new RunResponse { Event = Event(s.Event) };
        r.Vcpus.AddRange(s.Vcpus.Select(Status));
        return r;
    }

    public static Vm Vm(VmInfo info, VmProtocol.VmDescription? d = null)
    {
        var vm = new Vm
        {
            VmId = info.VmId,
            Image = info.Image,
            Flavour = Flavour(info.Flavour),
            VcpuCount = (uint)info.Vcpus,
            MemorySize = info.MemorySize,
            Entry = info.Entry,
            Capabilities = new Capabilities
            {
                HardwareSingleStep = info.Machine.Capabilities.HardwareSingleStep,
                DebugInstruction = info.Machine.Capabilities.DebugInstruction,
                Flavour = info.Machine.Capabilities.FlavourName,
                HoldsAsyncInterrupts = info.Machine.Capabilities.HoldsAsyncInterrupts,
                AllStop = info.Machine.Capabilities.RunModel == Hypervisor.VcpuRunModel.AllStop,
            },
            ImageLittleEndian = info.Machine.ImageIsLittleEndian,
        };
        foreach (var (k, v) in info.Labels) vm.Labels[k] = v;
        if (d is not null)
        {
            vm.Running = d.Running;
            vm.BreakpointCount = (uint)d.BreakpointCount;
            vm.ForeignTraps = (ulong)d.Parks;
            vm.Reentries = (ulong)d.Reentries;
            vm.Vcpus.AddRange(d.VcpuStates.Select(Status));
        }
        return vm;
    }

    public static PowerRegister Register(RegisterRef r) => r.RefCase switch
    {
        RegisterRef.RefOneofCase.Name => PowerRegisters.TryFind(r.Name, out var reg) ? reg
            : throw Invalid($"unknown register {Quote(r.Name)}; known: {string.Join(", ", PowerRegisters.Names)} (and pc, gpr0.., fpr0..)"),
        RegisterRef.RefOneofCase.GdbNumber => PowerRegisters.TryFind((int)r.GdbNumber, out var reg) ? reg
            : throw Invalid($"unknown gdb register number {r.GdbNumber}; known: 0..{PowerRegisters.All[^1].GdbNumber}"),
        _ => throw Invalid("a register reference needs a name or a gdb number"),
    };

    public static Register Register(PowerRegister r, Hypervisor.VcpuState s) => new()
    {
        Name = r.Name, GdbNumber = (uint)r.GdbNumber, Value = r.Get(s), Bits = (uint)r.Bits, Writable = r.Writable,
    };

    /// <summary>True for an effective address (translated by the request's vcpu), false for a real one.</summary>
    public static bool ByEffectiveAddress(AddressSpace space) => space switch
    {
        AddressSpace.Real => false,
        AddressSpace.Unspecified or AddressSpace.Effective => true,
        _ => throw Invalid($"unknown address space {(int)space}"),
    };

    /// <summary>The vcpu a request names, as the actors number them; null when it is over int.MaxValue: no VM has it
    /// (the caller answers NOT_FOUND with the number as the client sent it, never cast to a negative int).</summary>
    public static int? Vcpu(uint vcpu) => vcpu <= int.MaxValue ? (int)vcpu : null;

    public static ByteString Bytes(byte[] b) => UnsafeByteOperations.UnsafeWrap(b);
}
