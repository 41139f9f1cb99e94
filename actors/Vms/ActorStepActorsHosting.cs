using Akka.Hosting;

namespace ActorStep.Actors.Vms;

/// <summary>The actors of an ActorStep node, for the host and the tests alike.</summary>
public static class ActorStepActorsHosting
{
    /// <summary>Starts the node's <see cref="VmManager"/> (actor name "vms"), resolvable as <c>IRequiredActor&lt;VmManager&gt;</c>.</summary>
    public static AkkaConfigurationBuilder AddActorStepActors(this AkkaConfigurationBuilder builder, VmManagerOptions? options = null) =>
        builder.WithActors((system, registry) => registry.Register<VmManager>(system.ActorOf(VmManager.Props(options), "vms")));
}
