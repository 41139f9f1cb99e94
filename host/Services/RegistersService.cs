using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Registers: each call routed to the VM's node and run there by <see cref="VmApi"/>.</summary>
public sealed class RegistersService(VmRouter router) : Api.V1.Registers.RegistersBase
{
    public override Task<GetVcpuRegistersResponse> GetVcpuRegisters(GetVcpuRegistersRequest r, ServerCallContext context) =>
        router.CallAsync<GetVcpuRegistersResponse>(VmMethods.GetVcpuRegisters, r.VmId, r, context);

    public override Task<SetVcpuRegistersResponse> SetVcpuRegisters(SetVcpuRegistersRequest r, ServerCallContext context) =>
        router.CallAsync<SetVcpuRegistersResponse>(VmMethods.SetVcpuRegisters, r.VmId, r, context);
}
