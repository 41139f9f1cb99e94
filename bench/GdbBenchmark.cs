using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using ActorStep.Host.Server;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorStep.Bench;

/// <summary>
/// ActorStep's gdb bridge — as `actorstep serve --gdb` runs it, in a server process of its own (cold, then warm), and as
/// `actorstep gdb --server` runs it (a gRPC client; here in this process) — against QEMU's own
/// gdbstub (<c>qemu-system-ppc64 -M powernv9</c>, TCG: POWER9, as the machine models; plain <c>powernv</c> is POWER10 from
/// QEMU 9.0) on the same big-endian bare-metal loop (bench/guests/loop-be.s,
/// assembled here with GNU as): a raw RSP client's <c>vCont;s</c> round trips per second, with and without a <c>g</c>
/// after each, the round trip of a packet each stub answers by itself (vCont?: the floor), and the wall time of gdb-multiarch's
/// <c>stepi 10000</c> and of its <c>next</c> over a source line of 2,002 instructions (a counted loop). Everything listens on
/// 127.0.0.1 only.
/// </summary>
public sealed class GdbBenchmark : IBenchmark
{
    public string Name => "gdb";
    public string Description =>
        "gdb bridge (in the server, as serve --gdb; and over gRPC, as actorstep gdb) vs QEMU powernv9 gdbstub: raw vCont;s round trips/s " +
        "(± g, each mode, leanest client), cold start of a fresh actorstep serve, gdb stepi/next wall time  [--steps N] [--stepi N] [--actorstep CMD] [--cold-only [--runs N]]";

    public async Task<int> RunAsync(string[] args)
    {
        int steps = BenchArgs.Int(args, "--steps", 5000);
        int stepi = BenchArgs.Int(args, "--stepi", 10000);
        string dir = Directory.CreateTempSubdirectory("actorstep-gdb-bench").FullName;
        try
        {
            var (elf, raw) = BuildGuest(dir);
            if (args.Contains("--cold-only"))
            {
                for (int run = 0; run < BenchArgs.Int(args, "--runs", 1); run++)
                {
                    await using var serve = await ServeProcess.StartAsync(BenchArgs.ActorStepCommand(args), elf, dir);
                    await ColdAsync(serve);
                }
                return 0;
            }
            Console.WriteLine($"gdb benchmark: {Environment.ProcessorCount} cpus, guest loop-be (BE, entry 0x10), {steps} raw steps, gdb stepi {stepi}");

            Result qemu, inProcess, remote;
            using (var q = Qemu.Start(raw))
                qemu = await MeasureAsync($"QEMU {QemuVersion()} powernv9 (TCG) gdbstub", q.Endpoint, steps, stepi, elf, gdb: true);

            // ActorStep as a gdb user meets it: `actorstep serve --gdb` in a process of its own (the bridge inside the server),
            // first its cold start, then the same process warmed up.
            (double FirstChunk, double First) cold;
            await using (var serve = await ServeProcess.StartAsync(BenchArgs.ActorStepCommand(args), elf, dir))
            {
                cold = await ColdAsync(serve);
                inProcess = await MeasureAsync($"ActorStep serve --gdb, its own process (the bridge in the server; 1 vcpu), warm", serve.Endpoint, steps,
                    stepi, elf, gdb: true);
            }

            await using (var server = await ServerHost.StartAsync(new ServerOptions
            {
                Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false, ImageDirectories = [Path.GetTempPath()],
                LogLevel = Serilog.Events.LogEventLevel.Warning,
            }))
            using (var channel = GrpcChannel.ForAddress(server.Address))
            {
                var vms = new Vms.VmsClient(channel);
                var vm = await vms.CreateVmAsync(new CreateVmRequest { ElfPath = elf, Vcpus = 1, MemorySize = 16 << 20, VmId = "gdb-bench" });
                await using (var bridge = await GdbBridge.StartAsync(channel, vm.VmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance))
                    remote = await MeasureAsync("ActorStep bridge over gRPC (as actorstep gdb --server; server, bridge and this client in one process)",
                        bridge.Endpoint, steps, stepi, elf, gdb: false);
            }

            // Both stubs at once, in alternating chunks: a change of the machine's load meets both alike.
            Interleaved interleaved;
            using (var q = Qemu.Start(raw))
            await using (var serve = await ServeProcess.StartAsync(BenchArgs.ActorStepCommand(args), elf, dir))
                interleaved = await InterleavedAsync(q.Endpoint, serve.Endpoint, steps);

            Console.WriteLine();
            Console.WriteLine("ratios (ActorStep in the server / QEMU; > 1 means ActorStep is faster; each stub in the mode gdb negotiates unless said):");
            Console.WriteLine($"  vCont;s:THREAD round trips/s        {inProcess.Negotiated.Thread / qemu.Negotiated.Thread,6:0.00}x   (goal ≥ 2x)");
            Console.WriteLine($"  vCont;s:THREAD + g round trips/s    {inProcess.Negotiated.ThreadG / qemu.Negotiated.ThreadG,6:0.00}x   (goal ≥ 2x)");
            Console.WriteLine($"  the same two, interleaved           {interleaved.Thread:0.00}x, + g {interleaved.ThreadG:0.00}x   (each chunk's ratio: {interleaved.ChunkRange})");
            Console.WriteLine($"  vCont;s, ack mode, both stubs       {inProcess.Ack.Bare / qemu.Ack.Bare,6:0.00}x   (goal ≥ 1.5x)");
            Console.WriteLine($"  vCont;s:THREAD, ack mode, both      {inProcess.Ack.Thread / qemu.Ack.Thread,6:0.00}x");
            Console.WriteLine($"  cold: first {ColdSteps} steps of a fresh serve {cold.First / qemu.Negotiated.Thread,6:0.00}x   (its first {ColdChunk}: {cold.FirstChunk / qemu.Negotiated.Thread:0.00}x)");
            Console.WriteLine($"  gdb stepi {stepi} (net)              {qemu.GdbStepiNet.TotalSeconds / inProcess.GdbStepiNet.TotalSeconds,6:0.00}x   (goal ≥ 1x)");
            Console.WriteLine($"  gdb stepi, 4 breakpoints            {qemu.GdbStepiBreakpointsNet.TotalSeconds / inProcess.GdbStepiBreakpointsNet.TotalSeconds,6:0.00}x");
            Console.WriteLine($"  gdb next, 2002-instr line           {qemu.GdbNextNet.TotalSeconds / inProcess.GdbNextNet.TotalSeconds,6:0.00}x   (range stepping: vCont;r)");
            Console.WriteLine($"  over gRPC instead: vCont;s:THREAD   {remote.Negotiated.Thread / qemu.Negotiated.Thread,6:0.00}x, + g {remote.Negotiated.ThreadG / qemu.Negotiated.ThreadG:0.00}x");
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Round trips per second of one client mode: vCont;s:THREAD, the same followed by g, and vCont;s with no thread.</summary>
    private sealed record Rates(double Thread, double ThreadG, double Bare);

    private sealed record Result(Rates Negotiated, Rates Ack, TimeSpan GdbStepiNet, TimeSpan GdbNextNet, TimeSpan GdbStepiBreakpointsNet);

    private static async Task<Rates> RawAsync(IPEndPoint endpoint, int steps, bool offerNoAck, string label)
    {
        using var c = await RspClient.ConnectAsync(endpoint);
        string thread = await c.HandshakeAsync(offerNoAck);
        // Warm-up (TCG translation; .NET's tiered JIT and dynamic PGO settle only after seconds of the same calls).
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(3))
        {
            await c.StepLoopAsync(thread, 500, withG: false);
            await c.StepLoopAsync(thread, 500, withG: true);
        }
        var floor = await c.PacketLoopAsync("vCont?", steps);
        var plain = await c.StepLoopAsync(thread, steps, withG: false);
        var withG = await c.StepLoopAsync(thread, steps, withG: true);
        var bare = await c.StepLoopAsync(null, steps, withG: false);
        var gAlone = await c.PacketLoopAsync("g", steps); // stopped: each stub answers from what it holds
        string mode = c.NoAck ? "no-ack" : "ack (each + sent with the next packet)";
        Console.WriteLine($"  {label}: {mode}");
        Console.WriteLine($"    vCont? (the stub's own) {floor.Latencies.Summary(floor.Elapsed, "packets")}");
        Console.WriteLine($"    vCont;s:{thread,-14} {plain.Latencies.Summary(plain.Elapsed, "steps")}");
        Console.WriteLine($"    vCont;s:{thread} + g{new string(' ', Math.Max(0, 10 - thread.Length))} {withG.Latencies.Summary(withG.Elapsed, "steps")}");
        Console.WriteLine($"      of which the g       p50 {c.GAfterStep.PercentileMicros(0.50),8:0.0} µs   p99 {c.GAfterStep.PercentileMicros(0.99),8:0.0} µs");
        Console.WriteLine($"    vCont;s                {bare.Latencies.Summary(bare.Elapsed, "steps")}");
        Console.WriteLine($"    g alone (stopped)      {gAlone.Latencies.Summary(gAlone.Elapsed, "packets")}");
        await c.DetachAsync();
        return new Rates(plain.PerSecond, withG.PerSecond, bare.PerSecond);
    }

    private static async Task<Result> MeasureAsync(string label, IPEndPoint endpoint, int steps, int stepi, string elf, bool gdb)
    {
        Console.WriteLine($"\n{label} on {endpoint}");
        var negotiated = await RawAsync(endpoint, steps, offerNoAck: true, "the mode gdb negotiates");
        var ack = await RawAsync(endpoint, steps, offerNoAck: false, "ack mode");
        if (!gdb) return new Result(negotiated, ack, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        var baseline = await GdbAsync(endpoint, null, "stepi 1");
        var full = await GdbAsync(endpoint, null, $"stepi {stepi}");
        var net = full - baseline;
        Console.WriteLine($"  gdb stepi {stepi}: {full.TotalSeconds:0.000} s wall ({baseline.TotalSeconds:0.000} s of it starting gdb and connecting); " +
                          $"net {net.TotalSeconds:0.000} s = {stepi / net.TotalSeconds:0} stepi/s");
        // The same with four breakpoints set elsewhere: gdb takes them out at every stop and puts them back at every step.
        int bpSteps = Math.Max(stepi / 4, 100);
        var withBreakpoints = await GdbAsync(endpoint, null, "break *0x200", "break *0x204", "break *0x208", "break *0x20c", $"stepi {bpSteps}");
        var bpNet = withBreakpoints - baseline;
        Console.WriteLine($"  gdb stepi {bpSteps} with 4 breakpoints set: net {bpNet.TotalSeconds:0.000} s = {bpSteps / bpNet.TotalSeconds:0} stepi/s");
        // gdb's next over loop.c line 5: li, mtctr and a 1000-times addi/bdnz loop (2002 instructions), 20 times in one
        // gdb (each after setting the pc back: one P packet). A stub that offers vCont;r runs each next in one
        // resume; otherwise gdb steps the line one vCont;s at a time.
        const int nexts = 20;
        string[] Repeat(string step) => [.. Enumerable.Repeat(new[] { "set $pc = counted", step }, nexts).SelectMany(c => c), "p $pc == loop ? 1234567 : 0"];
        var next = await GdbAsync(endpoint, elf, Repeat("next"));
        var nextNet = (next - baseline) / nexts;
        Console.WriteLine($"  gdb next over a 2002-instruction line ({nexts}x): {next.TotalSeconds:0.000} s wall; {nextNet.TotalMilliseconds:0.0} ms per next " +
                          "(less starting gdb and connecting)");
        return new Result(negotiated, ack, net, nextNet, bpNet);
    }

    /// <summary>ActorStep / QEMU round-trip rates measured in alternating chunks, and the range of the per-chunk ratios.</summary>
    private sealed record Interleaved(double Thread, double ThreadG, string ChunkRange);

    /// <summary>
    /// QEMU's stub and a warmed-up <c>actorstep serve --gdb</c> connected at once (the mode gdb negotiates), then
    /// <c>vCont;s:THREAD</c> with and without a <c>g</c> in chunks of <see cref="InterleavedChunk"/>, QEMU and ActorStep taking
    /// turns (who goes first alternates too): the measurements of the two stubs are spread over the same seconds, so a load
    /// that comes and goes on a shared machine weighs on both.
    /// </summary>
    private static async Task<Interleaved> InterleavedAsync(IPEndPoint qemu, IPEndPoint actorStep, int steps)
    {
        using var q = await RspClient.ConnectAsync(qemu);
        using var a = await RspClient.ConnectAsync(actorStep);
        string qThread = await q.HandshakeAsync(offerNoAck: true), aThread = await a.HandshakeAsync(offerNoAck: true);
        // One turn of a stub: a chunk of steps, then a chunk of steps each followed by a g (seconds each).
        async Task<(double Plain, double G)> TurnAsync(RspClient c, string thread) =>
            ((await c.StepLoopAsync(thread, InterleavedChunk, withG: false)).Elapsed.TotalSeconds,
             (await c.StepLoopAsync(thread, InterleavedChunk, withG: true)).Elapsed.TotalSeconds);
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(3))
        {
            await TurnAsync(q, qThread);
            await TurnAsync(a, aThread);
        }
        double qPlain = 0, qG = 0, aPlain = 0, aG = 0;
        var chunkRatios = new List<double>();
        int chunks = Math.Max(steps / InterleavedChunk, 2);
        for (int i = 0; i < chunks; i++)
        {
            (double Plain, double G) qemuTurn, actorStepTurn;
            if (i % 2 == 0) { qemuTurn = await TurnAsync(q, qThread); actorStepTurn = await TurnAsync(a, aThread); }
            else { actorStepTurn = await TurnAsync(a, aThread); qemuTurn = await TurnAsync(q, qThread); }
            qPlain += qemuTurn.Plain; qG += qemuTurn.G; aPlain += actorStepTurn.Plain; aG += actorStepTurn.G;
            chunkRatios.Add(qemuTurn.Plain / actorStepTurn.Plain);
        }
        int total = chunks * InterleavedChunk;
        Console.WriteLine($"\nInterleaved: QEMU's gdbstub and a warm ActorStep serve --gdb, {chunks} chunks of {InterleavedChunk} steps each, taking turns");
        Console.WriteLine($"  vCont;s:THREAD      QEMU {total / qPlain,7:0}/s   ActorStep {total / aPlain,7:0}/s   {qPlain / aPlain:0.00}x");
        Console.WriteLine($"  vCont;s:THREAD + g  QEMU {total / qG,7:0}/s   ActorStep {total / aG,7:0}/s   {qG / aG:0.00}x");
        await q.DetachAsync();
        await a.DetachAsync();
        return new Interleaved(qPlain / aPlain, qG / aG, $"{chunkRatios.Min():0.00}–{chunkRatios.Max():0.00}x raw");
    }

    private const int InterleavedChunk = 250;

    private const int ColdSteps = 2000, ColdChunk = 250;

    /// <summary>`actorstep serve --gdb` as a child process with the benchmark's image, 1 vcpu; killed on dispose.</summary>
    private sealed class ServeProcess : IAsyncDisposable
    {
        private readonly Process _process;
        public IPEndPoint Endpoint { get; }
        public TimeSpan Ready { get; }
        public string Command { get; }

        private ServeProcess(Process process, IPEndPoint endpoint, TimeSpan ready, string command)
        {
            _process = process;
            Endpoint = endpoint;
            Ready = ready;
            Command = command;
        }

        public static async Task<ServeProcess> StartAsync(string[] command, string elf, string dir)
        {
            int port = Loopback.FreePort();
            var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
            foreach (var a in command.Skip(1).Concat(["serve", "--no-auth", "--image", elf, "--vcpus", "1", "--memory", "16", "--grpc", "127.0.0.1:0",
                         "--gdb", $"127.0.0.1:{port}"]))
                psi.ArgumentList.Add(a);
            var started = Stopwatch.StartNew();
            var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {command[0]}");
            _ = p.StandardError.ReadToEndAsync();
            while (await p.StandardOutput.ReadLineAsync() is { } line)
                if (line.StartsWith("gdb bridge for VM", StringComparison.Ordinal)) break;
            _ = p.StandardOutput.ReadToEndAsync();
            if (p.HasExited) throw new InvalidOperationException($"{string.Join(' ', command)} serve exited with {p.ExitCode}");
            return new ServeProcess(p, new IPEndPoint(IPAddress.Loopback, port), started.Elapsed, string.Join(' ', command));
        }

        public async ValueTask DisposeAsync()
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }

    /// <summary>
    /// What a gdb user meets at the start of a session: the first steps through a fresh <c>actorstep serve --gdb</c> (in chunks
    /// of <see cref="ColdChunk"/>), as round trips per second.
    /// </summary>
    private static async Task<(double FirstChunk, double First)> ColdAsync(ServeProcess serve)
    {
        using var c = await RspClient.ConnectAsync(serve.Endpoint);
        string thread = await c.HandshakeAsync(offerNoAck: true);
        var chunks = new List<double>();
        var all = Stopwatch.StartNew();
        for (int done = 0; done < ColdSteps; done += ColdChunk)
            chunks.Add((await c.StepLoopAsync(thread, ColdChunk, withG: false)).PerSecond);
        double first = ColdSteps / all.Elapsed.TotalSeconds;
        Console.WriteLine($"\nActorStep cold: a fresh `{serve.Command} serve --gdb` (bridge up {serve.Ready.TotalSeconds:0.00} s after start)");
        Console.WriteLine($"  first {ColdSteps} vCont;s:{thread} steps: {first:0}/s; by chunks of {ColdChunk}: {string.Join(", ", chunks.Select(x => x.ToString("0")))}");
        await c.DetachAsync();
        return (chunks[0], first);
    }

    /// <summary>Wall time of one gdb-multiarch run (start, connect, the command, detach, exit).</summary>
    private static async Task<TimeSpan> GdbAsync(IPEndPoint endpoint, string? elf, params string[] commands)
    {
        var psi = new ProcessStartInfo("gdb-multiarch") { RedirectStandardOutput = true, RedirectStandardError = true };
        var args = new List<string> { "-nx", "-batch" };
        if (elf is not null) args.Add(elf);
        args.AddRange(["-ex", "set architecture powerpc:common64", "-ex", "set endian big", "-ex", $"target remote {endpoint.Address}:{endpoint.Port}"]);
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
        if (!text.Contains("= 0x") || (commands[^1].Contains("1234567") && !text.Contains("= 1234567")))
            throw new InvalidOperationException($"gdb failed:\n{text}");
        return sw.Elapsed;
    }

    /// <summary>Assembles bench/guests/loop-be.s with GNU as into an ELF (ActorStep) and a raw image (QEMU's -bios).</summary>
    private static (string Elf, string Raw) BuildGuest(string dir)
    {
        string source = FindSource();
        string obj = Path.Combine(dir, "loop-be.o"), elf = Path.Combine(dir, "loop-be.elf"), raw = Path.Combine(dir, "loop-be.bin");
        Run("powerpc64-linux-gnu-as", $"-a64 -mbig -mpower9 -g -o {obj} {source}");
        Run("powerpc64-linux-gnu-ld", $"-nostdlib -static --build-id=none --no-warn-rwx-segments -N -e _start -Ttext=0 -o {elf} {obj}");
        Run("powerpc64-linux-gnu-objcopy", $"-O binary {elf} {raw}");
        return (elf, raw);
    }

    private static string FindSource()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var path = Path.Combine(d.FullName, "bench", "guests", "loop-be.s");
                if (File.Exists(path)) return path;
            }
        throw new FileNotFoundException("bench/guests/loop-be.s not found; run from the repository");
    }

    private static void Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args}: {err}");
    }

    /// <summary>What <c>qemu-system-ppc64 --version</c> says ("10.0.2"), for the report.</summary>
    private static string QemuVersion()
    {
        using var p = Process.Start(new ProcessStartInfo("qemu-system-ppc64", "--version") { RedirectStandardOutput = true })!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var m = System.Text.RegularExpressions.Regex.Match(text, @"version (\S+)");
        return m.Success ? m.Groups[1].Value : "?";
    }

    /// <summary>qemu-system-ppc64 -M powernv9 halted at reset (-S) with its gdbstub on a free loopback port; killed on dispose.</summary>
    private sealed class Qemu : IDisposable
    {
        private readonly Process _process;
        public IPEndPoint Endpoint { get; }

        private Qemu(Process process, IPEndPoint endpoint) { _process = process; Endpoint = endpoint; }

        public static Qemu Start(string rawImage)
        {
            int port = Loopback.FreePort();
            var psi = new ProcessStartInfo("qemu-system-ppc64") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "-M", "powernv9", "-bios", rawImage, "-nographic", "-nodefaults", "-serial", "none", "-monitor", "none",
                         "-S", "-gdb", $"tcp:127.0.0.1:{port}" })
                psi.ArgumentList.Add(a);
            var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start qemu-system-ppc64");
            _ = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            var endpoint = new IPEndPoint(IPAddress.Loopback, port);
            var until = DateTime.UtcNow.AddSeconds(15);
            while (true)
            {
                try { using var t = new TcpClient(); t.Connect(endpoint); break; } // QEMU's gdbstub takes a new connection after this one
                catch (SocketException) when (DateTime.UtcNow < until && !p.HasExited) { Thread.Sleep(50); }
            }
            Thread.Sleep(200);
            return new Qemu(p, endpoint);
        }

        public void Dispose()
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _process.WaitForExit(5000);
            _process.Dispose();
        }
    }

    /// <summary>The leanest RSP client: TCP_NODELAY, one write per packet; no-ack mode when asked for and offered, else each
    /// <c>+</c> goes out with the next packet (one write, as a careful client does: QEMU offers no no-ack mode).</summary>
    private sealed class RspClient : IDisposable
    {
        private readonly TcpClient _tcp = new() { NoDelay = true };
        private NetworkStream _stream = null!;
        private readonly byte[] _buffer = new byte[1 << 16];
        private int _start, _end;
        private bool _noAck, _ackOwed;

        public bool NoAck => _noAck;

        public static async Task<RspClient> ConnectAsync(IPEndPoint endpoint)
        {
            var c = new RspClient();
            await c._tcp.ConnectAsync(endpoint);
            c._stream = c._tcp.GetStream();
            return c;
        }

        /// <summary>qSupported, no-ack mode (if <paramref name="offerNoAck"/>), the first thread of qfThreadInfo; returns its id as vCont wants it.</summary>
        public async Task<string> HandshakeAsync(bool offerNoAck)
        {
            await RequestAsync("qSupported:swbreak+;vContSupported+");
            if (offerNoAck && await RequestAsync("QStartNoAckMode") == "OK") _noAck = true;
            // As gdb does: the target description before any g (QEMU 7.2 aborts on a g before it).
            await RequestAsync("qXfer:features:read:target.xml:0,ffb");
            await RequestAsync("?");
            string threads = await RequestAsync("qfThreadInfo");
            if (!threads.StartsWith('m')) throw new InvalidOperationException($"qfThreadInfo: {threads}");
            string first = threads[1..].Split(',')[0];
            await RequestAsync($"Hg{first}");
            return first;
        }

        /// <summary><paramref name="steps"/> single steps of <paramref name="thread"/> (null: vCont;s, the current thread).</summary>
        /// <summary>With <paramref name="withG"/>, <see cref="GAfterStep"/> holds the g's own round trips (the rest is the step's).</summary>
        public async Task<(Latencies Latencies, TimeSpan Elapsed, double PerSecond)> StepLoopAsync(string? thread, int steps, bool withG)
        {
            string step = thread is null ? "vCont;s" : $"vCont;s:{thread}";
            var gAfterStep = new Latencies();
            var (lat, elapsed) = await Latencies.MeasureAsync(steps, async i =>
            {
                string stop = await RequestAsync(step);
                if (stop[0] != 'T') throw new InvalidOperationException($"step {i}: {stop}");
                if (!withG) return;
                long t0 = Stopwatch.GetTimestamp();
                if ((await RequestAsync("g")).Length < 64) throw new InvalidOperationException("short g");
                gAfterStep.Add(Stopwatch.GetTimestamp() - t0);
            });
            if (withG) GAfterStep = gAfterStep;
            return (lat, elapsed, steps / elapsed.TotalSeconds);
        }

        /// <summary>The g round trips of the last step loop with g: a g right after a stop reply.</summary>
        public Latencies GAfterStep { get; private set; } = new();

        /// <summary>Round trips of a packet the stub answers by itself: the floor of any request on this connection.</summary>
        public Task<(Latencies Latencies, TimeSpan Elapsed)> PacketLoopAsync(string packet, int count) =>
            Latencies.MeasureAsync(count, async _ =>
            {
                if ((await RequestAsync(packet)).Length == 0) throw new InvalidOperationException($"{packet}: empty reply");
            });

        public async Task DetachAsync()
        {
            try { await RequestAsync("D"); } catch (IOException) { }
        }

        private async Task<string> RequestAsync(string payload)
        {
            int sum = 0;
            foreach (char ch in payload) sum += ch;
            await _stream.WriteAsync(Encoding.Latin1.GetBytes($"{(_ackOwed ? "+" : "")}${payload}#{sum & 0xff:x2}"));
            _ackOwed = false;
            return await ReadPacketAsync();
        }

        private async Task<string> ReadPacketAsync()
        {
            while (true)
            {
                int dollar = Array.IndexOf(_buffer, (byte)'$', _start, _end - _start);
                if (dollar >= 0)
                {
                    int hash = Array.IndexOf(_buffer, (byte)'#', dollar, _end - dollar);
                    if (hash >= 0 && hash + 2 < _end)
                    {
                        string payload = Encoding.Latin1.GetString(_buffer, dollar + 1, hash - dollar - 1);
                        _start = hash + 3;
                        if (!_noAck) _ackOwed = true; // sent with the next packet
                        if (payload.StartsWith('O') && payload != "OK") continue; // console output
                        return payload;
                    }
                }
                if (_start == _end) _start = _end = 0;
                if (_end == _buffer.Length) { Array.Copy(_buffer, _start, _buffer, 0, _end - _start); _end -= _start; _start = 0; }
                int n = await _stream.ReadAsync(_buffer.AsMemory(_end));
                if (n == 0) throw new IOException("connection closed");
                _end += n;
            }
        }

        public void Dispose() => _tcp.Dispose();
    }
}
