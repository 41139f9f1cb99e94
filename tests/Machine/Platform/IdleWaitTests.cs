using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Machine.Interrupts;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Platform;

/// <summary>
/// <see cref="MachineOptions.IdleOnHostClock"/> (what Linux VMs under serve get): a vcpu ceded in H_CEDE runs nothing and lets
/// no guest time pass in its Run; it says when its decrementer falls due, and the time passes when the engine says how much of
/// the host's did (<see cref="IVcpu.PassIdleTime"/>). Without the option a ceded vcpu's Run lets its budget's time pass.
/// </summary>
public class IdleWaitTests
{
    /// <summary>The decrementer the guest arms before it cedes: 0x10000 ticks.</summary>
    private const ulong Dec = 0x10000;

    /// <summary>vcpu 0 arms its decrementer (<see cref="Dec"/>) and cedes; the decrementer's handler (0x900) stops it with status 9.
    /// vcpu 1 (not run unless a test runs it) H_PRODs vcpu 0.</summary>
    private static (SimulatedMachine Vm, IVcpu Vcpu) Ceded(bool hostClock)
    {
        var image = GuestAssembler.Build($"""
                .org 0x900
            {Asm.Hcall(0xF080, 9)}
                .org 0x1000
                .globl _start
            _start:
                cmpdi 3, 1
                beq prod
            cede:
                lis 5, 1
                mtdec 5
            {Asm.Hcall(0xE0)}
                b cede
            prod:
            {Asm.Hcall(0x108, 0)}
                b .
            """, littleEndian: true, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(2, 1UL << 20, IdleOnHostClock: hostClock));
        var vcpu = vm.GetVcpu(0);
        Assert.Equal(ExitReason.Idle, vcpu.Run(1000).Reason); // through the H_CEDE: ceded now
        return (vm, vcpu);
    }

    [Fact]
    public void On_the_host_clock_a_ceded_vcpus_Run_lets_no_time_pass_and_says_when_its_decrementer_falls_due()
    {
        var (vm, vcpu) = Ceded(hostClock: true);
        var before = vcpu.GetRegisters();

        var exit = vcpu.Run(1_000_000);

        Assert.Equal(ExitReason.Idle, exit.Reason);
        var after = vcpu.GetRegisters();
        Assert.Equal((before.Tb, before.Dec, before.Nip), (after.Tb, after.Dec, after.Nip));
        Assert.Equal(after.Dec + 1UL, exit.WakesIn);
        Assert.True(after.Dec < Dec, $"DEC 0x{after.Dec:x}");
        Assert.Equal(MachineOptions.TimebaseFrequency, vm.Capabilities.PacedTimebaseFrequency);
    }

    [Fact]
    public void The_idle_time_the_engine_passes_moves_the_timebase_and_the_decrementer_that_wakes_the_vcpu()
    {
        var (_, vcpu) = Ceded(hostClock: true);
        var exit = vcpu.Run(1000);
        ulong wakesIn = exit.WakesIn!.Value;
        ulong tb = vcpu.GetRegisters().Tb;

        vcpu.PassIdleTime(wakesIn - 1);
        var stillIdle = vcpu.Run(1000);
        Assert.Equal((ExitReason.Idle, 1UL), (stillIdle.Reason, stillIdle.WakesIn));
        Assert.Equal(tb + wakesIn - 1, vcpu.GetRegisters().Tb);

        vcpu.PassIdleTime(1);
        var woken = vcpu.Run(1000);
        Assert.Equal((ExitReason.Stopped, 9L), (woken.Reason, woken.Status)); // the decrementer's handler ran
    }

    [Fact]
    public void On_the_host_clock_an_H_PROD_wakes_a_ceded_vcpu_without_any_time_passing()
    {
        var (vm, vcpu) = Ceded(hostClock: true);
        var woken = new List<int>();
        vm.VcpuWakeRequested += woken.Add;
        ulong tb = vcpu.GetRegisters().Tb;

        vm.GetVcpu(1).Run(20); // to its H_PROD of vcpu 0
        var exit = vcpu.Run(2);

        Assert.Equal([0], woken);
        Assert.Equal(ExitReason.BudgetExpired, exit.Reason); // ran on after the H_CEDE: b cede, lis
        Assert.Equal(tb + 2, vcpu.GetRegisters().Tb);
    }

    [Fact]
    public void Without_the_host_clock_a_ceded_vcpus_Run_lets_its_budgets_time_pass()
    {
        var (vm, vcpu) = Ceded(hostClock: false);
        ulong tb = vcpu.GetRegisters().Tb;

        var exit = vcpu.Run(1000);

        Assert.Equal(ExitReason.Idle, exit.Reason);
        Assert.Equal(tb + 1000, vcpu.GetRegisters().Tb);
        Assert.Equal(0UL, vm.Capabilities.PacedTimebaseFrequency);
    }
}
