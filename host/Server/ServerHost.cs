using ActorStep.Actors.Fleet;
using ActorStep.Machine;
using ActorStep.Actors.Node;
using ActorStep.Host.Fleet;
using ActorStep.Host.Services;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
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
    public static async Task<RunningServer> StartAsync(ServerOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.ConfigureKestrel(k => k.Listen(options.Grpc, l => l.Protocols = HttpProtocols.Http2));
        if (!options.HandleSignals) builder.Services.AddSingleton<IHostLifetime, InProcessLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));

        builder.Services.AddSerilog((_, lc) =>
        {
            lc.MinimumLevel.Is(options.LogLevel)
                .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
                .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
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
                akka.AddHocon(FleetConfig.Hocon("127.0.0.1", cluster.Port, cluster.Seeds, cluster.NodeName), HoconAddMode.Prepend);
                akka.AddActorStepClusterActors(cluster.NodeName, new VmManagerOptions(options.Coordinator, Backends: [SimulatedBackend.Instance]));
            }
            else akka.AddActorStepActors(new VmManagerOptions(options.Coordinator, Backends: [SimulatedBackend.Instance]));
        });
        if (options.Cluster is not null)
        {
            FleetContract.Register();
            builder.Services.AddSingleton<FleetNode>();
        }

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ActorStepBackend>();
        builder.Services.AddSingleton<VmApi>();
        builder.Services.AddSingleton<VmRouter>();
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<CallLoggingInterceptor>();
            o.Interceptors.Add<DeadlineInterceptor>(); // inside the logging one, so that a refused late call is logged
            o.MaxReceiveMessageSize = 2 << 20;
            o.MaxSendMessageSize = 2 << 20;
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks()
            .AddCheck<VmManagerHealthCheck>("vm-manager");

        var app = builder.Build();
        app.MapGrpcService<VmsService>();
        app.MapGrpcService<RunControlService>();
        app.MapGrpcService<RegistersService>();
        app.MapGrpcService<MemoryService>();
        app.MapGrpcService<BreakpointsService>();
        app.MapGrpcService<EventsService>();
        app.MapGrpcService<FleetService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();

        var backend = app.Services.GetRequiredService<ActorStepBackend>();
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        // Before Kestrel drains its requests: destroy every VM, so that no breakpoint stays in a guest and every
        // resume and event stream in flight ends with a status.
        lifetime.ApplicationStopping.Register(() => backend.DestroyAllVms(TimeSpan.FromSeconds(10)));

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new ServerStartException($"cannot listen on {options.Grpc}: {e.Message}", e);
        }

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var server = new RunningServer(app, new Uri(address.Replace("[::]", "127.0.0.1")), options);
        if (app.Services.GetService<FleetNode>() is { } fleet)
        {
            var system = app.Services.GetRequiredService<ActorSystem>();
            system.ActorOf(FleetEndpoint.Props(app.Services.GetRequiredService<VmApi>()), FleetEndpoint.Name);
            fleet.Start();
            // With no seeds this node starts a cluster of its own, which others may join.
            if (options.Cluster!.Seeds.Count == 0) Akka.Cluster.Cluster.Get(system).Join(Akka.Cluster.Cluster.Get(system).SelfAddress);
            server.ClusterAddress = fleet.SelfAddress;
        }
        if (options.CreateInitialVm)
        {
            var reply = await (await backend.ManagerAsync(cancellationToken)).Ask<object>(new VmManagerProtocol.CreateVm(new VmSpec(
                options.ImagePath, options.ImagePath is null ? "demo" : null, options.Vcpus, options.MemorySize, Labels: options.InitialVmLabels)),
                TimeSpan.FromSeconds(30), cancellationToken);
            if (reply is not VmManagerProtocol.VmCreated created)
            {
                await server.DisposeAsync();
                throw new ServerStartException(reply is Actors.Vm.VmProtocol.Failed f ? f.Message : $"cannot create the VM: {reply}");
            }
            server.InitialVm = created.Vm;
        }
        return server;
    }

    /// <summary>A host lifetime that ignores console signals: the owner of an in-process server stops it.</summary>
    private sealed class InProcessLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>A started server: its address, its initial VM, and how to wait for or cause its end.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    internal RunningServer(WebApplication app, Uri address, ServerOptions options)
    {
        _app = app;
        Address = address;
        Options = options;
    }

    /// <summary>The bound gRPC address, e.g. <c>http://127.0.0.1:50051</c>.</summary>
    public Uri Address { get; }

    public ServerOptions Options { get; }

    /// <summary>The VM created at start (null when <see cref="ServerOptions.CreateInitialVm"/> is false).</summary>
    public VmInfo? InitialVm { get; internal set; }

    public IServiceProvider Services => _app.Services;

    /// <summary>This node's Akka address in the cluster (null without <see cref="ServerOptions.Cluster"/>).</summary>
    public string? ClusterAddress { get; internal set; }

    /// <summary>The node's VM manager actor.</summary>
    public IActorRef Manager => _app.Services.GetRequiredService<ActorStepBackend>().Manager;

    /// <summary>Completes when the server has stopped (Ctrl-C, SIGTERM or <see cref="StopAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
