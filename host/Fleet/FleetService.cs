using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using ActorStep.Actors.Fleet;
using ActorStep.Api.V1;
using ActorStep.Host.Services;
using Google.Protobuf;
using Grpc.Core;

namespace ActorStep.Host.Fleet;

/// <summary>
/// actorstep.v1.Fleet: one operation over every VM a label selector picks, fanned out through the <see cref="VmRouter"/> to each
/// VM's node, results streamed as they arrive; a VM that does not answer by the deadline gets an error entry, never a hang.
/// </summary>
public sealed class FleetService(VmRouter router) : Api.V1.Fleet.FleetBase
{
    /// <summary>The time limit of a fleet-wide call with neither timeout_ms nor a gRPC deadline.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public override Task HaltAll(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context) =>
        FanOutAsync(r, stream, context, VmMethods.Halt, vm => new HaltRequest { VmId = vm }, (result, m) => result.Halted = (RunResponse)m);

    public override Task ContinueAll(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context) =>
        FanOutAsync(r, stream, context, VmMethods.ContinueVm, vm => new ContinueRequest { VmId = vm, SchedulerLocking = SchedulerLocking.Off },
            (result, m) => result.Resumed = (Vm)m);

    public override Task SnapshotRegisters(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context)
    {
        foreach (var reg in r.Registers) ApiMapping.Register(reg); // INVALID_ARGUMENT for the call, not once per VM
        return FanOutAsync(r, stream, context, VmMethods.SnapshotVm, vm => new SnapshotVmRequest { VmId = vm, Registers = { r.Registers } },
            (result, m) => result.Registers = (RegisterSnapshot)m);
    }

    public override Task InsertBreakpointAll(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context) =>
        FanOutAsync(r, stream, context, VmMethods.InsertBreakpoint, vm => new BreakpointRequest { VmId = vm, Address = Aligned(r.Address) },
            (result, m) => result.Breakpoint = (BreakpointResponse)m);

    public override Task RemoveBreakpointAll(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context) =>
        FanOutAsync(r, stream, context, VmMethods.RemoveBreakpoint, vm => new BreakpointRequest { VmId = vm, Address = Aligned(r.Address) },
            (result, m) => result.Breakpoint = (BreakpointResponse)m);

    public override Task<ClusterStatus> GetClusterStatus(GetClusterStatusRequest request, ServerCallContext context)
    {
        if (router.Fleet is { } fleet) return Task.FromResult(fleet.Status());
        var status = new ClusterStatus { SelfName = VmRouter.LocalNodeName };
        status.Members.Add(new ClusterMember { Name = VmRouter.LocalNodeName, Status = "Up", Reachable = true });
        return Task.FromResult(status);
    }

    private static ulong Aligned(ulong address) =>
        address % 4 == 0 ? address : throw ApiMapping.Invalid($"breakpoint address 0x{address:x} is not 4-byte aligned");

    /// <summary>
    /// The fleet deadline: timeout_ms (default 10 s), and a little before the gRPC deadline, so that the error entries of the
    /// VMs that did not answer still reach the client.
    /// </summary>
    public static DateTime Deadline(FleetRequest r, DateTime grpcDeadline, DateTime now)
    {
        var deadline = now + (r.TimeoutMs > 0 ? TimeSpan.FromMilliseconds(r.TimeoutMs) : DefaultTimeout);
        if (grpcDeadline < DateTime.MaxValue)
        {
            var left = grpcDeadline - now;
            var margin = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMilliseconds(500).Ticks, left.Ticks / 10));
            if (grpcDeadline - margin < deadline) deadline = grpcDeadline - margin;
        }
        return deadline;
    }

    private async Task FanOutAsync(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context, string methodName,
        Func<string, IMessage> request, Action<FleetResult, IMessage> setResult)
    {
        var started = Stopwatch.StartNew();
        var deadline = Deadline(r, context.Deadline, DateTime.UtcNow);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        cts.CancelAfter(TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)));
        var call = new CallScope(deadline, cts.Token);
        var method = router.Api.Get(methodName);
        var targets = await router.SelectAsync(new Dictionary<string, string>(r.LabelSelector), CallScope.From(context));

        var results = Channel.CreateUnbounded<FleetResult>(new UnboundedChannelOptions { SingleReader = true });
        var pending = new ConcurrentDictionary<string, DirectoryEntry>(targets.Select(t => KeyValuePair.Create(t.Record.VmId, t)));
        int left = pending.Count;
        if (left == 0) results.Writer.TryComplete();

        // Exactly one result per VM: whichever comes first of its answer, its error, and the deadline.
        void Complete(DirectoryEntry target, Action<FleetResult> fill)
        {
            if (!pending.TryRemove(target.Record.VmId, out _)) return;
            var result = new FleetResult { VmId = target.Record.VmId, Node = target.Record.NodeName, ElapsedMs = (uint)started.ElapsedMilliseconds };
            fill(result);
            results.Writer.TryWrite(result);
            if (Interlocked.Decrement(ref left) == 0) results.Writer.TryComplete();
        }

        async Task RunOne(DirectoryEntry target)
        {
            try
            {
                var response = await router.CallAtAsync(method, target, request(target.Record.VmId), call);
                Complete(target, result => setResult(result, response));
            }
            catch (RpcException e)
            {
                var code = e.StatusCode == StatusCode.Cancelled && !context.CancellationToken.IsCancellationRequested ? StatusCode.DeadlineExceeded : e.StatusCode;
                Complete(target, result => result.Error = Error(target, code, e.Status.Detail));
            }
            catch (Exception e)
            {
                Complete(target, result => result.Error = new FleetError { Code = (int)StatusCode.Internal, Message = e.Message });
            }
        }

        foreach (var target in targets) _ = RunOne(target);
        using var timer = new Timer(_ =>
        {
            foreach (var target in pending.Values)
                Complete(target, result => result.Error = Error(target, StatusCode.DeadlineExceeded, "no answer by the deadline"));
        }, null, TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)), Timeout.InfiniteTimeSpan);

        try
        {
            await foreach (var result in results.Reader.ReadAllAsync(context.CancellationToken))
                await stream.WriteAsync(result, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            throw CallScope.From(context).Cancelled();
        }
    }

    private FleetError Error(DirectoryEntry target, StatusCode code, string detail) => new()
    {
        Code = (int)code,
        Message = code == StatusCode.DeadlineExceeded && router.Fleet is not null && !router.Fleet.IsSelf(target.Record)
            ? $"node {FleetNode.Name(target.Record)} did not answer for VM {target.Record.VmId} by the deadline"
            : detail,
    };
}
