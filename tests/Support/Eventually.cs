namespace ActorStep.Tests.Support;

/// <summary>Waits for a condition itself, not for a guessed time: polls it, and fails with what was awaited after a bounded time.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    public static async Task HoldsAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var until = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new Xunit.Sdk.XunitException($"not reached within {limit.TotalSeconds:0.#} s: {what}");
            await Task.Delay(2);
        }
    }
}
