using System.Net;
using ActorStep.Actors.Vm;
using Serilog.Events;

namespace ActorStep.Host.Server;

/// <summary>How to run an ActorStep server (<c>actorstep serve</c>, tests and benchmarks).</summary>
public sealed record ServerOptions
{
    public const int DefaultPort = 50051;

    /// <summary>Where the gRPC API listens (loopback only; port 0 picks a free port).</summary>
    public IPEndPoint Grpc { get; init; } = new(IPAddress.Loopback, DefaultPort);

    /// <summary>Where the gdb bridge should listen (validated; the bridge is not available yet).</summary>
    public IPEndPoint? Gdb { get; init; }

    /// <summary>Whether to create one VM at start (from <see cref="ImagePath"/>, or the demo guest).</summary>
    public bool CreateInitialVm { get; init; } = true;

    public string? ImagePath { get; init; }
    public int Vcpus { get; init; } = 4;
    public ulong MemorySize { get; init; } = 128UL << 20;

    /// <summary>Events a stream buffers for a slow reader before it drops the oldest.</summary>
    public int EventBufferCapacity { get; init; } = 1024;

    public CoordinatorOptions? Coordinator { get; init; }

    /// <summary>Compact JSON log lines (CLEF) instead of text.</summary>
    public bool JsonLogs { get; init; }

    public LogEventLevel LogLevel { get; init; } = LogEventLevel.Information;

    /// <summary>Stop on Ctrl-C and SIGTERM (the CLI); in-process hosts (tests) leave signals alone.</summary>
    public bool HandleSignals { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> with a message for a person when an endpoint is not loopback.</summary>
    public void Validate()
    {
        if (!IPAddress.IsLoopback(Grpc.Address))
            throw new ArgumentException($"the gRPC API listens on loopback only (127.0.0.1 or [::1]), not {Grpc.Address}: reach it from elsewhere through an SSH tunnel");
        if (Gdb is { } gdb && !IPAddress.IsLoopback(gdb.Address))
            throw new ArgumentException($"the gdb bridge listens on loopback only (127.0.0.1 or [::1]), not {gdb.Address}");
        if (EventBufferCapacity < 1) throw new ArgumentException("the event buffer needs room for at least one event");
    }
}
