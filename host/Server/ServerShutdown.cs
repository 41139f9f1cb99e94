using ActorStep.Host.Services;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ActorStep.Host.Server;

/// <summary>
/// The order of a server's end (Ctrl-C, SIGTERM, <see cref="RunningServer.StopAsync"/>), so that it takes a second at most (most
/// of it a cluster node's leave) and every call ends with a status of the server's:
/// <list type="number">
/// <item>ApplicationStopping: new calls are refused (<see cref="ShutdownInterceptor"/>), event streams and ResumeStreams that wait
/// end with UNAVAILABLE "the server is shutting down";</item>
/// <item>every VM is destroyed (breakpoints removed), which answers the resumes in flight (a ResumeStream with one then ends with
/// UNAVAILABLE too);</item>
/// <item>Kestrel stops: it finds no call left to wait for, sends GOAWAY, and each connection ends once its client has closed it
/// (<see cref="LingeringClose"/>); Kestrel gives up on a client after <see cref="ServerHost.ShutdownTimeout"/>;</item>
/// <item>the actor system stops last (Akka's CoordinatedShutdown; a cluster node leaves the cluster), as calls need it to the end.</item>
/// </list>
/// Steps 1 and 2 run here, before any hosted service stops; the host itself signals ApplicationStopping only after this.
/// </summary>
/// <remarks>Registered after Akka's hosted service, so it starts once the actor system has: a server stopped before then has no
/// actor system and no VM, and none is created here just to be stopped.</remarks>
internal sealed class ServerShutdown(IServiceProvider services, IHostApplicationLifetime lifetime) : IHostedLifecycleService
{
    /// <summary>Coordinators stop after what they were doing (a slice); this only bounds a VM that does not.</summary>
    private static readonly TimeSpan DestroyTimeout = TimeSpan.FromSeconds(3);

    private volatile bool _actorsStarted;
    private int _stopping;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1) return;
        lifetime.StopApplication();
        if (_actorsStarted) await services.GetRequiredService<ActorStepBackend>().DestroyAllVmsAsync(DestroyTimeout);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _actorsStarted = true;
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Once the server is stopping, a new call is refused with UNAVAILABLE "the server is shutting down" and does nothing.</summary>
public sealed class ShutdownInterceptor(ActorStepBackend backend) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfStopping();
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfStopping();
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfStopping();
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfStopping();
        return continuation(requestStream, responseStream, context);
    }

    private void ThrowIfStopping()
    {
        if (backend.Stopping.IsCancellationRequested) throw ActorStepBackend.ShuttingDown();
    }
}
