using Grpc.Core;
using ActorStep.Host.Services;

namespace ActorStep.Host.Access;

/// <summary>
/// Every call but the health service's must carry the server's token (<see cref="ApiToken"/>): without it the call ends with
/// UNAUTHENTICATED before any handler runs. Health stays open so that a supervisor can probe the server without the secret.
/// </summary>
public sealed class TokenInterceptor(ApiAccess access) : AdmissionInterceptor
{
    private const string OpenService = "/grpc.health.v1.Health/";

    protected override void Admit(ServerCallContext context)
    {
        if (access.Token is not { } token || context.Method.StartsWith(OpenService, StringComparison.Ordinal)) return;
        string? header = context.RequestHeaders.GetValue(ApiToken.Header);
        if (token.Accepts(header)) return;
        throw new RpcException(new Status(StatusCode.Unauthenticated, header is null
            ? "this server requires its token: send the header 'authorization: Bearer TOKEN' with the token from the file the server named at start (--token-file)"
            : "the token is not this server's: send 'authorization: Bearer TOKEN' with the token from the file the server named at start (--token-file)"));
    }
}
