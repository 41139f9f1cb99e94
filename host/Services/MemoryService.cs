using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Memory: reads and writes go through the coordinator's breakpoint table, so breakpoints never show.</summary>
public sealed class MemoryService(ActorStepBackend backend) : Api.V1.Memory.MemoryBase
{
    public const int MaxLength = 1 << 20;

    public override async Task<ReadMemoryResponse> ReadMemory(ReadMemoryRequest r, ServerCallContext context)
    {
        if (r.Length > MaxLength) throw ApiMapping.Invalid($"length {r.Length} is over the 1 MiB ({MaxLength} bytes) a read may return");
        var read = await backend.AskAsync<VmProtocol.MemoryRead>(
            new ToVm(r.VmId, new VmProtocol.ReadMemory(r.Address, (int)r.Length, ApiMapping.Translation(r.Space, r.Vcpu))), context);
        return new ReadMemoryResponse { Address = read.Address, Data = ApiMapping.Bytes(read.Data) };
    }

    public override async Task<WriteMemoryResponse> WriteMemory(WriteMemoryRequest r, ServerCallContext context)
    {
        if (r.Data.Length > MaxLength) throw ApiMapping.Invalid($"{r.Data.Length} bytes is over the 1 MiB ({MaxLength} bytes) a write may carry");
        var written = await backend.AskAsync<VmProtocol.MemoryWritten>(
            new ToVm(r.VmId, new VmProtocol.WriteMemory(r.Address, r.Data.ToByteArray(), ApiMapping.Translation(r.Space, r.Vcpu))), context);
        return new WriteMemoryResponse { Address = written.Address, Length = (uint)written.Length };
    }
}
