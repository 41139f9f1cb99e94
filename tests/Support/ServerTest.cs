using ActorStep.Host.Server;
using Grpc.Net.Client;

namespace ActorStep.Tests.Support;

/// <summary>
/// A test class with a server of its own (started by <paramref name="start"/> before each test, real Kestrel on loopback) and
/// a channel to it, both gone after the test.
/// </summary>
public abstract class ServerTest(Func<Task<RunningServer>> start) : IAsyncLifetime
{
    protected RunningServer Server { get; private set; } = null!;
    protected GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await start();
        Channel = GrpcChannel.ForAddress(Server.Address);
    }

    public virtual async Task DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}
