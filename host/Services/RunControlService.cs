using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Actors.Vms.VmManagerProtocol;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.RunControl: each call one coordinator request (Step/Continue via the VM manager's vcpu count).</summary>
public sealed class RunControlService(ActorStepBackend backend) : RunControl.RunControlBase
{
    public override async Task<RunResponse> Resume(ResumeRequest r, ServerCallContext context)
    {
        var resume = new VmProtocol.Resume(ApiMapping.Actions(r.Actions), r.HoldInterrupts || !r.HasHoldInterrupts, ApiMapping.StepCount(r.StepCount));
        return ApiMapping.Run(await backend.RunAsync(r.VmId, new ToVm(r.VmId, resume), context));
    }

    public override async Task<RunResponse> Step(StepRequest r, ServerCallContext context)
    {
        var step = new StepVcpu(r.VmId, (int)r.Vcpu, ApiMapping.Locking(r.SchedulerLocking), ApiMapping.StepCount(r.StepCount),
            r.HoldInterrupts || !r.HasHoldInterrupts);
        return ApiMapping.Run(await backend.RunAsync(r.VmId, step, context));
    }

    public override async Task<RunResponse> Continue(ContinueRequest r, ServerCallContext context)
    {
        var resume = new ContinueVcpu(r.VmId, (int)r.Vcpu, ApiMapping.Locking(r.SchedulerLocking), r.HoldInterrupts || !r.HasHoldInterrupts);
        return ApiMapping.Run(await backend.RunAsync(r.VmId, resume, context));
    }

    public override async Task<RunResponse> Halt(HaltRequest r, ServerCallContext context) =>
        ApiMapping.Run(await backend.AskAsync<VmProtocol.Stopped>(new ToVm(r.VmId, new VmProtocol.Halt()), context));
}
