using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.AllStop;

/// <summary>The simulated all-stop VM behaves as QEMU's gdbstub does: it runs only as a whole, and any stop stops every vcpu.</summary>
public class AllStopMachineTests
{
    // Two vcpus: vcpu 0 counts in r5 forever; vcpu 1 counts in r5 a few times, then reaches `trap` (a breakpoint is planted there).
    private const string Program = """
            .globl _start
        _start:
            li 5, 0
            cmpdi 3, 0
            beq spin
            li 6, 100
        count:
            addi 5, 5, 1
            cmpd 5, 6
            bne count
        trap:
            nop
            b trap
        spin:
            addi 5, 5, 1
            b spin
        """;

    private static (AllStopMachine Vm, ElfImage Image) Build()
    {
        var image = GuestAssembler.Build(Program);
        return (new AllStopMachine(SimulatedMachine.Load(image, new MachineOptions(2, 1UL << 20))), image);
    }

    [Fact]
    public void It_says_it_runs_only_as_a_whole()
    {
        var (vm, _) = Build();
        Assert.Equal(VcpuRunModel.AllStop, vm.Capabilities.RunModel);
        var refused = Assert.Throws<InvalidOperationException>(() => vm.GetVcpu(0).Run(10));
        Assert.Contains("all-stop", refused.Message);
    }

    [Fact]
    public void A_breakpoint_hit_by_one_vcpu_stops_the_VM_with_that_vcpu_at_the_breakpoint()
    {
        var (vm, image) = Build();
        ulong trap = image.Symbol("trap");
        vm.InsertSoftwareBreakpoint(new SoftwareBreakpoint(trap, trap));
        foreach (int v in new[] { 0, 1 }) vm.GetVcpu(v).SetGuestDebug(GuestDebug.SoftwareBreakpoints);

        var (vcpu, exit) = vm.Resume([0, 1]);

        Assert.Equal((1, ExitReason.Debug, trap), (vcpu, exit.Reason, exit.Address));
        Assert.Equal(trap, vm.GetVcpu(1).GetRegisters().Nip);
        Assert.Equal(100UL, vm.GetVcpu(1).GetRegisters().Gpr[5]);
        // vcpu 0 ran meanwhile (both were resumed), and is stopped now: its registers hold still.
        var spinning = vm.GetVcpu(0).GetRegisters();
        Assert.True(spinning.Gpr[5] > 0);
        Assert.Equal(spinning, vm.GetVcpu(0).GetRegisters());
    }

    [Fact]
    public void A_vcpu_not_named_in_the_resume_stays_where_it_is()
    {
        var (vm, image) = Build();
        ulong trap = image.Symbol("trap");
        vm.InsertSoftwareBreakpoint(new SoftwareBreakpoint(trap, trap));
        vm.GetVcpu(1).SetGuestDebug(GuestDebug.SoftwareBreakpoints);
        var before = vm.GetVcpu(0).GetRegisters();

        var (vcpu, _) = vm.Resume([1]);

        Assert.Equal(1, vcpu);
        Assert.Equal(before, vm.GetVcpu(0).GetRegisters());
    }

    [Fact]
    public async Task A_stop_requested_from_another_thread_ends_a_resume_that_nothing_else_would_end()
    {
        var (vm, _) = Build();
        var resume = Task.Run(() => vm.Resume([0]));
        await Task.Delay(50); // let it run: the request below comes while it does
        vm.RequestStop();
        var (vcpu, exit) = await resume.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((0, ExitReason.BudgetExpired), (vcpu, exit.Reason));
        Assert.True(vm.GetVcpu(0).GetRegisters().Gpr[5] > 0);
    }

    [Fact]
    public void A_resume_that_names_no_vcpu_or_an_unknown_one_is_refused()
    {
        var (vm, _) = Build();
        Assert.Throws<ArgumentException>(() => vm.Resume([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.Resume([2]));
    }
}
