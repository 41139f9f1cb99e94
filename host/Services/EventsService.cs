using ActorStep.Actors.Fleet.Wire;
using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Akka.Actor;
using Grpc.Core;
using Status = Grpc.Core.Status;
using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Events: an <see cref="EventPump"/> per stream, subscribed by the VM manager, feeding a bounded buffer.</summary>
/// <remarks>In a cluster a stream for a VM of another node is relayed by that node (and ends with UNAVAILABLE if it is lost);
/// a selector stream carries the VMs of every node that was up when it began.</remarks>
public sealed class EventsService(ActorStepBackend backend, ActorSystem system, VmRouter router, Metrics.ServerMetrics metrics) : Events.EventsBase
{
    public override async Task StreamEvents(StreamEventsRequest r, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        bool single = r.VmId.Length > 0;
        if (single && r.LabelSelector.Count > 0) throw ApiMapping.Invalid("give a vm_id or a label_selector, not both");
        var call = CallScope.From(context);
        var fleet = router.Fleet;
        var owner = single && fleet is not null ? await fleet.LocateAsync(r.VmId, call) : null;
        bool remote = owner is not null && !fleet!.IsSelf(owner.Record);
        if (remote && owner!.Lost) throw FleetNode.Lost(owner.Record);

        var buffer = new EventBuffer(backend.Options.EventBufferCapacity, metrics.EventsDropped);
        var pump = system.ActorOf(EventPump.Props(buffer, single));
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, backend.Stopping);
        try
        {
            if (remote)
            {
                // The VM runs on another node: that node relays its events here; its loss ends the stream with UNAVAILABLE.
                fleet!.Subscribe(owner!.Record.Node, new FleetSubscribe { VmId = r.VmId }, pump);
                _ = FailWhenLostAsync(fleet, owner.Record, buffer, ending.Token);
            }
            else
            {
                await backend.AskAsync<EventsSubscribed>(new SubscribeEvents(single ? r.VmId : null, new Dictionary<string, string>(r.LabelSelector), pump), call);
                // A selector stream covers the fleet: every other node relays the events of its VMs the selector picks.
                if (!single && fleet is not null)
                    foreach (var node in fleet.OtherNodes())
                        fleet.Subscribe(node, new FleetSubscribe { LabelSelector = { r.LabelSelector } }, pump);
            }
            // Shutdown ends the wait for the next event, never a write: a write cancelled by a token aborts the HTTP/2 stream
            // (a reset, CANCELLED at the client) instead of ending it with a status.
            await foreach (var e in buffer.ReadAllAsync(ending.Token))
                await stream.WriteAsync(e, context.CancellationToken);
        }
        catch (OperationCanceledException) when (backend.Stopping.IsCancellationRequested)
        {
            throw ActorStepBackend.ShuttingDown();
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
        if (backend.Stopping.IsCancellationRequested) throw ActorStepBackend.ShuttingDown();
    }

    /// <summary>Ends the stream with UNAVAILABLE when the VM's node is lost; lets go of the node's signal when the stream ends first.</summary>
    private static async Task FailWhenLostAsync(FleetNode fleet, VmRecord owner, EventBuffer buffer, CancellationToken streamEnded)
    {
        try
        {
            await fleet.WhenLost(owner.Node).WaitAsync(streamEnded);
            buffer.Fail(FleetNode.Lost(owner));
        }
        catch (OperationCanceledException) { }
    }
}
