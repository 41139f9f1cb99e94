using System.Text.RegularExpressions;
using ActorStep.Actors.Fleet;
using ActorStep.Actors.Fleet.Wire;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using Akka.Actor;
using Akka.Event;
using static ActorStep.Actors.Vm.VmProtocol;
using static ActorStep.Actors.Node.VmManagerProtocol;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Actors.Node;

/// <summary>Settings of a node's VM manager.</summary>
/// <param name="Directory">the node's <see cref="VmDirectory"/> in a cluster (null on a single node): every VM is registered
/// there when created and unregistered when destroyed, so that any node can route calls to it</param>
/// <param name="NodeName">this node's --node-name, recorded with each VM in the directory</param>
/// <param name="Backends">the backends this node offers (<see cref="VmSpec.Backend"/> picks one); the host gives the simulator's</param>
public sealed record VmManagerOptions(CoordinatorOptions? Coordinator = null, string IdPrefix = "vm-", IActorRef? Directory = null, string NodeName = "",
    IReadOnlyList<IBackendFactory>? Backends = null);

/// <summary>
/// Owns the VMs of this node: creates a VM through the backend its <see cref="VmSpec"/> names and a <see cref="VmCoordinator"/> per VM,
/// routes requests to coordinators by VM id, lists by label selector, destroys, and attaches event subscribers.
/// </summary>
public sealed partial class VmManager : ReceiveActor
{
    public const ulong MinMemory = 1UL << 20, MaxMemory = 1UL << 30, MemoryGranule = 64UL << 10;

    private readonly VmManagerOptions _options;
    private readonly Dictionary<string, VmInfo> _vms = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _byCoordinator = new();
    private readonly Dictionary<string, List<IActorRef>> _destroyWaiters = new();
    /// <summary>VMs asked to go: their coordinator gets a PoisonPill, in order after what was already sent to it (a system
    /// stop would drop those messages and their askers would wait forever); new requests are refused meanwhile.</summary>
    private readonly HashSet<string> _destroying = new(StringComparer.Ordinal);
    /// <summary>Subscribers by VM id, and the selector subscribers that also want VMs created later.</summary>
    private readonly Dictionary<string, HashSet<IActorRef>> _subscribers = new();
    private readonly Dictionary<IActorRef, IReadOnlyDictionary<string, string>> _selectorSubscribers = new();
    /// <summary>Ids asked for by creations whose image is still loading (taken: a second create of one is ALREADY_EXISTS).</summary>
    private readonly HashSet<string> _creating = new(StringComparer.Ordinal);
    /// <summary>Set by <see cref="DestroyAll"/> (shutdown): a load that ends later makes no VM.</summary>
    private bool _destroyedAll;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private (IActorRef ReplyTo, int Count)? _destroyingAll;
    private int _next = 1;

    public VmManager(VmManagerOptions options)
    {
        _options = options;
        Receive<CreateVm>(m => OnCreate(m.Spec));
        Receive<Loaded>(OnLoaded);
        Receive<ListVms>(m => Sender.Tell(new VmList(Selected(m.Selector))));
        Receive<FindVm>(m => { if (TryGet(m.VmId, out var vm)) Sender.Tell(new VmFound(vm)); });
        Receive<DescribeVm>(m =>
        {
            if (!TryGet(m.VmId, out var vm)) return;
            vm.Coordinator.Ask<VmDescription>(new Describe(), TimeSpan.FromSeconds(30))
                .PipeTo(Sender, success: d => new VmDescribed(vm, d), failure: e => new Failed(FailureCode.NotFound, $"VM {Quote(m.VmId)} is gone: {e.Message}"));
        });
        Receive<DestroyVm>(m =>
        {
            if (!_vms.TryGetValue(m.VmId, out var vm)) { TryGet(m.VmId, out _); return; } // answers NOT_FOUND
            if (!_destroyWaiters.TryGetValue(m.VmId, out var waiters)) _destroyWaiters[m.VmId] = waiters = new();
            waiters.Add(Sender);
            Destroy(vm);
        });
        Receive<DestroyAll>(_ =>
        {
            _destroyingAll = (Sender, _vms.Count);
            _destroyedAll = true;
            foreach (var vm in _vms.Values) Destroy(vm);
            CheckDestroyedAll();
        });
        Receive<ToVm>(m => { if (TryGet(m.VmId, out var vm)) vm.Coordinator.Forward(m.Message); });
        Receive<StepVcpu>(m =>
        {
            if (TryGetVcpu(m.VmId, m.Vcpu, out var vm))
                vm.Coordinator.Forward(new Resume(StepActions(m.Vcpu, vm.Vcpus, m.Locking), m.HoldAsyncInterrupts, m.StepCount));
        });
        Receive<ContinueVcpu>(m =>
        {
            if (TryGetVcpu(m.VmId, m.Vcpu, out var vm))
                vm.Coordinator.Forward(new Resume(ContinueActions(m.Vcpu, vm.Vcpus, m.Locking), m.HoldAsyncInterrupts));
        });
        Receive<SubscribeEvents>(OnSubscribe);
        Receive<Terminated>(OnTerminated);
    }

    public static Props Props(VmManagerOptions? options = null) =>
        Akka.Actor.Props.Create(() => new VmManager(options ?? new VmManagerOptions()));

    /// <summary>The VMs a label selector picks, by id; VMs being destroyed are no longer seen.</summary>
    private List<VmInfo> Selected(IReadOnlyDictionary<string, string> selector) => _vms.Values
        .Where(v => !_destroying.Contains(v.VmId) && Matches(selector, v.Labels)).OrderBy(v => v.VmId, StringComparer.Ordinal).ToList();

    private void Destroy(VmInfo vm)
    {
        if (_destroying.Add(vm.VmId)) vm.Coordinator.Tell(PoisonPill.Instance);
    }

    private bool TryGet(string id, out VmInfo vm)
    {
        if (_destroying.Contains(id))
        {
            vm = null!;
            Sender.Tell(new Failed(FailureCode.NotFound, $"no VM {Quote(id)}: it is being destroyed"));
            return false;
        }
        if (_vms.TryGetValue(id, out vm!)) return true;
        Sender.Tell(new Failed(FailureCode.NotFound, _vms.Count == 0
            ? $"no VM {Quote(id)}: this server has no VMs"
            : $"no VM {Quote(id)}: this server has {string.Join(", ", _vms.Keys.Order(StringComparer.Ordinal).Take(10))}{(_vms.Count > 10 ? ", …" : "")}"));
        return false;
    }

    private bool TryGetVcpu(string id, int vcpu, out VmInfo vm)
    {
        if (!TryGet(id, out vm)) return false;
        if ((uint)vcpu < (uint)vm.Vcpus) return true;
        Sender.Tell(new Failed(FailureCode.NotFound, $"no vcpu {vcpu}: VM {Quote(id)} has vcpus 0..{vm.Vcpus - 1}"));
        return false;
    }

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex IdPattern();

    private void OnCreate(VmSpec spec)
    {
        var labels = spec.Labels ?? new Dictionary<string, string>();
        // A QEMU VM brings its own image, vcpus and memory: only the source (a gdbstub, or QEMU's arguments) is asked for.
        bool qemu = spec.Backend == BackendKind.Qemu;
        string? error = qemu
            ? (spec.Qemu is null || (string.IsNullOrEmpty(spec.Qemu.GdbEndpoint) && string.IsNullOrEmpty(spec.Qemu.QmpEndpoint)) == (spec.Qemu.LaunchArguments is not { Count: > 0 })
                ? "a QEMU VM needs either a gdbstub or QMP endpoint to attach to or the arguments of a qemu-system-ppc64 to start (not both)"
                : !string.IsNullOrEmpty(spec.ElfPath) || !string.IsNullOrEmpty(spec.BuiltIn) ? "a QEMU VM's image is QEMU's: give no ELF path or built-in guest" : null)
            : spec.Linux is { } linux
            ? string.IsNullOrEmpty(linux.KernelPath) ? "a Linux VM needs the kernel's path (a ppc64le vmlinux)"
                : !string.IsNullOrEmpty(spec.ElfPath) || !string.IsNullOrEmpty(spec.BuiltIn) ? "give either a Linux kernel or an ELF path or a built-in guest, not both" : null
            : (spec.ElfPath, spec.BuiltIn) switch
            {
                (null or "", null or "") => "no image: give an ELF path or a built-in guest name (e.g. \"demo\")",
                ({ Length: > 0 }, { Length: > 0 }) => "give either an ELF path or a built-in guest, not both",
                _ => null,
            };
        var backend = _options.Backends?.FirstOrDefault(b => b.Kind == spec.Backend);
        error ??= backend is null ? $"this node offers no {spec.Backend} backend" : null;
        error ??= !qemu && (spec.Vcpus < 1 || spec.Vcpus > backend!.MaxVcpus) ? $"vcpus must be 1..{backend!.MaxVcpus}, not {spec.Vcpus}" : null;
        error ??= !qemu && (spec.MemorySize is < MinMemory or > MaxMemory || spec.MemorySize % MemoryGranule != 0)
            ? $"memory size must be a multiple of 64 KiB in 1 MiB..1 GiB, not {spec.MemorySize} bytes" : null;
        error ??= labels.Any(kv => string.IsNullOrWhiteSpace(kv.Key) || string.IsNullOrEmpty(kv.Value))
            ? "labels need a non-empty key and value" : null;
        error ??= spec.VmId is { Length: > 0 } id && !IdPattern().IsMatch(id)
            ? $"VM id {Quote(id)} is not valid: use 1..63 of a-z, 0-9 and '-', starting and ending with a letter or digit" : null;
        if (error is not null) { Sender.Tell(new Failed(FailureCode.InvalidArgument, error)); return; }
        if (spec.VmId is { Length: > 0 } wanted && (_vms.ContainsKey(wanted) || !_creating.Add(wanted))) { Sender.Tell(new AlreadyExists(wanted)); return; }

        // The backend reads the image (up to 256 MiB) and builds the machine on a task: this actor is on every call's path.
        var factory = backend!;
        var request = new VmImageRequest(spec.ElfPath, spec.BuiltIn, spec.Vcpus, spec.MemorySize, spec.Flavour, spec.Qemu, spec.Linux);
        var replyTo = Sender;
        Task.Run(() => factory.Create(request)).PipeTo(Self,
            success: created => new Loaded(spec, labels, created, null, replyTo), failure: e => new Loaded(spec, labels, null, e, replyTo));
    }

    /// <summary>Self → self: the backend created a VM for <paramref name="Spec"/> (or <paramref name="Error"/> says why not), for
    /// <paramref name="ReplyTo"/>'s <see cref="CreateVm"/>.</summary>
    private sealed record Loaded(VmSpec Spec, IReadOnlyDictionary<string, string> Labels, CreatedVm? Created, Exception? Error, IActorRef ReplyTo);

    private void OnLoaded(Loaded m)
    {
        var (spec, labels) = (m.Spec, m.Labels);
        if (spec.VmId is { Length: > 0 } reserved) _creating.Remove(reserved);
        var error = m.Error is AggregateException { InnerException: { } inner } ? inner : m.Error;
        if (error is InvalidVmRequestException) { m.ReplyTo.Tell(new Failed(FailureCode.InvalidArgument, error.Message)); return; }
        if (error is not null)
        {
            _log.Error(error, "creating a VM from {0} failed", spec.Linux is { } linux ? Quote(linux.KernelPath) : spec.ElfPath is { Length: > 0 } path ? Quote(path) : spec.BuiltIn);
            m.ReplyTo.Tell(new Status.Failure(error));
            return;
        }
        if (_destroyedAll)
        {
            m.Created?.Machine.Dispose();
            m.ReplyTo.Tell(new Failed(FailureCode.FailedPrecondition, "the server is shutting down"));
            return;
        }
        var created = m.Created!;
        var machine = created.Machine;

        string vmId = spec.VmId is { Length: > 0 } given ? given : NextId();
        var coordinator = Context.ActorOf(VmCoordinator.Props(machine, _options.Coordinator), vmId);
        Context.Watch(coordinator);
        // What the machine is, not what was asked: a QEMU VM's vcpus, memory and flavour are QEMU's.
        var info = new VmInfo(vmId, new Dictionary<string, string>(labels), created.ImageName, machine.Capabilities.Flavour, machine.VcpuCount,
            machine.MemorySize, created.Entry, coordinator, machine);
        _vms[vmId] = info;
        _byCoordinator[coordinator] = vmId;
        _log.Info("created VM {0} from {1}: {2} vcpus, {3} MiB, {4}", vmId, created.ImageName, machine.VcpuCount, machine.MemorySize >> 20, machine.Capabilities.FlavourName);
        // Before the reply: whoever learns the id can find the VM through this node's directory at once.
        _options.Directory?.Tell(new VmDirectoryProtocol.RegisterVm(Record(info)));
        foreach (var (subscriber, selector) in _selectorSubscribers)
            if (Matches(selector, info.Labels)) Attach(info, subscriber);
        m.ReplyTo.Tell(new VmCreated(info));
    }

    /// <summary>The VM as the cluster-wide directory lists it.</summary>
    private VmRecord Record(VmInfo vm)
    {
        var r = new VmRecord
        {
            VmId = vm.VmId, Node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString(), NodeName = _options.NodeName,
            Image = vm.Image, Vcpus = vm.Vcpus, Flavour = vm.Machine.Capabilities.FlavourName, MemorySize = vm.MemorySize,
            Entry = vm.Entry, ImageLittleEndian = vm.Machine.ImageIsLittleEndian,
            HardwareSingleStep = vm.Machine.Capabilities.HardwareSingleStep, DebugInstruction = vm.Machine.Capabilities.DebugInstruction,
            HoldsAsyncInterrupts = vm.Machine.Capabilities.HoldsAsyncInterrupts, AllStop = vm.Machine.Capabilities.RunModel == VcpuRunModel.AllStop,
        };
        foreach (var (k, v) in vm.Labels) r.Labels[k] = v;
        return r;
    }

    private string NextId()
    {
        string id;
        do id = $"{_options.IdPrefix}{_next++}"; while (_vms.ContainsKey(id) || _creating.Contains(id));
        return id;
    }

    private void OnSubscribe(SubscribeEvents m)
    {
        List<VmInfo> vms;
        if (m.VmId is { Length: > 0 } id)
        {
            if (!TryGet(id, out var vm)) return;
            vms = [vm];
        }
        else
        {
            vms = Selected(m.Selector);
            _selectorSubscribers[m.Subscriber] = m.Selector;
        }
        Context.Watch(m.Subscriber);
        foreach (var vm in vms) Attach(vm, m.Subscriber);
        Sender.Tell(new EventsSubscribed(vms.Select(v => v.VmId).ToList()));
    }

    /// <summary>Attached before subscribed, so that the subscriber knows the VM before its first event.</summary>
    private void Attach(VmInfo vm, IActorRef subscriber)
    {
        if (!_subscribers.TryGetValue(vm.VmId, out var set)) _subscribers[vm.VmId] = set = new();
        set.Add(subscriber);
        subscriber.Tell(new VmAttached(vm));
        vm.Coordinator.Tell(new Subscribe(subscriber));
    }

    private void OnTerminated(Terminated t)
    {
        if (_byCoordinator.Remove(t.ActorRef, out var vmId))
        {
            // The coordinator stopped after its vcpu actors: nothing runs the machine now, so its guest RAM goes back to the OS at
            // once (a collection may not come for a long time on an idle server, and the RAM is not on the GC's heap).
            if (_vms.Remove(vmId, out var gone)) gone.Machine.Dispose();
            _destroying.Remove(vmId);
            _options.Directory?.Tell(new VmDirectoryProtocol.UnregisterVm(vmId));
            _log.Info("VM {0} destroyed", vmId);
            if (_subscribers.Remove(vmId, out var subs))
                foreach (var s in subs) s.Tell(new VmDetached(vmId));
            if (_destroyWaiters.Remove(vmId, out var waiters))
                foreach (var w in waiters) w.Tell(new VmDestroyed(vmId));
            CheckDestroyedAll();
            return;
        }
        // An event subscriber went away (its stream ended); coordinators forget it through their own watch.
        _selectorSubscribers.Remove(t.ActorRef);
        foreach (var set in _subscribers.Values) set.Remove(t.ActorRef);
    }

    private void CheckDestroyedAll()
    {
        if (_destroyingAll is not { } d || _vms.Count > 0) return;
        _destroyingAll = null;
        d.ReplyTo.Tell(new AllVmsDestroyed(d.Count));
    }
}
