using System.Diagnostics;
using System.Text;

namespace ActorStep.Backends.Qemu;

/// <summary>Bytes the guest wrote to its console.</summary>
public delegate void QemuConsoleHandler(ReadOnlySpan<byte> bytes);

/// <summary>
/// A <c>qemu-system-ppc64</c> that ActorStep starts for a VM: the caller's arguments plus a gdbstub and — unless the arguments
/// open one — a QMP monitor, each on a Unix socket in a private directory (nothing listens on the network), paused before the first instruction (<c>-S</c>), a guest poweroff
/// that stops the VM instead of ending QEMU (<c>-no-shutdown</c>), and — unless the arguments say otherwise — the first
/// serial port (a pseries guest's vty, hvc0) on QEMU's stdout, which becomes the VM's console, no display, no monitor.
/// Disposing ends it (QMP <c>quit</c> where ActorStep has the QMP socket, so that QEMU closes its disk images; else, or when it
/// does not end at once, SIGKILL) and removes the directory.
/// </summary>
public sealed class QemuProcess : IDisposable
{
    public const string DefaultBinary = "qemu-system-ppc64";
    private readonly Process _process;
    private readonly string _dir;
    private readonly StringBuilder _stderr = new();
    private bool _disposed;

    private QemuProcess(Process process, string dir, string gdbSocket, string? qmpSocket, string? kernel)
    {
        _process = process;
        _dir = dir;
        GdbEndpoint = "unix:" + gdbSocket;
        QmpEndpoint = qmpSocket is null ? null : "unix:" + qmpSocket;
        KernelPath = kernel;
    }

    /// <summary>Where its QMP monitor listens (<c>unix:PATH</c>): null when the caller's arguments opened their own.</summary>
    public string? QmpEndpoint { get; }

    /// <summary>A QMP client of this QEMU's private socket, given by the VM that uses it: <see cref="Dispose"/> asks QEMU to quit.</summary>
    internal QmpClient? Qmp { get; set; }

    /// <summary>The caller's arguments open a QMP monitor of their own (<c>-qmp</c>, <c>-qmp-pretty</c>, or <c>-mon</c> in control mode).</summary>
    public static bool HasQmp(IReadOnlyList<string> args) =>
        args.Any(a => a is "-qmp" or "--qmp" or "-qmp-pretty" or "--qmp-pretty" || a.Contains("mode=control", StringComparison.Ordinal));

    /// <summary>The <c>-kernel</c> file QEMU was given, if any.</summary>
    public string? KernelPath { get; }

    /// <summary>Where its gdbstub listens (<c>unix:PATH</c>).</summary>
    public string GdbEndpoint { get; }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the gdbstub's socket to listen, without connecting to it (a probe would be
    /// QEMU's one gdb client, and its leaving would let the VM run): the socket file exists from bind(), but a connect before
    /// listen() is refused. Linux's /proc/net/unix marks a listening socket with __SO_ACCEPTCON (0x10000).
    /// </summary>
    public bool WaitForGdbStub(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!HasExited)
        {
            if (Listening(GdbEndpoint[5..])) return true;
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(10);
        }
        return false;
    }

    private static bool Listening(string path)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/net/unix"))
            {
                // Num RefCount Protocol Flags Type St Inode Path
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length >= 8 && f[7] == path && int.TryParse(f[3], System.Globalization.NumberStyles.HexNumber, null, out int flags) && (flags & 0x10000) != 0)
                    return true;
            }
        }
        catch (IOException) { }
        return false;
    }

    /// <summary>The guest's console output, as QEMU writes it.</summary>
    public event QemuConsoleHandler? ConsoleOutput;

    /// <summary>What QEMU wrote to stderr (its last 8 KiB), for error messages.</summary>
    public string ErrorOutput { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The arguments ActorStep adds to the caller's.</summary>
    public static IReadOnlyList<string> AddedArguments(IReadOnlyList<string> args, string gdbSocket, string? qmpSocket = null)
    {
        bool Has(params string[] options) => args.Any(a => options.Contains(a.StartsWith("--", StringComparison.Ordinal) ? a[1..] : a));
        var added = new List<string> { "-S", "-gdb", $"unix:{gdbSocket},server=on,wait=off" };
        if (qmpSocket is not null) added.AddRange(["-qmp", $"unix:{qmpSocket},server=on,wait=off"]);
        if (!Has("-no-shutdown")) added.Add("-no-shutdown");
        if (!Has("-display", "-nographic", "-vnc")) added.AddRange(["-display", "none"]);
        if (!Has("-monitor", "-nographic", "-mon", "-qmp")) added.AddRange(["-monitor", "none"]);
        if (!Has("-serial", "-nographic")) added.AddRange(["-chardev", "stdio,id=actorstep-console,signal=off", "-serial", "chardev:actorstep-console"]);
        return added;
    }

    /// <summary>Starts QEMU; throws <see cref="InvalidOperationException"/> with QEMU's own words when it cannot start.</summary>
    public static QemuProcess Start(IReadOnlyList<string> args, string binary = DefaultBinary)
    {
        foreach (var a in args)
            if (a is "-gdb" or "-s" || a.StartsWith("-gdb", StringComparison.Ordinal))
                throw new ArgumentException("the QEMU arguments must not open a gdbstub (-gdb, -s): ActorStep opens its own, on a private socket");
        string dir = Directory.CreateTempSubdirectory("actorstep-qemu-").FullName;
        string sock = Path.Combine(dir, "gdb.sock");
        string? qmp = HasQmp(args) ? null : Path.Combine(dir, "qmp.sock");
        // QEMU dies with this process, however it ends (SIGKILL included): setpriv (util-linux) sets PR_SET_PDEATHSIG=SIGKILL
        // and execs QEMU (same pid). The signal follows the *thread* that forked, so every launch forks from one thread that
        // lives as long as the process.
        string? setpriv = Setpriv.Value;
        var psi = new ProcessStartInfo(setpriv ?? binary)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (setpriv is not null)
        {
            if (OnPath(binary) is null)
            {
                Directory.Delete(dir, true);
                throw new InvalidOperationException($"cannot start {binary}: not found (is QEMU installed? scripts/setup installs it)");
            }
            foreach (var a in new[] { "--pdeathsig", "KILL", "--", binary }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var a in AddedArguments(args, sock, qmp)) psi.ArgumentList.Add(a);
        Process p;
        try { p = Launcher.Start(psi) ?? throw new InvalidOperationException($"cannot start {binary}"); }
        catch (System.ComponentModel.Win32Exception e)
        {
            Directory.Delete(dir, true);
            throw new InvalidOperationException($"cannot start {binary}: {e.Message} (is QEMU installed? scripts/setup installs it)", e);
        }
        int k = args.ToList().FindIndex(a => a is "-kernel" or "--kernel");
        var q = new QemuProcess(p, dir, sock, qmp, k >= 0 && k + 1 < args.Count ? args[k + 1] : null);
        _ = Task.Run(q.PumpConsole);
        _ = Task.Run(q.PumpErrors);
        return q;
    }

    private static readonly Lazy<string?> Setpriv = new(() => OnPath("setpriv"));

    /// <summary>Where <paramref name="file"/> is: itself when it names a path, else the first match on PATH; null when nowhere.</summary>
    public static string? OnPath(string file)
    {
        if (file.Contains('/')) return File.Exists(file) ? file : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, file))) return Path.Combine(dir, file);
        return null;
    }

    /// <summary>The one thread every QEMU is forked from: it never ends, so a child's parent-death signal fires only when
    /// this process ends.</summary>
    private static class Launcher
    {
        private static readonly System.Collections.Concurrent.BlockingCollection<Action> Work = [];

        static Launcher()
        {
            new Thread(() => { foreach (var launch in Work.GetConsumingEnumerable()) launch(); }) { IsBackground = true, Name = "qemu-launcher" }.Start();
        }

        public static Process? Start(ProcessStartInfo psi)
        {
            var started = new TaskCompletionSource<Process?>(TaskCreationOptions.RunContinuationsAsynchronously);
            Work.Add(() =>
            {
                try { started.SetResult(Process.Start(psi)); }
                catch (Exception e) { started.SetException(e); }
            });
            return started.Task.GetAwaiter().GetResult();
        }
    }

    private async Task PumpConsole()
    {
        var buffer = new byte[4096];
        var stream = _process.StandardOutput.BaseStream;
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0) ConsoleOutput?.Invoke(buffer.AsSpan(0, n));
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    private async Task PumpErrors()
    {
        try
        {
            string? line;
            while ((line = await _process.StandardError.ReadLineAsync()) is not null)
                lock (_stderr)
                {
                    _stderr.AppendLine(line);
                    if (_stderr.Length > 8192) _stderr.Remove(0, _stderr.Length - 8192);
                }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    /// <summary>How QEMU ended, once disposed: 0 when it quit (QMP <c>quit</c>), 137 when it had to be killed.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>Waits up to <paramref name="timeout"/> for QEMU to exit by itself.</summary>
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (Qmp is { } qmp && !_process.HasExited)
            {
                // QEMU's own way out: it flushes and closes its images (a SIGKILL may lose what a writeback cache holds).
                try { qmp.Execute("quit"); }
                catch (QemuLostException) { }
                catch (QmpErrorException) { }
                _process.WaitForExit(5000);
            }
            Qmp?.Dispose();
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
            if (_process.HasExited) ExitCode = _process.ExitCode;
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
