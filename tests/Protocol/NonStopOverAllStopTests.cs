using ActorStep.Protocol.Gdb;

namespace ActorStep.Tests.Protocol;

/// <summary>Non-stop over all-stop resumes: which vcpus the next resume carries and which stops gdb is told of.</summary>
public class NonStopOverAllStopTests
{
    private static readonly GdbResumeAction C = GdbResumeAction.Continue, S = GdbResumeAction.Step, Stay = GdbResumeAction.Stay;

    private readonly NonStopOverAllStop _plan = new(vcpus: 3);

    private static GdbResume Resume(params GdbResumeAction[] actions) => new(actions);

    [Fact]
    public void Nothing_to_run_until_gdb_resumes_a_vcpu()
    {
        Assert.Null(_plan.NextResume());
        _plan.Start(Resume(Stay, C, Stay));
        Assert.True(_plan.Changed);
        Assert.Equal([Stay, C, Stay], _plan.NextResume()!.Actions);
        Assert.False(_plan.Changed);
    }

    [Fact]
    public void Resuming_a_vcpu_that_already_runs_changes_nothing()
    {
        _plan.Start(Resume(C, Stay, Stay));
        _plan.NextResume();
        _plan.Start(Resume(S, Stay, Stay));
        Assert.False(_plan.Changed);
        Assert.Equal([C, Stay, Stay], _plan.NextResume()!.Actions);
    }

    [Fact]
    public void A_breakpoint_stops_only_its_vcpu_and_the_next_resume_carries_the_others_on()
    {
        _plan.Start(Resume(C, C, S));
        _plan.NextResume();
        var hit = new GdbStopEvent(1, GdbStopReason.Breakpoint);
        Assert.Equal([hit], _plan.Stopped(hit, haltedByOwner: false));
        Assert.Equal([C, Stay, S], _plan.NextResume()!.Actions);
    }

    [Fact]
    public void A_vcpu_gdb_stops_is_reported_halted_once_the_owners_halt_ended_the_resume()
    {
        _plan.Start(Resume(C, C, Stay));
        _plan.NextResume();
        Assert.True(_plan.Stop(0));
        Assert.True(_plan.Changed);
        var reported = _plan.Stopped(new GdbStopEvent(0, GdbStopReason.Halted), haltedByOwner: true);
        Assert.Equal(0, Assert.Single(reported).Vcpu);
        Assert.Equal(GdbStopReason.Halted, reported[0].Reason);
        Assert.Equal([Stay, C, Stay], _plan.NextResume()!.Actions);
    }

    [Fact]
    public void Stopping_a_vcpu_that_does_not_run_owes_nothing()
    {
        Assert.False(_plan.Stop(2));
        Assert.Empty(_plan.TakeOwedStops());
    }

    [Fact]
    public void A_vcpus_own_stop_answers_gdbs_request_to_stop_it()
    {
        _plan.Start(Resume(C, C, Stay));
        _plan.NextResume();
        _plan.Stop(1);
        var hit = new GdbStopEvent(1, GdbStopReason.Breakpoint);
        Assert.Equal([hit], _plan.Stopped(hit, haltedByOwner: true));
        Assert.Empty(_plan.TakeOwedStops());
    }

    [Fact]
    public void A_halt_by_another_client_stops_every_moving_vcpu()
    {
        _plan.Start(Resume(C, Stay, C));
        _plan.NextResume();
        var reported = _plan.Stopped(new GdbStopEvent(0, GdbStopReason.Halted), haltedByOwner: false);
        Assert.Equal([0, 2], reported.Select(s => s.Vcpu));
        Assert.All(reported, s => Assert.Equal(GdbStopReason.Halted, s.Reason));
        Assert.Null(_plan.NextResume());
    }

    [Fact]
    public void The_owners_own_halt_reports_nothing()
    {
        _plan.Start(Resume(C, Stay, Stay));
        _plan.NextResume();
        _plan.Start(Resume(Stay, S, Stay));
        Assert.Empty(_plan.Stopped(new GdbStopEvent(0, GdbStopReason.Halted), haltedByOwner: true));
        Assert.Equal([C, S, Stay], _plan.NextResume()!.Actions);
    }

    [Fact]
    public void A_failed_resume_stops_every_moving_vcpu_with_an_error()
    {
        _plan.Start(Resume(C, S, Stay));
        _plan.NextResume();
        var reported = _plan.Failed("FailedPrecondition: the VM is already running");
        Assert.Equal([0, 1], reported.Select(s => s.Vcpu));
        Assert.All(reported, s => Assert.Equal(GdbStopReason.Error, s.Reason));
        Assert.Null(_plan.NextResume());
    }

    [Fact]
    public void The_guest_stopping_its_last_vcpu_ends_every_wish()
    {
        _plan.Start(Resume(C, C, C));
        _plan.NextResume();
        _plan.Stopped(new GdbStopEvent(2, GdbStopReason.GuestStopped, AllVcpusGone: true), haltedByOwner: false);
        Assert.Null(_plan.NextResume());
    }

    [Fact]
    public void A_range_step_keeps_its_range_until_its_vcpu_stops()
    {
        _plan.Start(new GdbResume([S, C, Stay], new Dictionary<int, GdbStepRange> { [0] = new(0x1000, 0x1010) }));
        Assert.Equal(new GdbStepRange(0x1000, 0x1010), _plan.NextResume()!.Ranges![0]);
        _plan.Stopped(new GdbStopEvent(1, GdbStopReason.Breakpoint), haltedByOwner: false);
        Assert.Equal(new GdbStepRange(0x1000, 0x1010), _plan.NextResume()!.Ranges![0]);
        _plan.Stopped(new GdbStopEvent(0, GdbStopReason.StepDone), haltedByOwner: false);
        Assert.Null(_plan.NextResume());
    }
}
