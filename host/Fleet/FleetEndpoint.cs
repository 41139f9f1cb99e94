using ActorStep.Actors.Fleet.Wire;
using ActorStep.Host.Services;
using Akka.Actor;
using Google.Protobuf;
using Grpc.Core;

using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Host.Fleet;

/// <summary>
/// Serves calls that other nodes route here (at /user/fleet-endpoint on every cluster node): a <see cref="FleetCall"/> names a
/// method of <see cref="VmApi"/> and carries its serialized request; the method runs here as if called through this node's gRPC
/// API, within the caller's deadline, and the answer goes back as a <see cref="FleetReply"/>. Never routes further.
/// </summary>
public sealed class FleetEndpoint : ReceiveActor
{
    public const string Name = "fleet-endpoint";

    public FleetEndpoint(VmApi api)
    {
        // Sender: another node's VmRouter (an Ask). Reply: FleetReply, when the call ends.
        Receive<FleetCall>(call => ServeAsync(api, call).PipeTo(Sender));
        // Sender: another node's FleetService (a receiver of that call). Replies: FleetBatch messages, the last one done.
        Receive<FleetFanOut>(m =>
        {
            var replyTo = Sender;
            _ = NodeFanOut.RunAsync(api, api.Backend.Options.Cluster?.NodeName ?? "", m, batch => replyTo.Tell(batch), CancellationToken.None);
        });
        // Sender: another node's EventPump. A relay here subscribes to this node's VMs and sends it their events.
        Receive<FleetSubscribe>(m =>
        {
            var subscriber = Sender;
            var relay = Context.ActorOf(EventPump.RelayProps(subscriber, singleVm: m.VmId.Length > 0));
            _ = SubscribeAsync(api, m, relay, subscriber);
        });
    }

    private static async Task SubscribeAsync(VmApi api, FleetSubscribe m, IActorRef relay, IActorRef subscriber)
    {
        try
        {
            await api.Backend.AskAsync<EventsSubscribed>(
                new SubscribeEvents(m.VmId.Length > 0 ? m.VmId : null, new Dictionary<string, string>(m.LabelSelector), relay),
                new CallScope(DateTime.UtcNow.AddSeconds(30), api.Backend.Stopping));
        }
        catch (Exception e)
        {
            relay.Tell(PoisonPill.Instance);
            subscriber.Tell(e is RpcException r ? Error(r.StatusCode, r.Status.Detail) : Error(StatusCode.Internal, $"subscribing failed on this node: {e.Message}"));
        }
    }

    public static Props Props(VmApi api) => Akka.Actor.Props.Create(() => new FleetEndpoint(api));

    public static async Task<FleetReply> ServeAsync(VmApi api, FleetCall call)
    {
        var method = api.Find(call.Method);
        if (method is null) return Error(StatusCode.Unimplemented, $"this node does not serve {call.Method}");
        var deadline = call.DeadlineUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(call.DeadlineUnixMs).UtcDateTime : DateTime.MaxValue;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(api.Backend.Stopping);
        if (deadline < DateTime.MaxValue) cts.CancelAfter(TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)));
        try
        {
            var request = method.RequestParser.ParseFrom(call.Request);
            var scope = new CallScope(deadline, cts.Token);
            scope.ThrowIfPast(); // routed here too late (a slow hop): nothing may run
            var response = await method.InvokeLocal(request, scope);
            return new FleetReply { Response = response.ToByteString() };
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cts.IsCancellationRequested && !api.Backend.Stopping.IsCancellationRequested)
        {
            // Only the deadline's timer cancels here besides the node's shutdown. The timer counts whole milliseconds and may
            // fire before the clock CallScope.Cancelled reads reaches the deadline: the call was still cut by its deadline.
            return Error(StatusCode.DeadlineExceeded, "the call's deadline passed");
        }
        catch (RpcException e) { return Error(e.StatusCode, e.Status.Detail); }
        catch (InvalidProtocolBufferException e) { return Error(StatusCode.InvalidArgument, $"malformed request for {call.Method}: {e.Message}"); }
        catch (Exception e) { return Error(StatusCode.Internal, $"{call.Method} failed on this node: {e.Message}"); }
    }

    private static FleetReply Error(StatusCode code, string message) => new() { StatusCode = (int)code, StatusMessage = message };
}
