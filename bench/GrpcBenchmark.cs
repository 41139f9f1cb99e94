using System.Diagnostics;
using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Server;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Bench;

/// <summary>
/// End to end over gRPC on loopback (server in this process, real Kestrel, one HTTP/2 connection per client):
/// the round trip of a unary call that runs nothing (GetVm: the transport's floor), unary Step round trips with 1 client
/// on 1 VM and N clients on N VMs, a step as one message round trip on RunControl.ResumeStream (± the stopped vcpu's
/// registers, as named entries or values only: the latter is what the gdb bridge does per vCont;s), and event-stream throughput. Every figure after a warm-up.
/// </summary>
public sealed class GrpcBenchmark : IBenchmark
{
    public string Name => "grpc";
    public string Description => "GetVm floor, unary Step (1 and 16 clients), ResumeStream step (± registers): p50/p99, calls/s; event-stream messages/s  [--steps N] [--clients N]";

    public async Task<int> RunAsync(string[] args)
    {
        int steps = BenchArgs.Int(args, "--steps", 5000);
        int clients = BenchArgs.Int(args, "--clients", 16);
        await using var server = await ServerHost.StartAsync(new ServerOptions
        {
            Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false,
            LogLevel = Serilog.Events.LogEventLevel.Warning,
        });
        Console.WriteLine($"ActorStep gRPC benchmark: server {server.Address}, {Environment.ProcessorCount} cpus, {steps} steps per client, demo guest (4 vcpus), scheduler-locking step");

        var vms = new List<string>();
        using (var setup = GrpcChannel.ForAddress(server.Address))
            for (int i = 0; i < clients; i++)
                vms.Add((await new Vms.VmsClient(setup).CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", MemorySize = 16 << 20, VmId = $"bench-{i}" })).VmId);

        await StepClients(server.Address, vms.Take(1).ToList(), Math.Min(steps, 2000), print: null); // warm-up
        await UnaryFloor(server.Address, vms[0], Math.Min(steps, 2000), print: null);
        await StreamSteps(server.Address, vms[0], Math.Min(steps, 2000), includeRegisters: true, print: null);
        await StreamFloor(server.Address, Math.Min(steps, 2000), print: null);
        await UnaryFloor(server.Address, vms[0], steps, "unary GetVm (no guest work)       ");
        await StreamFloor(server.Address, steps, "stream message (reflection)       ");
        await StepClients(server.Address, vms.Take(1).ToList(), steps, "unary Step, 1 client, 1 VM        ");
        await StreamSteps(server.Address, vms[0], steps, includeRegisters: false, "ResumeStream step                 ");
        await StreamSteps(server.Address, vms[0], steps, includeRegisters: true, "ResumeStream step + registers     ");
        await StreamSteps(server.Address, vms[0], steps, includeRegisters: true, "ResumeStream step + values only   ", valuesOnly: true);
        await StepClients(server.Address, vms, Math.Max(steps / 4, 500), $"unary Step, {clients} clients, {clients} VMs     ");
        await EventStream(server.Address, vms, Math.Max(steps / 4, 500));
        await ConsoleStream(server.Address, vms[0]);
        return 0;
    }

    /// <summary>Each client on its own connection steps its own VM, one call after the other.</summary>
    private static async Task<Latencies> StepClients(Uri address, IReadOnlyList<string> vms, int steps, string? print)
    {
        var all = new Latencies();
        var channels = vms.Select(_ => GrpcChannel.ForAddress(address)).ToList();
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(vms.Select((vm, i) => Task.Run(async () =>
        {
            var client = new RunControl.RunControlClient(channels[i]);
            var mine = new long[steps];
            for (int s = 0; s < steps; s++)
            {
                long t0 = Stopwatch.GetTimestamp();
                await client.StepAsync(new StepRequest { VmId = vm, Vcpu = (uint)(s & 3), SchedulerLocking = SchedulerLocking.Step });
                mine[s] = Stopwatch.GetTimestamp() - t0;
            }
            all.AddRange(mine);
        })));
        sw.Stop();
        foreach (var c in channels) c.Dispose();
        if (print is not null) Console.WriteLine($"{print} {all.Summary(sw.Elapsed, "steps")}");
        return all;
    }

    /// <summary>A unary call that runs nothing in the guest: what any call costs on this transport.</summary>
    private static async Task UnaryFloor(Uri address, string vm, int calls, string? print)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Vms.VmsClient(channel);
        var (all, elapsed) = await Latencies.MeasureAsync(calls, async _ => await client.GetVmAsync(new GetVmRequest { VmId = vm }));
        if (print is not null) Console.WriteLine($"{print} {all.Summary(elapsed, "calls")}");
    }

    /// <summary>Message round trips on one bidirectional call that does no work (server reflection's list of services):
    /// the floor of a ResumeStream step on this transport.</summary>
    private static async Task StreamFloor(Uri address, int count, string? print)
    {
        using var channel = GrpcChannel.ForAddress(address);
        using var call = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
        var (all, elapsed) = await RoundTrips(call, new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" }, count, _ => { });
        if (print is not null) Console.WriteLine($"{print} {all.Summary(elapsed, "messages")}");
    }

    /// <summary>Steps of vcpu 0 (scheduler-locking on), each one message round trip on one ResumeStream call.</summary>
    private static async Task StreamSteps(Uri address, string vm, int steps, bool includeRegisters, string? print, bool valuesOnly = false)
    {
        using var channel = GrpcChannel.ForAddress(address);
        using var call = new RunControl.RunControlClient(channel).ResumeStream();
        var request = new ResumeRequest { VmId = vm, StepCount = 1, IncludeRegisters = includeRegisters, ValuesOnly = valuesOnly };
        request.Actions.Add(new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step });
        var (all, elapsed) = await RoundTrips(call, request, steps, answer =>
        {
            if (answer.ResultCase != ResumeStreamResponse.ResultOneofCase.Stopped) throw new InvalidOperationException($"ResumeStream step failed: {answer}");
        });
        if (print is not null) Console.WriteLine($"{print} {all.Summary(elapsed, "steps")}");
    }

    /// <summary>Request/answer round trips on one bidirectional call, each answer checked; then the call is ended cleanly
    /// (the server completes it: no reset).</summary>
    private static async Task<(Latencies Latencies, TimeSpan Elapsed)> RoundTrips<TRequest, TResponse>(
        AsyncDuplexStreamingCall<TRequest, TResponse> call, TRequest request, int count, Action<TResponse> check)
    {
        var timed = await Latencies.MeasureAsync(count, async _ =>
        {
            await call.RequestStream.WriteAsync(request);
            if (!await call.ResponseStream.MoveNext(CancellationToken.None)) throw new InvalidOperationException("the server ended the stream");
            check(call.ResponseStream.Current);
        });
        await call.RequestStream.CompleteAsync();
        while (await call.ResponseStream.MoveNext(CancellationToken.None)) { }
        return timed;
    }

    /// <summary>One reader of a selector stream over every VM while every VM is stepped by its client.</summary>
    private static async Task EventStream(Uri address, IReadOnlyList<string> vms, int steps)
    {
        using var channel = GrpcChannel.ForAddress(address);
        using var cts = new CancellationTokenSource();
        using var stream = new Events.EventsClient(channel).StreamEvents(new StreamEventsRequest(), cancellationToken: cts.Token);
        long received = 0, dropped = 0;
        for (int i = 0; i < vms.Count; i++) await stream.ResponseStream.MoveNext(); // VmAdded for each: subscribed
        var reading = Task.Run(async () =>
        {
            try
            {
                while (await stream.ResponseStream.MoveNext(cts.Token))
                {
                    received++;
                    if (stream.ResponseStream.Current.KindCase == Event.KindOneofCase.Dropped) dropped += (long)stream.ResponseStream.Current.Dropped.Count;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { }
        });
        var sw = Stopwatch.StartNew();
        await StepClients(address, vms, steps, print: null);
        long expected = 2L * steps * vms.Count; // Resumed + Stopped per step
        while (Interlocked.Read(ref received) + Interlocked.Read(ref dropped) < expected && sw.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(1);
        sw.Stop();
        cts.Cancel();
        await reading;
        Console.WriteLine($"event stream, 1 reader, {vms.Count} VMs stepped   {received / sw.Elapsed.TotalSeconds,10:0} messages/s   ({received} received, {dropped} dropped, {sw.Elapsed.TotalSeconds:0.00} s)");
    }

    /// <summary>Guest console output of the demo guest running freely for two seconds, as one reader receives it.</summary>
    private static async Task ConsoleStream(Uri address, string vm)
    {
        using var channel = GrpcChannel.ForAddress(address);
        using var cts = new CancellationTokenSource();
        using var stream = new Events.EventsClient(channel).StreamEvents(new StreamEventsRequest { VmId = vm }, cancellationToken: cts.Token);
        await stream.ResponseStream.MoveNext();
        long received = 0, bytes = 0;
        var reading = Task.Run(async () =>
        {
            try
            {
                while (await stream.ResponseStream.MoveNext(cts.Token))
                {
                    received++;
                    bytes += stream.ResponseStream.Current.Console?.Data.Length ?? 0;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { }
        });
        var run = new RunControl.RunControlClient(channel);
        var sw = Stopwatch.StartNew();
        var running = run.ContinueAsync(new ContinueRequest { VmId = vm });
        await Task.Delay(TimeSpan.FromSeconds(2));
        await run.HaltAsync(new HaltRequest { VmId = vm });
        await running;
        sw.Stop();
        await Task.Delay(200);
        cts.Cancel();
        await reading;
        Console.WriteLine($"event stream, demo guest console   {received / sw.Elapsed.TotalSeconds,10:0} messages/s   ({received} messages, {bytes} console bytes in {sw.Elapsed.TotalSeconds:0.00} s)");
    }
}
