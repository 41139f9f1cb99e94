using ActorStep.Hypervisor;

namespace ActorStep.Machine.Mmu;

/// <summary>Why a radix translation failed (Book III §6.7.11 radix tree translation; the DSISR/SRR1 bit each sets).</summary>
public enum RadixFault
{
    None,
    /// <summary>No valid entry on the walk, or a malformed tree: DSISR[33] / SRR1[33].</summary>
    NoTranslation,
    /// <summary>The leaf forbids this access (EAA, privilege, execute from a guarded or non-idempotent page): DSISR[36] / SRR1[36].</summary>
    Protection,
    /// <summary>EA[0:1] names a quadrant a guest cannot use, or EA has bits set above the tree: a segment fault (0x380/0x480).</summary>
    Segment,
}

/// <summary>The registered process table (H_REGISTER_PROC_TBL): its real base and log2 of its size in bytes.</summary>
public readonly record struct ProcessTable(ulong Base, int SizeLog2)
{
    public bool IsRegistered => Base != 0;
}

/// <summary>A leaf found by a walk: the real address of the access, the PTE and where it lives.</summary>
public readonly record struct RadixLeaf(ulong RealAddress, ulong Pte, ulong PteAddress, int PageShift);

/// <summary>
/// The process-scoped radix walk a KVM-HV guest's accesses go through (Power ISA v3.0 Book III §6.7.11; QEMU's
/// target/ppc/mmu-radix64.c): quadrant 3 uses process table entry 0 (the kernel), quadrant 0 the entry of PIDR; entries
/// are big-endian doublewords whatever the byte order; guest real = host real here (no partition-scoped step).
/// </summary>
public static class RadixWalk
{
    public const ulong PteValid = 0x8000000000000000, PteLeaf = 0x4000000000000000;
    public const ulong PteR = 0x100, PteC = 0x80;
    public const ulong EaaPrivileged = 0x8, EaaRead = 0x4, EaaReadWrite = 0x2, EaaExecute = 0x1;
    private const ulong PteAttMask = 0x30; // 0b00 normal memory; anything else is non-idempotent or tolerant I/O
    private const ulong NextLevelBase = 0x0FFFFFFFFFFFFF00, NextLevelSize = 0x1F;
    private const ulong RealPageNumber = 0x01FFFFFFFFFFF000;

    /// <summary>Walks the tree for <paramref name="ea"/>; reads memory, writes nothing (R/C are the caller's).</summary>
    public static RadixFault Walk(GuestMemory mem, ProcessTable table, ulong pidr, ulong ea, out RadixLeaf leaf)
    {
        leaf = default;
        ulong pid = (ea >> 62) switch { 3 => 0, 0 => pidr, _ => ulong.MaxValue };
        if (pid == ulong.MaxValue) return RadixFault.Segment;
        ulong entry = table.Base + pid * 16;
        if (pid * 16 + 16 > 1UL << table.SizeLog2 || !mem.Contains(entry, 16)) return RadixFault.NoTranslation;
        ulong dw0 = ReadBe(mem, entry);
        int rts = (int)(((dw0 >> 61) & 3) << 3 | ((dw0 >> 5) & 7));
        ulong rootBase = dw0 & NextLevelBase;
        int nls = (int)(dw0 & NextLevelSize);
        int bits = rts + 31;
        if (dw0 == 0 || nls < 5 || bits > 62) return RadixFault.NoTranslation;
        ulong offsetEa = ea & 0x3FFFFFFFFFFFFFFF;
        if ((offsetEa >> bits) != 0) return RadixFault.Segment;

        ulong tableBase = rootBase;
        int shift = bits;
        for (int level = 0; level < 8; level++)
        {
            shift -= nls;
            if (shift < 12) return RadixFault.NoTranslation;
            ulong index = (offsetEa >> shift) & ((1UL << nls) - 1);
            ulong pteAddress = tableBase + index * 8;
            if (!mem.Contains(pteAddress, 8)) return RadixFault.NoTranslation;
            ulong pte = ReadBe(mem, pteAddress);
            if ((pte & PteValid) == 0) return RadixFault.NoTranslation;
            if ((pte & PteLeaf) != 0)
            {
                ulong pageMask = (1UL << shift) - 1;
                leaf = new RadixLeaf((pte & RealPageNumber & ~pageMask) | (offsetEa & pageMask), pte, pteAddress, shift);
                return RadixFault.None;
            }
            tableBase = pte & NextLevelBase;
            nls = (int)(pte & NextLevelSize);
            if (nls < 5) return RadixFault.NoTranslation;
        }
        return RadixFault.NoTranslation;
    }

    /// <summary>Whether the leaf's encoded access authority allows the access (Book III §6.7.11.3; AMR/IAMR not modelled).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static bool Permits(ulong pte, AccessKind access, bool problemState)
    {
        if ((pte & EaaPrivileged) != 0 && problemState) return false;
        return access switch
        {
            AccessKind.Fetch => (pte & EaaExecute) != 0 && (pte & PteAttMask) == 0,
            AccessKind.Load => (pte & (EaaRead | EaaReadWrite)) != 0,
            _ => (pte & EaaReadWrite) != 0,
        };
    }

    /// <summary>The R and C bits an access sets in the leaf (POWER9 updates them in the PTE).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static ulong ReferenceChange(AccessKind access) => access == AccessKind.Store ? PteR | PteC : PteR;

    private static ulong ReadBe(GuestMemory mem, ulong ra) => mem.Load(ra, 8, le: false);
}
