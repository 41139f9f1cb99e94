using ActorStep.Hypervisor;

namespace ActorStep.Actors.Engine;

/// <summary>
/// The machine's one clock for vcpus idle on the host's clock (H_CEDE under a backend that paces idle time), with no actor in it:
/// when each continuing vcpu began to wait for its decrementer (<see cref="RunCommandKind.WaitForWake"/>), the host's time it
/// waited in a resume that stopped first, and how much guest time its next slice lets pass (<see cref="RunSlice.IdleTicks"/>,
/// <see cref="IVcpu.PassIdleTime"/>): the host's time it waited, converted at the paced timebase frequency, but at most what keeps
/// its timebase within <see cref="MaxSkew"/> of every other vcpu's clock — a busy vcpu's last timebase (it moves with its
/// instructions, slower than the wall's here), a waiting vcpu's last timebase plus what it is owed and has waited so far. One
/// clock per machine, as MachineRunner keeps it: Linux assumes its cpus' timebases agree (its SMP watchdog compares them). The
/// time beyond the cap is dropped; the time the VM stays stopped (a debugger's pause) is not the guest's.
/// The coordinator drives it: <see cref="WaitBegins"/> at WaitForWake, <see cref="Take"/> as it sends a slice, <see cref="SuspendAll"/>
/// at a stop. Not thread-safe: the coordinator calls it from its one thread.
/// </summary>
public sealed class IdleClock
{
    private readonly ulong _frequency;
    private readonly IReadOnlyList<VcpuState> _last;
    private readonly AllStopScheduler _run;
    private readonly TimeProvider _time;
    /// <summary>When each vcpu began to wait for its decrementer on the host's clock (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    private readonly long[] _since;
    private readonly bool[] _waits;
    /// <summary>Host time each vcpu waited in a resume that stopped before its next slice (timebase ticks): its next slice lets it pass.</summary>
    private readonly ulong[] _owed;

    /// <param name="pacedFrequency">timebase ticks per second of the backend that paces idle time
    /// (<see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>; 0: it does not, and no vcpu ever waits)</param>
    /// <param name="last">the coordinator's last known registers of each vcpu (their timebases: the other vcpus' clocks)</param>
    /// <param name="run">the run control, which says which vcpus still wait and which keep guest time</param>
    /// <param name="time">the host's clock (the system's when null)</param>
    public IdleClock(ulong pacedFrequency, IReadOnlyList<VcpuState> last, AllStopScheduler run, TimeProvider? time = null)
    {
        _frequency = pacedFrequency;
        _last = last;
        _run = run;
        _time = time ?? TimeProvider.System;
        _since = new long[last.Count];
        _waits = new bool[last.Count];
        _owed = new ulong[last.Count];
    }

    /// <summary>Timebase ticks per second of the paced timebase.</summary>
    public ulong Frequency => _frequency;

    /// <summary>How far an idle vcpu's timebase may get ahead of another vcpu's clock: 2 ms of guest time (MachineRunner's MaxSkew).</summary>
    public ulong MaxSkew => _frequency / 500;

    /// <summary>Vcpu <paramref name="v"/> begins to wait for its decrementer on the host's clock now.</summary>
    public void WaitBegins(int v)
    {
        _since[v] = _time.GetTimestamp();
        _waits[v] = true;
    }

    /// <summary>Vcpu <paramref name="v"/> has begun to wait and its time is not yet taken (<see cref="Take"/>, <see cref="SuspendAll"/>).</summary>
    public bool Waits(int v) => _waits[v];

    /// <summary>
    /// The guest time vcpu <paramref name="v"/>'s next slice lets pass, in timebase ticks, taken (given once): what it was owed and
    /// the host's time it has waited (0: it did not wait), capped so that its timebase stays within <see cref="MaxSkew"/> of every
    /// other vcpu's clock; the rest is dropped. Vcpus that keep no guest time (held by the resume, not started, ceded, stopped for
    /// good; or woken and not yet given their slice) do not cap it.
    /// </summary>
    public ulong Take(int v)
    {
        ulong idle = Capped(v);
        _owed[v] = 0;
        _waits[v] = false;
        return idle;
    }

    /// <summary>What <see cref="Take"/> gives vcpu <paramref name="v"/> now, taking nothing.</summary>
    private ulong Capped(int v)
    {
        ulong waited = _owed[v] + WaitingSoFar(v);
        if (waited == 0) return 0; // (the cap of nothing is nothing; the coordinator asks at every slice)
        ulong? slowest = null;
        for (int u = 0; u < _last.Count; u++)
        {
            if (u == v) continue;
            ulong? clock = _waits[u] && _run.Waiting(u) ? _last[u].Tb + _owed[u] + WaitingSoFar(u)
                : _run.KeepsGuestTime(u) ? _last[u].Tb : null;
            if (clock is { } c) slowest = Math.Min(slowest ?? ulong.MaxValue, c);
        }
        if (slowest is not { } s) return waited;
        ulong limit = s + MaxSkew, mine = _last[v].Tb;
        return limit > mine ? Math.Min(waited, limit - mine) : 0;
    }

    /// <summary>The VM stops: the time each waiting vcpu waited (capped as <see cref="Take"/> caps it) is owed to its next slice,
    /// and the time the VM then stays stopped is not counted. Every cap is worked out against the clocks as they stood at the
    /// stop, before any wait is ended: ending them one after another would cap a later vcpu against an earlier one's timebase
    /// without its wait, and not the other way round. Returns the vcpus that were waiting.</summary>
    public IReadOnlyList<int> SuspendAll()
    {
        var owed = new ulong[_waits.Length];
        var waiting = new List<int>();
        for (int v = 0; v < _waits.Length; v++)
            if (_waits[v])
            {
                owed[v] = Capped(v); // what it owed before, and this wait
                waiting.Add(v);
            }
        foreach (int v in waiting)
        {
            _owed[v] = owed[v];
            _waits[v] = false;
        }
        return waiting;
    }

    /// <summary>Timebase ticks of the host's time since vcpu <paramref name="v"/> began to wait (0: it does not).</summary>
    public ulong WaitingSoFar(int v) =>
        _waits[v] ? (ulong)(_time.GetElapsedTime(_since[v]).TotalSeconds * _frequency) : 0;
}
