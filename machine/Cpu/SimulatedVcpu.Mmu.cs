using System.Runtime.CompilerServices;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine.Mmu;

namespace ActorStep.Machine.Cpu;

// Translation for the vcpu's own accesses: the radix walk behind a small translation cache, R/C updates, and the
// instructions that invalidate it (Power ISA v3.0 Book III §6.7.11, §6.10.1).
public sealed partial class SimulatedVcpu
{
    private const int TlbSize = 256;
    // Tag: EA page | 1 (valid); the quadrant is in the EA. Value: RA page; Perm: the leaf's low bits (EAA, R, C, ATT).
    private readonly ulong[] _tlbTag = new ulong[TlbSize];
    private readonly ulong[] _tlbRa = new ulong[TlbSize];
    private readonly ulong[] _tlbPte = new ulong[TlbSize];
    // The data accesses' fast path (DataCacheHit): per access kind, the entry's tag when it permits that access in the problem
    // state it was checked in, R (and C for a store) set and its real page inside RAM: EA page | PR << 1 | 1; 0 otherwise.
    private readonly ulong[] _tlbLoadTag = new ulong[TlbSize];
    private readonly ulong[] _tlbStoreTag = new ulong[TlbSize];
    private long _tlbGeneration;

    /// <summary>PIDR (SPR 48): the process ID quadrant 0 translates with.</summary>
    internal ulong Pidr;

    /// <summary>Translates an access of this vcpu: real mode, the fixed map, or the radix tree through the cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private RadixFault Translate(ulong ea, AccessKind access, out ulong ra)
    {
        bool relocate = (Msr_ & (access == AccessKind.Fetch ? Isa.Msr.IR : Isa.Msr.DR)) != 0;
        if (!relocate || !_vm.ProcessTable.IsRegistered)
            return TryTranslate(ea, Msr_, access, out ra) ? RadixFault.None : RadixFault.NoTranslation;
        return TranslateRadix(ea, access, out ra);
    }

    /// <summary>A hit in the translation cache (permission and R/C still checked) inline; a miss walks the tree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private RadixFault TranslateRadix(ulong ea, AccessKind access, out ulong ra)
    {
        if (!TranslationCacheHit(ea, access, out ra)) return TranslateRadixMiss(ea, access, out ra);
        if (access != AccessKind.Fetch) NoteDataHit(ea, access, ra);
        return RadixFault.None;
    }

    /// <summary>
    /// The common data access in one compare: 64-bit mode, no watchpoint, and either real mode (inside RAM) or data relocation
    /// through the radix tree with an access on one page and a translation-cache entry already checked for this access kind
    /// and problem state (<see cref="NoteDataHit"/>).
    /// Then <paramref name="ra"/> is the real address and the access lies inside RAM; false decides nothing (the full path
    /// follows: <see cref="Translate"/>, page crossings, watchpoints, faults).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool DataCacheHit(ulong ea, int size, bool store, out ulong ra)
    {
        ulong msr = Msr_;
        ra = 0;
        if ((msr & Isa.Msr.SF) == 0 || _vm.Watchpoints is not null) return false;
        if ((msr & Isa.Msr.DR) == 0)
        {
            // Real mode: RAM contiguous (what TryTranslate and TranslateData decide for it).
            ra = ea & RealModeMask;
            return ra + (ulong)size <= _mem.Size;
        }
        int slot = TlbSlot(ea);
        if ((ea & 0xFFF) > (ulong)(0x1000 - size) || (store ? _tlbStoreTag : _tlbLoadTag)[slot] != DataTag(ea, msr)
            || _vm.TlbGeneration != _tlbGeneration) return false;
        ra = _tlbRa[slot] | (ea & 0xFFF);
        return true;
    }

    /// <summary>Marks the entry that just translated a data access at <paramref name="ea"/> as checked for its kind in the current
    /// problem state (its R, and C for a store, set: the hit or the walk before this ensured it), when its real page lies
    /// inside RAM.</summary>
    private void NoteDataHit(ulong ea, AccessKind access, ulong ra)
    {
        if ((ra | 0xFFF) >= _mem.Size) return;
        (access == AccessKind.Store ? _tlbStoreTag : _tlbLoadTag)[TlbSlot(ea)] = DataTag(ea, Msr_);
    }

    /// <summary>The translation cache's slot for the 4 KiB page of <paramref name="ea"/> (the quadrant folded in).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TlbSlot(ulong ea) => (int)((ea >> 12) ^ (ea >> 62)) & (TlbSize - 1);

    /// <summary>A data tag: the EA page, MSR[PR] (0x4000) as bit 1, valid as bit 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong DataTag(ulong ea, ulong msr) => (ea & ~0xFFFUL) | ((msr >> 13) & 2) | 1;

    /// <summary>
    /// A compiled block's translation of a data access (SimulatedVcpu.BlockEmitter.cs, <c>FastAccess</c>), one per EA page,
    /// direct-mapped by the page's low 8 bits, loads in the first <see cref="HostTranslationCount"/> entries and stores in the
    /// next: <see cref="Tag"/> is the EA page | MSR[SF], MSR[DR], MSR[PR] | 1 (<see cref="HostKey"/>), the
    /// state the access was checked in, and the EA plus <see cref="Addend"/> is the byte's host address. An entry is made only
    /// from what <see cref="DataCacheHit"/> answers for the page (64-bit mode, no watchpoint, R and C set, the whole page
    /// inside RAM), so a block that finds it does what the interpreter would; a store's entry also holds the page's
    /// <see cref="GuestMemory.DecodedFlag"/>, and a store into a page that was ever executed goes the interpreter's way (which
    /// invalidates the words it changes). Valid while this vcpu's translation cache is: cleared with it, and a block checks
    /// the machine's translation generation where it enters, after each handler it calls and at each jump back.
    /// </summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 1 << SizeShift)]
    internal unsafe struct HostTranslation
    {
        // The layout blocks' IL addresses (BlockEmitter's HostAccess).
        public const int SizeShift = 5, AddendOffset = 8, DecodedOffset = 16;
        [System.Runtime.InteropServices.FieldOffset(0)] public ulong Tag;
        [System.Runtime.InteropServices.FieldOffset(AddendOffset)] public long Addend;
        [System.Runtime.InteropServices.FieldOffset(DecodedOffset)] public byte* Decoded;
    }

    internal const int HostTranslationCount = 256;

    /// <summary>The entry for a load's or store's EA (its page's low 8 bits, in the loads' or the stores' half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref HostTranslation HostEntry(ulong ea, bool store) =>
        ref _hostTranslations[(store ? HostTranslationCount : 0) + (int)((ea >> 12) & (HostTranslationCount - 1))];

    /// <summary>The tag an entry must hold to answer an access of <paramref name="size"/> bytes at <paramref name="ea"/> under
    /// <paramref name="msr"/>: the page of its last byte (an access across pages matches no entry) and <see cref="HostKey"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong HostTag(ulong ea, int size, ulong msr) => ((ea + (ulong)size - 1) & ~0xFFFUL) | HostKey(msr);

    /// <summary>Loads' entries, then stores' (<see cref="HostTranslation"/>); pinned: blocks address them through
    /// <see cref="_hostTranslationsAt"/>.</summary>
    private readonly HostTranslation[] _hostTranslations = GC.AllocateArray<HostTranslation>(2 * HostTranslationCount, pinned: true);
    private readonly nint _hostTranslationsAt;

    /// <summary>The state bits of a <see cref="HostTranslation"/>'s tag for this MSR: SF as 8 (entries are made in 64-bit mode
    /// only: a 32-bit mode access, whose EA is the low word of what a block computed, never finds one), DR as 4, PR as 2,
    /// valid as 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong HostKey(ulong msr) => ((msr >> 60) & 8) | ((msr >> 2) & 4) | ((msr >> 13) & 2) | 1;

    /// <summary>After a block's load or store that <see cref="DataCacheHit"/> (or the walk before it) answered: the page's
    /// <see cref="HostTranslation"/>, when its answer holds for the whole page.</summary>
    private unsafe void NoteHostTranslation(ulong ea, bool store)
    {
        if (!DataCacheHit(ea, 1, store, out ulong ra)) return;
        ulong raPage = ra & ~0xFFFUL, page = ea & ~0xFFFUL;
        if (raPage + 0x1000 > _mem.Size) return; // real mode: DataCacheHit asked for the one byte only
        ref var entry = ref HostEntry(ea, store);
        entry.Tag = page | HostKey(Msr_);
        entry.Addend = (long)(_mem.HostPage(raPage) - page);
        entry.Decoded = _mem.DecodedFlag(raPage);
    }

    /// <summary>Forgets every cached translation of this vcpu (the fetch page's too).</summary>
    private void ClearTranslationCache()
    {
        Array.Clear(_tlbTag);
        Array.Clear(_tlbLoadTag);
        Array.Clear(_tlbStoreTag);
        Array.Clear(_hostTranslations);
        Array.Clear(_fetchPages);
        _fetchEaPage = ulong.MaxValue;
    }

    /// <summary>The translation cache's entry for <paramref name="ea"/>, if it holds one that permits the access with R (and C
    /// for a store) already set; false leaves the rest to the walk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TranslationCacheHit(ulong ea, AccessKind access, out ulong ra)
    {
        int slot = TlbSlot(ea);
        ra = 0;
        if (_vm.TlbGeneration != _tlbGeneration || _tlbTag[slot] != ((ea & ~0xFFFUL) | 1)) return false;
        ulong pte = _tlbPte[slot];
        ulong rc = RadixWalk.ReferenceChange(access);
        if ((pte & rc) != rc || !RadixWalk.Permits(pte, access, (Msr_ & Isa.Msr.PR) != 0)) return false;
        ra = _tlbRa[slot] | (ea & 0xFFF);
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining | HotPath)]
    private RadixFault TranslateRadixMiss(ulong ea, AccessKind access, out ulong ra)
    {
        ulong page = ea & ~0xFFFUL;
        int slot = TlbSlot(ea);
        bool problem = (Msr_ & Isa.Msr.PR) != 0;
        ulong rc = RadixWalk.ReferenceChange(access);
        ra = 0;
        RadixLeaf leaf;
        ulong newPte;
        while (true)
        {
            long generation = _vm.TlbGeneration;
            if (generation != _tlbGeneration) FlushTranslationCache(generation);
            var fault = RadixWalk.Walk(_mem, _vm.ProcessTable, Pidr, ea, out leaf);
            if (fault != RadixFault.None) return fault;
            if (!RadixWalk.Permits(leaf.Pte, access, problem)) return RadixFault.Protection;
            newPte = leaf.Pte | rc;
            // R and C are set in the PTE atomically with respect to the guest's own updates of it (Book III §6.7.12); another
            // update in between: walk again (a loop, not a recursion: under contention the retries must not grow the stack).
            if (newPte == leaf.Pte || _mem.CompareExchange(leaf.PteAddress, 8, SwapBe(leaf.Pte), newPte, le: false)) break;
        }
        ra = leaf.RealAddress;
        _tlbTag[slot] = page | 1;
        _tlbRa[slot] = ra & ~0xFFFUL;
        _tlbPte[slot] = newPte;
        _tlbLoadTag[slot] = _tlbStoreTag[slot] = 0;
        if (access != AccessKind.Fetch) NoteDataHit(ea, access, ra);
        return RadixFault.None;
    }

    private static ulong SwapBe(ulong v) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v) : v;

    private void FlushTranslationCache(long generation)
    {
        ClearTranslationCache();
        _tlbGeneration = generation;
    }

    /// <summary>tlbie/tlbiel of any form: everything cached goes, on every vcpu (a superset of what was asked).</summary>
    private void TlbInvalidate(bool local)
    {
        if (ProblemState) { RaisePrivileged(); return; }
        _vm.InvalidateTranslations();
        _ = local;
    }

    /// <summary>slbia, tlbsync: nothing to do with radix and no SLB (privileged all the same).</summary>
    private void PrivilegedNoOp()
    {
        if (ProblemState) RaisePrivileged();
    }
}
