using ActorStep.Api.V1;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.Events: stops, console output and state changes; slow readers never stall anything.</summary>
public class EventStreamApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    private static async Task<Event> Next(IAsyncStreamReader<Event> s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.True(await s.MoveNext(cts.Token), "the stream ended");
        return s.Current;
    }

    [Fact]
    public async Task A_step_streams_resumed_then_stopped_with_every_vcpu()
    {
        var vm = server.NewDemoVm();
        using var call = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal(Event.KindOneofCase.Added, (await Next(call.ResponseStream)).KindCase);

        server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);

        var resumed = await Next(call.ResponseStream);
        var stopped = await Next(call.ResponseStream);
        Assert.Equal(vm.VmId, resumed.VmId);
        Assert.Equal((1u, VcpuAction.Step), (resumed.Resumed.Actions.Single().Vcpu, resumed.Resumed.Actions.Single().Action));
        Assert.Equal((StopReason.StepCompleted, 1u), (stopped.Stopped.Event.Reason, stopped.Stopped.Event.Vcpu));
        Assert.Equal(4, stopped.Stopped.Vcpus.Count);
        Assert.Equal((2UL, 3UL), (resumed.Sequence, stopped.Sequence));
    }

    /// <summary>Issue 13 point 7: the demo image has a symbol table, so the stop and every vcpu's position say function+0xoffset,
    /// as the image's own symbols name their NIP (real mode: the vcpus start with translation off).</summary>
    [Fact]
    public async Task A_stopped_event_names_each_vcpus_nip_from_the_images_symbols()
    {
        var symbols = global::ActorStep.Machine.ElfImage.BuiltIn("demo").Code;
        var vm = server.NewDemoVm();
        using var call = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal(Event.KindOneofCase.Added, (await Next(call.ResponseStream)).KindCase);

        server.Run.Step(new StepRequest { VmId = vm.VmId, Vcpu = 1, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);

        Assert.Equal(Event.KindOneofCase.Resumed, (await Next(call.ResponseStream)).KindCase);
        var stopped = (await Next(call.ResponseStream)).Stopped;
        Assert.Matches(@"^\w+\+0x[0-9a-f]+$", stopped.Event.Symbol);
        Assert.Equal(symbols.Describe(stopped.Event.Nip, translated: false), stopped.Event.Symbol);
        Assert.All(stopped.Vcpus, v => Assert.Equal(symbols.Describe(v.Nip, translated: false), v.Symbol));
        Assert.NotEqual(stopped.Vcpus[0].Symbol, stopped.Vcpus[1].Symbol); // vcpu 1 moved on, vcpu 0 stayed at the entry
    }

    [Fact]
    public async Task Guest_console_output_is_streamed()
    {
        var vm = server.NewDemoVm();
        using var call = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        await Next(call.ResponseStream);
        using var running = server.Run.ContinueAsync(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline);

        var text = new System.Text.StringBuilder();
        while (text.Length < 20)
        {
            var e = await Next(call.ResponseStream);
            if (e.KindCase == Event.KindOneofCase.Console) text.Append(e.Console.Data.ToStringUtf8());
        }
        server.Run.Halt(new HaltRequest { VmId = vm.VmId }, deadline: Deadline);
        await running.ResponseAsync;
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
    }

    [Fact]
    public async Task A_reader_that_never_reads_stalls_neither_the_vm_nor_another_reader()
    {
        var vm = server.NewDemoVm();
        using var stalled = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: DateTime.UtcNow.AddMinutes(1));
        using var reader = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: DateTime.UtcNow.AddMinutes(1));
        Assert.Equal(Event.KindOneofCase.Added, (await Next(stalled.ResponseStream)).KindCase); // subscribed; never read again
        Assert.Equal(Event.KindOneofCase.Added, (await Next(reader.ResponseStream)).KindCase);

        // Far more events than the stalled stream's buffer and HTTP/2 window hold.
        const int Steps = 1500;
        var started = DateTime.UtcNow;
        var reading = Task.Run(async () =>
        {
            int stops = 0;
            while (stops < Steps)
                if ((await Next(reader.ResponseStream)).KindCase == Event.KindOneofCase.Stopped) stops++;
            return stops;
        });
        for (int i = 0; i < Steps; i++)
            await server.Run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = (uint)(i % 4), SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(Steps, await reading.WaitAsync(TimeSpan.FromSeconds(10)));

        // The stalled reader lost the oldest events, and is told how many.
        ulong dropped = 0, last = 1;
        bool sawStop = false;
        while (!sawStop || last < 2 * Steps + 1)
        {
            var e = await Next(stalled.ResponseStream);
            if (e.KindCase == Event.KindOneofCase.Dropped) { dropped += e.Dropped.Count; continue; }
            Assert.True(e.Sequence > last, $"sequence went from {last} to {e.Sequence}");
            last = e.Sequence;
            sawStop |= e.KindCase == Event.KindOneofCase.Stopped;
        }
        Assert.True(dropped > 0, "nothing was dropped: the test did not overflow the stalled stream");
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task A_selector_stream_sees_vms_created_later_and_ends_its_vm_stream_on_delete()
    {
        string tag = Guid.NewGuid().ToString("N")[..8];
        using var selector = server.Events.StreamEvents(new StreamEventsRequest { LabelSelector = { ["t"] = tag } }, deadline: Deadline);
        var vm = server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20, Labels = { ["t"] = tag } }, deadline: Deadline);
        server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20, Labels = { ["t"] = "other" } }, deadline: Deadline);
        var added = await Next(selector.ResponseStream);
        Assert.Equal((Event.KindOneofCase.Added, vm.VmId), (added.KindCase, added.VmId));

        using var single = server.Events.StreamEvents(new StreamEventsRequest { VmId = vm.VmId }, deadline: Deadline);
        await Next(single.ResponseStream);
        server.Vms.DeleteVm(new DeleteVmRequest { VmId = vm.VmId }, deadline: Deadline);

        Assert.Equal(Event.KindOneofCase.Removed, (await Next(selector.ResponseStream)).KindCase);
        Assert.Equal(Event.KindOneofCase.Removed, (await Next(single.ResponseStream)).KindCase);
        Assert.False(await single.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.OK, single.GetStatus().StatusCode);
    }
}
