using ActorStep.Machine;
using ActorStep.Actors.Node;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Tests.Grpc;

/// <summary>The VM manager actor: ids, routing by id, destroy, event subscribers.</summary>
public class VmManagerTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static VmSpec Spin(string? id = null, Dictionary<string, string>? labels = null) =>
        new(null, "spin", Vcpus: 2, MemorySize: 1 << 20, Labels: labels, VmId: id);

    [Fact]
    public void Vms_get_sequential_ids_unless_one_is_given()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        manager.Tell(new CreateVm(Spin()));
        Assert.Equal("vm-1", ExpectMsg<VmCreated>(Wait).Vm.VmId);
        manager.Tell(new CreateVm(Spin("mine")));
        Assert.Equal("mine", ExpectMsg<VmCreated>(Wait).Vm.VmId);
        manager.Tell(new CreateVm(Spin()));
        Assert.Equal("vm-2", ExpectMsg<VmCreated>(Wait).Vm.VmId);
    }

    [Fact]
    public void Requests_reach_the_coordinator_of_their_vm_and_unknown_vms_are_not_found()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        manager.Tell(new CreateVm(Spin("a")));
        ExpectMsg<VmCreated>(Wait);

        manager.Tell(new ToVm("a", new VmProtocol.Describe()));
        Assert.Equal(2, ExpectMsg<VmProtocol.VmDescription>(Wait).Vcpus);
        manager.Tell(new ToVm("b", new VmProtocol.Describe()));
        Assert.Equal(VmProtocol.FailureCode.NotFound, ExpectMsg<VmProtocol.Failed>(Wait).Code);
        manager.Tell(new StepVcpu("a", 5, SchedulerLocking.On));
        Assert.Equal(VmProtocol.FailureCode.NotFound, ExpectMsg<VmProtocol.Failed>(Wait).Code);
    }

    [Fact]
    public void Destroying_a_vm_replies_once_it_is_gone_and_detaches_its_subscribers()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        manager.Tell(new CreateVm(Spin("a", new() { ["k"] = "v" })));
        var vm = ExpectMsg<VmCreated>(Wait).Vm;
        var subscriber = CreateTestProbe();
        manager.Tell(new SubscribeEvents(null, new Dictionary<string, string> { ["k"] = "v" }, subscriber));
        Assert.Equal(new[] { "a" }, ExpectMsg<EventsSubscribed>(Wait).VmIds);
        Assert.Equal("a", subscriber.ExpectMsg<VmAttached>(Wait).Vm.VmId);

        Watch(vm.Coordinator);
        manager.Tell(new DestroyVm("a"));
        ExpectTerminated(vm.Coordinator, Wait);
        ExpectMsg<VmDestroyed>(Wait);
        subscriber.ExpectMsg<VmDetached>(Wait);
        manager.Tell(new ListVms(new Dictionary<string, string>()));
        Assert.Empty(ExpectMsg<VmList>(Wait).Vms);
    }

    [Fact]
    public void A_destroyed_vm_gives_its_guest_memory_back_at_once_and_nothing_keeps_it()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        var machine = CreateStepAndDestroy(manager, "gone");
        // Not left to a collection: the reply comes once the RAM is back with the OS.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        // Nothing of the manager, the actors or the event plumbing holds the machine (or, through it, guest memory).
        Assert.False(machine.IsAlive, "the destroyed VM's machine is still reachable");
    }

    /// <summary>Not inlined, so that no local of the test keeps the machine reachable.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private WeakReference CreateStepAndDestroy(IActorRef manager, string id)
    {
        var subscriber = CreateTestProbe();
        manager.Tell(new CreateVm(Spin(id)));
        var machine = (SimulatedMachine)ExpectMsg<VmCreated>(Wait).Vm.Machine;
        manager.Tell(new SubscribeEvents(id, new Dictionary<string, string>(), subscriber));
        ExpectMsg<EventsSubscribed>(Wait);
        manager.Tell(new StepVcpu(id, 0, SchedulerLocking.Step, StepCount: 3));
        ExpectMsg<VmProtocol.Stopped>(Wait);
        manager.Tell(new DestroyVm(id));
        ExpectMsg<VmDestroyed>(Wait);
        // The probe keeps what it received (VmAttached carries the machine): read it all, as an event pump would.
        subscriber.FishForMessage(m => m is VmDetached, Wait);
        Assert.True(machine.Memory.IsReleased);
        if (OperatingSystem.IsLinux()) Assert.Equal(0, machine.Memory.ResidentBytes());
        return new WeakReference(machine);
    }

    [Fact]
    public async Task Requests_queued_behind_a_destroy_are_answered_and_later_ones_are_refused()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        for (int round = 0; round < 20; round++)
        {
            manager.Tell(new CreateVm(Spin($"q{round}")));
            ExpectMsg<VmCreated>(Wait);
            var resume = manager.Ask<object>(new ContinueVcpu($"q{round}", 0, SchedulerLocking.Off), Wait);
            var destroy = manager.Ask<object>(new DestroyVm($"q{round}"), Wait);
            var after = manager.Ask<object>(new ToVm($"q{round}", new VmProtocol.Describe()), Wait);
            // The continue started before the destroy: it ends with the VM, it is not lost (a lost one never answers).
            var ended = Assert.IsType<VmProtocol.Failed>(await resume);
            Assert.Contains("shut down", ended.Message);
            Assert.IsType<VmDestroyed>(await destroy);
            var refused = Assert.IsType<VmProtocol.Failed>(await after);
            Assert.Equal(VmProtocol.FailureCode.NotFound, refused.Code);
        }
    }

    [Fact]
    public void A_slow_image_load_leaves_the_manager_answering_and_its_id_taken()
    {
        using var backend = new GatedBackend();
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [backend])));
        manager.Tell(new CreateVm(Spin("first")));
        backend.Release();
        ExpectMsg<VmCreated>(Wait);
        backend.Hold();

        manager.Tell(new CreateVm(Spin("slow")));
        Assert.True(backend.Entered.Wait(Wait), "the backend was not asked");
        // While the backend loads: the manager answers lists, describes and creates of the same id.
        manager.Tell(new ListVms(new Dictionary<string, string>()));
        Assert.Equal(new[] { "first" }, ExpectMsg<VmList>(Wait).Vms.Select(v => v.VmId));
        manager.Tell(new ToVm("first", new VmProtocol.Describe()));
        ExpectMsg<VmProtocol.VmDescription>(Wait);
        manager.Tell(new CreateVm(Spin("slow")));
        Assert.Equal("slow", ExpectMsg<AlreadyExists>(Wait).VmId);

        backend.Release();
        Assert.Equal("slow", ExpectMsg<VmCreated>(Wait).Vm.VmId);
    }

    [Fact]
    public void A_backend_that_refuses_an_image_is_invalid_argument()
    {
        var manager = Sys.ActorOf(VmManager.Props(new VmManagerOptions(Backends: [SimulatedBackend.Instance])));
        manager.Tell(new CreateVm(new VmSpec("/dev/null", null, Vcpus: 1, MemorySize: 1 << 20, VmId: "null")));
        var failed = ExpectMsg<VmProtocol.Failed>(Wait);
        Assert.Equal(VmProtocol.FailureCode.InvalidArgument, failed.Code);
        Assert.Contains("character device", failed.Message);
        manager.Tell(new CreateVm(Spin("null"))); // the id was given back
        Assert.Equal("null", ExpectMsg<VmCreated>(Wait).Vm.VmId);
    }

    /// <summary>The simulator, behind a gate the test opens: a load that takes as long as the test wants.</summary>
    private sealed class GatedBackend : IBackendFactory, IDisposable
    {
        private readonly ManualResetEventSlim _gate = new(false);
        public ManualResetEventSlim Entered { get; } = new(false);
        public BackendKind Kind => BackendKind.Simulated;
        public int MaxVcpus => SimulatedBackend.Instance.MaxVcpus;

        public CreatedVm Create(VmImageRequest request)
        {
            Entered.Set();
            _gate.Wait(TimeSpan.FromMinutes(1)); // longer than any ExpectMsg: a manager that waits here answers nothing
            return SimulatedBackend.Instance.Create(request);
        }

        public void Hold() { _gate.Reset(); Entered.Reset(); }
        public void Release() => _gate.Set();
        public void Dispose() { _gate.Set(); _gate.Dispose(); Entered.Dispose(); }
    }
}
