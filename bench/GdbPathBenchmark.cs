using System.Diagnostics;
using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using ActorStep.Host.Server;
using ActorStep.Host.Services;
using ActorStep.Protocol.Gdb;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace ActorStep.Bench;

/// <summary>
/// Where one gdb step's time goes inside the server, layer by layer, each measured alone on the same VM in one run: the
/// engine's resume through the VM manager (what every path shares), the Resume call as <see cref="VmApi"/> runs it (registers
/// and code included, as the bridge asks), the same through the in-process call invoker's stream, and the gdb target's
/// resume (what a <c>vCont;s</c> costs before the RSP codec and TCP). The difference between layers is each one's cost.
/// </summary>
public sealed class GdbPathBenchmark : IBenchmark
{
    public string Name => "gdb-path";
    public string Description => "one gdb step's time by layer inside the server (engine, VmApi.Resume, in-process stream, gdb target)  [--steps N]";

    public async Task<int> RunAsync(string[] args)
    {
        int steps = BenchArgs.Int(args, "--steps", 20000);
        await using var server = await ServerHost.StartAsync(new ServerOptions
        {
            Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false,
            LogLevel = Serilog.Events.LogEventLevel.Warning,
        });
        using var channel = GrpcChannel.ForAddress(server.Address);
        var vm = await new Vms.VmsClient(channel).CreateVmAsync(new CreateVmRequest { BuiltIn = "demo", Vcpus = 1, MemorySize = 16 << 20, VmId = "path" });
        var api = server.Services.GetRequiredService<VmApi>();
        var router = server.Services.GetRequiredService<ActorStep.Host.Fleet.VmRouter>();
        var scope = new CallScope(DateTime.MaxValue, CancellationToken.None);

        ResumeRequest Request(bool full)
        {
            var r = new ResumeRequest { VmId = vm.VmId, StepCount = 1, HoldInterrupts = true };
            if (full) { r.IncludeRegisters = true; r.ValuesOnly = true; r.IncludeCode = 256; }
            r.Actions.Add(new VcpuActionEntry { Vcpu = 0, Action = VcpuAction.Step });
            return r;
        }
        var bare = Request(full: false);
        var full = Request(full: true);
        var invoker = new InProcessCallInvoker(router);
        var stream = new RunControl.RunControlClient(invoker).ResumeStream();
        using var target = new GrpcGdbTarget(invoker, vm.VmId);
        var gdbStep = new GdbResume([GdbResumeAction.Step]);

        var layers = new (string Name, Func<Task> Once)[]
        {
            ("VmApi.Resume, stop only", () => api.Resume(bare, scope)),
            ("VmApi.Resume + registers + code", () => api.Resume(full, scope)),
            ("in-process ResumeStream (+ regs, code)", async () =>
            {
                await stream.RequestStream.WriteAsync(full);
                await stream.ResponseStream.MoveNext(CancellationToken.None);
            }),
            ("stream + stop's registers as gdb values", async () =>
            {
                await stream.RequestStream.WriteAsync(full);
                await stream.ResponseStream.MoveNext(CancellationToken.None);
                var values = stream.ResponseStream.Current.Stopped.RegisterValues;
                var regs = new Dictionary<int, byte[]>(values.Count);
                for (int i = 0; i < values.Count; i++) regs[i] = GdbRegisterValue.FromUInt64(values[i], 8);
            }),
            ("gdb target ResumeAsync (vCont;s)", () => target.ResumeAsync(gdbStep, CancellationToken.None)),
        };
        Console.WriteLine($"gdb-path: {steps:N0} steps per layer, demo guest, 1 vcpu; 3 rounds, layers interleaved");
        var results = layers.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < 4; round++)
            for (int i = 0; i < layers.Length; i++)
            {
                var sw = Stopwatch.StartNew();
                for (int n = 0; n < (round == 0 ? 2000 : steps); n++) await layers[i].Once();
                if (round > 0) results[i].Add(sw.Elapsed.TotalMicroseconds / steps); // round 0 warms up
            }
        for (int i = 0; i < layers.Length; i++)
            Console.WriteLine($"  {layers[i].Name,-42} {results[i].Min(),7:0.0} µs/step (best of 3; {1e6 / results[i].Min(),8:0} steps/s)");
        return 0;
    }
}
