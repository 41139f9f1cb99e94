using ActorStep.Actors.Vm;

namespace ActorStep.Tests.Engine;

public class ConsoleCoalescerTests
{
    private static byte[] B(string s) => System.Text.Encoding.ASCII.GetBytes(s);
    private static string S((int Vcpu, byte[] Bytes) c) => $"{c.Vcpu}:{System.Text.Encoding.ASCII.GetString(c.Bytes)}";

    [Fact]
    public void One_vcpus_consecutive_writes_become_one_chunk_when_flushed()
    {
        var c = new ConsoleCoalescer();
        Assert.Empty(c.Add(0, B("Linux ")));
        Assert.Empty(c.Add(0, B("version")));
        Assert.True(c.HasPending);
        Assert.Equal("0:Linux version", S(c.Flush()!.Value));
        Assert.False(c.HasPending);
        Assert.Null(c.Flush());
    }

    [Fact]
    public void Another_vcpus_write_completes_the_pending_chunk_first()
    {
        var c = new ConsoleCoalescer();
        c.Add(0, B("abc"));
        var done = c.Add(1, B("xyz"));
        Assert.Equal(["0:abc"], done.Select(S));
        Assert.Equal("1:xyz", S(c.Flush()!.Value));
    }

    [Fact]
    public void A_chunk_never_exceeds_the_limit_and_no_byte_is_lost_or_reordered()
    {
        var c = new ConsoleCoalescer(limit: 4);
        var done = c.Add(2, B("0123456789"));
        Assert.Equal(["2:0123", "2:4567"], done.Select(S));
        Assert.Equal(["2:89ab"], c.Add(2, B("ab")).Select(S));
        Assert.False(c.HasPending);
    }

    [Fact]
    public void A_limit_below_one_byte_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConsoleCoalescer(limit: 0));
}

public class ConsoleWritesTests
{
    [Fact]
    public void Only_the_first_write_since_the_last_take_asks_to_be_told_and_a_take_returns_every_write_in_order()
    {
        var w = new ConsoleWrites();
        Assert.True(w.Add(0, "a"u8));
        Assert.False(w.Add(1, "b"u8));
        Assert.False(w.Add(0, "c"u8));
        Assert.Equal(["0a", "1b", "0c"], w.Take().Select(x => $"{x.Vcpu}{(char)x.Bytes[0]}"));
        Assert.Empty(w.Take());
        Assert.True(w.Add(2, "d"u8));
    }

    [Fact]
    public void Writes_from_many_threads_are_all_taken_and_each_batch_is_told_once()
    {
        var w = new ConsoleWrites();
        int told = 0;
        Parallel.For(0, 4, v => { for (int i = 0; i < 10_000; i++) if (w.Add(v, [(byte)i])) Interlocked.Increment(ref told); });
        var taken = w.Take();
        Assert.Equal(40_000, taken.Count);
        Assert.Equal(1, told);
        foreach (var v in Enumerable.Range(0, 4))
            Assert.Equal(Enumerable.Range(0, 10_000).Select(i => (byte)i), taken.Where(t => t.Vcpu == v).Select(t => t.Bytes[0]));
    }
}
