using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using ActorStep.Protocol.Registers;
using Grpc.Core;
using static ActorStep.Actors.Vms.VmManagerProtocol;
using VcpuRegisters = ActorStep.Actors.Vcpu.VcpuProtocol.Registers;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Registers: names and gdb numbers resolved with <see cref="PowerRegisters"/>.</summary>
public sealed class RegistersService(ActorStepBackend backend) : Api.V1.Registers.RegistersBase
{
    public override async Task<GetVcpuRegistersResponse> GetVcpuRegisters(GetVcpuRegistersRequest r, ServerCallContext context)
    {
        var wanted = r.Registers.Count == 0 ? PowerRegisters.All : r.Registers.Select(ApiMapping.Register).ToList();
        var regs = await backend.AskAsync<VcpuRegisters>(new ToVm(r.VmId, new VmProtocol.ReadRegisters((int)r.Vcpu)), context);
        var response = new GetVcpuRegistersResponse();
        response.Registers.AddRange(wanted.Select(w => ApiMapping.Register(w, regs.State)));
        return response;
    }

    /// <summary>Validated whole before anything is read; then read, changed and written back (the coordinator refuses a running vcpu).</summary>
    public override async Task<SetVcpuRegistersResponse> SetVcpuRegisters(SetVcpuRegistersRequest r, ServerCallContext context)
    {
        var writes = r.Writes.Select(w => (Register: ApiMapping.Register(w.Register ?? new RegisterRef()), w.Value)).ToList();
        if (writes.Count == 0) throw ApiMapping.Invalid("no register writes given");
        foreach (var (reg, value) in writes)
            if (!reg.TrySet(new Machine.VcpuState(), value, out var error)) throw ApiMapping.Invalid(error);

        var current = await backend.AskAsync<VcpuRegisters>(new ToVm(r.VmId, new VmProtocol.ReadRegisters((int)r.Vcpu)), context);
        var state = current.State.Clone();
        foreach (var (reg, value) in writes) reg.TrySet(state, value, out _);
        var written = await backend.AskAsync<VcpuRegisters>(new ToVm(r.VmId, new VmProtocol.WriteRegisters((int)r.Vcpu, state)), context);
        var response = new SetVcpuRegistersResponse();
        response.Registers.AddRange(writes.Select(w => w.Register).Distinct().Select(reg => ApiMapping.Register(reg, written.State)));
        return response;
    }
}
