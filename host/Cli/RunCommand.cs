using System.Text.Json;
using System.Text.Json.Nodes;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Hypervisor;

namespace ActorStep.Host.Cli;

/// <summary><c>actorstep run</c>: the guest with no debugger; final state as JSON on stdout.</summary>
public static class RunCommand
{
    public static System.CommandLine.Command Definition() => CommandLine.Define("run",
        "Run a guest with no debugger and print its final state as JSON (or boot a Linux kernel: --kernel). " +
        "Exit codes: 0, 1 bad input, 2 usage error, 3 a checkstopped guest.",
        ExecuteAsync,
        CommandLine.Value("--image", "FILE", "an ELF guest image (a regular file of at most 256 MiB); default: the built-in demo guest. Its console streams to stderr, the JSON state to stdout"),
        CommandLine.Value("--kernel", "VMLINUX", "a ppc64le Linux kernel (ELF) to boot as kexec enters it (a device tree built here, vcpu 0 at the entry, the others held for RTAS start-cpu); its console streams to stdout"),
        GuestOptions.Initrd(),
        GuestOptions.Append(),
        CommandLine.Flag("--state", "with --kernel: print the JSON state after the run too"),
        CommandLine.Flag("--no-vmx", "with --kernel: leave VMX/VSX out of the device tree"),
        GuestOptions.Vcpus(),
        CommandLine.Value("--memory", "MIB", "guest RAM in MiB, 1..2047 (default 128; 256 with --kernel)"),
        CommandLine.Value("--max-instructions", "K", "stop each vcpu after K instructions (default: until the guest stops)"),
        CommandLine.Flag("--deterministic", "run all vcpus on one thread in a fixed interleaving"),
        CommandLine.Many("--dump-memory", "ADDR:LEN", "add a range of guest memory (real address, 1..1048576 bytes) to the JSON, as hex"));

    public static Task<int> ExecuteAsync(ArgReader args)
    {
        string? imagePath = args.String("--image");
        string? kernelPath = args.String("--kernel");
        string? initrdPath = args.String("--initrd");
        string? append = args.String("--append");
        bool printState = args.Flag("--state");
        bool noVector = args.Flag("--no-vmx");
        if (kernelPath is not null && imagePath is not null) throw new UsageException("--kernel and --image exclude each other");
        if (kernelPath is null && ((initrdPath ?? append) is not null || noVector)) throw new UsageException("--initrd, --append and --no-vmx need --kernel");
        int vcpus = GuestOptions.ReadVcpus(args);
        ulong memory = (ulong)(args.Long("--memory", 1, 2047) ?? (kernelPath is null ? 128 : 256)) << 20;
        long? max = args.Long("--max-instructions", 0, long.MaxValue);
        bool deterministic = args.Flag("--deterministic");
        var dumps = args.All("--dump-memory").Select(ParseRange).ToList();

        ElfImage image;
        SimulatedMachine vm;
        try
        {
            if (kernelPath is not null)
            {
                image = ElfImage.Load(kernelPath);
                byte[]? initrd = initrdPath is null ? null : LinuxBootRequest.ReadInitrd(initrdPath);
                // The deterministic mode fixes the real-time clock too: the kernel prints the date it reads.
                vm = new SimulatedMachine(new MachineOptions(vcpus, memory, RealTimeClock: deterministic ? DeterministicClock : null));
                LinuxBoot.Load(vm, new LinuxBootRequest(image, initrd, append ?? LinuxBootRequest.DefaultBootargs, AdvertiseVector: !noVector),
                    MachineOptions.TimebaseFrequency);
            }
            else
            {
                image = imagePath is null ? ElfImage.BuiltIn("demo") : ElfImage.Load(imagePath);
                vm = SimulatedMachine.Load(image, new MachineOptions(vcpus, memory));
            }
        }
        catch (Exception e) when (e is ElfFormatException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"actorstep: {e.Message}");
            return Task.FromResult(1);
        }
        foreach (var (addr, len) in dumps)
            if (!vm.Memory.Contains(addr, len))
            {
                Console.Error.WriteLine($"actorstep: --dump-memory 0x{addr:x}:{len} is outside guest memory (0x{vm.MemorySize:x} bytes)");
                return Task.FromResult(2);
            }

        // A kernel's console is the output (stdout); a test guest's console is commentary beside the JSON state (stderr).
        var consoleStream = kernelPath is not null ? Console.OpenStandardOutput() : Console.OpenStandardError();
        var consoleLock = new object();
        vm.ConsoleOutput += (_, bytes) => { lock (consoleLock) { consoleStream.Write(bytes); consoleStream.Flush(); } };

        if (kernelPath is not null) FeedConsoleInput(vm);
        // Where a guest runs into the machine's edge, named as it happens (an illegal word disassembled).
        vm.MissingFeatureMet += m => Console.Error.WriteLine(m.Kind == "instruction"
            ? $"actorstep: missing {m} {ActorStep.Isa.Disassembler.Format((uint)m.Value, m.Nip)}"
            : $"actorstep: missing {m}");

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        RunResult result;
        try
        {
            result = MachineRunner.Run(vm, new RunOptions { MaxInstructions = max, Deterministic = deterministic }, cts.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        if (kernelPath is null || printState)
        {
            var json = StateJson(vm, result, dumps);
            // Relaxed escaping: a symbol reads `start_kernel+0x4c` as a person types it, not `start_kernel\u002B0x4c` (the JSON is
            // for a terminal or a parser, never embedded in HTML).
            var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            lock (consoleLock) Console.Out.WriteLine(json.ToJsonString(options));
        }
        if (kernelPath is not null && vm.Halt is { } halt) Console.Error.WriteLine($"actorstep: {halt.Detail}");
        // 3: the guest cannot go on (a checkstop, or a kernel that panicked and said so through RTAS ibm,os-term).
        bool failed = result.Vcpus.Any(v => v.Reason == "checkstop") || vm.Halt?.Status == MachineHalt.OsTerm;
        return Task.FromResult(failed ? 3 : 0);
    }

    /// <summary>The date RTAS get-time-of-day starts from in the deterministic mode.</summary>
    public static readonly DateTimeOffset DeterministicClock = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>stdin becomes the guest console's input (H_GET_TERM_CHAR), read on a background thread until it ends.</summary>
    private static void FeedConsoleInput(SimulatedMachine vm)
    {
        var thread = new Thread(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                int n;
                while ((n = stdin.Read(buffer)) > 0) vm.WriteConsoleInput(buffer.AsSpan(0, n));
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
        }) { IsBackground = true, Name = "console-input" };
        thread.Start();
    }

    private static (ulong Address, ulong Length) ParseRange(string s)
    {
        int colon = s.IndexOf(':');
        if (colon <= 0 || !ArgReader.ParseNumber(s[..colon], out ulong addr) || !ArgReader.ParseNumber(s[(colon + 1)..], out ulong len)
            || len == 0 || len > 1 << 20)
            throw new UsageException($"--dump-memory wants ADDR:LEN (real address, 1..1048576 bytes), not '{s}'");
        return (addr, len);
    }

    private static string Hex(ulong v) => $"0x{v:x16}";

    public static JsonObject StateJson(SimulatedMachine vm, RunResult result, IReadOnlyList<(ulong Address, ulong Length)> dumps)
    {
        var vcpus = new JsonArray();
        for (int i = 0; i < vm.VcpuCount; i++)
        {
            var s = vm.GetVcpu(i).GetRegisters();
            var o = result.Vcpus[i];
            vcpus.Add(new JsonObject
            {
                ["vcpu"] = i,
                ["state"] = o.Reason,
                ["status"] = o.Status,
                ["detail"] = o.Detail,
                ["nip"] = Hex(s.Nip),
                ["symbol"] = vm.Symbols?.Describe(s.Nip, (s.Msr & ActorStep.Isa.Msr.IR) != 0),
                ["msr"] = Hex(s.Msr),
                ["gpr"] = new JsonArray(s.Gpr.Select(g => (JsonNode)Hex(g)).ToArray()),
                ["cr"] = $"0x{s.Cr:x8}",
                ["lr"] = Hex(s.Lr),
                ["ctr"] = Hex(s.Ctr),
                ["xer"] = Hex(s.Xer),
                ["srr0"] = Hex(s.Srr0),
                ["srr1"] = Hex(s.Srr1),
                ["sprg"] = new JsonArray(s.Sprg.Select(g => (JsonNode)Hex(g)).ToArray()),
                ["dec"] = $"0x{s.Dec:x8}",
                ["lpcr"] = Hex(s.Lpcr),
                ["instructions"] = o.Instructions,
            });
        }
        var memory = new JsonArray();
        foreach (var (addr, len) in dumps)
        {
            var bytes = new byte[len];
            vm.ReadMemory(addr, bytes);
            memory.Add(new JsonObject { ["address"] = Hex(addr), ["length"] = len, ["hex"] = Convert.ToHexStringLower(bytes) });
        }
        return new JsonObject
        {
            ["vcpus"] = vcpus,
            ["memory"] = memory,
            ["elapsed_ms"] = Math.Round(result.Elapsed.TotalMilliseconds, 1),
        };
    }
}
