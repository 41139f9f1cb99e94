using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;
using static ActorStep.Actors.Vm.VmProtocol;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Engine;

/// <summary>
/// step-engine.md §6 invariants 1, 2 and 4, property-based: random programs from the whole supported
/// instruction set are host-stepped to the end through the VmCoordinator on the HV backend (the
/// trace-interrupt technique), and every stop is compared field by field with an undebugged run of the
/// same program on the same interpreter stopped after each instruction by its hardware single-step.
/// </summary>
public class InvisibilityTests(ITestOutputHelper output) : TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void Random_programs_host_stepped_on_HV_match_the_undebugged_machine_at_every_stop()
    {
        int steps = 0;
        var property = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed =>
        {
            steps += CheckProgram(seed, allowInterrupts: true);
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithQuietOnSuccess(true), property);
        output.WriteLine($"{steps} host steps compared");
        Assert.True(steps > 3000, $"only {steps} steps were compared");
    }

    [Fact]
    public void Random_programs_host_stepped_on_PR_use_the_hardware_step_and_match_too()
    {
        int steps = 0;
        for (int seed = 1; seed <= 15; seed++) steps += CheckProgram(seed * 104729, allowInterrupts: true, flavour: HypervisorFlavour.Pr);
        Assert.True(steps > 500);
    }

    [Fact]
    public void Random_programs_host_stepped_with_interrupts_held_match_where_no_interrupt_falls_due()
    {
        int steps = 0;
        for (int seed = 1; seed <= 10; seed++) steps += CheckProgram(seed * 7919, allowInterrupts: false, decrementerOff: true);
        Assert.True(steps > 300);
    }

    /// <summary>Steps one random program to its end; returns the number of steps compared. Throws with the seed on a difference.</summary>
    private int CheckProgram(int seed, bool allowInterrupts, bool decrementerOff = false, HypervisorFlavour flavour = HypervisorFlavour.Hv)
    {
        string source = RandomGuest.Generate(seed);
        if (decrementerOff) source = source.Replace("mtdec 23", "nop");
        var image = GuestAssembler.Build(source, littleEndian: true, textAddress: 0);
        var options = new MachineOptions(Vcpus: 1, MemorySize: 16UL << 20, Flavour: HypervisorFlavour.Hv);
        var debugged = SimulatedMachine.Load(image, options with { Flavour = flavour });
        var reference = SimulatedMachine.Load(image, options with { Flavour = HypervisorFlavour.Pr });
        var refVcpu = reference.GetVcpu(0);
        refVcpu.SetGuestDebug(GuestDebug.SingleStep);
        refVcpu.HoldAsyncInterrupts = !allowInterrupts;

        var coordinator = Sys.ActorOf(VmCoordinator.Props(debugged));
        try
        {
            for (int n = 0; n < 20_000; n++)
            {
                var before = refVcpu.GetRegisters();
                var exit = refVcpu.Run(1);
                object reply;
                try
                {
                    reply = coordinator.Ask<object>(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: !allowInterrupts), Timeout).Result;
                }
                catch (AggregateException e)
                {
                    throw new Xunit.Sdk.XunitException($"seed {seed}, step {n} from 0x{before.Nip:x} (msr 0x{before.Msr:x}) never ended: {e.InnerException?.Message}");
                }
                var stop = Assert.IsType<Stopped>(reply);
                if (exit.Reason == ExitReason.Stopped)
                {
                    Assert.True(stop.Event.Reason == StopReason.GuestStopped, $"seed {seed}: reference stopped, debugged reported {stop.Event}");
                    return n;
                }
                Assert.True(stop.Event.Reason == StopReason.StepCompleted, $"seed {seed} step {n} at 0x{before.Nip:x}: {stop.Event}");
                var expected = refVcpu.GetRegisters();
                var actual = coordinator.Ask<Actors.Vcpu.VcpuProtocol.Registers>(new ReadRegisters(0), Timeout).Result.State;
                var diff = expected.Differences(actual);
                Assert.True(diff.Count == 0,
                    $"seed {seed}, step {n} from 0x{before.Nip:x}: {string.Join("; ", diff)}\nprogram:\n{source}");
                CompareMemory(seed, n, reference, coordinator, RandomGuest.Scratch, RandomGuest.ScratchBytes);
            }
            throw new Xunit.Sdk.XunitException($"seed {seed}: the program did not end within 20000 steps");
        }
        finally
        {
            Sys.Stop(coordinator);
        }
    }

    private static void CompareMemory(int seed, int step, SimulatedMachine reference, IActorRef coordinator, ulong ra, int length)
    {
        var expected = new byte[length];
        reference.ReadMemory(ra, expected);
        var actual = coordinator.Ask<MemoryRead>(new ReadMemory(ra, length, null), Timeout).Result.Data;
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"seed {seed}, step {step}: guest memory at 0x{ra:x} differs");
    }
}
