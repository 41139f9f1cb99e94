using ActorStep.Machine;
using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Registers;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Grpc;

/// <summary>The register catalogue shared by the gRPC API and the gdb bridge.</summary>
public class PowerRegistersTests
{
    [Theory]
    [InlineData("r0", 0, 64)]
    [InlineData("r31", 31, 64)]
    [InlineData("f0", 32, 64)]
    [InlineData("f31", 63, 64)]
    [InlineData("pc", 64, 64)]
    [InlineData("msr", 65, 64)]
    [InlineData("cr", 66, 32)]
    [InlineData("lr", 67, 64)]
    [InlineData("ctr", 68, 64)]
    [InlineData("xer", 69, 32)]
    [InlineData("fpscr", 70, 32)]
    [InlineData("srr0", 71, 64)]
    [InlineData("sprg3", 76, 64)]
    [InlineData("lpcr", 80, 64)]
    [InlineData("tb", 83, 64)]
    public void Gdb_numbers_and_widths_follow_gdbs_powerpc_common64_layout(string name, int number, int bits)
    {
        Assert.True(PowerRegisters.TryFind(name, out var byName));
        Assert.True(PowerRegisters.TryFind(number, out var byNumber));
        Assert.Same(byName, byNumber);
        Assert.Equal(bits, byName.Bits);
    }

    [Fact]
    public void Numbers_are_dense_and_unique_and_names_unique()
    {
        Assert.Equal(Enumerable.Range(0, PowerRegisters.All.Count), PowerRegisters.All.Select(r => r.GdbNumber));
        Assert.Equal(PowerRegisters.All.Count, PowerRegisters.All.Select(r => r.Name).Distinct().Count());
    }

    [Fact]
    public void Every_writable_register_writes_the_field_it_reads_and_no_other()
    {
        foreach (var reg in PowerRegisters.All.Where(r => r.Writable))
        {
            var state = new VcpuState();
            ulong value = 0xA5A5_5A5A_1234_5678 & reg.Mask;
            Assert.True(reg.TrySet(state, value, out _));
            Assert.Equal(value, reg.Get(state));
            Assert.All(PowerRegisters.All.Where(o => o != reg), o => Assert.True(o.Get(state) == 0, $"writing {reg.Name} changed {o.Name}"));
        }
    }

    [Fact]
    public void The_catalogue_and_the_gdb_target_description_agree_on_every_register()
    {
        Assert.Equal(
            TargetDescription.Registers.Select(r => (r.Name, r.Regnum, r.Size * 8)),
            PowerRegisters.All.Select(r => (r.GdbName, r.GdbNumber, r.Bits)));
    }

    [Fact]
    public void Read_only_registers_refuse_writes_and_say_why()
    {
        foreach (var name in new[] { "lpcr", "pir", "pvr", "tb" })
        {
            Assert.True(PowerRegisters.TryFind(name, out var reg));
            var state = new VcpuState();
            Assert.False(reg.TrySet(state, 1, out var error));
            Assert.Contains("read-only", error);
            Assert.Equal(0UL, reg.Get(state));
        }
    }

    [Fact]
    public void A_value_wider_than_the_register_is_refused()
    {
        Assert.True(PowerRegisters.TryFind("cr", out var cr));
        Assert.False(cr.TrySet(new VcpuState(), 0x1_0000_0000, out var error));
        Assert.Contains("32 bits", error);
    }
}
