namespace ActorStep.Host.Cli;

/// <summary>The <c>actorstep</c> command: subcommands and their usage.</summary>
public static class CommandLine
{
    public const string Usage = """
        usage: actorstep <command> [options]

        commands:
          run    run a guest with no debugger and print its final state as JSON
                 [--image FILE] [--vcpus N] [--memory MIB] [--max-instructions K] [--deterministic]
                 [--dump-memory ADDR:LEN]...
                 With no --image, runs the built-in demo guest. Console output streams to stderr;
                 the final state (JSON) goes to stdout.
                 --kernel VMLINUX [--initrd FILE] [--append CMDLINE] [--state] [--no-vmx]: boots a ppc64le
                 Linux kernel as kexec enters it (a device tree built here, vcpu 0 at the entry, the others
                 started by RTAS start-cpu; 256 MiB unless --memory). The guest console streams to stdout,
                 stdin is its input; the JSON state follows only with --state. Exit code 0 when the guest
                 powers off, 3 on a checkstop or a kernel panic (RTAS ibm,os-term). --no-vmx leaves VMX/VSX
                 out of the device tree.
          serve  serve the gRPC API (HTTP/2 without TLS, loopback only) with one VM halted at its entry
                 [--image FILE | --kernel VMLINUX [--initrd FILE] [--append CMDLINE]] [--vcpus N] [--memory MIB]
                 [--grpc 127.0.0.1:PORT] [--gdb 127.0.0.1:PORT]
                 [--log-json] [--verbose] [--label K=V]...
                 [--cluster --node-name N [--cluster-port P] [--seed akka.tcp://actorstep@127.0.0.1:P]...]
                 [--qemu-gdb 127.0.0.1:PORT | unix:PATH]  [--qemu -- QEMU-ARGUMENTS...]
                 With no --image, serves the built-in demo guest; --kernel boots a Linux kernel (vcpu 0 halted at
                 its first instruction, the others not started until the kernel starts them; 256 MiB by default). --qemu-gdb attaches to a running QEMU's gdbstub
                 (which halts it) and serves that VM instead; --qemu starts qemu-system-ppc64 with the arguments
                 after -- (plus a private gdbstub, -S, -no-shutdown; its first serial port is the VM's console). --grpc defaults to 127.0.0.1:50051
                 (port 0 picks a free one); --gdb also starts a gdb bridge for that VM. With --cluster the
                 node joins an Akka.Cluster and any node's API serves any VM. Ctrl-C or SIGTERM stops it cleanly,
                 also while it starts (exit code 0): every VM is destroyed with its breakpoints removed and every
                 call and stream ends with a status (UNAVAILABLE "the server is shutting down"); a second one ends
                 it at once. Exit codes: 0 stopped, 1 could not start, 2 usage error.
          gdb    serve the GDB remote protocol for one VM of a running server (talks to it over gRPC only)
                 [--server http://127.0.0.1:50051] [--vm ID] [--listen 127.0.0.1:1234] [--verbose]
                 Each vcpu is a gdb thread; one gdb at a time (a second one is refused). With no --vm,
                 the server's only VM. Connect with:
                   gdb-multiarch -ex 'set architecture powerpc:common64' -ex 'target remote 127.0.0.1:1234'
        """;

    public static async Task<int> MainAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.Out.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            var rest = new ArgReader(args.AsSpan(1).ToArray());
            return args[0] switch
            {
                "run" => await RunCommand.ExecuteAsync(rest),
                "serve" => await ServeCommand.ExecuteAsync(rest),
                "gdb" => await GdbCommand.ExecuteAsync(rest),
                _ => throw new UsageException($"unknown command '{args[0]}'"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"actorstep: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }
}

/// <summary>A command line the user got wrong: reported with the usage text, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Reads <c>--name value</c> options; unknown or malformed options are usage errors.</summary>
public sealed class ArgReader
{
    private readonly List<(string Name, string? Value)> _options = new();

    public ArgReader(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                // Everything after a bare "--" belongs to another program (serve --qemu -- QEMU-ARGS…).
                Rest = args[(i + 1)..];
                break;
            }
            if (!a.StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"unexpected argument '{a}'");
            int eq = a.IndexOf('=');
            if (eq > 0) { _options.Add((a[..eq], a[(eq + 1)..])); continue; }
            bool takesValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            _options.Add((a, takesValue ? args[++i] : null));
        }
    }

    private readonly HashSet<string> _known = new();

    /// <summary>The arguments after a bare <c>--</c> (empty when there is none).</summary>
    public IReadOnlyList<string> Rest { get; private set; } = [];

    public string? String(string name)
    {
        _known.Add(name);
        var found = _options.LastOrDefault(o => o.Name == name);
        if (found.Name is null) return null;
        return found.Value ?? throw new UsageException($"{name} needs a value");
    }

    public IReadOnlyList<string> All(string name)
    {
        _known.Add(name);
        return _options.Where(o => o.Name == name)
            .Select(o => o.Value ?? throw new UsageException($"{name} needs a value")).ToList();
    }

    public bool Flag(string name)
    {
        _known.Add(name);
        var found = _options.Where(o => o.Name == name).ToList();
        if (found.Any(o => o.Value is not null)) throw new UsageException($"{name} takes no value");
        return found.Count > 0;
    }

    public long? Long(string name, long min, long max)
    {
        string? s = String(name);
        if (s is null) return null;
        if (!ParseNumber(s, out ulong v) || (long)v < min || (long)v > max)
            throw new UsageException($"{name} must be a number in {min}..{max}, not '{s}'");
        return (long)v;
    }

    /// <summary>Every option was consumed by some accessor; call after reading all of them.</summary>
    public void EnsureAllKnown()
    {
        var unknown = _options.Select(o => o.Name).Where(n => !_known.Contains(n)).Distinct().ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown option {string.Join(", ", unknown)}");
    }

    /// <summary>Decimal or 0x-prefixed hexadecimal.</summary>
    public static bool ParseNumber(string s, out ulong value)
    {
        s = s.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), System.Globalization.NumberStyles.HexNumber, null, out value);
        return ulong.TryParse(s, out value);
    }
}
