using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Host.Server;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Access;

/// <summary>The per-server secret: required by default, wrong or missing refused, health open, <c>--no-auth</c> without it.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ApiTokenTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorstep-token-").FullName;
    private RunningServer _server = null!;

    private string TokenFile => Path.Combine(_dir, "run", "api.token");

    public async Task InitializeAsync() =>
        _server = await ServerHost.StartAsync(Options() with { RequireToken = true, TokenFile = TokenFile });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Vms.VmsClient VmsWith(string? header, out GrpcChannel channel)
    {
        channel = header is null ? GrpcChannel.ForAddress(_server.Address) : ChannelWithHeader(_server.Address, header);
        return new Vms.VmsClient(channel);
    }

    [Fact]
    public void The_token_is_written_to_the_token_file_readable_by_its_owner_only()
    {
        Assert.Equal(_server.Token!.Value, File.ReadAllText(TokenFile).Trim());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(TokenFile));
        // The directory it made for it is its owner's alone too.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(TokenFile)!));
        Assert.True(_server.Token.Value.Length >= 40, "256 random bits");
    }

    [Fact]
    public void A_call_without_the_token_is_unauthenticated_and_does_nothing()
    {
        var vms = VmsWith(null, out var channel);
        using (channel)
        {
            var e = Fails(StatusCode.Unauthenticated, () => vms.DeleteVm(new DeleteVmRequest { VmId = _server.InitialVm!.VmId }, deadline: Deadline));
            Assert.Contains("authorization: Bearer", e.Status.Detail);
            Assert.DoesNotContain(TokenFile, e.Status.Detail);
        }
        // The server's VM is still there, for a client that has the token.
        var mine = VmsWith(_server.Token!.HeaderValue, out var ok);
        using (ok) Assert.Equal(_server.InitialVm!.VmId, mine.GetVm(new GetVmRequest { VmId = _server.InitialVm.VmId }, deadline: Deadline).VmId);
    }

    [Theory]
    [InlineData("Bearer not-the-token")]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Bearer ")]
    public void A_call_with_a_wrong_token_is_unauthenticated(string header)
    {
        var vms = VmsWith(header, out var channel);
        using (channel) Fails(StatusCode.Unauthenticated, () => vms.ListVms(new ListVmsRequest(), deadline: Deadline));
    }

    [Fact]
    public void A_token_that_differs_in_its_last_character_is_refused()
    {
        string t = _server.Token!.Value;
        var vms = VmsWith($"Bearer {t[..^1]}{(t[^1] == 'A' ? 'B' : 'A')}", out var channel);
        using (channel) Fails(StatusCode.Unauthenticated, () => vms.ListVms(new ListVmsRequest(), deadline: Deadline));
    }

    [Fact]
    public async Task Every_service_but_health_needs_the_token_and_a_client_with_it_is_served()
    {
        using var bare = GrpcChannel.ForAddress(_server.Address);
        var health = await new Health.HealthClient(bare).CheckAsync(new HealthCheckRequest(), deadline: Deadline);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        var vm = _server.InitialVm!.VmId;
        var refused = new Func<Task>[]
        {
            () => new RunControl.RunControlClient(bare).StepAsync(new StepRequest { VmId = vm }, deadline: Deadline).ResponseAsync,
            () => new Registers.RegistersClient(bare).GetVcpuRegistersAsync(new GetVcpuRegistersRequest { VmId = vm }, deadline: Deadline).ResponseAsync,
            () => new Memory.MemoryClient(bare).ReadMemoryAsync(new ReadMemoryRequest { VmId = vm, Address = 0, Length = 4 }, deadline: Deadline).ResponseAsync,
            () => new Breakpoints.BreakpointsClient(bare).InsertBreakpointAsync(new BreakpointRequest { VmId = vm, Address = 0x100 }, deadline: Deadline).ResponseAsync,
            () => new Api.V1.Fleet.FleetClient(bare).GetClusterStatusAsync(new GetClusterStatusRequest(), deadline: Deadline).ResponseAsync,
            async () =>
            {
                using var events = new Events.EventsClient(bare).StreamEvents(new StreamEventsRequest { VmId = vm }, deadline: Deadline);
                await events.ResponseStream.MoveNext();
            },
        };
        foreach (var call in refused)
        {
            var e = await Assert.ThrowsAsync<RpcException>(call);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        }

        using var mine = ApiChannel.Create(_server.Address, _server.Token);
        var step = await new RunControl.RunControlClient(mine).StepAsync(new StepRequest { VmId = vm, Vcpu = 0 }, deadline: Deadline);
        Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
    }

    [Fact]
    public async Task The_token_file_goes_with_the_server_and_a_server_without_a_token_answers_anyone()
    {
        string file = Path.Combine(_dir, "second.token");
        var second = await ServerHost.StartAsync(Options() with { RequireToken = true, TokenFile = file });
        Assert.True(File.Exists(file));
        await second.DisposeAsync();
        Assert.False(File.Exists(file), "the token file outlived its server");

        await using var open = await ServerHost.StartAsync(Options() with { TokenFile = Path.Combine(_dir, "never.token") });
        Assert.Null(open.Token);
        Assert.False(File.Exists(Path.Combine(_dir, "never.token")));
        using var bare = GrpcChannel.ForAddress(open.Address);
        Assert.Contains(new Vms.VmsClient(bare).ListVms(new ListVmsRequest(), deadline: Deadline).Vms, v => v.VmId == open.InitialVm!.VmId);
    }

    private static GrpcChannel ChannelWithHeader(Uri address, string header) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        HttpHandler = new Header(header) { InnerHandler = new SocketsHttpHandler() },
    });

    private sealed class Header(string value) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("authorization", value);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
