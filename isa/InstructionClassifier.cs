namespace ActorStep.Isa;

/// <summary>What an instruction can do besides completing, for predicting where a step can end. Each row of
/// <see cref="OpcodeTable.Rows"/> carries its instruction's.</summary>
[Flags]
public enum InstructionEffects
{
    None = 0,
    /// <summary>May take a DSI or an alignment interrupt (any storage access).</summary>
    Storage = 1,
    /// <summary>May take a program interrupt (illegal, privileged, trap; FP enabled for FP and VSX instructions when MSR[FE0,FE1] != 0).</summary>
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
    /// <summary>lwarx/ldarx/stwcx./stdcx.: takes or needs a reservation, which a trip to a real host loses.</summary>
    Reservation = 256,
    /// <summary>May take a Vector Unavailable interrupt (VMX with MSR[VEC]=0).</summary>
    Vector = 512,
    /// <summary>May take a VSX Unavailable interrupt (VSX with MSR[VSX]=0).</summary>
    Vsx = 1024,
}

public static class InstructionClassifier
{
    /// <summary>The instruction's class from its table row; <c>sc</c> is a hypercall when LEV=1 from supervisor state.</summary>
    public static InstructionEffects Classify(Op op, uint insn, ulong msr)
    {
        var effects = OpcodeTable.Effects(op);
        if (op == Op.Sc && new FormSC(insn).LEV == 1 && (msr & Msr.PR) == 0)
            effects = (effects & ~InstructionEffects.SystemCall) | InstructionEffects.Hypercall;
        // With MSR[FE0] or MSR[FE1], an FP or VSX instruction that sets FPSCR[FEX] takes a Floating-Point Enabled
        // Exception type Program interrupt (Book III §6.5.9).
        if ((effects & (InstructionEffects.FloatingPoint | InstructionEffects.Vsx)) != 0 && (msr & (Msr.FE0 | Msr.FE1)) != 0)
            effects |= InstructionEffects.Program;
        return effects;
    }
}
