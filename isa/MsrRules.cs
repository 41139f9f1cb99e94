namespace ActorStep.Isa;

/// <summary>
/// How MSR-writing instructions compute the new MSR (Power ISA v3.0 Book III §4.4.3, §6.4.3). The
/// machine executes them with these rules and the step engine predicts with the same ones.
/// </summary>
public static class MsrRules
{
    /// <summary>mtmsrd RS,L (doubleword) or mtmsr RS,L: L=1 writes EE and RI only; L=0 all but HV, ME, LE, S.</summary>
    public static ulong AfterMtmsr(ulong msr, ulong rs, bool l, bool doubleword)
    {
        if (l) return (msr & ~(Msr.EE | Msr.RI)) | (rs & (Msr.EE | Msr.RI));
        ulong writable = ~Msr.MtmsrdPreserved & ~Msr.PartialFunctionBits;
        if (!doubleword) writable &= 0xFFFFFFFF;
        ulong m = (msr & ~writable) | (rs & writable);
        if ((m & Msr.PR) != 0) m |= Msr.EE | Msr.IR | Msr.DR;
        return m;
    }

    /// <summary>Where rfid (SRR0), hrfid or rfscv (LR) goes under the MSR it installs: the target's word address, its high word
    /// dropped when that MSR has SF = 0 (NIA = 0x00000000 || SRR0[32:61] || 0b00, Book III §4.4.3).</summary>
    public static ulong ReturnAddress(ulong target, ulong newMsr) =>
        (newMsr & Msr.SF) != 0 ? target & ~3UL : target & 0xFFFFFFFCUL;

    /// <summary>rfid: MSR ← SRR1 without the partial-function bits; HV and ME kept unless in hypervisor state.</summary>
    public static ulong AfterRfid(ulong msr, ulong srr1)
    {
        ulong m = srr1 & ~Msr.PartialFunctionBits;
        if ((msr & Msr.HV) == 0) m = (m & ~(Msr.HV | Msr.ME)) | (msr & (Msr.HV | Msr.ME));
        if ((m & Msr.PR) != 0) m |= Msr.EE | Msr.IR | Msr.DR;
        return m;
    }
}
