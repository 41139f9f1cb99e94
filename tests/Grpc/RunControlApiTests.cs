using ActorStep.Api.V1;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.RunControl on the demo guest: replies say where every vcpu stopped and why.</summary>
public class RunControlApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    [Fact]
    public void Step_with_locking_on_moves_only_the_stepped_vcpu_and_lists_every_vcpu()
    {
        var vm = server.NewDemoVm();
        var reply = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 2, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);

        Assert.Equal(StopReason.StepCompleted, reply.Event.Reason);
        Assert.Equal(2u, reply.Event.Vcpu);
        Assert.Equal(1u, reply.Event.Steps);
        Assert.Equal(vm.Entry + 4, reply.Event.Nip);
        Assert.Equal(new uint[] { 0, 1, 2, 3 }, reply.Vcpus.Select(v => v.Vcpu));
        Assert.All(reply.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
        Assert.Equal(new[] { vm.Entry, vm.Entry, vm.Entry + 4, vm.Entry }, reply.Vcpus.Select(v => v.Nip));
    }

    [Fact]
    public void Step_counts_instructions()
    {
        var vm = server.NewDemoVm();
        var reply = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, StepCount = 3, SchedulerLocking = SchedulerLocking.Step }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, reply.Event.Reason);
        Assert.Equal(3u, reply.Event.Steps);
    }

    [Fact]
    public void Resume_follows_explicit_per_vcpu_actions_and_leaves_unnamed_vcpus_stopped()
    {
        var vm = server.NewDemoVm();
        var reply = server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId,
            Actions = { new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Step } },
        }, deadline: Deadline);
        Assert.Equal((StopReason.StepCompleted, 1u), (reply.Event.Reason, reply.Event.Vcpu));
        Assert.Equal(new[] { vm.Entry, vm.Entry + 4, vm.Entry, vm.Entry }, reply.Vcpus.Select(v => v.Nip));
    }

    [Fact]
    public async Task Halt_completes_a_continue_in_flight_with_reason_halted()
    {
        var vm = server.NewDemoVm();
        using var running = server.Run.ContinueAsync(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
        await WaitUntilRunning(vm.VmId);

        var halted = server.Run.Halt(new HaltRequest { VmId = vm.VmId }, deadline: Deadline);
        var continued = await running.ResponseAsync;

        Assert.Equal(StopReason.Halted, halted.Event.Reason);
        Assert.Equal(StopReason.Halted, continued.Event.Reason);
        Assert.All(continued.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
        Assert.Contains(continued.Vcpus, v => v.Nip != vm.Entry);
    }

    [Fact]
    public void Continue_stops_at_a_breakpoint_that_reads_never_show()
    {
        var vm = server.NewDemoVm();
        ulong target = vm.Entry + 8;
        var original = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = target, Length = 4 }, deadline: Deadline).Data;
        var inserted = server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = target }, deadline: Deadline);
        Assert.True(inserted.Changed);
        Assert.Equal(target, inserted.RealAddress);

        var reply = server.Run.Continue(new ContinueRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);

        Assert.Equal((StopReason.Breakpoint, 0u, target), (reply.Event.Reason, reply.Event.Vcpu, reply.Event.Nip));
        Assert.Equal(original, server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = target, Length = 4 }, deadline: Deadline).Data);
        Assert.Equal(1u, server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).BreakpointCount);
        Assert.True(server.Breakpoints.RemoveBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = target }, deadline: Deadline).Changed);
        Assert.Equal(0u, server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).BreakpointCount);
    }

    [Fact]
    public async Task Cancelling_a_step_mid_flight_halts_the_vm_and_leaves_nothing_behind()
    {
        var vm = server.NewDemoVm();
        var info = server.Info(vm.VmId);
        using var cts = new CancellationTokenSource();
        using var step = server.Run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 0, StepCount = 1_000_000, SchedulerLocking = SchedulerLocking.Off },
            deadline: Deadline, cancellationToken: cts.Token);
        await WaitUntilRunning(vm.VmId);

        cts.Cancel();
        var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () =>
        {
            var ended = await step.ResponseAsync;
            Assert.Fail($"the step ended by itself before the cancel reached it: {ended}");
        });
        Assert.Equal(global::Grpc.Core.StatusCode.Cancelled, e.StatusCode);

        var after = await WaitUntilStopped(vm.VmId);
        Assert.Equal(0u, after.BreakpointCount);
        Assert.Equal(0, BreakpointWords(info));
        // The VM answers the next step normally.
        var next = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, next.Event.Reason);
    }

    [Fact]
    public void A_range_step_runs_until_nip_leaves_the_range_in_one_call()
    {
        var vm = server.NewDemoVm();
        // mr, cmpldi, then blt 1f: three instructions before the branch leaves [entry, entry + 12).
        var stop = server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId,
            Actions = { new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Step, StepRange = new StepRange { Start = vm.Entry, End = vm.Entry + 12 } } },
        }, deadline: Deadline);
        Assert.Equal((StopReason.StepCompleted, 1u, 3u), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Steps));
        Assert.False(stop.Event.Nip >= vm.Entry && stop.Event.Nip < vm.Entry + 12, $"stopped inside the range at 0x{stop.Event.Nip:x}");
        Assert.Equal(vm.Entry, stop.Vcpus[0].Nip); // not resumed
    }

    [Fact]
    public void A_stop_with_include_code_carries_the_memory_around_nip_as_a_read_would_see_it()
    {
        var vm = server.NewDemoVm();
        // A user breakpoint right after the entry: the block must show the guest's own word, as ReadMemory does.
        server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 4 }, deadline: Deadline);
        var stop = server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId, IncludeCode = 256, Actions = { new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step } },
        }, deadline: Deadline);
        ulong nip = stop.Event.Nip;
        ulong block = nip & ~255UL;
        Assert.Equal(block >= 256 ? block - 256 : block, stop.Code.Address);
        Assert.Equal((int)(block + 256 - stop.Code.Address), stop.Code.Data.Length);
        var read = server.Memory.ReadMemory(new ReadMemoryRequest
        {
            VmId = vm.VmId, Address = stop.Code.Address, Length = (uint)stop.Code.Data.Length, Space = AddressSpace.Effective, Vcpu = 0,
        }, deadline: Deadline);
        Assert.Equal(read.Data, stop.Code.Data);
        Assert.NotEqual(0x00dddd00u, BitConverter.ToUInt32(stop.Code.Data.Span[(int)(vm.Entry + 4 - stop.Code.Address)..]));
    }

    [Fact]
    public void Include_code_that_is_not_a_power_of_two_in_range_is_invalid()
    {
        var vm = server.NewDemoVm();
        var e = Assert.Throws<global::Grpc.Core.RpcException>(() => server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId, IncludeCode = 100, Actions = { new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step } },
        }, deadline: Deadline));
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("power of two", e.Status.Detail);
    }

    [Theory]
    [InlineData(VcpuAction.Continue, 1u)]
    [InlineData(VcpuAction.Step, 2u)]
    public void A_range_on_a_continue_or_with_a_step_count_is_invalid(VcpuAction action, uint stepCount)
    {
        var vm = server.NewDemoVm();
        var e = Assert.Throws<global::Grpc.Core.RpcException>(() => server.Run.Resume(new ResumeRequest
        {
            VmId = vm.VmId, StepCount = stepCount,
            Actions = { new VcpuActionEntry { Vcpu = 0, Action = action, StepRange = new StepRange { Start = vm.Entry, End = vm.Entry + 8 } } },
        }, deadline: Deadline));
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(vm.Entry, server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).Vcpus[0].Nip);
    }

    [Fact]
    public async Task Resume_stream_answers_each_resume_in_order_with_the_stopped_vcpus_registers()
    {
        var vm = server.NewDemoVm();
        using var stream = server.Run.ResumeStream(deadline: Deadline);
        for (int i = 1; i <= 3; i++)
        {
            await stream.RequestStream.WriteAsync(new ResumeRequest
            {
                VmId = vm.VmId, IncludeRegisters = true, Actions = { new VcpuActionEntry { Vcpu = 2, Action = VcpuAction.Step } },
            });
            Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
            var stop = stream.ResponseStream.Current.Stopped;
            Assert.Equal((StopReason.StepCompleted, 2u), (stop.Event.Reason, stop.Event.Vcpu));
            if (i == 1) Assert.Equal(vm.Entry + 4, stop.Event.Nip);
            Assert.Equal(stop.Event.Nip, stop.Vcpus[2].Nip);
            // Exactly what GetVcpuRegisters says for the stopped vcpu, in gdb-number order.
            var read = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 2 }, deadline: Deadline);
            Assert.Equal(read.Registers, stop.Registers);
            Assert.Equal(stop.Event.Nip, stop.Registers.Single(r => r.Name == "nip").Value);
        }
        await stream.RequestStream.CompleteAsync();
        Assert.False(await stream.ResponseStream.MoveNext(CancellationToken.None));
    }

    [Fact]
    public async Task Resume_stream_with_values_only_returns_the_register_values_in_catalogue_order()
    {
        var vm = server.NewDemoVm();
        using var stream = server.Run.ResumeStream(deadline: Deadline);
        for (int i = 1; i <= 3; i++)
        {
            await stream.RequestStream.WriteAsync(new ResumeRequest
            {
                VmId = vm.VmId, IncludeRegisters = true, ValuesOnly = true, Actions = { new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Step } },
            });
            Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
            var stop = stream.ResponseStream.Current.Stopped;
            Assert.Empty(stop.Registers);
            // The catalogue is GetVcpuRegisters with no list: the i-th value is its i-th register's.
            var read = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 1 }, deadline: Deadline);
            Assert.Equal(read.Registers.Select(r => r.Value), stop.RegisterValues);
            Assert.Equal(stop.Event.Nip, stop.RegisterValues[read.Registers.Select(r => r.Name).ToList().IndexOf("nip")]);
        }
        await stream.RequestStream.CompleteAsync();
        Assert.False(await stream.ResponseStream.MoveNext(CancellationToken.None));
    }

    [Fact]
    public async Task Resume_stream_answers_a_failed_resume_in_band_and_serves_the_next_one()
    {
        var vm = server.NewDemoVm();
        using var stream = server.Run.ResumeStream(deadline: Deadline);
        var step = new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step };

        await stream.RequestStream.WriteAsync(new ResumeRequest { VmId = "no-such-vm", Actions = { step } });
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        var error = stream.ResponseStream.Current.Error;
        Assert.Equal((int)global::Grpc.Core.StatusCode.NotFound, error.Code);
        Assert.Contains("no-such-vm", error.Message);

        await stream.RequestStream.WriteAsync(new ResumeRequest { VmId = vm.VmId, Actions = { step } });
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StopReason.StepCompleted, stream.ResponseStream.Current.Stopped.Event.Reason);
        Assert.Empty(stream.ResponseStream.Current.Stopped.Registers); // not asked for
    }

    [Fact]
    public async Task Cancelling_a_resume_stream_mid_continue_halts_the_vm_and_leaves_nothing_behind()
    {
        var vm = server.NewDemoVm();
        var info = server.Info(vm.VmId);
        using var cts = new CancellationTokenSource();
        var stream = server.Run.ResumeStream(deadline: Deadline, cancellationToken: cts.Token);
        await stream.RequestStream.WriteAsync(new ResumeRequest
        {
            VmId = vm.VmId, StepCount = 1_000_000,
            Actions = { new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step }, new VcpuActionEntry { Vcpu = 1, Action = VcpuAction.Continue } },
        });
        await WaitUntilRunning(vm.VmId);

        cts.Cancel();
        var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => stream.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(global::Grpc.Core.StatusCode.Cancelled, e.StatusCode);
        stream.Dispose();

        var after = await WaitUntilStopped(vm.VmId);
        Assert.Equal(0u, after.BreakpointCount);
        Assert.Equal(0, BreakpointWords(info));
        var next = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, next.Event.Reason);
    }

    private Vm NewVm(string source, uint vcpus, string name) =>
        server.Vms.CreateVm(new CreateVmRequest
        {
            ElfPath = Support.GuestAssembler.BuildElf(source, littleEndian: true, textAddress: 0), Vcpus = vcpus, MemorySize = 16 << 20,
            VmId = $"{name}-{Guid.NewGuid():N}",
        }, deadline: Deadline);

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void Step_of_a_ceded_vcpu_with_the_others_stopped_ends_at_once_saying_it_is_idle_in_H_CEDE(SchedulerLocking locking)
    {
        var vm = NewVm(Support.CedingGuest.Source, 2, "ceded");
        ulong after = Support.GuestAssembler.Build(Support.CedingGuest.Source, textAddress: 0).Symbol("after");
        var ceded = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1, StepCount = Support.CedingGuest.StepsToCede, SchedulerLocking = SchedulerLocking.On },
            deadline: Deadline);
        Assert.Equal((StopReason.StepCompleted, after), (ceded.Event.Reason, ceded.Event.Nip));

        var idle = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1, SchedulerLocking = locking }, deadline: Deadline);

        Assert.Equal((StopReason.Idle, 1u, after, 0u), (idle.Event.Reason, idle.Event.Vcpu, idle.Event.Nip, idle.Event.Steps));
        Assert.StartsWith($"vcpu 1 is idle in H_CEDE at 0x{after:x}: an H_PROD from another vcpu, a decrementer or an external interrupt " +
                          "would wake it", idle.Event.Detail);
        Assert.Contains("the step ends without executing anything", idle.Event.Detail);
        Assert.All(idle.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
        Assert.Equal(after, idle.Vcpus[1].Nip);
        Assert.Equal(0u, server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).BreakpointCount);
        Assert.Equal(0, BreakpointWords(server.Info(vm.VmId)));
    }

    /// <summary>Every vcpu runs the same two-instruction loop over <c>hit</c>.</summary>
    private const string AllMeet = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
        hit:
            addi 6, 6, 1
            b _start
        """;

    [Fact]
    public async Task A_continue_after_the_breakpoint_was_removed_runs_even_though_other_vcpus_had_met_it_in_the_last_all_stop()
    {
        var vm = NewVm(AllMeet, 4, "kept");
        ulong hit = Support.GuestAssembler.Build(AllMeet, textAddress: 0).Symbol("hit");
        var bp = new BreakpointRequest { VmId = vm.VmId, Address = hit };
        for (int round = 0; round < 3; round++)
        {
            // Four vcpus meet the breakpoint within two instructions: one is reported, the ones that met it meanwhile are kept.
            server.Breakpoints.InsertBreakpoint(bp, deadline: Deadline);
            var met = server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
            Assert.Equal((StopReason.Breakpoint, hit), (met.Event.Reason, met.Event.Nip));
            Assert.True(server.Breakpoints.RemoveBreakpoint(bp, deadline: Deadline).Changed);
            Assert.Equal(0u, server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline).BreakpointCount);

            // The next continue runs the guest (no breakpoint is left to stop it) until halted.
            using var running = server.Run.ContinueAsync(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
            if (await Task.WhenAny(running.ResponseAsync, Task.Delay(200)) == running.ResponseAsync)
                Assert.Fail($"round {round}: the continue ended at once: {(await running.ResponseAsync).Event}");
            await WaitUntilRunning(vm.VmId);
            server.Run.Halt(new HaltRequest { VmId = vm.VmId }, deadline: Deadline);
            Assert.Equal(StopReason.Halted, (await running.ResponseAsync).Event.Reason);
        }
    }

    private async Task WaitUntilRunning(string vmId)
    {
        for (int i = 0; i < 500; i++)
        {
            if ((await server.Vms.GetVmAsync(new GetVmRequest { VmId = vmId }, deadline: Deadline)).Running) return;
            await Task.Delay(5);
        }
        throw new Xunit.Sdk.XunitException($"VM {vmId} never ran");
    }

    private async Task<Vm> WaitUntilStopped(string vmId)
    {
        for (int i = 0; i < 500; i++)
        {
            var vm = await server.Vms.GetVmAsync(new GetVmRequest { VmId = vmId }, deadline: Deadline);
            if (!vm.Running) return vm;
            await Task.Delay(5);
        }
        throw new Xunit.Sdk.XunitException($"VM {vmId} never stopped");
    }
}
