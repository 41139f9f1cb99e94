using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

// Interrupt delivery in one place (Power ISA v3.0 Book III §6.5): only this file writes SRR0/SRR1 on
// an interrupt, computes the new MSR and the vector with AIL.
public sealed partial class SimulatedVcpu
{
    /// <summary>
    /// Delivers an interrupt: SRR0, SRR1 = MSR with bits 33:36 and 42:47 replaced by <paramref name="srr1Bits"/>,
    /// new MSR per §6.5 (SF, HV/ME kept, LE = LPCR[ILE], IR/DR only under AIL), NIP = vector | AIL offset.
    /// </summary>
    private void Deliver(InterruptKind kind, ulong srr0, ulong srr1Bits)
    {
        var entry = InterruptEntry.Of(kind, Msr_, _vm.Lpcr, srr0, srr1Bits);
        Srr0 = entry.Srr0;
        Srr1 = entry.Srr1;
        Nip = entry.Nip;
        Msr_ = entry.Msr;
        // The reservation survives interrupts (Book II §1.7.3.1 lists what clears it; interrupts are not
        // among them — Linux clears it by hand on interrupt return). A trip to the host does not keep it (Run).
    }

    /// <summary>
    /// An instruction-caused interrupt. One raised by the first instruction of its own handler can never
    /// make progress (a guest with no handler there): the vcpu checkstops instead of looping forever.
    /// </summary>
    private void RaiseFault(InterruptKind kind, ulong srr0, ulong srr1Bits)
    {
        if (_cia == InterruptVectors.HandlerAddress(kind, Msr_, _vm.Lpcr) && kind != InterruptKind.SystemCall)
        {
            _stopped = true;
            Nip = _cia; // the instruction that cannot be handled did not execute: NIP stays on it, as Exit says
            Exit(ExitReason.Checkstop, _cia, 0,
                $"{kind} interrupt at the first instruction of its own handler (0x{_cia:x}): the guest cannot recover");
            return;
        }
        Deliver(kind, srr0, srr1Bits);
        _event |= Event.Interrupted; // the faulting instruction did not complete: it is neither counted nor traced
    }

    /// <summary>Program interrupt: SRR0 = the offending instruction (Book III §6.5.9).</summary>
    private void RaiseProgram(ulong reason) => RaiseFault(InterruptKind.Program, _cia, reason);

    private void RaiseIllegal(uint insn)
    {
        if (insn == DebugInstruction
            && (_debug & GuestDebug.SoftwareBreakpoints) != 0)
        {
            // KVM_EXIT_DEBUG: the guest took an HEA interrupt that the hypervisor keeps; NIP not advanced.
            Nip = _cia;
            Exit(ExitReason.Debug, _cia);
            return;
        }
        _vm.NoteMissing("instruction", insn, Index, _cia);
        RaiseProgram(Srr1Bits.ProgramIllegal);
    }

    private void RaisePrivileged() => RaiseProgram(Srr1Bits.ProgramPrivileged);

    /// <summary>DSI: SRR0 = the instruction, DAR = EA, DSISR[33] no translation or DSISR[36] protection, DSISR[38] store
    /// (Book III §6.5.3); a radix segment fault is a Data Segment interrupt with DAR only (§6.5.4).</summary>
    private void RaiseDataStorage(ulong ea, bool store, Mmu.RadixFault fault = Mmu.RadixFault.NoTranslation)
    {
        Dar = ea;
        if (fault == Mmu.RadixFault.Segment) { RaiseFault(InterruptKind.DataSegment, _cia, 0); return; }
        Dsisr = (fault == Mmu.RadixFault.Protection ? 0x08000000u : 0x40000000u) | (store ? 0x02000000u : 0);
        RaiseFault(InterruptKind.DataStorage, _cia, 0);
    }

    /// <summary>Alignment: SRR0 = the instruction, DAR = EA (Book III §6.5.8).</summary>
    private void RaiseAlignment(ulong ea)
    {
        Dar = ea;
        RaiseFault(InterruptKind.Alignment, _cia, 0);
    }

    /// <summary>
    /// Trace: after a successfully completed instruction with MSR[SE]=1 in force before it. SRR0 = the next
    /// instruction, SRR1[33] = 1 (POWER9 hardware, QEMU ≥ 8.2). SRR1[35]/[36] (load/store) are not set,
    /// as in QEMU: documented in machine/README.md.
    /// </summary>
    private void DeliverTrace()
    {
        Deliver(InterruptKind.Trace, Nip, Srr1Bits.Bit33);
    }
}
