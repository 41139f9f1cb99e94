using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ActorStep.Tests.Support;

/// <summary>How to start a <see cref="LinuxGuest"/>.</summary>
public sealed record LinuxGuestOptions
{
    public int Vcpus { get; init; } = 1;
    public int MemoryMiB { get; init; } = 1024;

    /// <summary>
    /// QEMU's determinism options (<see cref="LinuxGuest.DeterminismArguments"/>): instruction counting instead of the host
    /// clock, a fixed RTC, a fixed random seed. Two such boots print the same console output, timestamps included.
    /// </summary>
    public bool Deterministic { get; init; }

    /// <summary>Starts QEMU stopped (<c>-S</c>) with its gdbstub on a Unix socket (<see cref="LinuxGuest.GdbSocket"/>).</summary>
    public bool GdbStub { get; init; }

    /// <summary>A QMP monitor on a Unix socket (<see cref="LinuxGuest.QmpSocket"/>).</summary>
    public bool Qmp { get; init; }

    public string KernelArguments { get; init; } = LinuxGuest.DefaultKernelArguments;

    /// <summary>The initramfs's /init (a busybox shell script).</summary>
    public string Init { get; init; } = LinuxInitramfs.DefaultInit;
}

/// <summary>
/// Debian's ppc64le kernel (<see cref="LinuxAssets"/>) booted by <c>qemu-system-ppc64</c> as a pseries TCG guest with
/// VOF (QEMU's built-in minimal firmware: ~2 s to the init line here, SLOF ~7.5 s) and an initramfs built for the run
/// (<see cref="LinuxInitramfs"/>). The console (spapr-vty, hvc0) is QEMU's stdout, collected as it arrives:
/// <see cref="Console"/>, <see cref="ConsoleOutput"/>, <see cref="WaitFor"/>. The gdbstub and QMP, when asked for, are
/// Unix sockets in a private temporary directory: nothing listens on the network. Disposing kills QEMU.
/// </summary>
public sealed class LinuxGuest : IDisposable
{
    /// <summary>
    /// The kernel's own messages are kept (the default loglevel: ~230 lines, no measurable cost next to <c>quiet</c>);
    /// <c>panic=-1</c> with QEMU's <c>-no-reboot</c> turns a panic (e.g. a failing /init) into QEMU's exit instead of a hang.
    /// </summary>
    public const string DefaultKernelArguments = "console=hvc0 panic=-1";

    /// <summary>
/// Instruction counting (virtual time advances by instructions, not the host clock; idle time is skipped), the RTC on
/// that clock from a fixed date, a fixed random seed (without it the kernel's stack canary differs): two boots are
/// identical step for step, and print the same console text (<c>LinuxBootTests</c>).
/// </summary>
    public static readonly IReadOnlyList<string> DeterminismArguments =
        ["-icount", "shift=0,sleep=off,align=off", "-rtc", "clock=vm,base=2020-01-01T00:00:00", "-seed", "1"];

    public const string Qemu = "qemu-system-ppc64";

    private readonly Process _process;
    private readonly string _dir;
    private readonly Thread _reader;
    private readonly object _lock = new();
    private readonly StringBuilder _console = new();
    private readonly StringBuilder _stderr = new();
    private readonly Stopwatch _clock;
    private bool _consoleClosed;
    private bool _disposed;

    private LinuxGuest(Process process, string dir, IReadOnlyList<string> arguments, string? gdb, string? qmp, Stopwatch clock)
    {
        _process = process;
        _dir = dir;
        Arguments = arguments;
        GdbSocket = gdb;
        QmpSocket = qmp;
        _clock = clock;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_lock) _stderr.AppendLine(e.Data);
        };
        _process.BeginErrorReadLine();
        _reader = new Thread(ReadConsole) { IsBackground = true, Name = "linux-guest-console" };
        _reader.Start();
    }

    public LinuxAssets Assets { get; private init; } = null!;

    /// <summary>QEMU's whole command line, program first (for messages and reports).</summary>
    public IReadOnlyList<string> Arguments { get; }

    public string? GdbSocket { get; }
    public string? QmpSocket { get; }

    /// <summary>Time since QEMU was started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Raised on the console reader thread with each piece of console text as it arrives.</summary>
    public event Action<string>? ConsoleOutput;

    /// <summary>The console text so far.</summary>
    public string Console
    {
        get { lock (_lock) return _console.ToString(); }
    }

    public string Stderr
    {
        get { lock (_lock) return _stderr.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    public int ProcessId => _process.Id;

    public static LinuxGuest Start(LinuxGuestOptions? options = null)
    {
        options ??= new LinuxGuestOptions();
        var assets = LinuxAssets.Get();
        string dir = Directory.CreateTempSubdirectory("actorstep-linux-").FullName;
        try
        {
            string initrd = Path.Combine(dir, "initrd.cpio");
            File.WriteAllBytes(initrd, LinuxInitramfs.Build(assets.Busybox, options.Init));
            string? gdb = options.GdbStub ? Path.Combine(dir, "gdb.sock") : null;
            string? qmp = options.Qmp ? Path.Combine(dir, "qmp.sock") : null;
            var args = new List<string>
            {
                "-M", "pseries,x-vof=on", "-cpu", "power9", "-smp", $"{options.Vcpus}", "-m", $"{options.MemoryMiB}M",
                "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
                "-chardev", "stdio,id=console,signal=off", "-device", "spapr-vty,chardev=console",
                "-kernel", assets.Vmlinux, "-initrd", initrd, "-append", options.KernelArguments,
            };
            if (options.Deterministic) args.AddRange(DeterminismArguments);
            if (gdb is not null) args.AddRange(["-S", "-gdb", $"unix:{gdb},server=on,wait=off"]);
            if (qmp is not null) args.AddRange(["-qmp", $"unix:{qmp},server=on,wait=off"]);

            var psi = new ProcessStartInfo(Qemu)
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (string a in args) psi.ArgumentList.Add(a);
            var clock = Stopwatch.StartNew();
            Process process;
            try
            {
                process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {Qemu}");
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException($"cannot start {Qemu} ({e.Message}): run scripts/setup", e);
            }
            return new LinuxGuest(process, dir, [Qemu, .. args], gdb, qmp, clock) { Assets = assets };
        }
        catch
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>The command line quoted for a shell (for reports).</summary>
    public string CommandLine =>
        string.Join(' ', Arguments.Select(a => Regex.IsMatch(a, @"^[\w@%+=:,./-]+$") ? a : $"'{a.Replace("'", @"'\''")}'"));

    private void ReadConsole()
    {
        var stream = _process.StandardOutput.BaseStream;
        var decoder = Encoding.UTF8.GetDecoder();
        var bytes = new byte[4096];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
        try
        {
            int n;
            while ((n = stream.Read(bytes, 0, bytes.Length)) > 0)
            {
                int c = decoder.GetChars(bytes, 0, n, chars, 0);
                if (c == 0) continue;
                string text = new(chars, 0, c);
                lock (_lock)
                {
                    _console.Append(text);
                    Monitor.PulseAll(_lock);
                }
                ConsoleOutput?.Invoke(text);
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        finally
        {
            lock (_lock)
            {
                _consoleClosed = true;
                Monitor.PulseAll(_lock);
            }
        }
    }

    /// <summary>
    /// Waits until the console text matches <paramref name="pattern"/> (multiline: ^ and $ are line anchors) and returns
    /// the first match; fails with the console's tail if QEMU exits first or the time runs out.
    /// </summary>
    public Match WaitFor(string pattern, TimeSpan timeout)
    {
        var regex = new Regex(pattern, RegexOptions.Multiline);
        var until = DateTime.UtcNow + timeout;
        lock (_lock)
        {
            while (true)
            {
                var m = regex.Match(_console.ToString());
                if (m.Success) return m;
                if (_consoleClosed) throw Failure($"QEMU's console closed (QEMU exited) before /{pattern}/ appeared");
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) throw Failure($"/{pattern}/ did not appear on the console within {timeout.TotalSeconds:0.#} s");
                Monitor.Wait(_lock, left);
            }
        }
    }

    /// <summary>Waits for QEMU to exit by itself and for the console to be read to its end; returns the exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
            throw Failure($"QEMU did not exit within {timeout.TotalSeconds:0.#} s");
        _process.WaitForExit();   // the redirected stderr to its end
        _reader.Join(TimeSpan.FromSeconds(10));
        return _process.ExitCode;
    }

    private Xunit.Sdk.XunitException Failure(string what)
    {
        string console = Console, stderr = Stderr;
        string tail = console.Length > 3000 ? "…" + console[^3000..] : console;
        return new Xunit.Sdk.XunitException(
            $"{what} (after {Elapsed.TotalSeconds:0.0} s).\ncommand: {CommandLine}\nstderr: {stderr}\nconsole (tail):\n{tail}");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        try { _process.StandardInput.Dispose(); } catch (IOException) { }
        _reader.Join(TimeSpan.FromSeconds(5));
        _process.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
