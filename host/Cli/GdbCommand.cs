using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Host.Cli;

/// <summary><c>actorstep gdb</c>: a gdb remote-protocol bridge for one VM of a running server, until Ctrl-C or SIGTERM.</summary>
public static class GdbCommand
{
    public const string DefaultServer = "http://127.0.0.1:50051";
    public const string DefaultListen = "127.0.0.1:1234";

    public static async Task<int> ExecuteAsync(ArgReader args)
    {
        string serverText = args.String("--server") ?? DefaultServer;
        string? vmId = args.String("--vm");
        var listen = ServeCommand.Endpoint("--listen", args.String("--listen") ?? DefaultListen);
        bool verbose = args.Flag("--verbose");
        args.EnsureAllKnown();
        if (!Uri.TryCreate(serverText, UriKind.Absolute, out var server) || server.Scheme is not ("http" or "https"))
            throw new UsageException($"--server wants the gRPC address as a URL (e.g. {DefaultServer}), not '{serverText}'");

        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }));
        var log = loggers.CreateLogger("gdb");
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

        using var channel = GrpcChannel.ForAddress(server);
        try
        {
            vmId ??= await OnlyVmAsync(channel, server, stop.Token);
            await using var bridge = await GdbBridge.StartAsync(channel, vmId, listen, log, stop.Token);
            Console.Out.WriteLine($"""
                gdb bridge for VM {bridge.VmId} of {server.GetLeftPart(UriPartial.Authority)} on {bridge.Endpoint} (one gdb at a time)
                Connect with:
                  {bridge.ConnectHint}
                Ctrl-C or SIGTERM stops the bridge (an attached gdb's VM is left halted, its breakpoints removed).
                """);
            try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
            return 0;
        }
        catch (GdbBridgeException e)
        {
            Console.Error.WriteLine($"actorstep: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    /// <summary>Without --vm: the server's only VM, or a message listing them.</summary>
    private static async Task<string> OnlyVmAsync(GrpcChannel channel, Uri server, CancellationToken ct)
    {
        ListVmsResponse list;
        try
        {
            list = await new Vms.VmsClient(channel).ListVmsAsync(new ListVmsRequest(), deadline: DateTime.UtcNow.AddSeconds(15), cancellationToken: ct);
        }
        catch (RpcException e)
        {
            throw new GdbBridgeException($"cannot reach the ActorStep server at {server}: {e.StatusCode} {e.Status.Detail}", e);
        }
        return list.Vms.Count switch
        {
            1 => list.Vms[0].VmId,
            0 => throw new GdbBridgeException($"the server at {server} has no VM; create one first"),
            _ => throw new UsageException($"the server has {list.Vms.Count} VMs ({string.Join(", ", list.Vms.Select(v => v.VmId))}): say which with --vm"),
        };
    }

    /// <summary>For <c>actorstep serve --gdb</c>: a bridge for the server's VM, in the same process.</summary>
    public static Task<GdbBridge> StartForServeAsync(Uri server, string vmId, IPEndPoint listen, ILogger log, CancellationToken ct = default) =>
        GdbBridge.StartAsync(server, vmId, listen, log, ct);
}
