using System.Collections.Concurrent;
using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using ActorStep.Host.Server;
using ActorStep.Host.Services;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Google.Protobuf;
using Grpc.Core;
using Status = Grpc.Core.Status;
using static ActorStep.Actors.Fleet.VmDirectoryProtocol;

namespace ActorStep.Host.Fleet;

/// <summary>
/// This node's view of the cluster for the gRPC front: where a VM lives (the <see cref="VmDirectory"/>), which VMs a
/// selector picks, and calls to another node's <see cref="FleetEndpoint"/> that end by their deadline or as soon as the
/// owning node is lost, whichever comes first. Registered only on a server started with <see cref="ServerOptions.Cluster"/>.
/// </summary>
public sealed class FleetNode(ActorSystem system, IRequiredActor<VmDirectory> directory, ServerOptions options)
{
    /// <summary>Asks of the local directory answer at once; this only bounds a lost reply.</summary>
    private static readonly TimeSpan DirectoryTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _lost = new();
    private IActorRef? _directory;
    private IActorRef? _watcher;

    public ClusterOptions Options => options.Cluster!;

    public string NodeName => Options.NodeName;

    public string SelfAddress => Cluster.Get(system).SelfAddress.ToString();

    public ActorSystem System => system;

    /// <summary>Starts watching membership (lost-node signals); called once the actor system runs.</summary>
    public void Start()
    {
        _watcher ??= system.ActorOf(Props.Create(() => new NodeWatcher(this)), "fleet-node-watcher");
    }

    private async Task<IActorRef> DirectoryAsync(CancellationToken ct) => _directory ??= await directory.GetAsync(ct);

    public bool IsSelf(VmRecord r) => r.Node == SelfAddress;

    public async Task<DirectoryEntry?> LocateAsync(string vmId, CallScope call)
    {
        var d = await DirectoryAsync(call.Cancellation);
        try { return (await d.Ask<VmLocated>(new LocateVm(vmId), DirectoryTimeout, call.Cancellation)).Entry; }
        catch (OperationCanceledException) { throw call.Cancelled(); }
    }

    public async Task<IReadOnlyList<DirectoryEntry>> FindAsync(IReadOnlyDictionary<string, string> selector, CallScope call)
    {
        var d = await DirectoryAsync(call.Cancellation);
        try { return (await d.Ask<VmsFound>(new FindVms(selector), DirectoryTimeout, call.Cancellation)).Entries; }
        catch (OperationCanceledException) { throw call.Cancelled(); }
    }

    /// <summary>UNAVAILABLE for a VM whose node is unreachable or gone.</summary>
    public static RpcException Lost(VmRecord r) =>
        new(new Status(StatusCode.Unavailable, $"node {Name(r)} ({r.Node}) is unreachable or has left the cluster: VM {r.VmId} is lost"));

    public static string Name(VmRecord r) => r.NodeName.Length > 0 ? r.NodeName : r.Node;

    /// <summary>
    /// Runs <paramref name="method"/> on the node that owns the VM. Ends with the owner's answer, or UNAVAILABLE as soon as the
    /// owner is lost, or DEADLINE_EXCEEDED at the call's deadline (without one: <see cref="ClusterOptions.Timeout"/>, except for
    /// resumes, which wait until the VM stops or its node is lost).
    /// </summary>
    public async Task<FleetReply> CallAsync(VmRecord owner, string method, ByteString request, CallScope call, bool runsGuest)
    {
        var timeout = call.Remaining ?? (runsGuest ? Timeout.InfiniteTimeSpan : Options.Timeout);
        if (timeout == TimeSpan.Zero) throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's deadline passed"));
        var message = new FleetCall
        {
            VmId = owner.VmId, Method = method, Request = request,
            DeadlineUnixMs = call.HasDeadline ? new DateTimeOffset(call.Deadline).ToUnixTimeMilliseconds() : 0,
        };
        var lost = WhenLost(owner.Node);
        var ask = Endpoint(owner).Ask<FleetReply>(message, timeout, call.Cancellation);
        if (await Task.WhenAny(ask, lost) == lost) throw Lost(owner);
        try
        {
            return await ask;
        }
        catch (AskTimeoutException)
        {
            if (lost.IsCompleted || (await LocateAsync(owner.VmId, new CallScope(DateTime.MaxValue, CancellationToken.None)))?.Lost == true)
                throw Lost(owner);
            throw new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"node {Name(owner)} did not answer for VM {owner.VmId} within {timeout.TotalMilliseconds:0} ms"));
        }
        catch (OperationCanceledException) { throw call.Cancelled(); }
    }

    /// <summary>Sends a call that wants no answer (the halt of a routed resume whose caller went away).</summary>
    public void Send(VmRecord owner, string method, IMessage request) =>
        Endpoint(owner).Tell(new FleetCall { VmId = owner.VmId, Method = method, Request = request.ToByteString() }, ActorRefs.NoSender);

    private ActorSelection Endpoint(VmRecord owner) => Endpoint(owner.Node);

    private ActorSelection Endpoint(string node) => system.ActorSelection($"{node}/user/{FleetEndpoint.Name}");

    /// <summary>Sends this node's share of a fleet-wide call to the node at <paramref name="node"/>; its batches go to <paramref name="receiver"/>.</summary>
    public void FanOut(string node, FleetFanOut request, IActorRef receiver) => Endpoint(node).Tell(request, receiver);

    /// <summary>Asks the node at <paramref name="node"/> to relay the events <paramref name="request"/> names to <paramref name="pump"/>.</summary>
    public void Subscribe(string node, FleetSubscribe request, IActorRef pump) => Endpoint(node).Tell(request, pump);

    /// <summary>The addresses of the other members that are up and reachable.</summary>
    public IReadOnlyList<string> OtherNodes() => OtherMembers().Select(m => m.Address).ToList();

    /// <summary>The other members that are up and reachable, and whether each serves the API (<see cref="FleetConfig.ApiRole"/>),
    /// from one view of the membership.</summary>
    public IReadOnlyList<(string Address, bool ServesApi)> OtherMembers()
    {
        var state = Cluster.Get(system).State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var self = Cluster.Get(system).SelfAddress;
        return state.Members.Where(m => m.Status == MemberStatus.Up && !unreachable.Contains(m.Address) && m.Address != self)
            .Select(m => (m.Address.ToString(), m.HasRole(FleetConfig.ApiRole))).ToList();
    }

    /// <summary>Completes when the node at <paramref name="address"/> becomes unreachable or leaves (a fresh task once it is back).</summary>
    public Task WhenLost(string address) =>
        _lost.GetOrAdd(address, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private void MarkLost(string address) =>
        _lost.GetOrAdd(address, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private void MarkReachable(string address)
    {
        if (_lost.TryGetValue(address, out var tcs) && tcs.Task.IsCompleted)
            _lost.TryUpdate(address, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), tcs);
    }

    /// <summary>The members this node knows of, for Fleet.GetClusterStatus.</summary>
    public Api.V1.ClusterStatus Status()
    {
        var state = Cluster.Get(system).State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var status = new Api.V1.ClusterStatus { SelfName = NodeName, SelfAddress = SelfAddress };
        status.Members.AddRange(state.Members.Concat(state.Unreachable).DistinctBy(m => m.Address).OrderBy(m => m.Address.ToString(), StringComparer.Ordinal)
            .Select(m => new Api.V1.ClusterMember
            {
                Address = m.Address.ToString(), Name = FleetConfig.NodeName(m), Status = m.Status.ToString(), Reachable = !unreachable.Contains(m.Address),
            }));
        return status;
    }

    /// <summary>Turns membership events into the lost-node signals of <see cref="WhenLost"/>.</summary>
    private sealed class NodeWatcher : ReceiveActor
    {
        public NodeWatcher(FleetNode node)
        {
            Receive<ClusterEvent.CurrentClusterState>(s => { foreach (var m in s.Unreachable) node.MarkLost(m.Address.ToString()); });
            Receive<ClusterEvent.UnreachableMember>(e => node.MarkLost(e.Member.Address.ToString()));
            Receive<ClusterEvent.MemberRemoved>(e => node.MarkLost(e.Member.Address.ToString()));
            Receive<ClusterEvent.MemberExited>(e => node.MarkLost(e.Member.Address.ToString()));
            Receive<ClusterEvent.ReachableMember>(e => node.MarkReachable(e.Member.Address.ToString()));
            Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        }

        protected override void PreStart() =>
            Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

        protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);
    }
}
