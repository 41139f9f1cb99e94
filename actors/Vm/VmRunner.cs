using ActorStep.Hypervisor;
using Akka.Actor;

namespace ActorStep.Actors.Vm;

/// <summary>
/// Runs an all-stop VM (<see cref="IAllStopVm"/>, QEMU's gdbstub) for its coordinator: one <see cref="IAllStopVm.Resume"/>
/// at a time, which blocks until the VM stops, on a thread of its own (<see cref="Vcpu.VcpuDispatcher.RunnerId"/>: a continue
/// blocks for as long as the guest runs, and must not hold a worker the node's vcpu actors share).
/// </summary>
public sealed class VmRunner : ReceiveActor
{
    public VmRunner(IAllStopVm vm)
    {
        Receive<VmRunnerProtocol.RunVm>(m =>
        {
            try
            {
                var (vcpu, exit) = vm.Resume(m.Vcpus);
                Sender.Tell(new VmRunnerProtocol.VmStopped(vcpu, exit));
            }
            catch (Exception e)
            {
                // A backend that fails (a QEMU that died) answers too: the coordinator reports it, nothing waits forever.
                Sender.Tell(new VmRunnerProtocol.VmRunFailed(e.Message));
            }
        });
    }

    public static Props Props(IAllStopVm vm) => Akka.Actor.Props.Create(() => new VmRunner(vm));
}

public static class VmRunnerProtocol
{
    /// <summary>Coordinator → VmRunner: run the VM with these vcpus running until it stops. Reply: <see cref="VmStopped"/> or <see cref="VmRunFailed"/>.</summary>
    public sealed record RunVm(int[] Vcpus);

    /// <summary>VmRunner → coordinator: the VM stopped, every vcpu halted; <paramref name="Exit"/> is why (BudgetExpired: on request).</summary>
    public sealed record VmStopped(int Vcpu, VcpuExit Exit);

    /// <summary>VmRunner → coordinator: the backend failed to run the VM.</summary>
    public sealed record VmRunFailed(string Error);
}
