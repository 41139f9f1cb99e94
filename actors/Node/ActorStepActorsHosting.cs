using ActorStep.Actors.Fleet;
using ActorStep.Actors.Vcpu;
using Akka.Hosting;

namespace ActorStep.Actors.Node;

/// <summary>The actors of an ActorStep node, for the host and the tests alike.</summary>
public static class ActorStepActorsHosting
{
    /// <summary>Starts the node's <see cref="VmManager"/> (actor name "vms"), resolvable as <c>IRequiredActor&lt;VmManager&gt;</c>.</summary>
    public static AkkaConfigurationBuilder AddActorStepActors(this AkkaConfigurationBuilder builder, VmManagerOptions? options = null) =>
        builder.AddHocon(VcpuDispatcher.Hocon(), HoconAddMode.Append).WithActors((system, registry) => registry.Register<VmManager>(system.ActorOf(VmManager.Props(options), "vms")));

    /// <summary>
    /// A cluster node's actors: its <see cref="VmDirectory"/> (at /user/vm-directory, <c>IRequiredActor&lt;VmDirectory&gt;</c>)
    /// and a <see cref="VmManager"/> that registers its VMs there, with ids prefixed by the node's name ("NAME-vm-N").
    /// The actor system must be configured with <see cref="FleetConfig.Hocon"/>.
    /// </summary>
    public static AkkaConfigurationBuilder AddActorStepClusterActors(this AkkaConfigurationBuilder builder, string nodeName, VmManagerOptions? options = null) =>
        builder.AddHocon(VcpuDispatcher.Hocon(), HoconAddMode.Append).WithActors((system, registry) =>
        {
            var directory = system.ActorOf(VmDirectory.Props(), "vm-directory");
            registry.Register<VmDirectory>(directory);
            var managerOptions = (options ?? new VmManagerOptions()) with { Directory = directory, NodeName = nodeName, IdPrefix = $"{nodeName}-vm-" };
            registry.Register<VmManager>(system.ActorOf(VmManager.Props(managerOptions), "vms"));
        });
}
