using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// The machine's one clock for vcpus idle on the host's clock (<see cref="IdleClock"/>), without an ActorSystem: the host's
/// clock is the test's, and the run control is a real <see cref="AllStopScheduler"/> driven the way the coordinator drives both
/// (WaitForWake begins a wait, a slice takes the idle time, a stop suspends the waits). Times are whole 128ths of a second, which
/// the timebase frequency converts exactly.
/// </summary>
public class IdleClockTests
{
    private const ulong Frequency = MachineOptions.TimebaseFrequency;
    /// <summary>2 ms of guest time.</summary>
    private const ulong MaxSkew = Frequency / 500;
    /// <summary>The host's clock advanced by <see cref="Tick"/> lets <see cref="TickTicks"/> timebase ticks pass.</summary>
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1.0 / 128);
    private const ulong TickTicks = Frequency / 128;

    private sealed class ManualClock : TimeProvider
    {
        private long _now = 1_000_000;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _now;
        public void Advance(int ticks) => _now += (Tick * ticks).Ticks;
    }

    /// <summary>A machine of <paramref name="tbs"/>.Length vcpus whose last timebases are those, its run control on a backend that
    /// paces idle time, and its idle clock on the test's host clock.</summary>
    private sealed class Machine
    {
        public readonly VcpuState[] Last;
        public readonly AllStopScheduler Run;
        public readonly IdleClock Idle;
        public readonly ManualClock Host = new();

        public Machine(params ulong[] tbs)
        {
            Last = tbs.Select(tb => new VcpuState { Tb = tb, Nip = 0x1000 }).ToArray();
            Run = new AllStopScheduler(Last, new CoordinatorOptions(Quantum: 500), pacedIdle: true);
            Idle = new IdleClock(Frequency, Last, Run, Host);
        }

        /// <summary>Carries out the commands as the coordinator does (its idle-clock part); returns each slice's idle ticks by vcpu.</summary>
        public Dictionary<int, ulong> Execute(ReadOnlySpan<RunCommand> commands)
        {
            var idle = new Dictionary<int, ulong>();
            foreach (var c in commands)
            {
                if (c.Kind == RunCommandKind.RunSlice) idle[c.Vcpu] = Idle.Take(c.Vcpu);
                else if (c.Kind == RunCommandKind.WaitForWake) Idle.WaitBegins(c.Vcpu);
                else if (c.Kind == RunCommandKind.Stop) Idle.SuspendAll();
            }
            return idle;
        }

        public Dictionary<int, ulong> Continue(params int[] vcpus) =>
            Execute(Run.Resume(new Resume(vcpus.ToDictionary(v => v, _ => VcpuAction.Continue))));

        /// <summary>Vcpu <paramref name="v"/>'s continue slice ended idle, its decrementer far away: it begins to wait.</summary>
        public void Cedes(int v)
        {
            Execute(Run.SliceEnded(new SliceEnded(v, SliceOutcome.Idle, Last[v], WakesIn: 100 * Frequency)));
            Assert.True(Idle.Waits(v));
        }

        /// <summary>Vcpu <paramref name="v"/> is woken (its decrementer, an H_PROD): the idle ticks its slice lets pass.</summary>
        public ulong Wakes(int v) => Execute(Run.Woken(v))[v];
    }

    [Fact]
    public void A_lone_waiting_vcpu_gets_all_the_host_time_it_waited_converted_at_the_paced_timebase_frequency()
    {
        var m = new Machine(5_000_000);
        m.Continue(0);
        m.Cedes(0);

        m.Host.Advance(8); // 62.5 ms: far more than MaxSkew, which no other vcpu's clock imposes here

        Assert.Equal(8 * TickTicks, m.Wakes(0));
    }

    [Fact]
    public void The_idle_time_is_capped_at_MaxSkew_ahead_of_the_slowest_busy_vcpu()
    {
        ulong behind = 3 * MaxSkew;
        var m = new Machine(1_000_000, 1_000_000 + behind, 1_000_000 + 2 * behind); // vcpu 0 waits, 1 and 2 run (2 the fastest)
        m.Continue(0, 1, 2);
        m.Cedes(0);

        m.Host.Advance(8);

        Assert.Equal(behind + MaxSkew, m.Wakes(0)); // vcpu 1's TB + MaxSkew: the slower busy vcpu caps, not the faster one
    }

    [Fact]
    public void A_waiting_vcpu_already_MaxSkew_ahead_of_a_busy_vcpu_gets_no_idle_time()
    {
        var m = new Machine(1_000_000 + MaxSkew + 1, 1_000_000);
        m.Continue(0, 1);
        m.Cedes(0);

        m.Host.Advance(8);

        Assert.Equal(0UL, m.Wakes(0));
    }

    [Fact]
    public void Another_waiting_vcpus_clock_counts_the_time_it_has_waited_so_far()
    {
        const ulong tb = 10_000_000;
        var m = new Machine(tb, tb);
        m.Continue(0, 1);
        m.Cedes(0);
        m.Host.Advance(4);
        m.Cedes(1); // waits since 4 ticks after vcpu 0
        m.Host.Advance(2);

        // vcpu 1's clock is its TB + 2 ticks waited so far: vcpu 0 may get MaxSkew ahead of that, not of vcpu 1's TB (MaxSkew
        // only) and not the whole 6 ticks it waited (vcpu 1 is not left out because it keeps no instructions' time).
        Assert.Equal(2 * TickTicks + MaxSkew, m.Wakes(0));
        Assert.True(2 * TickTicks + MaxSkew < 6 * TickTicks);
    }

    [Fact]
    public void Owed_time_survives_a_VM_stop_but_the_time_the_VM_stays_stopped_is_not_counted()
    {
        var m = new Machine(5_000_000);
        m.Continue(0);
        m.Cedes(0);
        m.Host.Advance(3);

        m.Execute(m.Run.Halt());
        Assert.False(m.Idle.Waits(0));
        m.Host.Advance(128); // a debugger's pause of a second
        var slices = m.Continue(0);

        Assert.Equal(3 * TickTicks, slices[0]);
    }

    [Fact]
    public void A_stop_caps_every_waiting_vcpu_against_the_others_clocks_as_they_stood_at_the_stop()
    {
        const ulong tb = 10_000_000;
        var m = new Machine(tb, tb);
        m.Continue(0, 1);
        m.Cedes(1);
        m.Host.Advance(8);
        m.Cedes(0); // waits since 8 ticks after vcpu 1
        m.Host.Advance(1);

        m.Execute(m.Run.Halt());
        var slices = m.Continue(0, 1);

        // vcpu 0 waited 1 tick: vcpu 1's clock (9 ticks waited) does not cap it. Vcpu 1 waited 9 ticks, but vcpu 0's clock at
        // the stop was its TB + 1 tick: vcpu 1 may get MaxSkew ahead of that, at a stop as at a wake-up (whichever of the two
        // the stop happened to end first).
        Assert.Equal(TickTicks, slices[0]);
        Assert.Equal(TickTicks + MaxSkew, slices[1]);
    }

    [Fact]
    public void Taking_the_idle_time_clears_it_so_it_is_not_given_twice()
    {
        var m = new Machine(5_000_000);
        m.Continue(0);
        m.Cedes(0);
        m.Host.Advance(2);

        Assert.Equal(2 * TickTicks, m.Wakes(0));
        m.Host.Advance(2);
        Assert.Equal(0UL, m.Idle.Take(0));
        Assert.Equal(0UL, m.Idle.WaitingSoFar(0));
    }

    [Fact]
    public void Time_owed_from_a_stop_is_given_once()
    {
        var m = new Machine(5_000_000);
        m.Continue(0);
        m.Cedes(0);
        m.Host.Advance(2);
        m.Execute(m.Run.Halt());

        Assert.Equal(2 * TickTicks, m.Continue(0)[0]);
        Assert.Equal(0UL, m.Execute(m.Run.SliceEnded(new SliceEnded(0, SliceOutcome.Ran, m.Last[0])))[0]);
    }

    [Fact]
    public void A_vcpu_the_resume_holds_does_not_cap_the_idle_time()
    {
        var m = new Machine(5_000_000, 0); // vcpu 1 far behind, but not resumed (scheduler locking): its time does not move
        m.Continue(0);
        m.Cedes(0);

        m.Host.Advance(8);

        Assert.Equal(8 * TickTicks, m.Wakes(0));
    }

    [Theory]
    [InlineData(SliceOutcome.Idle)] // held for RTAS start-cpu (no decrementer to wait for), or idle in a slice that paced nothing
    [InlineData(SliceOutcome.Ceded)] // ceded with nothing of its own to wake it
    public void A_resumed_vcpu_whose_last_slice_ended_idle_without_waiting_does_not_cap_the_idle_time(SliceOutcome outcome)
    {
        var m = new Machine(5_000_000, 0);
        m.Continue(0, 1);
        m.Execute(m.Run.SliceEnded(new SliceEnded(1, outcome, m.Last[1])));
        Assert.False(m.Run.KeepsGuestTime(1));
        m.Cedes(0);

        m.Host.Advance(8);

        Assert.Equal(8 * TickTicks, m.Wakes(0));
    }
}
