using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

// SPR and MSR access, rfid, sc, traps (Power ISA v3.0 Book III §4.4, §6.4; Book I §3.3.11).
public sealed partial class SimulatedVcpu
{
    private bool ProblemState => (Msr_ & Isa.Msr.PR) != 0;
    private bool Hypervisor => (Msr_ & Isa.Msr.HV) != 0;

    /// <summary>SPRs whose number has bit 0x10 set are privileged (Book III §4.4.4).</summary>
    private static bool IsPrivilegedSpr(int spr) => (spr & 0x10) != 0;

    private void Mfspr(uint i)
    {
        var x = new FormXFX(i);
        int spr = x.SPR;
        if (IsPrivilegedSpr(spr) && ProblemState) { RaisePrivileged(); return; }
        ulong? v = spr switch
        {
            Spr.XER => Xer,
            Spr.LR => Lr,
            Spr.CTR => Ctr,
            Spr.DSISR => Dsisr,
            Spr.DAR => Dar,
            Spr.DEC => (ulong)(long)(int)Dec,
            Spr.SRR0 => Srr0,
            Spr.SRR1 => Srr1,
            Spr.SPRG0 => Sprg[0],
            Spr.SPRG1 => Sprg[1],
            Spr.SPRG2 => Sprg[2],
            Spr.SPRG3 => Sprg[3],
            Spr.USPRG3 => Sprg[3],
            Spr.TBL_READ => _vm.TimebaseRead(Tb),
            Spr.TBU_READ => _vm.TimebaseRead(Tb) >> 32,
            Spr.PVR => Pvr,
            Spr.PIR => (ulong)Index,
            Spr.PIDR => Pidr,
            Spr.VRSAVE => Vrsave,
            Spr.LPCR when Hypervisor => _vm.Lpcr,
            _ => null,
        };
        if (v is null)
        {
            // A hypervisor SPR from guest supervisor state, or an SPR this machine does not model.
            if (Spr.IsHypervisorOnly(spr)) { RaisePrivileged(); return; }
            // An SPR the machine does not model reads as what was last written to it (0 at reset).
            _vm.NoteMissing("spr", (ulong)spr, Index, _cia);
            v = _otherSpr[spr];
        }
        Gpr[x.RT] = v.Value;
    }

    /// <summary>SPRs with no behaviour here (FSCR, PIDR, AMR, PPR, PMU, …): storage only, 0 at reset.</summary>
    private readonly ulong[] _otherSpr = new ulong[1024];

    private void Mtspr(uint i)
    {
        var x = new FormXFX(i);
        int spr = x.SPR;
        if (IsPrivilegedSpr(spr) && ProblemState) { RaisePrivileged(); return; }
        ulong v = Gpr[x.RS];
        switch (spr)
        {
            case Spr.XER: Xer = v & 0xFFFFFFFF & (Isa.Xer.SO | Isa.Xer.OV | Isa.Xer.CA | Isa.Xer.OV32 | Isa.Xer.CA32 | 0x7F); break;
            case Spr.LR: Lr = v; break;
            case Spr.CTR: Ctr = v; break;
            case Spr.DSISR: Dsisr = (uint)v; break;
            case Spr.DAR: Dar = v; break;
            case Spr.DEC: Dec = (uint)v; _event |= Event.Rebatch; break;
            case Spr.SRR0: Srr0 = v; break;
            case Spr.SRR1: Srr1 = v; break;
            case Spr.SPRG0: Sprg[0] = v; break;
            case Spr.SPRG1: Sprg[1] = v; break;
            case Spr.SPRG2: Sprg[2] = v; break;
            case Spr.SPRG3: Sprg[3] = v; break;
            case Spr.VRSAVE: Vrsave = (uint)v; break;
            case Spr.LPCR when Hypervisor: _vm.Lpcr = v; break;
            case Spr.PIDR: Pidr = v & 0xFFFFFFFF; ClearTranslationCache(); break;
            case Spr.LPCR: RaisePrivileged(); break;
            case Spr.PVR: case Spr.PIR: case Spr.TBL_READ: case Spr.TBU_READ: case Spr.USPRG3: RaiseIllegal(i); break;
            default:
                if (Spr.IsHypervisorOnly(spr)) { RaisePrivileged(); break; }
                _vm.NoteMissing("spr", (ulong)spr, Index, _cia);
                _otherSpr[spr] = v;
                break;
        }
    }

    private void Mftb(uint i)
    {
        var x = new FormXFX(i);
        switch (x.SPR)
        {
            case Spr.TBL_READ: Gpr[x.RT] = _vm.TimebaseRead(Tb); break;
            case Spr.TBU_READ: Gpr[x.RT] = _vm.TimebaseRead(Tb) >> 32; break;
            default: RaiseIllegal(i); break;
        }
    }

    private void Mfmsr(uint i)
    {
        if (ProblemState) { RaisePrivileged(); return; }
        Gpr[new FormX(i).RT] = Msr_;
    }

    /// <summary>
    /// mtmsrd L=1 writes EE and RI only; L=0 writes all but HV, ME, LE and S (mtmsr: the low word only);
    /// PR=1 forces EE, IR, DR (Book III §4.4.3).
    /// </summary>
    private void Mtmsr(uint i, bool doubleword)
    {
        if (ProblemState) { RaisePrivileged(); return; }
        var x = new FormX(i);
        ulong msr = MsrRules.AfterMtmsr(Msr_, Gpr[x.RS], x.L15, doubleword);
        Msr_ = msr;
        _event |= Event.Rebatch;
        FpEnabledAfterMsrWrite();
    }

    /// <summary>
    /// An MSR write (mtmsr[d], rfid, hrfid, rfscv) that leaves MSR[FE0] | MSR[FE1] with FPSCR[FEX] = 1 already: the
    /// Floating-Point Enabled Exception type Program interrupt is generated whenever (MSR[FE0] | MSR[FE1]) &amp; FPSCR[FEX]
    /// is 1 (Book III §6.5.9), so it is taken once the MSR-writing instruction has completed, before the next one: SRR0 =
    /// the instruction that would have run next (NIP: mtmsrd + 4, or the rfid's target), SRR1 = the new MSR with bit 43
    /// and bit 47 ("SRR0 holds a subsequent instruction's address", Linux's SRR1_PROGADDR; the case Book III §6.4.4 calls
    /// imprecise, and IBM's PPC440 manual describes: "the instruction that would have executed after the MSR-changing
    /// instruction"). The instruction is counted, not traced. One test of the MSR in the common case.
    /// </summary>
    private void FpEnabledAfterMsrWrite()
    {
        if (!FpEnabledPending) return;
        Deliver(InterruptKind.Program, Nip, Srr1Bits.ProgramFpEnabled | Srr1Bits.ProgramSubsequentAddress);
        _event |= Event.NoTrace | Event.Rebatch;
    }

    /// <summary>rfid: NIP = SRR0 &amp; ~3, MSR ← SRR1 (HV and ME kept in guest state); never traced (Book III §6.4.3).</summary>
    private void Rfid()
    {
        if (ProblemState) { RaisePrivileged(); return; }
        // The target is fetched under the new MSR: with SF=0 there, NIA = 0x00000000 || SRR0[32:61] || 0b00.
        Msr_ = MsrRules.AfterRfid(Msr_, Srr1);
        Nip = EffectiveAddress(Srr0 & ~3UL);
        _event |= Event.NoTrace | Event.Rebatch;
        FpEnabledAfterMsrWrite();
    }

    /// <summary>hrfid is hypervisor-privileged: a guest gets a privileged-instruction program interrupt.</summary>
    private void Hrfid()
    {
        if (!Hypervisor || ProblemState) { RaisePrivileged(); return; }
        Rfid();
    }

    /// <summary>sc: System Call interrupt with SRR0 = next instruction; <c>sc 1</c> from supervisor state is a hypercall.</summary>
    private void SystemCall(uint i)
    {
        if (new FormSC(i).LEV == 1 && !ProblemState)
        {
            _vm.Hypercall(this);
            _event |= Event.NoTrace | Event.Rebatch; // sc is never traced (Book III §6.5.15)
            return;
        }
        Deliver(InterruptKind.SystemCall, Nip, 0);
        _event = Event.NoTrace | Event.Rebatch; // sc completes (it is counted) and is not traced
    }

    /// <summary>
    /// scv LEV: LR = next instruction, CTR = MSR, the handler at 0x17000 (0xC…3000 with AIL=3) + LEV×0x20 with EE and RI
    /// kept (<see cref="SystemCallVectoredEntry"/>); SRR0/SRR1 untouched. FSCR[SCV]=0 makes it a Facility Unavailable
    /// interrupt (FSCR[IC] = 12), as QEMU does.
    /// </summary>
    private void SystemCallVectored(uint i)
    {
        ulong fscr = _otherSpr[Spr.FSCR];
        if ((fscr & Fscr.SCV) == 0)
        {
            _otherSpr[Spr.FSCR] = Fscr.WithCause(fscr, Fscr.CauseScv);
            RaiseFault(InterruptKind.FacilityUnavailable, _cia, 0);
            return;
        }
        var entry = SystemCallVectoredEntry.Of(new FormSC(i).LEV, Msr_, _vm.Lpcr, Nip);
        Lr = entry.Lr;
        Ctr = entry.Ctr;
        Nip = entry.Nip;
        Msr_ = entry.Msr;
        _event = Event.NoTrace | Event.Rebatch; // like sc: completes, is counted, is not traced
    }

    /// <summary>rfscv: NIP = LR &amp; ~3, MSR ← CTR by rfid's rules; privileged, never traced.</summary>
    private void Rfscv()
    {
        if (ProblemState) { RaisePrivileged(); return; }
        Msr_ = MsrRules.AfterRfid(Msr_, Ctr);
        Nip = EffectiveAddress(Lr & ~3UL);
        _event |= Event.NoTrace | Event.Rebatch;
        FpEnabledAfterMsrWrite();
    }

    private void Trap(Op op, uint i)
    {
        var d = new FormD(i);
        bool word = op is Op.Tw or Op.Twi;
        ulong bRaw = op is Op.Twi or Op.Tdi ? (ulong)d.SI : Gpr[new FormX(i).RB];
        ulong aRaw = Gpr[d.RA];
        long a = word ? (int)aRaw : (long)aRaw, b = word ? (int)bRaw : (long)bRaw;
        ulong ua = word ? (uint)aRaw : aRaw, ub = word ? (uint)bRaw : bRaw;
        int to = d.TO;
        bool trap = ((to & 0x10) != 0 && a < b) || ((to & 0x08) != 0 && a > b) || ((to & 0x04) != 0 && a == b)
                    || ((to & 0x02) != 0 && ua < ub) || ((to & 0x01) != 0 && ua > ub);
        if (trap) RaiseProgram(Srr1Bits.ProgramTrap);
    }

    // --- Hypercall plumbing used by SimulatedMachine. ---

    internal void Cede()
    {
        Msr_ |= Isa.Msr.EE;
        _ceded = true;
        _event |= Event.Rebatch;
    }

    internal void StopForGood(long status)
    {
        _stopped = true;
        Tb++; _retired++;
        Exit(ExitReason.Stopped, Nip, status, $"guest stopped vcpu {Index} with status {status}");
    }
}
