using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>
/// What a call's implementation needs of its caller: the deadline and the cancellation. Built from a gRPC call here,
/// or from a <c>FleetCall</c> on the owning node of a routed call, so that one implementation serves both.
/// </summary>
public readonly record struct CallScope(DateTime Deadline, CancellationToken Cancellation)
{
    public static CallScope From(ServerCallContext context) => new(context.Deadline, context.CancellationToken);

    /// <summary>No deadline (DateTime.MaxValue, as gRPC says).</summary>
    public bool HasDeadline => Deadline < DateTime.MaxValue;

    /// <summary>Time left until the deadline (null: none; never negative).</summary>
    public TimeSpan? Remaining => HasDeadline ? TimeSpan.FromTicks(Math.Max(0, (Deadline - DateTime.UtcNow).Ticks)) : null;

    /// <summary>DEADLINE_EXCEEDED when the deadline has passed already: a call that arrives too late must not start.</summary>
    public void ThrowIfPast()
    {
        if (HasDeadline && Deadline <= DateTime.UtcNow) throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's deadline had passed before it started"));
    }

    /// <summary>The status of a call cut short: DEADLINE_EXCEEDED once the deadline passed, CANCELLED before.</summary>
    public RpcException Cancelled() =>
        Deadline <= DateTime.UtcNow
            ? new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's deadline passed"))
            : new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled"));
}
