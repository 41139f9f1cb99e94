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

    /// <summary>rfid: MSR ← SRR1 without the partial-function bits; HV and ME kept unless in hypervisor state.</summary>
    public static ulong AfterRfid(ulong msr, ulong srr1)
    {
        ulong m = srr1 & ~Msr.PartialFunctionBits;
        if ((msr & Msr.HV) == 0) m = (m & ~(Msr.HV | Msr.ME)) | (msr & (Msr.HV | Msr.ME));
        if ((m & Msr.PR) != 0) m |= Msr.EE | Msr.IR | Msr.DR;
        return m;
    }
}

/// <summary>What an instruction can do besides completing, for predicting where a step can end.</summary>
[Flags]
public enum InstructionEffects
{
    None = 0,
    /// <summary>May take a DSI or an alignment interrupt (any storage access).</summary>
    Storage = 1,
    /// <summary>May take a program interrupt (illegal, privileged, trap).</summary>
    Program = 2,
    /// <summary>May take an FP-unavailable interrupt.</summary>
    FloatingPoint = 4,
    /// <summary>sc with LEV=0 (or from problem state): a System Call interrupt, never traced.</summary>
    SystemCall = 8,
    /// <summary>sc 1 from supervisor state: a hypercall served by the host; never traced, continues at NIP+4.</summary>
    Hypercall = 16,
    /// <summary>rfid/hrfid: not traced; continues at SRR0 with the MSR from SRR1.</summary>
    ReturnFromInterrupt = 32,
    /// <summary>mtmsr/mtmsrd: the Trace that follows is taken with the MSR it installs.</summary>
    WritesMsr = 64,
    /// <summary>A branch: successors are NIP+4 and/or its target.</summary>
    Branch = 128,
}

public static class InstructionClassifier
{
    public static InstructionEffects Classify(Op op, uint insn, ulong msr)
    {
        bool problem = (msr & Msr.PR) != 0;
        switch (op)
        {
            case Op.Illegal: return InstructionEffects.Program;
            case Op.Sc:
                return new FormSC(insn).LEV == 1 && !problem ? InstructionEffects.Hypercall : InstructionEffects.SystemCall;
            case Op.Rfid: case Op.Hrfid: return InstructionEffects.ReturnFromInterrupt | InstructionEffects.Program;
            case Op.Mtmsr: case Op.Mtmsrd: return InstructionEffects.WritesMsr | InstructionEffects.Program;
            case Op.Mfmsr: case Op.Mfspr: case Op.Mtspr: case Op.Mftb:
            case Op.Tw: case Op.Td: case Op.Twi: case Op.Tdi:
                return InstructionEffects.Program;
            case Op.B: case Op.Bc: case Op.Bclr: return InstructionEffects.Branch;
            case Op.Bcctr: return InstructionEffects.Branch | InstructionEffects.Program;
            case Op.Lfs: case Op.Lfsu: case Op.Lfd: case Op.Lfdu: case Op.Stfs: case Op.Stfsu: case Op.Stfd: case Op.Stfdu:
                return InstructionEffects.FloatingPoint | InstructionEffects.Storage;
            case Op.Fmr: return InstructionEffects.FloatingPoint;
            case >= Op.Lbz and <= Op.Stdcx: case Op.Dcbz:
                return InstructionEffects.Storage;
            default: return InstructionEffects.None;
        }
    }
}
