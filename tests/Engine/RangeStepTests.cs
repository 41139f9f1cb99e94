using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Range stepping (gdb's <c>vCont;r</c>): one resume steps a vcpu while NIP stays in [start, end), so a source line
/// costs one round trip. Each stop is compared with the same program run undebugged for as many instructions.
/// </summary>
public class RangeStepTests : TestKit
{
    /// <summary>How the backend runs its vcpus; the all-stop variant of this class runs every test on a VM that runs only as a whole.</summary>
    protected virtual VcpuRunModel RunModel => VcpuRunModel.IndependentVcpus;

    private const string Source = """
            .org 0x700
            mfsrr0 30
            addi 30, 30, 4
            mtsrr0 30
            rfid
            .org 0xD00
            addi 31, 31, 1
            rfid
            .org 0x5000
            .globl _start
        _start:
            li 5, 1
            addi 5, 5, 2
        line2:
            mulli 6, 5, 7
            addi 6, 6, 1
            bl function
        line3:
            addi 7, 7, 1
        spin:
            b spin
        line4:
            nop
            .org 0x5100
        function:
            addi 8, 8, 1
            blr
        """;

    private EngineFixture Fixture(HypervisorFlavour flavour = HypervisorFlavour.Hv) =>
        new(Sys, Source, vcpus: 2, flavour: flavour, runModel: RunModel);

    private static Stopped RangeStep(EngineFixture f, ulong start, ulong end, int vcpu = 0) =>
        f.Resume(new Dictionary<int, VcpuAction> { [vcpu] = VcpuAction.Step }, hold: true, count: 1, new Dictionary<int, StepRange> { [vcpu] = new(start, end) });

    /// <summary>The undebugged machine after <paramref name="instructions"/> instructions of vcpu 0.</summary>
    private static VcpuState Reference(EngineFixture f, long instructions)
    {
        var reference = f.Reference().GetVcpu(0);
        reference.Run(instructions);
        return reference.GetRegisters();
    }

    private static void AssertExact(EngineFixture f, long instructions)
    {
        var diff = Reference(f, instructions).Differences(f.Registers(0));
        Assert.True(diff.Count == 0, string.Join("; ", diff));
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public void A_range_step_runs_the_whole_range_in_one_resume_and_stops_where_NIP_leaves_it(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);
        var stop = RangeStep(f, f.Image.Symbol("_start"), f.Image.Symbol("line2"));
        Assert.Equal(StopReason.StepCompleted, stop.Event.Reason);
        Assert.Equal(f.Image.Symbol("line2"), stop.Event.Nip);
        Assert.Equal(2, stop.Event.Steps);
        AssertExact(f, 2);
        Assert.Equal(f.Image.Symbol("_start"), f.Vm.GetVcpu(1).GetRegisters().Nip); // vcpu 1 was not resumed
    }

    [Fact]
    public void A_call_out_of_the_range_stops_at_the_callee()
    {
        var f = Fixture();
        RangeStep(f, f.Image.Symbol("_start"), f.Image.Symbol("line2"));
        var stop = RangeStep(f, f.Image.Symbol("line2"), f.Image.Symbol("line3"));
        Assert.Equal(f.Image.Symbol("function"), stop.Event.Nip);
        Assert.Equal(3, stop.Event.Steps);
        AssertExact(f, 5);
    }

    [Fact]
    public void A_user_breakpoint_inside_the_range_ends_the_step_there()
    {
        var f = Fixture();
        ulong inside = f.Image.Symbol("_start") + 4;
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(inside)));
        var stop = RangeStep(f, f.Image.Symbol("_start"), f.Image.Symbol("line2"));
        Assert.Equal(StopReason.Breakpoint, stop.Event.Reason);
        Assert.Equal(inside, stop.Event.Nip);
        Assert.Equal(1, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount); // the user's only
        Assert.IsType<BreakpointChanged>(f.Ask(new RemoveBreakpoint(inside)));
        AssertExact(f, 1);
    }

    [Fact]
    public void An_empty_range_is_a_single_step()
    {
        var f = Fixture();
        var stop = RangeStep(f, 0x9000, 0x9000);
        Assert.Equal(1, stop.Event.Steps);
        AssertExact(f, 1);
    }

    [Theory]
    [InlineData(HypervisorFlavour.Hv)]
    [InlineData(HypervisorFlavour.Pr)]
    public async Task A_range_step_that_loops_inside_its_range_runs_until_halted_and_leaves_nothing_behind(HypervisorFlavour flavour)
    {
        var f = Fixture(flavour);
        ulong spin = f.Image.Symbol("spin");
        Assert.IsType<BreakpointChanged>(f.Ask(new InsertBreakpoint(spin)));
        f.Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue });
        Assert.IsType<BreakpointChanged>(f.Ask(new RemoveBreakpoint(spin)));
        ulong tb = f.Registers(0).Tb;
        var running = f.Coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, true, 1,
            new Dictionary<int, StepRange> { [0] = new(spin, spin + 4) }), EngineFixture.Timeout);
        // A thousand steps round the loop, all inside one resume that goes on.
        await Eventually.HoldsAsync(() => running.IsCompleted || f.Registers(0).Tb >= tb + 1000, "a thousand steps inside the range");
        Assert.False(running.IsCompleted, "the vcpu left a range it cannot leave");
        Assert.True(Assert.IsType<VmDescription>(f.Ask(new Describe())).Running);
        var halted = Assert.IsType<Stopped>(f.Ask(new Halt()));
        Assert.Equal(StopReason.Halted, halted.Event.Reason);
        Assert.IsType<Stopped>(await running);
        var s = f.Registers(0);
        Assert.Equal(spin, s.Nip);
        Assert.Equal(0UL, s.Msr & Msr.SE);
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
        Assert.Equal(0UL, s.Gpr[31]); // the guest's Trace handler never ran
    }

    [Fact]
    public async Task A_range_step_over_an_rfid_to_itself_runs_until_halted()
    {
        // rfid to its own address is performed by the engine (no breakpoint can catch it): the range keeps it going,
        // and the slice budget still lets a halt through.
        var f = new EngineFixture(Sys, """
                .org 0x5000
                .globl _start
            _start:
                lis 5, back@h
                ori 5, 5, back@l
                mtsrr0 5
                mfmsr 6
                mtsrr1 6
            back:
                rfid
            """, vcpus: 1, runModel: RunModel);
        ulong back = f.Image.Symbol("back");
        RangeStep(f, f.Image.Symbol("_start"), back);
        Assert.Equal(back, f.Registers(0).Nip);
        ulong tb = f.Registers(0).Tb;
        var running = f.Coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, true, 1,
            new Dictionary<int, StepRange> { [0] = new(back, back + 4) }), EngineFixture.Timeout);
        // Each emulated rfid retires one instruction (time advances): a thousand of them inside one resume that goes on.
        await Eventually.HoldsAsync(() => running.IsCompleted || f.Registers(0).Tb >= tb + 1000, "a thousand rfids inside the range");
        Assert.False(running.IsCompleted, "the vcpu left a range it cannot leave");
        Assert.Equal(StopReason.Halted, Assert.IsType<Stopped>(f.Ask(new Halt())).Event.Reason);
        Assert.IsType<Stopped>(await running);
        Assert.Equal(back, f.Registers(0).Nip);
        Assert.Equal(0, Assert.IsType<VmDescription>(f.Ask(new Describe())).BreakpointCount);
    }

    [Theory]
    [InlineData(VcpuAction.Continue, 0x5000UL, 0x5008UL, 1, "does not step")]
    [InlineData(VcpuAction.Step, 0x5008UL, 0x5000UL, 1, "ends before it starts")]
    [InlineData(VcpuAction.Step, 0x5000UL, 0x5008UL, 3, "no step count")]
    public void A_malformed_range_step_is_refused_and_runs_nothing(VcpuAction action, ulong start, ulong end, int count, string reason)
    {
        var f = Fixture();
        var reply = f.Ask(new Resume(new Dictionary<int, VcpuAction> { [0] = action }, true, count,
            new Dictionary<int, StepRange> { [0] = new(start, end) }));
        var failed = Assert.IsType<Failed>(reply);
        Assert.Equal(FailureCode.InvalidArgument, failed.Code);
        Assert.Contains(reason, failed.Message);
        Assert.Equal(f.Image.Symbol("_start"), f.Registers(0).Nip);
    }
}

/// <summary>Every test of <see cref="RangeStepTests"/> on a backend that runs the VM only as a whole, in all-stop (QEMU's gdbstub).</summary>
public class RangeStepTestsOnAnAllStopBackend : RangeStepTests
{
    protected override VcpuRunModel RunModel => VcpuRunModel.AllStop;
}
