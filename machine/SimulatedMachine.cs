using System.Buffers.Binary;
using ActorStep.Machine.Cpu;
using ActorStep.Isa;
using ActorStep.Hypervisor;
using ActorStep.Machine.Mmu;

namespace ActorStep.Machine;

/// <summary>Options for a simulated VM.</summary>
/// <param name="HostTripKeepsReservation">an idealised host that keeps a vcpu's reservation across its exits (every return
/// from <see cref="IVcpu.Run"/>, not only those whose budget ran out); no real host does (its own code runs meanwhile, and Linux clears the reservation on every
/// interrupt return), so the default is false, on both flavours. For instruction-level tests that interleave vcpus one
/// instruction at a time.</param>
/// <param name="RealTimeClock">what RTAS get-time-of-day reports at timebase 0 (the clock then advances with the timebase at
/// <see cref="TimebaseFrequency"/>); null: the host's clock when the machine is created. A fixed value makes a guest that
/// prints the date print the same thing every run (the deterministic mode).</param>
/// <param name="IdleOnHostClock">a ceded vcpu's idle time is the host's: its <c>Run</c> returns <see cref="ExitReason.Idle"/> at
/// once, skipping no guest time and saying when its decrementer falls due, and the time passes when the engine says how much
/// of it did (<see cref="IVcpu.PassIdleTime"/>, after waiting on the host's clock with no thread); wake-ups are raised as
/// <see cref="VcpuWakeRequested"/>. For a debugger's engine (serve, CreateVm with a kernel: the capability
/// <see cref="HypervisorCapabilities.PacedTimebaseFrequency"/>); MachineRunner, which blocks idle vcpu threads itself, does not
/// use it</param>
/// <param name="CompileBlocks">hot blocks of integer code (loops included) are compiled to .NET code and run instead of the
/// interpreter's per-word loop, with the interpreter's semantics (machine/README.md, "Block compiler"); on by default: 1.4–1.6×
/// the interpreter's kernel rate measured side by side; false runs the interpreter alone</param>
/// <param name="BlockCompileThreshold">how many times a block head (a branch target, a batch's first instruction) is reached
/// before its block is compiled; 0 compiles at the first arrival (the tests' setting)</param>
/// <param name="CompileInBackground">blocks are compiled on a worker thread while the vcpu runs on, interpreting them until they
/// are ready; false compiles on the vcpu's thread when the block turns hot (tests that need a block at its first arrival)</param>
/// <param name="BlockHostAccessAfter">instructions a compiled block with loads or stores retires before it is compiled again with
/// the vcpu's host translations for them (<see cref="MachineOptions.DefaultBlockHostAccessAfter"/>); 0: from its first compile
/// (the tests' setting)</param>
public sealed record MachineOptions(int Vcpus = 4, ulong MemorySize = 128UL << 20, HypervisorFlavour Flavour = HypervisorFlavour.Hv,
    bool HostTripKeepsReservation = false, DateTimeOffset? RealTimeClock = null, bool IdleOnHostClock = false,
    bool CompileBlocks = true, int BlockCompileThreshold = MachineOptions.DefaultBlockCompileThreshold, bool CompileInBackground = true,
    long BlockHostAccessAfter = MachineOptions.DefaultBlockHostAccessAfter)
{
    public const int MaxVcpus = 256;

    /// <summary>Arrivals at a block head before it is compiled: a block's first compile (the JIT's, on the worker thread) costs
    /// ~0.7 ms, what it saves in a thousand or two runs. Measured on the Debian boot to the init's line, 1 vcpu, one sitting:
    /// 2,000 compiles ~1,350 blocks (0.8 s on the worker) holding 92 % of the instructions, 3.0–3.1 s; 10,000 ~530 blocks, 87 %,
    /// 3.3 s; 500 ~2,800 blocks that the worker delivers too late, 3.4 s. On 4 vcpus 2,000: 3.6–3.7 s, 10,000: 3.8 s. With
    /// arrivals counted per head in a table of 65,536 (4,096 before, where heads that hash alike shared a count): 1,500
    /// compiles ~1,540 blocks on 1 vcpu (93.8 % of the instructions in them) and ~1,750 on 4 (92.0–92.3 %) where 2,000 with the
    /// small table compiled ~1,600 (93.6–93.7 %) and ~2,000 (91.9–92.0 %); 1,000 saturates the worker (92.5–93.2 %).</summary>
    public const int DefaultBlockCompileThreshold = 1_500;

    /// <summary>Instructions a compiled block with loads or stores retires before it is compiled again with the vcpu's host
    /// translations for them (each access a compare inline instead of a call: `mpihelp_*`'s loops ~1.3× faster, but a third
    /// more of the JIT's time a block, which delays the rest when every block pays it).</summary>
    public const long DefaultBlockHostAccessAfter = 500_000;

    /// <summary>The timebase frequency the device tree states (QEMU's pseries: 512 MHz). The timebase advances once per
    /// instruction, so this is the rate a guest believes, not a wall-clock rate.</summary>
    public const ulong TimebaseFrequency = 512_000_000;
}

/// <summary>Something a guest used that the machine does not implement: <paramref name="Kind"/> "instruction" (the word),
/// "hypercall" (its number), "spr" (an SPR with storage but no behaviour here); first met by <paramref name="Vcpu"/> at <paramref name="Nip"/>,
/// which the image's symbols name <paramref name="Symbol"/> (<c>function+0xoffset</c>) when they can.</summary>
public sealed record MissingFeature(string Kind, ulong Value, int Vcpu, ulong Nip, string? Symbol = null)
{
    public override string ToString() => $"{Kind} 0x{Value:x} (vcpu {Vcpu} at 0x{Nip:x}{(Symbol is null ? "" : $" <{Symbol}>")})";
}

/// <summary>
/// The simulated POWER SMP machine: shared guest memory, vcpus, the partition's LPCR and the PAPR
/// hypercalls a KVM host would serve. Implements the KVM-shaped <see cref="IVirtualMachine"/>.
/// </summary>
public sealed partial class SimulatedMachine : IVirtualMachine
{
    private readonly SimulatedVcpu[] _vcpus;
    private long _lpcr;

    public SimulatedMachine(MachineOptions options)
    {
        if (options.Vcpus is < 1 or > MachineOptions.MaxVcpus)
            throw new ArgumentOutOfRangeException(nameof(options), options.Vcpus, $"vcpus must be 1..{MachineOptions.MaxVcpus}");
        PrepareHotCode();
        Options = options;
        Memory = new GuestMemory(options.MemorySize);
        Capabilities = new HypervisorCapabilities(
            HardwareSingleStep: options.Flavour == HypervisorFlavour.Pr,
            DebugInstruction: SimulatedVcpu.DebugInstruction,
            Flavour: options.Flavour,
            Watchpoints: true,
            PacedTimebaseFrequency: options.IdleOnHostClock ? MachineOptions.TimebaseFrequency : 0);
        _vcpus = new SimulatedVcpu[options.Vcpus];
        for (int i = 0; i < _vcpus.Length; i++) _vcpus[i] = new SimulatedVcpu(this, i);
        _wake = Enumerable.Range(0, options.Vcpus).Select(_ => new WakeSignal()).ToArray();
        Xics = new Platform.Xics(options.Vcpus, (server, raised) => _vcpus[server].SetExternal(raised));
        RealTimeClockAtZero = options.RealTimeClock ?? DateTimeOffset.UtcNow;
        bool overridden = BlockThresholdOverride is not null && options.BlockCompileThreshold == MachineOptions.DefaultBlockCompileThreshold;
        if (options.CompileBlocks || overridden)
            Blocks = new CompiledBlocks(overridden ? BlockThresholdOverride!.Value : options.BlockCompileThreshold, options.CompileInBackground,
                overridden && BlockThresholdOverride == 0 ? 0 : options.BlockHostAccessAfter);
    }

    /// <summary>Compiles the interpreter's hot code on a thread of its own, once a process, while the caller goes on (a
    /// process about to build a machine calls it first; a machine's constructor calls it too).</summary>
    public static void PrepareHotCode() => Cpu.HotCode.PrepareInBackground();

    /// <summary>ACTORSTEP_BLOCK_THRESHOLD, when set, turns the block compiler on with this threshold for every machine that
    /// leaves the threshold at its default: for running whole test folders with blocks compiled early (0: at their first
    /// arrival). A machine that states its threshold (the block compiler's own tests) keeps its options.</summary>
    private static readonly int? BlockThresholdOverride =
        int.TryParse(Environment.GetEnvironmentVariable("ACTORSTEP_BLOCK_THRESHOLD"), out int t) ? t : null;

    /// <summary>The compiled blocks every vcpu enters (null: <see cref="MachineOptions.CompileBlocks"/> off).</summary>
    internal CompiledBlocks? Blocks { get; }

    /// <summary>Blocks compiled so far, the time their compiles took and the compiles that failed (a compiler bug; those words
    /// stay interpreted); null: the compiler is off.</summary>
    public (int Blocks, TimeSpan CompileTime, int Failed)? CompiledBlockStatistics => Blocks is { } b ? (b.Compiled, b.CompileTime, b.Failed) : null;

    /// <summary>Of <see cref="CompiledBlockStatistics"/>' blocks, those compiled again with host translations for their loads and
    /// stores once they had retired <see cref="MachineOptions.BlockHostAccessAfter"/> instructions; null: the compiler is off.</summary>
    public int? BlocksPromoted => Blocks?.Promoted;

    /// <summary>Compiles every block compiled so far again, one after another on the calling thread, without touching the
    /// machine's own (bench kernel-rate: the compiler's cost per block on a real workload). Null: the compiler is off.</summary>
    public (int Blocks, TimeSpan Elapsed)? CompileBlocksAgain() => Blocks?.CompileAgain(Memory);

    /// <summary>Creates a machine and loads an ELF image into it; every vcpu starts at the entry.</summary>
    public static SimulatedMachine Load(ElfImage image, MachineOptions options)
    {
        var vm = new SimulatedMachine(options);
        vm.LoadImage(image);
        return vm;
    }

    public MachineOptions Options { get; }
    public GuestMemory Memory { get; }
    public HypervisorCapabilities Capabilities { get; }
    public int VcpuCount => _vcpus.Length;
    public ulong MemorySize => Memory.Size;
    public bool ImageIsLittleEndian { get; private set; } = true;
    /// <summary>The loaded image's code symbols (names for stops), null when it has no symbol table. The first ask reads the
    /// image's symbol table (~0.05 s for a Debian vmlinux; see <see cref="ElfImage.Load"/>).</summary>
    public SymbolIndex? Symbols => _symbolTables?.Value.Code is { Count: > 0 } code ? code : null;

    private Lazy<ElfImage.SymbolTables>? _symbolTables;

    /// <summary>The partition's LPCR (H_SET_MODE changes AIL and ILE for every vcpu at once).</summary>
    internal ulong Lpcr
    {
        get => (ulong)Volatile.Read(ref _lpcr);
        set => Volatile.Write(ref _lpcr, (long)value);
    }

    public event ConsoleOutputHandler? ConsoleOutput;

    public event VcpuWakeHandler? VcpuWakeRequested;

    private readonly List<MissingFeature> _missing = new();

    /// <summary>What the guest asked for that this machine lacks (an illegal instruction word, an unknown hypercall or SPR),
    /// each kind and value recorded once, in the order first met: where a kernel's boot runs into the simulator's edge.</summary>
    public IReadOnlyList<MissingFeature> Missing
    {
        get { lock (_missing) return _missing.ToArray(); }
    }

    /// <summary>Raised on the vcpu's thread when <see cref="Missing"/> gains an entry (so a run can name it as it happens).</summary>
    public event Action<MissingFeature>? MissingFeatureMet;

    internal void NoteMissing(string kind, ulong value, int vcpu, ulong nip)
    {
        MissingFeature added;
        lock (_missing)
        {
            if (_missing.Count >= 256 || _missing.Exists(m => m.Kind == kind && m.Value == value)) return;
            _missing.Add(added = new MissingFeature(kind, value, vcpu, nip, Symbols?.Describe(nip, (_vcpus[vcpu].Msr & Isa.Msr.IR) != 0)));
        }
        MissingFeatureMet?.Invoke(added);
    }

    public IVcpu GetVcpu(int index) => (uint)index < (uint)_vcpus.Length
        ? _vcpus[index]
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"this VM has vcpus 0..{_vcpus.Length - 1}");

    public SimulatedVcpu Vcpu(int index) => (SimulatedVcpu)GetVcpu(index);

    /// <summary>Gives guest RAM and the decode cache back to the OS now, not when a collection finds the machine unreachable.
    /// Nothing may run a vcpu afterwards (the memory reads as zeros; host reads and writes throw).</summary>
    public void Dispose()
    {
        Blocks?.Close();
        Memory.Release();
    }

    public void ReadMemory(ulong realAddress, Span<byte> into) => Memory.Read(realAddress, into);
    public void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data) => Memory.Write(realAddress, data);

    /// <summary>Planted breakpoints by real address, with the word each replaced (KVM: the debug word is written into guest memory).</summary>
    private readonly Dictionary<ulong, uint> _planted = new();

    /// <summary>Breakpoints planted now (also once disposed: how many a destroyed VM's guest was left with).</summary>
    public int PlantedBreakpoints
    {
        get { lock (_planted) return _planted.Count; }
    }

    public void InsertSoftwareBreakpoint(SoftwareBreakpoint breakpoint)
    {
        ulong ra = breakpoint.RealAddress;
        if ((ra & 3) != 0 || !Memory.Contains(ra, 4))
            throw new ArgumentOutOfRangeException(nameof(breakpoint), $"real address 0x{ra:x} is not a word of guest memory");
        Span<byte> word = stackalloc byte[4];
        lock (_planted)
        {
            if (_planted.ContainsKey(ra)) return;
            Memory.Read(ra, word);
            _planted[ra] = BinaryPrimitives.ReadUInt32BigEndian(word);
            // The debug word reads the same in both byte orders: planting it needs no knowledge of MSR[LE].
            BinaryPrimitives.WriteUInt32BigEndian(word, SimulatedVcpu.DebugInstruction);
            Memory.Write(ra, word);
        }
    }

    public void RemoveSoftwareBreakpoint(SoftwareBreakpoint breakpoint)
    {
        Span<byte> word = stackalloc byte[4];
        lock (_planted)
        {
            if (!_planted.Remove(breakpoint.RealAddress, out uint original)) return;
            BinaryPrimitives.WriteUInt32BigEndian(word, original);
            Memory.Write(breakpoint.RealAddress, word);
        }
    }

    private readonly List<Watchpoint> _watchpoints = new();
    /// <summary>The watchpoints set, or null when none is: the one field a data access reads when there is nothing to watch.
    /// Replaced whole on every change, so a vcpu reads a consistent set without a lock.</summary>
    internal WatchSet? Watchpoints;

    public void InsertWatchpoint(Watchpoint watchpoint)
    {
        if (watchpoint.Invalid() is { } why) throw new ArgumentOutOfRangeException(nameof(watchpoint), why);
        lock (_watchpoints)
        {
            _watchpoints.Add(watchpoint);
            Volatile.Write(ref Watchpoints, new WatchSet(_watchpoints.ToArray()));
        }
        // A compiled block's loads and stores do not look at the watchpoints: they use host translations made while none was
        // set, which this drops (each vcpu's next check of the translation generation: a block's entry, a jump back).
        InvalidateTranslations();
    }

    public bool RemoveWatchpoint(Watchpoint watchpoint)
    {
        lock (_watchpoints)
        {
            if (!_watchpoints.Remove(watchpoint)) return false;
            Volatile.Write(ref Watchpoints, _watchpoints.Count == 0 ? null : new WatchSet(_watchpoints.ToArray()));
            return true;
        }
    }

    public void LoadImage(ElfImage image)
    {
        foreach (var seg in image.Segments)
        {
            if (!Memory.Contains(seg.PhysicalAddress, seg.MemorySize))
                throw new ElfFormatException($"segment at 0x{seg.PhysicalAddress:x} (+0x{seg.MemorySize:x}) is outside guest RAM (0x{Memory.Size:x} bytes)");
            Memory.Write(seg.PhysicalAddress, seg.Data.Span);
            if (seg.MemorySize > (ulong)seg.Data.Length)
                Memory.Zero(seg.PhysicalAddress + (ulong)seg.Data.Length, seg.MemorySize - (ulong)seg.Data.Length);
        }
        ImageIsLittleEndian = image.LittleEndian;
        _symbolTables = image.SymbolTablesOnFirstUse;
        _halt = null;
        IsPseriesPlatform = false;
        // LPCR[ILE] matches the image so that interrupts run in its byte order until H_SET_MODE says otherwise.
        Lpcr = image.LittleEndian ? Isa.Lpcr.ILE : 0;
        foreach (var v in _vcpus) v.Reset(image.Entry, image.LittleEndian);
    }

    private ProcessTable _processTable;
    private long _tlbGeneration;

    /// <summary>The process table the guest registered (radix translation is on once it has one).</summary>
    internal ProcessTable ProcessTable => _processTable;

    /// <summary>Bumped by every invalidation; a vcpu whose cache is older drops it before its next translation.</summary>
    internal long TlbGeneration => Volatile.Read(ref _tlbGeneration);

    private long _timebaseRead;

    /// <summary>
    /// The timebase as a read of it (mftb, mfspr TB, H_XIRR_X) by a vcpu whose own count is <paramref name="tb"/> returns it:
    /// never less than any read before it on any vcpu. Each vcpu's timebase counts its own instructions and the run keeps them
    /// within <see cref="MachineRunner.MaxSkew"/> of each other, but a guest takes the timebase for one clock (as it is on
    /// hardware): Linux's timekeeping subtracts one vcpu's read from another's, and a negative difference is a huge positive
    /// one, which its catching-up loop (timekeeping_advance, second_overflow) would work through for hours. A vcpu behind
    /// the latest read sees the time stand still until its own count passes it.
    /// </summary>
    internal ulong TimebaseRead(ulong tb) => (ulong)MachineRunner.InterlockedMax(ref _timebaseRead, (long)tb);

    internal void InvalidateTranslations() => Interlocked.Increment(ref _tlbGeneration);
}

/// <summary>The watchpoints set at one moment, with the lowest and highest byte any of them covers: an access outside
/// [<see cref="First"/>, <see cref="Last"/>] is rejected without looking at each one.</summary>
internal sealed class WatchSet(Watchpoint[] list)
{
    public readonly Watchpoint[] List = list;
    public readonly ulong First = list.Min(w => w.Address);
    public readonly ulong Last = list.Max(w => w.Address + w.Length - 1);

    /// <summary>The access [ea, ea + size) may touch a watched byte (an access that wraps the address space always may).</summary>
    public bool MayHit(ulong ea, ulong size)
    {
        ulong end = ea + size - 1;
        return end < ea || (ea <= Last && end >= First);
    }
}
