using System.Net;
using System.Net.Sockets;
using ActorStep.Api.V1;
using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Host.Gdb;

/// <summary>A bridge that could not start (no such VM, server unreachable, port in use); the message says why.</summary>
public sealed class GdbBridgeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Serves the GDB Remote Serial Protocol for one VM on one loopback TCP port, each vcpu a gdb thread, and talks to the
/// ActorStep server only through its gRPC API (<see cref="GrpcGdbTarget"/>): over the network, so it can run next to gdb
/// against any node (<c>actorstep gdb --server …</c>), or in the server's own process (<c>actorstep serve --gdb</c>,
/// <see cref="InProcessCallInvoker"/>: the same calls without HTTP/2, so a step costs what the engine's step costs).
/// <para><b>One gdb at a time.</b> While a gdb is attached, a second connection is refused: its first packet is
/// answered <c>E.another gdb is attached …</c> (gdb prints it as "Remote failure reply") and the connection is closed.
/// The VM is untouched by the refused client. When the attached gdb leaves (detach, kill, or a vanished connection)
/// the next one is served; a vanished gdb's cleanup (halt, remove its breakpoints) runs first.</para>
/// </summary>
public sealed class GdbBridge : IAsyncDisposable
{
    /// <summary>How long a new client waits for the previous session's cleanup before it is refused.</summary>
    private static readonly TimeSpan HandOver = TimeSpan.FromSeconds(2);

    private readonly TcpListener _listener;
    private readonly CallInvoker _calls;
    private readonly IDisposable? _owned;
    private readonly bool _littleEndian;
    /// <summary>The VM's vcpus run independently (not <c>Capabilities.all_stop</c>): gdb's non-stop mode is offered.</summary>
    private readonly bool _nonStop;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _refusals = [];
    private Task _active = Task.CompletedTask;
    private int _sessions;

    private GdbBridge(TcpListener listener, CallInvoker calls, IDisposable? owned, Vm vm, ILogger log)
    {
        _listener = listener;
        _calls = calls;
        _owned = owned;
        VmId = vm.VmId;
        _littleEndian = vm.ImageLittleEndian;
        _nonStop = vm.Capabilities is not { AllStop: true };
        _log = log;
        Endpoint = (IPEndPoint)listener.LocalEndpoint;
        _accepting = AcceptLoopAsync();
    }

    /// <summary>The bound endpoint (the real port when port 0 was asked for).</summary>
    public IPEndPoint Endpoint { get; }

    public string VmId { get; }

    /// <summary>gdb sessions served so far (refused clients not counted).</summary>
    public int Sessions => Volatile.Read(ref _sessions);

    /// <summary>What to type in gdb to connect.</summary>
    public string ConnectHint =>
        $"gdb-multiarch -ex 'set architecture powerpc:common64' -ex 'target remote {Endpoint.Address}:{Endpoint.Port}'";

    /// <summary>Starts a bridge for <paramref name="vmId"/> on the server at <paramref name="server"/>.</summary>
    public static Task<GdbBridge> StartAsync(Uri server, Access.ApiToken? token, string vmId, IPEndPoint listen, ILogger logger, CancellationToken ct = default)
    {
        var channel = Access.ApiChannel.Create(server, token);
        return StartAsync(channel.CreateCallInvoker(), channel.Target, channel, vmId, listen, logger, ct);
    }

    /// <summary>As the other overload, over a channel the caller owns (and disposes after the bridge).</summary>
    public static Task<GdbBridge> StartAsync(GrpcChannel channel, string vmId, IPEndPoint listen, ILogger logger, CancellationToken ct = default) =>
        StartAsync(channel.CreateCallInvoker(), channel.Target, owned: null, vmId, listen, logger, ct);

    /// <summary>A bridge inside the server at <paramref name="server"/> itself: the calls that name its VM go straight to the
    /// server's <see cref="Fleet.VmRouter"/>; any other goes over gRPC to <paramref name="server"/>.</summary>
    public static Task<GdbBridge> StartInProcessAsync(Fleet.VmRouter router, Uri server, Access.ApiToken? token, string vmId, IPEndPoint listen,
        ILogger logger, CancellationToken ct = default)
    {
        var channel = Access.ApiChannel.Create(server, token);
        return StartAsync(new InProcessCallInvoker(router, channel.CreateCallInvoker()), "this server", channel, vmId, listen, logger, ct);
    }

    private static async Task<GdbBridge> StartAsync(CallInvoker calls, string serverName, IDisposable? owned, string vmId, IPEndPoint listen,
        ILogger logger, CancellationToken ct)
    {
        try
        {
            // gdb's protocol has no authentication: anyone who reaches the port owns the VM.
            if (!IPAddress.IsLoopback(listen.Address))
                throw new GdbBridgeException($"the gdb bridge listens on loopback only (127.0.0.1 or [::1]), not {listen.Address}: " +
                                             "reach it from another machine through an SSH tunnel");
            Vm vm;
            try
            {
                vm = await new Vms.VmsClient(calls).GetVmAsync(new GetVmRequest { VmId = vmId },
                    deadline: DateTime.UtcNow.AddSeconds(15), cancellationToken: ct);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                throw new GdbBridgeException($"the server at {serverName} has no VM '{vmId}'", e);
            }
            catch (RpcException e)
            {
                throw new GdbBridgeException($"cannot reach the ActorStep server at {serverName}: {e.StatusCode} {e.Status.Detail}", e);
            }

            var listener = new TcpListener(listen);
            try
            {
                listener.Start();
            }
            catch (SocketException e)
            {
                throw new GdbBridgeException($"cannot listen on {listen}: {e.Message}", e);
            }
            logger.LogInformation("gdb bridge for VM {VmId} on {Endpoint} ({Order} image)", vm.VmId, listener.LocalEndpoint,
                vm.ImageLittleEndian ? "little-endian" : "big-endian");
            return new GdbBridge(listener, calls, owned, vm, logger);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                break;
            }
            client.NoDelay = true; // each packet is one write; do not let Nagle hold a stop reply back
            if (!_active.IsCompleted) await Task.WhenAny(_active, Task.Delay(HandOver, _stop.Token).ContinueWith(_ => { }));
            if (_active.IsCompleted)
            {
                Interlocked.Increment(ref _sessions);
                _active = ServeAsync(client);
            }
            else
            {
                lock (_refusals)
                {
                    _refusals.RemoveAll(t => t.IsCompleted);
                    _refusals.Add(RefuseAsync(client));
                }
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var peer = client.Client.RemoteEndPoint;
        _log.LogInformation("gdb attached from {Peer} to VM {VmId}", peer, VmId);
        using var target = new GrpcGdbTarget(_calls, VmId, _nonStop);
        var session = new GdbSession(target, _littleEndian);
        try
        {
            await new GdbConnection(client.GetStream(), session).RunAsync(_stop.Token);
        }
        catch (Exception e)
        {
            if (e is not OperationCanceledException) _log.LogWarning(e, "gdb session for VM {VmId} failed", VmId);
            // The bridge is stopping or the session broke: the same cleanup as a vanished gdb.
            using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try { await session.ConnectionLostAsync(cleanup.Token); } catch (OperationCanceledException) { }
        }
        finally
        {
            client.Dispose();
            _log.LogInformation("gdb from {Peer} left VM {VmId}", peer, VmId);
        }
    }

    /// <summary>The sharing rule: the second gdb's first packet gets an error that names the reason, then the
    /// connection closes. Nothing reaches the VM.</summary>
    private async Task RefuseAsync(TcpClient client)
    {
        using (client)
        {
            _log.LogWarning("refused a second gdb from {Peer}: another gdb is attached to VM {VmId}", client.Client.RemoteEndPoint, VmId);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                var stream = client.GetStream();
                var channel = new RspChannel();
                var buffer = new byte[4096];
                bool answered = false;
                while (!answered)
                {
                    int n = await stream.ReadAsync(buffer, timeout.Token);
                    if (n == 0) return;
                    foreach (var input in channel.Receive(buffer.AsSpan(0, n)))
                    {
                        if (input is RspInput.Interrupt) continue;
                        channel.Send(RspEncoding.Latin1($"E.another gdb is attached to VM {VmId} through this port; detach it first (one gdb per VM)"));
                        answered = true;
                        break;
                    }
                    var output = channel.TakeOutput();
                    if (output.Length > 0) await stream.WriteAsync(output, timeout.Token);
                }
                client.Client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // A refused client that misbehaves is simply dropped.
            }
        }
    }

    /// <summary>Stops listening; an attached gdb is cleaned up as if it vanished (VM halted, its breakpoints removed).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        Task[] refusals;
        lock (_refusals) refusals = [.. _refusals];
        try { await Task.WhenAll(refusals.Append(_active)).WaitAsync(TimeSpan.FromSeconds(20)); } catch (TimeoutException) { }
        _owned?.Dispose();
        _stop.Dispose();
    }
}
