namespace ActorStep.Machine.Cpu;

/// <summary>A compiled block's code: runs it on <paramref name="vcpu"/> from its first word at effective address
/// <paramref name="cia"/>, retiring at most <paramref name="limit"/> instructions (whole basic blocks only); returns how many it
/// retired, with NIP set where it left: at a branch out of the block, at its end, at its entry or a loop's head when the most
/// the paths from there retire did not fit (BlockCompiler.Needs), before a load or store that is not the common case, or after a
/// store that changed the block's page; or, when an instruction raised an event, how many retired before that one (whose
/// handler ran).</summary>
/// <paramref name="entry"/>: 0, or k to enter at the word <see cref="CompiledBlock.EntryOffsets"/>[k - 1] bytes after the first
/// (<paramref name="cia"/> is the first word's EA either way).
internal delegate long BlockCode(SimulatedVcpu vcpu, ulong cia, long limit, int entry);

/// <summary>What a block's code is compiled for besides its words: the byte order (MSR[LE]) and the computation mode (MSR[SF]:
/// carries, CR0 and CTR tests, effective addresses).</summary>
internal readonly record struct BlockMode(bool LittleEndian, bool Mode64);

/// <summary>Runs of words of one real page entered at <see cref="RealAddress"/>, in one byte order and computation mode, compiled to
/// <see cref="Code"/>. Valid while the page's code generation is <see cref="Generation"/> (<see cref="GuestMemory.CodeGeneration"/>).</summary>
internal sealed unsafe class CompiledBlock(int index, ulong realAddress, BlockMode mode, uint* generationAt, uint generation,
    int entryNeed, int continuesAt, bool hostAccess, bool accesses, BlockCode code, int[] entryOffsets, int[] entryNeeds)
{
    public readonly int Index = index;
    public readonly ulong RealAddress = realAddress;
    public readonly BlockMode Mode = mode;
    public readonly uint* GenerationAt = generationAt;
    public readonly uint Generation = generation;
    /// <summary>The most instructions an entry retires before the block's next test of its limit (BlockCompiler.Needs): it is
    /// entered only when that many fit before the batch's end.</summary>
    public readonly int EntryNeed = entryNeed;
    /// <summary>The offset from its first word (negative for a run before it) of the word after the end of the first run that
    /// does not end with a branch that always leaves, which leaving there falls into; <see cref="NoContinuation"/> when every
    /// run ends with one.</summary>
    public readonly int ContinuesAt = continuesAt;
    public const int NoContinuation = int.MinValue;
    public readonly BlockCode Code = code;
    /// <summary>Its other entries, by their offset from its first word (BlockCompiler.Entries): a head at one runs the block from
    /// there; with what each entry retires before the block's next test of its limit, as <see cref="EntryNeed"/>.</summary>
    public readonly int[] EntryOffsets = entryOffsets, EntryNeeds = entryNeeds;

    /// <summary>The entry (1 and up) at the word <paramref name="offset"/> bytes after the first; 0 when there is none.</summary>
    public int EntryAt(long offset)
    {
        for (int k = 0; k < EntryOffsets.Length; k++)
            if (EntryOffsets[k] == offset) return k + 1;
        return 0;
    }
    /// <summary>Its loads and stores go through the vcpu's host translations (SimulatedVcpu.HostTranslation) before they call.</summary>
    public readonly bool HostAccess = hostAccess;
    /// <summary>It has loads or stores that host translations would serve (64-bit mode).</summary>
    public readonly bool Accesses = accesses;
    /// <summary>Instructions retired in it on every vcpu (racy adds: a lost count only delays its next compile).</summary>
    public long Retired;
    /// <summary>1 once its compile with host translations was asked for.</summary>
    public int Promoting;

    public bool IsCurrent
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *GenerationAt) == Generation;
    }
}

/// <summary>
/// A machine's compiled blocks, shared by its vcpus. A block is found from the decode-cache slot of its first word, which holds
/// the block's index in bits the decoded entry leaves free (<see cref="SlotShift"/>): so the interpreter's loop pays one bit test
/// per instruction, and an invalidated first word forgets its block with the slot. The index table is bounded: once full, the
/// oldest index is reused, and a slot still naming it finds a block of another address and drops the mark.
/// </summary>
internal sealed class CompiledBlocks(int threshold, bool background, long hostAccessAfter = 0)
{
    /// <summary>Decode-cache slot bits 49–62 hold the index of the block that starts at the word (0: none).</summary>
    public const int SlotShift = 49;
    public const int Capacity = 1 << 14;
    public const ulong SlotMask = (ulong)(Capacity - 1) << SlotShift;
    /// <summary>Arrival counters per machine, by a hash of the head's address: 65,536 (128 KB, made at the first arrival), where
    /// 4,096 let heads that hash alike share a count, so a lukewarm head turned hot on another's arrivals — ~15 % of a Linux boot's
    /// compiles, for no more of its instructions in blocks (MachineOptions.DefaultBlockCompileThreshold).</summary>
    private const int HeatSize = 1 << 16;

    // Grown on demand up to Capacity: a fleet's idle VMs pay for the blocks they compiled, not for the bound.
    private CompiledBlock?[] _byIndex = new CompiledBlock?[16];
    private readonly Dictionary<(ulong, BlockMode), CompiledBlock> _byAddress = [];
    // The blocks' other entries (CompiledBlock.EntryOffsets), by their real address.
    private readonly Dictionary<(ulong, BlockMode), CompiledBlock> _byEntry = [];
    private readonly Lock _gate = new();
    private int _next = 1;
    private int _compiled;
    private ushort[]? _heat;
    private readonly int _threshold = Math.Clamp(threshold, 0, ushort.MaxValue - 1);

    private long _compileTicks;

    /// <summary>Compiles run on a worker thread while the vcpu that found the block hot runs on, interpreting it until the block
    /// is ready (a compile costs ~0.5–8 ms of the JIT's time); false: on the vcpu's thread at once (tests that need a block at
    /// its first arrival).</summary>
    public bool Background { get; } = background;

    /// <summary>Instructions a block with loads or stores retires before it is compiled again with host translations for them
    /// (<see cref="MachineOptions.BlockHostAccessAfter"/>); 0: its first compile has them.</summary>
    public long HostAccessAfter { get; } = Math.Max(0, hostAccessAfter);

    private int _promoted;

    /// <summary>Blocks compiled again with host translations (<see cref="HostAccessAfter"/>).</summary>
    public int Promoted => Volatile.Read(ref _promoted);

    public void NotePromoted() => Interlocked.Increment(ref _promoted);

    // Read without the gate: a continuation asks at every arrival until its compile lands, from every vcpu.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(ulong, BlockMode, bool), CompileRequest> _requested = new();
    private readonly Lock _compileGate = new();
    private bool _closed;

    /// <summary>Queues a compile of the block at <paramref name="ra"/> (entered at <paramref name="cia"/>) for the worker
    /// unless one is queued already; then the arrival counts toward the queued one's heat (<see cref="CompileWorker"/>).
    /// <paramref name="promotion"/>: the compile again with host translations, queued apart from a first compile.</summary>
    public void Request(ulong ra, BlockMode mode, bool promotion, ulong cia, Action compile)
    {
        var key = (ra, mode, promotion);
        if (_requested.TryGetValue(key, out var queued)) { queued.Arrivals++; return; } // no lock when queued
        var request = new CompileRequest(() =>
        {
            try
            {
                // Under the gate Close takes: the machine's memory stays until the compile has read it.
                lock (_compileGate)
                    if (!_closed) compile();
            }
            finally
            {
                _requested.TryRemove(key, out _);
            }
        }, this, HeatSlot(cia));
        if (_requested.TryAdd(key, request)) CompileWorker.Post(request);
    }

    /// <summary>Arrivals counted at <paramref name="slot"/> of the heat table since it last turned hot.</summary>
    internal int HeatAt(int slot) => _heat is { } heat ? heat[slot] : 0;

    /// <summary>No compile starts after this returns, and none is running (the machine is about to release its memory).</summary>
    public void Close()
    {
        lock (_compileGate) _closed = true;
    }

    /// <summary>Blocks compiled so far (replaced ones included).</summary>
    public int Compiled => Volatile.Read(ref _compiled);

    /// <summary>Time spent compiling them (building the IL and the JIT's first compile of it), over every vcpu.</summary>
    public TimeSpan CompileTime => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _compileTicks));

    public void NoteCompile(long ticks) => Interlocked.Add(ref _compileTicks, ticks);

    private int _failed;

    /// <summary>Compiles that threw (each a compiler bug; the words stayed interpreted).</summary>
    public int Failed => Volatile.Read(ref _failed);

    /// <summary>A compile that threw (a compiler bug): its words stay interpreted; the machine's first is named on stderr.</summary>
    public void NoteFailure(ulong ra, Exception e)
    {
        if (Interlocked.Increment(ref _failed) == 1)
            Console.Error.WriteLine($"actorstep: the block at real address 0x{ra:x} could not be compiled and stays interpreted: {e.GetType().Name}: {e.Message}");
    }

    public CompiledBlock? this[int index]
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get
        {
            var table = Volatile.Read(ref _byIndex);
            return (uint)index < (uint)table.Length ? table[index] : null;
        }
    }

    /// <summary>The heat table's counter for a head at <paramref name="cia"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int HeatSlot(ulong cia) => (int)((cia >> 2) ^ (cia >> 18)) & (HeatSize - 1);

    /// <summary>Counts an arrival at a block head at <paramref name="cia"/>; true when it is hot enough to compile (its counter
    /// starts again). Counters are shared by the vcpus and by addresses that hash alike: a lost or shared count only moves a
    /// compile earlier or later.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool IsHot(ulong cia)
    {
        var heat = _heat ??= new ushort[HeatSize];
        ref ushort count = ref heat[HeatSlot(cia)];
        if (++count <= _threshold) return false;
        count = 0;
        return true;
    }

    // Starts found too short for a block (fewer than two instructions it can contain) or that the compiler failed on, with their
    // page's code generation then; read without the gate, as _requested.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(ulong, BlockMode), uint> _short = new();

    /// <summary>Notes that the words at <paramref name="ra"/> make no block while the page's code generation is
    /// <paramref name="generation"/>.</summary>
    public void NoteShort(ulong ra, BlockMode mode, uint generation)
    {
        _short[(ra, mode)] = generation;
    }

    /// <summary>Whether <paramref name="ra"/> was found too short for a block and its page has not changed since: a head reached
    /// on every arrival (a block's continuation) asks once, not at each.</summary>
    public unsafe bool KnownShort(ulong ra, BlockMode mode, uint* generationAt)
    {
        return _short.TryGetValue((ra, mode), out uint generation) && generation == Volatile.Read(ref *generationAt);
    }

    /// <summary>A current block at <paramref name="ra"/> for this mode, compiled before (by any vcpu), or one with another entry
    /// there (CompiledBlock.EntryOffsets).</summary>
    public CompiledBlock? Find(ulong ra, BlockMode mode)
    {
        lock (_gate)
            return _byAddress.TryGetValue((ra, mode), out var b) && b.IsCurrent ? b
                : _byEntry.TryGetValue((ra, mode), out var e) && e.IsCurrent ? e : null;
    }

    /// <summary>Compiles every block this table holds again, one after another on this thread, into a scratch table (this one is
    /// left as it is): the compiler's cost on a real workload's blocks, free of the worker's queue and the vcpus' contention.
    /// Returns the blocks compiled (a page changed since may leave a start too short) and the time.</summary>
    public (int Blocks, TimeSpan Elapsed) CompileAgain(GuestMemory memory)
    {
        (ulong, BlockMode, bool)[] starts;
        lock (_gate) starts = [.. _byAddress.Select(b => (b.Key.Item1, b.Key.Item2, b.Value.HostAccess))];
        var scratch = new CompiledBlocks(_threshold, background: false, HostAccessAfter);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var (ra, mode, hostAccess) in starts) SimulatedVcpu.CompileBlock(scratch, memory, ra, mode, hostAccess);
        return (scratch.Compiled, System.Diagnostics.Stopwatch.GetElapsedTime(start));
    }

    /// <summary>Registers a new block under the next index, replacing whatever held it.</summary>
    public unsafe CompiledBlock Add(ulong ra, BlockMode mode, uint* generationAt, uint generation, int entryNeed, int continuesAt,
        bool hostAccess, bool accesses, BlockCode code, int[] entryOffsets, int[] entryNeeds)
    {
        lock (_gate)
        {
            int index = _next;
            _next = _next == Capacity - 1 ? 1 : _next + 1;
            if (index == _byIndex.Length)
            {
                var grown = new CompiledBlock?[Math.Min(2 * index, Capacity)];
                _byIndex.CopyTo(grown, 0);
                Volatile.Write(ref _byIndex, grown);
            }
            if (_byIndex[index] is { } old)
            {
                if (_byAddress.TryGetValue((old.RealAddress, old.Mode), out var o) && o == old) _byAddress.Remove((old.RealAddress, old.Mode));
                foreach (int offset in old.EntryOffsets)
                    if (_byEntry.TryGetValue((old.RealAddress + (ulong)offset, old.Mode), out var e) && e == old)
                        _byEntry.Remove((old.RealAddress + (ulong)offset, old.Mode));
            }
            var block = new CompiledBlock(index, ra, mode, generationAt, generation, entryNeed, continuesAt, hostAccess, accesses, code,
                entryOffsets, entryNeeds);
            _byAddress[(ra, mode)] = block;
            foreach (int offset in entryOffsets) _byEntry[(ra + (ulong)offset, mode)] = block;
            Volatile.Write(ref _byIndex[index], block);
            _compiled++;
            return block;
        }
    }
}

/// <summary>A queued compile: <see cref="Arrivals"/> counts the vcpus' arrivals at its head while it waits (a continuation's
/// repeated requests); with the heat table's count at its head since it turned hot, the worker's priority.</summary>
internal sealed class CompileRequest(Action compile, CompiledBlocks blocks, int heatSlot)
{
    public readonly Action Compile = compile;
    public int Arrivals;

    /// <summary>Arrivals at the head since it was queued (racy reads: a lost count only moves a compile).</summary>
    public int Heat => Arrivals + blocks.HeatAt(heatSlot);
}

/// <summary>
/// Items waiting for one consumer, taken hottest first: <see cref="Take"/> returns the item whose heat (read at the take:
/// it may have grown while the item waited) is the highest, the oldest among equals. A linear scan: the queue holds tens.
/// </summary>
public sealed class HottestFirstQueue<T>(Func<T, int> heat)
{
    private readonly List<T> _items = [];

    public int Count => _items.Count;

    public void Add(T item) => _items.Add(item);

    /// <summary>Removes and returns the hottest item; the queue must not be empty.</summary>
    public T Take()
    {
        int best = 0, hottest = heat(_items[0]);
        for (int k = 1; k < _items.Count; k++)
            if (heat(_items[k]) is var h && h > hottest) (best, hottest) = (k, h);
        var item = _items[best];
        _items.RemoveAt(best);
        return item;
    }
}

/// <summary>
/// The process's block-compile thread: compiles queued by every machine's vcpus, one at a time, the one whose head the vcpus
/// arrived at most often since it was queued first (<see cref="HottestFirstQueue{T}"/>). A kernel's boot queues compiles
/// faster than the JIT takes them for its first seconds (~60 waiting, ~20 ms each in first-in first-out order); a block left
/// waiting is interpreted at every arrival, so the hottest goes first.
/// </summary>
internal static class CompileWorker
{
    private static readonly HottestFirstQueue<CompileRequest> Pending = new(r => r.Heat);
    private static readonly Lock Gate = new();
    private static readonly SemaphoreSlim Queued = new(0);
    private static readonly Lazy<Thread> Thread = new(() =>
    {
        var t = new Thread(() =>
        {
            while (true)
            {
                Queued.Wait();
                CompileRequest next;
                lock (Gate) next = Pending.Take();
                try { next.Compile(); }
                catch (Exception e) { Console.Error.WriteLine($"actorstep: block compiler: {e}"); } // never the process
            }
        }) { IsBackground = true, Name = "block compiler" };
        t.Start();
        return t;
    });

    public static void Post(CompileRequest request)
    {
        _ = Thread.Value;
        lock (Gate) Pending.Add(request);
        Queued.Release();
    }
}
