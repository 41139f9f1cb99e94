using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.Registers: by name and by gdb number, writes read back, read-only SPRs refused.</summary>
public class RegistersApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    private static RegisterRef Name(string n) => new() { Name = n };
    private static RegisterRef Number(uint n) => new() { GdbNumber = n };

    [Fact]
    public void Reading_every_register_lists_them_in_gdb_number_order_with_the_entry_state()
    {
        var vm = server.NewDemoVm();
        var regs = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 2 }, deadline: Deadline).Registers;
        Assert.Equal(Enumerable.Range(0, 84).Select(n => (uint)n), regs.Select(r => r.GdbNumber));
        Assert.Equal(2UL, regs.Single(r => r.Name == "r3").Value); // r3 = vcpu index at entry
        Assert.Equal(vm.Entry, regs.Single(r => r.Name == "nip").Value);
        Assert.Equal(0x8000000000001001UL, regs.Single(r => r.Name == "msr").Value); // SF|ME|LE
        Assert.Equal(32u, regs.Single(r => r.Name == "cr").Bits);
        Assert.False(regs.Single(r => r.Name == "lpcr").Writable);
    }

    [Fact]
    public void Names_aliases_and_gdb_numbers_name_the_same_registers()
    {
        var vm = server.NewDemoVm();
        var regs = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest
        {
            VmId = vm.VmId, Vcpu = 1, Registers = { Name("pc"), Number(64), Name("NIP"), Name("r3"), Number(3), Name("gpr3"), Name("srr0"), Number(71) },
        }, deadline: Deadline).Registers;
        Assert.Equal(new[] { "nip", "nip", "nip", "r3", "r3", "r3", "srr0", "srr0" }, regs.Select(r => r.Name));
        Assert.Equal(1UL, regs[3].Value);
    }

    [Fact]
    public void Written_registers_read_back_and_the_guest_runs_from_a_written_pc()
    {
        var vm = server.NewDemoVm();
        var written = server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Vcpu = 0,
            Writes =
            {
                new RegisterWrite { Register = Name("r5"), Value = 0x1122334455667788 },
                new RegisterWrite { Register = Number(68), Value = 42 },
                new RegisterWrite { Register = Name("sprg3"), Value = 7 },
                new RegisterWrite { Register = Name("pc"), Value = vm.Entry + 8 },
            },
        }, deadline: Deadline).Registers;
        Assert.Equal(new[] { 0x1122334455667788UL, 42UL, 7UL, vm.Entry + 8 }, written.Select(r => r.Value));

        var read = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 0, Registers = { Name("r5"), Name("ctr"), Name("sprg3") } }, deadline: Deadline);
        Assert.Equal(new[] { 0x1122334455667788UL, 42UL, 7UL }, read.Registers.Select(r => r.Value));
        var step = server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(vm.Entry + 12, step.Event.Nip);
    }

    [Theory]
    [InlineData("lpcr")]
    [InlineData("pir")]
    [InlineData("pvr")]
    [InlineData("tb")]
    public void Writing_a_read_only_register_is_an_invalid_argument_that_changes_nothing(string name)
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.InvalidArgument, () => server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Vcpu = 0,
            Writes = { new RegisterWrite { Register = Name("r7"), Value = 9 }, new RegisterWrite { Register = Name(name), Value = 1 } },
        }, deadline: Deadline));
        Assert.Contains("read-only", e.Status.Detail);
        var r7 = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 0, Registers = { Name("r7") } }, deadline: Deadline);
        Assert.Equal(0UL, r7.Registers[0].Value);
    }

    [Fact]
    public void Unknown_registers_and_values_too_wide_are_invalid_arguments()
    {
        var vm = server.NewDemoVm();
        var e = Fails(StatusCode.InvalidArgument, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Registers = { Name("r32") } }, deadline: Deadline));
        Assert.Contains("r32", e.Status.Detail);
        Fails(StatusCode.InvalidArgument, () => server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Registers = { Number(999) } }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Registers.SetVcpuRegisters(new SetVcpuRegistersRequest
        {
            VmId = vm.VmId, Writes = { new RegisterWrite { Register = Name("cr"), Value = 1UL << 32 } },
        }, deadline: Deadline));
    }
}
