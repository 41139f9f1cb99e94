using System.Buffers.Binary;
using ActorStep.Machine;
using ActorStep.Machine.Mmu;
using ActorStep.Tests.Machine.Interrupts;

namespace ActorStep.Tests.Machine.Mmu;

/// <summary>
/// A <see cref="Guest"/> whose first instructions register a radix process table with H_REGISTER_PROC_TBL (as Linux does), with
/// a tree for PID 0 laid out as Debian's 64K-page kernel lays it out (52-bit, 13/9/9/5 index bits): EA page n of quadrant 3,
/// 0xC000_0000_000n_0000, maps to the real page and with the leaf bits each test gives. The body follows the registration, still
/// in real mode.
/// </summary>
internal static class RadixGuest
{
    public const ulong ProcessTable = 0x80000, Root = 0x90000, Pud = 0xA0000, Pmd = 0xA1000, Pte = 0xA2000;
    public const ulong Quadrant3 = 0xC000000000000000;

    /// <summary>Leaf bits: valid, leaf, referenced and changed, read/write, privileged (no execute).</summary>
    public const ulong ReadWrite = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC
                                   | RadixWalk.EaaRead | RadixWalk.EaaReadWrite | RadixWalk.EaaPrivileged;

    /// <summary>The EA of 64 KiB page <paramref name="page"/> (1..31) of quadrant 3.</summary>
    public static ulong Page(int page) => Quadrant3 | ((ulong)page << 16);

    /// <summary>Loads r<paramref name="reg"/> with a quadrant-3 EA (page n, offset below 64 KiB).</summary>
    public static string LoadEa(int reg, ulong ea) => $"""
            lis {reg}, 0xc000
            sldi {reg}, {reg}, 32
            oris {reg}, {reg}, 0x{ea >> 16 & 0xFFFF:x}
            ori {reg}, {reg}, 0x{ea & 0xFFFF:x}
        """;

    /// <summary>The guest's registration of the process table (r3–r7 clobbered).</summary>
    public static readonly string Register = $"""
            li 3, 0
            ori 3, 3, 0x37c      # H_REGISTER_PROC_TBL
            li 4, 0x1c           # modify | register | radix
            lis 5, {ProcessTable >> 16}
            li 6, 0
            li 7, 0
            sc 1
        """;

    public static Guest Build(string body, bool littleEndian, params (int Page, ulong RealAddress, ulong Leaf)[] pages)
    {
        var g = new Guest($"""
            {Register}
            {body}
            """, littleEndian);
        Tables(g.Vm, pages);
        return g;
    }

    /// <summary>Writes the process table and the tree into <paramref name="vm"/>'s memory, with a leaf for each page given.</summary>
    public static void Tables(SimulatedMachine vm, params (int Page, ulong RealAddress, ulong Leaf)[] pages)
    {
        Put(vm, ProcessTable, (2UL << 61) | Root | (5UL << 5) | 13); // PID 0: a 52-bit tree, 13 index bits at the root
        Put(vm, Root, RadixWalk.PteValid | Pud | 9);
        Put(vm, Pud, RadixWalk.PteValid | Pmd | 9);
        Put(vm, Pmd, RadixWalk.PteValid | Pte | 5);
        foreach (var (page, ra, leaf) in pages) Put(vm, PteAddress(page), leaf | ra);
    }

    /// <summary>The real address of page <paramref name="page"/>'s leaf entry.</summary>
    public static ulong PteAddress(int page) => Pte + (ulong)page * 8;

    public static void Put(Guest g, ulong ra, ulong value) => Put(g.Vm, ra, value);

    public static void Put(SimulatedMachine vm, ulong ra, ulong value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value); // radix tables are big-endian
        vm.WriteMemory(ra, b);
    }

    public static ulong Get(Guest g, ulong ra)
    {
        var b = new byte[8];
        g.Vm.ReadMemory(ra, b);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }
}
