using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorStep.Actors.Vm;
using ActorStep.Api.V1;
using VcpuAction = ActorStep.Actors.Vm.VcpuAction;
using StopReason = ActorStep.Actors.Vm.StopReason;
using ActorStep.Backends.Qemu;
using ActorStep.Host.Gdb;
using ActorStep.Host.Server;
using Akka.Actor;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Bench;

/// <summary>
/// Stepping the Debian kernel on QEMU (pseries TCG, 1 vcpu, from start_kernel): gdb-multiarch's <c>stepi N</c> through
/// ActorStep's bridge on a QEMU VM (the QEMU backend: MSR[SE], a Z0 at the Trace handler, the interrupt undone) against
/// gdb's <c>stepi N</c> on QEMU's own gdbstub (QEMU's own step), side by side in one run; and the engine alone (a
/// coordinator on the QEMU VM, no gRPC, no gdb): steps per second and gdbstub round trips per step. The kernel comes from
/// scripts/fetch-linux's cache. Everything listens on 127.0.0.1 or a private Unix socket.
/// </summary>
public sealed class QemuBenchmark : IBenchmark
{
    public string Name => "qemu";
    public string Description => "stepping the Debian kernel on QEMU: gdb stepi through ActorStep vs QEMU's own step; engine steps/s and round trips per step  [--stepi N] [--steps N]";

    private static string Vmlinux => Path.Combine(Environment.GetEnvironmentVariable("ACTORSTEP_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep"), "linux", "vmlinux");

    private static List<string> Arguments() =>
    [
        "-M", "pseries,x-vof=on", "-cpu", "power9", "-smp", "1", "-m", "1G", "-nodefaults", "-kernel", Vmlinux, "-append", "console=hvc0",
        "-icount", "shift=0,sleep=off,align=off", "-rtc", "clock=vm,base=2020-01-01T00:00:00", "-seed", "1",
    ];

    public async Task<int> RunAsync(string[] args)
    {
        int stepi = BenchArgs.Int(args, "--stepi", 2000);
        int steps = BenchArgs.Int(args, "--steps", 3000);
        if (!File.Exists(Vmlinux)) { Console.Error.WriteLine($"no kernel at {Vmlinux}: run scripts/fetch-linux"); return 1; }
        ulong startKernel = StartKernel();
        Console.WriteLine($"qemu benchmark: {Environment.ProcessorCount} cpus, Debian vmlinux on pseries TCG (1 vcpu, -icount), from start_kernel (0x{startKernel:x}); gdb stepi {stepi}, engine {steps} steps");

        // QEMU's own step, through gdb: a fresh QEMU for each gdb run.
        async Task<TimeSpan> OnQemu(string[] commands)
        {
            int port = Loopback.FreePort();
            using var reference = Process.Start(QemuStart([.. Arguments(), "-S", "-gdb", $"tcp:127.0.0.1:{port}", "-serial", "null", "-display", "none", "-monitor", "none"]))!;
            try
            {
                var endpoint = new IPEndPoint(IPAddress.Loopback, port);
                await WaitListening(endpoint);
                return await GdbAsync(endpoint, commands);
            }
            finally { reference.Kill(entireProcessTree: true); }
        }
        double qemuRate = await GdbStepiRate("QEMU's own step (its gdbstub)", OnQemu, startKernel, stepi);

        // Through ActorStep: the server in this process, a VM created over gRPC from the same QEMU arguments for each gdb run,
        // the bridge over gRPC.
        double actorStepRate;
        await using (var server = await ServerHost.StartAsync(new ServerOptions
        {
            Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false, ClientsMayLaunchQemu = true, LogLevel = Serilog.Events.LogEventLevel.Warning,
        }))
        using (var channel = GrpcChannel.ForAddress(server.Address))
        {
            var vms = new Vms.VmsClient(channel);
            int n = 0;
            async Task<TimeSpan> OnActorStep(string[] commands)
            {
                var launch = new QemuLaunch();
                launch.Arguments.AddRange(Arguments());
                var vm = await vms.CreateVmAsync(new CreateVmRequest { Qemu = new Api.V1.QemuSource { Launch = launch }, VmId = $"qemu-bench-{++n}" });
                try
                {
                    await using var bridge = await GdbBridge.StartAsync(channel, vm.VmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance);
                    return await GdbAsync(bridge.Endpoint, commands);
                }
                finally { await vms.DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId }); }
            }
            actorStepRate = await GdbStepiRate("ActorStep on QEMU (bridge over gRPC, QEMU backend)", OnActorStep, startKernel, stepi);
        }

        // The engine alone: a coordinator on a QEMU VM, steps asked one at a time.
        var (engineRate, trips) = EngineSteps(startKernel, steps);

        Console.WriteLine();
        Console.WriteLine($"ratio gdb stepi through ActorStep / QEMU's own step: {actorStepRate / qemuRate:0.00}x   (goal ≥ 0.5x)");
        Console.WriteLine($"engine alone: {engineRate:0} steps/s, {trips:0.0} gdbstub round trips per step ({engineRate / qemuRate:0.00}x QEMU's own step through gdb)");
        return 0;
    }

    private static (double Rate, double Trips) EngineSteps(ulong at, int steps)
    {
        using var system = ActorSystem.Create("qemu-bench");
        var vm = (QemuVm)new QemuBackend().Create(new Hypervisor.VmImageRequest(null, null, 1, 0, Hypervisor.HypervisorFlavour.Hv,
            new Hypervisor.QemuSource(null, Arguments()))).Machine;
        try
        {
            var coordinator = system.ActorOf(VmCoordinator.Props(vm));
            object Call(object m) => coordinator.Ask<object>(m, TimeSpan.FromSeconds(60)).Result;
            Call(new InsertBreakpoint(at));
            Call(new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Continue }));
            Call(new RemoveBreakpoint(at));
            var step = new Resume(new Dictionary<int, VcpuAction> { [0] = VcpuAction.Step }, HoldAsyncInterrupts: false);
            for (int i = 0; i < 300; i++) Call(step); // warm-up
            long before = vm.Stub.RoundTrips;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
                if (Call(step) is not Stopped { Event.Reason: StopReason.StepCompleted } s) throw new InvalidOperationException($"step {i}: {Call(new Describe())}");
            sw.Stop();
            double rate = steps / sw.Elapsed.TotalSeconds, trips = (vm.Stub.RoundTrips - before) / (double)steps;
            Console.WriteLine($"\nengine alone (a coordinator on the QEMU VM, {steps} steps after 300 to warm up): {rate:0} steps/s, {trips:0.0} round trips per step");
            system.Stop(coordinator);
            Thread.Sleep(500);
            return (rate, trips);
        }
        finally { vm.Dispose(); }
    }

    private static async Task<double> GdbStepiRate(string label, Func<string[], Task<TimeSpan>> run, ulong at, int stepi)
    {
        string[] reach = [$"break *0x{at:x}", "continue", "delete"];
        await run([.. reach, "stepi 200"]); // warm-up (JIT, TCG)
        var baseline = await run([.. reach, "stepi 1"]);
        var full = await run([.. reach, $"stepi {stepi}"]);
        var net = full - baseline;
        double rate = (stepi - 1) / net.TotalSeconds;
        Console.WriteLine($"\n{label}\n  gdb stepi {stepi}: {full.TotalSeconds:0.000} s wall, {baseline.TotalSeconds:0.000} s of it starting, connecting and reaching start_kernel; net {rate:0} stepi/s");
        return rate;
    }

    /// <summary>Wall time of one gdb-multiarch run with the vmlinux (start, connect, the commands, detach). Each run needs a fresh
    /// guest: the commands start with reaching the breakpoint from the firmware, so runs are comparable.</summary>
    private static async Task<TimeSpan> GdbAsync(IPEndPoint endpoint, string[] commands)
    {
        var psi = new ProcessStartInfo("gdb-multiarch") { RedirectStandardOutput = true, RedirectStandardError = true };
        var args = new List<string> { "-nx", "-batch", Vmlinux, "-ex", "set architecture powerpc:common64", "-ex", "set endian little",
            "-ex", "set scheduler-locking step", "-ex", $"target remote {endpoint.Address}:{endpoint.Port}" };
        foreach (var c in commands) args.AddRange(["-ex", c]);
        args.AddRange(["-ex", "p/x $pc", "-ex", "detach"]);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var gdb = Process.Start(psi)!;
        var output = gdb.StandardOutput.ReadToEndAsync();
        var errors = gdb.StandardError.ReadToEndAsync();
        try { await gdb.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5)); }
        catch (TimeoutException) { gdb.Kill(entireProcessTree: true); throw; }
        sw.Stop();
        string text = await output + await errors;
        if (!text.Contains("= 0x")) throw new InvalidOperationException($"gdb failed:\n{text}");
        return sw.Elapsed;
    }

    private static ProcessStartInfo QemuStart(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("qemu-system-ppc64") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    private static ulong StartKernel()
    {
        var psi = new ProcessStartInfo("powerpc64le-linux-gnu-readelf", $"-sW {Vmlinux}") { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        foreach (var line in p.StandardOutput.ReadToEnd().Split('\n'))
        {
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+FUNC\s+\w+\s+\w+\s+\[<localentry>: (\d+)\]\s+\S+\s+start_kernel$");
            if (m.Success) return Convert.ToUInt64(m.Groups[1].Value, 16) + ulong.Parse(m.Groups[2].Value);
        }
        throw new InvalidOperationException("vmlinux has no start_kernel");
    }


    private static async Task WaitListening(IPEndPoint endpoint)
    {
        for (int i = 0; i < 200; i++)
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try { await s.ConnectAsync(endpoint); return; }
            catch (SocketException) { await Task.Delay(50); }
        }
        throw new TimeoutException($"QEMU's gdbstub did not listen on {endpoint}");
    }
}
