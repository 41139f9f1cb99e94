using ActorStep.Actors.Node;
using ActorStep.Actors.Vm;
using ActorStep.Host.Server;
using Akka.Actor;
using Akka.Hosting;
using Grpc.Core;
using Status = Grpc.Core.Status;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using static ActorStep.Actors.Vm.VmProtocol;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Host.Services;

/// <summary>
/// The edge between gRPC and the actors: asks the VM manager, turns <see cref="Failed"/> replies, cancellation and
/// deadlines into gRPC statuses. The only place that Asks.
/// </summary>
public sealed class ActorStepBackend(IRequiredActor<VmManager> manager, IReadOnlyActorRegistry registry, IHostApplicationLifetime lifetime,
    ServerOptions options)
{
    /// <summary>Requests that do not run the guest answer within a slice; this only bounds a lost reply.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a cancelled resume may take to halt before the call gives up waiting.</summary>
    private static readonly TimeSpan HaltGrace = TimeSpan.FromSeconds(10);

    private IActorRef? _manager;

    public ServerOptions Options => options;

    /// <summary>Cancelled when the server begins to stop: new calls are refused, streams end (see <see cref="Server.ServerShutdown"/>).</summary>
    public CancellationToken Stopping => lifetime.ApplicationStopping;

    /// <summary>How every call and stream the server ends at shutdown ends.</summary>
    public static RpcException ShuttingDown() => new(new Status(StatusCode.Unavailable, "the server is shutting down"));

    public IActorRef Manager => _manager ??= manager.GetAsync().GetAwaiter().GetResult();

    public async Task<IActorRef> ManagerAsync(CancellationToken ct) => _manager ??= await manager.GetAsync(ct);

    /// <summary>Asks the manager; the reply must be a <typeparamref name="T"/>, anything else becomes a gRPC status.</summary>
    public async Task<T> AskAsync<T>(object message, CallScope call)
    {
        var m = await ManagerAsync(call.Cancellation);
        object reply;
        try
        {
            reply = await m.Ask<object>(message, RequestTimeout, call.Cancellation);
        }
        catch (OperationCanceledException) { throw Interrupted(call); }
        catch (AskTimeoutException) { throw new RpcException(new Status(StatusCode.Unavailable, "the VM did not answer in time")); }
        return reply is T t ? t : throw ToRpc(reply);
    }

    /// <summary>
    /// A resume (Resume, Step, Continue) runs until the VM stops. If the call is cancelled or its deadline passes first,
    /// the VM is halted and the call waits for the halt, so that nothing of the resume keeps running or stays in the guest.
    /// </summary>
    public async Task<Stopped> RunAsync(string vmId, object message, CallScope call)
    {
        var m = await ManagerAsync(call.Cancellation);
        var resume = m.Ask<object>(message, Timeout.InfiniteTimeSpan, CancellationToken.None);
        try
        {
            var reply = await resume.WaitAsync(call.Cancellation);
            return reply as Stopped ?? throw ToRpc(reply);
        }
        catch (OperationCanceledException)
        {
            if (!resume.IsCompleted)
            {
                m.Tell(new VmManagerProtocol.ToVm(vmId, new Halt()), ActorRefs.Nobody);
                try { await resume.WaitAsync(HaltGrace); } catch (TimeoutException) { }
            }
            throw Interrupted(call);
        }
    }

    public RpcException ToRpc(object reply)
    {
        if (Stopping.IsCancellationRequested) return ShuttingDown();
        return reply switch
        {
            Failed f => new RpcException(new Status(f.Code switch
            {
                FailureCode.NotFound => StatusCode.NotFound,
                FailureCode.InvalidArgument => StatusCode.InvalidArgument,
                FailureCode.FailedPrecondition => StatusCode.FailedPrecondition,
                FailureCode.Busy => StatusCode.FailedPrecondition,
                _ => StatusCode.Internal,
            }, f.Message)),
            VmManagerProtocol.AlreadyExists a => new RpcException(new Status(StatusCode.AlreadyExists, $"a VM named {Quote(a.VmId)} exists already")),
            _ => new RpcException(new Status(StatusCode.Internal, $"unexpected reply from the actors: {reply.GetType().Name}")),
        };
    }

    /// <summary>A call cut short: by the server's shutdown (a routed call's scope ends with it), or by its caller or deadline.</summary>
    private RpcException Interrupted(CallScope call) => Stopping.IsCancellationRequested ? ShuttingDown() : call.Cancelled();

    /// <summary>At shutdown: every VM is destroyed (breakpoints removed, resumes in flight answered). Without a manager (the actor
    /// system never started) there is no VM.</summary>
    public async Task DestroyAllVmsAsync(TimeSpan timeout)
    {
        if (!registry.TryGet<VmManager>(out var m)) return;
        try { await m.Ask<VmManagerProtocol.AllVmsDestroyed>(new VmManagerProtocol.DestroyAll(), timeout); }
        catch (Exception e) when (e is AskTimeoutException or OperationCanceledException) { }
    }
}

/// <summary>gRPC health: serving while the VM manager answers.</summary>
public sealed class VmManagerHealthCheck(ActorStepBackend backend) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var m = await backend.ManagerAsync(cancellationToken);
            var list = await m.Ask<VmManagerProtocol.VmList>(new VmManagerProtocol.ListVms(new Dictionary<string, string>()), TimeSpan.FromSeconds(5), cancellationToken);
            return HealthCheckResult.Healthy($"{list.Vms.Count} VM(s)");
        }
        catch (Exception e) when (e is AskTimeoutException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("the VM manager does not answer");
        }
    }
}
