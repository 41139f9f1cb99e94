using System.Diagnostics;
using ActorStep.Actors.Fleet.Wire;
using ActorStep.Api.V1;
using ActorStep.Host.Fleet;
using ActorStep.Host.Services;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
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

    // A vcpu is a uint32 on the wire: one over int.MaxValue is a vcpu no VM has (NOT_FOUND), printed as the client sent it.

    [Theory]
    [InlineData(4294967295u)]
    [InlineData(2147483648u)]
    public void A_vcpu_over_int_max_is_not_found_on_every_call_and_printed_as_sent(uint vcpu)
    {
        var vm = server.NewDemoVm();
        void NotFound(Action call)
        {
            var e = Fails(StatusCode.NotFound, call);
            Assert.Contains($"no vcpu {vcpu}", e.Status.Detail);
            Assert.Contains("0..3", e.Status.Detail);
        }
        NotFound(() => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = vm.Entry, Length = 4, Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Memory.WriteMemory(new WriteMemoryRequest { VmId = vm.VmId, Address = 0x6080, Data = ByteString.CopyFrom(1, 2, 3, 4), Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Vcpu = vcpu, Writes = { new RegisterWrite { Register = new RegisterRef { Name = "r9" }, Value = 1 } },
        }, deadline: Deadline));
        NotFound(() => server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Run.Continue(new ContinueRequest { VmId = vm.VmId, Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Run.Resume(new ResumeRequest { VmId = vm.VmId, Actions = { new VcpuActionEntry { Vcpu = vcpu, Action = VcpuAction.Step } } }, deadline: Deadline));
        NotFound(() => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry, Vcpu = vcpu }, deadline: Deadline));
        NotFound(() => server.Breakpoints.RemoveBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry, Vcpu = vcpu }, deadline: Deadline));

        // An unknown VM is still the VM's NOT_FOUND; a real address ignores the vcpu; nothing moved.
        Assert.Contains("no VM", Fails(StatusCode.NotFound, () => server.Run.Step(new StepRequest { VmId = "nope", Vcpu = vcpu }, deadline: Deadline)).Status.Detail);
        Assert.Equal(4, server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = vm.Entry, Length = 4, Space = AddressSpace.Real, Vcpu = vcpu }, deadline: Deadline).Data.Length);
        var after = server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.All(after.Vcpus, v => Assert.Equal(vm.Entry, v.Nip));
        Assert.Equal(0u, after.BreakpointCount);
    }

    [Fact]
    public void Other_uint32_fields_over_int_max_are_printed_as_sent()
    {
        var vm = server.NewDemoVm();
        var vcpus = Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = uint.MaxValue }, deadline: Deadline));
        Assert.Contains("4294967295", vcpus.Status.Detail);
        var code = Fails(StatusCode.InvalidArgument, () => server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId, IncludeCode = uint.MaxValue, Actions = { new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step } },
        }, deadline: Deadline));
        Assert.Contains("4294967295", code.Status.Detail);
        var number = Fails(StatusCode.InvalidArgument, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest
        {
            VmId = vm.VmId, Registers = { new RegisterRef { GdbNumber = uint.MaxValue } },
        }, deadline: Deadline));
        Assert.Contains("4294967295", number.Status.Detail);
    }

    // Input echoed in an error is cut: a message quoting a 64 KiB id whole made a trailer too large for the client, which then
    // saw UNAVAILABLE instead of the status.

    private const int Short = 1000;

    [Fact]
    public void A_64_KiB_vm_id_is_not_found_with_a_short_message()
    {
        string id = new('x', 64 << 10);
        void NotFound(Action call)
        {
            var e = Fails(StatusCode.NotFound, call);
            Assert.True(e.Status.Detail.Length < Short, $"a {e.Status.Detail.Length}-character message");
            Assert.Contains($"'{new string('x', 100)}…' (65536 characters)", e.Status.Detail);
        }
        NotFound(() => server.Vms.GetVm(new GetVmRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Vms.DeleteVm(new DeleteVmRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Run.Step(new StepRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Run.Halt(new HaltRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = id, Length = 4 }, deadline: Deadline));
        NotFound(() => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = id }, deadline: Deadline));
        NotFound(() => server.Events.StreamEvents(new StreamEventsRequest { VmId = id }, deadline: Deadline).ResponseStream.MoveNext().GetAwaiter().GetResult());

        var create = Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", VmId = id }, deadline: Deadline));
        Assert.True(create.Status.Detail.Length < Short, $"a {create.Status.Detail.Length}-character message");
    }

    [Fact]
    public void A_100000_character_register_name_is_invalid_argument_with_a_short_message()
    {
        var vm = server.NewDemoVm();
        var name = new RegisterRef { Name = new string('r', 100_000) };
        var get = Fails(StatusCode.InvalidArgument, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Registers = { name } }, deadline: Deadline));
        var set = Fails(StatusCode.InvalidArgument, () => server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Writes = { new RegisterWrite { Register = name, Value = 1 } },
        }, deadline: Deadline));
        foreach (var e in new[] { get, set })
        {
            Assert.True(e.Status.Detail.Length < Short, $"a {e.Status.Detail.Length}-character message");
            Assert.Contains("(100000 characters)", e.Status.Detail);
        }
    }

    [Fact]
    public void A_64_KiB_image_path_or_built_in_name_is_invalid_argument_with_a_short_message()
    {
        foreach (var request in new[]
        {
            new CreateVmRequest { ElfPath = new string('p', 64 << 10), Vcpus = 1, MemorySize = 1 << 20 },
            new CreateVmRequest { ElfPath = "/tmp/" + string.Join('/', Enumerable.Repeat("d", 32 << 10)), Vcpus = 1, MemorySize = 1 << 20 },
            new CreateVmRequest { BuiltIn = new string('b', 64 << 10), Vcpus = 1, MemorySize = 1 << 20 },
        })
        {
            var e = Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(request, deadline: Deadline));
            Assert.True(e.Status.Detail.Length < Short, $"a {e.Status.Detail.Length}-character message");
        }
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

    // The deadline tests below send theirs only on the wire (grpc-timeout) and give the client library none: the client would
    // otherwise end the call itself at the deadline (or refuse to send one already past), and prove nothing of the server.

    [Fact]
    public async Task The_server_ends_a_continue_at_its_deadline_with_deadline_exceeded_and_leaves_the_vm_halted_and_clean()
    {
        var vm = server.NewDemoVm();
        using var channel = server.ChannelWithWireDeadline("300m");
        var started = Stopwatch.StartNew();
        var e = await ServerEnds(new RunControl.RunControlClient(channel).ContinueAsync(new ContinueRequest { VmId = vm.VmId }, cancellationToken: HangGuard()).ResponseAsync);
        Assert.True(e.StatusCode == StatusCode.DeadlineExceeded, $"expected DeadlineExceeded, got {e.StatusCode}: {e.Status.Detail}");
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(250), $"ended after {started.Elapsed}, before its deadline");

        var after = await WaitUntilStopped(vm.VmId);
        Assert.All(after.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
        Assert.Contains(after.Vcpus, v => v.Nip != vm.Entry); // it did run until the deadline
        Assert.Equal(0u, after.BreakpointCount);
        Assert.Equal(0, BreakpointWords(server.Info(vm.VmId)));
        var next = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, next.Event.Reason);
    }

    [Fact]
    public async Task The_server_ends_a_range_step_that_cannot_end_at_its_deadline_and_nothing_of_the_step_stays_in_the_guest()
    {
        // vcpu 1 range-steps its wait for vcpu 0 (secondary_wait), which stays stopped: the step can only end by the deadline.
        var vm = server.NewDemoVm();
        var demo = global::ActorStep.Machine.ElfImage.BuiltIn("demo");
        ulong wait = demo.Symbol("secondary_wait"), leave = demo.Symbol("go_virtual");
        using var channel = server.ChannelWithWireDeadline("300m");
        var e = await ServerEnds(new RunControl.RunControlClient(channel).ResumeAsync(new ResumeRequest
        {
            VmId = vm.VmId,
            Actions = { new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Step, StepRange = new StepRange { Start = vm.Entry, End = leave } } },
        }, cancellationToken: HangGuard()).ResponseAsync);
        Assert.True(e.StatusCode == StatusCode.DeadlineExceeded, $"expected DeadlineExceeded, got {e.StatusCode}: {e.Status.Detail}");

        var after = await WaitUntilStopped(vm.VmId);
        Assert.All(after.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
        Assert.InRange(after.Vcpus[1].Nip, wait, leave - 4);                       // halted inside its loop
        Assert.Equal(new[] { vm.Entry, vm.Entry, vm.Entry }, new[] { 0, 2, 3 }.Select(v => after.Vcpus[v].Nip)); // nobody else moved
        Assert.Equal(0u, after.BreakpointCount);
        Assert.Equal(0, BreakpointWords(server.Info(vm.VmId)));
        var msr = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 1, Registers = { new RegisterRef { Name = "msr" } } },
            deadline: Deadline).Registers.Single().Value;
        Assert.Equal(0UL, msr & 0x400); // no MSR[SE] left from the step
    }

    [Fact]
    public async Task A_call_that_reaches_the_server_after_its_deadline_fails_with_deadline_exceeded_and_does_nothing()
    {
        var vm = server.NewDemoVm();
        // 1 µs: spent before the handler runs (grpc-timeout cannot say "already past"; 0 would mean no deadline at all).
        using var channel = server.ChannelWithWireDeadline("1u");
        var run = new RunControl.RunControlClient(channel);
        var registers = new Api.V1.Registers.RegistersClient(channel);
        var memory = new Api.V1.Memory.MemoryClient(channel);
        var breakpoints = new Breakpoints.BreakpointsClient(channel);
        var vms = new Vms.VmsClient(channel);
        ulong data = 0x6080;
        byte[] before = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = data, Length = 8, Space = AddressSpace.Real }, deadline: Deadline).Data.ToByteArray();
        for (int i = 0; i < 5; i++) // each a race with the server's own deadline timer without the check at the door
        {
            await LateFails(run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, cancellationToken: HangGuard()).ResponseAsync);
            await LateFails(registers.SetVcpuRegistersAsync(new SetVcpuRegistersRequest
            {
                VmId = vm.VmId, Vcpu = 0, Writes = { new RegisterWrite { Register = new RegisterRef { Name = "r9" }, Value = 0x99 } },
            }, cancellationToken: HangGuard()).ResponseAsync);
            await LateFails(memory.WriteMemoryAsync(new WriteMemoryRequest { VmId = vm.VmId, Address = data, Space = AddressSpace.Real, Data = ByteString.CopyFrom(1, 2, 3, 4, 5, 6, 7, 8) },
                cancellationToken: HangGuard()).ResponseAsync);
            await LateFails(breakpoints.InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 8 }, cancellationToken: HangGuard()).ResponseAsync);
            await LateFails(vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 1, MemorySize = 2 << 20, VmId = $"{vm.VmId}-late{i}" },
                cancellationToken: HangGuard()).ResponseAsync);
            await LateFails(vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId }, cancellationToken: HangGuard()).ResponseAsync);
        }

        var after = server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.All(after.Vcpus, v => Assert.Equal(vm.Entry, v.Nip));     // never stepped
        Assert.Equal(0u, after.BreakpointCount);                          // never inserted
        var r9 = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 0, Registers = { new RegisterRef { Name = "r9" } } },
            deadline: Deadline).Registers.Single().Value;
        Assert.NotEqual(0x99UL, r9);                                      // never written
        Assert.Equal(before, server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = data, Length = 8, Space = AddressSpace.Real }, deadline: Deadline).Data.ToByteArray());
        var ids = server.Vms.ListVms(new ListVmsRequest(), deadline: Deadline).Vms.Select(v => v.VmId);
        Assert.DoesNotContain(ids, id => id.StartsWith($"{vm.VmId}-late", StringComparison.Ordinal)); // never created
    }

    [Fact]
    public async Task A_routed_call_that_reaches_the_owning_node_after_its_deadline_does_nothing()
    {
        // What another node's router sends: the owner must refuse it too, not only the node the client called.
        var vm = server.NewDemoVm();
        var api = server.Server.Services.GetRequiredService<VmApi>();
        var reply = await FleetEndpoint.ServeAsync(api, new FleetCall
        {
            VmId = vm.VmId, Method = VmMethods.Step, DeadlineUnixMs = DateTimeOffset.UtcNow.AddMilliseconds(-1).ToUnixTimeMilliseconds(),
            Request = new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }.ToByteString(),
        });
        Assert.Equal((int)StatusCode.DeadlineExceeded, reply.StatusCode);
        Assert.All(server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).Vcpus, v => Assert.Equal(vm.Entry, v.Nip));
    }

    [Fact]
    public void The_client_library_itself_refuses_a_deadline_already_past()
    {
        // Not the server's doing (the call is never sent), but what a client of this API sees.
        var vm = server.NewDemoVm();
        var past = DateTime.UtcNow.AddSeconds(-1);
        Fails(StatusCode.DeadlineExceeded, () => server.Run.Step(new StepRequest { VmId = vm.VmId }, deadline: past));
        Assert.All(server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).Vcpus, v => Assert.Equal(vm.Entry, v.Nip));
    }

    /// <summary>Guards a call without a client deadline against a server that never ends it (CANCELLED then, not DEADLINE_EXCEEDED).</summary>
    private static CancellationToken HangGuard() => new CancellationTokenSource(TimeSpan.FromSeconds(15)).Token;

    private static async Task<RpcException> ServerEnds(Task call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.False(e.StatusCode == StatusCode.Cancelled, "the server did not end the call by its deadline (the test's guard did)");
        return e;
    }

    private static async Task LateFails(Task call)
    {
        var e = await ServerEnds(call);
        Assert.True(e.StatusCode == StatusCode.DeadlineExceeded, $"expected DeadlineExceeded, got {e.StatusCode}: {e.Status.Detail}");
    }

    private async Task<Vm> WaitUntilStopped(string vmId)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var vm = await server.Vms.GetVmAsync(new GetVmRequest { VmId = vmId }, deadline: Deadline);
            if (!vm.Running) return vm;
            if (DateTime.UtcNow > until) throw new Xunit.Sdk.XunitException($"VM {vmId} kept running after its call's deadline");
            await Task.Delay(5);
        }
    }
}
