using System.Runtime.CompilerServices;

namespace ActorStep.Machine.Cpu;

// The block compiler: hot straight-line blocks of integer code compiled to .NET code (a DynamicMethod per block) and entered
// instead of the per-word loop, with exactly the interpreter's semantics (machine/README.md, "Block compiler").
public sealed partial class SimulatedVcpu
{
    private long _blockRetired;

    /// <summary>Instructions this vcpu retired inside compiled blocks (a part of <see cref="InstructionsRetired"/>).</summary>
    public long InstructionsRetiredInBlocks => _blockRetired;

    private long _blockEntries;

    /// <summary>How often this vcpu entered a compiled block and retired an instruction in it: with <see
    /// cref="InstructionsRetiredInBlocks"/>, the mean length of a stay in compiled code.</summary>
    public long BlockEntries => _blockEntries;

    private enum BlockRun { NotRun, Ran, EndsBatch }

    /// <summary>
    /// Runs the block whose index the decode slot of <paramref name="cia"/> holds, as ExecuteBatch would run its words: only when
    /// it is still the block of this real address (its first word, or one of its other entries: <see cref="RunBlockFrom"/>) and of
    /// the batch's byte order and computation mode (MSR[LE], MSR[SF]), its page unchanged since it was compiled, and what its
    /// entry retires before its next test of the limit fits before <paramref name="batchEnd"/> (<see cref="CompiledBlock.EntryNeed"/>);
    /// inside, it runs only what fits (so budgets, the decrementer's bound and the deterministic mode's counts stay the
    /// interpreter's). The caller runs with MSR[SE] = 0: nothing is traced. <paramref name="fellThrough"/>: it left at its end into
    /// the word after it (<see cref="CompiledBlock.ContinuesAt"/>).
    /// </summary>
    [MethodImpl(HotPath | MethodImplOptions.AggressiveInlining)]
    private BlockRun RunBlock(CompiledBlocks blocks, ref ulong slot, ulong entry, ulong cia, ulong batchEnd, out bool fellThrough)
    {
        var mode = new BlockMode((Msr_ & Isa.Msr.LE) != 0, Mode64); // the batch's: MSR[LE] and MSR[SF] hold for it
        var block = blocks[(int)((entry & CompiledBlocks.SlotMask) >> CompiledBlocks.SlotShift)];
        if (block is null || block.Mode != mode || !block.IsCurrent) return Forget(ref slot, entry, out fellThrough);
        if (block.RealAddress != (_fetchRaPage | (cia & 0xFFF))) return RunBlockFrom(blocks, ref slot, entry, cia, block, batchEnd, out fellThrough);
        return Enter(blocks, ref slot, entry, cia, cia, block, 0, block.EntryNeed, batchEnd, out fellThrough);
    }

    /// <summary>The slot names a block that is not this word's (replaced, its page changed, another mode): the word is
    /// interpreted, and compiled again once hot.</summary>
    private static BlockRun Forget(ref ulong slot, ulong entry, out bool fellThrough)
    {
        fellThrough = false;
        Interlocked.CompareExchange(ref slot, entry & ~CompiledBlocks.SlotMask, entry);
        return BlockRun.NotRun;
    }

    /// <summary><see cref="RunBlock"/> at a word other than the block's first: one of its other entries
    /// (CompiledBlock.EntryOffsets), else forgotten.</summary>
    [MethodImpl(HotPath | MethodImplOptions.NoInlining)]
    private BlockRun RunBlockFrom(CompiledBlocks blocks, ref ulong slot, ulong entry, ulong cia, CompiledBlock block, ulong batchEnd,
        out bool fellThrough)
    {
        ulong ra = _fetchRaPage | (cia & 0xFFF);
        long offset = (long)(ra - block.RealAddress);
        int at = (block.RealAddress ^ ra) < 0x1000 ? block.EntryAt(offset) : 0;
        if (at == 0) return Forget(ref slot, entry, out fellThrough);
        return Enter(blocks, ref slot, entry, cia, cia - (ulong)offset, block, at, block.EntryNeeds[at - 1], batchEnd, out fellThrough);
    }

    /// <summary>Runs <paramref name="block"/> (its first word at EA <paramref name="first"/>) from its entry <paramref name="at"/>
    /// (the word at <paramref name="cia"/>) when <paramref name="need"/> instructions fit before <paramref name="batchEnd"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private BlockRun Enter(CompiledBlocks blocks, ref ulong slot, ulong entry, ulong cia, ulong first, CompiledBlock block, int at,
        int need, ulong batchEnd, out bool fellThrough)
    {
        fellThrough = false;
        if (Tb + (ulong)need > batchEnd) return BlockRun.NotRun;
        // The block's loads and stores use this vcpu's host translations without asking for the machine's translation
        // generation each time: a tlbie since they were made flushes them now, as the next data access would, and the
        // interpreter runs this word (fetched before the flush) and fetches the next through the new translations.
        if (_vm.TlbGeneration is var generation && generation != _tlbGeneration)
        {
            FlushTranslationCache(generation);
            return BlockRun.NotRun;
        }
        ulong tb = Tb;
        long retired = _retired;
        long ran = block.Code(this, first, (long)Math.Min(batchEnd - tb, long.MaxValue), at);
        Tb = tb + (ulong)ran;
        _retired = retired + ran;
        _blockRetired += ran;
        if (ran != 0) _blockEntries++;
        if (!block.HostAccess && block.Accesses && (block.Retired += ran) >= blocks.HostAccessAfter && block.Promoting == 0)
            PromoteBlock(ref slot, entry, cia, block);
        // None retired: it left before its first instruction (a load or store that is not the translation cache's common
        // case), which the caller interprets.
        if (_event == Event.None)
        {
            fellThrough = block.ContinuesAt != CompiledBlock.NoContinuation && Nip == first + (ulong)(long)block.ContinuesAt;
            return ran == 0 ? BlockRun.NotRun : BlockRun.Ran;
        }
        // The instruction after the `ran` retired ones raised the event: what ExecuteBatch does after such an instruction.
        if ((_event & Event.Exit) != 0) return BlockRun.EndsBatch;
        if ((_event & Event.Interrupted) == 0) { Tb++; _retired++; _blockRetired++; }
        _event = Event.None;
        return BlockRun.EndsBatch;
    }

    /// <summary>Compiles the block at <paramref name="cia"/> for the current byte order and computation mode (or finds the one
    /// another vcpu compiled) and marks its first word's slot with it, unless a store changed the slot meanwhile: here, or on the
    /// machine's compile worker while this vcpu runs on (<see cref="CompiledBlocks.Background"/>).</summary>
    private unsafe void CompileBlockAt(ulong* slot, ulong entry, ulong cia, bool le)
    {
        var blocks = _vm.Blocks!;
        ulong ra = _fetchRaPage | (cia & 0xFFF);
        var memory = _mem;
        var mode = new BlockMode(le, Mode64);
        if (blocks.KnownShort(ra, mode, memory.CodeGeneration(ra))) return;
        if (!blocks.Background) CompileAndMark(blocks, memory, ra, mode, (nint)slot, entry);
        else blocks.Request(ra, mode, promotion: false, cia, () => CompileAndMark(blocks, memory, ra, mode, (nint)slot, entry));
    }

    /// <summary>Compiles <paramref name="block"/> again with host translations for its loads and stores (it retired
    /// <see cref="CompiledBlocks.HostAccessAfter"/> instructions: worth the JIT's time for their code, a third more a block) and
    /// marks its first word's slot with the new one unless a store changed the slot meanwhile; on the worker like a first
    /// compile, or at once.</summary>
    private unsafe void PromoteBlock(ref ulong slot, ulong entry, ulong cia, CompiledBlock block)
    {
        if (Interlocked.Exchange(ref block.Promoting, 1) != 0) return;
        var blocks = _vm.Blocks!;
        var memory = _mem;
        nint at = (nint)Unsafe.AsPointer(ref slot);
        void Promote()
        {
            if (!block.IsCurrent) return; // a store changed its page: the next compile will have host translations
            // Failed: the block it would replace runs on.
            if (CompileTimed(blocks, memory, block.RealAddress, block.Mode, hostAccess: true) is not { } promoted) return;
            blocks.NotePromoted();
            Mark(at, entry, promoted);
            MarkEntries(memory, promoted, block);
        }
        if (!blocks.Background) Promote();
        else blocks.Request(block.RealAddress, block.Mode, promotion: true, cia, Promote);
    }

    /// <summary>The block compiler itself (<see cref="CompiledBlocks.CompileAgain"/>).</summary>
    internal static CompiledBlock? CompileBlock(CompiledBlocks blocks, GuestMemory memory, ulong ra, BlockMode mode, bool hostAccess) =>
        BlockCompiler.Compile(blocks, memory, ra, mode, hostAccess);

    private static unsafe void CompileAndMark(CompiledBlocks blocks, GuestMemory memory, ulong ra, BlockMode mode, nint slot, ulong entry)
    {
        var block = blocks.Find(ra, mode);
        if (block is null)
        {
            uint generation = Volatile.Read(ref *memory.CodeGeneration(ra));
            block = CompileTimed(blocks, memory, ra, mode, hostAccess: blocks.HostAccessAfter == 0);
            // No block here (too short, or the compiler failed): not asked for again while the page is unchanged.
            if (block is null) blocks.NoteShort(ra, mode, generation);
        }
        if (block is null) return;
        Mark(slot, entry, block);
        MarkEntries(memory, block, replaced: null);
    }

    /// <summary>The compile, its time counted; null when the words make no block or the compiler threw (noted: a compiler bug
    /// must not take the process, whose worker is shared, or the guest down; the words stay as they run now).</summary>
    private static CompiledBlock? CompileTimed(CompiledBlocks blocks, GuestMemory memory, ulong ra, BlockMode mode, bool hostAccess)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return BlockCompiler.Compile(blocks, memory, ra, mode, hostAccess);
        }
        catch (Exception e)
        {
            blocks.NoteFailure(ra, e);
            return null;
        }
        finally
        {
            blocks.NoteCompile(System.Diagnostics.Stopwatch.GetTimestamp() - start);
        }
    }

    /// <summary>Names <paramref name="block"/> in the decode slots of its first word and its other entries (CompiledBlock.EntryOffsets)
    /// that hold a decoded word and name no block, or <paramref name="replaced"/> (the block a promotion compiled again); a slot
    /// that names another block, or that no fetch decoded since a store (a Fill would drop the name), stays as it is.</summary>
    private static unsafe void MarkEntries(GuestMemory memory, CompiledBlock block, CompiledBlock? replaced)
    {
        ulong* first = memory.DecodedPage(block.RealAddress) + ((block.RealAddress & 0xFFF) >> 2);
        for (int k = -1; k < block.EntryOffsets.Length; k++)
        {
            ulong* slot = first + (k < 0 ? 0 : block.EntryOffsets[k] / 4);
            ulong seen = Volatile.Read(ref *slot);
            int named = (int)((seen & CompiledBlocks.SlotMask) >> CompiledBlocks.SlotShift);
            if ((long)seen >= 0 || (named != 0 && named != replaced?.Index)) continue;
            Interlocked.CompareExchange(ref *slot, (seen & ~CompiledBlocks.SlotMask) | ((ulong)block.Index << CompiledBlocks.SlotShift), seen);
        }
    }

    /// <summary>Names <paramref name="block"/> in the decode slot at <paramref name="slot"/> unless the slot changed since it read
    /// <paramref name="entry"/> (a store to the word, another block marked).</summary>
    private static unsafe void Mark(nint slot, ulong entry, CompiledBlock block) =>
        Interlocked.CompareExchange(ref *(ulong*)slot, (entry & ~CompiledBlocks.SlotMask) | ((ulong)block.Index << CompiledBlocks.SlotShift), entry);

    /// <summary>
    /// A block's loads and stores when its own host translation (<see cref="HostTranslation"/>) did not answer, one method per
    /// size: the block computes the EA from its registers and calls one of these,
    /// which is the interpreter's common case (<see cref="CachedLoad"/>, <see cref="CachedStore"/>) and otherwise the
    /// translation and the access when that raises nothing (<see cref="UncachedAccess"/>: a first access to a page, the
    /// translation cache refilled after a tlbie or a conflict). False (nothing done: a fault, a watchpoint set, 32-bit mode, an
    /// access across pages) makes the block leave before the instruction, which the interpreter runs; true makes the page's host
    /// translation for the next time. Called, not inlined: the JIT's time for a block grows with every inlined memory access.
    /// </summary>
    private static class BlockAccess
    {
        private const MethodImplOptions Fast = MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe bool Load(SimulatedVcpu v, ulong ea, int size, out ulong value)
        {
            ulong msr = v.Msr_;
            ref var entry = ref v.HostEntry(ea, store: false);
            if (entry.Tag == HostTag(ea, size, msr))
            {
                value = GuestMemory.Read(ref *(byte*)(entry.Addend + (long)ea), size, (msr & Isa.Msr.LE) != 0);
                return true;
            }
            if (!v.CachedLoad(ea, size, out value) && !v.UncachedAccess(ea, size, store: false, ref value)) return false;
            v.NoteHostTranslation(ea, store: false);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe bool Store(SimulatedVcpu v, ulong ea, int size, ulong value)
        {
            ulong msr = v.Msr_;
            ref var entry = ref v.HostEntry(ea, store: true);
            if (entry.Tag == HostTag(ea, size, msr) && *entry.Decoded == 0)
            {
                GuestMemory.Write(ref *(byte*)(entry.Addend + (long)ea), size, value, (msr & Isa.Msr.LE) != 0);
                return true;
            }
            if (!v.CachedStore(ea, size, value) && !v.UncachedAccess(ea, size, store: true, ref value)) return false;
            v.NoteHostTranslation(ea, store: true);
            return true;
        }

        [MethodImpl(Fast)] public static bool Load1(SimulatedVcpu v, ulong ea, out ulong value) => Load(v, ea, 1, out value);
        [MethodImpl(Fast)] public static bool Load2(SimulatedVcpu v, ulong ea, out ulong value) => Load(v, ea, 2, out value);
        [MethodImpl(Fast)] public static bool Load4(SimulatedVcpu v, ulong ea, out ulong value) => Load(v, ea, 4, out value);
        [MethodImpl(Fast)] public static bool Load8(SimulatedVcpu v, ulong ea, out ulong value) => Load(v, ea, 8, out value);
        [MethodImpl(Fast)] public static bool Store1(SimulatedVcpu v, ulong ea, ulong value) => Store(v, ea, 1, value);
        [MethodImpl(Fast)] public static bool Store2(SimulatedVcpu v, ulong ea, ulong value) => Store(v, ea, 2, value);
        [MethodImpl(Fast)] public static bool Store4(SimulatedVcpu v, ulong ea, ulong value) => Store(v, ea, 4, value);
        [MethodImpl(Fast)] public static bool Store8(SimulatedVcpu v, ulong ea, ulong value) => Store(v, ea, 8, value);
    }
}
