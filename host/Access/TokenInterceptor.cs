using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ActorStep.Host.Access;

/// <summary>
/// Every call but the health service's must carry the server's token (<see cref="ApiToken"/>): without it the call ends with
/// UNAUTHENTICATED before any handler runs. Health stays open so that a supervisor can probe the server without the secret.
/// </summary>
public sealed class TokenInterceptor(ApiAccess access) : Interceptor
{
    private const string OpenService = "/grpc.health.v1.Health/";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (access.Token is not { } token || context.Method.StartsWith(OpenService, StringComparison.Ordinal)) return;
        string? header = context.RequestHeaders.GetValue(ApiToken.Header);
        if (token.Accepts(header)) return;
        throw new RpcException(new Status(StatusCode.Unauthenticated, header is null
            ? "this server requires its token: send the header 'authorization: Bearer TOKEN' with the token from the file the server named at start (--token-file)"
            : "the token is not this server's: send 'authorization: Bearer TOKEN' with the token from the file the server named at start (--token-file)"));
    }
}
