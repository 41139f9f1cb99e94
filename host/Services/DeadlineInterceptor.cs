using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ActorStep.Host.Services;

/// <summary>
/// A call whose deadline has passed by the time it reaches its handler (it arrived with a grpc-timeout already spent, or
/// waited that long) ends with DEADLINE_EXCEEDED and does nothing: without this, ASP.NET Core's deadline timer races the
/// handler, and a step or a write could run and then be reported as failed.
/// </summary>
public sealed class DeadlineInterceptor : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfPast(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfPast(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfPast(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ThrowIfPast(context);
        return continuation(requestStream, responseStream, context);
    }

    private static void ThrowIfPast(ServerCallContext context) => CallScope.From(context).ThrowIfPast();
}
