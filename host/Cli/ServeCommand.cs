using System.Net;
using ActorStep.Host.Gdb;
using ActorStep.Host.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ActorStep.Machine;
using Serilog.Events;
using ActorStep.Hypervisor;

namespace ActorStep.Host.Cli;

/// <summary><c>actorstep serve</c>: the gRPC server with one VM, until Ctrl-C or SIGTERM.</summary>
public static class ServeCommand
{
    public static System.CommandLine.Command Definition() => CommandLine.Define("serve",
        "Serve the gRPC API (loopback only, the token required) with one VM halted at its entry; Ctrl-C or SIGTERM stops it " +
        "cleanly. Exit codes: 0 stopped, 1 could not start, 2 usage error.",
        ExecuteAsync,
        CommandLine.Value("--image", "FILE", "the VM's ELF image (trusted: it need not be in an --image-dir); default: the demo guest"),
        CommandLine.Value("--kernel", "VMLINUX", "boot a ppc64le Linux kernel instead (vcpu 0 halted at its first instruction, the others held for RTAS start-cpu; trusted path)"),
        GuestOptions.Initrd(),
        GuestOptions.Append(),
        GuestOptions.Vcpus(),
        CommandLine.Value("--memory", "MIB", "guest RAM in MiB, 1..1024 (default 128; 256 with --kernel)"),
        CommandLine.Value("--grpc", "HOST:PORT", $"where the API listens, loopback only (default 127.0.0.1:{ServerOptions.DefaultPort}; port 0 picks one)"),
        CommandLine.Value("--gdb", "HOST:PORT", "also start a gdb bridge for the VM there (loopback only)"),
        CommandLine.Flag("--log-json", "log compact JSON lines (CLEF) instead of text"),
        CommandLine.Flag("--verbose", "log at debug level"),
        CommandLine.Many("--label", "KEY=VALUE", "a label of the VM (repeatable)"),
        CommandLine.Flag("--cluster", "join an Akka.Cluster: any node's API serves any VM"),
        CommandLine.Value("--node-name", "NAME", "with --cluster: this node's name (a-z, 0-9, '-')"),
        CommandLine.Value("--cluster-port", "PORT", "with --cluster: the remoting port on 127.0.0.1 (default 0: any)"),
        CommandLine.Many("--seed", "ADDRESS", "with --cluster: a node to join, akka.tcp://actorstep@127.0.0.1:PORT (repeatable; none: a new cluster)"),
        CommandLine.Value("--qemu-gdb", "ENDPOINT", "attach to a running QEMU's gdbstub (127.0.0.1:PORT or unix:PATH; attaching halts it) and serve that VM"),
        CommandLine.Value("--qemu-qmp", "ENDPOINT", "a running QEMU's QMP monitor (127.0.0.1:PORT or unix:PATH): with --qemu-gdb it says what happened to the guest (powered off, panicked, reset); alone, ActorStep starts QEMU's gdbstub through it (HMP gdbserver), attaches, and stops that gdbstub when it lets go"),
        CommandLine.Flag("--qemu", "start qemu-system-ppc64 with the arguments after a bare -- (serve --qemu -- -M pseries …; ActorStep adds a private gdbstub and QMP socket, -S, -no-shutdown) and serve that VM"),
        CommandLine.Value("--token-file", "PATH", "where to write the API token (default $XDG_RUNTIME_DIR/actorstep/server-PORT.token)"),
        CommandLine.Flag("--no-auth", "no token: every local user can use the API (tests, a single-user machine)"),
        CommandLine.Many("--image-dir", "DIR", "a directory clients may name images in (repeatable; default: the current directory)"),
        CommandLine.Value("--metrics", "HOST:PORT", "serve OpenTelemetry metrics for Prometheus on http://HOST:PORT/metrics (loopback only, the token required; default: off)"),
        CommandLine.Flag("--allow-qemu-launch", "let a client's CreateVm start a QEMU with arguments it names (they can read and write any file you can)"),
        new System.CommandLine.Argument<string[]>("QEMU-ARGUMENTS") { Arity = System.CommandLine.ArgumentArity.ZeroOrMore, Hidden = true });

    public static async Task<int> ExecuteAsync(ArgReader args)
    {
        string? image = args.String("--image");
        string? kernelPath = args.String("--kernel");
        string? initrdPath = args.String("--initrd");
        string? append = args.String("--append");
        int vcpus = GuestOptions.ReadVcpus(args);
        ulong memory = (ulong)(args.Long("--memory", 1, 1024) ?? (kernelPath is null ? 128 : 256)) << 20;
        var grpc = Endpoint("--grpc", args.String("--grpc") ?? $"127.0.0.1:{ServerOptions.DefaultPort}");
        var gdbText = args.String("--gdb");
        var gdb = gdbText is null ? null : Endpoint("--gdb", gdbText);
        if (gdb is not null) InlineSocketCompletions.Enable(); // before the first socket: each gdb packet then skips a thread hop
        bool json = args.Flag("--log-json");
        bool verbose = args.Flag("--verbose");
        var labels = Labels(args.All("--label"));
        bool cluster = args.Flag("--cluster");
        string? nodeName = args.String("--node-name");
        int clusterPort = (int)(args.Long("--cluster-port", 0, 65535) ?? 0);
        var seeds = args.All("--seed");
        string? qemuGdb = args.String("--qemu-gdb");
        string? qemuQmp = args.String("--qemu-qmp");
        bool qemuLaunch = args.Flag("--qemu");
        string? tokenFile = args.String("--token-file");
        bool noAuth = args.Flag("--no-auth");
        var imageDirs = args.All("--image-dir");
        bool clientsMayLaunchQemu = args.Flag("--allow-qemu-launch");
        var metricsText = args.String("--metrics");
        var metrics = metricsText is null ? null : Endpoint("--metrics", metricsText);
        if (noAuth && tokenFile is not null) throw new UsageException("--no-auth turns the token off: give --token-file or --no-auth, not both");
        foreach (var dir in imageDirs)
            if (!Directory.Exists(dir)) throw new UsageException($"--image-dir {dir}: no such directory");
        if (qemuLaunch && args.Rest.Count == 0) throw new UsageException("--qemu needs QEMU's arguments after a bare --: serve --qemu -- -M pseries … -kernel vmlinux");
        if (!qemuLaunch && args.Rest.Count > 0) throw new UsageException($"arguments after -- are QEMU's and need --qemu: '{args.Rest[0]}'");
        if ((qemuGdb ?? qemuQmp) is not null && qemuLaunch) throw new UsageException("give either --qemu-gdb/--qemu-qmp (attach to a running QEMU) or --qemu -- ARGS (start one, with a QMP socket of its own), not both");
        if ((qemuGdb is not null || qemuQmp is not null || qemuLaunch) && (image ?? kernelPath) is not null) throw new UsageException("--image and --kernel are for the simulated machine: a QEMU VM's image is QEMU's");
        if (kernelPath is not null && image is not null) throw new UsageException("--kernel and --image exclude each other");
        if (kernelPath is null && (initrdPath ?? append) is not null) throw new UsageException("--initrd and --append need --kernel");
        if (qemuGdb is not null)
        {
            try { Backends.Qemu.GdbStubConnection.Parse(qemuGdb); }
            catch (ArgumentException e) { throw new UsageException($"--qemu-gdb: {e.Message}"); }
        }
        if (qemuQmp is not null)
        {
            try { Backends.Qemu.GdbStubConnection.Parse(qemuQmp, "QMP"); }
            catch (ArgumentException e) { throw new UsageException($"--qemu-qmp: {e.Message}"); }
        }
        var qemu = (qemuGdb ?? qemuQmp) is not null ? new QemuSource(qemuGdb, null, qemuQmp) : qemuLaunch ? new QemuSource(null, args.Rest) : null;
        if (!cluster && (nodeName is not null || seeds.Count > 0 || clusterPort != 0))
            throw new UsageException("--node-name, --seed and --cluster-port need --cluster");
        if (cluster && nodeName is null) throw new UsageException("--cluster needs --node-name NAME (e.g. a, b, host-12)");
        var clusterOptions = cluster ? new ClusterOptions(nodeName!, clusterPort, seeds) : null;
        try { clusterOptions?.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        var options = new ServerOptions
        {
            Grpc = grpc, Gdb = gdb, ImagePath = image, Qemu = qemu,
            Kernel = kernelPath is null ? null : new LinuxKernelImage(kernelPath, initrdPath, append), Vcpus = vcpus, MemorySize = memory, JsonLogs = json,
            InitialVmLabels = labels, Cluster = clusterOptions,
            Metrics = metrics, RequireToken = !noAuth, TokenFile = tokenFile, ImageDirectories = imageDirs, ClientsMayLaunchQemu = clientsMayLaunchQemu,
            LogLevel = verbose ? LogEventLevel.Debug : LogEventLevel.Information,
        };
        RunningServer server;
        try
        {
            server = await ServerHost.StartAsync(options);
        }
        catch (ServerStartException e)
        {
            Console.Error.WriteLine($"actorstep: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C or SIGTERM while starting: what had started is stopped again; that is a clean stop, not a failure.
            Console.Error.WriteLine("actorstep: stopped (Ctrl-C or SIGTERM) before the server had started");
            return 0;
        }

        await using (server)
        {
            var vm = server.InitialVm!;
            string hostPort = $"{server.Address.Host}:{server.Address.Port}";
            string grpcurl = server.TokenFile is { } file ? $"grpcurl -plaintext -H \"authorization: Bearer $(cat {file})\"" : "grpcurl -plaintext";
            string access = server.TokenFile is { } f
                ? $"API token in {f} (readable by you only): every call but health sends 'authorization: Bearer TOKEN'; actorstep gdb finds it"
                : "no API token (--no-auth): every local user can use this API";
            var images = server.Services.GetRequiredService<Access.ApiAccess>().Images;
            Console.Out.WriteLine($"""
                ActorStep gRPC API on {server.Address.GetLeftPart(UriPartial.Authority)} (HTTP/2 without TLS, loopback only; health and reflection on)
                {access}
                Images a client names are read from {string.Join(", ", images.Directories)}{(clientsMayLaunchQemu ? "; clients may start a QEMU (--allow-qemu-launch)" : "")}
                VM {vm.VmId}: {vm.Image}, {vm.Vcpus} vcpus, {vm.MemorySize >> 20} MiB, {vm.Machine.Capabilities.FlavourName}, halted at {(qemu is null ? "its entry " : "")}0x{vm.Entry:x}
                Try:
                  {grpcurl} {hostPort} list
                  {grpcurl} -d '{"{"}"vm_id":"{vm.VmId}"{"}"}' {hostPort} actorstep.v1.Vms/GetVm
                  {grpcurl} -d '{"{"}"vm_id":"{vm.VmId}","vcpu":0{"}"}' {hostPort} actorstep.v1.RunControl/Step
                  {grpcurl} -d '{"{"}"vm_id":"{vm.VmId}"{"}"}' {hostPort} actorstep.v1.Events/StreamEvents
                """);
            if (server.MetricsAddress is { } scrape)
                Console.Out.WriteLine($"Metrics for Prometheus on {scrape}{(server.Token is null ? "" : " (the same token: authorization.credentials_file)")}");
            if (server.ClusterAddress is { } address)
                Console.Out.WriteLine($"Cluster node {nodeName} at {address}; seeds: {(seeds.Count == 0 ? "none (a new cluster)" : string.Join(", ", seeds))}. Any node routes calls to any VM; Fleet/* calls act on every node's VMs.");
            GdbBridge? bridge = null;
            if (gdb is not null)
            {
                try
                {
                    // In-process: the bridge calls the server's router directly (no HTTP/2 per step); `actorstep gdb` is the remote one.
                    bridge = await server.StartGdbBridgeAsync(vm.VmId, gdb,
                        server.Services.GetRequiredService<ILoggerFactory>().CreateLogger("gdb"), server.Stopping);
                    Console.Out.WriteLine($"gdb bridge for VM {vm.VmId} on {bridge.Endpoint}; connect with:\n  {bridge.ConnectHint}");
                }
                catch (Exception e) when (e is OperationCanceledException or GdbBridgeException && server.Stopping.IsCancellationRequested)
                {
                    // Stopped while the bridge started: the server stops below as it would have anyway.
                }
                catch (GdbBridgeException e)
                {
                    Console.Error.WriteLine($"actorstep: {e.Message}");
                    return 1;
                }
            }
            // The bridge goes after the server: the server's stop destroys the VM with every breakpoint (gdb's too) and ends the
            // bridge's stream with a status, so that the bridge's own cleanup has nothing left to do and cannot hold the exit up.
            await using (bridge)
            {
                Console.Out.WriteLine("Ctrl-C or SIGTERM stops the server.");
                await server.WaitForShutdownAsync();
            }
        }
        return 0;
    }

    /// <summary>--label k=v options as labels (of the VM created at start).</summary>
    public static IReadOnlyDictionary<string, string> Labels(IEnumerable<string> pairs)
    {
        var labels = new Dictionary<string, string>();
        foreach (var pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0 || eq == pair.Length - 1) throw new UsageException($"--label wants KEY=VALUE, not '{pair}'");
            labels[pair[..eq]] = pair[(eq + 1)..];
        }
        return labels;
    }

    /// <summary>HOST:PORT with a loopback host (127.0.0.1, [::1] or localhost); port 0 picks a free one.</summary>
    public static IPEndPoint Endpoint(string option, string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 0 or > 65535)
            throw new UsageException($"{option} wants HOST:PORT (e.g. 127.0.0.1:50051), not '{text}'");
        string host = text[..colon].Trim('[', ']');
        IPAddress address = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var a) ? a
            : throw new UsageException($"{option}: '{host}' is not an IP address; use 127.0.0.1");
        if (!IPAddress.IsLoopback(address))
            throw new UsageException($"{option}: ActorStep listens on loopback only (127.0.0.1 or [::1]), not {address}; reach it from another machine through an SSH tunnel");
        return new IPEndPoint(address, port);
    }
}
