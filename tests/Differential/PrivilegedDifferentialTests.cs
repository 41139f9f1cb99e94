using System.Buffers.Binary;
using System.Security.Cryptography;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Differential;

/// <summary>
/// Part 2 of issue 7: bare-metal images (tests/Differential/guests) run on <c>qemu-system-ppc64 -M powernv9
/// -bios IMAGE</c> (POWER9, as the machine models, in every QEMU version) and on the machine; each logs what it sees (interrupt entry and return, MSR writes, rfid
/// into little-endian code, self-tracing, the decrementer, SPR round trips, privileged and illegal
/// instructions from problem and supervisor state, DSI with SRR0/SRR1/DAR/DSISR) and the logs must be equal
/// once QEMU's known departures and the platform differences (<see cref="PowerNvDepartures"/>) are mapped.
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
        [0xC] = (false, false, false),  // r5 after an illegal instruction in supervisor state
        [0xD] = (false, true, false),   // r5 and the MSR after the supervisor DSIs (DR=1)
        [0xE] = (true, false, false),   // MSR back in supervisor state; r6, r9 from problem state
        [0xF] = (false, false, false),  // the word stored in problem state; r5
        [0xE0F] = (false, false, false),
        [0x10] = (false, false, false), // r3 after the scv section, SRR0 and SRR1 (scv leaves them alone)
        [0xF60] = (false, true, false), // facility unavailable (scv disabled): SRR0, SRR1, FSCR
        [0x1700] = (false, true, true), // scv 0: LR, CTR (the MSR at scv), MSR in the handler
        [0x1720] = (false, true, true), // scv 1
        [0xBAD] = (false, false, false),// unexpected vector: vector, SRR0, SRR1 raw
        [0x300] = (false, true, true),  // DSI: SRR0, SRR1, MSR in handler
        [0x301] = (false, false, false),// DSI: DAR, DSISR
        [0x700] = (false, true, true),  // program: SRR0, SRR1, MSR in handler
        [0x900] = (false, true, true),  // decrementer
        [0xC00] = (false, true, true),  // system call
        [0xD00] = (false, true, true),  // trace
    };

    /// <summary>SRR1 bits of a program interrupt (Book III §6.5.9): 44 illegal, 45 privileged.</summary>
    private const ulong Srr1Illegal = 0x80000, Srr1Privileged = 0x40000;

    [Fact]
    public void InterruptsMsrWritesTracingAndSprsLogTheSameOnQemuPowerNvAndOnTheMachine()
    {
        var (elf, bin) = Build("privileged-be.s");
        var image = ElfImage.Load(elf);
        Assert.Equal(PowerNvDepartures.ResetAddress, image.Entry);
        ulong traced = image.Symbol("traced"), tracedEnd = image.Symbol("traced_end");
        Assert.True(traced >= PowerNvDepartures.TraceSkipsVectorArea.To || tracedEnd < PowerNvDepartures.TraceSkipsVectorArea.From,
            "traced code must lie outside the range QEMU 7.2 does not trace");

        var (qemuLog, heai) = RunOnQemu(bin, image);
        var qemu = qemuLog.Select(Normalize).ToList();
        var (machine, machineHeai) = RunOnMachine(image);

        Assert.True(machine.Count > 10, "the image logged too little:\n" + string.Join("\n", machine));
        Assert.DoesNotContain(machine, e => e.Tag == 0xBAD);
        AssertSameLog(qemu, machine);
        AssertCoverage(image, machine);

        // The illegal instructions reached QEMU as Hypervisor Emulation Assistance interrupts (Book III
        // §6.5.19: HSRR0 = the instruction, HSRR1 = the MSR with bits 33:36 and 42:47 zero), which the image
        // reflected as KVM does; the machine (a KVM guest) never sees one.
        // PowerNvDepartures.KvmReflectedSrr1 documents the reflection; QEMU's log must show exactly it.
        Assert.Empty(machineHeai);
        Assert.Equal([image.Symbol("illegal_sv"), image.Symbol("illegal_pr")], heai.Select(h => h.Hsrr0));
        Assert.All(heai, h => Assert.Equal(0UL, h.Hsrr1 & Msr.PartialFunctionBits));
        Assert.All(heai, h => Assert.Single(qemuLog, e => e.Tag == 0x700 && e.A == h.Hsrr0 && e.B == PowerNvDepartures.KvmReflectedSrr1(h.Hsrr1)));
    }

    /// <summary>Equal logs, or a failure that shows both in full with the differing entries marked.</summary>
    private static void AssertSameLog(List<LogEntry> qemu, List<LogEntry> machine)
    {
        if (qemu.SequenceEqual(machine)) return;
        var lines = new List<string> { "      QEMU powernv9 (departures mapped)                       | machine" };
        for (int i = 0; i < Math.Max(qemu.Count, machine.Count); i++)
        {
            string q = i < qemu.Count ? qemu[i].ToString() : "", m = i < machine.Count ? machine[i].ToString() : "";
            lines.Add($"{(q == m ? "  " : "! ")}{i,3} {q,-56} | {m}");
        }
        Assert.Fail("the logs differ:\n" + string.Join("\n", lines));
    }

    /// <summary>
    /// The image exercises what the comparison is for: each privileged instruction of user_code, each
    /// illegal word and each DSI shows up in the (machine's) log with the SRR0, SRR1 bits, DAR and DSISR the
    /// ISA gives (Book III §6.5.3, §6.5.9) — so an image that silently skipped a section cannot pass.
    /// </summary>
    private static void AssertCoverage(ElfImage image, List<LogEntry> log)
    {
        ulong userCode = image.Symbol("user_code"), illegalPr = image.Symbol("illegal_pr");
        var privileged = log.Where(e => e.Tag == 0x700 && (e.B & Srr1Privileged) != 0).Select(e => e.A).ToList();
        Assert.Equal(Enumerable.Range(0, (int)(illegalPr - userCode) / 4).Select(k => userCode + 4 * (ulong)k), privileged);
        Assert.All(log.Where(e => e.Tag == 0x700 && (e.B & Srr1Privileged) != 0),
            e => Assert.Equal(Msr.PR | Msr.EE | Msr.IR | Msr.DR, e.B & (Msr.PR | Msr.EE | Msr.IR | Msr.DR)));

        var illegal = log.Where(e => e.Tag == 0x700 && (e.B & Srr1Illegal) != 0).Select(e => e.A);
        Assert.Equal([image.Symbol("illegal_sv"), illegalPr], illegal);

        // scv (Book III, System Call Vectored interrupt): disabled by FSCR, a Facility Unavailable at the scv with FSCR[IC] = 12;
        // enabled, LR = the next instruction and the handler at 0x17000 + LEV×0x20, SRR0/SRR1 as they were; rfscv comes back.
        Assert.Single(log, e => e.Tag == 0xF60 && e.A == image.Symbol("scv_disabled") && e.C >> 56 == 12);
        Assert.Equal([image.Symbol("scv_0") + 4, image.Symbol("scv_1") + 4], log.Where(e => e.Tag is 0x1700 or 0x1720).Select(e => e.A));
        Assert.Single(log, e => e.Tag == 0x10 && e.A == 7 + 1 + 0x100 && e.B == 0x5550 && e.C == 0x5550);

        var dsi = log.Select((e, i) => (e, i)).Where(x => x.e.Tag == 0x300)
            .Select(x => (Srr0: x.e.A, Dar: log[x.i + 1].A, Dsisr: log[x.i + 1].B)).ToList();
        ulong q0 = PowerNvDepartures.UnmappedQuadrant0, q4 = PowerNvDepartures.UnmappedQuadrant4;
        Assert.Equal(
            [
                (image.Symbol("dsi_sv_load"), q0, 0x40000000UL), (image.Symbol("dsi_sv_store"), q0 + 4, 0x42000000UL),
                (image.Symbol("dsi_pr_load"), q0, 0x40000000UL), (image.Symbol("dsi_pr_store"), q0 + 8, 0x42000000UL),
                (image.Symbol("dsi_pr_load_q4"), q4, 0x40000000UL), (image.Symbol("dsi_pr_store_q4"), q4, 0x42000000UL),
            ], dsi);
    }

    private static LogEntry Normalize(LogEntry e)
    {
        if (!MsrImageFields.TryGetValue(e.Tag, out var f)) return e;
        ulong Fix(ulong v, bool isMsr) => isMsr ? PowerNvDepartures.HypervisorStateMsrImage(v) : v;
        var n = new LogEntry(e.Tag, Fix(e.A, f.A), Fix(e.B, f.B), Fix(e.C, f.C));
        if (e.Tag == 0x1) n = n with { A = PowerNvDepartures.ResetMsr(e.A) };
        if (e.Tag == 0xD00) n = n with { B = PowerNvDepartures.TraceSrr1(n.B, PowerNvDepartures.QemuVersion.Value) };
        return n;
    }

    private static (List<LogEntry> Log, List<(ulong Hsrr0, ulong Hsrr1)> Heai) RunOnQemu(string bin, ElfImage image)
    {
        using var qemu = QemuTarget.StartPowerNv(bin, PowerNvDepartures.Power9Machine);
        qemu.InsertBreakpoint(image.Symbol("end"));
        string stop = qemu.Continue(TimeSpan.FromSeconds(30));
        Assert.StartsWith("T05", stop);
        return (Parse(qemu.ReadMemory(image.Symbol("log"), 0x1000)), ParseHeai(qemu.ReadMemory(image.Symbol("heai_log"), 0x100)));
    }

    private static (List<LogEntry> Log, List<(ulong Hsrr0, ulong Hsrr1)> Heai) RunOnMachine(ElfImage image)
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
        var heai = new byte[0x100];
        vm.ReadMemory(image.Symbol("heai_log"), heai);
        return (Parse(log), ParseHeai(heai));
    }

    /// <summary>heai_log: a count, then {HSRR0, HSRR1} from offset 16 (big-endian doublewords).</summary>
    private static List<(ulong Hsrr0, ulong Hsrr1)> ParseHeai(byte[] raw)
    {
        ulong U(int offset) => BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(offset));
        int count = (int)Math.Min(U(0), (ulong)(raw.Length / 16 - 1));
        return Enumerable.Range(1, count).Select(k => (U(16 * k), U(16 * k + 8))).ToList();
    }

    internal static List<LogEntry> Parse(byte[] log)
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
    internal static (string Elf, string Bin) Build(string name)
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
