using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

/// <summary>
/// A thread-id as gdb writes it (gdb manual, "Packets", thread-id): <c>N</c>, <c>0</c> (any), <c>-1</c> (all), and
/// with multiprocess <c>pP.N</c>, <c>pP</c> (= <c>pP.-1</c>). The VM is process 1; thread N is vcpu N − 1.
/// </summary>
public readonly record struct GdbThreadId(long Process, long Thread)
{
    public const long All = -1, Any = 0;
    public const long ProcessId = 1;

    public static GdbThreadId ForVcpu(int vcpu) => new(ProcessId, vcpu + 1);

    public bool IsAll => Thread == All;
    public bool IsAny => Thread == Any;

    /// <summary>Whether this id names <paramref name="vcpu"/> (process -1 or 0 or 1, thread -1 or vcpu + 1).</summary>
    public bool Matches(int vcpu) =>
        Process is All or Any or ProcessId && (Thread == All || Thread == vcpu + 1);

    /// <summary>The vcpu this id names, or null for "any"/"all" or another process.</summary>
    public int? Vcpu => Process is All or Any or ProcessId && Thread > 0 && Thread <= int.MaxValue ? (int)(Thread - 1) : null;

    public static GdbThreadId Parse(RspReader r)
    {
        if (r.TrySkip("p"))
        {
            long p = Number(r);
            long t = r.TrySkip(".") ? Number(r) : All;
            return new(p, t);
        }
        return new(ProcessId, Number(r));
    }

    private static long Number(RspReader r)
    {
        if (r.TrySkip("-1")) return All;
        var v = r.Hex();
        return v <= long.MaxValue ? (long)v : throw new RspFormatException("thread id out of range");
    }

    /// <summary>Formats a vcpu's id: <c>p1.N</c> with multiprocess, else <c>N</c> (hex).</summary>
    public static string Format(int vcpu, bool multiprocess) =>
        multiprocess ? $"p{ProcessId:x}.{vcpu + 1:x}" : $"{vcpu + 1:x}";
}
