using ActorStep.Api.V1;
using ActorStep.Protocol.Gdb;
using Grpc.Core;
using Grpc.Net.Client;
using ApiStopReason = ActorStep.Api.V1.StopReason;
using ApiVcpuAction = ActorStep.Api.V1.VcpuAction;

namespace ActorStep.Host.Gdb;

/// <summary>A gRPC call the bridge made failed; the session answers it with an <c>E NN</c> reply.</summary>
public sealed class GdbTargetException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One VM as gdb sees it, over the public gRPC API only (so a bridge can run anywhere the API is reachable).
/// Every <see cref="IGdbTarget"/> call is one RPC: <c>g</c> is one GetVcpuRegisters (the session caches it until the
/// next resume or write, so a stop reply, <c>g</c> and <c>p</c> share it), Ctrl-C is RunControl.Halt. A vCont is one
/// message round trip on a RunControl.ResumeStream kept open for the session: a Resume with the per-vcpu actions
/// exactly as gdb sent them, whose answer carries the stopped vcpu's register values (no <c>g</c> round trip after a stop;
/// the register catalogue that names them is read once).
/// <para>Detach and kill leave the VM halted: the API runs a VM only while a Resume call is open, and a bridge that
/// kept one open after gdb left would hold the VM hostage. Another gdb (or any gRPC client) can pick it up.</para>
/// </summary>
public sealed class GrpcGdbTarget : IGdbTarget, IGdbMonitor, IGdbWatchpoints, IDisposable
{
    /// <summary>Bounds every call that does not run the guest, so a lost server shows as an error, not a hang.</summary>
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    private readonly string _vmId;
    private readonly Vms.VmsClient _vms;
    private readonly RunControl.RunControlClient _run;
    private readonly Api.V1.Registers.RegistersClient _registers;
    private readonly Api.V1.Memory.MemoryClient _memory;
    private readonly Breakpoints.BreakpointsClient _breakpoints;

    // Breakpoints have no thread in gdb's Z0 packet: translate with the vcpu gdb last stopped on (its MSR is the one
    // the user is looking at), vcpu 0 before the first stop.
    private int _translationVcpu;

    // gdb reads the same few words around the pc many times per stop (prologue analysis: ~9 four-byte m packets per
    // stepi). While the VM is stopped by this gdb's own resume, memory is read in aligned blocks and kept until the next
    // resume or write; the stop itself brings the two blocks before and at the pc (ResumeRequest.include_code). Before
    // the first stop (the VM may be running for another client) every read goes to the server.
    private const int BlockSize = 256;
    private readonly Dictionary<(int Vcpu, ulong Block), byte[]> _blocks = [];
    private bool _stoppedByUs;

    // The session's resume stream, opened by the first resume and again after a failure or a cancelled resume.
    private AsyncDuplexStreamingCall<ResumeRequest, ResumeStreamResponse>? _resumes;

    // The register catalogue (gdb number and size of each register, in the server's order), read once: a stop then
    // carries the values only (ResumeRequest.values_only), a few bytes per register instead of a named entry.
    private (int GdbNumber, int Bytes)[]? _catalogue;

    // Non-stop (null for a VM that runs only as a whole). While it is on, vcpus run while gdb reads: no memory is cached and a
    // breakpoint gdb removes is removed at once (a running vcpu would otherwise still hit it).
    private readonly GrpcNonStop? _nonStop;
    private volatile bool _nonStopActive;

    /// <param name="nonStop">offer gdb's non-stop mode: the VM's vcpus run independently (not <c>Capabilities.all_stop</c>)</param>
    public GrpcGdbTarget(GrpcChannel channel, string vmId, bool nonStop = false) : this(channel.CreateCallInvoker(), vmId, nonStop)
    {
    }

    /// <summary>Over any call invoker: a channel's, or the server's own in-process one (<see cref="InProcessCallInvoker"/>).</summary>
    public GrpcGdbTarget(CallInvoker calls, string vmId, bool nonStop = false)
    {
        _vmId = vmId;
        if (nonStop) _nonStop = new GrpcNonStop(this);
        _vms = new Vms.VmsClient(calls);
        _run = new RunControl.RunControlClient(calls);
        _registers = new Api.V1.Registers.RegistersClient(calls);
        _memory = new Api.V1.Memory.MemoryClient(calls);
        _breakpoints = new Breakpoints.BreakpointsClient(calls);
    }

    public string VmId => _vmId;

    public IGdbMonitor Monitor => this;

    public IGdbWatchpoints Watchpoints => this;

    public IGdbNonStop? NonStop => _nonStop;

    /// <summary>Non-stop begins or ends: memory is no longer cached, removals are no longer deferred (or both again).</summary>
    internal async Task SetNonStopAsync(bool on, CancellationToken ct)
    {
        _blocks.Clear();
        _stoppedByUs = false;
        if (on) await RemoveNotedAsync(ct);
        _nonStopActive = on;
    }
    /// <summary>gdb's <c>monitor help</c> and <c>monitor vm</c> (the VM as the server describes it).</summary>
    public async Task<string> RunAsync(string command, CancellationToken ct)
    {
        switch (command.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            case [] or ["help"]:
                return "vm                         the VM: image, flavour, vcpus and where they are, breakpoints, node\n";
            case ["vm"]:
            {
                var vm = await GetVmAsync(ct);
                var text = new System.Text.StringBuilder();
                text.Append($"VM {vm.VmId}: {vm.Image}, {(vm.ImageLittleEndian ? "little" : "big")}-endian image, {vm.Flavour switch
                {
                    Flavour.Pr => "KVM-PR flavour (hardware single-step)",
                    _ => "KVM-HV flavour (steps by the Trace interrupt)",
                }}, {vm.MemorySize >> 20} MiB, {(vm.Running ? "running" : "stopped")}");
                if (vm.Node.Length > 0) text.Append($", on node {vm.Node}");
                text.Append('\n');
                foreach (var v in vm.Vcpus)
                    text.Append($"  vcpu {v.Vcpu} (thread {v.Vcpu + 1}): {v.State switch
                    {
                        VcpuState.Running => "running",
                        VcpuState.StoppedForGood => "stopped for good",
                        _ => "stopped",
                    }} at 0x{v.Nip:x}{(v.Symbol.Length > 0 ? $" <{v.Symbol}>" : "")}\n");
                text.Append($"  {vm.BreakpointCount} breakpoint(s) in guest memory\n");
                return text.ToString();
            }
            default:
                return $"unknown command '{command}': try monitor help\n";
        }
    }

    private static DateTime Deadline => DateTime.UtcNow.Add(CallTimeout);

    private Task<Vm> GetVmAsync(CancellationToken ct) =>
        Call(() => _vms.GetVmAsync(new GetVmRequest { VmId = _vmId }, deadline: Deadline, cancellationToken: ct).ResponseAsync);

    public async Task<IReadOnlyList<GdbThreadInfo>> GetThreadsAsync(CancellationToken ct)
    {
        var vm = await GetVmAsync(ct);
        return vm.Vcpus.Select(v => new GdbThreadInfo((int)v.Vcpu, v.State != VcpuState.StoppedForGood, v.State switch
        {
            VcpuState.Stopped => $"stopped at 0x{v.Nip:x}",
            VcpuState.Running => $"running, at 0x{v.Nip:x}",
            VcpuState.StoppedForGood => "stopped for good",
            _ => "unknown",
        })).ToList();
    }

    /// <summary>Every register of a vcpu in gdb-number order (an empty list): the whole g packet, or the catalogue, in one call.</summary>
    private Task<GetVcpuRegistersResponse> AllRegistersAsync(int vcpu, CancellationToken ct) =>
        Call(() => _registers.GetVcpuRegistersAsync(
            new GetVcpuRegistersRequest { VmId = _vmId, Vcpu = (uint)vcpu }, deadline: Deadline, cancellationToken: ct).ResponseAsync);

    public async Task<IReadOnlyDictionary<int, byte[]>> ReadRegistersAsync(int vcpu, CancellationToken ct) =>
        Registers((await AllRegistersAsync(vcpu, ct)).Registers);

    private async Task<(int GdbNumber, int Bytes)[]> CatalogueAsync(CancellationToken ct) =>
        (await AllRegistersAsync(0, ct)).Registers.Select(r => ((int)r.GdbNumber, (int)r.Bits / 8)).ToArray();

    private Dictionary<int, byte[]>? Registers(IReadOnlyList<ulong> values)
    {
        var catalogue = _catalogue!;
        if (values.Count != catalogue.Length) return null; // not what the catalogue describes: the session reads g instead
        var regs = new Dictionary<int, byte[]>(values.Count);
        for (int i = 0; i < values.Count; i++) regs[catalogue[i].GdbNumber] = GdbRegisterValue.FromUInt64(values[i], catalogue[i].Bytes);
        return regs;
    }

    private static Dictionary<int, byte[]> Registers(IReadOnlyCollection<Register> registers)
    {
        var regs = new Dictionary<int, byte[]>(registers.Count);
        foreach (var r in registers) regs[(int)r.GdbNumber] = GdbRegisterValue.FromUInt64(r.Value, (int)r.Bits / 8);
        return regs;
    }

    public async Task WriteRegisterAsync(int vcpu, int regnum, byte[] value, CancellationToken ct)
    {
        var request = new SetVcpuRegistersRequest { VmId = _vmId, Vcpu = (uint)vcpu };
        request.Writes.Add(new RegisterWrite { Register = new RegisterRef { GdbNumber = (uint)regnum }, Value = GdbRegisterValue.ToUInt64(value) });
        await Call(() => _registers.SetVcpuRegistersAsync(request, deadline: Deadline, cancellationToken: ct).ResponseAsync);
    }

    public async Task<byte[]> ReadMemoryAsync(int vcpu, ulong address, int length, CancellationToken ct)
    {
        if (_stoppedByUs && length <= BlockSize && address / BlockSize == (address + (ulong)length - 1) / BlockSize)
        {
            ulong block = address / BlockSize * BlockSize;
            if (!_blocks.TryGetValue((vcpu, block), out var data))
            {
                data = await ReadUncachedAsync(vcpu, block, BlockSize, ct);
                if (data.Length < BlockSize) return await ReadUncachedAsync(vcpu, address, length, ct); // near the end of RAM
                _blocks[(vcpu, block)] = data;
            }
            return data.AsSpan((int)(address - block), length).ToArray();
        }
        return await ReadUncachedAsync(vcpu, address, length, ct);
    }

    private async Task<byte[]> ReadUncachedAsync(int vcpu, ulong address, int length, CancellationToken ct)
    {
        try
        {
            var reply = await _memory.ReadMemoryAsync(new ReadMemoryRequest
            {
                VmId = _vmId, Address = address, Length = (uint)length, Space = AddressSpace.Effective, Vcpu = (uint)vcpu,
            }, deadline: Deadline, cancellationToken: ct);
            return reply.Data.ToByteArray();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
        {
            return []; // no translation or outside guest RAM: gdb's "Cannot access memory" (E0e)
        }
        catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
        {
            throw Failure(e);
        }
    }

    public async Task WriteMemoryAsync(int vcpu, ulong address, byte[] data, CancellationToken ct)
    {
        _blocks.Clear(); // the same real address may be cached under several vcpus' translations
        await Call(() => _memory.WriteMemoryAsync(new WriteMemoryRequest
        {
            VmId = _vmId, Address = address, Data = Google.Protobuf.ByteString.CopyFrom(data), Space = AddressSpace.Effective, Vcpu = (uint)vcpu,
        }, deadline: Deadline, cancellationToken: ct).ResponseAsync);
    }

    // gdb (breakpoint always-inserted off, its default) takes every breakpoint out at each stop and puts it back at the
    // next resume: two unary calls per breakpoint per stepi (~270 µs each here), more than the step. A z0 of a breakpoint
    // this session planted is therefore only noted; the Z0 that follows finds it still planted, and removals gdb really
    // meant are made before the next resume, at detach and at kill. Breakpoints never show in memory reads, so gdb cannot
    // tell. Each is removed with the vcpu that translated it when it was planted.
    private readonly Dictionary<ulong, int> _planted = [];
    private readonly HashSet<ulong> _removing = [];

    public async Task InsertSwBreakpointAsync(ulong address, CancellationToken ct)
    {
        if (_removing.Remove(address)) return; // still planted at the server
        int vcpu = _translationVcpu;
        await Call(() => _breakpoints.InsertBreakpointAsync(
            new BreakpointRequest { VmId = _vmId, Address = address, Vcpu = (uint)vcpu }, deadline: Deadline, cancellationToken: ct).ResponseAsync);
        _planted[address] = vcpu;
    }

    public async Task RemoveSwBreakpointAsync(ulong address, CancellationToken ct)
    {
        if (_nonStopActive)
        {
            int vcpu = _planted.Remove(address, out var planter) ? planter : _translationVcpu;
            await RemoveAtServerAsync(address, vcpu, ct);
            return;
        }
        if (_planted.ContainsKey(address))
        {
            _removing.Add(address);
            return;
        }
        await RemoveAtServerAsync(address, _translationVcpu, ct);
    }

    private Task<BreakpointResponse> RemoveAtServerAsync(ulong address, int vcpu, CancellationToken ct) =>
        Call(() => _breakpoints.RemoveBreakpointAsync(
            new BreakpointRequest { VmId = _vmId, Address = address, Vcpu = (uint)vcpu }, deadline: Deadline, cancellationToken: ct).ResponseAsync);

    // Watchpoints are taken out and put back by gdb at each stop, like breakpoints: the same noting of removals saves two
    // calls per watchpoint per stop. A removal gdb means before it steps over the access that hit (powerpc watchpoints are
    // non-steppable) is made before that step, as every noted removal is.
    private readonly HashSet<Api.V1.Watchpoint> _watching = [];
    private readonly HashSet<Api.V1.Watchpoint> _unwatching = [];

    private static Api.V1.Watchpoint Watch(GdbWatchKind kind, ulong address, ulong length) => new()
    {
        Address = address, Length = length,
        Kind = kind switch { GdbWatchKind.Read => WatchpointKind.Read, GdbWatchKind.Access => WatchpointKind.Access, _ => WatchpointKind.Write },
    };

    public async Task InsertWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct)
    {
        var w = Watch(kind, address, length);
        if (_unwatching.Remove(w)) return; // still set at the server
        await Call(() => _breakpoints.InsertWatchpointAsync(
            new WatchpointRequest { VmId = _vmId, Watchpoint = w }, deadline: Deadline, cancellationToken: ct).ResponseAsync);
        _watching.Add(w);
    }

    public async Task RemoveWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct)
    {
        var w = Watch(kind, address, length);
        if (_watching.Contains(w)) _unwatching.Add(w);
        else await UnwatchAtServerAsync(w, ct);
    }

    private Task<WatchpointResponse> UnwatchAtServerAsync(Api.V1.Watchpoint w, CancellationToken ct) =>
        Call(() => _breakpoints.RemoveWatchpointAsync(
            new WatchpointRequest { VmId = _vmId, Watchpoint = w }, deadline: Deadline, cancellationToken: ct).ResponseAsync);

    /// <summary>Makes the removals gdb asked for since the last resume.</summary>
    private Task RemoveNotedAsync(CancellationToken ct) =>
        _unwatching.Count == 0 && _removing.Count == 0 ? Task.CompletedTask : RemoveAllNotedAsync(ct); // a plain step: nothing to do

    private async Task RemoveAllNotedAsync(CancellationToken ct)
    {
        foreach (var w in _unwatching.ToList())
        {
            await UnwatchAtServerAsync(w, ct);
            _unwatching.Remove(w);
            _watching.Remove(w);
        }
        foreach (var address in _removing.ToList())
        {
            await RemoveAtServerAsync(address, _planted[address], ct);
            _removing.Remove(address);
            _planted.Remove(address);
        }
    }

    /// <summary>One resume on the session's stream; no deadline (a continue may run for hours). If <paramref name="ct"/> is
    /// cancelled (the bridge stops) the stream call is cancelled and the server halts the VM, leaving nothing of a step in
    /// the guest; the next resume opens a new stream.</summary>
    public async Task<GdbStopEvent> ResumeAsync(GdbResume resume, CancellationToken ct)
    {
        var resuming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _resuming = resuming.Task;
        try { return await ResumeAndCacheAsync(resume, ct); }
        finally { resuming.SetResult(); }
    }

    private async Task<GdbStopEvent> ResumeAndCacheAsync(GdbResume resume, CancellationToken ct)
    {
        _catalogue ??= await CatalogueAsync(ct);
        var request = Request(resume);
        request.IncludeCode = BlockSize;
        await RemoveNotedAsync(ct);
        _stoppedByUs = false;
        _blocks.Clear();
        var reply = await ResumeOnStreamAsync(request, ct);
        if (_nonStopActive) return StopEvent(reply); // a resume racing a switch to non-stop: nothing may be cached
        _stoppedByUs = true;
        // The memory around the stopped pc came with the stop: gdb's reads there (about ten per stepi) cost no call.
        if (reply.Code is { } code && code.Address % BlockSize == 0)
            for (int offset = 0; offset + BlockSize <= code.Data.Length; offset += BlockSize)
                _blocks[((int)reply.Event.Vcpu, code.Address + (ulong)offset)] = code.Data.Span.Slice(offset, BlockSize).ToArray();
        return StopEvent(reply);
    }

    /// <summary>One all-stop resume for <see cref="GrpcNonStop"/>: no breakpoint removals, no memory cache (vcpus run while gdb reads).</summary>
    internal async Task<GdbStopEvent> ResumeOnceAsync(GdbResume resume, CancellationToken ct)
    {
        _catalogue ??= await CatalogueAsync(ct);
        return StopEvent(await ResumeOnStreamAsync(Request(resume), ct));
    }

    /// <summary>The Resume for gdb's per-vcpu actions exactly as it sent them, asking for the stopped vcpu's register values.</summary>
    private ResumeRequest Request(GdbResume resume)
    {
        var request = new ResumeRequest { VmId = _vmId, StepCount = 1, HoldInterrupts = resume.HoldInterrupts, IncludeRegisters = true, ValuesOnly = true };
        for (int vcpu = 0; vcpu < resume.Actions.Count; vcpu++)
        {
            if (resume.Actions[vcpu] == GdbResumeAction.Stay) continue;
            var entry = new VcpuActionEntry
            {
                Vcpu = (uint)vcpu,
                Action = resume.Actions[vcpu] == GdbResumeAction.Step ? ApiVcpuAction.Step : ApiVcpuAction.Continue,
            };
            if (resume.Actions[vcpu] == GdbResumeAction.Step && resume.Ranges is { } ranges && ranges.TryGetValue(vcpu, out var range))
                entry.StepRange = new StepRange { Start = range.Start, End = range.End };
            request.Actions.Add(entry);
        }
        return request;
    }

    private async Task<RunResponse> ResumeOnStreamAsync(ResumeRequest request, CancellationToken ct)
    {
        var stream = _resumes ??= _run.ResumeStream();
        ResumeStreamResponse answer;
        try
        {
            await stream.RequestStream.WriteAsync(request, ct);
            if (!await stream.ResponseStream.MoveNext(ct))
                throw new RpcException(new Status(StatusCode.Unavailable, "the server ended the resume stream"));
            answer = stream.ResponseStream.Current;
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or InvalidOperationException)
        {
            // A broken or cancelled stream cannot carry another resume: drop it (cancelling the call if it still runs).
            CloseStream();
            ct.ThrowIfCancellationRequested();
            if (e is RpcException { StatusCode: StatusCode.Cancelled }) throw;
            throw e is RpcException rpc ? Failure(rpc) : new GdbTargetException(e.Message, e);
        }
        if (answer.ResultCase == ResumeStreamResponse.ResultOneofCase.Error)
            throw new GdbTargetException($"{(StatusCode)answer.Error.Code}: {answer.Error.Message}");
        return answer.Stopped;
    }

    private void CloseStream()
    {
        _resumes?.Dispose();
        _resumes = null;
    }

    /// <summary>Ends the session's resume stream (the VM stays as it is: halted unless a resume was in flight, which this cancels).</summary>
    public void Dispose()
    {
        _nonStop?.Dispose();
        CloseStream();
    }

    /// <summary>An all-stop resume of this gdb's from its start (before its request reaches the server) to its stop.</summary>
    private volatile Task? _resuming;

    /// <summary>How long a halt is given to end the resume in flight before it is sent again.</summary>
    internal static readonly TimeSpan HaltRetry = TimeSpan.FromMilliseconds(50);

    /// <summary>Halts the VM. A Ctrl-C that comes right after the vCont may reach the server before the resume does (which then
    /// runs on): the halt is repeated until the resume in flight has ended.</summary>
    public async Task InterruptAsync(CancellationToken ct)
    {
        var resuming = _resuming;
        do await Call(() => _run.HaltAsync(new HaltRequest { VmId = _vmId }, deadline: Deadline, cancellationToken: ct).ResponseAsync);
        while (resuming is { IsCompleted: false } && await Task.WhenAny(resuming, Task.Delay(HaltRetry, ct)) != resuming);
    }

    /// <summary>The VM stays halted (see the class comment), without the breakpoints gdb removed.</summary>
    public Task DetachAsync(CancellationToken ct) => RemoveNotedAsync(ct);

    /// <summary>gdb's kill halts the VM but does not destroy it: the VM belongs to the server, not to this gdb.</summary>
    public async Task KillAsync(CancellationToken ct)
    {
        await InterruptAsync(ct);
        await RemoveNotedAsync(ct);
    }

    private GdbStopEvent StopEvent(RunResponse reply)
    {
        var e = reply.Event;
        int vcpu = (int)e.Vcpu;
        _translationVcpu = vcpu;
        bool allGone = reply.Vcpus.Count > 0 && reply.Vcpus.All(v => v.State == VcpuState.StoppedForGood);
        var registers = reply.RegisterValues.Count > 0 ? Registers(reply.RegisterValues)
            : reply.Registers.Count > 0 ? Registers(reply.Registers) : null;
        return e.Reason switch
        {
            ApiStopReason.StepCompleted => new GdbStopEvent(vcpu, GdbStopReason.StepDone, Detail: e.Detail, Registers: registers),
            ApiStopReason.Breakpoint => new GdbStopEvent(vcpu, GdbStopReason.Breakpoint, Detail: e.Detail, Registers: registers),
            ApiStopReason.Halted => new GdbStopEvent(vcpu, GdbStopReason.Halted, Detail: e.Detail, Registers: registers),
            ApiStopReason.GuestStopped => new GdbStopEvent(vcpu, GdbStopReason.GuestStopped, e.Status, allGone, e.Detail, registers),
            ApiStopReason.Finished => new GdbStopEvent(vcpu, GdbStopReason.GuestStopped, e.Status, AllVcpusGone: true, e.Detail, registers),
            ApiStopReason.Idle => new GdbStopEvent(vcpu, GdbStopReason.Idle, Detail: e.Detail, Registers: registers),
            ApiStopReason.Watchpoint when e.Watchpoint is { } hit => new GdbStopEvent(vcpu, GdbStopReason.Watchpoint, Detail: e.Detail,
                Registers: registers, Watch: new GdbWatchHit(hit.Watchpoint.Kind switch
                {
                    WatchpointKind.Read => GdbWatchKind.Read,
                    WatchpointKind.Access => GdbWatchKind.Access,
                    _ => GdbWatchKind.Write,
                }, hit.WatchedAddress)),
            _ => new GdbStopEvent(vcpu, GdbStopReason.Error, Detail: e.Detail, Registers: registers), // checkstop, a failed vcpu actor
        };
    }

    /// <summary>gRPC failures become <see cref="GdbTargetException"/> (the session's <c>E05</c>); cancellation stays cancellation.</summary>
    private static async Task<T> Call<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
        {
            throw Failure(e);
        }
    }

    private static GdbTargetException Failure(RpcException e) => new($"{e.StatusCode}: {e.Status.Detail}", e);
}
