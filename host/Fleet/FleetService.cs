using System.Diagnostics;
using System.Threading.Channels;
using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using Akka.Actor;
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
        return FanOutAsync(r, stream, context, VmMethods.SnapshotVm, vm => new SnapshotVmRequest { VmId = vm, Registers = { r.Registers }, ValuesOnly = r.ValuesOnly },
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

    /// <summary>
    /// One <see cref="FleetFanOut"/> per node (this node's share runs here), each carrying the selector: the node picks its own VMs
    /// and streams their replies back in batches. The directory says which VMs to expect from which node: a lost node's VMs get
    /// UNAVAILABLE entries (at once, or when it is lost mid-call), a VM its node no longer has NOT_FOUND, and every VM still
    /// without an entry at the deadline DEADLINE_EXCEEDED. A VM a node reports that the directory did not know yet is streamed too.
    /// </summary>
    private async Task FanOutAsync(FleetRequest r, IServerStreamWriter<FleetResult> stream, ServerCallContext context, string methodName,
        Func<string, IMessage> request, Action<FleetResult, IMessage> setResult)
    {
        var started = Stopwatch.StartNew();
        var deadline = Deadline(r, context.Deadline, DateTime.UtcNow);
        var method = router.Api.Get(methodName);
        var selector = new Dictionary<string, string>(r.LabelSelector);
        var fleet = router.Fleet;
        var targets = await router.SelectAsync(selector, CallScope.From(context));

        var results = Channel.CreateUnbounded<FleetResult>(new UnboundedChannelOptions { SingleReader = true });
        var gate = new object();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var expected = targets.GroupBy(t => t.Record.Node).ToDictionary(g => g.Key, g => g.ToList());
        var waiting = new HashSet<string>(StringComparer.Ordinal); // nodes whose last batch has not come
        bool over = false;

        void Write(string vmId, string node, Action<FleetResult> fill)
        {
            if (over || !reported.Add(vmId)) return;
            var result = new FleetResult { VmId = vmId, Node = node, ElapsedMs = (uint)started.ElapsedMilliseconds };
            fill(result);
            results.Writer.TryWrite(result);
        }

        void EndIfDone()
        {
            if (waiting.Count > 0 || over) return;
            over = true;
            results.Writer.TryComplete();
        }

        // The rest of a node's expected VMs, once it has answered for all it has, or is lost.
        void Settle(string node, StatusCode code, Func<DirectoryEntry, string> message)
        {
            foreach (var t in expected.GetValueOrDefault(node) ?? [])
                Write(t.Record.VmId, t.Record.NodeName, x => x.Error = new FleetError { Code = (int)code, Message = message(t) });
        }

        void OnBatch(string node, FleetBatch batch)
        {
            lock (gate)
            {
                foreach (var reply in batch.Replies)
                    Write(reply.VmId, batch.NodeName, result =>
                    {
                        if (reply.StatusCode == 0) setResult(result, method.ResponseParser.ParseFrom(reply.Response));
                        else result.Error = new FleetError { Code = reply.StatusCode, Message = reply.StatusMessage };
                    });
                if (!batch.Done || !waiting.Remove(node)) return;
                Settle(node, StatusCode.NotFound, t => $"node {FleetNode.Name(t.Record)} no longer has VM {t.Record.VmId}");
                EndIfDone();
            }
        }

        var template = request("").ToByteString();
        var fanOut = new FleetFanOut { Method = methodName, LabelSelector = { selector }, Request = template, DeadlineUnixMs = new DateTimeOffset(deadline).ToUnixTimeMilliseconds() };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        string self = fleet?.SelfAddress ?? "";
        var receivers = new List<IActorRef>();
        var asked = new List<string>();
        lock (gate)
        {
            waiting.Add(self);
            if (fleet is not null)
            {
                // Every reachable node is asked; the call waits for every node that serves the API (each answers, if only
                // "none of mine": this directory may not list a node's newest VMs yet, and those must not be left out) and for
                // any other member the directory says has selected VMs (a member that runs no API is not waited for otherwise).
                foreach (var (node, servesApi) in fleet.OtherMembers())
                {
                    asked.Add(node);
                    if (servesApi || expected.ContainsKey(node)) waiting.Add(node);
                }
                foreach (var (node, entries) in expected)
                    if (!waiting.Contains(node))
                        foreach (var t in entries.Where(t => t.Lost))
                            Write(t.Record.VmId, t.Record.NodeName, x => x.Error = new FleetError { Code = (int)StatusCode.Unavailable, Message = FleetNode.Lost(t.Record).Status.Detail });
            }
        }
        _ = NodeFanOut.RunAsync(router.Api, fleet?.NodeName ?? VmRouter.LocalNodeName, fanOut, batch => OnBatch(self, batch), cts.Token);
        if (fleet is not null)
            foreach (var node in asked)
            {
                Action<FleetBatch> onBatch = batch => OnBatch(node, batch);
                var receiver = fleet.System.ActorOf(Props.Create(() => new BatchReceiver(onBatch)));
                receivers.Add(receiver);
                fleet.FanOut(node, fanOut, receiver);
                _ = fleet.WhenLost(node).ContinueWith(_ =>
                {
                    lock (gate)
                    {
                        if (!waiting.Remove(node)) return;
                        Settle(node, StatusCode.Unavailable, t => FleetNode.Lost(t.Record).Status.Detail);
                        EndIfDone();
                    }
                }, TaskScheduler.Default);
            }

        using var timer = new Timer(_ =>
        {
            lock (gate)
            {
                foreach (var node in waiting) Settle(node, StatusCode.DeadlineExceeded, t => Error(t, StatusCode.DeadlineExceeded, "no answer by the deadline").Message);
                waiting.Clear();
                EndIfDone();
            }
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
        finally
        {
            cts.Cancel();
            foreach (var receiver in receivers) receiver.Tell(PoisonPill.Instance);
        }
    }

    /// <summary>Where another node's <see cref="FleetBatch"/>es of one fleet-wide call arrive.</summary>
    private sealed class BatchReceiver : ReceiveActor
    {
        public BatchReceiver(Action<FleetBatch> onBatch) => Receive<FleetBatch>(onBatch);
    }

    private FleetError Error(DirectoryEntry target, StatusCode code, string detail) => new()
    {
        Code = (int)code,
        Message = code == StatusCode.DeadlineExceeded && router.Fleet is not null && !router.Fleet.IsSelf(target.Record)
            ? $"node {FleetNode.Name(target.Record)} did not answer for VM {target.Record.VmId} by the deadline"
            : detail,
    };
}
