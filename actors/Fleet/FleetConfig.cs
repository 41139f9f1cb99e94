namespace ActorStep.Actors.Fleet;

/// <summary>The Akka.Cluster configuration of an ActorStep node: loopback remoting, seeds, fast failure detection, protobuf on the wire.</summary>
public static class FleetConfig
{
    public const string SystemName = "actorstep";

    /// <summary>A member's role "node:NAME" carries its --node-name.</summary>
    public const string NameRolePrefix = "node:";

    /// <summary>The role of a member that serves the ActorStep API (a server's node): a fleet-wide call waits for each such
    /// member's answer, whatever its directory says, since the directory may not list a node's newest VMs yet. A member without
    /// it (a monitor, a probe) is asked too but not waited for unless the directory names VMs of it.</summary>
    public const string ApiRole = "actorstep-api";

    /// <summary>The --node-name of a member, from its roles (empty when it has none).</summary>
    public static string NodeName(Akka.Cluster.Member member) =>
        member.Roles.FirstOrDefault(r => r.StartsWith(NameRolePrefix, StringComparison.Ordinal))?[NameRolePrefix.Length..] ?? "";

    /// <param name="host">the address remoting binds to (loopback unless the operator says otherwise)</param>
    /// <param name="port">remoting port (0: any free port)</param>
    /// <param name="seeds">seed node addresses, e.g. akka.tcp://actorstep@127.0.0.1:4053</param>
    /// <param name="servesApi">whether this member serves the ActorStep API (<see cref="ApiRole"/>): true for a server's node</param>
    public static string Hocon(string host, int port, IEnumerable<string> seeds, string nodeName, bool servesApi = false) => $$"""
        akka {
          loglevel = WARNING
          actor.provider = cluster
          # Guests run on the shared thread pool; cluster heartbeats and remoting get threads of their own, so that busy vcpus
          # never delay a heartbeat into "unreachable" (and the split-brain resolver into downing healthy nodes).
          actor.actorstep-cluster-dispatcher {
            type = ForkJoinDispatcher
            throughput = 30
            dedicated-thread-pool { thread-count = 2, threadtype = background }
          }
          cluster.use-dispatcher = akka.actor.actorstep-cluster-dispatcher
          remote.default-remote-dispatcher {
            type = ForkJoinDispatcher
            throughput = 30
            dedicated-thread-pool { thread-count = 2, threadtype = background }
          }
          remote.dot-netty.tcp {
            hostname = "{{host}}"
            port = {{port}}
          }
          cluster {
            seed-nodes = [{{string.Join(", ", seeds.Select(s => $"\"{s}\""))}}]
            # The node's name travels with its membership (GetClusterStatus names every member).
            roles = ["actorstep", "{{NameRolePrefix}}{{nodeName}}"{{(servesApi ? $", \"{ApiRole}\"" : "")}}]
            app-version = "1.0.0"
            # VMs of a crashed node must be reported lost within seconds, yet busy guests must never make a healthy node
            # unreachable: measured (bench fleet-processes, README) the worst heartbeat round trip with every vcpu running on this
            # 2-core machine was 3.8 s, under a load average of ~75 from other jobs; the pause accepted is 6 s (a killed node is
            # unreachable after ~7-9 s).
            failure-detector {
              heartbeat-interval = 1s
              acceptable-heartbeat-pause = 6s
              threshold = 12.0
            }
            # A node that cannot be reached for long is downed, so the others keep serving: the side with the majority stays.
            # Never "down all" because members flap (what busy guests once caused, destroying every VM): an unstable cluster
            # waits instead. A downed node does not shut down: it keeps its VMs and serves them through its own API.
            downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
            split-brain-resolver {
              active-strategy = keep-majority
              stable-after = 10s
              down-all-when-unstable = off
            }
            run-coordinated-shutdown-when-down = off
            distributed-data.gossip-interval = 300ms
            # At most this many directory buckets in one Gossip message: the bound on its size (VmDirectoryBuckets).
            distributed-data.max-delta-elements = {{VmDirectoryBuckets.MaxBucketsPerGossip}}
            log-info = off
          }
        }
        actorstep.node-name = "{{nodeName}}"
        {{FleetSerializer.Config}}
        """;
}
