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
        int slot = (int)((ea >> 12) ^ (ea >> 62)) & (TlbSize - 1);
        if (_vm.TlbGeneration == _tlbGeneration && _tlbTag[slot] == ((ea & ~0xFFFUL) | 1))
        {
            ulong pte = _tlbPte[slot];
            ulong rc = RadixWalk.ReferenceChange(access);
            if ((pte & rc) == rc && RadixWalk.Permits(pte, access, (Msr_ & Isa.Msr.PR) != 0))
            {
                ra = _tlbRa[slot] | (ea & 0xFFF);
                return RadixFault.None;
            }
        }
        return TranslateRadixMiss(ea, access, out ra);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private RadixFault TranslateRadixMiss(ulong ea, AccessKind access, out ulong ra)
    {
        long generation = _vm.TlbGeneration;
        if (generation != _tlbGeneration) FlushTranslationCache(generation);
        ulong page = ea & ~0xFFFUL;
        int slot = (int)((ea >> 12) ^ (ea >> 62)) & (TlbSize - 1);
        bool problem = (Msr_ & Isa.Msr.PR) != 0;
        ulong rc = RadixWalk.ReferenceChange(access);
        ra = 0;
        var fault = RadixWalk.Walk(_mem, _vm.ProcessTable, Pidr, ea, out var leaf);
        if (fault != RadixFault.None) return fault;
        if (!RadixWalk.Permits(leaf.Pte, access, problem)) return RadixFault.Protection;
        ulong newPte = leaf.Pte | rc;
        // R and C are set in the PTE atomically with respect to the guest's own updates of it (Book III §6.7.12).
        if (newPte != leaf.Pte && !_mem.CompareExchange(leaf.PteAddress, 8, SwapBe(leaf.Pte), newPte, le: false))
            return TranslateRadixMiss(ea, access, out ra);
        ra = leaf.RealAddress;
        _tlbTag[slot] = page | 1;
        _tlbRa[slot] = ra & ~0xFFFUL;
        _tlbPte[slot] = newPte;
        return RadixFault.None;
    }

    private static ulong SwapBe(ulong v) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v) : v;

    private void FlushTranslationCache(long generation)
    {
        Array.Clear(_tlbTag);
        _fetchEaPage = ulong.MaxValue;
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
