using ActorStep.Actors.Fleet;
using ActorStep.Machine;
using ActorStep.Backends.Qemu;
using ActorStep.Hypervisor;
using ActorStep.Actors.Node;
using ActorStep.Host.Access;
using ActorStep.Host.Fleet;
using ActorStep.Host.Metrics;
using ActorStep.Host.Services;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace ActorStep.Host.Server;

/// <summary>A server that could not start (bad image, port in use); the message says why.</summary>
public sealed class ServerStartException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The ActorStep server: Kestrel (HTTP/2 cleartext on loopback) with the gRPC services, health and reflection,
/// over an Akka.NET actor system (Akka.Hosting) that runs the VMs. Used by <c>actorstep serve</c> and in-process by tests.
/// </summary>
public static class ServerHost
{
    /// <summary>The backends every node offers: the simulated machine and QEMU (attach to a gdbstub, or start a QEMU).</summary>
    private static readonly IBackendFactory[] Backends = [SimulatedBackend.Instance, new QemuBackend()];

    /// <summary>
    /// How long Kestrel may wait for calls and connections to end at shutdown before it resets them. Only a backstop: by the time
    /// Kestrel stops, every stream has ended and every VM is gone (<see cref="ServerShutdown"/>), so nothing is left to wait for —
    /// unless a client has stopped reading a stream, or does not close its connection after GOAWAY (<see cref="LingeringClose"/>).
    /// </summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Starts a server. With <see cref="ServerOptions.HandleSignals"/>, Ctrl-C and SIGTERM stop it from now on: one that arrives
    /// while it starts ends the start with an <see cref="OperationCanceledException"/> (as <paramref name="cancellationToken"/>
    /// does), after what had started is stopped again.
    /// </summary>
    /// <exception cref="ServerStartException">it cannot start (port in use, bad image)</exception>
    public static async Task<RunningServer> StartAsync(ServerOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var signals = options.HandleSignals ? ShutdownSignals.TakeEarly() ?? new ShutdownSignals() : null;
        try
        {
            return await StartAsync(options, signals, cancellationToken);
        }
        catch
        {
            signals?.Dispose();
            throw;
        }
    }

    private static async Task<RunningServer> StartAsync(ServerOptions options, ShutdownSignals? signals, CancellationToken cancellationToken)
    {
        using var starting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, signals?.Requested ?? CancellationToken.None);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        CancellationToken stopping = default; // the app's, once built
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Grpc, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                l.Use(LingeringClose.Middleware(() => stopping));
            });
            // HTTP/1.1 only, as Prometheus scrapes: the gRPC listener is HTTP/2 only, so the protocol tells the two apart.
            if (options.Metrics is { } metrics) k.Listen(metrics, l => l.Protocols = HttpProtocols.Http1);
        });
        // Signals are ShutdownSignals' (the console lifetime would only catch them once started, and abort the start with an exception).
        builder.Services.AddSingleton<IHostLifetime, OwnerStopsLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);

        builder.Services.AddSerilog((_, lc) =>
        {
            lc.MinimumLevel.Is(options.LogLevel)
                .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
                .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
                // A start cancelled by Ctrl-C or SIGTERM is no failure: the host would log it as one, with a stack trace.
                .Filter.ByExcluding(e => e.Exception is OperationCanceledException && e.Level >= LogEventLevel.Error
                    && e.Properties.TryGetValue("SourceContext", out var source) && source.ToString().StartsWith("\"Microsoft.Extensions.Hosting", StringComparison.Ordinal))
                .Enrich.FromLogContext();
            if (options.JsonLogs) lc.WriteTo.Console(new RenderedCompactJsonFormatter());
            else lc.WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
        }, preserveStaticLogger: true);

        builder.Services.AddAkka("actorstep", (akka, _) =>
        {
            akka.ConfigureLoggers(l =>
            {
                l.LogLevel = options.LogLevel <= LogEventLevel.Debug ? Akka.Event.LogLevel.DebugLevel : Akka.Event.LogLevel.InfoLevel;
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
            // The host drives shutdown (VMs first, then the actor system); Akka's own process-exit hook would race it.
            akka.AddHocon("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off", HoconAddMode.Prepend);
            if (options.Cluster is { } cluster)
            {
                akka.AddHocon(FleetConfig.Hocon("127.0.0.1", cluster.Port, cluster.Seeds, cluster.NodeName, servesApi: true), HoconAddMode.Prepend);
                akka.AddActorStepClusterActors(cluster.NodeName, new VmManagerOptions(options.Coordinator, Backends: Backends));
                // Part of the actor system's start, so that a node whose actor system runs has joined: one stopped while it starts
                // has either no actor system yet or a cluster to leave (CoordinatedShutdown of a node that never joined waits out
                // its cluster phases' timeouts).
                akka.WithActors((system, _, resolver) =>
                {
                    system.ActorOf(FleetEndpoint.Props(resolver.GetService<VmApi>()), FleetEndpoint.Name);
                    resolver.GetService<FleetNode>().Start();
                    // With no seeds this node starts a cluster of its own, which others may join.
                    if (cluster.Seeds.Count == 0) Akka.Cluster.Cluster.Get(system).Join(Akka.Cluster.Cluster.Get(system).SelfAddress);
                });
            }
            else akka.AddActorStepActors(new VmManagerOptions(options.Coordinator, Backends: Backends));
        });
        if (options.Cluster is not null)
        {
            FleetContract.Register();
            builder.Services.AddSingleton<FleetNode>();
        }

        builder.Services.AddSingleton(options);
        ImageDirectories images;
        try { images = new ImageDirectories(options.ImageDirectories is { Count: > 0 } dirs ? dirs : [Environment.CurrentDirectory]); }
        catch (ArgumentException e) { throw new ServerStartException(e.Message, e); }
        var token = options.RequireToken ? ApiToken.Generate() : null;
        builder.Services.AddSingleton(new ApiAccess(token, images, options.ClientsMayLaunchQemu));
        builder.Services.AddSingleton<ActorStepBackend>();
        builder.Services.AddSingleton<VmApi>();
        builder.Services.AddSingleton<VmRouter>();
        builder.Services.AddHostedService<ServerShutdown>();
        builder.Services.AddSingleton<ServerMetrics>();
        if (options.Metrics is not null)
            builder.Services.AddOpenTelemetry().WithMetrics(m => m
                .AddMeter(ServerMetrics.MeterName)
                .AddAspNetCoreInstrumentation() // gRPC calls: http.server.request.duration by route (service/method) and status
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<CallLoggingInterceptor>();
            o.Interceptors.Add<TokenInterceptor>(); // inside the logging one, so that a refused call is logged
            o.Interceptors.Add<ShutdownInterceptor>();
            o.Interceptors.Add<DeadlineInterceptor>(); // inside the logging one, so that a refused late call is logged
            o.MaxReceiveMessageSize = 2 << 20;
            o.MaxSendMessageSize = 2 << 20;
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks()
            .AddCheck<VmManagerHealthCheck>("vm-manager");

        var app = builder.Build();
        stopping = app.Lifetime.ApplicationStopping;
        if (options.Metrics is not null) UseMetricsEndpoint(app, token);
        app.MapGrpcService<VmsService>();
        app.MapGrpcService<RunControlService>();
        app.MapGrpcService<RegistersService>();
        app.MapGrpcService<MemoryService>();
        app.MapGrpcService<BreakpointsService>();
        app.MapGrpcService<EventsService>();
        app.MapGrpcService<FleetService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();

        try
        {
            await app.StartAsync(starting.Token);
        }
        catch (Exception e)
        {
            await AbandonAsync(app);
            if (e is OperationCanceledException && starting.IsCancellationRequested) throw;
            throw new ServerStartException(e is IOException ? $"cannot listen on {options.Grpc}: {e.Message}" : $"cannot start: {e.Message}", e);
        }

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        var server = new RunningServer(app, new Uri(addresses[0].Replace("[::]", "127.0.0.1")), options, signals);
        if (options.Metrics is not null) server.MetricsAddress = new Uri(new Uri(addresses[1].Replace("[::]", "127.0.0.1")), "/metrics");
        if (token is not null)
        {
            string file = options.TokenFile ?? ApiToken.DefaultFile(server.Address.Port);
            try { token.WriteTo(file); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await server.StopAsync();
                await app.DisposeAsync();
                throw new ServerStartException($"cannot write the API token to {file}: {e.Message}", e);
            }
            server.Token = token;
            server.TokenFile = Path.GetFullPath(file);
        }
        var backend = app.Services.GetRequiredService<ActorStepBackend>();
        server.ClusterAddress = app.Services.GetService<FleetNode>()?.SelfAddress;
        try
        {
            if (options.CreateInitialVm)
            {
                var spec = options.Qemu is { } qemu
                    ? new VmSpec(null, null, Labels: options.InitialVmLabels, Backend: BackendKind.Qemu, Qemu: qemu)
                    : options.Kernel is { } kernel
                    ? new VmSpec(null, null, options.Vcpus, options.MemorySize, Labels: options.InitialVmLabels, Linux: kernel)
                    : new VmSpec(options.ImagePath, options.ImagePath is null ? "demo" : null, options.Vcpus, options.MemorySize, Labels: options.InitialVmLabels);
                var reply = await (await backend.ManagerAsync(starting.Token)).Ask<object>(new VmManagerProtocol.CreateVm(spec),
                    TimeSpan.FromSeconds(60), starting.Token);
                if (reply is not VmManagerProtocol.VmCreated created)
                    throw new ServerStartException(reply is Actors.Vm.VmProtocol.Failed f ? f.Message : $"cannot create the VM: {reply}");
                server.InitialVm = created.Vm;
            }
        }
        catch (Exception e)
        {
            await server.StopAsync();
            await app.DisposeAsync();
            if (e is ServerStartException || (e is OperationCanceledException && starting.IsCancellationRequested)) throw;
            throw new ServerStartException($"cannot create the VM: {e.Message}", e);
        }
        // From now on a signal stops the server (its owner waits in WaitForShutdownAsync).
        if (signals is not null) server.StopOn(signals.Requested);
        return server;
    }

    /// <summary>
    /// <c>/metrics</c> on the metrics listener (the only HTTP/1.1 one): the token as for the API (401 without it), then the
    /// node's VMs described for the gauges, then OpenTelemetry's Prometheus exporter. Anything else there is 404.
    /// </summary>
    private static void UseMetricsEndpoint(WebApplication app, ApiToken? token)
    {
        static bool OnMetricsListener(HttpContext c) => HttpProtocol.IsHttp11(c.Request.Protocol);
        app.Use(async (context, next) =>
        {
            if (!OnMetricsListener(context)) { await next(context); return; }
            if (context.Request.Path != "/metrics") { context.Response.StatusCode = StatusCodes.Status404NotFound; return; }
            if (token is not null && !token.Accepts(context.Request.Headers.Authorization.ToString() is { Length: > 0 } h ? h : null))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await context.Response.WriteAsync("the metrics need the server's token: 'Authorization: Bearer TOKEN' (Prometheus: authorization.credentials_file)\n");
                return;
            }
            var services = context.RequestServices;
            await services.GetRequiredService<ServerMetrics>().RefreshAsync(services.GetRequiredService<ActorStepBackend>(),
                services.GetRequiredService<VmApi>(), services.GetRequiredService<ActorSystem>(), context.RequestAborted);
            await next(context);
        });
        app.UseOpenTelemetryPrometheusScrapingEndpoint(OnMetricsListener);
    }

    /// <summary>Stops and lets go of a host whose start failed or was cancelled part way: whatever had started stops (the actor
    /// system only if it had started: nothing creates it before), nothing throws.</summary>
    private static async Task AbandonAsync(WebApplication app)
    {
        try { await app.StopAsync(); } catch (Exception) { } // it failed already; the start's exception is the one to report
        await app.DisposeAsync();
    }

    /// <summary>A host lifetime that ignores console signals: the owner stops the server (on <see cref="ShutdownSignals"/> for the CLI).</summary>
    private sealed class OwnerStopsLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>A started server: its address, its initial VM, and how to wait for or cause its end.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ShutdownSignals? _signals;
    private readonly object _gate = new();
    private Task? _stop;
    private CancellationTokenRegistration _stopOn;

    internal RunningServer(WebApplication app, Uri address, ServerOptions options, ShutdownSignals? signals)
    {
        _app = app;
        Address = address;
        Options = options;
        _signals = signals;
    }

    /// <summary>The bound gRPC address, e.g. <c>http://127.0.0.1:50051</c>.</summary>
    public Uri Address { get; }

    public ServerOptions Options { get; }

    /// <summary>The VM created at start (null when <see cref="ServerOptions.CreateInitialVm"/> is false).</summary>
    public VmInfo? InitialVm { get; internal set; }

    public IServiceProvider Services => _app.Services;

    /// <summary>This node's Akka address in the cluster (null without <see cref="ServerOptions.Cluster"/>).</summary>
    public string? ClusterAddress { get; internal set; }

    /// <summary>The secret every call but health must carry (null with <see cref="ServerOptions.RequireToken"/> false).</summary>
    public ApiToken? Token { get; internal set; }

    /// <summary>The file the token was written to, removed when the server stops.</summary>
    public string? TokenFile { get; internal set; }

    /// <summary>Where Prometheus scrapes this node (<c>http://127.0.0.1:PORT/metrics</c>; null without <see cref="ServerOptions.Metrics"/>).</summary>
    public Uri? MetricsAddress { get; internal set; }

    /// <summary>The node's VM manager actor.</summary>
    public IActorRef Manager => _app.Services.GetRequiredService<ActorStepBackend>().Manager;

    /// <summary>Cancelled once the server begins to stop (a signal, <see cref="StopAsync"/>, the actor system's end).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>A gdb bridge for <paramref name="vmId"/> inside this server (what <c>serve --gdb</c> starts): the calls that name
    /// the VM go straight to the router, with no HTTP/2 per step; the session and its policies are the remote bridge's.</summary>
    public Task<Gdb.GdbBridge> StartGdbBridgeAsync(string vmId, System.Net.IPEndPoint listen, Microsoft.Extensions.Logging.ILogger logger,
        CancellationToken ct = default) =>
        Gdb.GdbBridge.StartInProcessAsync(_app.Services.GetRequiredService<VmRouter>(), Address, Token, vmId, listen, logger, ct);

    /// <summary>Asks the server to stop when <paramref name="token"/> is cancelled; <see cref="WaitForShutdownAsync"/> carries it out.</summary>
    internal void StopOn(CancellationToken token) => _stopOn = token.Register(() => _app.Lifetime.StopApplication());

    /// <summary>Completes when the server has stopped, after it was asked to (Ctrl-C, SIGTERM, <see cref="StopAsync"/>, or
    /// <paramref name="cancellationToken"/>).</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken = default)
    {
        using (cancellationToken.Register(() => _app.Lifetime.StopApplication()))
        {
            var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (Stopping.Register(() => stopping.TrySetResult())) await stopping.Task;
        }
        await StopAsync();
    }

    /// <summary>Stops the server (once; later calls wait for the same stop): see <see cref="ServerShutdown"/> for the order.</summary>
    public Task StopAsync()
    {
        lock (_gate) return _stop ??= StopOnceAsync();
    }

    private async Task StopOnceAsync()
    {
        try { await _app.StopAsync(); }
        finally { ForgetToken(); }
    }

    /// <summary>Removes the token file, if it still holds this server's token (nothing else is ours to delete).</summary>
    private void ForgetToken()
    {
        if (TokenFile is not { } file || Token is not { } token) return;
        try
        {
            if (File.Exists(file) && ApiToken.ReadFrom(file).Value == token.Value) File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _stopOn.DisposeAsync();
        await _app.DisposeAsync();
        _signals?.Dispose();
    }
}
