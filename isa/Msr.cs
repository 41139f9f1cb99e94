namespace ActorStep.Isa;

/// <summary>MSR bit masks; IBM bit n is <c>1 &lt;&lt; (63 - n)</c> (Power ISA v3.0 Book III §4.2.1).</summary>
public static class Msr
{
    public const ulong SF = 0x8000000000000000;
    public const ulong HV = 0x1000000000000000;
    /// <summary>Bit 38: VMX available.</summary>
    public const ulong VEC = 0x0200_0000;
    /// <summary>Bit 40: VSX available.</summary>
    public const ulong VSX = 0x0080_0000;
    public const ulong EE = 0x8000;
    public const ulong PR = 0x4000;
    public const ulong FP = 0x2000;
    public const ulong ME = 0x1000;
    public const ulong FE0 = 0x800;
    public const ulong SE = 0x400;
    public const ulong BE = 0x200;
    public const ulong FE1 = 0x100;
    public const ulong IR = 0x20;
    public const ulong DR = 0x10;
    public const ulong RI = 0x2;
    public const ulong LE = 0x1;

    /// <summary>Bits 33:36 and 42:47: interrupt-specific in SRR1, never carried from the MSR (Book III §6.5).</summary>
    public const ulong PartialFunctionBits = 0x783F0000;

    /// <summary>Bits <c>mtmsrd</c> with L=0 leaves alone: HV, ME, LE (and S) (Book III §4.4.3).</summary>
    public const ulong MtmsrdPreserved = HV | ME | LE | 0x0000000000400000 /* S */;
}

/// <summary>SRR1 bits an interrupt sets (Book III §6.5).</summary>
public static class Srr1Bits
{
    /// <summary>SRR1[33]: set by the Trace interrupt; "no translation" for ISI.</summary>
    public const ulong Bit33 = 0x40000000;
    /// <summary>ISI: a fetch from no-execute or guarded storage. With radix, any fetch the leaf does not permit (no execute
    /// authority, a privileged page from problem state, a non-normal ATT) sets this bit and not bit 36, as POWER9 does (QEMU's
    /// "target/ppc: fix ISI fault cause for Radix MMU", 2022: SRR1_NOEXEC_GUARD rather than DSISR_PROTFAULT).</summary>
    public const ulong Bit35 = 0x10000000;
    public const ulong ProgramFpEnabled = 0x100000;   // bit 43
    public const ulong ProgramIllegal = 0x80000;      // bit 44
    public const ulong ProgramPrivileged = 0x40000;   // bit 45
    public const ulong ProgramTrap = 0x20000;         // bit 46
    /// <summary>Bit 47: SRR0 holds the address of an instruction after the one that caused the interrupt (Linux's
    /// SRR1_PROGADDR): a Floating-Point Enabled Exception taken at an MSR write that set FE0/FE1 with FPSCR[FEX] = 1.</summary>
    public const ulong ProgramSubsequentAddress = 0x10000;
}

/// <summary>LPCR fields the guest platform uses (Book III §2.2).</summary>
public static class Lpcr
{
    public const ulong ILE = 0x2000000;
    public const int AilShift = 23;
    public const ulong AilMask = 3UL << AilShift;

    public static int Ail(ulong lpcr) => (int)((lpcr >> AilShift) & 3);
    public static ulong WithAil(ulong lpcr, int ail) => (lpcr & ~AilMask) | ((ulong)ail << AilShift);
}

/// <summary>SPR numbers (Book III, SPR list).</summary>
public static class Spr
{
    public const int XER = 1, LR = 8, CTR = 9, DSISR = 18, DAR = 19, DEC = 22, SRR0 = 26, SRR1 = 27;
    public const int TBL_READ = 268, TBU_READ = 269;
    public const int SPRG0 = 272, SPRG1 = 273, SPRG2 = 274, SPRG3 = 275;
    public const int PVR = 287, LPCR = 318, PIR = 1023;
    /// <summary>User read-only alias of SPRG3.</summary>
    public const int USPRG3 = 259;
    public const int PIDR = 48, FSCR = 153, PTCR = 464;
    /// <summary>VRSAVE: a 32-bit software convention register, user-accessible (Book I §6.3).</summary>
    public const int VRSAVE = 256;

    /// <summary>
    /// SPRs only the hypervisor may touch (Book III §4.4.4, the SPR table's hypervisor column): from guest supervisor
    /// state mfspr/mtspr of these raise a privileged program interrupt (KVM-HV reflects the HEA interrupt as one).
    /// HSPRG0/1, HDSISR, HDAR, HDEC, RMOR, HRMOR, HSRR0/1, LPCR, LPIDR, HMER, HMEER, PCR, HEIR, AMOR, PTCR, ASDR,
    /// PSSCR (the hypervisor's number), HID.
    /// </summary>
    public static bool IsHypervisorOnly(int spr) => spr is 304 or 305 or 306 or 307 or 310 or 312 or 313 or 314 or 315
        or 318 or 319 or 336 or 337 or 338 or 339 or 349 or 464 or 816 or 855 or 1008;

    /// <summary>The <c>spr</c> field of mfspr/mtspr has its two halves swapped (Book I §3.3.17).</summary>
    public static int Decode(uint insn) => (int)((((insn >> 11) & 31) << 5) | ((insn >> 16) & 31));
    public static uint Encode(int spr) => (uint)((((spr & 31) << 5) | ((spr >> 5) & 31)) << 11);
}

/// <summary>XER bits (Book I §3.2.2), including the v3.0 32-bit carry/overflow copies.</summary>
public static class Xer
{
    public const ulong SO = 0x80000000;
    public const ulong OV = 0x40000000;
    public const ulong CA = 0x20000000;
    public const ulong OV32 = 0x80000;
    public const ulong CA32 = 0x40000;
}
