using ActorStep.Actors.Engine;
using ActorStep.Actors.Vcpu;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// step-engine.md §4–5 as run-control decisions, without an ActorSystem: which slices the scheduler hands out, what it
/// reports, keeps, cancels and re-enters, for requests and slice outcomes fed to it by hand.
/// </summary>
public class AllStopSchedulerTests
{
    private const long Quantum = 500;
    private static readonly StepRange Line = new(0x1000, 0x1010);

    private static AllStopScheduler Scheduler(int vcpus, bool deterministic = false, params int[] stoppedForGood) =>
        Scheduler(vcpus, deterministic, allStopBackend: false, stoppedForGood);

    private static AllStopScheduler Scheduler(int vcpus, bool deterministic, bool allStopBackend, params int[] stoppedForGood)
    {
        var last = Enumerable.Range(0, vcpus).Select(v => new VcpuState { Nip = Nip(v) }).ToArray();
        var finished = new bool[vcpus];
        foreach (int v in stoppedForGood) finished[v] = true;
        return new AllStopScheduler(last, new CoordinatorOptions(Quantum, deterministic), finished, allStopBackend);
    }

    /// <summary>Where each vcpu was when the scheduler was made.</summary>
    private static ulong Nip(int vcpu) => 0x1000 + (ulong)vcpu * 0x100;

    private static Resume Step(int vcpu, int vcpus, SchedulerLocking locking) => new(StepActions(vcpu, vcpus, locking));

    private static Resume ContinueAll(int vcpus) => new(ContinueActions(0, vcpus, SchedulerLocking.Off));

    private static Resume Continue(params int[] vcpus) => new(vcpus.ToDictionary(v => v, _ => VcpuAction.Continue));

    private static SliceEnded Ended(int vcpu, SliceOutcome outcome, ulong nip = 0x2000, ulong address = 0) =>
        new(vcpu, outcome, new VcpuState { Nip = nip },
            outcome == SliceOutcome.StepDone ? new StepDetail(TraceStep.Completion.Completed, nip - 4, nip, 1) : null,
            address, Detail: outcome == SliceOutcome.Parked ? $"parked on step of vcpu 0 at 0x{address:x}" : null);

    private static RunCommand[] Of(RunCommandKind kind, RunCommand[] commands) => commands.Where(c => c.Kind == kind).ToArray();

    private static (int Vcpu, SliceMode Mode, long Budget)[] Slices(RunCommand[] commands) =>
        Of(RunCommandKind.RunSlice, commands).Select(c => (c.Vcpu, c.Slice!.Mode, c.Slice.Budget)).ToArray();

    private static StopEvent TheStop(RunCommand[] commands) => Assert.Single(Of(RunCommandKind.Stop, commands)).Stop!;

    private static int[] Vcpus(RunCommandKind kind, RunCommand[] commands) => Of(kind, commands).Select(c => c.Vcpu).ToArray();

    /// <summary>Ends every slice in flight with nothing to report, and every step cancellation asked for, until the resume
    /// answers; returns its stop.</summary>
    private static StopEvent Drain(AllStopScheduler s, RunCommand[] commands)
    {
        for (int i = 0; i < 100; i++)
        {
            if (Of(RunCommandKind.Stop, commands) is [var stop]) return stop.Stop!;
            var next = new List<RunCommand>();
            foreach (var c in Of(RunCommandKind.CancelStep, commands)) next.AddRange(s.StepCancelled(c.Vcpu).ToArray());
            for (int v = 0; v < s.VcpuCount; v++)
                if (s.Status(v) == VcpuRunStatus.Running) next.AddRange(s.SliceEnded(Ended(v, SliceOutcome.Ran)).ToArray());
            commands = next.ToArray();
        }
        throw new Xunit.Sdk.XunitException("the resume never stopped");
    }

    /// <summary>A scheduler whose vcpu <paramref name="parked"/> parked during a resume that vcpu 0's breakpoint then stopped.</summary>
    private static AllStopScheduler WithParked(int vcpus, int parked)
    {
        var s = Scheduler(vcpus);
        s.Resume(ContinueAll(vcpus));
        s.SliceEnded(Ended(parked, SliceOutcome.Parked, 0xD00, 0xD00));
        var commands = s.SliceEnded(Ended(0, SliceOutcome.BreakpointHit)).ToArray();
        Assert.Equal(StopReason.Breakpoint, Drain(s, commands).Reason);
        Assert.Equal(VcpuRunStatus.Parked, s.Status(parked));
        return s;
    }

    // ---- Scheduler locking (§5) ----

    [Fact]
    public void A_step_with_scheduler_locking_off_runs_the_other_vcpus_too()
    {
        var s = Scheduler(3);
        var commands = s.Resume(Step(1, 3, SchedulerLocking.Off)).ToArray();
        Assert.Equal([(0, SliceMode.Continue, Quantum), (1, SliceMode.Step, Quantum), (2, SliceMode.Continue, Quantum)], Slices(commands));
        Assert.All(new[] { 0, 1, 2 }, v => Assert.Equal(VcpuRunStatus.Running, s.Status(v)));
    }

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void A_step_with_scheduler_locking_step_or_on_runs_only_the_stepped_vcpu(SchedulerLocking locking)
    {
        var s = Scheduler(3);
        var commands = s.Resume(Step(1, 3, locking)).ToArray();
        Assert.Equal([(1, SliceMode.Step, Quantum)], Slices(commands));
        Assert.Equal(VcpuRunStatus.Stopped, s.Status(0));
    }

    [Fact]
    public void A_started_resume_is_published_before_its_first_slice()
    {
        var s = Scheduler(2);
        var request = ContinueAll(2);
        var commands = s.Resume(request).ToArray();
        Assert.Equal(RunCommandKind.Publish, commands[0].Kind);
        Assert.Same(request.Actions, Assert.IsType<Resumed>(commands[0].Published).Actions);
        Assert.True(s.Running);
    }

    [Fact]
    public void A_continuing_vcpu_whose_slice_ran_out_gets_the_next_slice_while_the_others_still_run()
    {
        var s = Scheduler(2);
        s.Resume(ContinueAll(2));
        var commands = s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray();
        Assert.Equal([(1, SliceMode.Continue, Quantum)], Slices(commands));
    }

    [Fact]
    public void A_stepping_vcpus_slice_carries_its_range_count_and_interrupt_hold()
    {
        var s = Scheduler(2);
        var request = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step, [1] = VcpuAction.Continue },
            HoldAsyncInterrupts: false, Ranges: new Dictionary<int, StepRange> { [0] = Line });
        var slices = Of(RunCommandKind.RunSlice, s.Resume(request).ToArray());
        Assert.Equal(new RunSlice(Quantum, SliceMode.Step, false, 1, Line), slices.Single(c => c.Vcpu == 0).Slice);
        Assert.Null(slices.Single(c => c.Vcpu == 1).Slice!.Range);
    }

    // ---- All-stop ordering (§5) ----

    [Fact]
    public void The_first_reportable_event_makes_every_running_vcpu_exit()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        var commands = s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit)).ToArray();
        Assert.Equal([0, 2], Vcpus(RunCommandKind.RequestExit, commands));
        Assert.Empty(Slices(commands));
        Assert.Empty(Of(RunCommandKind.Stop, commands));
    }

    [Fact]
    public void The_stop_is_reported_once_the_last_slice_in_flight_has_ended()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit, nip: 0x1234));
        Assert.Empty(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray());
        var stop = TheStop(s.SliceEnded(Ended(2, SliceOutcome.Ran)).ToArray());
        Assert.Equal(new StopEvent(StopReason.Breakpoint, 1, 0x1234, "breakpoint at 0x1234"), stop);
        Assert.False(s.Running);
    }

    [Fact]
    public void A_completed_step_is_reported_with_where_it_came_from_and_how_it_ended()
    {
        var s = Scheduler(1);
        s.Resume(Step(0, 1, SchedulerLocking.Off));
        var stop = TheStop(s.SliceEnded(Ended(0, SliceOutcome.StepDone, nip: 0x1004)).ToArray());
        Assert.Equal(new StopEvent(StopReason.StepCompleted, 0, 0x1004, "stepped 1 instruction(s) from 0x1000", 0, "Completed", 1), stop);
    }

    [Fact]
    public void A_later_event_of_the_same_all_stop_is_kept_not_reported()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(2, SliceOutcome.BreakpointHit));
        Assert.Equal(1, TheStop(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()).Vcpu);
        Assert.Equal(1, s.PendingEvents);
    }

    [Fact]
    public void A_kept_event_is_reported_by_the_next_resume_of_its_vcpu_without_running_anything()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(2, SliceOutcome.BreakpointHit, nip: 0x2222));
        s.SliceEnded(Ended(0, SliceOutcome.Ran));

        var commands = s.Resume(ContinueAll(3) with { CodeBytes = 64 }).ToArray();
        var only = Assert.Single(commands);
        Assert.Equal(RunCommandKind.Stop, only.Kind);
        Assert.Equal((StopReason.Breakpoint, 2, 0x2222UL), (only.Stop!.Reason, only.Stop.Vcpu, only.Stop.Nip));
        Assert.Equal(64, only.CodeBytes);
        Assert.False(s.Running);
        Assert.Equal(0, s.PendingEvents);
    }

    [Fact]
    public void A_kept_event_waits_while_its_vcpu_stays_stopped()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(2, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(0, SliceOutcome.Ran));

        var commands = s.Resume(Step(0, 3, SchedulerLocking.On)).ToArray();
        Assert.Equal([(0, SliceMode.Step, Quantum)], Slices(commands));
        Assert.Equal(1, s.PendingEvents);
    }

    /// <summary>A scheduler that kept vcpu 2's Breakpoint event at 0x2222 from a continue that vcpu 1's breakpoint stopped.</summary>
    private static AllStopScheduler WithKeptBreakpoint()
    {
        var s = Scheduler(3);
        s.Resume(ContinueAll(3));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(2, SliceOutcome.BreakpointHit, nip: 0x2222));
        Assert.Equal(1, TheStop(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()).Vcpu);
        return s;
    }

    [Fact]
    public void A_kept_breakpoint_event_is_offered_for_a_check_before_a_resume_of_its_vcpu_and_only_then()
    {
        var s = WithKeptBreakpoint();
        var kept = Assert.Single(s.KeptBreakpoints(ContinueAll(3)));
        Assert.Equal((StopReason.Breakpoint, 2, 0x2222UL), (kept.Reason, kept.Vcpu, kept.Nip));
        Assert.Empty(s.KeptBreakpoints(Step(0, 3, SchedulerLocking.On))); // its vcpu stays
        s.Resume(Step(0, 3, SchedulerLocking.On));
        Assert.Empty(s.KeptBreakpoints(ContinueAll(3))); // a resume runs: nothing is reported now
    }

    [Fact]
    public void A_kept_breakpoint_event_that_still_stands_is_reported_as_before()
    {
        var s = WithKeptBreakpoint();
        Assert.Single(s.KeptBreakpoints(ContinueAll(3)));
        var only = Assert.Single(s.Resume(ContinueAll(3)).ToArray());
        Assert.Equal((RunCommandKind.Stop, StopReason.Breakpoint, 2), (only.Kind, only.Stop!.Reason, only.Stop.Vcpu));
    }

    [Fact]
    public void A_kept_breakpoint_event_withdrawn_because_its_breakpoint_is_gone_is_never_reported_and_its_vcpu_runs()
    {
        var s = WithKeptBreakpoint();
        Assert.True(s.Withdraw(Assert.Single(s.KeptBreakpoints(ContinueAll(3)))));
        Assert.Equal(0, s.PendingEvents);

        var commands = s.Resume(ContinueAll(3)).ToArray();
        Assert.Empty(Of(RunCommandKind.Stop, commands));
        Assert.Equal([(0, SliceMode.Continue, Quantum), (1, SliceMode.Continue, Quantum), (2, SliceMode.Continue, Quantum)], Slices(commands));
        Assert.Equal(StopReason.Halted, Drain(s, s.Halt().ToArray()).Reason);
    }

    [Fact]
    public void Withdrawing_an_event_that_was_reported_already_does_nothing()
    {
        var s = WithKeptBreakpoint();
        var kept = Assert.Single(s.KeptBreakpoints(ContinueAll(3)));
        s.Resume(ContinueAll(3)); // reports it
        Assert.False(s.Withdraw(kept));
    }

    [Fact]
    public void A_vcpu_the_guest_stopped_for_good_is_reported_then_cannot_be_stepped()
    {
        var s = Scheduler(1);
        s.Resume(Continue(0));
        var stop = TheStop(s.SliceEnded(new SliceEnded(0, SliceOutcome.GuestStopped, new VcpuState { Nip = 0x1010 }, Status: 7, Detail: "bye")).ToArray());
        Assert.Equal(new StopEvent(StopReason.GuestStopped, 0, 0x1010, "bye", 7), stop);
        Assert.Equal(VcpuRunStatus.Finished, s.Status(0));
        var refused = Assert.Single(s.Resume(Step(0, 1, SchedulerLocking.On)).ToArray());
        Assert.Equal(FailureCode.FailedPrecondition, refused.Failure!.Code);
    }

    // ---- Steps that did not finish ----

    [Fact]
    public void A_step_that_did_not_finish_is_cancelled_when_another_vcpus_event_stops_the_VM()
    {
        var s = Scheduler(2);
        s.Resume(Step(0, 2, SchedulerLocking.Off));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        var commands = s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray();
        Assert.Equal([0], Vcpus(RunCommandKind.CancelStep, commands));
        Assert.Empty(Of(RunCommandKind.Stop, commands));
        Assert.Equal(StopReason.Breakpoint, TheStop(s.StepCancelled(0).ToArray()).Reason);
    }

    [Fact]
    public void A_step_is_cancelled_only_once_even_if_a_halt_comes_before_the_cancellation_ends()
    {
        var s = Scheduler(2);
        s.Resume(Step(0, 2, SchedulerLocking.Off));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        s.SliceEnded(Ended(0, SliceOutcome.Ran));
        var halt = s.Halt().ToArray();
        Assert.Empty(Of(RunCommandKind.CancelStep, halt));
        Assert.Empty(Of(RunCommandKind.Stop, halt));
        Assert.Equal(StopReason.Breakpoint, TheStop(s.StepCancelled(0).ToArray()).Reason);
    }

    [Fact]
    public void A_step_that_finished_is_not_cancelled()
    {
        var s = Scheduler(2);
        s.Resume(Step(0, 2, SchedulerLocking.Off));
        Assert.Equal([1], Vcpus(RunCommandKind.RequestExit, s.SliceEnded(Ended(0, SliceOutcome.StepDone)).ToArray()));
        var commands = s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray();
        Assert.Empty(Of(RunCommandKind.CancelStep, commands));
        Assert.Equal(StopReason.StepCompleted, TheStop(commands).Reason);
    }

    // ---- Halt ----

    [Fact]
    public void Halt_while_running_reports_Halted_after_the_in_flight_slices_end()
    {
        var s = Scheduler(2);
        s.Resume(ContinueAll(2));
        var halt = s.Halt().ToArray();
        Assert.Equal([0, 1], Vcpus(RunCommandKind.RequestExit, halt));
        Assert.Empty(Of(RunCommandKind.Stop, halt));
        Assert.Empty(s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray());
        var stop = TheStop(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray());
        Assert.Equal(new StopEvent(StopReason.Halted, 0, Nip(0), "halted on request"), stop);
    }

    [Fact]
    public void Halt_when_nothing_runs_reports_Halted_at_once()
    {
        var s = Scheduler(2);
        var only = Assert.Single(s.Halt().ToArray());
        Assert.Equal(new StopEvent(StopReason.Halted, 0, Nip(0), "already stopped"), only.Stop);
    }

    [Fact]
    public void Halt_after_an_event_already_stopped_the_VM_answers_with_that_event()
    {
        var s = Scheduler(2);
        s.Resume(ContinueAll(2));
        s.SliceEnded(Ended(1, SliceOutcome.BreakpointHit));
        Assert.Empty(s.Halt().ToArray());
        Assert.Equal(StopReason.Breakpoint, TheStop(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()).Reason);
        Assert.Equal(0, s.PendingEvents);
    }

    // ---- Validation ----

    [Fact]
    public void A_resume_with_a_step_range_on_a_vcpu_that_does_not_step_is_refused()
    {
        var s = Scheduler(2);
        var only = Assert.Single(s.Resume(ContinueAll(2) with { Ranges = new Dictionary<int, StepRange> { [1] = Line } }).ToArray());
        Assert.Equal(RunCommandKind.Refuse, only.Kind);
        Assert.Equal(new Failed(FailureCode.InvalidArgument, "vcpu 1 has a step range but does not step"), only.Failure);
        Assert.False(s.Running);
    }

    [Fact]
    public void A_resume_while_running_is_refused_as_busy_and_leaves_the_running_one_alone()
    {
        var s = Scheduler(2);
        s.Resume(Step(0, 2, SchedulerLocking.On));
        var only = Assert.Single(s.Resume(ContinueAll(2)).ToArray());
        Assert.Equal(FailureCode.Busy, only.Failure!.Code);
        Assert.Equal(StopReason.StepCompleted, TheStop(s.SliceEnded(Ended(0, SliceOutcome.StepDone)).ToArray()).Reason);
    }

    [Fact]
    public void A_resume_of_a_vcpu_the_VM_does_not_have_is_refused_as_not_found()
    {
        var only = Assert.Single(Scheduler(2).Resume(Continue(0, 5)).ToArray());
        Assert.Equal(new Failed(FailureCode.NotFound, "no vcpu 5: this VM has vcpus 0..1"), only.Failure);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 24)]
    [InlineData(1, 8192)]
    public void A_resume_with_a_step_count_below_one_or_code_bytes_not_a_power_of_two_in_range_is_refused(int count, int codeBytes)
    {
        var only = Assert.Single(Scheduler(1).Resume(Step(0, 1, SchedulerLocking.On) with { StepCount = count, CodeBytes = codeBytes }).ToArray());
        Assert.Equal(FailureCode.InvalidArgument, only.Failure!.Code);
    }

    // ---- Nothing can run ----

    [Fact]
    public void A_resume_whose_vcpus_were_all_stopped_for_good_stops_at_once_as_Finished()
    {
        var s = Scheduler(2, stoppedForGood: [0, 1]);
        var only = Assert.Single(s.Resume(Continue(1, 0)).ToArray());
        Assert.Equal(new StopEvent(StopReason.Finished, 1, Nip(1), "no resumed vcpu can run: all were stopped for good"), only.Stop);
        Assert.False(s.Running);
    }

    [Fact]
    public void A_resume_whose_only_running_vcpu_parks_again_during_its_re_entry_stops_as_Finished()
    {
        var s = Scheduler(2);
        s.Resume(Continue(1));
        Assert.Equal([(1, SliceMode.Reenter, Quantum)], Slices(s.SliceEnded(Ended(1, SliceOutcome.Parked, 0xD00, 0xD00)).ToArray()));
        var commands = s.SliceEnded(Ended(1, SliceOutcome.Parked, 0xD04, 0xD04)).ToArray();
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, commands)); // its re-entry step goes
        Assert.Empty(Of(RunCommandKind.Stop, commands));
        var stop = TheStop(s.StepCancelled(1).ToArray());
        Assert.Equal(new StopEvent(StopReason.Finished, 1, Nip(1), "no resumed vcpu can run"), stop);
        Assert.Equal(VcpuRunStatus.Parked, s.Status(1));
        Assert.Equal((2, 1), (s.Parks, s.Reentries));
    }

    // ---- Ceded vcpus (H_CEDE) ----

    private static SliceEnded CededSlice(int vcpu, ulong nip = 0x1040, StepDetail? step = null) =>
        new(vcpu, SliceOutcome.Ceded, new VcpuState { Nip = nip }, step, nip,
            Detail: $"vcpu {vcpu} is idle in H_CEDE at 0x{nip:x}: an H_PROD from another vcpu, a decrementer or an external interrupt " +
                    "would wake it, and this step holds the decrementer and external interrupts");

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void A_step_of_a_ceded_vcpu_that_no_other_vcpu_can_prod_ends_at_once_as_Idle_its_step_cancelled(SchedulerLocking locking)
    {
        var s = Scheduler(3);
        s.Resume(Step(1, 3, locking));
        var commands = s.SliceEnded(CededSlice(1)).ToArray();
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, commands));
        Assert.Empty(Slices(commands));
        var stop = TheStop(s.StepCancelled(1).ToArray());
        Assert.Equal((StopReason.Idle, 1, 0x1040UL, 0), (stop.Reason, stop.Vcpu, stop.Nip, stop.Steps));
        Assert.Equal("vcpu 1 is idle in H_CEDE at 0x1040: an H_PROD from another vcpu, a decrementer or an external interrupt would wake " +
                     "it, and this step holds the decrementer and external interrupts; no other vcpu runs in this resume to H_PROD it, so " +
                     "the step ends without executing anything (continue, step with interrupts allowed, or step with the other vcpus " +
                     "running to let it wake)", stop.Detail);
        Assert.False(s.Running);
    }

    [Fact]
    public void A_counted_step_that_ceded_on_its_way_reports_the_instructions_it_executed()
    {
        var s = Scheduler(1);
        s.Resume(Step(0, 1, SchedulerLocking.On) with { StepCount = 10 });
        s.SliceEnded(CededSlice(0, step: new StepDetail(TraceStep.Completion.Completed, 0x1000, 0x1040, 4)));
        var stop = TheStop(s.StepCancelled(0).ToArray());
        Assert.Equal((StopReason.Idle, 4), (stop.Reason, stop.Steps));
        Assert.Contains("the step ends after 4 instruction(s) from 0x1000", stop.Detail);
    }

    [Fact]
    public void A_ceded_stepper_gets_no_slice_until_another_vcpu_has_run_then_one_again()
    {
        var s = Scheduler(2);
        s.Resume(Step(1, 2, SchedulerLocking.Off));
        Assert.Empty(s.SliceEnded(CededSlice(1)).ToArray()); // vcpu 0 still runs: it may prod vcpu 1
        Assert.Equal(VcpuRunStatus.Stopped, s.Status(1));
        var commands = s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray();
        Assert.Equal([(0, SliceMode.Continue, Quantum), (1, SliceMode.Step, Quantum)], Slices(commands));
        // Woken by vcpu 0's H_PROD: the step completes as any other.
        Assert.Equal([0], Vcpus(RunCommandKind.RequestExit, s.SliceEnded(Ended(1, SliceOutcome.StepDone)).ToArray()));
        Assert.Equal(StopReason.StepCompleted, TheStop(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()).Reason);
    }

    [Fact]
    public void A_ceded_stepper_whose_only_other_running_vcpu_parks_ends_as_Idle()
    {
        var s = Scheduler(2);
        s.Resume(Step(1, 2, SchedulerLocking.Off));
        s.SliceEnded(CededSlice(1));
        // vcpu 0 parks: it is re-entered, and parks again during its re-entry (it stays parked for this resume).
        Assert.Equal([(0, SliceMode.Reenter, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Parked, 0xD00, 0xD00)).ToArray()));
        var reentered = s.SliceEnded(Ended(0, SliceOutcome.Parked, 0xD04, 0xD04)).ToArray();
        Assert.Equal([0], Vcpus(RunCommandKind.CancelStep, reentered));
        // vcpu 0 ran before it parked (it may have prodded vcpu 1): vcpu 1 tries once more, alone.
        Assert.Equal([(1, SliceMode.Step, Quantum)], Slices(reentered));
        s.StepCancelled(0);
        var commands = s.SliceEnded(CededSlice(1)).ToArray();
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, commands));
        Assert.Equal(StopReason.Idle, TheStop(s.StepCancelled(1).ToArray()).Reason);
    }

    [Fact]
    public void A_ceded_vcpu_that_may_wake_by_itself_gets_the_next_slice_at_once()
    {
        var s = Scheduler(1);
        s.Resume(Step(0, 1, SchedulerLocking.On) with { HoldAsyncInterrupts = false });
        Assert.Equal([(0, SliceMode.Step, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Idle)).ToArray()));
    }

    [Fact]
    public void Continuing_vcpus_that_nothing_can_wake_wait_with_no_slice_in_flight_until_a_halt()
    {
        var s = Scheduler(2);
        s.Resume(Continue(0, 1));
        Assert.Empty(s.SliceEnded(CededSlice(0)).ToArray());
        Assert.Empty(s.SliceEnded(CededSlice(1)).ToArray());
        Assert.True(s.Running);
        Assert.Equal(new StopEvent(StopReason.Halted, 0, Nip(0), "halted on request"), TheStop(s.Halt().ToArray()));
    }

    [Fact]
    public void Deterministic_a_ceded_stepper_alone_ends_as_Idle()
    {
        var s = Scheduler(2, deterministic: true);
        Assert.Equal([(1, SliceMode.Step, 0)], Slices(s.Resume(Step(1, 2, SchedulerLocking.On)).ToArray()));
        Assert.Equal([(1, SliceMode.Step, Quantum)], Slices(s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray()));
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, s.SliceEnded(CededSlice(1)).ToArray()));
        Assert.Equal(StopReason.Idle, TheStop(s.StepCancelled(1).ToArray()).Reason);
    }

    // ---- Parks and re-entry (§4) ----

    [Fact]
    public void A_park_is_not_reported_but_counted_and_published()
    {
        var s = Scheduler(2);
        s.Resume(ContinueAll(2));
        var commands = s.SliceEnded(Ended(1, SliceOutcome.Parked, nip: 0xD00, address: 0xD00)).ToArray();
        var parked = Assert.IsType<VcpuParked>(Assert.Single(Of(RunCommandKind.Publish, commands)).Published);
        Assert.Equal((1, 0xD00UL, 0xD00UL), (parked.Vcpu, parked.Nip, parked.RealAddress));
        Assert.Empty(Of(RunCommandKind.Stop, commands));
        Assert.Empty(Of(RunCommandKind.RequestExit, commands));
        Assert.Equal(VcpuRunStatus.Parked, s.Status(1));
        Assert.Equal(1, s.Parks);
    }

    [Fact]
    public void A_vcpu_parked_while_another_is_stepped_with_locking_off_is_re_entered_alone_when_the_steppers_slice_ends_then_runs_on()
    {
        var s = Scheduler(3);
        s.Resume(new Resume(StepActions(0, 3, SchedulerLocking.Off), StepCount: 1_000_000));
        // vcpu 2 parks on vcpu 0's step breakpoint (after its stwcx., holding a lock): nothing until the slices in flight end.
        var parked = s.SliceEnded(Ended(2, SliceOutcome.Parked, 0x52cc, 0x52cc)).ToArray();
        Assert.Empty(Slices(parked));
        Assert.Empty(Of(RunCommandKind.RequestExit, parked)); // the stepper's slice is not cut short: it ends by its budget
        Assert.Empty(Slices(s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray())); // vcpu 0's slice is still in flight
        Assert.Equal([(2, SliceMode.Reenter, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()));
        Assert.Equal((2, (int?)2, 1L), (s.Status(2) == VcpuRunStatus.Running ? 2 : -1, s.Reentering, s.Reentries));
        // Its instruction executed, invisibly: it continues with the others, and the step goes on.
        var after = s.SliceEnded(Ended(2, SliceOutcome.StepDone, 0x52d0)).ToArray();
        Assert.Empty(Of(RunCommandKind.Stop, after));
        Assert.Equal([(0, SliceMode.Step, Quantum), (1, SliceMode.Continue, Quantum), (2, SliceMode.Continue, Quantum)], Slices(after));
        Assert.Null(s.Reentering);
        Assert.True(s.Running);
    }

    [Theory]
    [InlineData(SchedulerLocking.Step)]
    [InlineData(SchedulerLocking.On)]
    public void With_locking_step_or_on_a_parked_vcpu_gets_no_re_entry_during_the_step(SchedulerLocking locking)
    {
        // Only the stepped vcpu runs (gdb's step and on modes): nothing else can park, and a vcpu parked earlier stays parked.
        var s = WithParked(3, parked: 2);
        s.Resume(new Resume(StepActions(0, 3, locking), StepCount: 1_000_000));
        for (int i = 0; i < 3; i++)
            Assert.Equal([(0, SliceMode.Step, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray()));
        Assert.Equal((VcpuRunStatus.Parked, 0L), (s.Status(2), s.Reentries));
    }

    [Fact]
    public void Deterministic_a_vcpu_that_parks_is_re_entered_right_after_its_slice_and_the_round_goes_on()
    {
        var s = Scheduler(3, deterministic: true);
        s.Resume(new Resume(StepActions(0, 3, SchedulerLocking.Off), StepCount: 1000));
        Assert.Equal([(1, SliceMode.Continue, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray())); // planted
        Assert.Equal([(1, SliceMode.Reenter, Quantum)], Slices(s.SliceEnded(Ended(1, SliceOutcome.Parked, 0x52cc, 0x52cc)).ToArray()));
        Assert.Equal([(2, SliceMode.Continue, Quantum)], Slices(s.SliceEnded(Ended(1, SliceOutcome.StepDone, 0x52d0)).ToArray()));
        Assert.Equal([(0, SliceMode.Step, Quantum)], Slices(s.SliceEnded(Ended(2, SliceOutcome.Ran)).ToArray()));
        Assert.Equal([(1, SliceMode.Continue, Quantum)], Slices(s.SliceEnded(Ended(0, SliceOutcome.Ran)).ToArray())); // next round
        Assert.Equal(1, s.Reentries);
    }

    [Fact]
    public void On_an_all_stop_backend_a_vcpu_that_parks_is_re_entered_at_once_while_the_others_slices_stay_begun()
    {
        // Its park stopped the VM; the coordinator resumes it with the re-entering vcpu alone (Reentering).
        var s = Scheduler(3, deterministic: false, allStopBackend: true);
        s.Resume(new Resume(StepActions(0, 3, SchedulerLocking.Off), StepCount: 1000));
        Assert.Equal([(2, SliceMode.Reenter, Quantum)], Slices(s.SliceEnded(Ended(2, SliceOutcome.Parked, 0x52cc, 0x52cc)).ToArray()));
        Assert.Equal(2, s.Reentering);
        Assert.Equal([(2, SliceMode.Continue, Quantum)], Slices(s.SliceEnded(Ended(2, SliceOutcome.StepDone, 0x52d0)).ToArray()));
        Assert.Null(s.Reentering);
    }

    [Fact]
    public void A_re_entry_cut_short_by_a_halt_has_its_step_cancelled_and_the_vcpu_stays_parked()
    {
        var s = Scheduler(2);
        s.Resume(new Resume(StepActions(0, 2, SchedulerLocking.Off), StepCount: 1000));
        s.SliceEnded(Ended(1, SliceOutcome.Parked, 0x52cc, 0x52cc));
        s.SliceEnded(Ended(0, SliceOutcome.Ran));
        Assert.Equal([1], Vcpus(RunCommandKind.RequestExit, s.Halt().ToArray())); // the re-entry is in flight
        var ended = s.SliceEnded(Ended(1, SliceOutcome.Ran, 0x52cc)).ToArray();
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, ended)); // its re-entry step goes
        Assert.Empty(Of(RunCommandKind.Stop, ended));
        Assert.Equal([0], Vcpus(RunCommandKind.CancelStep, s.StepCancelled(1).ToArray())); // then the unfinished step
        Assert.Equal(StopReason.Halted, TheStop(s.StepCancelled(0).ToArray()).Reason);
        Assert.Equal(VcpuRunStatus.Parked, s.Status(1));
        // The next resume that continues it re-enters it afresh.
        Assert.Equal([(1, SliceMode.Reenter, Quantum)], Slices(s.Resume(ContinueAll(2)).ToArray()));
    }

    [Fact]
    public void No_re_entry_starts_once_the_resume_is_stopping()
    {
        var s = Scheduler(3);
        s.Resume(new Resume(StepActions(0, 3, SchedulerLocking.Off), StepCount: 1000));
        s.SliceEnded(Ended(2, SliceOutcome.Parked, 0x52cc, 0x52cc));
        var done = s.SliceEnded(Ended(0, SliceOutcome.StepDone, 0x2000)).ToArray(); // the step ends: the resume stops
        Assert.Empty(Slices(done));
        Assert.Equal(StopReason.StepCompleted, TheStop(s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray()).Reason);
        Assert.Equal((VcpuRunStatus.Parked, 0L), (s.Status(2), s.Reentries));
    }

    [Fact]
    public void A_parked_vcpu_that_will_continue_is_re_entered_alone_first()
    {
        var s = WithParked(3, parked: 2);
        var commands = s.Resume(ContinueAll(3)).ToArray();
        Assert.Equal([(2, SliceMode.Reenter, Quantum)], Slices(commands));
        Assert.Equal(1, s.Reentries);
    }

    [Fact]
    public void A_re_entry_is_one_instruction_whatever_the_count_the_resume_steps_by()
    {
        var s = WithParked(3, parked: 2);
        var commands = s.Resume(new Resume(StepActions(0, 3, SchedulerLocking.Off), StepCount: 1000)).ToArray();
        var reentry = Assert.Single(Of(RunCommandKind.RunSlice, commands)).Slice!;
        Assert.Equal((SliceMode.Reenter, 1), (reentry.Mode, reentry.StepCount));
        commands = s.SliceEnded(Ended(2, SliceOutcome.StepDone, nip: 0xD04)).ToArray();
        Assert.Equal(1000, Of(RunCommandKind.RunSlice, commands).Single(c => c.Vcpu == 0).Slice!.StepCount); // the stepper's count is the request's
    }

    [Fact]
    public void A_re_entry_that_ends_its_step_is_not_reported_and_then_every_vcpu_runs()
    {
        var s = WithParked(3, parked: 2);
        s.Resume(ContinueAll(3));
        var commands = s.SliceEnded(Ended(2, SliceOutcome.StepDone, nip: 0xD04)).ToArray();
        Assert.Empty(Of(RunCommandKind.Stop, commands));
        Assert.Equal([(0, SliceMode.Continue, Quantum), (1, SliceMode.Continue, Quantum), (2, SliceMode.Continue, Quantum)], Slices(commands));
    }

    [Fact]
    public void A_parked_vcpu_that_steps_just_steps_without_a_re_entry()
    {
        var s = WithParked(3, parked: 2);
        var commands = s.Resume(Step(2, 3, SchedulerLocking.On)).ToArray();
        Assert.Equal([(2, SliceMode.Step, Quantum)], Slices(commands));
        Assert.Equal(0, s.Reentries);
    }

    [Fact]
    public void A_parked_vcpu_that_stays_stays_parked()
    {
        var s = WithParked(3, parked: 2);
        s.Resume(Step(0, 3, SchedulerLocking.On));
        Assert.Equal(VcpuRunStatus.Parked, s.Status(2));
    }

    // ---- Deterministic mode ----

    [Fact]
    public void Deterministic_mode_hands_out_one_slice_at_a_time_in_vcpu_order()
    {
        var s = Scheduler(3, deterministic: true);
        var handedOut = new List<int> { Assert.Single(Slices(s.Resume(ContinueAll(3)).ToArray())).Vcpu };
        for (int i = 0; i < 5; i++)
            handedOut.Add(Assert.Single(Slices(s.SliceEnded(Ended(handedOut[^1], SliceOutcome.Ran)).ToArray())).Vcpu);
        Assert.Equal([0, 1, 2, 0, 1, 2], handedOut);
    }

    [Fact]
    public void Deterministic_steppers_plant_first_with_a_zero_budget_slice_and_run_after_the_continuing_vcpus()
    {
        var s = Scheduler(3, deterministic: true);
        var slices = new List<(int Vcpu, SliceMode Mode, long Budget)> { Assert.Single(Slices(s.Resume(Step(1, 3, SchedulerLocking.Off)).ToArray())) };
        for (int i = 0; i < 3; i++)
            slices.Add(Assert.Single(Slices(s.SliceEnded(Ended(slices[^1].Vcpu, SliceOutcome.Ran)).ToArray())));
        Assert.Equal([(1, SliceMode.Step, 0), (0, SliceMode.Continue, Quantum), (2, SliceMode.Continue, Quantum), (1, SliceMode.Step, Quantum)], slices);
    }

    [Fact]
    public void Deterministic_the_round_in_progress_completes_after_the_first_event_and_what_it_meets_is_kept()
    {
        var s = Scheduler(3, deterministic: true);
        s.Resume(Step(1, 3, SchedulerLocking.Off));
        s.SliceEnded(Ended(1, SliceOutcome.Ran)); // planted; vcpu 0 runs next
        var afterEvent = s.SliceEnded(Ended(0, SliceOutcome.BreakpointHit)).ToArray();
        Assert.Empty(Of(RunCommandKind.RequestExit, afterEvent));
        Assert.Equal([(2, SliceMode.Continue, Quantum)], Slices(afterEvent));
        // The round goes on to its end: vcpu 2 meets a breakpoint too (kept), then the stepper gets its turn.
        Assert.Equal([(1, SliceMode.Step, Quantum)], Slices(s.SliceEnded(Ended(2, SliceOutcome.BreakpointHit)).ToArray()));
        Assert.Equal([1], Vcpus(RunCommandKind.CancelStep, s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray()));
        Assert.Equal(0, TheStop(s.StepCancelled(1).ToArray()).Vcpu);
        Assert.Equal(1, s.PendingEvents);
    }

    // ---- Idle on the host's clock (a backend that paces idle time) ----

    private static AllStopScheduler Paced(int vcpus) =>
        new(Enumerable.Range(0, vcpus).Select(v => new VcpuState { Nip = Nip(v) }).ToArray(), new CoordinatorOptions(Quantum), pacedIdle: true);

    private static SliceEnded IdleFor(int vcpu, ulong wakesIn) => new(vcpu, SliceOutcome.Idle, new VcpuState { Nip = 0x2000 }, WakesIn: wakesIn);

    [Fact]
    public void A_continuing_vcpu_idle_until_its_decrementer_gets_no_slice_until_it_is_woken()
    {
        var s = Paced(2);
        var started = s.Resume(ContinueAll(2)).ToArray();
        Assert.All(Of(RunCommandKind.RunSlice, started), c => Assert.True(c.Slice!.PaceIdle));

        var idle = s.SliceEnded(IdleFor(0, 5000)).ToArray();
        Assert.Equal([(RunCommandKind.WaitForWake, 0, 5000UL)], idle.Select(c => (c.Kind, c.Vcpu, c.WakesIn)));
        Assert.True(s.Waiting(0));
        Assert.Equal([1], Slices(s.SliceEnded(Ended(1, SliceOutcome.Ran)).ToArray()).Select(x => x.Vcpu)); // the other runs on alone

        Assert.Equal([0], Slices(s.Woken(0).ToArray()).Select(x => x.Vcpu));
        Assert.False(s.Waiting(0));
    }

    [Fact]
    public void A_wake_up_while_the_vcpus_slice_is_in_flight_keeps_it_from_waiting_when_that_slice_ends_idle()
    {
        var s = Paced(1);
        s.Resume(ContinueAll(1));

        Assert.Empty(s.Woken(0).ToArray()); // an H_PROD after the backend looked, before the slice's end reached the coordinator
        var ended = s.SliceEnded(IdleFor(0, 5000)).ToArray();

        Assert.DoesNotContain(ended, c => c.Kind == RunCommandKind.WaitForWake);
        Assert.Equal([0], Slices(ended).Select(x => x.Vcpu));
    }

    [Fact]
    public void A_halt_of_a_VM_whose_vcpus_wait_for_their_decrementers_answers_at_once()
    {
        var s = Paced(2);
        s.Resume(ContinueAll(2));
        s.SliceEnded(IdleFor(0, 5000));
        s.SliceEnded(IdleFor(1, 7000));

        var halted = s.Halt().ToArray();

        Assert.Equal(StopReason.Halted, TheStop(halted).Reason);
        Assert.Empty(Vcpus(RunCommandKind.RequestExit, halted));
    }

    [Fact]
    public void The_deterministic_mode_does_not_pace_idle_time()
    {
        var s = new AllStopScheduler([new VcpuState()], new CoordinatorOptions(Quantum, Deterministic: true), pacedIdle: true);
        var started = s.Resume(ContinueAll(1)).ToArray();

        Assert.All(Of(RunCommandKind.RunSlice, started), c => Assert.False(c.Slice!.PaceIdle));
        Assert.Equal([0], Slices(s.SliceEnded(IdleFor(0, 5000)).ToArray()).Select(x => x.Vcpu));
    }
}
