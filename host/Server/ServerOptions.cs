using System.Net;
using System.Text.RegularExpressions;
using ActorStep.Actors.Vm;
using Serilog.Events;

namespace ActorStep.Host.Server;

/// <summary>How to run an ActorStep server (<c>actorstep serve</c>, tests and benchmarks).</summary>
public sealed record ServerOptions
{
    public const int DefaultPort = 50051;

    /// <summary>Where the gRPC API listens (loopback only; port 0 picks a free port).</summary>
    public IPEndPoint Grpc { get; init; } = new(IPAddress.Loopback, DefaultPort);

    /// <summary>Where the gdb bridge listens (loopback only), started by <c>actorstep serve --gdb</c> for the initial VM.</summary>
    public IPEndPoint? Gdb { get; init; }

    /// <summary>Where Prometheus scrapes the node's metrics (<c>/metrics</c>, HTTP/1.1, loopback only, the token required); null: off.</summary>
    public IPEndPoint? Metrics { get; init; }

    /// <summary>Whether to create one VM at start (from <see cref="ImagePath"/>, or the demo guest).</summary>
    public bool CreateInitialVm { get; init; } = true;

    public string? ImagePath { get; init; }

    /// <summary>The initial VM boots this Linux kernel (<c>serve --kernel</c>) instead of an ELF image.</summary>
    public Hypervisor.LinuxKernelImage? Kernel { get; init; }

    /// <summary>The initial VM is a QEMU's (<c>--qemu-gdb</c>, <c>--qemu -- ARGS</c>) instead of a simulated one.</summary>
    public Hypervisor.QemuSource? Qemu { get; init; }
    public int Vcpus { get; init; } = 4;
    public ulong MemorySize { get; init; } = 128UL << 20;

    /// <summary>Events a stream buffers for a slow reader before it drops the oldest.</summary>
    public int EventBufferCapacity { get; init; } = 1024;

    public CoordinatorOptions? Coordinator { get; init; }

    /// <summary>Labels of the VM created at start.</summary>
    public IReadOnlyDictionary<string, string>? InitialVmLabels { get; init; }

    /// <summary>Join an Akka.Cluster (<c>actorstep serve --cluster</c>); null: a single node without remoting.</summary>
    public ClusterOptions? Cluster { get; init; }

    /// <summary>Compact JSON log lines (CLEF) instead of text.</summary>
    public bool JsonLogs { get; init; }

    public LogEventLevel LogLevel { get; init; } = LogEventLevel.Information;

    /// <summary>Whether every call but health must carry the server's token (<c>authorization: Bearer …</c>); false: <c>--no-auth</c>.</summary>
    public bool RequireToken { get; init; } = true;

    /// <summary>Where the token is written (0600) once the server listens; null: <see cref="Access.ApiToken.DefaultFile"/> of its port.</summary>
    public string? TokenFile { get; init; }

    /// <summary>The directories gRPC clients may name images in (<c>--image-dir</c>); null or empty: the current directory.</summary>
    public IReadOnlyList<string>? ImageDirectories { get; init; }

    /// <summary>Whether a client's <c>CreateVm</c> may start a QEMU with arguments it names (<c>--allow-qemu-launch</c>).</summary>
    public bool ClientsMayLaunchQemu { get; init; }

    /// <summary>Stop on Ctrl-C and SIGTERM from the start of <see cref="ServerHost.StartAsync"/> on (the CLI); in-process hosts (tests) leave signals alone.</summary>
    public bool HandleSignals { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> with a message for a person when an endpoint is not loopback.</summary>
    public void Validate()
    {
        if (!IPAddress.IsLoopback(Grpc.Address))
            throw new ArgumentException($"the gRPC API listens on loopback only (127.0.0.1 or [::1]), not {Grpc.Address}: reach it from elsewhere through an SSH tunnel");
        if (Gdb is { } gdb && !IPAddress.IsLoopback(gdb.Address))
            throw new ArgumentException($"the gdb bridge listens on loopback only (127.0.0.1 or [::1]), not {gdb.Address}");
        if (Metrics is { } metrics && !IPAddress.IsLoopback(metrics.Address))
            throw new ArgumentException($"the metrics endpoint listens on loopback only (127.0.0.1 or [::1]), not {metrics.Address}");
        if (EventBufferCapacity < 1) throw new ArgumentException("the event buffer needs room for at least one event");
        Cluster?.Validate();
    }
}

/// <summary>How a node joins the cluster: its name, its remoting port on loopback, and the seed nodes to contact.</summary>
/// <param name="NodeName">a short name ([a-z0-9-]); the node's VM ids are "NAME-vm-N" and fleet results name it</param>
/// <param name="Port">Akka remoting port on 127.0.0.1 (0: any free port)</param>
/// <param name="Seeds">seed addresses, e.g. akka.tcp://actorstep@127.0.0.1:4053; empty: this node starts a cluster of its own</param>
/// <param name="RouteTimeout">how long a routed call without a deadline waits for the owning node (resumes wait until the VM stops)</param>
public sealed partial record ClusterOptions(string NodeName, int Port, IReadOnlyList<string> Seeds, TimeSpan? RouteTimeout = null)
{
    public TimeSpan Timeout => RouteTimeout ?? TimeSpan.FromSeconds(10);

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")]
    private static partial Regex NamePattern();

    public void Validate()
    {
        if (!NamePattern().IsMatch(NodeName))
            throw new ArgumentException($"node name '{NodeName}' is not valid: use 1..32 of a-z, 0-9 and '-', starting and ending with a letter or digit");
        if (Port is < 0 or > 65535) throw new ArgumentException($"cluster port must be 0..65535, not {Port}");
        foreach (var seed in Seeds)
        {
            if (!Uri.TryCreate(seed, UriKind.Absolute, out var uri) || uri.Scheme != "akka.tcp" || uri.UserInfo != Actors.Fleet.FleetConfig.SystemName || uri.Port <= 0)
                throw new ArgumentException($"seed '{seed}' is not an ActorStep node address: use akka.tcp://{Actors.Fleet.FleetConfig.SystemName}@127.0.0.1:PORT");
            if (!IPAddress.TryParse(uri.Host, out var ip) || !IPAddress.IsLoopback(ip))
                throw new ArgumentException($"seed '{seed}': ActorStep nodes talk over loopback only (127.0.0.1)");
        }
    }
}
