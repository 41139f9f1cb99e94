using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Akka.Actor;
using Grpc.Core;
using Status = Grpc.Core.Status;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Events: an <see cref="EventPump"/> per stream, subscribed by the VM manager, feeding a bounded buffer.</summary>
/// <remarks>In a cluster a stream is served by the VM's own node: a vm_id of another node is FAILED_PRECONDITION naming it, and a
/// selector stream carries this node's VMs only.</remarks>
public sealed class EventsService(ActorStepBackend backend, ActorSystem system, VmRouter router) : Events.EventsBase
{
    public override async Task StreamEvents(StreamEventsRequest r, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        bool single = r.VmId.Length > 0;
        if (single && r.LabelSelector.Count > 0) throw ApiMapping.Invalid("give a vm_id or a label_selector, not both");
        if (single && router.Fleet is { } fleet && await fleet.LocateAsync(r.VmId, CallScope.From(context)) is { } entry && !fleet.IsSelf(entry.Record))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"VM {r.VmId} runs on node {FleetNode.Name(entry.Record)}{(entry.Lost ? " (lost)" : "")}: event streams are served by the VM's own node; call its gRPC API"));
        var buffer = new EventBuffer(backend.Options.EventBufferCapacity);
        var pump = system.ActorOf(EventPump.Props(buffer, single));
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, backend.Stopping);
        try
        {
            await backend.AskAsync<EventsSubscribed>(new SubscribeEvents(single ? r.VmId : null, new Dictionary<string, string>(r.LabelSelector), pump), CallScope.From(context));
            await foreach (var e in buffer.ReadAllAsync(ending.Token))
                await stream.WriteAsync(e, ending.Token);
        }
        catch (OperationCanceledException) when (backend.Stopping.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the server is shutting down"));
        }
        catch (OperationCanceledException)
        {
            throw new RpcException(context.Deadline <= DateTime.UtcNow
                ? new Status(StatusCode.DeadlineExceeded, "the call's deadline passed")
                : new Status(StatusCode.Cancelled, "the call was cancelled"));
        }
        finally
        {
            system.Stop(pump);
        }
        if (backend.Stopping.IsCancellationRequested) throw new RpcException(new Status(StatusCode.Unavailable, "the server is shutting down"));
    }
}
