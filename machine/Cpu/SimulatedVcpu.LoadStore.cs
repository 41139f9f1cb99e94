using System.Runtime.CompilerServices;
using ActorStep.Isa;
using ActorStep.Hypervisor;
using ActorStep.Machine.Mmu;

namespace ActorStep.Machine.Cpu;

// Loads and stores (Power ISA v3.0 Book I §3.3.2–3.3.7, Book II §1.7.3 for load-reserve/store-conditional).
public sealed partial class SimulatedVcpu
{
    private bool LittleEndian { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => (Msr_ & Isa.Msr.LE) != 0; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong EffectiveAddress(ulong ea) => Mode64 ? ea : ea & 0xFFFFFFFF;

    /// <summary>Translates a data access, raising DSI when EA has no translation or leaves guest RAM; false too when the
    /// access hits a watchpoint (the vcpu exits before the instruction completes). Every data access of an instruction
    /// comes through here (or through <see cref="WatchpointHit"/> for its whole extent first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TranslateData(ulong ea, int size, bool store, out ulong ra)
    {
        // With no watchpoint set this is the whole cost: one field read; with some, an access outside all of them costs a
        // range compare.
        if (Watched(ea, size, store)) { ra = 0; return false; }
        var fault = Translate(ea, store ? AccessKind.Store : AccessKind.Load, out ra);
        if (fault == RadixFault.None && ra + (ulong)size <= _mem.Size) return true;
        RaiseDataStorage(ea, store, fault);
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Extend(ulong v, int size, bool signed) => !signed ? v : size switch
    {
        2 => (ulong)(short)v,
        4 => (ulong)(int)v,
        _ => v,
    };

    /// <summary>The common case of a load, as the interpreter and a compiled block's fast path take it: a translation-cache hit
    /// (<see cref="DataCacheHit"/>) and the bytes read; false when it is not that case (nothing done).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CachedLoad(ulong ea, int size, out ulong value)
    {
        if (!DataCacheHit(ea, size, store: false, out ulong ra)) { value = 0; return false; }
        value = _mem.Load(ra, size, LittleEndian);
        return true;
    }

    /// <summary>The common case of a store (<see cref="CachedLoad"/>); false when it is not that case (nothing done).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CachedStore(ulong ea, int size, ulong value)
    {
        if (!DataCacheHit(ea, size, store: true, out ulong ra)) return false;
        _mem.Store(ra, size, value, LittleEndian);
        return true;
    }

    /// <summary>
    /// A compiled block's access when <see cref="CachedLoad"/> or <see cref="CachedStore"/> did not answer: the translation (the
    /// radix walk on a translation-cache miss, R and C set as the interpreter's walk sets them), then the bytes; only when that
    /// raises nothing and needs nothing the interpreter sets before an instruction: 64-bit mode, no watchpoint, one page, no
    /// fault, and the translation cache not flushed by the walk (another vcpu's tlbie seen before or during it: the flush drops
    /// the fetch page the block runs from, which the interpreter translates again before its next instruction). False: the
    /// access not done, and the block leaves for the interpreter to run the instruction; a walk that faults changes nothing, one
    /// that succeeded leaves R/C set and the entry cached, as the interpreter's own walk of it would.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool UncachedAccess(ulong ea, int size, bool store, ref ulong value)
    {
        if (!Mode64 || _vm.Watchpoints is not null || CrossesPage(ea, size)) return false;
        long generation = _tlbGeneration; // a flush (a walk that saw another vcpu's tlbie) moves it
        var fault = Translate(ea, store ? AccessKind.Store : AccessKind.Load, out ulong real);
        if (_tlbGeneration != generation || fault != RadixFault.None || real + (ulong)size > _mem.Size) return false;
        if (store) _mem.Store(real, size, value, LittleEndian);
        else value = _mem.Load(real, size, LittleEndian);
        return true;
    }

    /// <summary>A load (and, for an update form, RA = EA), faults included.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Load(int rt, int ra, ulong ea, int size, bool signed, bool update)
    {
        // CachedLoad answers in 64-bit mode only, where the EA needs no masking.
        if (!CachedLoad(ea, size, out ulong value))
        {
            ea = EffectiveAddress(ea);
            if (CrossesPage(ea, size)) { if (Watched(ea, size, false) || !LoadScalar(ea, size, LittleEndian, out value)) return; }
            else
            {
                if (!TranslateData(ea, size, false, out ulong real)) return;
                value = _mem.Load(real, size, LittleEndian);
            }
        }
        Gpr[rt] = Extend(value, size, signed);
        if (update) Gpr[ra] = ea;
    }

    /// <summary>A translated access whose bytes lie on two 4 KiB pages: each page is translated on its own (their real pages need
    /// not be adjacent), both before any byte moves (<see cref="LoadScalar"/>, <see cref="StoreScalar"/>). Real mode and the
    /// fixed map are contiguous: such an access stays whole there (a fault beyond RAM says its first byte).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CrossesPage(ulong ea, int size) =>
        (ea & 0xFFF) + (ulong)size > 0x1000 && (Msr_ & Isa.Msr.DR) != 0 && _vm.ProcessTable.IsRegistered;

    /// <summary>Whether an access of <paramref name="size"/> bytes at <paramref name="ea"/> stops at a watchpoint (<see cref="WatchpointHit"/>).
    /// A page-crossing access asks for its whole extent first, as an access on one page does: a watched byte on either page
    /// stops the instruction before its translation can fault.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Watched(ulong ea, int size, bool store) =>
        _vm.Watchpoints is { } watched && watched.MayHit(ea, (ulong)size) && WatchpointHit(ea, (ulong)size, store);

    /// <summary>A store (and, for an update form, RA = EA), faults included.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Store(int rs, int ra, ulong ea, int size, bool update)
    {
        if (!CachedStore(ea, size, Gpr[rs]))
        {
            ea = EffectiveAddress(ea);
            if (CrossesPage(ea, size)) { if (Watched(ea, size, true) || !StoreScalar(ea, size, LittleEndian, Gpr[rs])) return; }
            else
            {
                if (!TranslateData(ea, size, true, out ulong real)) return;
                _mem.Store(real, size, Gpr[rs], LittleEndian);
            }
        }
        if (update) Gpr[ra] = ea;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LoadD(uint i, int size, bool signed, bool update)
    {
        var d = new FormD(i);
        Load(d.RT, d.RA, RA0(d.RA) + (ulong)d.D, size, signed, update);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LoadDS(uint i, int size, bool signed, bool update)
    {
        var ds = new FormDS(i);
        Load(ds.RT, ds.RA, RA0(ds.RA) + (ulong)ds.DS, size, signed, update);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LoadX(uint i, int size, bool signed, bool update)
    {
        var x = new FormX(i);
        Load(x.RT, x.RA, RA0(x.RA) + Gpr[x.RB], size, signed, update);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreD(uint i, int size, bool update)
    {
        var d = new FormD(i);
        Store(d.RS, d.RA, RA0(d.RA) + (ulong)d.D, size, update);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreDS(uint i, bool update)
    {
        var ds = new FormDS(i);
        Store(ds.RS, ds.RA, RA0(ds.RA) + (ulong)ds.DS, 8, update);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreX(uint i, int size, bool update)
    {
        var x = new FormX(i);
        Store(x.RS, x.RA, RA0(x.RA) + Gpr[x.RB], size, update);
    }

    /// <summary>lhbrx/lwbrx/ldbrx: the access in the byte order opposite to MSR[LE].</summary>
    private void LoadByteReversed(uint i, int size)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]);
        if (CrossesPage(ea, size))
        {
            if (!Watched(ea, size, false) && LoadScalar(ea, size, !LittleEndian, out ulong value)) Gpr[x.RT] = value;
            return;
        }
        if (!TranslateData(ea, size, false, out ulong real)) return;
        Gpr[x.RT] = _mem.Load(real, size, !LittleEndian);
    }

    private void StoreByteReversed(uint i, int size)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]);
        if (CrossesPage(ea, size))
        {
            if (!Watched(ea, size, true)) StoreScalar(ea, size, !LittleEndian, Gpr[x.RS]);
            return;
        }
        if (!TranslateData(ea, size, true, out ulong real)) return;
        _mem.Store(real, size, Gpr[x.RS], !LittleEndian);
    }

    /// <summary>lmw/stmw: word-aligned, big-endian mode only; little-endian mode takes an alignment interrupt (Book I §3.3.6).</summary>
    private void Lmw(uint i)
    {
        var d = new FormD(i);
        ulong ea = EffectiveAddress(RA0(d.RA) + (ulong)d.D);
        if (LittleEndian || (ea & 3) != 0) { RaiseAlignment(ea); return; }
        // The whole extent first: no register is loaded when any word of it is watched.
        if (_vm.Watchpoints is not null && WatchpointHit(ea, 4 * (32 - (ulong)d.RT), store: false)) return;
        for (int r = d.RT; r < 32; r++, ea += 4)
        {
            if (!TranslateData(ea, 4, false, out ulong real)) return;
            Gpr[r] = _mem.Load(real, 4, false);
        }
    }

    private void Stmw(uint i)
    {
        var d = new FormD(i);
        ulong ea = EffectiveAddress(RA0(d.RA) + (ulong)d.D);
        if (LittleEndian || (ea & 3) != 0) { RaiseAlignment(ea); return; }
        if (_vm.Watchpoints is not null && WatchpointHit(ea, 4 * (32 - (ulong)d.RS), store: true)) return;
        for (int r = d.RS; r < 32; r++, ea += 4)
        {
            if (!TranslateData(ea, 4, true, out ulong real)) return;
            _mem.Store(real, 4, Gpr[r], false);
        }
    }

    /// <summary>
    /// lswi/lswx: n bytes from EA into the low words of RT, RT+1, … (r31 wraps to r0), each register zeroed first and filled
    /// from its bits 32:39 on (Book I §3.3.7); lswi's n is NB (0 means 32), lswx's XER[57:63] (0: nothing happens). Every byte
    /// is translated before any register changes. Big-endian mode only: little-endian mode takes an alignment interrupt, as on
    /// POWER8 and POWER9.
    /// </summary>
    private void LoadString(uint i, bool immediate)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + (immediate ? 0 : Gpr[x.RB]));
        int n = immediate ? (x.NB == 0 ? 32 : x.NB) : (int)(Xer & 0x7F);
        if (LittleEndian) { RaiseAlignment(ea); return; }
        if (n == 0) return;
        if (_vm.Watchpoints is not null && WatchpointHit(ea, (ulong)n, store: false)) return;
        Span<byte> bytes = stackalloc byte[128];
        for (int k = 0; k < n; k++)
        {
            if (!TranslateData(EffectiveAddress(ea + (ulong)k), 1, false, out ulong real)) return;
            bytes[k] = (byte)_mem.Load(real, 1, false);
        }
        int r = x.RT;
        for (int k = 0; k < n; k += 4, r = (r + 1) & 31)
        {
            ulong word = 0;
            for (int b = 0; b < 4; b++) word = word << 8 | (k + b < n ? bytes[k + b] : 0u);
            Gpr[r] = word;
        }
    }

    /// <summary>stswi/stswx: n bytes from the low words of RS, RS+1, … (r31 wraps to r0) to EA, each word from its bits 32:39 on;
    /// every byte translated before any is stored. Big-endian mode only (see <see cref="LoadString"/>).</summary>
    private void StoreString(uint i, bool immediate)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + (immediate ? 0 : Gpr[x.RB]));
        int n = immediate ? (x.NB == 0 ? 32 : x.NB) : (int)(Xer & 0x7F);
        if (LittleEndian) { RaiseAlignment(ea); return; }
        if (n == 0) return;
        if (_vm.Watchpoints is not null && WatchpointHit(ea, (ulong)n, store: true)) return;
        Span<ulong> reals = stackalloc ulong[128];
        for (int k = 0; k < n; k++)
            if (!TranslateData(EffectiveAddress(ea + (ulong)k), 1, true, out reals[k])) return;
        for (int k = 0; k < n; k++)
        {
            ulong word = Gpr[(x.RS + k / 4) & 31];
            _mem.Store(reals[k], 1, (byte)(word >> (24 - 8 * (k & 3))), false);
        }
    }

    /// <summary>lwarx/ldarx: an aligned load that sets a reservation on the real address (Book II §1.7.3.1).</summary>
    private void LoadReserve(uint i, int size)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]);
        if ((ea & (ulong)(size - 1)) != 0) { RaiseAlignment(ea); return; }
        if (!TranslateData(ea, size, false, out ulong real)) return;
        // One read serves both the reservation and RT: reading twice would let another vcpu's store fall
        // between them, so that RT and the reservation disagree and a later stwcx. wrongly succeeds.
        ulong raw = _mem.LoadRaw(real, size);
        _resvValid = true;
        _resvAddr = real;
        _resvSize = size;
        _resvRaw = raw;
        Gpr[x.RT] = GuestMemory.FromRaw(raw, size, LittleEndian);
    }

    /// <summary>
    /// stwcx./stdcx.: stores only if this vcpu's reservation still holds, which across vcpus on real
    /// threads is an atomic compare-and-swap against the bytes lwarx saw (QEMU's implementation).
    /// CR0 = 0b00 || success || XER[SO].
    /// </summary>
    private void StoreConditional(uint i, int size)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]);
        if ((ea & (ulong)(size - 1)) != 0) { RaiseAlignment(ea); return; }
        if (!TranslateData(ea, size, true, out ulong real)) return;
        bool ok = _resvValid && _resvAddr == real && _resvSize == size
                  && _mem.CompareExchange(real, size, _resvRaw, Gpr[x.RS], LittleEndian);
        _resvValid = false;
        SetCrField(0, (ok ? 2u : 0u) | (uint)((Xer >> 31) & 1));
    }

    /// <summary>dcbz: zero the 128-byte block containing EA.</summary>
    private void Dcbz(uint i)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]) & ~127UL;
        if (!DataCacheHit(ea, 128, store: true, out ulong real) && !TranslateData(ea, 128, true, out real)) return;
        _mem.ZeroInPage(real, 128);
    }

    /// <summary>
    /// icbi: the block's decoded instructions are dropped (Book II §1.7: after another processor stores into code, the
    /// ISA's sequence — dcbst, sync, icbi, isync — makes the executing one fetch the new words; the decode cache is this
    /// machine's instruction cache). Like the other cache hints it never faults; an EA without translation does nothing.
    /// </summary>
    private void Icbi(uint i)
    {
        var x = new FormX(i);
        ulong ea = EffectiveAddress(RA0(x.RA) + Gpr[x.RB]) & ~127UL;
        if (TryTranslate(ea, Msr_, AccessKind.Load, out ulong real) && real + 128 <= _mem.Size) _mem.InvalidateRange(real, 128);
    }

    // --- Watchpoints (DAWR-style: Power ISA v3.0 Book III §9.4; the machine's are VM-wide and any number). ---

    /// <summary>The instruction (its address and the retired count when its access hit) that a resume performs without stopping
    /// for its watchpoint again: a debugger that resumes a vcpu stopped at a watchpoint means to complete the access.</summary>
    private ulong _watchPassCia = ulong.MaxValue;
    private long _watchPassRetired = -1;

    /// <summary>
    /// Whether an access of <paramref name="size"/> bytes at <paramref name="ea"/> hits a watchpoint: then NIP is put back at the
    /// instruction, which has not completed, and the vcpu exits with <see cref="ExitReason.Watchpoint"/>. The instruction that
    /// last stopped this way, resumed before anything else retired, goes through: it is the access the debugger steps over.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WatchpointHit(ulong ea, ulong size, bool store)
    {
        var watched = Volatile.Read(ref _vm.Watchpoints);
        if (watched is null || (_cia == _watchPassCia && _retired == _watchPassRetired)) return false;
        foreach (var w in watched.List)
        {
            if (!w.Matches(ea, size, store)) continue;
            _watchPassCia = _cia;
            _watchPassRetired = _retired;
            Nip = _cia;
            var hit = new WatchpointHit(w, ea, (int)Math.Min(size, int.MaxValue), store);
            Exit(ExitReason.Watchpoint, _cia, 0, $"{w} hit by a {size}-byte {(store ? "store" : "load")} at 0x{ea:x}", hit);
            return true;
        }
        return false;
    }
}
