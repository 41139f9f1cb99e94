using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace ActorStep.Tests.Host;

/// <summary>
/// <c>actorstep serve</c> as an operator runs it: a real process whose output is kept, whose bound gRPC address is read from
/// what it prints (start it with <c>--grpc 127.0.0.1:0</c>), stopped with a real SIGTERM; killed (whole tree) on dispose.
/// </summary>
public sealed partial class ServeCommandProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = new();
    private readonly TaskCompletionSource _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _grpc = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [GeneratedRegex(@"^ActorStep gRPC API on (http://[^ ]+) ")]
    private static partial Regex GrpcLine();

    private ServeCommandProcess(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "actorstep.dll"));
        psi.ArgumentList.Add("serve");
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => Received(e.Data);
        _process.ErrorDataReceived += (_, e) => Received(e.Data);
        _process.Exited += (_, _) =>
        {
            _firstLine.TrySetResult();
            _grpc.TrySetException(new InvalidOperationException("actorstep serve exited"));
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static ServeCommandProcess Start(params string[] args) => new(args);

    private void Received(string? line)
    {
        if (line is null) return;
        lock (_output) _output.Add(line);
        _firstLine.TrySetResult();
        if (GrpcLine().Match(line) is { Success: true } g) _grpc.TrySetResult(g.Groups[1].Value);
    }

    /// <summary>Completes at the first line the process writes (or when it exits).</summary>
    public Task FirstLine => _firstLine.Task;

    /// <summary>The address it printed, once it listens.</summary>
    public async Task<string> GrpcAddressAsync(TimeSpan within)
    {
        try { return await _grpc.Task.WaitAsync(within); }
        catch (Exception e) { throw new InvalidOperationException($"actorstep serve did not start ({e.Message}):\n{Output}"); }
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output { get { lock (_output) return string.Join("\n", _output); } }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private const int SIGTERM = 15;

    /// <summary>What a service manager sends to stop it.</summary>
    public void Terminate()
    {
        if (kill(_process.Id, SIGTERM) != 0 && !_process.HasExited)
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Whether it exited within <paramref name="within"/> (its output fully read then).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan within)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(within);
            return true;
        }
        catch (TimeoutException) { return false; }
    }

    /// <summary>SIGKILL of the server alone (not its children): it ends with no cleanup of its own.</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
    }
}
