using System.Diagnostics;

namespace ActorStep.Bench;

/// <summary>A named benchmark run by <c>bench/Program.cs</c>; prints its figures to stdout.</summary>
public interface IBenchmark
{
    /// <summary>The command-line name (<c>grpc</c>).</summary>
    string Name { get; }

    string Description { get; }

    /// <summary>Runs with the arguments after the name; returns the exit code.</summary>
    Task<int> RunAsync(string[] args);
}

/// <summary>Latency samples (Stopwatch ticks) and the figures the README reports.</summary>
public sealed class Latencies
{
    private readonly List<long> _ticks = new();

    public int Count => _ticks.Count;

    /// <summary>Runs <paramref name="once"/> (given its index) <paramref name="count"/> times, one after the other,
    /// timing each; returns the latencies and the wall time of all of them.</summary>
    public static async Task<(Latencies Latencies, TimeSpan Elapsed)> MeasureAsync(int count, Func<int, Task> once)
    {
        var all = new Latencies();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await once(i);
            all.Add(Stopwatch.GetTimestamp() - t0);
        }
        sw.Stop();
        return (all, sw.Elapsed);
    }

    public void Add(long ticks) { lock (_ticks) _ticks.Add(ticks); }

    public void AddRange(IEnumerable<long> ticks) { lock (_ticks) _ticks.AddRange(ticks); }

    /// <summary>The latency below which <paramref name="p"/> (0..1) of the samples fall, in microseconds.</summary>
    public double PercentileMicros(double p)
    {
        lock (_ticks)
        {
            if (_ticks.Count == 0) return double.NaN;
            var sorted = _ticks.Order().ToArray();
            int i = Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1);
            return sorted[i] * 1e6 / Stopwatch.Frequency;
        }
    }

    public string Summary(TimeSpan elapsed, string unit) =>
        $"p50 {PercentileMicros(0.50),8:0.0} µs   p99 {PercentileMicros(0.99),8:0.0} µs   {Count / elapsed.TotalSeconds,10:0} {unit}/s   ({Count} in {elapsed.TotalSeconds:0.00} s)";
}

/// <summary>Tiny option parsing shared by benchmarks: <c>--name value</c>.</summary>
public static class BenchArgs
{
    public static int Int(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
    }

    /// <summary>The command that runs the installed ActorStep: --actorstep CMD, else `actorstep` on the PATH, else this build's.</summary>
    public static string[] ActorStepCommand(string[] args)
    {
        int i = Array.IndexOf(args, "--actorstep");
        if (i >= 0 && i + 1 < args.Length) return args[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return ActorStep.Backends.Qemu.QemuProcess.OnPath("actorstep") is { } installed
            ? [installed]
            : ["dotnet", typeof(ActorStep.Host.Server.ServerHost).Assembly.Location];
    }
}

/// <summary>Loopback ports for the processes a benchmark starts.</summary>
public static class Loopback
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).</summary>
    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
