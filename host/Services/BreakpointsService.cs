using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Breakpoints: user software breakpoints in the coordinator's VM-wide table.</summary>
public sealed class BreakpointsService(ActorStepBackend backend) : Api.V1.Breakpoints.BreakpointsBase
{
    public override async Task<BreakpointResponse> InsertBreakpoint(BreakpointRequest r, ServerCallContext context) =>
        Map(await backend.AskAsync<VmProtocol.BreakpointChanged>(new ToVm(r.VmId, new VmProtocol.InsertBreakpoint(r.Address, (int)r.Vcpu)), context));

    public override async Task<BreakpointResponse> RemoveBreakpoint(BreakpointRequest r, ServerCallContext context) =>
        Map(await backend.AskAsync<VmProtocol.BreakpointChanged>(new ToVm(r.VmId, new VmProtocol.RemoveBreakpoint(r.Address, (int)r.Vcpu)), context));

    private static BreakpointResponse Map(VmProtocol.BreakpointChanged c) =>
        new() { Address = c.Address, RealAddress = c.RealAddress, Changed = c.Changed };
}
