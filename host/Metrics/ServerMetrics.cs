using System.Diagnostics;
using System.Diagnostics.Metrics;
using ActorStep.Api.V1;
using ActorStep.Host.Services;
using Akka.Actor;
using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Host.Metrics;

/// <summary>
/// What an operator watches on a node (meter <c>ActorStep</c>, exported for Prometheus by <c>serve --metrics</c>): resumes and
/// steps as they happen (counted where a resume ends, on the node that runs the VM), their latency, event-stream drops; and at
/// each scrape, from the node's VMs: VMs and vcpus by state, breakpoints, foreign traps and re-entries, cluster members.
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "ActorStep";

    private readonly Meter _meter = new(MeterName, typeof(ServerMetrics).Assembly.GetName().Version?.ToString(3));
    private readonly Counter<long> _resumes;
    private readonly Counter<long> _steps;
    private readonly Histogram<double> _resumeDuration;
    private readonly Counter<long> _eventsDropped;
    private Snapshot _snapshot = Snapshot.Empty;

    /// <summary>The node's VMs as last described (<see cref="RefreshAsync"/>, before each scrape).</summary>
    private sealed record Snapshot(IReadOnlyList<Vm> Vms, int? ClusterMembers)
    {
        public static readonly Snapshot Empty = new([], null);
    }

    public ServerMetrics()
    {
        _resumes = _meter.CreateCounter<long>("actorstep.resumes", "{resume}", "resumes ended (Resume, Step, Continue, ResumeStream), by kind and stop reason");
        _steps = _meter.CreateCounter<long>("actorstep.steps", "{step}", "instructions stepped (a lwarx … stwcx. sequence counts as one)");
        _resumeDuration = _meter.CreateHistogram<double>("actorstep.resume.duration", "s", "time from a resume's request to its stop, by kind",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _eventsDropped = _meter.CreateCounter<long>("actorstep.events.dropped", "{event}", "events dropped by event streams whose reader fell behind");
        _meter.CreateObservableGauge("actorstep.vms", () => ByState(_snapshot.Vms, v => v.Lost ? "lost" : v.Running ? "running" : "stopped"),
            "{vm}", "VMs of this node, by state");
        _meter.CreateObservableGauge("actorstep.vcpus", () => ByState(_snapshot.Vms.SelectMany(v => v.Vcpus), c => c.State switch
        {
            VcpuState.Running => "running",
            VcpuState.StoppedForGood => "stopped_for_good",
            _ => "stopped",
        }), "{vcpu}", "vcpus of this node's VMs, by state");
        _meter.CreateObservableGauge("actorstep.breakpoints", () => (long)_snapshot.Vms.Sum(v => v.BreakpointCount), "{breakpoint}",
            "breakpoints set in this node's VMs");
        _meter.CreateObservableCounter("actorstep.foreign_traps", () => (long)_snapshot.Vms.Sum(v => (long)v.ForeignTraps), "{trap}",
            "vcpus parked on a step breakpoint they did not own, in this node's live VMs");
        _meter.CreateObservableCounter("actorstep.reentries", () => (long)_snapshot.Vms.Sum(v => (long)v.Reentries), "{reentry}",
            "parked vcpus re-entered (their instruction run alone and invisibly), in this node's live VMs");
        _meter.CreateObservableGauge("actorstep.cluster.members", () => _snapshot.ClusterMembers is { } n ? [new Measurement<int>(n)] : Array.Empty<Measurement<int>>(),
            "{node}", "members of the cluster this node is up in (absent without --cluster)");
    }

    private static IEnumerable<Measurement<long>> ByState<T>(IEnumerable<T> items, Func<T, string> state)
    {
        var counts = new Dictionary<string, long> { ["running"] = 0, ["stopped"] = 0 };
        foreach (var item in items) counts[state(item)] = counts.GetValueOrDefault(state(item)) + 1;
        return counts.Select(c => new Measurement<long>(c.Value, new KeyValuePair<string, object?>("state", c.Key)));
    }

    /// <summary>A resume of <paramref name="kind"/> (resume, step, continue) ended with <paramref name="response"/>.</summary>
    public void Resumed(string kind, RunResponse response, long startedTimestamp)
    {
        // Nothing to record without a listener (no --metrics): a gdb step pays for no tags.
        if (!_resumes.Enabled && !_resumeDuration.Enabled && !_steps.Enabled) return;
        var kindTag = new KeyValuePair<string, object?>("kind", kind);
        _resumeDuration.Record(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds, kindTag);
        _resumes.Add(1, kindTag, new KeyValuePair<string, object?>("reason", ReasonName(response.Event?.Reason ?? StopReason.Unspecified)));
        if (response.Event is { Steps: > 0 } e) _steps.Add(e.Steps);
    }

    /// <summary>"step_completed" for STOP_REASON_STEP_COMPLETED: the .proto's name without its prefix (looked up once per reason).</summary>
    private static string ReasonName(StopReason reason) =>
        ReasonNames.TryGetValue(reason, out var name) ? name : ((int)reason).ToString();

    private static readonly Dictionary<StopReason, string> ReasonNames = Enum.GetValues<StopReason>().Distinct().ToDictionary(r => r, r =>
        typeof(StopReason).GetField(r.ToString())?.GetCustomAttributes(typeof(Google.Protobuf.Reflection.OriginalNameAttribute), false)
            .OfType<Google.Protobuf.Reflection.OriginalNameAttribute>().FirstOrDefault()?.Name.Replace("STOP_REASON_", "").ToLowerInvariant()
        ?? ((int)r).ToString());

    public void EventsDropped(long count) => _eventsDropped.Add(count);

    /// <summary>Describes the node's VMs for the gauges (before a scrape; a VM that cannot answer in time is left out).</summary>
    public async Task RefreshAsync(ActorStepBackend backend, VmApi api, ActorSystem system, CancellationToken ct)
    {
        var call = new CallScope(DateTime.UtcNow.AddSeconds(5), ct);
        var list = await backend.AskAsync<VmList>(new ListVms(new Dictionary<string, string>()), call);
        var described = await Task.WhenAll(list.Vms.Select(async v =>
        {
            try { return await api.GetVm(new GetVmRequest { VmId = v.VmId }, call); }
            catch (Grpc.Core.RpcException) { return null; } // gone meanwhile
        }));
        int? members = null;
        if (system.Settings.ProviderClass.Contains("Cluster", StringComparison.Ordinal))
            members = Akka.Cluster.Cluster.Get(system).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up);
        _snapshot = new Snapshot(described.OfType<Vm>().ToList(), members);
    }

    public void Dispose() => _meter.Dispose();
}
