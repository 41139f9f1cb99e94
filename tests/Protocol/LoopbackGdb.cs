using System.Net;
using System.Net.Sockets;
using ActorStep.Protocol.Gdb;

namespace ActorStep.Tests.Protocol;

/// <summary>
/// A <see cref="GdbConnection"/> pumping over a real loopback socket, and the socket's other end as gdb holds it
/// (<see cref="Stream"/>); disposing closes gdb's end and waits for the pump to end.
/// </summary>
internal sealed class LoopbackGdb : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient _gdb;

    private LoopbackGdb(TcpClient gdb, GdbConnection connection, Task pump)
    {
        _gdb = gdb;
        Connection = connection;
        Pump = pump;
        Stream = gdb.GetStream();
    }

    /// <summary>gdb's end of the socket.</summary>
    public NetworkStream Stream { get; }

    public GdbConnection Connection { get; }

    /// <summary>The connection's pump: ends when the session ends (detach, EOF, cancellation).</summary>
    public Task Pump { get; }

    /// <summary>gdb's end stops sending (EOF for the pump), as a gdb that is killed.</summary>
    public void ShutdownSend() => _gdb.Client.Shutdown(SocketShutdown.Send);

    /// <summary>Serves <paramref name="target"/> (big-endian registers) until gdb's end closes or <paramref name="cancellation"/>.</summary>
    public static async Task<LoopbackGdb> StartAsync(IGdbTarget target, CancellationToken cancellation)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var gdb = new TcpClient { NoDelay = true };
        var connect = gdb.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await listener.AcceptTcpClientAsync(cancellation);
        listener.Stop();
        await connect;
        server.NoDelay = true;
        var connection = new GdbConnection(server.GetStream(), new GdbSession(target, littleEndianTarget: false));
        var pump = Task.Run(async () => { try { await connection.RunAsync(cancellation); } finally { server.Dispose(); } });
        return new LoopbackGdb(gdb, connection, pump);
    }

    public async ValueTask DisposeAsync()
    {
        _gdb.Dispose();
        await Pump.WaitAsync(Timeout);
    }
}
