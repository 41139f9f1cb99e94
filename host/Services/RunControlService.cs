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

    /// <summary>Each request runs as a Resume call would (routed, halting its VM if the stream goes away mid-resume);
    /// its failure is answered in-band and the stream goes on — until the server stops: then the stream ends with UNAVAILABLE,
    /// at once if it waits for a request, else once its resume has ended (with the VM's destruction at the latest).</summary>
    public override async Task ResumeStream(IAsyncStreamReader<ResumeRequest> requests, IServerStreamWriter<ResumeStreamResponse> responses,
        ServerCallContext context)
    {
        var stopping = router.Api.Backend.Stopping;
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, stopping);
        while (await NextAsync(requests, ending.Token))
            await responses.WriteAsync(await AnswerAsync(router, requests.Current, CallScope.From(context)), context.CancellationToken);
        if (stopping.IsCancellationRequested) throw ActorStepBackend.ShuttingDown();
    }

    /// <summary>One request of a resume stream, run as a Resume call would be (routed; a cancelled call halts its VM): the stop,
    /// or the call's failure answered in-band so that the stream goes on — unless the call was cancelled (that ends the stream)
    /// or the server is stopping (UNAVAILABLE). The service and the in-process stream (<see cref="Gdb.InProcessCallInvoker"/>) share it.</summary>
    public static async Task<ResumeStreamResponse> AnswerAsync(VmRouter router, ResumeRequest r, CallScope call)
    {
        try
        {
            return new ResumeStreamResponse { Stopped = (RunResponse)await router.CallAsync(router.Api.Get(VmMethods.Resume), r.VmId, r, call) };
        }
        catch (RpcException e) when (!call.Cancellation.IsCancellationRequested)
        {
            if (router.Api.Backend.Stopping.IsCancellationRequested) throw ActorStepBackend.ShuttingDown();
            return new ResumeStreamResponse { Error = new RunError { Code = (int)e.StatusCode, Message = e.Status.Detail } };
        }
    }

    /// <summary>The next request, or false when the client ended the stream — also by dropping it between resumes
    /// (HTTP/2 reset, e.g. a gdb bridge whose gdb left): nothing runs then, so that is a normal end, not an error.</summary>
    private static async Task<bool> NextAsync(IAsyncStreamReader<ResumeRequest> requests, CancellationToken ending)
    {
        try
        {
            return await requests.MoveNext(ending);
        }
        catch (Exception e) when (e is IOException || (e is OperationCanceledException && ending.IsCancellationRequested))
        {
            return false;
        }
    }
}
