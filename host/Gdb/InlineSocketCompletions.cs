namespace ActorStep.Host.Gdb;

/// <summary>
/// Lets socket completions run on the socket engine's own thread instead of being queued to the thread pool (.NET's
/// <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>, read once, when the process's first asynchronous socket operation
/// starts). Every gdb packet the bridge reads otherwise waits for a pool thread to wake after the engine's thread has seen
/// it: measured with <c>bench gdb</c> on the 2-core machine, the round trip of a packet the bridge answers by itself fell from
/// ~50 to ~33 µs and a <c>vCont;s</c> followed by a <c>g</c> from ~150 to ~112 µs. It is safe for this process's code: the gdb
/// connection's continuations never block (every call they make is awaited), Kestrel's transport hands requests to the pool
/// itself, and Akka's remoting posts socket events to its own loops.
/// </summary>
public static class InlineSocketCompletions
{
    private const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Turns them on for this process (and the processes it starts), unless the environment already says otherwise.
    /// Call before any socket is used: the engine reads the setting once.</summary>
    public static void Enable()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null) Environment.SetEnvironmentVariable(Variable, "1");
    }
}
