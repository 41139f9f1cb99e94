using System.Net;
using ActorStep.Host.Server;

namespace ActorStep.Tests.Qemu;

/// <summary>The server the QEMU API tests share the shape of: in this process, on a free loopback port, no token, and clients may
/// start a QEMU through CreateVm (<see cref="ServerOptions.ClientsMayLaunchQemu"/>).</summary>
public static class QemuLaunchingServer
{
    public static Task<RunningServer> StartAsync() => ServerHost.StartAsync(new ServerOptions
    {
        Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false, ClientsMayLaunchQemu = true,
        LogLevel = Serilog.Events.LogEventLevel.Warning,
    });
}
