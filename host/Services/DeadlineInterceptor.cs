using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>
/// A call whose deadline has passed by the time it reaches its handler (it arrived with a grpc-timeout already spent, or
/// waited that long) ends with DEADLINE_EXCEEDED and does nothing: without this, ASP.NET Core's deadline timer races the
/// handler, and a step or a write could run and then be reported as failed.
/// </summary>
public sealed class DeadlineInterceptor : AdmissionInterceptor
{
    protected override void Admit(ServerCallContext context) => CallScope.From(context).ThrowIfPast();
}
