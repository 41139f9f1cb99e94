namespace ActorStep.Hypervisor;

/// <summary>
/// The architected state of one vcpu as plain data: what KVM_GET_REGS/KVM_GET_SREGS/one-reg would return.
/// Tests build and compare it field by field.
/// </summary>
public sealed class VcpuState : IEquatable<VcpuState>
{
    public ulong[] Gpr { get; init; } = new ulong[32];
    public ulong[] Fpr { get; init; } = new ulong[32];
    /// <summary>Doubleword 1 of VSR0–31 (doubleword 0 is the FPR): the VSX half no FPR shows (Book I §7.2).</summary>
    public ulong[] VsrLow { get; init; } = new ulong[32];
    /// <summary>VR0–31 (= VSR32–63) as doubleword pairs: <c>Vr[2n]</c> is VRn's doubleword 0 (bits 0:63), <c>Vr[2n+1]</c> doubleword 1.</summary>
    public ulong[] Vr { get; init; } = new ulong[64];
    public uint Vscr { get; set; }
    public uint Vrsave { get; set; }
    public ulong Nip { get; set; }
    public ulong Msr { get; set; }
    public uint Cr { get; set; }
    public ulong Lr { get; set; }
    public ulong Ctr { get; set; }
    public ulong Xer { get; set; }
    public uint Fpscr { get; set; }
    public ulong Srr0 { get; set; }
    public ulong Srr1 { get; set; }
    public ulong[] Sprg { get; init; } = new ulong[4];
    public ulong Dar { get; set; }
    public uint Dsisr { get; set; }
    /// <summary>The 32-bit decrementer as the guest would read it now.</summary>
    public uint Dec { get; set; }
    /// <summary>Timebase: advances with the vcpu's instructions (and idle ticks), never with wall time.</summary>
    public ulong Tb { get; set; }
    public ulong Pir { get; set; }
    public ulong Pvr { get; set; }
    /// <summary>LPCR, a hypervisor register (a KVM "one-reg"); partition-wide in this machine.</summary>
    public ulong Lpcr { get; set; }
    /// <summary>
    /// Whether the vcpu holds a load-and-reserve's reservation now (Book II §1.7.3): a larx set it and no store-conditional,
    /// and no trip to the host, has cleared it since. The step engine plans from it: a step begun inside a larx … stcx.
    /// sequence whose reservation is held runs the rest of it whole (<c>TraceStep.Plan</c>). Only the simulated machine can
    /// report it; a backend that cannot know reports false — QEMU's gdbstub and KVM, where every stop is a host trip that
    /// loses it anyway. Reported, never written: <see cref="IVcpu.SetRegisters"/> ignores it (the reservation's address and
    /// bytes are not in this state). Not compared by <see cref="Differences"/>: every stop a debugger sees is a host trip,
    /// which drops a reservation the undebugged run keeps (one a branch out of a sequence or a failed compare left behind);
    /// the guest sees a reservation only through a store-conditional, whose CR0 the comparisons do see.
    /// </summary>
    public bool ReservationHeld { get; set; }

    public VcpuState Clone() => new()
    {
        Gpr = (ulong[])Gpr.Clone(), Fpr = (ulong[])Fpr.Clone(), Nip = Nip, Msr = Msr, Cr = Cr, Lr = Lr,
        Ctr = Ctr, Xer = Xer, Fpscr = Fpscr, Srr0 = Srr0, Srr1 = Srr1, Sprg = (ulong[])Sprg.Clone(),
        Dar = Dar, Dsisr = Dsisr, Dec = Dec, Tb = Tb, Pir = Pir, Pvr = Pvr, Lpcr = Lpcr,
        VsrLow = (ulong[])VsrLow.Clone(), Vr = (ulong[])Vr.Clone(), Vscr = Vscr, Vrsave = Vrsave,
        ReservationHeld = ReservationHeld,
    };

    public bool Equals(VcpuState? o) => o is not null && Differences(o).Count == 0;
    public override bool Equals(object? obj) => Equals(obj as VcpuState);
    public override int GetHashCode() => HashCode.Combine(Nip, Msr, Cr, Gpr[1], Gpr[3]);

    /// <summary>Names and values of every field that differs, for test failure messages.</summary>
    public IReadOnlyList<string> Differences(VcpuState o)
    {
        var d = new List<string>();
        void Check(string name, ulong a, ulong b) { if (a != b) d.Add($"{name}: 0x{a:x} != 0x{b:x}"); }
        for (int i = 0; i < 32; i++) Check($"r{i}", Gpr[i], o.Gpr[i]);
        for (int i = 0; i < 32; i++) Check($"f{i}", Fpr[i], o.Fpr[i]);
        for (int i = 0; i < 32; i++) Check($"vs{i}.dw1", VsrLow[i], o.VsrLow[i]);
        for (int i = 0; i < 64; i++) Check($"v{i / 2}.dw{i % 2}", Vr[i], o.Vr[i]);
        Check("vscr", Vscr, o.Vscr); Check("vrsave", Vrsave, o.Vrsave);
        Check("nip", Nip, o.Nip); Check("msr", Msr, o.Msr); Check("cr", Cr, o.Cr); Check("lr", Lr, o.Lr);
        Check("ctr", Ctr, o.Ctr); Check("xer", Xer, o.Xer); Check("fpscr", Fpscr, o.Fpscr);
        Check("srr0", Srr0, o.Srr0); Check("srr1", Srr1, o.Srr1);
        for (int i = 0; i < 4; i++) Check($"sprg{i}", Sprg[i], o.Sprg[i]);
        Check("dar", Dar, o.Dar); Check("dsisr", Dsisr, o.Dsisr); Check("dec", Dec, o.Dec); Check("tb", Tb, o.Tb);
        Check("pir", Pir, o.Pir); Check("pvr", Pvr, o.Pvr); Check("lpcr", Lpcr, o.Lpcr);
        return d;
    }
}
