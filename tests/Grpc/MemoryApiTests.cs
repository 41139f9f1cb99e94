using ActorStep.Api.V1;
using Google.Protobuf;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.Memory: by real address and by effective address with a vcpu's translation.</summary>
public class MemoryApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    [Fact]
    public void Written_bytes_read_back_by_real_and_by_effective_address()
    {
        var vm = server.NewDemoVm();
        var data = ByteString.CopyFrom(1, 2, 3, 4, 5, 6, 7, 8, 9);
        server.Memory.WriteMemory(new WriteMemoryRequest { VmId = vm.VmId, Address = 0x80001, Data = data, Space = AddressSpace.Real }, deadline: Deadline);

        var real = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = 0x80001, Length = 9, Space = AddressSpace.Real }, deadline: Deadline);
        // At entry vcpus are in real mode, where EA bits 0:3 are ignored: 0xC...80001 is the same byte.
        var effective = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = 0xC000000000080001, Length = 9, Vcpu = 3 }, deadline: Deadline);

        Assert.Equal(data, real.Data);
        Assert.Equal(data, effective.Data);
        Assert.Equal(0xC000000000080001, effective.Address);
    }

    [Fact]
    public void Reads_never_show_a_breakpoint_and_writes_under_one_keep_it_planted()
    {
        var vm = server.NewDemoVm();
        var info = server.Info(vm.VmId);
        ulong at = vm.Entry + 16;
        var before = server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = at - 4, Length = 12 }, deadline: Deadline).Data;
        server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = at }, deadline: Deadline);

        Assert.Equal(before, server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = at - 4, Length = 12 }, deadline: Deadline).Data);
        Assert.Equal(1, BreakpointWords(info));
        server.Memory.WriteMemory(new WriteMemoryRequest { VmId = vm.VmId, Address = at, Data = ByteString.CopyFrom(0x00, 0x00, 0x00, 0x60) }, deadline: Deadline);
        Assert.Equal(ByteString.CopyFrom(0x00, 0x00, 0x00, 0x60), server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = at, Length = 4 }, deadline: Deadline).Data);
        Assert.Equal(1, BreakpointWords(info));
    }

    [Fact]
    public void Out_of_range_addresses_and_lengths_are_invalid_arguments()
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.InvalidArgument, () => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = vm.MemorySize - 2, Length = 4, Space = AddressSpace.Real }, deadline: Deadline));
        Assert.Contains("outside guest memory", e.Status.Detail);
        Fails(StatusCode.InvalidArgument, () => server.Memory.ReadMemory(new ReadMemoryRequest { VmId = vm.VmId, Address = 0, Length = 2 << 20 }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Memory.WriteMemory(new WriteMemoryRequest { VmId = vm.VmId, Address = ulong.MaxValue - 1, Data = ByteString.CopyFrom(1, 2, 3), Space = AddressSpace.Real }, deadline: Deadline));
    }
}
