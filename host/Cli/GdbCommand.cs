using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Host.Gdb;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Host.Cli;

/// <summary><c>actorstep gdb</c>: a gdb remote-protocol bridge for one VM of a running server, until Ctrl-C or SIGTERM.</summary>
public static class GdbCommand
{
    public const string DefaultServer = "http://127.0.0.1:50051";
    public const string DefaultListen = "127.0.0.1:1234";

    public static System.CommandLine.Command Definition() => CommandLine.Define("gdb",
        "Serve the GDB remote protocol for one VM of a running server (over its gRPC API), one gdb at a time. " +
        "Exit codes: 0 stopped, 1 cannot start, 2 usage error.",
        ExecuteAsync,
        CommandLine.Value("--server", "URL", $"the server's gRPC address (default {DefaultServer})"),
        CommandLine.Value("--vm", "ID", "the VM to debug (default: the server's only VM)"),
        CommandLine.Value("--listen", "HOST:PORT", $"where gdb connects, loopback only (default {DefaultListen}; port 0 picks one): gdb-multiarch -ex 'set architecture powerpc:common64' -ex 'target remote 127.0.0.1:1234'"),
        CommandLine.Value("--token-file", "PATH", "the server's API token (default: the file a server on that port writes, if there)"),
        CommandLine.Flag("--verbose", "log each call"));

    public static async Task<int> ExecuteAsync(ArgReader args)
    {
        string serverText = args.String("--server") ?? DefaultServer;
        string? vmId = args.String("--vm");
        var listen = ServeCommand.Endpoint("--listen", args.String("--listen") ?? DefaultListen);
        bool verbose = args.Flag("--verbose");
        string? tokenFile = args.String("--token-file");
        InlineSocketCompletions.Enable(); // before the first socket: each gdb packet then skips a thread hop
        if (!Uri.TryCreate(serverText, UriKind.Absolute, out var server) || server.Scheme is not ("http" or "https"))
            throw new UsageException($"--server wants the gRPC address as a URL (e.g. {DefaultServer}), not '{serverText}'");
        ApiToken? token;
        try { token = ReadToken(tokenFile, server); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"actorstep: cannot read the token: {e.Message}");
            return 1;
        }

        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }));
        var log = loggers.CreateLogger("gdb");
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

        using var channel = ApiChannel.Create(server, token);
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
            throw new GdbBridgeException(e.StatusCode == StatusCode.Unauthenticated
                ? $"the ActorStep server at {server} refused the call: {e.Status.Detail}; give its token file with --token-file"
                : $"cannot reach the ActorStep server at {server}: {e.StatusCode} {e.Status.Detail}", e);
        }
        return list.Vms.Count switch
        {
            1 => list.Vms[0].VmId,
            0 => throw new GdbBridgeException($"the server at {server} has no VM; create one first"),
            _ => throw new UsageException($"the server has {list.Vms.Count} VMs ({string.Join(", ", list.Vms.Select(v => v.VmId))}): say which with --vm"),
        };
    }

    /// <summary>
    /// The server's token: from <c>--token-file</c>, else from the file a server on that port writes by default when it is there
    /// (a server started by this user), else none (a server started with <c>--no-auth</c>).
    /// </summary>
    private static ApiToken? ReadToken(string? tokenFile, Uri server)
    {
        if (tokenFile is not null) return ApiToken.ReadFrom(tokenFile);
        string usual = ApiToken.DefaultFile(server.Port);
        return File.Exists(usual) ? ApiToken.ReadFrom(usual) : null;
    }
}
