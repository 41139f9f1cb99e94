using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using ActorStep.Protocol.Registers;
using Akka.Actor;
using Google.Protobuf;
using static ActorStep.Actors.Node.VmManagerProtocol;
using static ActorStep.Hypervisor.ClientText;
using VcpuRegisterState = ActorStep.Actors.Vcpu.VcpuProtocol.Registers;

namespace ActorStep.Host.Services;

/// <summary>
/// One unary call on one VM, as the owning node runs it: request message in, response message out (or an RpcException).
/// The gRPC services (through <see cref="Fleet.VmRouter"/>) and the fleet endpoint (for calls routed from other nodes) both
/// call <see cref="InvokeLocal"/>, so a call behaves the same whichever node received it.
/// </summary>
/// <param name="Name">the full gRPC method name, e.g. "/actorstep.v1.RunControl/Halt" (what a FleetCall names)</param>
/// <param name="RunsGuest">a resume: runs until the VM stops, with no time limit unless the caller gives a deadline</param>
public sealed record VmMethod(string Name, MessageParser RequestParser, MessageParser ResponseParser, bool RunsGuest,
    Func<IMessage, CallScope, Task<IMessage>> InvokeLocal);

/// <summary>
/// The implementations of every call that names a VM, on the node that runs it: each translates the request into
/// actor messages to the VM manager and the reply back (the logic the gRPC services had, now shared with the fleet endpoint).
/// </summary>
public sealed class VmApi
{
    private readonly ActorStepBackend _backend;
    private readonly string _nodeName;
    private readonly Dictionary<string, VmMethod> _methods = new(StringComparer.Ordinal);

    private readonly Metrics.ServerMetrics _metrics;
    private readonly ILogger<VmApi> _log;

    public VmApi(ActorStepBackend backend, Metrics.ServerMetrics metrics, ILogger<VmApi> log)
    {
        _backend = backend;
        _metrics = metrics;
        _log = log;
        _nodeName = backend.Options.Cluster?.NodeName ?? "";
        Add<GetVmRequest, Vm>(VmMethods.GetVm, GetVm);
        Add<DeleteVmRequest, DeleteVmResponse>(VmMethods.DeleteVm, DeleteVm);
        Add<ResumeRequest, RunResponse>(VmMethods.Resume, Resume, runsGuest: true);
        Add<StepRequest, RunResponse>(VmMethods.Step, Step, runsGuest: true);
        Add<ContinueRequest, RunResponse>(VmMethods.Continue, Continue, runsGuest: true);
        Add<HaltRequest, RunResponse>(VmMethods.Halt, Halt);
        Add<GetVcpuRegistersRequest, GetVcpuRegistersResponse>(VmMethods.GetVcpuRegisters, GetVcpuRegisters);
        Add<SetVcpuRegistersRequest, SetVcpuRegistersResponse>(VmMethods.SetVcpuRegisters, SetVcpuRegisters);
        Add<ReadMemoryRequest, ReadMemoryResponse>(VmMethods.ReadMemory, ReadMemory);
        Add<WriteMemoryRequest, WriteMemoryResponse>(VmMethods.WriteMemory, WriteMemory);
        Add<BreakpointRequest, BreakpointResponse>(VmMethods.InsertBreakpoint, InsertBreakpoint);
        Add<BreakpointRequest, BreakpointResponse>(VmMethods.RemoveBreakpoint, RemoveBreakpoint);
        Add<WatchpointRequest, WatchpointResponse>(VmMethods.InsertWatchpoint, InsertWatchpoint);
        Add<WatchpointRequest, WatchpointResponse>(VmMethods.RemoveWatchpoint, RemoveWatchpoint);
        Add<SnapshotVmRequest, RegisterSnapshot>(VmMethods.SnapshotVm, SnapshotVm);
        Add<ContinueRequest, Vm>(VmMethods.ContinueVm, ContinueVm);
    }

    public ActorStepBackend Backend => _backend;

    /// <summary>Every method by full name; null when this server has no such method.</summary>
    public VmMethod? Find(string name) => _methods.GetValueOrDefault(name);

    public VmMethod Get(string name) => _methods[name];

    private void Add<TRequest, TResponse>(string name, Func<TRequest, CallScope, Task<TResponse>> run, bool runsGuest = false)
        where TRequest : IMessage<TRequest>, new() where TResponse : IMessage<TResponse>, new() =>
        _methods.Add(name, new VmMethod(name, new MessageParser<TRequest>(() => new TRequest()), new MessageParser<TResponse>(() => new TResponse()),
            runsGuest, async (request, scope) => await run((TRequest)request, scope)));

    /// <summary>
    /// The vcpu a request names, as the actors number them (they check it against the VM). One over int.MaxValue no VM has: it is
    /// NOT_FOUND here, printed as the client sent it (cast, it would be a negative int), after the VM's own NOT_FOUND.
    /// </summary>
    private async Task<int> VcpuAsync(string vmId, uint vcpu, CallScope call)
    {
        if (ApiMapping.Vcpu(vcpu) is int v) return v;
        var vm = (await _backend.AskAsync<VmFound>(new FindVm(vmId), call)).Vm;
        throw ApiMapping.NotFound($"no vcpu {vcpu}: VM {Quote(vmId)} has vcpus 0..{vm.Vcpus - 1}");
    }

    // Vms

    public async Task<Vm> GetVm(GetVmRequest r, CallScope call)
    {
        var d = await _backend.AskAsync<VmDescribed>(new DescribeVm(r.VmId), call);
        return Mine(ApiMapping.Vm(d.Vm, d.Description));
    }

    public async Task<DeleteVmResponse> DeleteVm(DeleteVmRequest r, CallScope call)
    {
        var d = await _backend.AskAsync<VmDestroyed>(new DestroyVm(r.VmId), call);
        return new DeleteVmResponse { VmId = d.VmId };
    }

    /// <summary>A VM of this node, with this node's name.</summary>
    public Vm Mine(Vm vm)
    {
        vm.Node = _nodeName;
        return vm;
    }

    // RunControl

    public async Task<RunResponse> Resume(ResumeRequest r, CallScope call)
    {
        var actions = ApiMapping.Actions(r.Actions);
        if (r.IncludeCode > VmProtocol.CodeBlock.MaxBytes)
            throw ApiMapping.Invalid($"include_code must be 0 or a power of two in {VmProtocol.CodeBlock.MinBytes}..{VmProtocol.CodeBlock.MaxBytes}, not {r.IncludeCode}");
        if (r.Actions.FirstOrDefault(e => ApiMapping.Vcpu(e.Vcpu) is null) is { } far) await VcpuAsync(r.VmId, far.Vcpu, call);
        var resume = new VmProtocol.Resume(actions, r.HoldInterrupts || !r.HasHoldInterrupts, ApiMapping.StepCount(r.StepCount),
            ApiMapping.Ranges(r.Actions), (int)r.IncludeCode);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var stop = await _backend.RunAsync(r.VmId, new ToVm(r.VmId, resume), call);
        var response = Logged(r.VmId, ApiMapping.Run(stop));
        _metrics.Resumed("resume", response, started);
        if (stop.Code is { } code) response.Code = new CodeBlock { Address = code.Address, Data = ApiMapping.Bytes(code.Data) };
        // The coordinator's reply carries the stopped vcpu's registers as the stop left them: no second round trip.
        if (r.IncludeRegisters && r.ValuesOnly)
            foreach (var register in PowerRegisters.All) response.RegisterValues.Add(register.Get(stop.State));
        else if (r.IncludeRegisters)
            response.Registers.AddRange(PowerRegisters.All.Select(w => ApiMapping.Register(w, stop.State)));
        return response;
    }

    public async Task<RunResponse> Step(StepRequest r, CallScope call)
    {
        var step = new StepVcpu(r.VmId, await VcpuAsync(r.VmId, r.Vcpu, call), ApiMapping.Locking(r.SchedulerLocking), ApiMapping.StepCount(r.StepCount),
            r.HoldInterrupts || !r.HasHoldInterrupts);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var response = Logged(r.VmId, ApiMapping.Run(await _backend.RunAsync(r.VmId, step, call)));
        _metrics.Resumed("step", response, started);
        return response;
    }

    public async Task<RunResponse> Continue(ContinueRequest r, CallScope call)
    {
        var resume = new ContinueVcpu(r.VmId, await VcpuAsync(r.VmId, r.Vcpu, call), ApiMapping.Locking(r.SchedulerLocking), r.HoldInterrupts || !r.HasHoldInterrupts);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var response = Logged(r.VmId, ApiMapping.Run(await _backend.RunAsync(r.VmId, resume, call)));
        _metrics.Resumed("continue", response, started);
        return response;
    }

    public async Task<RunResponse> Halt(HaltRequest r, CallScope call) =>
        Logged(r.VmId, ApiMapping.Run(await _backend.AskAsync<VmProtocol.Stopped>(new ToVm(r.VmId, new VmProtocol.Halt()), call)));

    /// <summary>The stop in the server's log, with NIP's name when the image has symbols: a step at Debug level (gdb's stepi
    /// makes thousands), every other stop at Information.</summary>
    private RunResponse Logged(string vmId, RunResponse response)
    {
        var e = response.Event;
        var level = e.Reason == Api.V1.StopReason.StepCompleted ? LogLevel.Debug : LogLevel.Information;
        if (_log.IsEnabled(level))
            _log.Log(level, "VM {VmId} stopped: {Reason} on vcpu {Vcpu} at 0x{Nip:x}{Symbol} ({Detail})", vmId, e.Reason, e.Vcpu, e.Nip,
                e.Symbol.Length > 0 ? $" <{e.Symbol}>" : "", e.Detail);
        return response;
    }

    /// <summary>
    /// Fleet.ContinueAll on one VM: starts a continue and answers once it runs, not when it stops. The coordinator handles
    /// the continue before the describe, so a refused continue (already running) has answered by the time the describe does.
    /// </summary>
    public async Task<Vm> ContinueVm(ContinueRequest r, CallScope call)
    {
        int vcpu = await VcpuAsync(r.VmId, r.Vcpu, call);
        var manager = await _backend.ManagerAsync(call.Cancellation);
        var resume = manager.Ask<object>(new ContinueVcpu(r.VmId, vcpu, ApiMapping.Locking(r.SchedulerLocking), r.HoldInterrupts || !r.HasHoldInterrupts),
            Timeout.InfiniteTimeSpan, CancellationToken.None);
        var d = await _backend.AskAsync<VmDescribed>(new DescribeVm(r.VmId), call);
        if (resume.IsCompleted && resume.Result is not VmProtocol.Stopped) throw _backend.ToRpc(resume.Result);
        return Mine(ApiMapping.Vm(d.Vm, d.Description));
    }

    // Registers

    public async Task<GetVcpuRegistersResponse> GetVcpuRegisters(GetVcpuRegistersRequest r, CallScope call)
    {
        var wanted = Wanted(r.Registers);
        var regs = await _backend.AskAsync<VcpuRegisterState>(new ToVm(r.VmId, new VmProtocol.ReadRegisters(await VcpuAsync(r.VmId, r.Vcpu, call))), call);
        var response = new GetVcpuRegistersResponse();
        response.Registers.AddRange(wanted.Select(w => ApiMapping.Register(w, regs.State)));
        return response;
    }

    /// <summary>Validated whole before anything is read; then read, changed and written back (the coordinator refuses a running vcpu).</summary>
    public async Task<SetVcpuRegistersResponse> SetVcpuRegisters(SetVcpuRegistersRequest r, CallScope call)
    {
        var writes = r.Writes.Select(w => (Register: ApiMapping.Register(w.Register ?? new RegisterRef()), w.Value)).ToList();
        if (writes.Count == 0) throw ApiMapping.Invalid("no register writes given");
        foreach (var (reg, value) in writes)
            if (!reg.TrySet(new Hypervisor.VcpuState(), value, out var error)) throw ApiMapping.Invalid(error);

        int vcpu = await VcpuAsync(r.VmId, r.Vcpu, call);
        var current = await _backend.AskAsync<VcpuRegisterState>(new ToVm(r.VmId, new VmProtocol.ReadRegisters(vcpu)), call);
        var state = current.State.Clone();
        foreach (var (reg, value) in writes) reg.TrySet(state, value, out _);
        var written = await _backend.AskAsync<VcpuRegisterState>(new ToVm(r.VmId, new VmProtocol.WriteRegisters(vcpu, state)), call);
        var response = new SetVcpuRegistersResponse();
        response.Registers.AddRange(writes.Select(w => w.Register).Distinct().Select(reg => ApiMapping.Register(reg, written.State)));
        return response;
    }

    /// <summary>Fleet.SnapshotRegisters on one VM: every vcpu's registers, read in parallel.</summary>
    public async Task<RegisterSnapshot> SnapshotVm(SnapshotVmRequest r, CallScope call)
    {
        var wanted = Wanted(r.Registers);
        var vm = (await _backend.AskAsync<VmFound>(new FindVm(r.VmId), call)).Vm;
        var reads = Enumerable.Range(0, vm.Vcpus)
            .Select(v => _backend.AskAsync<VcpuRegisterState>(new ToVm(r.VmId, new VmProtocol.ReadRegisters(v)), call)).ToList();
        var snapshot = new RegisterSnapshot();
        foreach (var read in reads)
        {
            var regs = await read;
            var vcpu = new VcpuRegisters { Vcpu = (uint)regs.Vcpu };
            if (r.ValuesOnly) foreach (var w in wanted) vcpu.Values.Add(w.Get(regs.State));
            else vcpu.Registers.AddRange(wanted.Select(w => ApiMapping.Register(w, regs.State)));
            snapshot.Vcpus.Add(vcpu);
        }
        return snapshot;
    }

    private static IReadOnlyList<PowerRegister> Wanted(IReadOnlyCollection<RegisterRef> refs) =>
        refs.Count == 0 ? PowerRegisters.All : refs.Select(ApiMapping.Register).ToList();

    // Memory

    public const int MaxMemoryLength = 1 << 20;

    public async Task<ReadMemoryResponse> ReadMemory(ReadMemoryRequest r, CallScope call)
    {
        if (r.Length > MaxMemoryLength) throw ApiMapping.Invalid($"length {r.Length} is over the 1 MiB ({MaxMemoryLength} bytes) a read may return");
        var read = await _backend.AskAsync<VmProtocol.MemoryRead>(
            new ToVm(r.VmId, new VmProtocol.ReadMemory(r.Address, (int)r.Length, await TranslationAsync(r.VmId, r.Space, r.Vcpu, call))), call);
        return new ReadMemoryResponse { Address = read.Address, Data = ApiMapping.Bytes(read.Data) };
    }

    public async Task<WriteMemoryResponse> WriteMemory(WriteMemoryRequest r, CallScope call)
    {
        if (r.Data.Length > MaxMemoryLength) throw ApiMapping.Invalid($"{r.Data.Length} bytes is over the 1 MiB ({MaxMemoryLength} bytes) a write may carry");
        var written = await _backend.AskAsync<VmProtocol.MemoryWritten>(
            new ToVm(r.VmId, new VmProtocol.WriteMemory(r.Address, r.Data.ToByteArray(), await TranslationAsync(r.VmId, r.Space, r.Vcpu, call))), call);
        return new WriteMemoryResponse { Address = written.Address, Length = (uint)written.Length };
    }

    /// <summary>The vcpu whose translation applies, or null for a real address (the vcpu field is ignored then).</summary>
    private async Task<int?> TranslationAsync(string vmId, AddressSpace space, uint vcpu, CallScope call) =>
        ApiMapping.ByEffectiveAddress(space) ? await VcpuAsync(vmId, vcpu, call) : null;

    // Breakpoints

    public async Task<BreakpointResponse> InsertBreakpoint(BreakpointRequest r, CallScope call) =>
        Map(await _backend.AskAsync<VmProtocol.BreakpointChanged>(new ToVm(r.VmId, new VmProtocol.InsertBreakpoint(r.Address, await VcpuAsync(r.VmId, r.Vcpu, call))), call));

    public async Task<BreakpointResponse> RemoveBreakpoint(BreakpointRequest r, CallScope call) =>
        Map(await _backend.AskAsync<VmProtocol.BreakpointChanged>(new ToVm(r.VmId, new VmProtocol.RemoveBreakpoint(r.Address, await VcpuAsync(r.VmId, r.Vcpu, call))), call));

    private static BreakpointResponse Map(VmProtocol.BreakpointChanged c) =>
        new() { Address = c.Address, RealAddress = c.RealAddress, Changed = c.Changed };

    // Watchpoints: VM-wide, by effective address (no vcpu translates them)

    public async Task<WatchpointResponse> InsertWatchpoint(WatchpointRequest r, CallScope call) =>
        Map(await _backend.AskAsync<VmProtocol.WatchpointChanged>(new ToVm(r.VmId, new VmProtocol.InsertWatchpoint(ApiMapping.Watchpoint(r.Watchpoint))), call));

    public async Task<WatchpointResponse> RemoveWatchpoint(WatchpointRequest r, CallScope call) =>
        Map(await _backend.AskAsync<VmProtocol.WatchpointChanged>(new ToVm(r.VmId, new VmProtocol.RemoveWatchpoint(ApiMapping.Watchpoint(r.Watchpoint))), call));

    private static WatchpointResponse Map(VmProtocol.WatchpointChanged c) =>
        new() { Watchpoint = ApiMapping.Watchpoint(c.Watchpoint), Changed = c.Changed };
}

/// <summary>Full names of the calls that name a VM (what a FleetCall carries).</summary>
public static class VmMethods
{
    public static readonly string GetVm = Name(Vms.Descriptor, "GetVm");
    public static readonly string DeleteVm = Name(Vms.Descriptor, "DeleteVm");
    public static readonly string Resume = Name(RunControl.Descriptor, "Resume");
    public static readonly string Step = Name(RunControl.Descriptor, "Step");
    public static readonly string Continue = Name(RunControl.Descriptor, "Continue");
    public static readonly string Halt = Name(RunControl.Descriptor, "Halt");
    public static readonly string GetVcpuRegisters = Name(Registers.Descriptor, "GetVcpuRegisters");
    public static readonly string SetVcpuRegisters = Name(Registers.Descriptor, "SetVcpuRegisters");
    public static readonly string ReadMemory = Name(Memory.Descriptor, "ReadMemory");
    public static readonly string WriteMemory = Name(Memory.Descriptor, "WriteMemory");
    public static readonly string InsertBreakpoint = Name(Breakpoints.Descriptor, "InsertBreakpoint");
    public static readonly string RemoveBreakpoint = Name(Breakpoints.Descriptor, "RemoveBreakpoint");
    public static readonly string InsertWatchpoint = Name(Breakpoints.Descriptor, "InsertWatchpoint");
    public static readonly string RemoveWatchpoint = Name(Breakpoints.Descriptor, "RemoveWatchpoint");

    /// <summary>The per-VM operations of Fleet.SnapshotRegisters and Fleet.ContinueAll (not RPCs of their own).</summary>
    public static readonly string SnapshotVm = $"/{Api.V1.Fleet.Descriptor.FullName}/SnapshotVm";
    public static readonly string ContinueVm = $"/{Api.V1.Fleet.Descriptor.FullName}/ContinueVm";

    private static string Name(Google.Protobuf.Reflection.ServiceDescriptor service, string method) =>
        service.FindMethodByName(method) is not null ? $"/{service.FullName}/{method}"
            : throw new InvalidOperationException($"{service.FullName} has no method {method}");
}
