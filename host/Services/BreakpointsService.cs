using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Breakpoints: each call routed to the VM's node and run there by <see cref="VmApi"/>.</summary>
public sealed class BreakpointsService(VmRouter router) : Api.V1.Breakpoints.BreakpointsBase
{
    public override Task<BreakpointResponse> InsertBreakpoint(BreakpointRequest r, ServerCallContext context) =>
        router.CallAsync<BreakpointResponse>(VmMethods.InsertBreakpoint, r.VmId, r, context);

    public override Task<BreakpointResponse> RemoveBreakpoint(BreakpointRequest r, ServerCallContext context) =>
        router.CallAsync<BreakpointResponse>(VmMethods.RemoveBreakpoint, r.VmId, r, context);

    public override Task<WatchpointResponse> InsertWatchpoint(WatchpointRequest r, ServerCallContext context) =>
        router.CallAsync<WatchpointResponse>(VmMethods.InsertWatchpoint, r.VmId, r, context);

    public override Task<WatchpointResponse> RemoveWatchpoint(WatchpointRequest r, ServerCallContext context) =>
        router.CallAsync<WatchpointResponse>(VmMethods.RemoveWatchpoint, r.VmId, r, context);
}
