using System.Threading.Channels;
using ActorStep.Protocol.Gdb;

namespace ActorStep.Tests.Protocol;

/// <summary>Non-stop for <see cref="FakeGdbTarget"/>: records what the session asks; a test reports stops with <see cref="Report"/>.
/// A requested stop (<see cref="StopAsync"/>) is reported as Halted at once.</summary>
public sealed class FakeNonStop : IGdbNonStop
{
    private readonly Channel<GdbStopEvent> _stops = Channel.CreateUnbounded<GdbStopEvent>();

    public List<string> Calls { get; } = [];
    public List<GdbResume> Resumes { get; } = [];

    public Task EnterAsync(CancellationToken ct) { Calls.Add("Enter"); return Task.CompletedTask; }

    public Task LeaveAsync(CancellationToken ct) { Calls.Add("Leave"); return Task.CompletedTask; }

    public Task ResumeAsync(GdbResume resume, CancellationToken ct)
    {
        Calls.Add($"Resume {string.Join(",", resume.Actions)}");
        Resumes.Add(resume);
        return Task.CompletedTask;
    }

    public Task StopAsync(int vcpu, CancellationToken ct)
    {
        Calls.Add($"Stop {vcpu}");
        Report(new GdbStopEvent(vcpu, GdbStopReason.Halted));
        return Task.CompletedTask;
    }

    public Task<GdbStopEvent> NextStopAsync(CancellationToken ct) => _stops.Reader.ReadAsync(ct).AsTask();

    public void Report(GdbStopEvent stop) => _stops.Writer.TryWrite(stop);
}
