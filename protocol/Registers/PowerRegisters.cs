using ActorStep.Hypervisor;
namespace ActorStep.Protocol.Registers;

/// <summary>The gdb target-description feature a register belongs to (gdb-bridge.md, "Registers").</summary>
public enum RegisterFeature
{
    /// <summary><c>org.gnu.gdb.power.core</c>: r0–r31, pc, msr, cr, lr, ctr, xer.</summary>
    Core,
    /// <summary><c>org.gnu.gdb.power.fpu</c>: f0–f31, fpscr.</summary>
    Fpu,
    /// <summary><c>org.actorstep.power.spr</c>: ActorStep's supervisor SPRs, read with gdb's <c>p</c>.</summary>
    Spr,
}

/// <summary>
/// One POWER register as debuggers see it: canonical name, gdb register number, width, and whether a
/// debugger may write it. Values travel as 64-bit unsigned integers; narrower registers use the low bits.
/// </summary>
public sealed class PowerRegister
{
    private readonly Func<VcpuState, ulong> _get;
    private readonly Action<VcpuState, ulong>? _set;

    internal PowerRegister(string name, int gdbNumber, int bits, RegisterFeature feature, Func<VcpuState, ulong> get,
        Action<VcpuState, ulong>? set, string? gdbName = null, string? readOnlyReason = null)
    {
        Name = name;
        GdbNumber = gdbNumber;
        Bits = bits;
        Feature = feature;
        GdbName = gdbName ?? name;
        ReadOnlyReason = readOnlyReason;
        _get = get;
        _set = set;
    }

    /// <summary>Canonical lower-case name (<c>r3</c>, <c>nip</c>, <c>sprg0</c>).</summary>
    public string Name { get; }

    /// <summary>The name gdb's target description uses (<c>pc</c> for NIP; otherwise <see cref="Name"/>).</summary>
    public string GdbName { get; }

    /// <summary>gdb's register number (the <c>p</c>/<c>P</c> packets' regnum).</summary>
    public int GdbNumber { get; }

    /// <summary>32 or 64.</summary>
    public int Bits { get; }

    public RegisterFeature Feature { get; }

    public bool Writable => _set is not null;

    /// <summary>Why a debugger may not write it (null when writable).</summary>
    public string? ReadOnlyReason { get; }

    /// <summary>The largest value the register holds.</summary>
    public ulong Mask => Bits == 64 ? ulong.MaxValue : (1UL << Bits) - 1;

    public ulong Get(VcpuState state) => _get(state);

    /// <summary>Writes <paramref name="value"/> into <paramref name="state"/>; false with a reason a person can act on when it cannot.</summary>
    public bool TrySet(VcpuState state, ulong value, out string error)
    {
        if (_set is null) { error = $"register {Name} is read-only: {ReadOnlyReason}"; return false; }
        if ((value & ~Mask) != 0) { error = $"register {Name} is {Bits} bits wide; 0x{value:x} does not fit"; return false; }
        _set(state, value);
        error = "";
        return true;
    }

    public override string ToString() => $"{Name} (gdb {GdbNumber}, {Bits} bits{(Writable ? "" : ", read-only")})";
}

/// <summary>
/// The one catalogue of POWER registers served by ActorStep's APIs (gRPC and the gdb bridge).
/// gdb numbers 0–70 are gdb's own for powerpc:common64 (r0–r31 = 0–31, f0–f31 = 32–63, pc = 64,
/// msr = 65, cr = 66, lr = 67, ctr = 68, xer = 69, fpscr = 70). ActorStep's SPR feature follows:
/// srr0 = 71, srr1 = 72, sprg0–3 = 73–76, dar = 77, dsisr = 78, dec = 79, lpcr = 80, pir = 81, pvr = 82, tb = 83,
/// as the gdb target description (<see cref="Gdb.TargetDescription"/>) declares them. LPCR, PIR, PVR and TB are read-only
/// through the APIs.
/// </summary>
public static class PowerRegisters
{
    public const int Pc = 64, Msr = 65, Cr = 66, Lr = 67, Ctr = 68, Xer = 69, Fpscr = 70;
    public const int Srr0 = 71, Srr1 = 72, Sprg0 = 73, Dar = 77, Dsisr = 78, Dec = 79, Lpcr = 80, Pir = 81, Pvr = 82, Tb = 83;

    /// <summary>Every register, ordered by gdb number (which is also <c>g</c> order: no gaps).</summary>
    public static IReadOnlyList<PowerRegister> All { get; } = Build();

    private static readonly Dictionary<string, PowerRegister> ByName = All
        .SelectMany(r => new[] { (r.Name, r), (r.GdbName, r) }).Concat(Aliases())
        .DistinctBy(p => p.Item1)
        .ToDictionary(p => p.Item1, p => p.Item2, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<int, PowerRegister> ByNumber = All.ToDictionary(r => r.GdbNumber);

    /// <summary>By canonical name or alias, case-insensitively (<c>r1</c>, <c>pc</c>, <c>NIP</c>, <c>gpr1</c>, <c>fpr3</c>).</summary>
    public static bool TryFind(string name, out PowerRegister register) => ByName.TryGetValue(name.Trim(), out register!);

    public static bool TryFind(int gdbNumber, out PowerRegister register) => ByNumber.TryGetValue(gdbNumber, out register!);

    public static IEnumerable<string> Names => All.Select(r => r.Name);

    private static IEnumerable<(string, PowerRegister)> Aliases()
    {
        for (int i = 0; i < 32; i++) yield return ($"gpr{i}", All[i]);
        for (int i = 0; i < 32; i++) yield return ($"fpr{i}", All[32 + i]);
    }

    private static List<PowerRegister> Build()
    {
        const string tbReason = "the timebase advances with the instructions a vcpu executes and cannot be set";
        const string identity = "it identifies the processor";
        const string lpcrReason = "LPCR is partition-wide hypervisor state (set by the guest with H_SET_MODE)";
        var r = new List<PowerRegister>();
        for (int i = 0; i < 32; i++)
        {
            int n = i;
            r.Add(new($"r{n}", n, 64, RegisterFeature.Core, s => s.Gpr[n], (s, v) => s.Gpr[n] = v));
        }
        for (int i = 0; i < 32; i++)
        {
            int n = i;
            r.Add(new($"f{n}", 32 + n, 64, RegisterFeature.Fpu, s => s.Fpr[n], (s, v) => s.Fpr[n] = v));
        }
        r.Add(new("nip", Pc, 64, RegisterFeature.Core, s => s.Nip, (s, v) => s.Nip = v, gdbName: "pc"));
        r.Add(new("msr", Msr, 64, RegisterFeature.Core, s => s.Msr, (s, v) => s.Msr = v));
        r.Add(new("cr", Cr, 32, RegisterFeature.Core, s => s.Cr, (s, v) => s.Cr = (uint)v));
        r.Add(new("lr", Lr, 64, RegisterFeature.Core, s => s.Lr, (s, v) => s.Lr = v));
        r.Add(new("ctr", Ctr, 64, RegisterFeature.Core, s => s.Ctr, (s, v) => s.Ctr = v));
        r.Add(new("xer", Xer, 32, RegisterFeature.Core, s => s.Xer & 0xffff_ffff, (s, v) => s.Xer = v));
        r.Add(new("fpscr", Fpscr, 32, RegisterFeature.Fpu, s => s.Fpscr, (s, v) => s.Fpscr = (uint)v));
        r.Add(new("srr0", Srr0, 64, RegisterFeature.Spr, s => s.Srr0, (s, v) => s.Srr0 = v));
        r.Add(new("srr1", Srr1, 64, RegisterFeature.Spr, s => s.Srr1, (s, v) => s.Srr1 = v));
        for (int i = 0; i < 4; i++)
        {
            int n = i;
            r.Add(new($"sprg{n}", Sprg0 + n, 64, RegisterFeature.Spr, s => s.Sprg[n], (s, v) => s.Sprg[n] = v));
        }
        r.Add(new("dar", Dar, 64, RegisterFeature.Spr, s => s.Dar, (s, v) => s.Dar = v));
        r.Add(new("dsisr", Dsisr, 32, RegisterFeature.Spr, s => s.Dsisr, (s, v) => s.Dsisr = (uint)v));
        r.Add(new("dec", Dec, 32, RegisterFeature.Spr, s => s.Dec, (s, v) => s.Dec = (uint)v));
        r.Add(new("lpcr", Lpcr, 64, RegisterFeature.Spr, s => s.Lpcr, null, readOnlyReason: lpcrReason));
        r.Add(new("pir", Pir, 64, RegisterFeature.Spr, s => s.Pir, null, readOnlyReason: identity));
        r.Add(new("pvr", Pvr, 64, RegisterFeature.Spr, s => s.Pvr, null, readOnlyReason: identity));
        r.Add(new("tb", Tb, 64, RegisterFeature.Spr, s => s.Tb, null, readOnlyReason: tbReason));
        for (int i = 0; i < r.Count; i++)
            if (r[i].GdbNumber != i) throw new InvalidOperationException($"register {r[i].Name} out of order");
        return r;
    }
}
