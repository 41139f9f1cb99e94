using ActorStep.Actors.Fleet.Wire;
using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using Akka.Actor;
using Grpc.Core;
using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>
/// One per event stream: subscribed to VMs by the VM manager, it turns their events into API events in the stream's
/// <see cref="EventBuffer"/> (which never blocks it), the one writer of that buffer. Stopped by the stream when the call ends.
/// <para>In a cluster it also takes the events other nodes relay for the stream (already API events, from a relay: this
/// same actor on the owning node, started with <see cref="RelayProps"/>, which sends to the subscriber instead of a buffer
/// and stops when the subscriber does).</para>
/// </summary>
public sealed class EventPump : ReceiveActor
{
    private readonly Dictionary<IActorRef, string> _vms = new();

    public EventPump(EventBuffer? buffer, IActorRef? subscriber, bool singleVm)
    {
        void Write(Event e)
        {
            if (buffer is not null) buffer.Write(e);
            else subscriber!.Tell(e, Self);
        }

        if (subscriber is not null) Context.Watch(subscriber);
        Receive<VmAttached>(m =>
        {
            _vms[m.Vm.Coordinator] = m.Vm.VmId;
            Write(new Event { VmId = m.Vm.VmId, Added = new VmAdded() });
        });
        Receive<VmDetached>(m =>
        {
            foreach (var (c, id) in _vms.Where(kv => kv.Value == m.VmId).ToList()) _vms.Remove(c);
            Write(new Event { VmId = m.VmId, Removed = new VmRemoved() });
            if (singleVm) buffer?.Complete();
        });
        Receive<VmProtocol.VmEvent>(e =>
        {
            if (!_vms.TryGetValue(Sender, out var vmId)) return;
            var ev = new Event { VmId = vmId };
            switch (e)
            {
                case VmProtocol.StopObserved s:
                    ev.Stopped = new VmStopped { Event = ApiMapping.Event(s.Stop.Event) };
                    ev.Stopped.Vcpus.AddRange(s.Stop.Vcpus.Select(ApiMapping.Status));
                    break;
                case VmProtocol.ConsoleObserved c:
                    ev.Console = new ConsoleOutput { Vcpu = (uint)c.Vcpu, Data = ApiMapping.Bytes(c.Bytes) };
                    break;
                case VmProtocol.GuestLifecycleObserved l:
                    ev.Lifecycle = new GuestLifecycle { Kind = l.Kind, Detail = l.Detail };
                    break;
                case VmProtocol.Resumed r:
                    ev.Resumed = new VcpusResumed();
                    ev.Resumed.Actions.AddRange(r.Actions.Where(a => a.Value != Actors.Vm.VcpuAction.Stay).OrderBy(a => a.Key)
                        .Select(a => new VcpuActionEntry { Vcpu = (uint)a.Key, Action = ApiMapping.Action(a.Value) }));
                    break;
                default:
                    return;
            }
            Write(ev);
        });
        // From another node's relay (this stream's events of VMs that run there).
        Receive<Event>(e =>
        {
            if (buffer is null) return;
            buffer.Write(e);
            if (singleVm && e.KindCase == Event.KindOneofCase.Removed) buffer.Complete();
        });
        Receive<FleetReply>(r => buffer?.Fail(new RpcException(new Grpc.Core.Status((StatusCode)r.StatusCode, r.StatusMessage))));
        Receive<Terminated>(t => { if (t.ActorRef.Equals(subscriber)) Context.Stop(Self); });
    }

    public static Props Props(EventBuffer buffer, bool singleVm) => Akka.Actor.Props.Create(() => new EventPump(buffer, null, singleVm));

    /// <summary>The owning node's side of a stream served through another node: events go to <paramref name="subscriber"/>.</summary>
    public static Props RelayProps(IActorRef subscriber, bool singleVm) => Akka.Actor.Props.Create(() => new EventPump(null, subscriber, singleVm));

    protected override void PostStop() => _vms.Clear();
}
