using ActorStep.Api.V1;
using ActorStep.Host.Services;

namespace ActorStep.Tests.Grpc;

/// <summary>An event stream's buffer: never blocks its writer, drops the oldest, says how many.</summary>
public class EventBufferTests
{
    private static Event Console(int i) => new() { VmId = $"e{i}", Console = new ConsoleOutput() };

    [Fact]
    public async Task A_full_buffer_drops_the_oldest_and_tells_the_reader_how_many()
    {
        var buffer = new EventBuffer(capacity: 4);
        for (int i = 1; i <= 10; i++) buffer.Write(Console(i));
        buffer.Complete();

        var read = new List<Event>();
        await foreach (var e in buffer.ReadAllAsync()) read.Add(e);

        Assert.Equal(6UL, read[0].Dropped.Count);
        Assert.Equal(new ulong[] { 7, 8, 9, 10 }, read.Skip(1).Select(e => e.Sequence));
        Assert.Equal(5, read.Count);
    }

    [Fact]
    public async Task A_reader_that_keeps_up_sees_every_event_in_order_without_markers()
    {
        var buffer = new EventBuffer(capacity: 2);
        var reading = Task.Run(async () =>
        {
            var seqs = new List<ulong>();
            await foreach (var e in buffer.ReadAllAsync()) seqs.Add(e.KindCase == Event.KindOneofCase.Dropped ? 0 : e.Sequence);
            return seqs;
        });
        for (int i = 1; i <= 3; i++)
        {
            buffer.Write(Console(i));
            await Task.Delay(20);
        }
        buffer.Complete();
        Assert.Equal(new ulong[] { 1, 2, 3 }, await reading);
    }
}
