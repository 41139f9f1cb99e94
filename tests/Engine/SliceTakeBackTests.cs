using ActorStep.Actors.Engine;
using ActorStep.Actors.Vcpu;
using ActorStep.Actors.Vm;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// A halt does not wait for continue slices that have not begun (<see cref="SliceTicket"/>): on a node whose vcpu workers are
/// all busy, the halted VM stops at once and its waiting vcpus never enter the guest. The vcpu dispatcher here has one worker,
/// which the test holds.
/// </summary>
public sealed class SliceTakeBackTests() : TestKit(VcpuDispatcher.Hocon().Replace($"vcpu-executor.workers = {Environment.ProcessorCount}", "vcpu-executor.workers = 1"))
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Holds the dispatcher's only worker until released.</summary>
    private sealed class Holder : ReceiveActor
    {
        public Holder(ManualResetEventSlim release, ManualResetEventSlim holding) => Receive<string>(_ =>
        {
            holding.Set();
            release.Wait(TimeSpan.FromMinutes(1));
        });
    }

    [Fact]
    public async Task A_halt_stops_a_continue_whose_vcpus_wait_for_a_worker_without_running_them()
    {
        using var release = new ManualResetEventSlim();
        using var holding = new ManualResetEventSlim();
        var holder = Sys.ActorOf(Props.Create(() => new Holder(release, holding)).WithDispatcher(VcpuDispatcher.Id));
        holder.Tell("hold");
        Assert.True(holding.Wait(Timeout), "the worker is held");
        try
        {
            var f = new EngineFixture(Sys, VcpuDispatcherTests.Spin, vcpus: 2);
            var resume = f.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off), HoldAsyncInterrupts: true),
                System.Threading.Timeout.InfiniteTimeSpan);
            var d = await f.Coordinator.Ask<VmDescription>(new Describe(), Timeout);
            Assert.True(d.Running);
            var halted = await f.Coordinator.Ask<object>(new Halt(), Timeout);
            var stop = Assert.IsType<Stopped>(halted);
            Assert.Equal(StopReason.Halted, stop.Event.Reason);
            Assert.IsType<Stopped>(await resume.WaitAsync(Timeout));
            Assert.All(stop.Vcpus, p => Assert.Equal(f.Image.Entry, p.Nip));
            Assert.Equal(0UL, f.Vm.GetVcpu(0).GetRegisters().Gpr[5]);
            Assert.Equal(0UL, f.Vm.GetVcpu(1).GetRegisters().Gpr[5]);

            // Once the worker is free the taken-back slices are skipped, and the VM runs and halts as ever.
            release.Set();
            var again = f.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off), HoldAsyncInterrupts: true),
                System.Threading.Timeout.InfiniteTimeSpan);
            await Eventually.HoldsAsync(() => f.Vm.GetVcpu(0).GetRegisters().Gpr[5] > 0 && f.Vm.GetVcpu(1).GetRegisters().Gpr[5] > 0, "both vcpus run");
            Assert.IsType<Stopped>(await f.Coordinator.Ask<object>(new Halt(), Timeout));
            Assert.IsType<Stopped>(await again.WaitAsync(Timeout));
        }
        finally { release.Set(); }
    }

    [Fact]
    public void A_vcpu_actor_skips_a_slice_taken_back_and_sends_nothing_for_it()
    {
        var image = GuestAssembler.Build(VcpuDispatcherTests.Spin, textAddress: 0);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vcpu = Sys.ActorOf(VcpuActor.Props(vm, 0, new BreakpointTable(vm)));
        var ticket = new SliceTicket();
        Assert.True(ticket.TryTakeBack());
        vcpu.Tell(new RunSlice(1000, SliceMode.Continue) { Ticket = ticket });
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(0UL, vm.GetVcpu(0).GetRegisters().Gpr[5]);

        var started = new SliceTicket();
        vcpu.Tell(new RunSlice(1000, SliceMode.Continue) { Ticket = started });
        var ended = ExpectMsg<SliceEnded>();
        Assert.Equal(SliceOutcome.Ran, ended.Outcome);
        Assert.True(ended.State.Gpr[5] > 0);
        Assert.False(started.TryTakeBack(), "a slice that began cannot be taken back");
    }
}
