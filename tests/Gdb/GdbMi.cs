using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb-multiarch driven through its machine interface (MI3), for tests that must wait for what gdb reports asynchronously
/// (non-stop mode: a thread stops while others run). Commands are CLI or MI text, each answered by gdb's result record;
/// <see cref="WaitForAsync"/> waits for an asynchronous record (<c>*stopped</c>, <c>*running</c>). Killed with its children on dispose.
/// </summary>
public sealed class GdbMi : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly Task _reader;
    private int _token;

    public GdbMi(string? elf)
    {
        var psi = new ProcessStartInfo("gdb-multiarch") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "--interpreter=mi3", "-nx", "-q" }) psi.ArgumentList.Add(a);
        if (elf is not null) psi.ArgumentList.Add(elf);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start gdb-multiarch");
        _reader = Task.Run(async () =>
        {
            while (await _process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_lines) _lines.Add(line);
                _arrived.Release();
            }
            _arrived.Release();
        });
        _ = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>Lines gdb has written so far.</summary>
    public int LineCount { get { lock (_lines) return _lines.Count; } }

    /// <summary>Everything gdb wrote, for failure messages.</summary>
    public string Transcript { get { lock (_lines) return string.Join('\n', _lines); } }

    /// <summary>Runs one command and waits for its result record; returns what it printed (console stream records, decoded).
    /// An <c>^error</c> fails the test with gdb's message.</summary>
    public async Task<string> RunAsync(string command, TimeSpan? timeout = null)
    {
        int token = ++_token;
        int from = LineCount;
        await _process.StandardInput.WriteLineAsync($"{token}{command}");
        await _process.StandardInput.FlushAsync();
        var result = await WaitForAsync(new Regex($@"^{token}\^(done|running|connected|error|exit)"), from, timeout);
        if (result.Contains("^error")) throw new InvalidOperationException($"gdb refused '{command}': {result}\n{Transcript}");
        var console = new StringBuilder();
        lock (_lines)
            for (int i = from; i < _lines.Count && !_lines[i].StartsWith($"{token}^"); i++)
                if (_lines[i].StartsWith("~\"")) console.Append(Unquote(_lines[i][1..]));
        return console.ToString();
    }

    /// <summary>Waits for a line from <paramref name="from"/> on that matches; returns it.</summary>
    public async Task<string> WaitForAsync(Regex pattern, int from, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        int next = from;
        while (true)
        {
            lock (_lines)
                for (; next < _lines.Count; next++)
                    if (pattern.IsMatch(_lines[next])) return _lines[next];
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || _process.HasExited && _reader.IsCompleted && next >= LineCount)
                throw new TimeoutException($"gdb never wrote /{pattern}/:\n{Transcript}");
            await _arrived.WaitAsync(left);
        }
    }

    /// <summary>Waits until gdb has reported each of <paramref name="threads"/> stopped (<c>*stopped … thread-id="N"</c>) after
    /// line <paramref name="from"/>; returns those records by thread.</summary>
    public async Task<Dictionary<int, string>> WaitForStopsAsync(int from, params int[] threads)
    {
        var stops = new Dictionary<int, string>();
        foreach (var t in threads) stops[t] = await WaitForAsync(new Regex($@"^\*stopped,.*thread-id=""{t}"""), from);
        return stops;
    }

    /// <summary>A C string as MI writes it (<c>"text\n"</c>), unescaped.</summary>
    public static string Unquote(string quoted)
    {
        var sb = new StringBuilder();
        for (int i = 1; i < quoted.Length - 1; i++)
        {
            char c = quoted[i];
            if (c != '\\' || i + 1 >= quoted.Length - 1) { sb.Append(c); continue; }
            char e = quoted[++i];
            sb.Append(e switch { 'n' => '\n', 't' => '\t', '"' => '"', '\\' => '\\', _ => e });
        }
        return sb.ToString();
    }

    public void Dispose()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
