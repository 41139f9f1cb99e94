using Akka.Actor;

namespace ActorStep.Actors.Vcpu;

/// <summary>
/// Where guests run: at most one vcpu slice per core at a time, on the .NET thread pool (<see cref="VcpuExecutor"/>), as KVM's
/// vcpu threads are bounded by the host's cores. On the default dispatcher hundreds of running vcpus occupy every pool thread
/// with guest slices, and everything else that needs one — gRPC, Ask continuations, remoting, cluster heartbeats — waits
/// behind them until the pool grows (seconds): long enough for a cluster to mark a healthy node unreachable. Bounded, the
/// other pool threads stay free, and each worker gives its thread back every few slices. (Akka's low-priority channel
/// executor did the bounding before, but ran guest slices on the thread of whoever scheduled a vcpu — see VcpuExecutor; a
/// dedicated thread per core kept the cluster up but added ~7 µs of thread wake-up to every host step.)
/// </summary>
public static class VcpuDispatcher
{
    public const string Id = "actorstep.vcpu-dispatcher";

    /// <summary>One worker per core; a vcpu actor gives its worker up after each slice (throughput 1) so vcpus share fairly.</summary>
    public static string Hocon() => $$"""
        actorstep.vcpu-dispatcher {
          type = Dispatcher
          executor = "{{typeof(VcpuExecutorConfigurator).AssemblyQualifiedName}}"
          throughput = 1
          vcpu-executor.workers = {{Environment.ProcessorCount}}
        }
        actorstep.vm-runner-dispatcher {
          type = PinnedDispatcher
        }
        """;

    /// <summary>
    /// Where an all-stop VM's runner (<see cref="Vm.VmRunner"/>) waits: a thread of its own. Its resume blocks for as long as
    /// the VM runs (a continue: until a breakpoint or a halt, maybe hours), waiting on QEMU's socket, not computing; on the
    /// vcpu dispatcher each running QEMU VM held one of its few workers, and with as many running as there are workers every
    /// vcpu actor of the node waited (measured: two QEMU VMs continued by Fleet.ContinueAll, and the second VM's halt was
    /// never answered).
    /// </summary>
    public const string RunnerId = "actorstep.vm-runner-dispatcher";

    /// <summary>Runs the actor on a thread of its own when the actor system defines the runner dispatcher (hosts do; bare test
    /// systems keep the default).</summary>
    public static Props OnRunnerDispatcher(this Props props, ActorSystem system) =>
        system.Dispatchers.HasDispatcher(RunnerId) ? props.WithDispatcher(RunnerId) : props;

    /// <summary>Runs the actor on the vcpu dispatcher when the actor system defines them (hosts do; bare test systems keep the default).</summary>
    public static Props OnVcpuDispatcher(this Props props, ActorSystem system) =>
        system.Dispatchers.HasDispatcher(Id) ? props.WithDispatcher(Id) : props;
}
