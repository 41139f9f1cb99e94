namespace ActorStep.Hypervisor;

/// <summary>Which data accesses a watchpoint stops (DAWRX's DW and DR bits: Power ISA v3.0 Book III §9.4).</summary>
[Flags]
public enum WatchKind
{
    /// <summary>Stores (gdb's <c>watch</c>, <c>Z2</c>).</summary>
    Write = 1,
    /// <summary>Loads (gdb's <c>rwatch</c>, <c>Z3</c>).</summary>
    Read = 2,
    /// <summary>Loads and stores (gdb's <c>awatch</c>, <c>Z4</c>).</summary>
    Access = Write | Read,
}

/// <summary>
/// A data watchpoint, VM-wide: every vcpu's load or store (by <see cref="Kind"/>) of any size whose bytes overlap the
/// effective addresses [<see cref="Address"/>, <see cref="Address"/> + <see cref="Length"/>) stops that vcpu before the
/// accessing instruction completes, NIP at it — as POWER's DAWR matches the effective address of the access.
/// </summary>
public readonly record struct Watchpoint(ulong Address, ulong Length, WatchKind Kind)
{
    /// <summary>The longest range one watchpoint covers (a gdb <c>watch</c> on a large array asks for its whole size).</summary>
    public const ulong MaxLength = 1UL << 32;

    /// <summary>An access of <paramref name="size"/> bytes at <paramref name="ea"/> (a store when <paramref name="store"/>)
    /// overlaps this watchpoint and is of its kind.</summary>
    public bool Matches(ulong ea, ulong size, bool store) =>
        (Kind & (store ? WatchKind.Write : WatchKind.Read)) != 0
        && (ea - Address < Length || Address - ea < size); // overlap without overflow: one range starts inside the other

    /// <summary>Why a request cannot be a watchpoint (null when it can).</summary>
    public string? Invalid() =>
        Kind is not (WatchKind.Write or WatchKind.Read or WatchKind.Access) ? $"kind {(int)Kind} is not write, read or access"
        : Length == 0 ? "a watchpoint needs a length of at least 1 byte"
        : Length > MaxLength ? $"a watchpoint covers at most 0x{MaxLength:x} bytes, not 0x{Length:x}"
        : Address + Length - 1 < Address ? $"0x{Address:x} + 0x{Length:x} runs past the end of the address space"
        : null;

    public override string ToString() => $"{Kind switch { WatchKind.Write => "write", WatchKind.Read => "read", _ => "access" }} watchpoint at 0x{Address:x} (+{Length})";
}

/// <summary>
/// A vcpu stopped at a watchpoint: <paramref name="Watchpoint"/> is the one that hit (the first set, when several match),
/// <paramref name="DataAddress"/> the effective address of the access and <paramref name="Size"/> its bytes, a store or a load.
/// </summary>
public sealed record WatchpointHit(Watchpoint Watchpoint, ulong DataAddress, int Size, bool Store)
{
    /// <summary>The first watched byte the access touched: what gdb's <c>watch:ADDR</c> stop reply names (it must lie inside
    /// the watched range for gdb to tell which of its watchpoints triggered).</summary>
    public ulong WatchedAddress => Math.Max(DataAddress, Watchpoint.Address);
}
