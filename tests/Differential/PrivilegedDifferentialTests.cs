using System.Buffers.Binary;
using System.Security.Cryptography;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Differential;

/// <summary>
/// Part 2 of issue 7: bare-metal images (tests/Differential/guests) run on <c>qemu-system-ppc64 -M powernv
/// -bios IMAGE</c> and on the machine; each logs what it sees (interrupt entry and return, MSR writes, rfid
/// into little-endian code, self-tracing, the decrementer, SPR round trips) and the logs must be equal once
/// QEMU's known departures (<see cref="PowerNvDepartures"/>) are mapped.
/// </summary>
public sealed class PrivilegedDifferentialTests
{
    private static readonly string CacheDir = Path.Combine(Path.GetTempPath(), "actorstep-differential");

    /// <summary>One log entry of an image: {tag, a, b, c}, big-endian doublewords.</summary>
    internal readonly record struct LogEntry(ulong Tag, ulong A, ulong B, ulong C)
    {
        public override string ToString() => $"{Tag,5:x} {A:x16} {B:x16} {C:x16}";
    }

    /// <summary>
    /// The log format of privileged-be.s: for each tag, which of a/b/c are MSR images (mfmsr, an SRR1 saved at
    /// interrupt entry, the MSR inside a handler). Only these get <see cref="PowerNvDepartures.HypervisorStateMsrImage"/>.
    /// </summary>
    private static readonly Dictionary<ulong, (bool A, bool B, bool C)> MsrImageFields = new()
    {
        [0x1] = (true, false, false),   // MSR at reset (PowerNvDepartures.ResetMsr)
        [0x2] = (true, false, false),   // MSR after rfid set ME
        [0x3] = (false, false, false),  // SRR0, SRR1 as written (a plain SPR value), SPRG0
        [0x4] = (false, false, false),  // SPRG1-3
        [0x5] = (true, true, false),    // mtmsrd L=1 with all ones, then with zero
        [0x6] = (true, true, true),     // mtmsrd L=0: FP on; SF only (ME/LE kept); restored
        [0x7] = (false, false, false),  // r3 after sc
        [0x8] = (false, false, false),  // r5 after traps
        [0x9] = (false, true, false),   // r3 and the MSR seen by little-endian code
        [0xA] = (false, false, false),  // r5, r6 computed by the traced code
        [0xB] = (true, false, false),   // MSR after the decrementer handler
        [0xE0F] = (false, false, false),
        [0xBAD] = (false, false, false),// unexpected vector: vector, SRR0, SRR1 raw
        [0x700] = (false, true, true),  // program: SRR0, SRR1, MSR in handler
        [0x900] = (false, true, true),  // decrementer
        [0xC00] = (false, true, true),  // system call
        [0xD00] = (false, true, true),  // trace
    };

    [Fact]
    public void InterruptsMsrWritesTracingAndSprsLogTheSameOnQemuPowerNvAndOnTheMachine()
    {
        var (elf, bin) = Build("privileged-be.s");
        var image = ElfImage.Load(elf);
        Assert.Equal(PowerNvDepartures.ResetAddress, image.Entry);
        ulong traced = image.Symbol("traced"), tracedEnd = image.Symbol("traced_end");
        Assert.True(traced >= PowerNvDepartures.TraceSkipsVectorArea.To || tracedEnd < PowerNvDepartures.TraceSkipsVectorArea.From,
            "traced code must lie outside the range QEMU 7.2 does not trace");

        var qemu = RunOnQemu(bin, image).Select(Normalize).ToList();
        var machine = RunOnMachine(image);

        Assert.True(machine.Count > 10, "the image logged too little:\n" + string.Join("\n", machine));
        Assert.DoesNotContain(machine, e => e.Tag == 0xBAD);
        Assert.Equal(string.Join("\n", qemu), string.Join("\n", machine));
    }

    private static LogEntry Normalize(LogEntry e)
    {
        if (!MsrImageFields.TryGetValue(e.Tag, out var f)) return e;
        ulong Fix(ulong v, bool isMsr) => isMsr ? PowerNvDepartures.HypervisorStateMsrImage(v) : v;
        var n = new LogEntry(e.Tag, Fix(e.A, f.A), Fix(e.B, f.B), Fix(e.C, f.C));
        if (e.Tag == 0x1) n = n with { A = PowerNvDepartures.ResetMsr(e.A) };
        if (e.Tag == 0xD00) n = n with { B = PowerNvDepartures.TraceSrr1(n.B) };
        return n;
    }

    private static List<LogEntry> RunOnQemu(string bin, ElfImage image)
    {
        using var qemu = QemuTarget.StartPowerNv(bin);
        qemu.InsertBreakpoint(image.Symbol("end"));
        string stop = qemu.Continue(TimeSpan.FromSeconds(30));
        Assert.StartsWith("T05", stop);
        return Parse(qemu.ReadMemory(image.Symbol("log"), 0x1000));
    }

    private static List<LogEntry> RunOnMachine(ElfImage image)
    {
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vcpu = vm.GetVcpu(0);
        ulong end = image.Symbol("end");
        for (int n = 0; vcpu.GetRegisters().Nip != end; n++)
        {
            Assert.True(n < 1_000_000, "the image did not reach end on the machine");
            var exit = vcpu.Run(1);
            Assert.True(exit.Reason == ExitReason.BudgetExpired, $"machine exited with {exit}");
        }
        var log = new byte[0x1000];
        vm.ReadMemory(image.Symbol("log"), log);
        return Parse(log);
    }

    private static List<LogEntry> Parse(byte[] log)
    {
        var list = new List<LogEntry>();
        for (int i = 0; i + 32 <= log.Length; i += 32)
        {
            ulong U(int k) => BinaryPrimitives.ReadUInt64BigEndian(log.AsSpan(i + 8 * k));
            if (U(0) == 0) break;
            list.Add(new LogEntry(U(0), U(1), U(2), U(3)));
        }
        return list;
    }

    /// <summary>The image sources live beside this file; the test binary finds them by walking up to the repository.</summary>
    private static string SourcePath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Differential", "guests", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"tests/Differential/guests/{name} not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Assembles a big-endian image linked at 0: the ELF for the machine and its raw binary for -bios.</summary>
    private static (string Elf, string Bin) Build(string name)
    {
        string source = SourcePath(name);
        Directory.CreateDirectory(CacheDir);
        string key = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(source)))[..24];
        string elf = Path.Combine(CacheDir, key + ".elf"), bin = Path.Combine(CacheDir, key + ".bin");
        if (File.Exists(elf) && File.Exists(bin)) return (elf, bin);
        string tmp = Path.Combine(CacheDir, $"{key}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        GuestAssembler.Run(GuestAssembler.Tool(false, "as"), $"-a64 -mpower9 -mbig -mregnames -o {tmp}.o {source}");
        GuestAssembler.Run(GuestAssembler.Tool(false, "ld"), $"-nostdlib -static --build-id=none --no-warn-rwx-segments -N -e _start -Ttext=0 -o {tmp}.elf {tmp}.o");
        GuestAssembler.Run(GuestAssembler.Tool(false, "objcopy"), $"-O binary {tmp}.elf {tmp}.bin");
        File.Move(tmp + ".bin", bin, overwrite: true);
        File.Move(tmp + ".elf", elf, overwrite: true);
        File.Delete(tmp + ".o");
        return (elf, bin);
    }
}
