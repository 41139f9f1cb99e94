using ActorStep.Actors.Vms;
using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Vms over the <see cref="VmManager"/>.</summary>
public sealed class VmsService(ActorStepBackend backend, ILogger<VmsService> log) : Vms.VmsBase
{
    public override async Task<Vm> CreateVm(CreateVmRequest r, ServerCallContext context)
    {
        var spec = new VmSpec(
            r.ImageCase == CreateVmRequest.ImageOneofCase.ElfPath ? r.ElfPath : null,
            r.ImageCase == CreateVmRequest.ImageOneofCase.BuiltIn ? r.BuiltIn : null,
            r.Vcpus == 0 ? 4 : (int)Math.Min(r.Vcpus, int.MaxValue),
            r.MemorySize == 0 ? 128UL << 20 : r.MemorySize,
            new Dictionary<string, string>(r.Labels),
            ApiMapping.Flavour(r.Flavour),
            r.VmId);
        var created = await backend.AskAsync<VmCreated>(new CreateVm(spec), context);
        log.LogInformation("VM {VmId} created from {Image} with {Vcpus} vcpus", created.Vm.VmId, created.Vm.Image, created.Vm.Vcpus);
        var described = await backend.AskAsync<VmDescribed>(new DescribeVm(created.Vm.VmId), context);
        return ApiMapping.Vm(described.Vm, described.Description);
    }

    public override async Task<ListVmsResponse> ListVms(ListVmsRequest r, ServerCallContext context)
    {
        var list = await backend.AskAsync<VmList>(new VmManagerProtocol.ListVms(new Dictionary<string, string>(r.LabelSelector)), context);
        var response = new ListVmsResponse();
        response.Vms.AddRange(list.Vms.Select(v => ApiMapping.Vm(v)));
        return response;
    }

    public override async Task<Vm> GetVm(GetVmRequest r, ServerCallContext context)
    {
        var d = await backend.AskAsync<VmDescribed>(new DescribeVm(r.VmId), context);
        return ApiMapping.Vm(d.Vm, d.Description);
    }

    public override async Task<DeleteVmResponse> DeleteVm(DeleteVmRequest r, ServerCallContext context)
    {
        var d = await backend.AskAsync<VmDestroyed>(new DestroyVm(r.VmId), context);
        log.LogInformation("VM {VmId} deleted", d.VmId);
        return new DeleteVmResponse { VmId = d.VmId };
    }
}
