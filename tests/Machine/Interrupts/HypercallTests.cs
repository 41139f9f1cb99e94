using System.Text;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>The PAPR hypercalls of the platform (<c>sc 1</c> from supervisor state), machine/guests/README.md.</summary>
public class HypercallTests
{
    private static Guest Hcall(Action<VcpuState> args, bool littleEndian = true, int vcpus = 1)
    {
        var g = new Guest($"""
                sc 1
            next:
                {Guest.Bp}
            """, littleEndian, vcpus: vcpus);
        g.Update(args);
        return g;
    }

    private static long Status(Guest g) => (long)g.State.Gpr[3];

    private static string Console(Guest g, Action run)
    {
        var text = new StringBuilder();
        g.Vm.ConsoleOutput += (vcpu, bytes) => text.Append($"{vcpu}:").Append(Encoding.ASCII.GetString(bytes));
        run();
        return text.ToString();
    }

    [Fact]
    public void Hypercall_returns_to_the_next_instruction_without_touching_SRR0_SRR1()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 0; s.Gpr[5] = 3; s.Srr0 = 0x1234; s.Srr1 = 0x5678; });
        Assert.Equal(g.Sym("next"), g.RunToBreak());
        Assert.Equal(0x1234UL, g.State.Srr0);
        Assert.Equal(0x5678UL, g.State.Srr1);
        Assert.Equal(Guest.Le, g.State.Msr);
    }

    [Fact]
    public void H_PUT_TERM_CHAR_bytes_arrive_via_ConsoleOutput_first_char_in_the_MSB_of_r6()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_PUT_TERM_CHAR; s.Gpr[5] = 3; s.Gpr[6] = 0x4869210000000000; });
        Assert.Equal("0:Hi!", Console(g, () => g.RunToBreak()));
        Assert.Equal(0, Status(g));
    }

    [Fact]
    public void H_PUT_TERM_CHAR_of_16_bytes_continues_in_r7()
    {
        var g = Hcall(s =>
        {
            s.Gpr[3] = Papr.H_PUT_TERM_CHAR; s.Gpr[5] = 16;
            s.Gpr[6] = 0x4142434445464748; s.Gpr[7] = 0x494A4B4C4D4E4F50;
        });
        Assert.Equal("0:ABCDEFGHIJKLMNOP", Console(g, () => g.RunToBreak()));
    }

    [Fact]
    public void H_PUT_TERM_CHAR_byte_order_does_not_depend_on_the_guest_endianness()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_PUT_TERM_CHAR; s.Gpr[5] = 2; s.Gpr[6] = 0x4F4B000000000000; }, littleEndian: false);
        Assert.Equal("0:OK", Console(g, () => g.RunToBreak()));
    }

    [Fact]
    public void H_PUT_TERM_CHAR_from_a_guest_program_reports_the_calling_vcpu()
    {
        var g = new Guest($"""
                cmpdi 3, 1
                bne 1f
                li 3, 0x58
                li 4, 0
                li 5, 1
                lis 6, 0x5800      # 'X'
                sldi 6, 6, 32
                sc 1
            1:  {Guest.Bp}
            """, vcpus: 2);
        Assert.Equal("1:X", Console(g, () => Guest.RunToBreak(g.Vm.GetVcpu(1))));
    }

    [Fact]
    public void H_PUT_TERM_CHAR_longer_than_16_bytes_returns_H_PARAMETER()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_PUT_TERM_CHAR; s.Gpr[5] = 17; });
        Assert.Equal("", Console(g, () => g.RunToBreak()));
        Assert.Equal(Papr.H_PARAMETER, Status(g));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(3)]
    public void H_SET_MODE_resource_3_sets_LPCR_AIL(int ail)
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = (ulong)ail; s.Gpr[5] = 3; });
        g.SetAil(1);
        g.RunToBreak();
        Assert.Equal(0, Status(g));
        Assert.Equal(ail, Lpcr.Ail(g.Lpcr));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void H_SET_MODE_rejects_AIL_1_and_values_above_3_with_H_UNSUPPORTED_FLAG(int ail)
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = (ulong)ail; s.Gpr[5] = 3; });
        ulong lpcr = g.Lpcr;
        g.RunToBreak();
        Assert.Equal(Papr.H_UNSUPPORTED_FLAG, Status(g));
        Assert.Equal(lpcr, g.Lpcr);
    }

    [Fact]
    public void H_SET_MODE_resource_4_mflags_1_sets_LPCR_ILE()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 1; s.Gpr[5] = 4; }, littleEndian: false);
        Assert.Equal(0UL, g.Lpcr & Lpcr.ILE);
        g.RunToBreak();
        Assert.Equal(0, Status(g));
        Assert.Equal(Lpcr.ILE, g.Lpcr & Lpcr.ILE);
    }

    [Fact]
    public void H_SET_MODE_resource_4_mflags_0_clears_LPCR_ILE()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 0; s.Gpr[5] = 4; });
        g.RunToBreak();
        Assert.Equal(0, Status(g));
        Assert.Equal(0UL, g.Lpcr & Lpcr.ILE);
    }

    [Fact]
    public void H_SET_MODE_resource_4_rejects_mflags_2_with_H_UNSUPPORTED_FLAG()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 2; s.Gpr[5] = 4; });
        g.RunToBreak();
        Assert.Equal(Papr.H_UNSUPPORTED_FLAG, Status(g));
        Assert.Equal(Lpcr.ILE, g.Lpcr & Lpcr.ILE);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void H_SET_MODE_with_value1_nonzero_returns_H_P3(int resource)
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 0; s.Gpr[5] = (ulong)resource; s.Gpr[6] = 1; });
        g.RunToBreak();
        Assert.Equal(-56, Status(g));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void H_SET_MODE_with_value2_nonzero_returns_H_P4(int resource)
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[4] = 0; s.Gpr[5] = (ulong)resource; s.Gpr[7] = 1; });
        g.RunToBreak();
        Assert.Equal(-57, Status(g));
    }

    [Fact]
    public void H_SET_MODE_with_an_unknown_resource_returns_H_P2()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_SET_MODE; s.Gpr[5] = 9; });
        g.RunToBreak();
        Assert.Equal(Papr.H_P2, Status(g));
    }

    [Fact]
    public void Unknown_hypercall_returns_H_FUNCTION()
    {
        var g = Hcall(s => s.Gpr[3] = 0x4);
        g.RunToBreak();
        Assert.Equal(Papr.H_FUNCTION, Status(g));
    }

    private static Guest Cede() => Hcall(s => { s.Gpr[3] = Papr.H_CEDE; s.Dec = 1000; });

    [Fact]
    public void H_CEDE_idles_until_the_decrementer_and_time_passes_meanwhile()
    {
        var g = Cede();
        ulong tb0 = g.State.Tb;
        var exit = g.Vcpu.Run(500);
        Assert.Equal(ExitReason.Idle, exit.Reason);
        Assert.Equal(tb0 + 500, g.State.Tb);
    }

    [Fact]
    public void H_CEDE_wakes_with_the_decrementer_interrupt_at_the_next_instruction()
    {
        var g = Cede();
        Assert.Equal(ExitReason.Idle, g.Vcpu.Run(500).Reason);
        Assert.Equal(0x900UL, g.RunToBreak(1000));
        Assert.Equal(g.Sym("next"), g.State.Srr0);
        Assert.True((int)g.State.Dec < 0);
    }

    [Fact]
    public void H_CEDE_sets_MSR_EE()
    {
        var g = Cede();
        g.RunToBreak(2000);
        Assert.Equal(Guest.Le | Msr.EE, g.State.Srr1);
    }

    [Fact]
    public void H_CEDE_with_async_interrupts_held_stays_idle()
    {
        var g = Cede();
        g.Vcpu.HoldAsyncInterrupts = true;
        Assert.Equal(ExitReason.Idle, g.Vcpu.Run(5000).Reason);
    }

    private static Guest CedeAndProd() => new($"""
            cmpdi 3, 0
            bne cpu1
            li 3, 0xE0
            sc 1
        woken:
            {Guest.Bp}
        cpu1:
            li 3, 0x108
            li 4, 0
            sc 1
        prodded:
            {Guest.Bp}
        """, vcpus: 2);

    [Fact]
    public void H_PROD_wakes_a_ceded_vcpu()
    {
        var g = CedeAndProd();
        Assert.Equal(ExitReason.Idle, g.Vm.GetVcpu(0).Run(1000).Reason);
        Assert.Equal(g.Sym("prodded"), Guest.RunToBreak(g.Vm.GetVcpu(1)));
        Assert.Equal(0UL, g.Vm.GetVcpu(1).GetRegisters().Gpr[3]);
        Assert.Equal(g.Sym("woken"), Guest.RunToBreak(g.Vm.GetVcpu(0)));
    }

    [Fact]
    public void H_PROD_before_H_CEDE_makes_the_cede_return_at_once()
    {
        var g = CedeAndProd();
        Guest.RunToBreak(g.Vm.GetVcpu(1));
        Assert.Equal(g.Sym("woken"), Guest.RunToBreak(g.Vm.GetVcpu(0)));
    }

    [Fact]
    public void H_PROD_of_a_vcpu_that_does_not_exist_returns_H_PARAMETER()
    {
        var g = Hcall(s => { s.Gpr[3] = Papr.H_PROD; s.Gpr[4] = 1; });
        g.RunToBreak();
        Assert.Equal(Papr.H_PARAMETER, Status(g));
    }

    [Fact]
    public void H_ACTORSTEP_STOP_exits_with_Stopped_and_the_status_in_r4()
    {
        var g = new Guest(Asm.Hcall(0xF080, 42));
        var exit = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Stopped, exit.Reason);
        Assert.Equal(42, exit.Status);
        Assert.True(g.Vcpu.IsStoppedForGood);
    }

    [Fact]
    public void Vcpu_stopped_by_H_ACTORSTEP_STOP_never_runs_again()
    {
        var g = new Guest(Asm.Hcall(0xF080, 7) + "\n addi 5, 5, 1");
        g.Vcpu.Run(1000);
        long retired = g.Vcpu.InstructionsRetired;
        var again = g.Vcpu.Run(1000);
        Assert.Equal(ExitReason.Stopped, again.Reason);
        Assert.Equal(7, again.Status);
        Assert.Equal(retired, g.Vcpu.InstructionsRetired);
        Assert.Equal(0UL, g.State.Gpr[5]);
    }
}
