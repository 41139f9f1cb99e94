using ActorStep.Tests.Support;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Grpc.Core;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>
/// A guest's console reaches event streams whole, in order, and before the stop that follows it, even when the guest writes it
/// a few bytes per hypercall faster than a reader reads: the coordinator joins the bytes into chunks, so a stream's bounded
/// buffer holds kilobytes of console per event instead of 16 bytes. The server's event buffer is small (32): one event per
/// hypercall would overflow it 150 times over.
/// </summary>
public sealed class ConsoleEventsTests() : ServerTest(() => ServerHost.StartAsync(Options(eventBuffer: 32)))
{
    private const int Writes = 5000;
    private const string Line = "0123456789abcde\n";

    /// <summary>vcpu 0 writes <see cref="Line"/> <see cref="Writes"/> times, one H_PUT_TERM_CHAR each, then spins at <c>done</c>.</summary>
    private const string Source = """
            .globl _start
        _start:
            lis 21, 0x3031
            ori 21, 21, 0x3233
            sldi 21, 21, 32
            oris 21, 21, 0x3435
            ori 21, 21, 0x3637
            lis 22, 0x3839
            ori 22, 22, 0x6162
            sldi 22, 22, 32
            oris 22, 22, 0x6364
            ori 22, 22, 0x650a
            li 20, 5000
        write:
            li 3, 0x58
            li 4, 0
            li 5, 16
            mr 6, 21
            mr 7, 22
            sc 1
            addic. 20, 20, -1
            bne write
            .globl done
        done:
            b done
        """;

    [Fact]
    public async Task A_console_written_16_bytes_at_a_time_reaches_a_reader_that_reads_late_whole_and_before_the_stop()
    {
        string elf = Support.GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);
        ulong done = Support.GuestAssembler.Build(Source, textAddress: 0).Symbol("done");
        var vm = new Vms.VmsClient(Channel).CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 1, MemorySize = 16 << 20, VmId = "console" },
            deadline: Deadline);
        new Breakpoints.BreakpointsClient(Channel).InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = done }, deadline: Deadline);
        using var events = new Events.EventsClient(Channel).StreamEvents(new StreamEventsRequest { VmId = vm.VmId },
            deadline: DateTime.UtcNow.AddMinutes(1));
        Assert.Equal(Event.KindOneofCase.Added, (await Next(events.ResponseStream)).KindCase);

        // The reader reads nothing until the guest has written everything and stopped.
        var stop = await new RunControl.RunControlClient(Channel).ContinueAsync(new ContinueRequest { VmId = vm.VmId },
            deadline: DateTime.UtcNow.AddMinutes(1));
        Assert.Equal((StopReason.Breakpoint, done), (stop.Event.Reason, stop.Event.Nip));

        var console = new System.Text.StringBuilder();
        int consoleEvents = 0;
        while (true)
        {
            var e = await Next(events.ResponseStream);
            Assert.NotEqual(Event.KindOneofCase.Dropped, e.KindCase);
            if (e.KindCase == Event.KindOneofCase.Console)
            {
                consoleEvents++;
                console.Append(e.Console.Data.ToStringUtf8());
            }
            if (e.KindCase == Event.KindOneofCase.Stopped) break;
        }
        Assert.Equal(string.Concat(Enumerable.Repeat(Line, Writes)), console.ToString());
        Assert.True(consoleEvents < 32, $"{Writes} writes came as {consoleEvents} console events");
    }

    private static async Task<Event> Next(IAsyncStreamReader<Event> s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.True(await s.MoveNext(cts.Token), "the stream ended");
        return s.Current;
    }
}
