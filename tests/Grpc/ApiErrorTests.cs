using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>The status codes of the API's error cases, each with a message a person can act on.</summary>
public class ApiErrorTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    [Fact]
    public void Unknown_vm_is_not_found_on_every_service()
    {
        Fails(StatusCode.NotFound, () => server.Vms.GetVm(new GetVmRequest { VmId = "nope" }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Vms.DeleteVm(new DeleteVmRequest { VmId = "nope" }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Run.Step(new StepRequest { VmId = "nope" }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Run.Halt(new HaltRequest { VmId = "nope" }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = "nope" }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = "nope", Length = 4 }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = "nope" }, deadline: Deadline));
        var e = Fails(StatusCode.NotFound, () => server.Events.StreamEvents(new StreamEventsRequest { VmId = "nope" }, deadline: Deadline)
            .ResponseStream.MoveNext().GetAwaiter().GetResult());
        Assert.Contains("nope", e.Status.Detail);
    }

    [Fact]
    public void Unknown_vcpu_is_not_found()
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.NotFound, () => server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 4 }, deadline: Deadline));
        Assert.Contains("0..3", e.Status.Detail);
        Fails(StatusCode.NotFound, () => server.Run.Continue(new ContinueRequest { VmId = vm.VmId, Vcpu = 9 }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Run.Resume(new ResumeRequest { VmId = vm.VmId, Actions = { new VcpuActionEntry { Vcpu = 7, Action = VcpuAction.Step } } }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 4 }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Length = 4, Vcpu = 4 }, deadline: Deadline));
        Fails(StatusCode.NotFound, () => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry, Vcpu = 4 }, deadline: Deadline));
    }

    [Fact]
    public void Unaligned_or_untranslatable_breakpoints_and_malformed_resumes_are_invalid_arguments()
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.InvalidArgument, () => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 2 }, deadline: Deadline));
        Assert.Contains("aligned", e.Status.Detail);
        Fails(StatusCode.InvalidArgument, () => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.MemorySize + 0x1000 }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Run.Resume(new ResumeRequest { VmId = vm.VmId }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId, Actions = { new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Step }, new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Continue } },
        }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Run.Step(new StepRequest { VmId = vm.VmId, StepCount = 2_000_000 }, deadline: Deadline));
    }

    [Fact]
    public async Task Stepping_or_writing_registers_while_the_vm_runs_is_a_failed_precondition()
    {
        var vm = server.NewDemoVm();
        using var running = server.Run.ContinueAsync(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
        while (!(await server.Vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline)).Running) await Task.Delay(5);

        var e = Fails(StatusCode.FailedPrecondition, () => server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1 }, deadline: Deadline));
        Assert.Contains("halt", e.Status.Detail);
        Fails(StatusCode.FailedPrecondition, () => server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Vcpu = 1, Writes = { new RegisterWrite { Register = new RegisterRef { Name = "r9" }, Value = 1 } },
        }, deadline: Deadline));

        server.Run.Halt(new HaltRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal(StopReason.Halted, (await running.ResponseAsync).Event.Reason);
    }

    [Fact]
    public void Stepping_a_vcpu_the_guest_stopped_for_good_is_a_failed_precondition()
    {
        var vm = server.NewDemoVm(vcpus: 1, guest: "spin");
        var finished = server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal(StopReason.GuestStopped, finished.Event.Reason);
        Assert.Equal(VcpuState.StoppedForGood, finished.Vcpus[0].State);

        var e = Fails(StatusCode.FailedPrecondition, () => server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0 }, deadline: Deadline));
        Assert.Contains("stopped for good", e.Status.Detail);
    }

    [Fact]
    public async Task A_deadline_ends_a_continue_with_deadline_exceeded_and_the_vm_halted()
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.DeadlineExceeded, () => server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: DateTime.UtcNow.AddMilliseconds(200)));
        for (int i = 0; i < 400 && (await server.Vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline)).Running; i++) await Task.Delay(5);
        var after = await server.Vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.False(after.Running, "the VM kept running after its continue's deadline");
        Assert.Equal(0u, after.BreakpointCount);
    }

    [Fact]
    public void A_deadline_already_past_fails_every_call_with_deadline_exceeded()
    {
        var vm = server.NewDemoVm();
        var past = DateTime.UtcNow.AddSeconds(-1);
        Fails(StatusCode.DeadlineExceeded, () => server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: past));
        Fails(StatusCode.DeadlineExceeded, () => server.Run.Step(new StepRequest { VmId = vm.VmId }, deadline: past));
        Fails(StatusCode.DeadlineExceeded, () => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Length = 4 }, deadline: past));
    }
}
