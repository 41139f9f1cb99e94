using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.Breakpoints' watchpoints: set beside breakpoints, a hit is STOP_REASON_WATCHPOINT naming the
/// watchpoint and the access, in the reply and in the event stream; the next resume performs the access.</summary>
public class WatchpointApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    // vcpu 0 counts in r9 and stores each count as a doubleword at `value`; vcpu 1 only reads it.
    private const string Source = """
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 0
            bne reader
        writer:
            addi 9, 9, 1
        store:
            std 9, 0x2000(0)
            b writer
        reader:
        load:
            ld 10, 0x2000(0)
            b reader
        """;

    private const ulong Value = 0x2000;

    private (Vm Vm, ulong Store, ulong Load) NewVm()
    {
        string elf = Support.GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);
        var image = Support.GuestAssembler.Build(Source, textAddress: 0);
        var vm = server.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 2, MemorySize = 16 << 20, VmId = $"watch-{Guid.NewGuid():N}" },
            deadline: Deadline);
        return (vm, image.Symbol("store"), image.Symbol("load"));
    }

    private WatchpointResponse Insert(string vmId, ulong address, ulong length, WatchpointKind kind) =>
        server.Breakpoints.InsertWatchpoint(new WatchpointRequest
        {
            VmId = vmId, Watchpoint = new Watchpoint { Address = address, Length = length, Kind = kind },
        }, deadline: Deadline);

    [Fact]
    public async Task A_store_into_a_watched_range_stops_its_vcpu_at_the_store_and_the_event_names_the_watchpoint()
    {
        var (vm, store, _) = NewVm();
        using var events = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.True(await events.ResponseStream.MoveNext());
        Assert.True(Insert(vm.VmId, Value + 4, 2, WatchpointKind.Write).Changed);

        var stop = server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);

        Assert.Equal((StopReason.Watchpoint, 0u, store), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip));
        var hit = stop.Event.Watchpoint;
        Assert.Equal(new Watchpoint { Address = Value + 4, Length = 2, Kind = WatchpointKind.Write }, hit.Watchpoint);
        Assert.Equal((Value, Value + 4, 8u, true), (hit.DataAddress, hit.WatchedAddress, hit.Size, hit.Store));
        Event stopped;
        do Assert.True(await events.ResponseStream.MoveNext()); while ((stopped = events.ResponseStream.Current).KindCase != Event.KindOneofCase.Stopped);
        Assert.Equal(stop.Event, stopped.Stopped.Event);

        var step = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal((StopReason.StepCompleted, store + 4), (step.Event.Reason, step.Event.Nip));
        var memory = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = Value, Length = 8, Space = AddressSpace.Real },
            deadline: Deadline);
        Assert.Equal(1UL, BitConverter.ToUInt64(memory.Data.Span));
    }

    [Fact]
    public void A_read_watchpoint_stops_the_reading_vcpu_and_a_removed_one_stops_nothing()
    {
        var (vm, _, load) = NewVm();
        Insert(vm.VmId, Value, 8, WatchpointKind.Read);

        var stop = server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal((StopReason.Watchpoint, 1u, load, false), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip, stop.Event.Watchpoint.Store));

        var removed = server.Breakpoints.RemoveWatchpoint(new WatchpointRequest
        {
            VmId = vm.VmId, Watchpoint = new Watchpoint { Address = Value, Length = 8, Kind = WatchpointKind.Read },
        }, deadline: Deadline);
        Assert.True(removed.Changed);
        var steps = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1, StepCount = 10, SchedulerLocking = SchedulerLocking.On },
            deadline: Deadline);
        Assert.Equal((StopReason.StepCompleted, 10u), (steps.Event.Reason, steps.Event.Steps));
    }

    [Theory]
    [InlineData(0UL, 8UL, WatchpointKind.Unspecified)]
    [InlineData(0x2000UL, 0UL, WatchpointKind.Write)]
    [InlineData(0xFFFFFFFFFFFFFFFCUL, 8UL, WatchpointKind.Access)]
    public void A_watchpoint_without_a_kind_or_bytes_or_that_wraps_is_invalid(ulong address, ulong length, WatchpointKind kind)
    {
        var (vm, _, _) = NewVm();
        var e = Assert.Throws<RpcException>(() => Insert(vm.VmId, address, length, kind));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
    }

    [Fact]
    public void A_watchpoint_on_an_unknown_vm_is_not_found()
    {
        var e = Assert.Throws<RpcException>(() => Insert("no-such-vm", Value, 8, WatchpointKind.Write));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }
}
