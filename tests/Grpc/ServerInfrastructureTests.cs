using ActorStep.Api.V1;
using ActorStep.Host.Cli;
using ActorStep.Host.Server;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>Reflection, health, loopback-only endpoints and a clean shutdown.</summary>
public class ServerInfrastructureTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    [Fact]
    public async Task Reflection_lists_every_actorstep_service_and_health()
    {
        var client = new ServerReflection.ServerReflectionClient(server.Channel);
        using var call = client.ServerReflectionInfo(deadline: Deadline);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext());
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        await call.RequestStream.CompleteAsync();

        foreach (var s in new[] { "Vms", "RunControl", "Registers", "Memory", "Breakpoints", "Events" })
            Assert.Contains($"actorstep.v1.{s}", names);
        Assert.Contains("grpc.health.v1.Health", names);
    }

    [Fact]
    public async Task Health_check_says_serving()
    {
        var health = new Health.HealthClient(server.Channel);
        var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: Deadline);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Theory]
    [InlineData("0.0.0.0:50051")]
    [InlineData("192.168.1.2:50051")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:70000")]
    public void Serve_refuses_an_endpoint_that_is_not_loopback_host_and_port(string text)
    {
        var e = Assert.Throws<UsageException>(() => ServeCommand.Endpoint("--grpc", text));
        Assert.Contains("--grpc", e.Message);
    }

    [Fact]
    public async Task Shutdown_removes_every_breakpoint_and_ends_every_stream_with_a_status()
    {
        var own = await ServerHost.StartAsync(Options());
        using var channel = GrpcChannel.ForAddress(own.Address);
        var vmId = own.InitialVm!.VmId;
        var info = own.InitialVm;
        await new Breakpoints.BreakpointsClient(channel).InsertBreakpointAsync(new BreakpointRequest { VmId = vmId, Address = 0x100000 }, deadline: Deadline);
        await new Breakpoints.BreakpointsClient(channel).InsertBreakpointAsync(new BreakpointRequest { VmId = vmId, Address = 0x100004 }, deadline: Deadline);
        using var stream = new Events.EventsClient(channel).StreamEvents(new StreamEventsRequest { VmId = vmId }, deadline: Deadline);
        Assert.True(await stream.ResponseStream.MoveNext());
        using var running = new RunControl.RunControlClient(channel).ContinueAsync(new ContinueRequest { VmId = vmId, Vcpu = 1, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline);
        Assert.Equal(2, BreakpointWords(info));

        await own.DisposeAsync();

        Assert.Equal(0, BreakpointWords(info));
        var streamEnd = await Assert.ThrowsAsync<RpcException>(async () => { while (await stream.ResponseStream.MoveNext()) { } });
        Assert.Equal(StatusCode.Unavailable, streamEnd.StatusCode);
        var continueEnd = await Assert.ThrowsAsync<RpcException>(() => running.ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, continueEnd.StatusCode);
    }
}
