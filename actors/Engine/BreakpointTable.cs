using ActorStep.Machine;

namespace ActorStep.Actors.Engine;

/// <summary>Who wants a breakpoint at an address: the user, or the step of one vcpu.</summary>
public abstract record BreakpointOwner
{
    public sealed record User : BreakpointOwner
    {
        public static readonly User Instance = new();
        public override string ToString() => "user";
    }

    public sealed record Step(int Vcpu) : BreakpointOwner
    {
        public override string ToString() => $"step of vcpu {Vcpu}";
    }
}

/// <summary>
/// The VM-wide software-breakpoint table (step-engine.md §4): one entry per real address, reference
/// counted by owner, holding the original word. Guest memory is shared by every vcpu, so the table is
/// one per VM; the VmCoordinator creates it and its VcpuActors use it directly (it is synchronised),
/// which keeps a step free of message round trips. The debug instruction 0x00dddd00 reads the same in
/// both byte orders, so planting it needs no knowledge of the vcpu's MSR[LE].
/// </summary>
public sealed class BreakpointTable
{
    private readonly IVirtualMachine _vm;
    private readonly object _lock = new();
    private readonly Dictionary<ulong, Entry> _entries = new();
    private readonly Dictionary<BreakpointOwner, HashSet<ulong>> _byOwner = new();
    private readonly byte[] _debugWord;
    // Steps plant and remove a breakpoint or two per instruction: entries and the removal list are reused.
    private readonly Stack<Entry> _free = new();
    private readonly List<ulong> _removing = new();

    private sealed class Entry
    {
        public readonly byte[] Original = new byte[4];
        public readonly List<BreakpointOwner> Owners = new(2);
        /// <summary>The original word is temporarily back in memory (a vcpu is stepping off this address).</summary>
        public bool Suspended;
    }

    public BreakpointTable(IVirtualMachine vm)
    {
        _vm = vm;
        uint w = vm.Capabilities.DebugInstruction;
        _debugWord = [(byte)(w >> 24), (byte)(w >> 16), (byte)(w >> 8), (byte)w];
    }

    public int Count { get { lock (_lock) return _entries.Count; } }

    /// <summary>Checks that <paramref name="ra"/> can hold a breakpoint: word-aligned and inside guest RAM.</summary>
    public void Validate(ulong ra)
    {
        if ((ra & 3) != 0) throw new ArgumentException($"breakpoint address 0x{ra:x} is not word-aligned");
        if (ra >= _vm.MemorySize || _vm.MemorySize - ra < 4) throw new ArgumentOutOfRangeException(nameof(ra), $"real address 0x{ra:x} is outside guest memory");
    }

    /// <summary>Adds an owner; plants the debug instruction when the address had none. Returns false if the owner already had it.</summary>
    public bool Insert(ulong ra, BreakpointOwner owner)
    {
        Validate(ra);
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e))
            {
                e = _free.Count > 0 ? _free.Pop() : new Entry();
                e.Suspended = false;
                _vm.ReadMemory(ra, e.Original);
                _entries[ra] = e;
                _vm.WriteMemory(ra, _debugWord);
            }
            if (e.Owners.Contains(owner)) return false;
            e.Owners.Add(owner);
            if (!_byOwner.TryGetValue(owner, out var mine)) _byOwner[owner] = mine = new HashSet<ulong>();
            mine.Add(ra);
            return true;
        }
    }

    /// <summary>Drops an owner; restores the original word when none is left. Returns false if it did not own the address.</summary>
    public bool Remove(ulong ra, BreakpointOwner owner)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || !e.Owners.Remove(owner)) return false;
            if (_byOwner.TryGetValue(owner, out var mine)) mine.Remove(ra); // the empty set stays: the next step reuses it
            if (e.Owners.Count == 0)
            {
                _vm.WriteMemory(ra, e.Original);
                _entries.Remove(ra);
                if (_free.Count < 16) _free.Push(e);
            }
            return true;
        }
    }

    /// <summary>Drops every breakpoint of an owner (a step that ended, failed or was cancelled).</summary>
    public int RemoveAll(BreakpointOwner owner)
    {
        lock (_lock)
        {
            if (!_byOwner.TryGetValue(owner, out var set) || set.Count == 0) return 0;
            _removing.Clear();
            _removing.AddRange(set);
            foreach (var ra in _removing) Remove(ra, owner);
            return _removing.Count;
        }
    }

    public IReadOnlyCollection<BreakpointOwner> OwnersAt(ulong ra)
    {
        lock (_lock) return _entries.TryGetValue(ra, out var e) ? e.Owners.ToArray() : [];
    }

    public bool HasUser(ulong ra)
    {
        lock (_lock) return _entries.TryGetValue(ra, out var e) && e.Owners.Contains(BreakpointOwner.User.Instance);
    }

    public IReadOnlyList<ulong> Addresses(BreakpointOwner owner)
    {
        lock (_lock) return _byOwner.TryGetValue(owner, out var mine) ? mine.Order().ToList() : [];
    }

    public bool IsPlanted(ulong ra)
    {
        lock (_lock) return _entries.TryGetValue(ra, out var e) && !e.Suspended;
    }

    /// <summary>Puts the original word back while a vcpu steps off this address; <see cref="Resume"/> re-plants it.</summary>
    public bool Suspend(ulong ra)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || e.Suspended) return false;
            _vm.WriteMemory(ra, e.Original);
            e.Suspended = true;
            return true;
        }
    }

    public void Resume(ulong ra)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || !e.Suspended) return;
            _vm.WriteMemory(ra, _debugWord);
            e.Suspended = false;
        }
    }

    /// <summary>A debugger's read of guest memory: breakpoints never show through (the saved words do).</summary>
    public void Read(ulong ra, Span<byte> into)
    {
        lock (_lock)
        {
            _vm.ReadMemory(ra, into);
            foreach (var (addr, e) in _entries)
                Overlay(ra, into, addr, e.Original);
        }
    }

    /// <summary>A debugger's write: a word under a breakpoint updates the saved original, and the breakpoint stays.</summary>
    public void Write(ulong ra, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            _vm.WriteMemory(ra, data);
            foreach (var (addr, e) in _entries)
            {
                if (addr + 4 <= ra || addr >= ra + (ulong)data.Length) continue;
                _vm.ReadMemory(addr, e.Original);
                if (!e.Suspended) _vm.WriteMemory(addr, _debugWord);
            }
        }
    }

    private static void Overlay(ulong ra, Span<byte> into, ulong addr, byte[] original)
    {
        for (int k = 0; k < 4; k++)
        {
            ulong a = addr + (ulong)k;
            if (a >= ra && a < ra + (ulong)into.Length) into[(int)(a - ra)] = original[k];
        }
    }
}
