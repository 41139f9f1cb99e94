using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using Akka.Actor;

namespace ActorStep.Actors.Node;

/// <summary>What to create: an image (an ELF file or a built-in guest), its size, the backend that runs it and how to find it again.</summary>
public sealed record VmSpec(
    string? ElfPath,
    string? BuiltIn,
    int Vcpus = 4,
    ulong MemorySize = 128UL << 20,
    IReadOnlyDictionary<string, string>? Labels = null,
    HypervisorFlavour Flavour = HypervisorFlavour.Hv,
    string? VmId = null,
    BackendKind Backend = BackendKind.Simulated,
    QemuSource? Qemu = null,
    LinuxKernelImage? Linux = null);

/// <summary>One VM of this node: its identity and the actors and machine behind it.</summary>
public sealed record VmInfo(
    string VmId,
    IReadOnlyDictionary<string, string> Labels,
    string Image,
    HypervisorFlavour Flavour,
    int Vcpus,
    ulong MemorySize,
    ulong Entry,
    IActorRef Coordinator,
    IVirtualMachine Machine);

public static class VmManagerProtocol
{
    /// <summary>Anyone → manager: create and load a VM, all vcpus stopped at the entry. Reply: <see cref="VmCreated"/>, <see cref="AlreadyExists"/> or <see cref="VmProtocol.Failed"/>.</summary>
    public sealed record CreateVm(VmSpec Spec);

    public sealed record VmCreated(VmInfo Vm);

    /// <summary>Reply to <see cref="CreateVm"/> when the requested id is taken.</summary>
    public sealed record AlreadyExists(string VmId);

    /// <summary>Anyone → manager: the VMs whose labels include every pair of <paramref name="Selector"/>. Reply: <see cref="VmList"/>.</summary>
    public sealed record ListVms(IReadOnlyDictionary<string, string> Selector);

    /// <summary>Reply to <see cref="ListVms"/>, ordered by id.</summary>
    public sealed record VmList(IReadOnlyList<VmInfo> Vms);

    /// <summary>Anyone → manager: what this node knows of a VM, without asking its coordinator. Reply: <see cref="VmFound"/> or <see cref="VmProtocol.Failed"/> (NotFound).</summary>
    public sealed record FindVm(string VmId);

    public sealed record VmFound(VmInfo Vm);

    /// <summary>Anyone → manager: a VM and its coordinator's description. Reply: <see cref="VmDescribed"/> or <see cref="VmProtocol.Failed"/> (NotFound).</summary>
    public sealed record DescribeVm(string VmId);

    public sealed record VmDescribed(VmInfo Vm, VmProtocol.VmDescription Description);

    /// <summary>Anyone → manager: destroy a VM (its coordinator stops and removes every breakpoint). Reply, once it is gone: <see cref="VmDestroyed"/> or <see cref="VmProtocol.Failed"/> (NotFound).</summary>
    public sealed record DestroyVm(string VmId);

    public sealed record VmDestroyed(string VmId);

    /// <summary>Anyone → manager: deliver a <see cref="VmProtocol"/> request to a VM's coordinator, which replies to the original sender; an unknown VM gets <see cref="VmProtocol.Failed"/> (NotFound).</summary>
    public sealed record ToVm(string VmId, object Message);

    /// <summary>
    /// Anyone → manager: step one vcpu; the others move as <paramref name="Locking"/> says (<see cref="VmProtocol.StepActions"/>).
    /// Forwarded to the coordinator as a <see cref="VmProtocol.Resume"/>; reply as to it, or <see cref="VmProtocol.Failed"/> (NotFound).
    /// </summary>
    public sealed record StepVcpu(string VmId, int Vcpu, SchedulerLocking Locking, int StepCount = 1, bool HoldAsyncInterrupts = true);

    /// <summary>Anyone → manager: continue; which vcpus run follows <paramref name="Locking"/> (<see cref="VmProtocol.ContinueActions"/>). Reply as <see cref="StepVcpu"/>.</summary>
    public sealed record ContinueVcpu(string VmId, int Vcpu, SchedulerLocking Locking, bool HoldAsyncInterrupts = true);

    /// <summary>
    /// Anyone → manager: send <paramref name="Subscriber"/> the events of one VM (<paramref name="VmId"/>), or of every VM
    /// matching <paramref name="Selector"/> now and later. The subscriber receives <see cref="VmAttached"/> for each VM, then
    /// that VM's <see cref="VmProtocol.VmEvent"/>s (sent by its coordinator), then <see cref="VmDetached"/>.
    /// Reply: <see cref="EventsSubscribed"/> or <see cref="VmProtocol.Failed"/> (NotFound).
    /// </summary>
    public sealed record SubscribeEvents(string? VmId, IReadOnlyDictionary<string, string> Selector, IActorRef Subscriber);

    public sealed record EventsSubscribed(IReadOnlyList<string> VmIds);

    /// <summary>Manager → event subscriber: events of this VM follow, sent by <see cref="VmInfo.Coordinator"/>.</summary>
    public sealed record VmAttached(VmInfo Vm);

    /// <summary>Manager → event subscriber: the VM is gone (destroyed or shut down); nothing more comes from it.</summary>
    public sealed record VmDetached(string VmId);

    /// <summary>Host → manager at shutdown: destroy every VM. Reply, once all are gone: <see cref="AllVmsDestroyed"/>.</summary>
    public sealed record DestroyAll;

    public sealed record AllVmsDestroyed(int Count);

    /// <summary>True when every selector pair is among the labels (an empty selector matches every VM).</summary>
    public static bool Matches(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
