using System.Threading.Channels;
using ActorStep.Protocol.Gdb;

namespace ActorStep.Host.Gdb;

/// <summary>
/// gdb's non-stop mode over the gRPC API, for a VM whose vcpus run independently (not <c>Capabilities.all_stop</c>). The API's
/// resumes are all-stop (one at a time; the first event stops every vcpu of the resume, events met meanwhile are kept), so the
/// bridge keeps one resume running with every vcpu gdb has set moving (<see cref="NonStopOverAllStop"/> decides): when one stops,
/// only it is reported and the next resume takes the others on; when gdb starts or stops a vcpu meanwhile, the resume is halted
/// and resumed with the new set. The guest cannot tell (a halt is invisible to it: its time follows its instructions); gdb sees
/// each vcpu run and stop on its own. Stops go to the session through <see cref="NextStopAsync"/>.
/// </summary>
internal sealed class GrpcNonStop(GrpcGdbTarget target) : IGdbNonStop, IDisposable
{
    private readonly object _lock = new();
    private readonly Channel<GdbStopEvent> _stops = Channel.CreateUnbounded<GdbStopEvent>();
    private readonly CancellationTokenSource _cts = new();
    private NonStopOverAllStop? _plan;
    private TaskCompletionSource _wake = NewSignal();
    /// <summary>Completed while the loop has no resume in flight and nothing to run.</summary>
    private TaskCompletionSource _idle = NewSignal();
    private Task? _loop;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task EnterAsync(CancellationToken ct)
    {
        var threads = await target.GetThreadsAsync(ct);
        await target.SetNonStopAsync(true, ct);
        lock (_lock)
        {
            _plan = new NonStopOverAllStop(threads.Count);
            _loop ??= Task.Run(() => LoopAsync(_cts.Token));
        }
    }

    public async Task LeaveAsync(CancellationToken ct)
    {
        Task idle;
        lock (_lock)
        {
            if (_plan is null) return;
            _plan.StopAll();
            idle = _idle.Task;
            Wake();
        }
        await idle.WaitAsync(ct);
        while (_stops.Reader.TryRead(out _)) { } // stops of the vcpus just halted: gdb asks with '?' if it wants them
        await target.SetNonStopAsync(false, ct);
    }

    public Task ResumeAsync(GdbResume resume, CancellationToken ct)
    {
        lock (_lock)
        {
            Plan.Start(resume);
            if (Plan.Changed) Wake();
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(int vcpu, CancellationToken ct)
    {
        lock (_lock)
        {
            if (Plan.Stop(vcpu)) Wake();
        }
        return Task.CompletedTask;
    }

    public Task<GdbStopEvent> NextStopAsync(CancellationToken ct) => _stops.Reader.ReadAsync(ct).AsTask();

    private NonStopOverAllStop Plan => _plan ?? throw new InvalidOperationException("non-stop mode is off");

    private void Wake()
    {
        var woken = _wake;
        _wake = NewSignal();
        woken.TrySetResult();
    }

    private void Report(IReadOnlyList<GdbStopEvent> stops)
    {
        foreach (var s in stops) _stops.Writer.TryWrite(s);
    }

    /// <summary>One resume at a time with every vcpu that should move; halted and resumed anew when gdb changes that set.</summary>
    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            GdbResume? resume;
            Task wake;
            lock (_lock)
            {
                Report(Plan.TakeOwedStops());
                resume = Plan.NextResume();
                wake = _wake.Task;
                if (resume is null) _idle.TrySetResult();
                else if (_idle.Task.IsCompleted) _idle = NewSignal();
            }
            if (resume is null)
            {
                try { await wake.WaitAsync(ct); } catch (OperationCanceledException) { break; }
                continue;
            }

            var running = target.ResumeOnceAsync(resume, ct);
            bool halted = false;
            try
            {
                if (await Task.WhenAny(running, wake) != running)
                {
                    // gdb started or stopped a vcpu: halt, then the next resume carries the new set. A halt that reaches the server
                    // before the resume does finds the VM stopped; it is sent again until the resume ends.
                    halted = true;
                    while (!running.IsCompleted)
                    {
                        try { await target.InterruptAsync(ct); } catch (GdbTargetException) { }
                        await Task.WhenAny(running, Task.Delay(GrpcGdbTarget.HaltRetry, ct));
                    }
                }
                var stop = await running;
                lock (_lock) Report(Plan.Stopped(stop, halted));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                lock (_lock) Report(Plan.Failed(e.Message));
            }
        }
    }

    /// <summary>The bridge is done with this gdb: a resume in flight is cancelled (the server halts the VM).</summary>
    public void Dispose()
    {
        _cts.Cancel();
        _stops.Writer.TryComplete();
    }
}
