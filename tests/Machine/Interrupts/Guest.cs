using System.Buffers.Binary;
using System.Text;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Interrupts;

/// <summary>
/// A small machine whose every interrupt vector — real mode (0x300…0xD00), AIL=3 (0x4300…) and AIL=2
/// (0x18300…) — holds the debug word, so a run stops at the first instruction of whichever handler the
/// guest enters: the interrupt-entry state exactly as the step engine sees it. Handlers can be replaced
/// per address; the body starts at <see cref="Start"/> (<c>_start</c>).
/// </summary>
internal sealed class Guest
{
    /// <summary>The debug word as a directive: a stop point in guest code.</summary>
    public const string Bp = ".long 0x00dddd00";
    public const ulong Start = 0x20000;
    public const ulong Ail3Base = 0xC000000000004000;
    public const ulong Ail2Base = 0x18000;
    public static readonly int[] Vectors = [0x300, 0x400, 0x500, 0x600, 0x700, 0x800, 0x900, 0xC00, 0xD00, 0xF20, 0xF40];

    public const ulong Le = 0x8000000000001001; // SF|ME|LE: entry MSR of a little-endian image
    public const ulong Be = 0x8000000000001000; // SF|ME: entry MSR of a big-endian image

    public Guest(string body, bool littleEndian = true, IReadOnlyDictionary<ulong, string>? handlers = null,
        int vcpus = 1, HypervisorFlavour flavour = HypervisorFlavour.Hv, bool breakpoints = true, ulong memory = 1UL << 20,
        DateTimeOffset? clock = null)
    {
        Image = GuestAssembler.Build(Source(body, handlers), littleEndian, textAddress: 0);
        Vm = SimulatedMachine.Load(Image, new MachineOptions(vcpus, memory, flavour, RealTimeClock: clock));
        if (breakpoints)
            for (int i = 0; i < vcpus; i++) Vm.GetVcpu(i).SetGuestDebug(GuestDebug.SoftwareBreakpoints);
    }

    public ElfImage Image { get; }
    public SimulatedMachine Vm { get; }
    public IVcpu Vcpu => Vm.GetVcpu(0);
    public VcpuState State => Vcpu.GetRegisters();
    public ulong Sym(string name) => Image.Symbol(name);

    public static string Source(string body, IReadOnlyDictionary<ulong, string>? handlers)
    {
        var at = new SortedDictionary<ulong, string>();
        foreach (ulong b in new ulong[] { 0, Ail3Base & 0xFFFF, Ail2Base })
            foreach (int v in Vectors) at[b + (ulong)v] = "    " + Bp;
        if (handlers is not null)
            foreach (var (a, code) in handlers) at[a] = code;
        var sb = new StringBuilder();
        sb.AppendLine("    .globl _start");
        sb.AppendLine("    b _start");
        foreach (var (a, code) in at)
        {
            sb.AppendLine($"    .org 0x{a:x}");
            sb.AppendLine(code);
        }
        sb.AppendLine($"    .org 0x{Start:x}");
        sb.AppendLine("_start:");
        sb.AppendLine(body);
        return sb.ToString();
    }

    /// <summary>Runs vcpu 0 until it exits; asserts that it stopped at a debug word and returns the address.</summary>
    public ulong RunToBreak(long budget = 100_000) => RunToBreak(Vcpu, budget);

    public static ulong RunToBreak(IVcpu vcpu, long budget = 100_000)
    {
        var exit = vcpu.Run(budget);
        Assert.True(exit.Reason == ExitReason.Debug, $"expected a debug-word exit, got {exit}");
        Assert.Equal(exit.Address, vcpu.GetRegisters().Nip);
        return exit.Address;
    }

    public void Update(Action<VcpuState> change)
    {
        var s = Vcpu.GetRegisters();
        change(s);
        Vcpu.SetRegisters(s);
    }

    public ulong Lpcr
    {
        get => Vcpu.GetOneReg(ActorStep.Isa.Spr.LPCR);
        set => Vcpu.SetOneReg(ActorStep.Isa.Spr.LPCR, value);
    }

    public void SetAil(int ail) => Lpcr = ActorStep.Isa.Lpcr.WithAil(Lpcr, ail);

    /// <summary>Instruction words assembled in the other byte order, as <c>.long</c> lines for a guest of <paramref name="littleEndian"/>.</summary>
    public static string ForeignWords(string source, bool littleEndian) =>
        string.Join("\n", GuestAssembler.Words(source, !littleEndian)
            .Select(w => $"    .long 0x{BinaryPrimitives.ReverseEndianness(w):x8}"));

    public ulong ReadU64(ulong ra, bool littleEndian = true)
    {
        Span<byte> b = stackalloc byte[8];
        Vm.ReadMemory(ra, b);
        return littleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b);
    }
}

/// <summary>Guest code fragments shared by the interrupt tests.</summary>
internal static class Asm
{
    /// <summary>ORs <paramref name="bits"/> (16-bit) into the MSR with mtmsrd (r9 clobbered).</summary>
    public static string MsrOr(int bits) => $"""
            mfmsr 9
            ori 9, 9, 0x{bits:x}
            mtmsrd 9
        """;

    /// <summary>r{reg} = absolute address of a symbol below 2 GiB.</summary>
    public static string La(int reg, string sym) => $"""
            lis {reg}, {sym}@h
            ori {reg}, {reg}, {sym}@l
        """;

    /// <summary>A hypercall: r3 = number, r4.. = args, then <c>sc 1</c>.</summary>
    public static string Hcall(int number, params long[] args)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"    li 3, 0\n    ori 3, 3, 0x{number:x}");
        for (int i = 0; i < args.Length; i++) sb.AppendLine($"    li {4 + i}, {args[i]}");
        sb.Append("    sc 1");
        return sb.ToString();
    }

    /// <summary>Enters problem state at <paramref name="target"/> with rfid (SRR1 = MSR | PR; r9, r10 clobbered).</summary>
    public static string EnterProblemState(string target) => $"""
        {La(10, target)}
            mtsrr0 10
            mfmsr 9
            ori 9, 9, 0x4000
            mtsrr1 9
            rfid
        """;
}
