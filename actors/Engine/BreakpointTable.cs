using ActorStep.Hypervisor;
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
/// which keeps a step free of message round trips. Breakpoints are planted through the backend
/// (<see cref="IVirtualMachine.InsertSoftwareBreakpoint"/>: a memory word on the simulator, <c>Z0</c> on QEMU), once
/// per address; the table hides them from debugger reads whatever the backend shows.
/// </summary>
public sealed class BreakpointTable
{
    private readonly IVirtualMachine _vm;
    private readonly object _lock = new();
    private readonly Dictionary<ulong, Entry> _entries = new();
    private readonly Dictionary<BreakpointOwner, HashSet<ulong>> _byOwner = new();
    // Steps plant and remove a breakpoint or two per instruction: entries and the removal list are reused.
    private readonly Stack<Entry> _free = new();
    private readonly List<ulong> _removing = new();

    private sealed class Entry
    {
        public readonly byte[] Original = new byte[4];
        public readonly List<BreakpointOwner> Owners = new(2);
        /// <summary>What the backend was asked to plant (the effective address of the first owner).</summary>
        public SoftwareBreakpoint Planted;
        /// <summary>The breakpoint is out of the backend for the moment (a vcpu is stepping off this address).</summary>
        public bool Suspended;
    }

    public BreakpointTable(IVirtualMachine vm) => _vm = vm;

    public int Count { get { lock (_lock) return _entries.Count; } }

    /// <summary>Checks that <paramref name="ra"/> can hold a breakpoint: word-aligned and inside guest RAM.</summary>
    public void Validate(ulong ra)
    {
        if ((ra & 3) != 0) throw new ArgumentException($"breakpoint address 0x{ra:x} is not word-aligned");
        if (ra >= _vm.MemorySize || _vm.MemorySize - ra < 4) throw new ArgumentOutOfRangeException(nameof(ra), $"real address 0x{ra:x} is outside guest memory");
    }

    /// <summary>Adds an owner; plants the breakpoint when the address had none. Returns false if the owner already had it.</summary>
    /// <param name="ea">the effective address the owner means (what a backend planting by EA is given)</param>
    public bool Insert(ulong ra, BreakpointOwner owner, ulong ea)
    {
        Validate(ra);
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e))
            {
                e = _free.Count > 0 ? _free.Pop() : new Entry();
                e.Suspended = false;
                e.Planted = new SoftwareBreakpoint(ea, ra);
                _vm.ReadMemory(ra, e.Original);
                _entries[ra] = e;
                _vm.InsertSoftwareBreakpoint(e.Planted);
            }
            if (e.Owners.Contains(owner)) return false;
            e.Owners.Add(owner);
            if (!_byOwner.TryGetValue(owner, out var mine)) _byOwner[owner] = mine = new HashSet<ulong>();
            mine.Add(ra);
            return true;
        }
    }

    /// <summary>Drops an owner; takes the breakpoint out when none is left. Returns false if it did not own the address.</summary>
    public bool Remove(ulong ra, BreakpointOwner owner)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || !e.Owners.Remove(owner)) return false;
            if (_byOwner.TryGetValue(owner, out var mine)) mine.Remove(ra); // the empty set stays: the next step reuses it
            if (e.Owners.Count == 0)
            {
                if (!e.Suspended) _vm.RemoveSoftwareBreakpoint(e.Planted);
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

    /// <summary>Takes the breakpoint out while a vcpu steps off this address; <see cref="Resume"/> plants it again.</summary>
    public bool Suspend(ulong ra)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || e.Suspended) return false;
            _vm.RemoveSoftwareBreakpoint(e.Planted);
            e.Suspended = true;
            return true;
        }
    }

    /// <summary>Takes the breakpoint out, as <see cref="Suspend"/>, only when the user is its one owner (a step's end point
    /// must stay): in one lock, so that no step can claim the address in between. <see cref="Resume"/> plants it again.</summary>
    public bool SuspendUserOnly(ulong ra)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || e.Suspended || e.Owners.Count != 1 || e.Owners[0] is not BreakpointOwner.User) return false;
            _vm.RemoveSoftwareBreakpoint(e.Planted);
            e.Suspended = true;
            return true;
        }
    }

    public void Resume(ulong ra)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(ra, out var e) || !e.Suspended) return;
            _vm.InsertSoftwareBreakpoint(e.Planted);
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
            // Breakpoints under the write come out first, so that the backend plants them again over the new words.
            ulong end = ra + (ulong)data.Length;
            foreach (var (addr, e) in _entries)
                if (addr + 4 > ra && addr < end && !e.Suspended) _vm.RemoveSoftwareBreakpoint(e.Planted);
            _vm.WriteMemory(ra, data);
            foreach (var (addr, e) in _entries)
            {
                if (addr + 4 <= ra || addr >= end) continue;
                _vm.ReadMemory(addr, e.Original);
                if (!e.Suspended) _vm.InsertSoftwareBreakpoint(e.Planted);
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
