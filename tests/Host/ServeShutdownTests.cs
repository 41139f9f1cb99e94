using System.Diagnostics;
using ActorStep.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace ActorStep.Tests.Host;

/// <summary>
/// SIGTERM to <c>actorstep serve</c>, as the README promises it: the process exits 0 within seconds, every VM is destroyed,
/// and every call and stream ends with a status from the server — also when the signal arrives while the server is starting.
/// </summary>
public class ServeShutdownTests(ITestOutputHelper log)
{
    /// <summary>Generous for a loaded CI machine; a clean shutdown takes well under a second.</summary>
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(10);

    private const string ShuttingDown = "the server is shutting down";

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(60);

    [Fact]
    public async Task Sigterm_with_16_clients_stepping_and_event_streams_open_exits_0_within_seconds_and_ends_every_call_with_a_status()
    {
        using var server = ServeCommandProcess.Start("--grpc", "127.0.0.1:0", "--vcpus", "2", "--memory", "4", "--no-auth");
        string address = await server.GrpcAddressAsync(TimeSpan.FromSeconds(60));
        using var channel = GrpcChannel.ForAddress(address);
        var vmsClient = new Vms.VmsClient(channel);

        // 16 VMs (the initial one and 15 more), each with a breakpoint planted, each stepped by its own client.
        var vms = (await vmsClient.ListVmsAsync(new ListVmsRequest(), deadline: Deadline)).Vms.ToList();
        for (int i = vms.Count; i < 16; i++)
            vms.Add(await vmsClient.CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 2, MemorySize = 4 << 20 }, deadline: Deadline));
        foreach (var vm in vms)
            await new Breakpoints.BreakpointsClient(channel).InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 0x40 }, deadline: Deadline);

        // Each client on a connection of its own, as separate programs would be: unary steps on half the VMs, ResumeStreams
        // on the other half, event streams of three VMs and of every VM.
        using var stop = new CancellationTokenSource();
        var channels = new List<GrpcChannel>();
        var unary = new List<Client>();
        var resumeStreams = new List<Client>();
        var eventStreams = new List<Client>();
        foreach (var (vm, i) in vms.Select((vm, i) => (vm, i)))
        {
            var ch = GrpcChannel.ForAddress(address);
            channels.Add(ch);
            if (i % 2 == 0) unary.Add(new Client($"unary Step on {vm.VmId}", c => UnarySteps(ch, vm.VmId, c, stop.Token)));
            else resumeStreams.Add(new Client($"ResumeStream on {vm.VmId}", c => StreamSteps(ch, vm.VmId, c, stop.Token)));
        }
        foreach (var id in new[] { vms[0].VmId, vms[1].VmId, vms[2].VmId, "" })
        {
            var ch = GrpcChannel.ForAddress(address);
            channels.Add(ch);
            eventStreams.Add(new Client($"StreamEvents of {(id.Length > 0 ? id : "every VM")}", c => Events(ch, id, c, stop.Token)));
        }
        var clients = unary.Concat(resumeStreams).Concat(eventStreams).ToList();
        try
        {
            await Until(() => clients.All(c => c.Count >= 3 || c.Run.IsCompleted), "every client has stepped or seen events", clients, server);
            Assert.All(clients, c => Assert.False(c.Run.IsCompleted, $"{c.Name} ended before the signal: {c.Describe()}"));

            server.Terminate();
            var sw = Stopwatch.StartNew();
            bool exited = await server.WaitForExitAsync(TimeSpan.FromSeconds(40));
            var took = sw.Elapsed;
            log.WriteLine($"exit {(exited ? server.ExitCode : "none")} {took.TotalSeconds:0.00} s after SIGTERM");
            Assert.True(exited, $"still running {took.TotalSeconds:0.0} s after SIGTERM:\n{server.Output}");
            Assert.True(took < ExitBound, $"exit took {took.TotalSeconds:0.0} s:\n{Summary(clients)}");
            Assert.True(server.ExitCode == 0, $"exit code {server.ExitCode}:\n{server.Output}");
            Assert.True(await Task.WhenAll(clients.Select(c => c.Run)).WaitAsync(TimeSpan.FromSeconds(20)).ContinueWith(t => t.IsCompletedSuccessfully),
                $"some client did not end:\n{Summary(clients)}");

            log.WriteLine(Summary(clients));
            // Streams end with the server's status, not an HTTP/2 reset; a unary step answers or is refused as unavailable.
            foreach (var c in resumeStreams.Concat(eventStreams))
                Assert.True(c.Status is { StatusCode: StatusCode.Unavailable, Detail: ShuttingDown }, $"{c.Name}: {c.Describe()}\n{Summary(clients)}\n{server.Output}");
            foreach (var c in unary)
                Assert.True(c.Status?.StatusCode == StatusCode.Unavailable, $"{c.Name}: {c.Describe()}\n{Summary(clients)}");
            string output = server.Output;
            foreach (var vm in vms) Assert.Contains($"VM {vm.VmId} destroyed", output);
            Assert.DoesNotContain("Unhandled exception", output);
            Assert.DoesNotContain("   at ", output);
        }
        finally
        {
            stop.Cancel();
            foreach (var ch in channels) ch.Dispose();
        }
    }

    /// <summary>How long a cluster node takes to listen on this machine, warm (the second of two starts, measured once): the
    /// signals below are spread over it.</summary>
    private static readonly Lazy<Task<TimeSpan>> ClusterStartup = new(async () =>
    {
        var took = TimeSpan.Zero;
        for (int i = 0; i < 2; i++)
        {
            var sw = Stopwatch.StartNew();
            using var node = ServeCommandProcess.Start(ClusterNode("startup"));
            await node.GrpcAddressAsync(TimeSpan.FromSeconds(60));
            took = sw.Elapsed;
            node.Terminate();
            await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }
        return took;
    });

    private static string[] ClusterNode(string name) =>
        ["--cluster", "--node-name", name, "--cluster-port", "0", "--grpc", "127.0.0.1:0", "--vcpus", "1", "--memory", "2", "--no-auth"];

    /// <summary>A cluster node sent SIGTERM while it starts ends cleanly, within seconds: exit code 0 (with a one-line note when
    /// it had not started yet) — never an abort (134) or a stack trace. Only a signal that arrives while the .NET runtime itself
    /// starts, before any of the program's code runs (the first tenth of a second or so), ends it as signals do: 143, nothing
    /// written; from a third of the way into its startup on, the program handles the signal.</summary>
    [Theory]
    [InlineData("right after the process starts")]
    [InlineData("10% into its startup")]
    [InlineData("20% into its startup")]
    [InlineData("30% into its startup")]
    [InlineData("40% into its startup")]
    [InlineData("50% into its startup")]
    [InlineData("60% into its startup")]
    [InlineData("70% into its startup")]
    [InlineData("80% into its startup")]
    [InlineData("90% into its startup")]
    [InlineData("at its first output line")]
    [InlineData("once it listens")]
    public async Task Sigterm_while_a_cluster_node_starts_ends_it_cleanly(string when)
    {
        var startup = await ClusterStartup.Value;
        for (int run = 0; run < 2; run++)
        {
            using var node = ServeCommandProcess.Start(ClusterNode($"n{run}"));
            if (when == "at its first output line") await node.FirstLine.WaitAsync(TimeSpan.FromSeconds(60));
            else if (when == "once it listens") await node.GrpcAddressAsync(TimeSpan.FromSeconds(60));
            else if (when.EndsWith("% into its startup")) await Task.Delay(startup * int.Parse(when[..when.IndexOf('%')]) / 100);
            node.Terminate();

            var sw = Stopwatch.StartNew();
            Assert.True(await node.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"run {run}: still running 30 s after SIGTERM:\n{node.Output}");
            var took = sw.Elapsed;
            string output = node.Output;
            log.WriteLine($"run {run}: exit {node.ExitCode} {took.TotalSeconds:0.00} s after SIGTERM {when} (startup {startup.TotalSeconds:0.0} s){(output.Length == 0 ? "" : ": " + output.Split('\n')[^1])}");
            bool mayPrecedeTheProgram = when is "right after the process starts" or "10% into its startup" or "20% into its startup";
            Assert.True(node.ExitCode == 0 || (mayPrecedeTheProgram && node.ExitCode == 143 && output.Length == 0), $"run {run}: exit code {node.ExitCode}:\n{output}");
            Assert.True(took < ExitBound, $"run {run}: exit took {took.TotalSeconds:0.0} s:\n{output}");
            Assert.False(output.Contains("Unhandled exception") || output.Contains("   at "), $"run {run}: an exception in the output:\n{output}");
        }
    }

    /// <summary>One client: what it counts (steps or events) and the status its call ended with.</summary>
    private sealed class Client
    {
        public Client(string name, Func<Client, Task> run)
        {
            Name = name;
            Run = Task.Run(async () =>
            {
                try { await run(this); }
                catch (RpcException e) { Status = e.Status; }
                catch (Exception e) { Other = e; }
            });
        }

        public string Name { get; }
        public Task Run { get; }
        public int Count;
        public Status? Status { get; set; }
        public Exception? Other { get; private set; }

        public string Describe() => Other is not null ? $"{Other.GetType().Name}: {Other.Message}"
            : Status is { } s ? $"{s.StatusCode} \"{s.Detail}\" after {Count}" : $"no status after {Count}";
    }

    private static string Summary(IEnumerable<Client> clients) => string.Join("\n", clients.Select(c => $"  {c.Name}: {c.Describe()}"));

    private static async Task UnarySteps(GrpcChannel channel, string vmId, Client c, CancellationToken stop)
    {
        var run = new RunControl.RunControlClient(channel);
        while (!stop.IsCancellationRequested)
        {
            await run.StepAsync(new StepRequest { VmId = vmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: Deadline, cancellationToken: stop);
            Interlocked.Increment(ref c.Count);
        }
    }

    /// <summary>Steps on one ResumeStream as the gdb bridge does; an error answered in-band is not an end (the bridge goes on too).</summary>
    private static async Task StreamSteps(GrpcChannel channel, string vmId, Client c, CancellationToken stop)
    {
        using var call = new RunControl.RunControlClient(channel).ResumeStream(deadline: Deadline, cancellationToken: stop);
        var step = new ResumeRequest { VmId = vmId, Actions = { new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step } } };
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await call.RequestStream.WriteAsync(step);
                if (!await call.ResponseStream.MoveNext(stop)) break;
                Interlocked.Increment(ref c.Count);
            }
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException)
        {
            // A write that lost the race with the server's end of the call fails on its own (CANCELLED, or "the call is
            // complete"): the call's status is what the response stream ends with, as for any gRPC client.
        }
        c.Status = await WhenEnded(call);
    }

    private static async Task<Status> WhenEnded(AsyncDuplexStreamingCall<ResumeRequest, ResumeStreamResponse> call)
    {
        try { while (await call.ResponseStream.MoveNext()) { } }
        catch (RpcException e) { return e.Status; }
        return call.GetStatus();
    }

    private static async Task Events(GrpcChannel channel, string vmId, Client c, CancellationToken stop)
    {
        using var call = new Api.V1.Events.EventsClient(channel).StreamEvents(new StreamEventsRequest { VmId = vmId }, deadline: Deadline, cancellationToken: stop);
        while (await call.ResponseStream.MoveNext(stop)) Interlocked.Increment(ref c.Count);
        c.Status = call.GetStatus();
    }

    private static async Task Until(Func<bool> condition, string what, List<Client> clients, ServeCommandProcess server)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > until || server.HasExited)
                throw new TimeoutException($"not reached: {what}\n{Summary(clients)}\n{server.Output}");
            await Task.Delay(50);
        }
    }
}
