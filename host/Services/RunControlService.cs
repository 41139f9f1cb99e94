using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using Grpc.Core;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.RunControl: each call routed to the VM's node and run there by <see cref="VmApi"/>.</summary>
public sealed class RunControlService(VmRouter router) : RunControl.RunControlBase
{
    public override Task<RunResponse> Resume(ResumeRequest r, ServerCallContext context) => router.CallAsync<RunResponse>(VmMethods.Resume, r.VmId, r, context);

    public override Task<RunResponse> Step(StepRequest r, ServerCallContext context) => router.CallAsync<RunResponse>(VmMethods.Step, r.VmId, r, context);

    public override Task<RunResponse> Continue(ContinueRequest r, ServerCallContext context) => router.CallAsync<RunResponse>(VmMethods.Continue, r.VmId, r, context);

    public override Task<RunResponse> Halt(HaltRequest r, ServerCallContext context) => router.CallAsync<RunResponse>(VmMethods.Halt, r.VmId, r, context);
}
