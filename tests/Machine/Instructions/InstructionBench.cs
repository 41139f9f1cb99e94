using System.Buffers.Binary;
using System.Text;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// One guest program holding many single instructions, each at its own label, assembled once per byte
/// order. A test gets a fresh machine, pokes registers, points NIP at one instruction and runs exactly it.
/// </summary>
internal sealed class InstructionBench
{
    /// <summary>Guest RAM of each test machine: text at 0x10000, test data at <see cref="Data"/>.</summary>
    public const ulong Memory = 1UL << 20;
    /// <summary>A free, 4 KiB-aligned data area for loads and stores.</summary>
    public const ulong Data = 0x80000;

    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);
    private readonly string _source;
    private readonly bool _hostTripKeepsReservation;

    /// <param name="instructions">the instruction texts tests may run (each gets label i0, i1, …)</param>
    /// <param name="extra">more assembly appended after them (branch targets and the like)</param>
    /// <param name="hostTripKeepsReservation">machines keep a vcpu's reservation across its returns from Run, so that a test can
    /// run a load-reserve and its store-conditional one Run(1) at a time, with another vcpu's store between them</param>
    public InstructionBench(IEnumerable<string> instructions, string extra = "", bool hostTripKeepsReservation = false)
    {
        _hostTripKeepsReservation = hostTripKeepsReservation;
        var sb = new StringBuilder("    .globl _start\n_start:\n    b _start\n");
        foreach (string insn in instructions)
        {
            if (_labels.ContainsKey(insn)) continue;
            string label = "i" + _labels.Count;
            _labels.Add(insn, label);
            sb.Append(label).Append(":\n    ").Append(insn).Append('\n');
        }
        sb.Append(extra).Append('\n');
        _source = sb.ToString();
    }

    public string Label(string insn) => _labels.TryGetValue(insn, out var l) ? l
        : throw new ArgumentException($"'{insn}' is not in this bench's program; add it to the instruction list", nameof(insn));

    /// <summary>A fresh machine (vcpu 0 at _start) built from this bench's program.</summary>
    public TestMachine NewMachine(bool littleEndian = true, int vcpus = 1) =>
        new(_source, littleEndian, vcpus, memory: Memory, hostTripKeepsReservation: _hostTripKeepsReservation);

    /// <summary>A fresh machine with vcpu 0 stopped at <paramref name="insn"/>, after <paramref name="setup"/> changed it.</summary>
    public TestMachine Start(string insn, Action<VcpuState>? setup = null, bool littleEndian = true, int vcpus = 1)
    {
        var m = NewMachine(littleEndian, vcpus);
        ulong at = m.Sym(Label(insn));
        m.Update(s => { s.Nip = at; setup?.Invoke(s); });
        return m;
    }

    /// <summary>Runs <paramref name="insn"/> once on a fresh machine after <paramref name="setup"/> changed vcpu 0.</summary>
    public Run Execute(string insn, Action<VcpuState>? setup = null, bool littleEndian = true, Action<TestMachine>? prepare = null)
    {
        var m = Start(insn, setup, littleEndian);
        prepare?.Invoke(m);
        var before = m.State;
        m.Run(1);
        return new Run(m, before.Nip, before, m.State);
    }

    /// <summary>The outcome of one executed instruction.</summary>
    public sealed record Run(TestMachine Machine, ulong Address, VcpuState Before, VcpuState After)
    {
        public ulong Gpr(int r) => After.Gpr[r];
        public uint Cr0 => After.Cr >> 28;
        public uint CrField(int bf) => (After.Cr >> (28 - 4 * bf)) & 0xF;
        public bool Xer(ulong bit) => (After.Xer & bit) != 0;
        public byte[] Bytes(ulong ra, int length) => ReadBytes(Machine, ra, length);
    }

    public static byte[] ReadBytes(TestMachine m, ulong ra, int length)
    {
        var b = new byte[length];
        m.Vm.ReadMemory(ra, b);
        return b;
    }

    /// <summary>Plants <c>b .</c> at an interrupt vector so a taken interrupt parks there instead of running zeros.</summary>
    public static void PlantBranchToSelf(TestMachine m, ulong vector, bool littleEndian)
    {
        var b = new byte[4];
        const uint branchToSelf = 0x48000000; // b . (I-form, primary opcode 18, LI = 0)
        if (littleEndian) BinaryPrimitives.WriteUInt32LittleEndian(b, branchToSelf);
        else BinaryPrimitives.WriteUInt32BigEndian(b, branchToSelf);
        m.Vm.WriteMemory(vector, b);
    }
}

/// <summary>Architected bit positions, written out from the ISA rather than taken from the machine.</summary>
internal static class Arch
{
    // XER (Book I §3.2.2): SO bit 32, OV bit 33, CA bit 34, OV32 bit 44, CA32 bit 45 of the 64-bit register.
    public const ulong SO = 1UL << (63 - 32);
    public const ulong OV = 1UL << (63 - 33);
    public const ulong CA = 1UL << (63 - 34);
    public const ulong OV32 = 1UL << (63 - 44);
    public const ulong CA32 = 1UL << (63 - 45);

    // A CR field: LT, GT, EQ, SO (Book I §2.3.1).
    public const uint LT = 8, GT = 4, EQ = 2, SOf = 1;

    // MSR (Book III §4.2.1): SF bit 0, LE bit 63.
    public const ulong MsrSF = 1UL << 63;
    public const ulong MsrLE = 1;

    /// <summary>CR bit <paramref name="n"/> (0 = most significant) as a mask of the 32-bit CR.</summary>
    public static uint CrBit(int n) => 1u << (31 - n);
}
