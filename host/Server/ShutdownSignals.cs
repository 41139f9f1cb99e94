using System.Runtime.InteropServices;

namespace ActorStep.Host.Server;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as a cancellation, from the moment this is created — also while the server is still starting,
/// which the console lifetime of Microsoft.Extensions.Hosting does not cover. The first signal asks for a clean stop (its default
/// action, ending the process at once, is cancelled); a second one is left to that default, for a stop that hangs.
/// </summary>
public sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _requested = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public ShutdownSignals()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    private static ShutdownSignals? _early;

    /// <summary>Registers the handlers at the process's first line (for <c>serve</c>: Program.cs), so that a signal while the rest of
    /// the program loads, parses its arguments and builds the server is a clean stop too; the server's start takes them over
    /// (<see cref="TakeEarly"/>).</summary>
    public static void InstallEarly() => _early ??= new ShutdownSignals();

    /// <summary>The handlers <see cref="InstallEarly"/> registered, once; null when none were.</summary>
    public static ShutdownSignals? TakeEarly() => Interlocked.Exchange(ref _early, null);

    /// <summary>Cancelled at the first signal.</summary>
    public CancellationToken Requested => _requested.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _received, 1) == 1) return;
        context.Cancel = true;
        // The stop runs off the signal thread: its callbacks may block (a host's StopApplication runs them all in turn).
        ThreadPool.UnsafeQueueUserWorkItem(static cts => cts.Cancel(), _requested, preferLocal: false);
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
