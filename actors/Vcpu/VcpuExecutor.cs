using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Configuration;
using Akka.Dispatch;

namespace ActorStep.Actors.Vcpu;

/// <summary>
/// The vcpu dispatcher's executor: guest slices run on the .NET thread pool, at most one per core at a time, each worker
/// ("pump") giving its thread back after <see cref="Quantum"/> so that everything else queued there (gRPC, Ask continuations,
/// the VM coordinators) runs between slices. Nothing ever runs on the thread that schedules work: Akka's channel executor,
/// used before, created its queues with synchronous continuations, so the first actor to schedule a vcpu while its workers
/// were idle (a coordinator sending the first slice of a continue) became the executor's work loop and ran guest slices
/// inside its own message handler until no vcpu had work left — with the fleet running, tens of seconds in which that VM's
/// coordinator answered nothing (the fleet's 30 s describe timeouts).
/// </summary>
public sealed class VcpuExecutor : ExecutorService
{
    /// <summary>How long a pump runs queued mailboxes before it gives its thread back: a few slices of a busy vcpu.</summary>
    public static readonly TimeSpan Quantum = TimeSpan.FromMilliseconds(2);

    private readonly ConcurrentQueue<IRunnable> _queue = new();
    private readonly int _maxPumps;
    private readonly long _quantumTicks = (long)(Quantum.TotalSeconds * Stopwatch.Frequency);
    private int _pumps;
    private volatile bool _shutDown;

    public VcpuExecutor(string id, int maxPumps) : base(id)
    {
        if (maxPumps < 1) throw new ArgumentOutOfRangeException(nameof(maxPumps), "a vcpu executor needs at least one worker");
        _maxPumps = maxPumps;
    }

    /// <summary>Workers running or queued now (at most the configured number).</summary>
    public int Pumps => Volatile.Read(ref _pumps);

    public override void Execute(IRunnable run)
    {
        if (_shutDown) throw new RejectedExecutionException($"the vcpu executor {Id} is shut down");
        _queue.Enqueue(run);
        StartPump(preferLocal: true);
    }

    public override void Shutdown() => _shutDown = true;

    /// <summary>Adds a worker unless every one is out; a worker queued from a pool thread runs on that thread once it is done
    /// with what it runs now (no other thread woken for a step's slice), unless an idle thread takes it first.</summary>
    private void StartPump(bool preferLocal)
    {
        while (true)
        {
            int p = Volatile.Read(ref _pumps);
            if (p >= _maxPumps) return;
            if (Interlocked.CompareExchange(ref _pumps, p + 1, p) != p) continue;
            ThreadPool.UnsafeQueueUserWorkItem(new Pump(this), preferLocal);
            return;
        }
    }

    private void RunPump(Pump pump)
    {
        long deadline = Stopwatch.GetTimestamp() + _quantumTicks;
        while (_queue.TryDequeue(out var run))
        {
            run.Run();
            if (Stopwatch.GetTimestamp() < deadline || _queue.IsEmpty) continue;
            // Quantum used up with work left: back of the pool's global queue, behind whatever else waits there.
            ThreadPool.UnsafeQueueUserWorkItem(pump, preferLocal: false);
            return;
        }
        Interlocked.Decrement(ref _pumps);
        // A mailbox queued between the last TryDequeue and the decrement found every worker out: start one for it.
        if (!_queue.IsEmpty) StartPump(preferLocal: false);
    }

    private sealed class Pump(VcpuExecutor owner) : IThreadPoolWorkItem
    {
        public void Execute() => owner.RunPump(this);
    }
}

/// <summary>Configures <see cref="VcpuExecutor"/> from a dispatcher's <c>vcpu-executor.workers</c> (0: one per core).</summary>
public sealed class VcpuExecutorConfigurator(Config config, IDispatcherPrerequisites prerequisites) : ExecutorServiceConfigurator(config, prerequisites)
{
    private readonly int _workers = config.GetInt("vcpu-executor.workers", 0) is > 0 and var n ? n : Environment.ProcessorCount;

    public override ExecutorService Produce(string id) => new VcpuExecutor(id, _workers);
}
