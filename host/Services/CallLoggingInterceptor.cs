using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Serilog.Context;

namespace ActorStep.Host.Services;

/// <summary>Logs every call with its VM and vcpu ids as properties (VmId, Vcpu), its status and duration.</summary>
public sealed class CallLoggingInterceptor(ILogger<CallLoggingInterceptor> log) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        using var scope = Push(request);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await continuation(request, context);
            log.LogDebug("{Method} OK in {ElapsedMs:0.000} ms", context.Method, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return response;
        }
        catch (RpcException e)
        {
            log.LogInformation("{Method} {StatusCode}: {StatusDetail}", context.Method, e.StatusCode, e.Status.Detail);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var scope = Push(request);
        await LogStreamAsync(context, () => continuation(request, responseStream, context));
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        LogStreamAsync(context, () => continuation(requestStream, responseStream, context));

    private async Task LogStreamAsync(ServerCallContext context, Func<Task> run)
    {
        log.LogInformation("{Method} stream opened", context.Method);
        try
        {
            await run();
            log.LogInformation("{Method} stream ended", context.Method);
        }
        catch (RpcException e)
        {
            log.LogInformation("{Method} stream ended with {StatusCode}: {StatusDetail}", context.Method, e.StatusCode, e.Status.Detail);
            throw;
        }
    }

    /// <summary>The request's <c>vm_id</c> and <c>vcpu</c> fields, when it has them, as log properties of the call.</summary>
    private static IDisposable? Push(object request)
    {
        if (request is not IMessage m) return null;
        var fields = m.Descriptor.Fields;
        var vmId = fields.InFieldNumberOrder().FirstOrDefault(f => f.Name == "vm_id")?.Accessor.GetValue(m) as string;
        var vcpu = fields.InFieldNumberOrder().FirstOrDefault(f => f.Name == "vcpu")?.Accessor.GetValue(m);
        if (string.IsNullOrEmpty(vmId)) return null;
        var a = LogContext.PushProperty("VmId", vmId);
        var b = vcpu is null ? null : LogContext.PushProperty("Vcpu", vcpu);
        return new Both(a, b);
    }

    private sealed class Both(IDisposable a, IDisposable? b) : IDisposable
    {
        public void Dispose() { b?.Dispose(); a.Dispose(); }
    }
}
