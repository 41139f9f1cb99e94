using ActorStep.Machine;
using System.Net;
using ActorStep.Actors.Node;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Akka.Actor;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Tests.Grpc;

/// <summary>A real server (Kestrel on a free loopback port) in this process, and clients for it.</summary>
public sealed class GrpcServerFixture : IAsyncLifetime
{
    private RunningServer? _server;
    private int _vms;

    public RunningServer Server => _server ?? throw new InvalidOperationException("not started");
    public GrpcChannel Channel { get; private set; } = null!;

    public Vms.VmsClient Vms => new(Channel);
    public RunControl.RunControlClient Run => new(Channel);
    public Api.V1.Registers.RegistersClient Registers => new(Channel);
    public Api.V1.Memory.MemoryClient Memory => new(Channel);
    public Breakpoints.BreakpointsClient Breakpoints => new(Channel);
    public Events.EventsClient Events => new(Channel);

    /// <summary>Every call of a test gets a deadline, so that a hang fails the test instead of the run.</summary>
    public static DateTime Deadline => DateTime.UtcNow.AddSeconds(15);

    public static ServerOptions Options(int eventBuffer = 1024) => new()
    {
        Grpc = new IPEndPoint(IPAddress.Loopback, 0),
        CreateInitialVm = true,
        HandleSignals = false, RequireToken = false,
        LogLevel = Serilog.Events.LogEventLevel.Warning,
        EventBufferCapacity = eventBuffer,
        // The tests' guests are built in the temporary directory; /dev is served only so that the device tests reach the
        // bounded read that refuses a device (a server serves /dev only if its operator says so); the Linux assets' cache
        // for the kernel VM tests.
        ImageDirectories = [Path.GetTempPath(), "/dev", Support.LinuxAssets.CacheDirectory],
    };

    public async Task InitializeAsync()
    {
        _server = await ServerHost.StartAsync(Options());
        Channel = GrpcChannel.ForAddress(_server.Address);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>A fresh demo VM for one test (4 vcpus, 16 MiB, halted at its entry).</summary>
    public Vm NewDemoVm(uint vcpus = 4, string guest = "demo") =>
        Vms.CreateVm(new CreateVmRequest { BuiltIn = guest, Vcpus = vcpus, MemorySize = 16 << 20, VmId = $"t{Interlocked.Increment(ref _vms)}-{guest}" },
            deadline: Deadline);

    /// <summary>The VM's machine, for checks the API must not be able to make (raw guest memory).</summary>
    public VmInfo Info(string vmId) =>
        Server.Manager.Ask<VmManagerProtocol.VmList>(new VmManagerProtocol.ListVms(new Dictionary<string, string>()), TimeSpan.FromSeconds(5))
            .Result.Vms.Single(v => v.VmId == vmId);

    /// <summary>
    /// A channel whose every call carries <c>grpc-timeout: <paramref name="timeout"/></c> (e.g. "300m", "1u") while the client
    /// library has no deadline: only the server can end a call by it (the library enforces its own deadlines itself).
    /// </summary>
    public GrpcChannel ChannelWithWireDeadline(string timeout) => GrpcChannel.ForAddress(Server.Address, new GrpcChannelOptions
    {
        HttpHandler = new WireDeadline(timeout) { InnerHandler = new SocketsHttpHandler() },
    });

    private sealed class WireDeadline(string timeout) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove("grpc-timeout");
            request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
            return base.SendAsync(request, cancellationToken);
        }
    }

    public static RpcException Fails(StatusCode code, Action call)
    {
        var e = Assert.Throws<RpcException>(call);
        Assert.True(e.StatusCode == code, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        // A deadline is enforced by the client too, which reports it without a detail.
        if (code != StatusCode.DeadlineExceeded) Assert.False(string.IsNullOrWhiteSpace(e.Status.Detail), $"{code} without a message");
        return e;
    }

    /// <summary>Number of aligned debug-instruction words in the VM's raw memory (what breakpoints leave behind).</summary>
    public static int BreakpointWords(VmInfo vm)
    {
        // A destroyed VM's RAM is back with the OS: what its guest was left with is what the machine still had planted.
        if (vm.Machine is SimulatedMachine { Memory.IsReleased: true } released) return released.PlantedBreakpoints;
        var mem = new byte[vm.MemorySize];
        vm.Machine.ReadMemory(0, mem);
        uint word = vm.Machine.Capabilities.DebugInstruction;
        int n = 0;
        for (int i = 0; i + 4 <= mem.Length; i += 4)
        {
            uint le = BitConverter.ToUInt32(mem, i), be = (uint)(mem[i] << 24 | mem[i + 1] << 16 | mem[i + 2] << 8 | mem[i + 3]);
            if (le == word || be == word) n++;
        }
        return n;
    }
}
