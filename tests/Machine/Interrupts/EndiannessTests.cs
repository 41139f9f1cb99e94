using System.Text;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>Big-endian execution and LPCR[ILE]: the byte order interrupts run in.</summary>
public class EndiannessTests
{
    private const string StoreWord = """
            lis 4, data@h
            ori 4, 4, data@l
            lis 5, 0x1122
            ori 5, 5, 0x3344
            stw 5, 0(4)
            lbz 6, 0(4)
            lhz 7, 2(4)
            lwbrx 8, 0, 4
            .long 0x00dddd00
            .balign 8
        data: .quad 0
        """;

    [Fact]
    public void Big_endian_image_starts_with_MSR_SF_ME()
    {
        var g = new Guest(StoreWord, littleEndian: false);
        Assert.Equal(Guest.Be, g.State.Msr);
        Assert.False(g.Vm.ImageIsLittleEndian);
        Assert.Equal(0UL, g.Lpcr & Lpcr.ILE);
    }

    [Fact]
    public void Big_endian_store_puts_the_most_significant_byte_first()
    {
        var g = new Guest(StoreWord, littleEndian: false);
        g.RunToBreak();
        var bytes = new byte[4];
        g.Vm.ReadMemory(g.Sym("data"), bytes);
        Assert.Equal(new byte[] { 0x11, 0x22, 0x33, 0x44 }, bytes);
    }

    [Fact]
    public void Big_endian_loads_read_the_most_significant_byte_first()
    {
        var g = new Guest(StoreWord, littleEndian: false);
        g.RunToBreak();
        Assert.Equal((0x11UL, 0x3344UL, 0x44332211UL), (g.State.Gpr[6], g.State.Gpr[7], g.State.Gpr[8]));
    }

    [Fact]
    public void Little_endian_loads_read_the_least_significant_byte_first()
    {
        var g = new Guest(StoreWord);
        g.RunToBreak();
        Assert.Equal((0x44UL, 0x1122UL, 0x44332211UL), (g.State.Gpr[6], g.State.Gpr[7], g.State.Gpr[8]));
    }

    [Fact]
    public void Interrupt_in_a_big_endian_guest_runs_big_endian_while_LPCR_ILE_is_0()
    {
        var g = new Guest("sc", littleEndian: false);
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(Guest.Be, g.State.Msr);
    }

    [Fact]
    public void Interrupt_runs_little_endian_when_LPCR_ILE_is_1_even_from_a_big_endian_context()
    {
        var g = new Guest("sc", littleEndian: false);
        g.Lpcr |= Lpcr.ILE;
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(Guest.Le, g.State.Msr);
        Assert.Equal(Guest.Be, g.State.Srr1);
    }

    [Fact]
    public void Interrupt_runs_big_endian_when_LPCR_ILE_is_0_even_from_a_little_endian_context()
    {
        var g = new Guest("sc");
        g.Lpcr &= ~Lpcr.ILE;
        Assert.Equal(0xC00UL, g.RunToBreak());
        Assert.Equal(Guest.Be, g.State.Msr);
    }

    [Fact]
    public void H_SET_MODE_ILE_makes_a_big_endian_guest_take_interrupts_in_little_endian()
    {
        // Handler at 0xC00 assembled little-endian: li 20,77; rfid — back into the big-endian caller.
        var g = new Guest($"""
            {Asm.Hcall(0x31C, 1, 4)}
                sc
            back:
                {Guest.Bp}
            """, littleEndian: false, handlers: new Dictionary<ulong, string>
        {
            [0xC00] = Guest.ForeignWords("li 20, 77\n rfid", littleEndian: false),
        });
        Assert.Equal(g.Sym("back"), g.RunToBreak());
        Assert.Equal(77UL, g.State.Gpr[20]);
        Assert.Equal(Guest.Be, g.State.Msr);
    }

    [Fact]
    public void Built_in_big_endian_selftest_prints_and_stops_with_status_0()
    {
        var vm = SimulatedMachine.Load(ElfImage.BuiltIn("selftest-be"), new MachineOptions(1, 16UL << 20));
        var text = new StringBuilder();
        vm.ConsoleOutput += (_, b) => text.Append(Encoding.ASCII.GetString(b));
        var exit = vm.GetVcpu(0).Run(1_000_000);
        Assert.Equal((ExitReason.Stopped, 0L), (exit.Reason, exit.Status));
        Assert.Equal("BE guest ok\n", text.ToString());
    }
}
