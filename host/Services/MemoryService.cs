using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Memory: each call routed to the VM's node and run there by <see cref="VmApi"/> (breakpoints never show).</summary>
public sealed class MemoryService(VmRouter router) : Api.V1.Memory.MemoryBase
{
    public const int MaxLength = VmApi.MaxMemoryLength;

    public override Task<ReadMemoryResponse> ReadMemory(ReadMemoryRequest r, ServerCallContext context) =>
        router.CallAsync<ReadMemoryResponse>(VmMethods.ReadMemory, r.VmId, r, context);

    public override Task<WriteMemoryResponse> WriteMemory(WriteMemoryRequest r, ServerCallContext context) =>
        router.CallAsync<WriteMemoryResponse>(VmMethods.WriteMemory, r.VmId, r, context);
}
