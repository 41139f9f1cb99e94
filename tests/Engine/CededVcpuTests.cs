using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Stepping and continuing a vcpu that ceded (PAPR H_CEDE) through the coordinator: a step that nothing it may take can wake
/// ends at once with <see cref="StopReason.Idle"/> (no hang, no spin); one that may be woken (the decrementer with interrupts
/// allowed, another vcpu's H_PROD with scheduler-locking off) completes when the wake-up comes; a continue waits for it.
/// </summary>
public class CededVcpuTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    /// <summary>vcpu 1 stepped through its H_CEDE (which completes as a step): it is ceded at <c>after</c>; vcpu 0 has not run.</summary>
    private EngineFixture Ceded(HypervisorFlavour flavour = HypervisorFlavour.Hv)
    {
        var f = new EngineFixture(Sys, CedingGuest.Source, vcpus: 2, flavour: flavour, runModel: RunModel);
        var stop = f.Step(1, SchedulerLocking.On, count: CedingGuest.StepsToCede);
        Assert.Equal((StopReason.StepCompleted, 1, f.Image.Symbol("after"), CedingGuest.StepsToCede),
            (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip, stop.Event.Steps));
        return f;
    }

    [Theory]
    [InlineData(SchedulerLocking.Step, HypervisorFlavour.Hv)]
    [InlineData(SchedulerLocking.On, HypervisorFlavour.Hv)]
    [InlineData(SchedulerLocking.On, HypervisorFlavour.Pr)] // the hardware step
    public void A_step_of_a_ceded_vcpu_with_the_others_stopped_and_interrupts_held_ends_at_once_as_Idle(SchedulerLocking locking,
        HypervisorFlavour flavour)
    {
        var f = Ceded(flavour);
        ulong after = f.Image.Symbol("after");
        var vcpu0 = f.Registers(0);

        for (int i = 0; i < 3; i++) // the same answer each time: nothing of a step is left behind
        {
            var stop = f.Step(1, locking);
            Assert.Equal((StopReason.Idle, 1, after, 0), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip, stop.Event.Steps));
            Assert.Contains("idle in H_CEDE", stop.Event.Detail);
            Assert.Contains("H_PROD from another vcpu, a decrementer or an external interrupt would wake it", stop.Event.Detail);
            Assert.Contains("holds the decrementer and external interrupts", stop.Event.Detail);
            Assert.All(stop.Vcpus, v => Assert.Equal("stopped", v.State));
        }
        var s = f.Registers(1);
        Assert.Equal((after, 0UL, 0UL), (s.Nip, s.Gpr[6], s.Msr & Msr.SE));
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
        Assert.Equal((vcpu0.Nip, vcpu0.Tb), (f.Registers(0).Nip, f.Registers(0).Tb));
    }

    [Fact]
    public void A_counted_step_that_cedes_on_its_way_ends_as_Idle_with_the_instructions_it_executed()
    {
        var f = new EngineFixture(Sys, CedingGuest.Source, vcpus: 2, runModel: RunModel);
        var stop = f.Step(1, SchedulerLocking.On, count: CedingGuest.StepsToCede + 3);
        Assert.Equal((StopReason.Idle, f.Image.Symbol("after"), CedingGuest.StepsToCede),
            (stop.Event.Reason, stop.Event.Nip, stop.Event.Steps));
        Assert.Contains($"after {CedingGuest.StepsToCede} instruction(s)", stop.Event.Detail);
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
    }

    [Fact]
    public void A_step_of_a_ceded_vcpu_with_the_other_vcpus_running_completes_once_one_of_them_prods_it()
    {
        var f = Ceded();
        var stop = f.Step(1, SchedulerLocking.Off);
        Assert.Equal((StopReason.StepCompleted, 1, f.Image.Symbol("after") + 4), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip));
        Assert.Equal(1UL, f.Registers(1).Gpr[6]);
        Assert.Equal(1000UL, f.Registers(0).Gpr[5]); // vcpu 0 counted to 1000, then prodded
    }

    [Fact]
    public void A_step_of_a_ceded_vcpu_with_interrupts_allowed_ends_at_the_handler_of_the_decrementer_that_wakes_it()
    {
        var f = Ceded();
        var stop = f.Resume(new Dictionary<int, VcpuAction> { [1] = VcpuAction.Step }, hold: false);
        Assert.Equal((StopReason.StepCompleted, CedingGuest.DecrementerHandler, "Interrupted"),
            (stop.Event.Reason, stop.Event.Nip, stop.Event.StepCompletion));
        var s = f.Registers(1);
        Assert.Equal((f.Image.Symbol("after"), 0UL), (s.Srr0, s.Gpr[20]));
    }

    [Fact]
    public void A_continue_of_a_ceded_vcpu_waits_for_the_decrementer_to_wake_it()
    {
        var f = Ceded();
        f.Ask(new InsertBreakpoint(CedingGuest.DecrementerHandler, TranslateForVcpu: 1));
        var stop = f.Resume(ContinueActions(1, 2, SchedulerLocking.On));
        Assert.Equal((StopReason.Breakpoint, 1, CedingGuest.DecrementerHandler), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip));
        Assert.Equal(f.Image.Symbol("after"), f.Registers(1).Srr0);
    }
}

/// <summary>Every test of <see cref="CededVcpuTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class CededVcpuTestsOnAnAllStopBackend : CededVcpuTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
