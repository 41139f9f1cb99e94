namespace ActorStep.Bench;

/// <summary>
/// CPU time from Linux's /proc (user + system, in the kernel's clock ticks): of this process's threads by name, and of another
/// process. On a shared machine a run's wall time moves with the other load; the CPU time its threads used moves much less,
/// so it ranks two builds where wall times cannot. Elsewhere: zero.
/// </summary>
internal static class CpuClock
{
    private const double TicksPerSecond = 100; // USER_HZ, which /proc reports in on every Linux architecture

    /// <summary>Seconds of CPU used so far by this process's live threads whose name starts with <paramref name="prefix"/>.</summary>
    public static double ThreadsNamed(string prefix)
    {
        double total = 0;
        if (!Directory.Exists("/proc/self/task")) return 0;
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n').StartsWith(prefix, StringComparison.Ordinal))
                    total += Seconds(File.ReadAllText(Path.Combine(task, "stat")));
            }
            catch (IOException) { } // the thread ended meanwhile
        }
        return total;
    }

    /// <summary>Seconds of CPU used so far by process <paramref name="pid"/>, all its threads.</summary>
    public static double Process(int pid)
    {
        try { return Seconds(File.ReadAllText($"/proc/{pid}/stat")); }
        catch (IOException) { return 0; }
    }

    /// <summary>utime + stime, fields 14 and 15 of a stat line, counted after the command's closing parenthesis (the command
    /// itself may hold spaces and parentheses).</summary>
    private static double Seconds(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / TicksPerSecond;
    }
}
