using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using ActorStep.Api.V1;
using ActorStep.Host.Services;
using Google.Protobuf;
using Grpc.Core;
using static ActorStep.Actors.Node.VmManagerProtocol;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Host.Fleet;

/// <summary>
/// Sends each call naming a VM to the node that runs it: this node's <see cref="VmApi"/> when the VM is here (or there is no
/// cluster), else the owner's <see cref="FleetEndpoint"/>. NOT_FOUND when no node has the VM, UNAVAILABLE when its node is lost.
/// </summary>
public sealed class VmRouter(VmApi api, IServiceProvider services)
{
    private readonly FleetNode? _fleet = services.GetService<FleetNode>();

    /// <summary>The cluster, or null on a single node.</summary>
    public FleetNode? Fleet => _fleet;

    public VmApi Api => api;

    /// <summary>What a gRPC service calls: <paramref name="method"/> on <paramref name="vmId"/>, wherever it runs.</summary>
    public async Task<TResponse> CallAsync<TResponse>(string method, string vmId, IMessage request, ServerCallContext context) where TResponse : IMessage =>
        (TResponse)await CallAsync(api.Get(method), vmId, request, CallScope.From(context));

    public async Task<IMessage> CallAsync(VmMethod method, string vmId, IMessage request, CallScope call)
    {
        if (_fleet is null) return await method.InvokeLocal(request, call);
        var entry = await _fleet.LocateAsync(vmId, call)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no VM {Quote(vmId)} on any node of the cluster"));
        return await CallAtAsync(method, entry, request, call);
    }

    /// <summary>Runs <paramref name="method"/> where the directory says the VM is.</summary>
    public async Task<IMessage> CallAtAsync(VmMethod method, DirectoryEntry entry, IMessage request, CallScope call)
    {
        if (_fleet is null || _fleet.IsSelf(entry.Record)) return await method.InvokeLocal(request, call);
        if (entry.Lost) throw FleetNode.Lost(entry.Record);
        FleetReply reply;
        // This node's shutdown ends the wait for another node's answer (a continue there may never end), as its caller leaving would.
        var stopping = api.Backend.Stopping;
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(call.Cancellation, stopping);
        try
        {
            reply = await _fleet.CallAsync(entry.Record, method.Name, request.ToByteString(), call with { Cancellation = ending.Token }, method.RunsGuest);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && (method.RunsGuest || stopping.IsCancellationRequested))
        {
            // As on a single node: a resume whose caller went away halts the VM (one with a deadline halts itself at the owner).
            if (method.RunsGuest) _fleet.Send(entry.Record, VmMethods.Halt, new HaltRequest { VmId = entry.Record.VmId });
            if (stopping.IsCancellationRequested) throw ActorStepBackend.ShuttingDown();
            throw;
        }
        if (reply.StatusCode != 0) throw new RpcException(new Status((StatusCode)reply.StatusCode, reply.StatusMessage));
        return method.ResponseParser.ParseFrom(reply.Response);
    }

    /// <summary>The VMs a selector picks: every node's from the directory, or this node's own without a cluster.</summary>
    public async Task<IReadOnlyList<DirectoryEntry>> SelectAsync(IReadOnlyDictionary<string, string> selector, CallScope call)
    {
        if (_fleet is not null) return await _fleet.FindAsync(selector, call);
        var list = await api.Backend.AskAsync<VmList>(new ListVms(selector), call);
        return list.Vms.Select(v => new DirectoryEntry(new VmRecord { VmId = v.VmId, NodeName = LocalNodeName, Vcpus = v.Vcpus }, false)).ToList();
    }

    /// <summary>What fleet results call the node of a server started without --cluster.</summary>
    public const string LocalNodeName = "local";
}
