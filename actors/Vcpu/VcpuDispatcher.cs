using Akka.Actor;

namespace ActorStep.Actors.Vcpu;

/// <summary>
/// Where guests run: a fixed set of threads of their own (KVM's vcpu threads, bounded by the host's cores), not the
/// .NET thread pool. Hundreds of running vcpus would otherwise occupy every pool thread with guest slices, and
/// everything else that needs one — gRPC, Ask continuations, remoting, cluster heartbeats — would wait behind them
/// until the pool grows (seconds), which is long enough for a cluster to mark a healthy node unreachable.
/// </summary>
public static class VcpuDispatcher
{
    public const string Id = "actorstep.vcpu-dispatcher";

    /// <summary>One thread per core; a vcpu actor gives its thread up after each slice (throughput 1) so vcpus share fairly.</summary>
    public static string Hocon(int? threads = null) => $$"""
        actorstep.vcpu-dispatcher {
          type = Dispatcher
          executor = channel-executor
          channel-executor.priority = low
          throughput = 1
          fork-join-executor {
            parallelism-min = {{threads ?? Environment.ProcessorCount}}
            parallelism-factor = 1.0
            parallelism-max = {{threads ?? Environment.ProcessorCount}}
          }
        }
        """;

    /// <summary>Runs the actor on the vcpu threads when the actor system defines them (hosts do; bare test systems keep the default).</summary>
    public static Props OnVcpuThreads(this Props props, ActorSystem system) =>
        system.Dispatchers.HasDispatcher(Id) ? props.WithDispatcher(Id) : props;
}
