using System.Collections.Concurrent;
using ActorStep.Actors.Vcpu;
using ActorStep.Actors.Vm;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.Dispatch;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Where guests run (<see cref="VcpuDispatcher"/>, <see cref="VcpuExecutor"/>): a coordinator whose vcpus run keeps answering,
/// guest work never runs on the thread that scheduled it, at most one worker per core runs it, and other work on the thread
/// pool gets through while every vcpu runs.
/// </summary>
public sealed class VcpuDispatcherTests() : TestKit(VcpuDispatcher.Hocon())
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A vcpu that never stops: adds 1 to r5 for ever.</summary>
    internal const string Spin = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            b _start
        """;

    /// <summary>Stands for the other VMs' running vcpus: each message is a guest slice, and queues the next one.</summary>
    private sealed class BusyGuest : ReceiveActor
    {
        public BusyGuest() => Receive<string>(m =>
        {
            if (m == "stop") { Context.Stop(Self); return; }
            Thread.SpinWait(20_000);
            Self.Tell("slice");
        });
    }

    /// <summary>Measured before: on Akka's channel executor the coordinator that scheduled a vcpu while the workers were idle
    /// ran guest slices inside its own message handler for as long as any vcpu of the node had work (a running fleet: always),
    /// and answered nothing meanwhile.</summary>
    [Fact]
    public async Task A_coordinator_answers_and_halts_while_other_guests_keep_every_vcpu_worker_busy()
    {
        var vm = new EngineFixture(Sys, Spin, vcpus: 2);
        var resume = vm.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off), HoldAsyncInterrupts: true),
            System.Threading.Timeout.InfiniteTimeSpan);
        await Eventually.HoldsAsync(() => vm.Vm.GetVcpu(0).GetRegisters().Gpr[5] > 0, "the VM runs");
        var others = Enumerable.Range(0, 4 * Environment.ProcessorCount)
            .Select(_ => Sys.ActorOf(Props.Create(() => new BusyGuest()).WithDispatcher(VcpuDispatcher.Id))).ToArray();
        foreach (var g in others) g.Tell("slice");
        try
        {
            for (int round = 0; round < 3; round++)
            {
                var d = await vm.Coordinator.Ask<VmDescription>(new Describe(), Timeout);
                Assert.True(d.Running, "the continue is under way");
            }
            vm.Coordinator.Tell(new Halt());
            var stop = Assert.IsType<Stopped>(await resume.WaitAsync(Timeout));
            Assert.Equal(StopReason.Halted, stop.Event.Reason);
        }
        finally
        {
            foreach (var g in others) g.Tell("stop");
        }
    }

    /// <summary>Many VMs continued at once, as a fleet's ContinueAll does: every coordinator keeps answering while the guests
    /// run, and every one halts.</summary>
    [Fact]
    public async Task Coordinators_whose_vcpus_run_answer_describes_and_halts_while_the_guests_run()
    {
        var vms = Enumerable.Range(0, 32).Select(_ => new EngineFixture(Sys, Spin, vcpus: 2)).ToArray();
        var resumes = vms.Select(f => f.Coordinator.Ask<object>(new Resume(ContinueActions(0, 2, SchedulerLocking.Off), HoldAsyncInterrupts: true),
            System.Threading.Timeout.InfiniteTimeSpan)).ToArray();
        await Eventually.HoldsAsync(() => vms.All(f => f.Vm.GetVcpu(0).GetRegisters().Gpr[5] > 0 && f.Vm.GetVcpu(1).GetRegisters().Gpr[5] > 0),
            "every vcpu runs", Timeout);
        for (int round = 0; round < 3; round++)
            foreach (var f in vms)
            {
                var d = await f.Coordinator.Ask<VmDescription>(new Describe(), Timeout);
                Assert.True(d.Running, "the continue is under way");
            }
        foreach (var f in vms) f.Coordinator.Tell(new Halt());
        foreach (var r in resumes)
        {
            var stop = Assert.IsType<Stopped>(await r.WaitAsync(Timeout));
            Assert.Equal(StopReason.Halted, stop.Event.Reason);
        }
    }

    private sealed class Work(Action run) : IRunnable
    {
        public void Run() => run();
        public void Execute() => run();
    }

    [Fact]
    public async Task Work_given_to_the_vcpu_executor_never_runs_on_the_thread_that_gave_it()
    {
        var executor = new VcpuExecutor("test", maxPumps: 2);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var giver = new Thread(() =>
        {
            executor.Execute(new Work(() => ran.SetResult(Environment.CurrentManagedThreadId)));
            Thread.Sleep(200); // the giver stays alive and busy: work run inline would have run before Execute returned
        });
        giver.Start();
        int runner = await ran.Task.WaitAsync(Timeout);
        Assert.NotEqual(giver.ManagedThreadId, runner);
        giver.Join();
    }

    [Fact]
    public async Task No_more_workers_than_configured_run_guest_work_at_once_and_all_of_it_runs()
    {
        var executor = new VcpuExecutor("test", maxPumps: 2);
        int running = 0, most = 0, done = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int items = 200;
        for (int i = 0; i < items; i++)
            executor.Execute(new Work(() =>
            {
                int now = Interlocked.Increment(ref running);
                int seen;
                while ((seen = Volatile.Read(ref most)) < now && Interlocked.CompareExchange(ref most, now, seen) != seen) { }
                Thread.SpinWait(20_000);
                Interlocked.Decrement(ref running);
                if (Interlocked.Increment(ref done) == items) all.SetResult();
            }));
        await all.Task.WaitAsync(Timeout);
        Assert.InRange(most, 1, 2);
        Assert.Equal(items, done);
        await Eventually.HoldsAsync(() => executor.Pumps == 0, "every worker gave its thread back once the queue was empty");
    }

    /// <summary>Vcpus that always have work (each slice queues the next) must not keep the pool from running anything else.</summary>
    [Fact]
    public async Task Pool_work_queued_while_every_vcpu_runs_gets_a_thread_before_the_vcpus_stop()
    {
        var executor = new VcpuExecutor("test", maxPumps: Environment.ProcessorCount);
        var stop = new CancellationTokenSource();
        long slices = 0;
        var loops = new ConcurrentBag<Work>();
        for (int v = 0; v < 4 * Environment.ProcessorCount; v++)
        {
            Work? self = null;
            self = new Work(() =>
            {
                Interlocked.Increment(ref slices);
                Thread.SpinWait(50_000); // a guest slice
                if (!stop.IsCancellationRequested) executor.Execute(self!);
            });
            loops.Add(self);
            executor.Execute(self);
        }
        await Eventually.HoldsAsync(() => Interlocked.Read(ref slices) > 100, "the vcpus run");
        var other = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ThreadPool.UnsafeQueueUserWorkItem(_ => other.SetResult(), null);
        await other.Task.WaitAsync(Timeout);
        Assert.False(stop.IsCancellationRequested);
        stop.Cancel();
    }
}
