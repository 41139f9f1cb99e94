using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Host.Server;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Metrics;

/// <summary><c>serve --metrics</c>: the Prometheus endpoint scraped over HTTP after a few known calls, numbers checked against them.</summary>
[Collection(MetricsCollection.Name)]
public sealed partial class MetricsEndpointTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorstep-metrics-").FullName;
    private RunningServer _server = null!;

    public async Task InitializeAsync() => _server = await ServerHost.StartAsync(Options() with
    {
        RequireToken = true, TokenFile = Path.Combine(_dir, "api.token"), Metrics = new IPEndPoint(IPAddress.Loopback, 0),
    });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_scrape_counts_the_steps_resumes_vms_vcpus_breakpoints_and_grpc_calls_that_happened()
    {
        using var channel = ApiChannel.Create(_server.Address, _server.Token);
        var vms = new Vms.VmsClient(channel);
        var run = new RunControl.RunControlClient(channel);
        var vm = await vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 2, MemorySize = 16 << 20 }, deadline: Deadline);
        // 5 steps of one instruction and 1 of three: 6 step resumes, 8 instructions — as the replies count them (vcpu 1 may still
        // be ceded in the demo's start-up, and a step of a ceded vcpu can end sooner).
        var replies = new List<RunResponse>();
        for (int i = 0; i < 5; i++) replies.Add(await run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 0 }, deadline: Deadline));
        replies.Add(await run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 1, StepCount = 3 }, deadline: Deadline));
        int completed = replies.Count(r => r.Event.Reason == StopReason.StepCompleted);
        Assert.True(completed >= 5, $"only {completed} of the 6 steps completed");
        var bp = new Breakpoints.BreakpointsClient(channel);
        await bp.InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 0x40 }, deadline: Deadline);
        await bp.InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 0x80 }, deadline: Deadline);

        using var http = new HttpClient();
        var refused = await http.GetAsync(_server.MetricsAddress);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var request = new HttpRequestMessage(HttpMethod.Get, _server.MetricsAddress);
        request.Headers.TryAddWithoutValidation("Authorization", _server.Token!.HeaderValue);
        var scrape = await http.SendAsync(request);
        string text = await scrape.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);

        Assert.Equal(replies.Sum(r => (long)r.Event.Steps), Value(text, "actorstep_steps_total"));
        Assert.Equal(completed, Value(text, "actorstep_resumes_total", "kind=\"step\"", "reason=\"step_completed\""));
        Assert.Equal(6, Value(text, "actorstep_resumes_total", "kind=\"step\""));
        Assert.Equal(6, Value(text, "actorstep_resume_duration_seconds_count", "kind=\"step\""));
        // The server's own VM (4 vcpus) and this one (2): all stopped, none running.
        Assert.Equal(2, Value(text, "actorstep_vms", "state=\"stopped\""));
        Assert.Equal(0, Value(text, "actorstep_vms", "state=\"running\""));
        Assert.Equal(6, Value(text, "actorstep_vcpus", "state=\"stopped\""));
        Assert.Equal(2, Value(text, "actorstep_breakpoints"));
        Assert.Equal(0, Value(text, "actorstep_events_dropped_total", orAbsent: true));
        // gRPC calls through ASP.NET Core's instrumentation: the six steps by their route.
        Assert.Equal(6, Value(text, "http_server_request_duration_seconds_count", "http_route=\"/actorstep.v1.RunControl/Step\""));
    }

    [Fact]
    public async Task Deleting_a_vm_takes_it_out_of_the_gauges_and_another_path_is_not_found()
    {
        using var channel = ApiChannel.Create(_server.Address, _server.Token);
        var vms = new Vms.VmsClient(channel);
        var vm = await vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline);
        Assert.Equal(2, Value(await ScrapeAsync(), "actorstep_vms", "state=\"stopped\""));
        await vms.DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId }, deadline: Deadline);
        Assert.Equal(1, Value(await ScrapeAsync(), "actorstep_vms", "state=\"stopped\""));

        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri(_server.MetricsAddress!, "/other"))).StatusCode);
    }

    private async Task<string> ScrapeAsync()
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", _server.Token!.HeaderValue);
        return await http.GetStringAsync(_server.MetricsAddress);
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Value(string text, string name, params string[] labels) => Value(text, name, orAbsent: false, labels);

    private static double Value(string text, string name, bool orAbsent, params string[] labels)
    {
        var samples = Sample().Matches(text).Where(m => m.Groups["name"].Value == name && labels.All(l => m.Groups["labels"].Value.Contains(l))).ToList();
        if (samples.Count == 0)
            return orAbsent ? 0 : throw new Xunit.Sdk.XunitException($"no sample {name}{{{string.Join(",", labels)}}} in the scrape");
        return samples.Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// The metrics tests run alone: OpenTelemetry subscribes to meters by name, so a server's exporter also counts what every other
/// server in the same process records under the meter <c>ActorStep</c> (one server per process in use; many in the test run,
/// where another test's steps made the scraped step count too high once).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsCollection
{
    public const string Name = "serve --metrics, alone";
}
