using Akka.Actor;
using Akka.Cluster;

namespace ActorStep.Actors.Fleet;

/// <summary>
/// Measures what a cluster heartbeat goes through: every <see cref="Interval"/> it sends an <see cref="Identify"/> to each other
/// member's heartbeat receiver (/system/cluster/heartbeatReceiver: remoting in, that node's cluster dispatcher, remoting out) from
/// the cluster dispatcher, as a heartbeat is sent, and keeps the worst round trip per member — an upper bound of the delay a
/// heartbeat meets there, to compare with the failure detector's acceptable pause. It also counts the times a member was marked
/// unreachable or downed. Ask it <see cref="GetReport"/>; <see cref="Reset"/> starts a new measurement.
/// </summary>
public sealed class HeartbeatProbe : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>Anyone → probe: the figures so far. Reply: <see cref="Report"/>.</summary>
    public sealed record GetReport;

    /// <summary>Anyone → probe: forget the figures so far. No reply.</summary>
    public sealed record Reset;

    /// <param name="WorstRoundTrip">per member address, the worst round trip (a ping still unanswered counts its age)</param>
    public sealed record Report(IReadOnlyDictionary<string, TimeSpan> WorstRoundTrip, int Pings, int Unreachable, int Downed)
    {
        public TimeSpan Worst => WorstRoundTrip.Values.DefaultIfEmpty(TimeSpan.Zero).Max();
    }

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly Dictionary<long, (string Member, long Sent)> _inFlight = new();
    private readonly Dictionary<string, TimeSpan> _worst = new();
    private long _next;
    private int _pings, _unreachable, _downed;

    public ITimerScheduler Timers { get; set; } = null!;

    public HeartbeatProbe()
    {
        Receive<Tick>(_ =>
        {
            foreach (var m in _cluster.State.Members.Where(m => m.Address != _cluster.SelfAddress && m.Status == MemberStatus.Up))
            {
                long id = ++_next;
                _inFlight[id] = (m.Address.ToString(), System.Diagnostics.Stopwatch.GetTimestamp());
                Context.ActorSelection($"{m.Address}/system/cluster/heartbeatReceiver").Tell(new Identify(id));
            }
        });
        Receive<ActorIdentity>(a =>
        {
            if (a.MessageId is not long id || !_inFlight.Remove(id, out var ping)) return;
            _pings++;
            Note(ping.Member, System.Diagnostics.Stopwatch.GetElapsedTime(ping.Sent));
        });
        Receive<GetReport>(_ =>
        {
            foreach (var (_, ping) in _inFlight) Note(ping.Member, System.Diagnostics.Stopwatch.GetElapsedTime(ping.Sent));
            Sender.Tell(new Report(new Dictionary<string, TimeSpan>(_worst), _pings, _unreachable, _downed));
        });
        Receive<Reset>(_ => { _worst.Clear(); _inFlight.Clear(); _pings = _unreachable = _downed = 0; });
        Receive<ClusterEvent.UnreachableMember>(_ => _unreachable++);
        Receive<ClusterEvent.MemberRemoved>(_ => _downed++);
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    private void Note(string member, TimeSpan rtt)
    {
        if (!_worst.TryGetValue(member, out var w) || rtt > w) _worst[member] = rtt;
    }

    /// <summary>On the cluster's own dispatcher, as the heartbeats it stands for.</summary>
    public static Props Props() => Akka.Actor.Props.Create(() => new HeartbeatProbe()).WithDispatcher("akka.actor.actorstep-cluster-dispatcher");

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer(nameof(Tick), Tick.Instance, Interval);
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
