using System.Runtime.CompilerServices;
using ActorStep.Isa;
using ActorStep.Hypervisor;
using ActorStep.Machine.Mmu;

namespace ActorStep.Machine.Cpu;

/// <summary>GPR0–31. Not an inline array: its element access makes a span and checks its bounds, several inlinees per register,
/// which in a compiled block (SimulatedVcpu.Blocks.cs) of a few dozen instructions exhausted the JIT's inlining limits and left
/// the instructions' methods called instead of inlined.</summary>
internal unsafe struct RegisterFile32
{
    private fixed ulong _r[32];

    /// <summary>Register <paramref name="n"/>, 0–31 (every index is a 5-bit field or a constant): one address computation.</summary>
    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public ref ulong this[int n]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _r[n];
    }

    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public Span<ulong> AsSpan() => System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref _r[0], 32);
}

/// <summary>VSR0–63 as doubleword pairs in host order: VSR n is <c>[2n+1]</c> (doubleword 0, the FPR for n &lt; 32) and
/// <c>[2n]</c> (doubleword 1), so that <c>[2n..2n+1]</c> read as one little-endian 128-bit value is the register.</summary>
[InlineArray(128)]
internal struct VsrFile { private ulong _e; }

[InlineArray(4)]
internal struct RegisterFile4 { private ulong _e; }

/// <summary>
/// One simulated POWER vcpu: the fetch/decode/dispatch loop and the architected state. Instruction
/// handlers live in partial files per family; interrupt delivery in <c>SimulatedVcpu.Interrupts.cs</c>.
/// </summary>
public sealed partial class SimulatedVcpu : IVcpu
{
    /// <summary>The interpreter's loop and what it calls on every instruction or block: compiled optimised at their first call.
    /// Tiered compilation would run them as unoptimised code first and, while a booting guest keeps the JIT busy, for seconds:
    /// a kernel's boot is over before the call counting even starts.</summary>
    internal const MethodImplOptions HotPath = MethodImplOptions.AggressiveOptimization;

    public const uint DebugInstruction = 0x00dddd00;

    private readonly SimulatedMachine _vm;
    private readonly GuestMemory _mem;

    // Architected state.
    internal RegisterFile32 Gpr;
    internal VsrFile Vsr; // FPRs, VRs and VSRs overlaid as the ISA defines (SimulatedVcpu.Vector.cs)
    internal uint Vscr, Vrsave;
    internal ulong Nip, Msr_, Lr, Ctr, Xer, Srr0, Srr1, Dar;
    internal uint Cr, Fpscr, Dsisr;
    internal RegisterFile4 Sprg;
    internal ulong Tb;
    private uint _decAnchor;
    private ulong _decAnchorTb;

    // Reservation (lwarx/ldarx): address, size and the raw bytes seen.
    private bool _resvValid;
    private ulong _resvAddr;
    private int _resvSize;
    private ulong _resvRaw;

    // Control of the current instruction.
    private ulong _cia;
    private Event _event;
    private VcpuExit _exit;

    // Run control.
    private GuestDebug _debug;
    private volatile bool _exitRequested;
    private volatile bool _prodded;
    private bool _ceded;
    private bool _stopped;
    private volatile bool _held;
    private long _retired;

    // Fetch cache: the decoded page of the last fetched effective page under the last fetch mode.
    private ulong _fetchEaPage = ulong.MaxValue;
    private ulong _fetchMode;
    private ulong _fetchRaPage;
    private unsafe ulong* _fetchDecoded; // the page's decode-cache slots, in guest memory's mapping (kept alive by _mem)

    [Flags]
    private enum Event : byte
    {
        None = 0,
        /// <summary>The instruction faulted (a program, storage, alignment or FP-unavailable interrupt): it did not complete, so it is
        /// neither counted nor traced (Book III §6.5.15). Set by <c>RaiseFault</c> only.</summary>
        Interrupted = 1,
        /// <summary>rfid: never traced.</summary>
        NoTrace = 2,
        /// <summary>Leave the run loop with <see cref="_exit"/>.</summary>
        Exit = 4,
        /// <summary>Something the batch bound depends on changed (MSR[EE], DEC, cede).</summary>
        Rebatch = 8,
    }

    internal SimulatedVcpu(SimulatedMachine vm, int index)
    {
        _vm = vm;
        _mem = vm.Memory;
        Index = index;
        unsafe { _hostTranslationsAt = (nint)Unsafe.AsPointer(ref _hostTranslations[0]); }
        BuildDispatchTable();
    }

    public int Index { get; }
    public bool IsStoppedForGood => _stopped;
    public long InstructionsRetired => _retired;
    public bool HoldAsyncInterrupts { get; set; }
    internal ulong Pvr => 0x004E1200; // POWER9 DD2.0

    internal ulong Msr { get => Msr_; set => Msr_ = value; }

    internal uint Dec
    {
        get => (uint)(_decAnchor - (Tb - _decAnchorTb));
        set { _decAnchor = value; _decAnchorTb = Tb; }
    }

    /// <summary>A decrementer exception exists while DEC's most significant bit is 1 (Book III §7.3, LPCR[LD]=0).</summary>
    private bool DecPending => (int)Dec < 0;

    /// <summary>
    /// The platform's entry state (machine/guests/README.md): every register 0 but NIP = entry, r3 = index,
    /// MSR = SF|ME(|LE); the vcpu runnable again. Loading an image restarts a vcpu that ran before, so
    /// nothing of its earlier run may survive (the timebase keeps counting: time never goes backwards).
    /// </summary>
    internal void Reset(ulong entry, bool littleEndian)
    {
        Gpr = default;
        Gpr[3] = (ulong)Index;
        Vsr = default;
        Vscr = 0x00010000; // VSCR[NJ] = 1 at reset (Book I §6.3)
        Vrsave = 0;
        Array.Clear(_otherSpr);
        Pidr = 0;
        ClearTranslationCache();
        Nip = entry;
        Msr_ = Isa.Msr.SF | Isa.Msr.ME | (littleEndian ? Isa.Msr.LE : 0);
        Lr = Ctr = Xer = Srr0 = Srr1 = Dar = 0;
        Cr = Fpscr = Dsisr = 0;
        Sprg = default;
        Dec = 0x7FFFFFFF;
        _resvValid = false;
        _event = Event.None;
        _exit = default;
        _prodded = false;
        _ceded = false;
        _stopped = false;
        _held = false;
        _startRequest = null;
        _externalPending = false;
        _fetchEaPage = ulong.MaxValue;
        _watchPassCia = ulong.MaxValue;
    }

    /// <summary>Linux's kexec-style entry (machine/Platform/LinuxBoot.cs): r3 = the device tree, r4 = r5 = 0, real mode, SF|ME|LE.</summary>
    internal void EnterLinux(ulong nip, ulong fdt)
    {
        Reset(nip, littleEndian: true);
        Gpr[3] = fdt;
    }

    /// <summary>A secondary vcpu that has not been started (a pseries cpu waiting for RTAS start-cpu): it runs nothing, time
    /// passes for it. Only while nothing runs it (before the machine is handed to a runner).</summary>
    public void Hold() => _held = true;

    public void SetGuestDebug(GuestDebug debug)
    {
        if ((debug & GuestDebug.SingleStep) != 0 && !_vm.Capabilities.HardwareSingleStep)
            throw new NotSupportedException("this backend has no hardware single-step (KVM_CAP_PPC_GUEST_DEBUG_SSTEP = 0)");
        _debug = debug;
    }

    public void RequestExit()
    {
        _exitRequested = true;
        _vm.SignalExitRequested(Index); // ends a runner's idle wait
    }

    /// <summary>One timebase tick per instruction, as if the vcpu had run it (DEC follows TB).</summary>
    public void RetireEmulatedInstruction() => Tb++;

    internal void Prod()
    {
        _prodded = true;
        _vm.SignalWake(Index);
    }

    /// <summary>
    /// Runs the guest until an exit or until <paramref name="budget"/> timebase ticks have passed. An exit is a trip to the
    /// host, which loses the guest's reservation (a hypercall the host serves inside Run is not one): a real host's own code
    /// runs on the hardware thread between the exit and the re-entry, its own larx/stcx. included. Both flavours:
    /// a KVM-PR hardware single step exits to the host too. So a lwarx … stwcx. loop stepped one instruction at a time never
    /// succeeds, here as on hardware and on QEMU; the step engine runs such a sequence whole (step-engine.md §3).
    /// The budget running out is not such an exit: it is this simulator slicing its own time (a runner's quantum, a debugger's
    /// slice), at points that differ between a debugged and an undebugged run, so it must leave the guest untouched, or a
    /// continue would end unlike the undebugged run (a larx … stcx. retried once more; step-engine.md §6 invariant 1) and the
    /// deterministic mode would depend on its quantum. A requested exit (a halt) is a host trip.
    /// </summary>
    public VcpuExit Run(long budget)
    {
        var exit = RunGuest(budget);
        bool sliced = exit.Reason == ExitReason.BudgetExpired && !_exitRequested;
        if (!_vm.Options.HostTripKeepsReservation && !sliced) _resvValid = false;
        return exit;
    }

    private VcpuExit RunGuest(long budget)
    {
        if (_stopped) return _exit;
        if (_vm.Halt is { } halted) return HaltWithMachine(halted);
        if (_held && _startRequest is { } start) ApplyStart(start);
        ulong end = Tb + (ulong)Math.Max(budget, 0);
        if (_held)
        {
            Tb = Math.Max(Tb, end);
            return new VcpuExit(ExitReason.Idle, Nip, 0, HeldDetail);
        }
        _exitRequested = false;
        bool hwStep = (_debug & GuestDebug.SingleStep) != 0;
        while (true)
        {
            if (_vm.Halt is { } halt) return HaltWithMachine(halt);
            if (_held) return new VcpuExit(ExitReason.Idle, Nip, 0, HeldDetail); // RTAS stop-self
            // Idle on the host's clock (MachineOptions.IdleOnHostClock): no guest time passes here; the engine waits and says how
            // much did (PassIdleTime). Otherwise the budget's time passes at once.
            if (_ceded && !Wake(_vm.Options.IdleOnHostClock ? Tb : end))
                return new VcpuExit(ExitReason.Idle, Nip, WakesIn: TicksUntilWake);
            if (Tb >= end || _exitRequested) return new VcpuExit(ExitReason.BudgetExpired, Nip);

            bool asyncAllowed = (Msr_ & Isa.Msr.EE) != 0 && !HoldAsyncInterrupts;
            // Direct external before decrementer (Book III §6.8 interrupt priorities).
            if (asyncAllowed && _externalPending)
            {
                _cia = Nip;
                Deliver(InterruptKind.External, Nip, 0);
                if (hwStep) return new VcpuExit(ExitReason.SingleStep, Nip);
                continue;
            }
            if (asyncAllowed && DecPending)
            {
                _cia = Nip;
                Deliver(InterruptKind.Decrementer, Nip, 0);
                if (hwStep) return new VcpuExit(ExitReason.SingleStep, Nip);
                continue;
            }

            ulong batchEnd = end;
            if (asyncAllowed) batchEnd = Math.Min(batchEnd, Tb + (ulong)Dec + 1);
            if (hwStep) batchEnd = Math.Min(batchEnd, Tb + 1);
            ExecuteBatch(batchEnd);
            if ((_event & Event.Exit) != 0)
            {
                _event = Event.None;
                return _exit;
            }
            _event = Event.None;
            if (hwStep) return new VcpuExit(ExitReason.SingleStep, Nip);
        }
    }

    /// <summary>The dispatch loop: fetch through the decode cache, execute, count. MSR[IR], MSR[LE], MSR[PR] and MSR[SE] are read
    /// once: every instruction that changes the MSR (mtmsr[d], rfid, hrfid, rfscv, sc, scv, an interrupt, a cede) ends the batch
    /// with an event, so they hold for the whole of it. A traced batch (MSR[SE]) runs one instruction (<see
    /// cref="ExecuteTraced"/>).</summary>
    [MethodImpl(HotPath)]
    private unsafe void ExecuteBatch(ulong batchEnd)
    {
        if ((Msr_ & Isa.Msr.SE) != 0)
        {
            ExecuteTraced(batchEnd);
            return;
        }
        if (FetchMode != _fetchMode) _fetchEaPage = ulong.MaxValue;
        // Only what the loop needs at every word is held in it (the fetch mode, the byte order, the block's mode are read from
        // the MSR where they are needed, which is seldom): fewer values live across the handler's call stay in registers.
        var blocks = _vm.Blocks;
        // A head is where a block may start: the word after the last one unless that one fell through to it (`follows`), the
        // batch's first word, a branch's target, the word a block left at or did not run from and the one after it.
        ulong follows = Head;
        while (Tb < batchEnd)
        {
            ulong cia = Nip;
            var (slot, entry) = FetchSlot(cia);
            if (slot is null) return;
            if (blocks is not null)
            {
                if ((entry & CompiledBlocks.SlotMask) != 0)
                {
                    var run = RunBlock(blocks, ref *slot, entry, cia, batchEnd, out bool fellThrough);
                    if (run == BlockRun.EndsBatch) return;
                    // The word a block left at, or one it did not run from, may be one the interpreter runs next (a load or
                    // store that was not the common case, a word no block contains): a block may start at the word after it.
                    if (run == BlockRun.Ran) { follows = fellThrough ? ContinuationThenHead : HeadThenHead; continue; }
                    follows = HeadThenHead;
                }
                // A block's continuation (the word a block fell off its end into: a long run of straight code, a loop's exit) is
                // as hot as the block; any other head once its arrivals reach the threshold.
                else if (cia != follows
                    && (follows == ContinuationThenHead ? BlockCompiler.CanStart((Op)(ushort)(entry >> 32), (uint)entry) : blocks.IsHot(cia)))
                    CompileBlockAt(slot, entry, cia, (Msr_ & Isa.Msr.LE) != 0);
            }
            if (!Retire(cia, entry, traced: false)) return;
            follows = follows is HeadThenHead or ContinuationThenHead ? Head : cia + 4;
        }
    }

    /// <summary>A traced batch: the instruction at NIP, then the trace interrupt after it (Book III §6.5.15), unless it raised an
    /// event.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private unsafe void ExecuteTraced(ulong batchEnd)
    {
        if (Tb >= batchEnd) return;
        if (FetchMode != _fetchMode) _fetchEaPage = ulong.MaxValue;
        ulong cia = Nip;
        var (slot, entry) = FetchSlot(cia);
        if (slot is null) return;
        if (Retire(cia, entry, traced: true)) DeliverTrace();
    }

    /// <summary>Runs the decoded word at <paramref name="cia"/> (NIP = CIA + 4, its handler) and counts it; false when it raised an
    /// event, which ends the batch (<see cref="EndWithEvent"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Retire(ulong cia, ulong entry, bool traced)
    {
        Nip = cia + 4;
        Execute((Op)(ushort)(entry >> 32), (uint)entry);
        if (_event != Event.None)
        {
            EndWithEvent(traced);
            return false;
        }
        Tb++; _retired++;
        return true;
    }

    /// <summary>The decode slot of the word at <paramref name="cia"/> (now CIA) and its entry, decoded in the batch's byte order;
    /// no slot after an ISI. (A pair returned in two registers: an out parameter would keep the entry in memory.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe Fetched FetchSlot(ulong cia)
    {
        const ulong DecodedMask = GuestMemory.DecodedValid | 1UL << 48;
        _cia = cia;
        if ((cia & ~0xFFFUL) != _fetchEaPage && !RefillFetch(cia, FetchMode)) return default;
        ulong* slot = _fetchDecoded + ((cia & 0xFFF) >> 2);
        ulong entry = Volatile.Read(ref *slot);
        // Valid, and decoded in the batch's byte order (MSR[LE] is bit 0, the entry's is bit 48).
        if ((entry & DecodedMask) != (GuestMemory.DecodedValid | (Msr_ & Isa.Msr.LE) << 48))
            entry = Fill(ref *slot, entry, cia, (Msr_ & Isa.Msr.LE) != 0);
        return new Fetched(slot, entry);
    }

    private readonly unsafe struct Fetched(ulong* slot, ulong entry)
    {
        private readonly ulong* _slot = slot;
        private readonly ulong _entry = entry;

        public void Deconstruct(out ulong* slot, out ulong entry)
        {
            slot = _slot;
            entry = _entry;
        }
    }

    /// <summary>What ends a batch after an instruction that raised an event: an exit leaves it for the run loop; an interrupted
    /// instruction is neither counted nor traced (an sc still took its tick); any other is counted, and traced unless it is one
    /// that is never traced.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EndWithEvent(bool traced)
    {
        if ((_event & Event.Exit) != 0) return;
        if ((_event & Event.Interrupted) != 0)
        {
            _event = Event.None;
            return;
        }
        bool trace = traced && (_event & Event.NoTrace) == 0;
        Tb++; _retired++;
        _event = Event.None;
        if (trace) DeliverTrace();
    }

    /// <summary>The MSR bits a fetch's translation depends on: MSR[IR], MSR[LE], and MSR[PR] (a leaf's execute authority depends on
    /// it, so a return to problem state translates the page again).</summary>
    private ulong FetchMode => Msr_ & (Isa.Msr.IR | Isa.Msr.LE | Isa.Msr.PR);

    // ExecuteBatch's `follows` when it is no word's address (a word's is a multiple of 4): the next word is a head (the batch's
    // first); the next word is a head and so is the one after it (a block left at it or did not run from it); the same, the next
    // word a block's continuation (a block fell off its end into it).
    private const ulong Head = 1, HeadThenHead = 2, ContinuationThenHead = 3;

    /// <summary>
    /// Decodes the word at <paramref name="cia"/> and publishes it in its decode-cache slot unless a store changed
    /// the slot since it read <paramref name="seen"/>: a store on another thread (a breakpoint planted or removed)
    /// writes memory, then the slot, so a fill that read the old word must not overwrite that change, not even for
    /// a moment, or another vcpu could execute the stale word. This fetch itself executes what it read, as if it
    /// came just before the store.
    /// </summary>
    [MethodImpl(HotPath)]
    private ulong Fill(ref ulong slot, ulong seen, ulong cia, bool le)
    {
        if ((long)seen < 0)
        {
            // Decoded for the other byte order. Retire the entry for a fresh invalid value first: the same entry
            // can come back (the word restored and decoded again), so it cannot be the compare-and-swap's witness.
            ulong fresh = _mem.NextInvalid();
            ulong was = Interlocked.CompareExchange(ref slot, fresh, seen);
            seen = was == seen ? fresh : was;
        }
        uint raw = (uint)_mem.Load(_fetchRaPage | (cia & 0xFFF), 4, le);
        ulong entry = GuestMemory.DecodedValid | (le ? 1UL << 48 : 0) | ((ulong)OpcodeTable.Decode(raw) << 32) | raw;
        if ((long)seen >= 0) Interlocked.CompareExchange(ref slot, entry, seen); // else another fill won: leave it
        return entry;
    }

    /// <summary>A fetch page's translation and decode slots (<see cref="RefillFetch"/>), found by its EA page.</summary>
    private unsafe struct FetchPage
    {
        /// <summary>The EA page | the fetch mode's MSR[IR] and MSR[LE] | its MSR[PR] &gt;&gt; 4 | 0x800 (valid).</summary>
        public ulong Tag;
        public ulong RaPage;
        public ulong* Decoded;
    }

    private const int FetchPageCount = 32;

    /// <summary>The fetch pages translated last, direct-mapped by EA page: a call into another page and its return find the
    /// caller's page again without a translation. Valid while the translation cache is: cleared with it, and a hit also needs
    /// the machine's translation generation unchanged (another vcpu's tlbie), as a translation-cache hit does.</summary>
    private readonly FetchPage[] _fetchPages = new FetchPage[FetchPageCount];

    /// <summary>Makes <paramref name="cia"/>'s page the fetch page: one of the last <see cref="FetchPageCount"/> (inline in the
    /// dispatch loop), else translated (<see cref="TranslateFetch"/>); false after an ISI.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe bool RefillFetch(ulong cia, ulong mode)
    {
        ulong page = cia & ~0xFFFUL;
        ulong tag = page | (mode & (Isa.Msr.IR | Isa.Msr.LE)) | ((mode & Isa.Msr.PR) >> 4) | 0x800;
        ref var cached = ref _fetchPages[(int)(page >> 12) & (FetchPageCount - 1)];
        if (cached.Tag == tag && _vm.TlbGeneration == _tlbGeneration)
        {
            _fetchEaPage = page;
            _fetchMode = mode;
            _fetchRaPage = cached.RaPage;
            _fetchDecoded = cached.Decoded;
            return true;
        }
        return TranslateFetch(cia, mode, page, tag, ref cached);
    }

    [MethodImpl(HotPath | MethodImplOptions.NoInlining)]
    private unsafe bool TranslateFetch(ulong cia, ulong mode, ulong page, ulong tag, ref FetchPage cached)
    {
        var fault = Translate(cia, AccessKind.Fetch, out ulong ra);
        if (fault == RadixFault.None && !_mem.Contains(ra & ~0xFFFUL, 4096)) fault = RadixFault.NoTranslation;
        if (fault != RadixFault.None)
        {
            // ISI: SRR0 = the address that could not be fetched; SRR1[33] no translation, SRR1[35] a fetch the leaf does not
            // permit (Book III §6.5.5; POWER9 and QEMU set 35, not the data side's 36, for it).
            if (fault == RadixFault.Segment) RaiseFault(InterruptKind.InstructionSegment, cia, 0);
            else RaiseFault(InterruptKind.InstructionStorage, cia, fault == RadixFault.Protection ? Srr1Bits.Bit35 : Srr1Bits.Bit33);
            _fetchEaPage = ulong.MaxValue;
            return false;
        }
        _fetchEaPage = page;
        _fetchMode = mode;
        _fetchRaPage = ra & ~0xFFFUL;
        _fetchDecoded = _mem.DecodedPage(ra);
        // Cached only from a translation cache that is current (a walk may have flushed it meanwhile: then it is now).
        cached = new FetchPage { Tag = tag, RaPage = _fetchRaPage, Decoded = _fetchDecoded };
        return true;
    }

    /// <summary>Clears EA bits 0:3, which real mode (and the fixed map's quadrant 3) ignores.</summary>
    private const ulong RealModeMask = 0x0FFFFFFFFFFFFFFF;

    /// <summary>
    /// Real mode ignores EA bits 0:3. With relocation on: through the radix tree once the guest registered a process table
    /// (H_REGISTER_PROC_TBL), else the platform's fixed linear map (EA 0xC000… + x maps to x, quadrant 0 is identity).
    /// Side-effect free (no R/C update, no translation cache): what a debugger asks.
    /// </summary>
    public bool TryTranslate(ulong ea, ulong msr, AccessKind access, out ulong ra)
    {
        bool relocate = (msr & (access == AccessKind.Fetch ? Isa.Msr.IR : Isa.Msr.DR)) != 0;
        if (!relocate) ra = ea & RealModeMask;
        else if (_vm.ProcessTable.IsRegistered)
        {
            ra = 0;
            if (RadixWalk.Walk(_mem, _vm.ProcessTable, Pidr, ea, out var leaf) != RadixFault.None
                || !RadixWalk.Permits(leaf.Pte, access, (msr & Isa.Msr.PR) != 0)) return false;
            ra = leaf.RealAddress;
        }
        else
        {
            switch (ea >> 60)
            {
                case 0xC: ra = ea & RealModeMask; break;
                case 0x0: ra = ea; break;
                default: ra = 0; return false;
            }
        }
        return ra < _mem.Size;
    }

    /// <summary>The machine was powered off, rebooted or terminated by the guest (RTAS): every vcpu stops for good.</summary>
    private VcpuExit HaltWithMachine(MachineHalt halt)
    {
        _stopped = true;
        _exit = new VcpuExit(ExitReason.Stopped, Nip, halt.Status, halt.Detail);
        return _exit;
    }

    private void Exit(ExitReason reason, ulong address, long status = 0, string? detail = null, WatchpointHit? watch = null)
    {
        _exit = new VcpuExit(reason, address, status, detail, watch);
        _event |= Event.Exit;
    }

    /// <summary>Ticks until a ceded vcpu's decrementer wakes it (0: an exception exists already), or null when it cannot
    /// (MSR[EE]=0 or asynchronous interrupts held): only an H_PROD (or, with EE=1, an external interrupt) can.</summary>
    private ulong? TicksUntilWake =>
        (Msr_ & Isa.Msr.EE) != 0 && !HoldAsyncInterrupts ? (DecPending ? 0 : (ulong)Dec + 1) : null;

    public void PassIdleTime(ulong ticks)
    {
        if (_ceded && !_held && !_stopped) Tb += ticks;
    }

    /// <summary>Idles a ceded vcpu: time passes until its decrementer fires, a prod arrives or the budget ends.</summary>
    private bool Wake(ulong end)
    {
        if (_prodded) { _prodded = false; _ceded = false; return true; }
        if ((Msr_ & Isa.Msr.EE) != 0 && !HoldAsyncInterrupts)
        {
            if (_externalPending) { _ceded = false; return true; }
            ulong until = DecPending ? 0 : (ulong)Dec + 1;
            if (Tb + until <= end) { Tb += until; _ceded = false; return true; }
        }
        Tb = Math.Max(Tb, end);
        return false;
    }

    // --- Register access (KVM_GET_REGS / KVM_SET_REGS / one-reg). ---

    public VcpuState GetRegisters()
    {
        var s = new VcpuState();
        GetRegisters(s);
        return s;
    }

    public void GetRegisters(VcpuState s)
    {
        s.Nip = Nip; s.Msr = Msr_; s.Cr = Cr; s.Lr = Lr; s.Ctr = Ctr; s.Xer = Xer; s.Fpscr = Fpscr;
        s.Srr0 = Srr0; s.Srr1 = Srr1; s.Dar = Dar; s.Dsisr = Dsisr; s.Dec = Dec; s.Tb = Tb;
        s.Pir = (ulong)Index; s.Pvr = Pvr; s.Lpcr = _vm.Lpcr;
        s.ReservationHeld = _resvValid;
        Gpr.AsSpan().CopyTo(s.Gpr);
        GetVectorRegisters(s);
        ((ReadOnlySpan<ulong>)Sprg).CopyTo(s.Sprg);
    }

    /// <summary>Writes the architected registers; <see cref="VcpuState.ReservationHeld"/> is only reported (a debugger cannot
    /// make a reservation, and the write itself is no host trip that would lose one).</summary>
    public void SetRegisters(VcpuState s)
    {
        s.Gpr.AsSpan(0, 32).CopyTo(Gpr.AsSpan());
        SetVectorRegisters(s);
        Nip = s.Nip; Msr_ = s.Msr; Cr = s.Cr; Lr = s.Lr; Ctr = s.Ctr; Xer = s.Xer; Fpscr = s.Fpscr;
        Srr0 = s.Srr0; Srr1 = s.Srr1; Dar = s.Dar; Dsisr = s.Dsisr;
        s.Sprg.AsSpan(0, 4).CopyTo(Sprg);
        Tb = s.Tb;
        Dec = s.Dec;
    }

    public ulong GetOneReg(int spr) => spr switch
    {
        Spr.LPCR => _vm.Lpcr,
        Spr.PIR => (ulong)Index,
        Spr.PVR => Pvr,
        _ => throw new ArgumentOutOfRangeException(nameof(spr), spr, "not a one-reg register of this backend"),
    };

    public void SetOneReg(int spr, ulong value)
    {
        if (spr != Spr.LPCR) throw new ArgumentOutOfRangeException(nameof(spr), spr, "only LPCR can be set as a one-reg");
        _vm.Lpcr = value;
    }
}
