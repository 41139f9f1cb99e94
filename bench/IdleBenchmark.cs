using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Bench;

/// <summary>
/// What an idle Linux VM costs its server (issue 13 point 5, "H_CEDE idle that does not burn a core"): <c>actorstep serve
/// --kernel</c> (a real process) boots Debian's kernel with the tests' busybox and an /init that prints a line and then sleeps;
/// once the guest is idle (its vcpus ceded in H_CEDE, waiting for their decrementers), the server's CPU time
/// (/proc/PID/stat utime + stime) is read between two of the init's tick lines, <c>--seconds</c> apart in the guest's time:
/// those guest seconds against the wall's say whether an idle guest's clock keeps up with the wall. Several
/// <c>--server</c> builds (e.g. before and after a change) run one after the other in one run, each on each vcpu count.
/// </summary>
public sealed partial class IdleBenchmark : IBenchmark
{
    public string Name => "idle";
    public string Description => "idle Linux VM under serve --kernel: server CPU % of a core and guest/wall time while the guest sleeps  [--vcpus 1,4] [--seconds 10] [--minutes 20 (a bound on each boot and measurement)] [--server DLL]...";

    private const string IdleLine = "ACTORSTEP-IDLE: sleeping";
    private const int TickSeconds = 5;

    /// <summary>Prints <see cref="IdleLine"/>, then a tick line every <see cref="TickSeconds"/> s of the guest's time, sleeping in
    /// between: nothing but the kernel's own timers wakes a vcpu.</summary>
    private static readonly string IdleInit = $"""
        #!/bin/busybox sh
        /bin/busybox --install -s
        mount -t proc proc /proc
        echo "{IdleLine}"
        i=0
        while true; do sleep {TickSeconds}; i=$((i+1)); echo "ACTORSTEP-IDLE: tick $i"; done

        """;

    [GeneratedRegex(@"^ActorStep gRPC API on (http://[^ ]+) ")]
    private static partial Regex GrpcLine();

    [DllImport("libc")]
    private static extern long sysconf(int name);

    private const int ScClkTck = 2;

    public async Task<int> RunAsync(string[] args)
    {
        int seconds = BenchArgs.Int(args, "--seconds", 10);
        int vi = Array.IndexOf(args, "--vcpus");
        int[] vcpuCounts = vi >= 0 && vi + 1 < args.Length ? args[vi + 1].Split(',').Select(int.Parse).ToArray() : [1, 4];
        var servers = new List<string>();
        for (int i = 0; i < args.Length - 1; i++) if (args[i] == "--server") servers.Add(args[i + 1]);
        if (servers.Count == 0) servers.Add(Path.Combine(AppContext.BaseDirectory, "actorstep.dll"));

        var assets = LinuxAssetsPaths();
        if (assets is null) return 1;
        string dir = Directory.CreateTempSubdirectory("actorstep-idle-").FullName;
        try
        {
            string initrd = Path.Combine(dir, "initrd.cpio");
            File.WriteAllBytes(initrd, LinuxInitramfs.Build(assets.Value.Busybox, IdleInit));
            Console.WriteLine($"idle: {Environment.ProcessorCount} cpus, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; "
                + $"serve --kernel with an /init that sleeps, printing a tick every {TickSeconds} s of its time; measured over {seconds} s of guest time from the first tick");
            foreach (string server in servers)
                foreach (int vcpus in vcpuCounts)
                {
                    Result r;
                    try { r = await Measure(server, assets.Value.Vmlinux, initrd, vcpus, seconds, BenchArgs.Int(args, "--minutes", 20)); }
                    catch (TimeoutException e)
                    {
                        // A server that never gets its guest idle is a figure too (what an idle VM cost before it was paced).
                        string last = e.Message.TrimEnd().Split('\n')[^1].Trim();
                        Console.WriteLine($"  {Short(server),-40} {vcpus} vcpu(s): {e.Message.Split('\n')[0]} (its console's last line: {last})");
                        continue;
                    }
                    Console.WriteLine($"  {Short(server),-40} {vcpus} vcpu(s): boot to the line {r.Boot.TotalSeconds,5:0.0} s; idle: server CPU "
                        + $"{r.CpuShare * 100,5:0.0} % of a core; guest/wall time {r.GuestPerWall:0.00} ({seconds} guest s in {r.Wall.TotalSeconds:0.0} s); vcpus seen in {r.Where}");
                }
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static string Short(string path) => path.Length <= 40 ? path : "…" + path[^39..];

    private static (string Vmlinux, string Busybox)? LinuxAssetsPaths()
    {
        string cache = Path.Combine(Environment.GetEnvironmentVariable("ACTORSTEP_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep"), "linux");
        string vmlinux = Path.Combine(cache, "vmlinux"), busybox = Path.Combine(cache, "busybox");
        if (File.Exists(vmlinux) && File.Exists(busybox)) return (vmlinux, busybox);
        Console.Error.WriteLine($"no kernel or busybox in {cache}: run scripts/fetch-linux");
        return null;
    }

    private sealed record Result(TimeSpan Boot, double CpuShare, double GuestPerWall, TimeSpan Wall, string Where);

    /// <summary>Where the vcpus were, sampled every 500 ms while the guest idles (the functions each was seen in, most often first):
    /// an idle guest's are the idle loop's H_CEDE.</summary>
    private static async Task<string> Where(GrpcChannel channel, string vmId, CancellationToken until)
    {
        var vms = new Vms.VmsClient(channel);
        var seen = new Dictionary<string, int>();
        while (!until.IsCancellationRequested)
        {
            foreach (var v in (await vms.GetVmAsync(new GetVmRequest { VmId = vmId })).Vcpus)
            {
                string f = v.Symbol is { Length: > 0 } s ? s.Split('+')[0] : $"0x{v.Nip:x}";
                seen[f] = seen.GetValueOrDefault(f) + 1;
            }
            try { await Task.Delay(500, until); } catch (OperationCanceledException) { }
        }
        return string.Join(", ", seen.OrderByDescending(kv => kv.Value).Take(4).Select(kv => $"{kv.Key} {kv.Value}"));
    }

    private static async Task<Result> Measure(string dll, string vmlinux, string initrd, int vcpus, int seconds, int bootMinutes)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])[dll, "serve", "--kernel", vmlinux, "--initrd", initrd, "--vcpus", $"{vcpus}", "--grpc", "127.0.0.1:0", "--no-auth"])
            psi.ArgumentList.Add(a);
        using var process = new Process { StartInfo = psi };
        var address = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new StringBuilder();
        void Line(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (GrpcLine().Match(line) is { Success: true } g) address.TrySetResult(g.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            string url;
            try { url = await address.Task.WaitAsync(TimeSpan.FromSeconds(60)); }
            catch (TimeoutException) { throw new InvalidOperationException($"serve did not start:\n{output}"); }
            using var channel = GrpcChannel.ForAddress(url);
            var vmId = (await new Vms.VmsClient(channel).ListVmsAsync(new ListVmsRequest())).Vms.Single().VmId;
            var run = new RunControl.RunControlClient(channel);
            using var events = new Events.EventsClient(channel).StreamEvents(new StreamEventsRequest { VmId = vmId });
            var clock = Stopwatch.StartNew();
            var continued = run.ContinueAsync(new ContinueRequest { VmId = vmId });
            var console = new StringBuilder();
            using var until = new CancellationTokenSource(TimeSpan.FromMinutes(bootMinutes));
            async Task WaitFor(string line)
            {
                // A whole line (tick 1 is not tick 10), as the tty ends it.
                while (!console.ToString().Contains(line + "\n", StringComparison.Ordinal) && !console.ToString().Contains(line + "\r", StringComparison.Ordinal))
                {
                    bool next;
                    try { next = await events.ResponseStream.MoveNext(until.Token); }
                    catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
                    {
                        throw new TimeoutException($"no \"{line}\" within {clock.Elapsed.TotalSeconds:0} s; the console so far:\n{console}");
                    }
                    if (!next) throw new InvalidOperationException($"events ended:\n{console}");
                    if (events.ResponseStream.Current.Console is { } c) console.Append(Encoding.ASCII.GetString(c.Data.Span));
                    if (events.ResponseStream.Current.Stopped is { } s) throw new InvalidOperationException($"the VM stopped: {s.Event}\n{console}");
                }
            }
            await WaitFor(IdleLine);
            var boot = clock.Elapsed;
            await WaitFor("ACTORSTEP-IDLE: tick 1");
            long cpu0 = CpuTicks(process.Id);
            var wall = Stopwatch.StartNew();
            using var sample = new CancellationTokenSource();
            var where = Where(channel, vmId, sample.Token);
            await WaitFor($"ACTORSTEP-IDLE: tick {1 + seconds / TickSeconds}");
            sample.Cancel();
            var positions = await where;
            long cpu1 = CpuTicks(process.Id);
            double elapsed = wall.Elapsed.TotalSeconds;
            double cpu = (cpu1 - cpu0) / (double)sysconf(ScClkTck);

            await run.HaltAsync(new HaltRequest { VmId = vmId });
            try { await continued; } catch (RpcException) { }
            return new Result(boot, cpu / elapsed, seconds / TickSeconds * TickSeconds / elapsed, wall.Elapsed, positions);
        }
        finally
        {
            try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(10_000);
        }
    }

    /// <summary>utime + stime of a process, in clock ticks (proc(5): fields 14 and 15, after the parenthesised command name).</summary>
    private static long CpuTicks(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11]) + long.Parse(fields[12]);
    }
}
