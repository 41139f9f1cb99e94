using ActorStep.Machine.Cpu;

namespace ActorStep.Tests.Machine;

/// <summary>The block compiler's queue: the compile whose head was arrived at most often while it waited goes first.</summary>
public class HottestFirstQueueTests
{
    private sealed class Item(string name, int heat)
    {
        public string Name { get; } = name;
        public int Heat = heat;
    }

    [Fact]
    public void The_hottest_item_is_taken_first_and_the_oldest_among_equals()
    {
        var queue = new HottestFirstQueue<Item>(i => i.Heat);
        foreach (var item in new[] { new Item("a", 1), new Item("b", 5), new Item("c", 3), new Item("d", 5), new Item("e", 0) })
            queue.Add(item);
        var order = new List<string>();
        while (queue.Count > 0) order.Add(queue.Take().Name);
        Assert.Equal(["b", "d", "c", "a", "e"], order);
    }

    [Fact]
    public void Heat_gained_while_waiting_counts_at_the_take()
    {
        var cold = new Item("cold", 0);
        var queue = new HottestFirstQueue<Item>(i => i.Heat);
        queue.Add(new Item("first", 2));
        queue.Add(cold);
        cold.Heat = 7; // arrivals at its head while it waited
        Assert.Equal("cold", queue.Take().Name);
        Assert.Equal("first", queue.Take().Name);
        Assert.Equal(0, queue.Count);
    }
}
