using System.Threading.Channels;
using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using ActorStep.Host.Services;
using Google.Protobuf;
using Grpc.Core;

namespace ActorStep.Host.Gdb;

/// <summary>
/// The server's own API as a gRPC <see cref="CallInvoker"/> that never leaves the process: a generated client built on it
/// (what <see cref="GrpcGdbTarget"/> uses) calls <see cref="VmRouter"/> directly, with the request and response objects
/// themselves — no HTTP/2, no serialization, no socket. The gdb bridge that <c>actorstep serve --gdb</c> starts for the
/// server's own VMs uses it, so that gdb's step round trip is the engine's, while the session, the codec and every policy
/// stay exactly those of a bridge that reaches a server over the network (<c>actorstep gdb --server …</c>).
/// <para>It offers the calls that name one VM (every <see cref="VmMethods"/> method, through the router: a VM on another
/// node of a cluster is reached as any gRPC call would reach it) and <c>RunControl.ResumeStream</c>, which behaves as the
/// service's (errors answered in-band; cancelling the call halts a VM mid-resume). Any other method goes to
/// <paramref name="fallback"/> (a channel to the server's own endpoint), or is UNIMPLEMENTED without one.
/// The API token is not asked: whoever holds this object is inside the server.</para>
/// </summary>
public sealed class InProcessCallInvoker(VmRouter router, CallInvoker? fallback = null) : CallInvoker
{
    private static readonly string ResumeStreamName = $"/{RunControl.Descriptor.FullName}/ResumeStream";

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options,
        TRequest request) =>
        AsyncUnaryCall(method, host, options, request).ResponseAsync.GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host,
        CallOptions options, TRequest request)
    {
        if (router.Api.Find(method.FullName) is null && fallback is not null) return fallback.AsyncUnaryCall(method, host, options, request);
        // Disposing the call cancels it, as a network call's would be. (No registration to dispose: it is not linked.)
        var disposed = new CancellationTokenSource();
        var response = UnaryAsync(method, options, request, disposed.Token);
        return new AsyncUnaryCall<TResponse>(response, Task.FromResult(Metadata.Empty), () => StatusOf(response), () => Metadata.Empty,
            disposed.Cancel);
    }

    private async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options, TRequest request,
        CancellationToken disposed)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, disposed);
        var ct = cancel.Token;
        var vmMethod = router.Api.Find(method.FullName)
                       ?? throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not offered in-process"));
        if (request is not IMessage message) throw new RpcException(new Status(StatusCode.Internal, $"{method.FullName}: not a protobuf request"));
        var scope = new CallScope(options.Deadline?.ToUniversalTime() ?? DateTime.MaxValue, ct);
        scope.ThrowIfPast();
        try
        {
            return (TResponse)await router.CallAsync(vmMethod, VmId(message), message, scope);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested || scope.Remaining == TimeSpan.Zero)
        {
            throw scope.Cancelled();
        }
    }

    /// <summary>The VM a request names (every VM method's request has <c>vm_id</c>).</summary>
    private static string VmId(IMessage request) =>
        request.Descriptor.FindFieldByName("vm_id")?.Accessor.GetValue(request) as string ?? "";

    private static Status StatusOf(Task task) =>
        task.Status switch
        {
            TaskStatus.RanToCompletion => Status.DefaultSuccess,
            TaskStatus.Faulted when task.Exception!.InnerException is RpcException e => e.Status,
            TaskStatus.Faulted => new Status(StatusCode.Unknown, task.Exception!.InnerException!.Message),
            TaskStatus.Canceled => Status.DefaultCancelled,
            _ => throw new InvalidOperationException("the call has not ended"),
        };

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method,
        string? host, CallOptions options, TRequest request) =>
        fallback?.AsyncServerStreamingCall(method, host, options, request)
        ?? throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not offered in-process"));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method,
        string? host, CallOptions options) =>
        fallback?.AsyncClientStreamingCall(method, host, options)
        ?? throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not offered in-process"));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method,
        string? host, CallOptions options)
    {
        if (method.FullName != ResumeStreamName && fallback is not null) return fallback.AsyncDuplexStreamingCall(method, host, options);
        if (method.FullName != ResumeStreamName)
            throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not offered in-process"));
        var stream = new ResumeStream(router, options.CancellationToken);
        return new AsyncDuplexStreamingCall<TRequest, TResponse>((IClientStreamWriter<TRequest>)(object)stream,
            (IAsyncStreamReader<TResponse>)(object)stream, Task.FromResult(Metadata.Empty), stream.GetStatus, () => Metadata.Empty, stream.Dispose);
    }

    /// <summary>
    /// RunControl.ResumeStream in-process: each request written runs as a Resume call (through the router) and its answer —
    /// the stop, or the error in-band — is the next response. One resume at a time, as the service runs them. Disposing the
    /// call (or cancelling its token) cancels a resume in flight, which halts the VM, and ends the stream.
    /// </summary>
    private sealed class ResumeStream : IClientStreamWriter<ResumeRequest>, IAsyncStreamReader<ResumeStreamResponse>, IDisposable
    {
        private readonly VmRouter _router;
        private readonly CancellationTokenSource _call;
        private readonly CancellationToken _token;
        private readonly Channel<Task<ResumeStreamResponse>> _answers = Channel.CreateUnbounded<Task<ResumeStreamResponse>>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private Task _previous = Task.CompletedTask;
        private Status? _status;

        public ResumeStream(VmRouter router, CancellationToken ct)
        {
            _router = router;
            // Linked to the caller's token (none for the gdb target's stream); cancelled, not disposed, when the call ends, so that
            // a resume still finishing sees a token it can use.
            _call = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _token = _call.Token;
        }

        public WriteOptions? WriteOptions { get; set; }

        public ResumeStreamResponse Current { get; private set; } = null!;

        public Task WriteAsync(ResumeRequest message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(ResumeRequest message, CancellationToken ct)
        {
            if (_call.IsCancellationRequested) throw new RpcException(Status.DefaultCancelled);
            if (_status is not null) throw new InvalidOperationException("the request stream is complete");
            // In order, as the service reads them: a request starts when the one before it has been answered.
            var previous = _previous;
            var answer = RunAfterAsync(previous, message);
            _previous = answer;
            _answers.Writer.TryWrite(answer);
            return Task.CompletedTask;
        }

        private async Task<ResumeStreamResponse> RunAfterAsync(Task previous, ResumeRequest request)
        {
            try { await previous; } catch { /* its own response carries it */ }
            try
            {
                return await RunControlService.AnswerAsync(_router, request, new CallScope(DateTime.MaxValue, _token));
            }
            catch (OperationCanceledException) when (_call.IsCancellationRequested)
            {
                throw new RpcException(Status.DefaultCancelled);
            }
        }

        public Task CompleteAsync()
        {
            _answers.Writer.TryComplete();
            return Task.CompletedTask;
        }

        public async Task<bool> MoveNext(CancellationToken ct)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(ct, _token);
            Task<ResumeStreamResponse> answer;
            try
            {
                if (!await _answers.Reader.WaitToReadAsync(both.Token) || !_answers.Reader.TryRead(out answer!))
                {
                    _status ??= Status.DefaultSuccess;
                    return false;
                }
                Current = await answer.WaitAsync(both.Token);
                return true;
            }
            catch (OperationCanceledException) when (_call.IsCancellationRequested)
            {
                _status ??= Status.DefaultCancelled;
                throw new RpcException(Status.DefaultCancelled);
            }
            catch (RpcException e)
            {
                _status ??= e.Status;
                throw;
            }
        }

        public Status GetStatus() => _status ?? throw new InvalidOperationException("the call has not ended");

        public void Dispose()
        {
            _status ??= Status.DefaultCancelled;
            _answers.Writer.TryComplete();
            _call.Cancel();
        }
    }
}
