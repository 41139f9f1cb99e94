using Grpc.Net.Client;

namespace ActorStep.Host.Access;

/// <summary>A gRPC channel to an ActorStep server whose every call carries its token (the gdb bridge, tests, benchmarks).</summary>
public static class ApiChannel
{
    /// <summary>A channel to <paramref name="address"/>; with a token, every request carries <c>authorization: Bearer …</c>.</summary>
    public static GrpcChannel Create(Uri address, ApiToken? token)
    {
        if (token is null) return GrpcChannel.ForAddress(address);
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new BearerHandler(token) { InnerHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } },
        });
    }

    /// <summary>Adds the header to each HTTP/2 request (a call is one request), as grpcurl's <c>-H</c> does.</summary>
    private sealed class BearerHandler(ApiToken token) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation(ApiToken.Header, token.HeaderValue);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
