using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ActorStep.Host.Services;

/// <summary>
/// An interceptor that decides, before any handler runs, whether a call may go on: <see cref="Admit"/> throws an
/// <see cref="RpcException"/> to end the call with its status, or returns to let it through. One rule for every kind of call
/// (unary, client-streaming, server-streaming, duplex), so no kind can slip past a check written for the others.
/// </summary>
public abstract class AdmissionInterceptor : Interceptor
{
    /// <summary>Throws an <see cref="RpcException"/> when the call must not reach its handler.</summary>
    protected abstract void Admit(ServerCallContext context);

    public sealed override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(request, context);
    }

    public sealed override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(requestStream, context);
    }

    public sealed override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(request, responseStream, context);
    }

    public sealed override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(requestStream, responseStream, context);
    }
}
