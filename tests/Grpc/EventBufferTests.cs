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
        // Each event is written once the reader has taken the one before: a reader that keeps up, however slow the machine.
        var buffer = new EventBuffer(capacity: 1);
        var taken = new SemaphoreSlim(0);
        var reading = Task.Run(async () =>
        {
            var seqs = new List<ulong>();
            await foreach (var e in buffer.ReadAllAsync())
            {
                seqs.Add(e.KindCase == Event.KindOneofCase.Dropped ? 0 : e.Sequence);
                taken.Release();
            }
            return seqs;
        });
        for (int i = 1; i <= 50; i++)
        {
            buffer.Write(Console(i));
            Assert.True(await taken.WaitAsync(TimeSpan.FromSeconds(10)), $"the reader did not take event {i}");
        }
        buffer.Complete();
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (ulong)i), await reading.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
