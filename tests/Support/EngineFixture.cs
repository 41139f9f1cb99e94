using ActorStep.Actors.Vm;
using ActorStep.Machine;
using Akka.Actor;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Support;

/// <summary>A VM under a VmCoordinator, with blocking helpers for tests.</summary>
public sealed class EngineFixture
{
    // A bound on an answer, not a measure of speed: a 20,000-step count step on the all-stop machine took over 15 s on a
    // loaded 2-core CI machine.
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public EngineFixture(ActorSystem system, string source, int vcpus, CoordinatorOptions? options = null,
        HypervisorFlavour flavour = HypervisorFlavour.Hv, bool littleEndian = true, VcpuRunModel runModel = VcpuRunModel.IndependentVcpus)
    {
        Image = GuestAssembler.Build(source, littleEndian, textAddress: 0);
        Vm = SimulatedMachine.Load(Image, new MachineOptions(vcpus, 16UL << 20, flavour));
        // On an all-stop backend the coordinator resumes the VM as a whole; tests still look at the machine behind it.
        Coordinator = system.ActorOf(VmCoordinator.Props(runModel == VcpuRunModel.AllStop ? new AllStopMachine(Vm) : Vm, options));
    }

    public ElfImage Image { get; }
    public SimulatedMachine Vm { get; }
    public IActorRef Coordinator { get; }

    /// <summary>A fresh machine from the same image, never debugged: the reference run.</summary>
    public SimulatedMachine Reference() => SimulatedMachine.Load(Image, Vm.Options with { Flavour = HypervisorFlavour.Hv });

    public object Ask(object message) => Coordinator.Ask<object>(message, Timeout).Result;

    public Stopped Resume(IReadOnlyDictionary<int, VcpuAction> actions, bool hold = true, int count = 1,
        IReadOnlyDictionary<int, StepRange>? ranges = null)
    {
        var reply = Ask(new Resume(actions, hold, count, ranges));
        return reply as Stopped ?? throw new Xunit.Sdk.XunitException($"resume failed: {reply}");
    }

    public Stopped Step(int vcpu, SchedulerLocking locking, int count = 1) =>
        Resume(StepActions(vcpu, Vm.VcpuCount, locking), count: count);

    public VcpuState Registers(int vcpu) =>
        Coordinator.Ask<Actors.Vcpu.VcpuProtocol.Registers>(new ReadRegisters(vcpu), Timeout).Result.State;

    public ulong ReadU64(ulong ra)
    {
        var data = Coordinator.Ask<MemoryRead>(new ReadMemory(ra, 8, null), Timeout).Result.Data;
        return BitConverter.ToUInt64(data);
    }

    public uint RawWord(ulong ra)
    {
        var b = new byte[4];
        Vm.ReadMemory(ra, b);
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }
}
