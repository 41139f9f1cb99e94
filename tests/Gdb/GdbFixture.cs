using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using ActorStep.Host.Server;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorStep.Tests.Gdb;

/// <summary>The gdb end-to-end tests share one server; they run one after the other (gdb and the guests compete for cpus).</summary>
[CollectionDefinition("gdb")]
public sealed class GdbCollection : ICollectionFixture<GdbFixture>;

/// <summary>A real server on a free loopback port (in this process), VMs per test, a bridge per VM, and gdb-multiarch.</summary>
public sealed class GdbFixture : IAsyncLifetime
{
    private RunningServer? _server;
    private int _vms;

    public GrpcChannel Channel { get; private set; } = null!;
    public RunningServer Server => _server ?? throw new InvalidOperationException("not started");
    public Vms.VmsClient Vms => new(Channel);
    public RunControl.RunControlClient Run => new(Channel);
    public Api.V1.Registers.RegistersClient Registers => new(Channel);

    public static DateTime Deadline => DateTime.UtcNow.AddSeconds(15);

    public async Task InitializeAsync()
    {
        _server = await ServerHost.StartAsync(new ServerOptions
        {
            Grpc = new IPEndPoint(IPAddress.Loopback, 0), CreateInitialVm = false, HandleSignals = false, RequireToken = false, ImageDirectories = [Path.GetTempPath(), Support.LinuxAssets.CacheDirectory],
            LogLevel = Serilog.Events.LogEventLevel.Warning,
        });
        Channel = GrpcChannel.ForAddress(_server.Address);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>A fresh VM halted at its entry.</summary>
    public Vm NewVm(string builtIn = "demo", uint vcpus = 4) =>
        Vms.CreateVm(new CreateVmRequest { BuiltIn = builtIn, Vcpus = vcpus, MemorySize = 16 << 20, VmId = $"g{Interlocked.Increment(ref _vms)}-{builtIn}" },
            deadline: Deadline);

    public Vm GetVm(string vmId) => Vms.GetVm(new GetVmRequest { VmId = vmId }, deadline: Deadline);

    /// <summary>The bridge `actorstep serve --gdb` starts: inside the server, its calls straight to the server's router.</summary>
    public Task<GdbBridge> StartBridgeAsync(string vmId) =>
        Server.StartGdbBridgeAsync(vmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance);

    /// <summary>The remote bridge (<paramref name="remote"/>) or the in-process one.</summary>
    public Task<GdbBridge> StartBridgeAsync(string vmId, bool remote) => remote ? StartRemoteBridgeAsync(vmId) : StartBridgeAsync(vmId);

    /// <summary>The bridge `actorstep gdb --server …` starts: a gRPC client of the server.</summary>
    public Task<GdbBridge> StartRemoteBridgeAsync(string vmId) =>
        GdbBridge.StartAsync(Channel, vmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance);

    /// <summary>Path of a committed guest image (machine/guests/NAME.elf).</summary>
    public static string GuestElf(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "machine", "guests", name + ".elf");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"machine/guests/{name}.elf not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>gdb-multiarch in batch mode against a bridge; killed (with its children) if it outlives its timeout.</summary>
public sealed class GdbProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout, _stderr;

    /// <param name="beforeConnect">settings gdb needs before <c>target remote</c> (<c>set non-stop on</c>)</param>
    public GdbProcess(IPEndPoint bridge, string? elf, bool littleEndian, IEnumerable<string> commands, IEnumerable<string>? beforeConnect = null)
    {
        var psi = new ProcessStartInfo("gdb-multiarch") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        var args = new List<string> { "-nx", "-batch" };
        if (elf is not null) args.Add(elf);
        args.AddRange(["-ex", "set architecture powerpc:common64", "-ex", $"set endian {(littleEndian ? "little" : "big")}",
            "-ex", "set pagination off", "-ex", "set confirm off",
            // gdb waits 2 s for a reply by default, as long as the bridge holds a second gdb before refusing it: on a loaded
            // machine the refusal then comes too late and gdb reports a timeout instead of the bridge's reason.
            "-ex", "set remotetimeout 10"]);
        foreach (var c in beforeConnect ?? []) { args.Add("-ex"); args.Add(c); }
        args.AddRange(["-ex", $"target remote {bridge.Address}:{bridge.Port}"]);
        foreach (var c in commands) { args.Add("-ex"); args.Add(c); }
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start gdb-multiarch");
        _stdout = _process.StandardOutput.ReadToEndAsync();
        _stderr = _process.StandardError.ReadToEndAsync();
    }

    public static async Task<string> RunAsync(IPEndPoint bridge, string? elf, bool littleEndian, params string[] commands)
    {
        using var gdb = new GdbProcess(bridge, elf, littleEndian, commands);
        return await gdb.OutputAsync(TimeSpan.FromSeconds(20));
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for gdb to finish; on timeout kills it and fails with what it printed so far.</summary>
    public async Task<string> OutputAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            Kill();
            throw new TimeoutException($"gdb did not finish within {timeout}:\n{await _stdout}{await _stderr}");
        }
        return await _stdout + await _stderr;
    }

    /// <summary>SIGKILL: gdb vanishes without detaching.</summary>
    public void Kill()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
    }

    public void Dispose()
    {
        if (!_process.HasExited) Kill();
        _process.Dispose();
    }
}

/// <summary>An image's disassembly by binutils' objdump: address → instruction text.</summary>
public sealed class Disassembly
{
    private static readonly Regex Line = new(@"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} ){4})\s*\t(.*)$", RegexOptions.Multiline);

    public Dictionary<ulong, string> Instructions { get; } = [];
    /// <summary>address → the instruction word (in the image's byte order, as the decoder reads it).</summary>
    public Dictionary<ulong, uint> Words { get; } = [];
    public Dictionary<string, ulong> Symbols { get; } = [];

    public static Disassembly Of(string elf, bool littleEndian)
    {
        var d = new Disassembly();
        string tools = littleEndian ? "powerpc64le-linux-gnu-" : "powerpc64-linux-gnu-";
        foreach (Match m in Line.Matches(Support.GuestAssembler.Run(tools + "objdump", $"-d -z {elf}").Replace("\r", "")))
        {
            ulong address = Convert.ToUInt64(m.Groups[1].Value, 16);
            d.Instructions[address] = Normalize(m.Groups[3].Value);
            byte[] bytes = Convert.FromHexString(m.Groups[2].Value.Replace(" ", "")); // file order
            d.Words[address] = littleEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes)
                : System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
        }
        foreach (var line in Support.GuestAssembler.Run(tools + "nm", elf).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            if (parts.Length == 3) d.Symbols.TryAdd(parts[2], Convert.ToUInt64(parts[0], 16));
        }
        return d;
    }

    /// <summary>Mnemonic and operands with single spaces, without objdump's branch-target comments.</summary>
    public static string Normalize(string text)
    {
        int lt = text.IndexOf(" <", StringComparison.Ordinal);
        if (lt >= 0) text = text[..lt];
        return Regex.Replace(text.Trim(), @"\s+", " ");
    }
}
