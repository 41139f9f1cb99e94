using ActorStep.Api.V1;
using Akka.Actor;
using Grpc.Core;
using Status = Grpc.Core.Status;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Events: an <see cref="EventPump"/> per stream, subscribed by the VM manager, feeding a bounded buffer.</summary>
public sealed class EventsService(ActorStepBackend backend, ActorSystem system) : Events.EventsBase
{
    public override async Task StreamEvents(StreamEventsRequest r, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        bool single = r.VmId.Length > 0;
        if (single && r.LabelSelector.Count > 0) throw ApiMapping.Invalid("give a vm_id or a label_selector, not both");
        var buffer = new EventBuffer(backend.Options.EventBufferCapacity);
        var pump = system.ActorOf(EventPump.Props(buffer, single));
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, backend.Stopping);
        try
        {
            await backend.AskAsync<EventsSubscribed>(new SubscribeEvents(single ? r.VmId : null, new Dictionary<string, string>(r.LabelSelector), pump), context);
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
