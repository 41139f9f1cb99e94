using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using Akka.Actor;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>
/// One per event stream: subscribed to VMs by the VM manager, it turns their events into API events in the stream's
/// <see cref="EventBuffer"/> (which never blocks it). Stopped by the stream when the call ends.
/// </summary>
public sealed class EventPump : ReceiveActor
{
    private readonly Dictionary<IActorRef, string> _vms = new();

    public EventPump(EventBuffer buffer, bool singleVm)
    {
        Receive<VmAttached>(m =>
        {
            _vms[m.Vm.Coordinator] = m.Vm.VmId;
            buffer.Write(new Event { VmId = m.Vm.VmId, Added = new VmAdded() });
        });
        Receive<VmDetached>(m =>
        {
            foreach (var (c, id) in _vms.Where(kv => kv.Value == m.VmId).ToList()) _vms.Remove(c);
            buffer.Write(new Event { VmId = m.VmId, Removed = new VmRemoved() });
            if (singleVm) buffer.Complete();
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
                case VmProtocol.Resumed r:
                    ev.Resumed = new VcpusResumed();
                    ev.Resumed.Actions.AddRange(r.Actions.Where(a => a.Value != Actors.Vm.VcpuAction.Stay).OrderBy(a => a.Key)
                        .Select(a => new VcpuActionEntry { Vcpu = (uint)a.Key, Action = ApiMapping.Action(a.Value) }));
                    break;
                default:
                    return;
            }
            buffer.Write(ev);
        });
    }

    public static Props Props(EventBuffer buffer, bool singleVm) => Akka.Actor.Props.Create(() => new EventPump(buffer, singleVm));

    protected override void PostStop() => _vms.Clear();
}
