using ActorStep.Hypervisor;
using ActorStep.Isa;

namespace ActorStep.Actors.Engine;

/// <summary>
/// Plans a host step and undoes the Trace interrupt at its end (step-engine.md §3). A plain class with
/// no actor plumbing: the <see cref="VcpuEngine"/> drives it, tests call it directly.
/// </summary>
public static class TraceStep
{
    /// <summary>Translates an EA for a fetch with a given MSR (the vcpu's KVM-style translate).</summary>
    public delegate bool Translate(ulong effectiveAddress, ulong msr, out ulong realAddress);

    private static readonly InterruptKind[] StorageInterrupts = [InterruptKind.DataStorage, InterruptKind.Alignment];
    private static readonly InterruptKind[] AsyncInterrupts = [InterruptKind.Decrementer, InterruptKind.External];

    /// <param name="s">the vcpu's registers at the start of the step</param>
    /// <param name="fetch">reads the original instruction word at an RA in the given byte order (breakpoints hidden)</param>
    /// <param name="allowAsync">asynchronous interrupts are not held: the step may end at their handlers</param>
    public static StepPlan Plan(VcpuState s, Translate translate, Func<ulong, bool, uint> fetch, bool allowAsync)
    {
        ulong msr = s.Msr, lpcr = s.Lpcr;
        bool guestSe = (msr & Msr.SE) != 0;
        var ends = new List<EndPoint>();

        void Add(ulong ea, ulong fetchMsr, EndPointKind kind, InterruptKind? interrupt = null) =>
            AddEnd(ends, translate, ea, fetchMsr, kind, interrupt);

        void AddHandler(InterruptKind kind, ulong msrAtInterrupt) => AddHandlerEnd(ends, translate, kind, msrAtInterrupt, lpcr);

        if (!translate(s.Nip, msr, out ulong nipRa))
        {
            // The fetch itself faults: the step ends at the ISI handler.
            AddHandler(InterruptKind.InstructionStorage, msr);
            return new StepPlan(s.Nip, ulong.MaxValue, 0, Op.Illegal, InstructionEffects.None, false, guestSe, s.Srr0, s.Srr1, 0, ends);
        }

        bool le = (msr & Msr.LE) != 0;
        uint insn = fetch(nipRa, le);
        Op op = OpcodeTable.Decode(insn);
        // A load-and-reserve starts an atomic sequence, which must run whole, and so must the rest of one whose reservation
        // the vcpu still holds (a guest tracing itself takes its own Trace after each instruction, as it would undebugged:
        // that step is the instruction alone).
        if (!guestSe && AtomicSequencePlan(s, nipRa, insn, le, translate, fetch, allowAsync) is { } sequence)
            return sequence;
        var effects = InstructionClassifier.Classify(op, insn, msr);
        ulong armed = msr | Msr.SE;
        bool armTrace, cedes = false;

        if ((effects & InstructionEffects.ReturnFromInterrupt) != 0)
        {
            // rfid is never traced: the step ends at its target, fetched with the MSR it installs (§3 point 2); rfscv returns
            // through LR and CTR instead of SRR0 and SRR1.
            ulong newMsr = MsrRules.AfterRfid(msr, op == Op.Rfscv ? s.Ctr : s.Srr1);
            Add(MsrRules.ReturnAddress(op == Op.Rfscv ? s.Lr : s.Srr0, newMsr), newMsr, EndPointKind.ReturnTarget);
            armTrace = false;
        }
        else if ((effects & InstructionEffects.Hypercall) != 0)
        {
            // The host serves sc 1 and the guest continues at NIP+4; sc is never traced.
            Add(s.Nip + 4, msr, EndPointKind.Successor);
            armTrace = false;
            // H_CEDE sets MSR[EE] and idles until an interrupt wakes the vcpu, which then takes it at NIP+4 (PAPR): with
            // interrupts allowed the step ends at that interrupt's handler, at the time it wakes, as the undebugged vcpu
            // enters it (nothing woke it within the slice: at NIP+4, still ceded, as the undebugged vcpu is then). Held for the
            // step (as for any untraced one), the vcpu could not wake and its idle would run on past the interrupt (time
            // leaking: §6 invariant 1).
            if (s.Gpr[3] == Papr.H_CEDE)
            {
                cedes = true;
                if (allowAsync) foreach (var k in AsyncInterrupts) AddHandler(k, msr | Msr.EE);
            }
        }
        else if (op == Op.Scv)
        {
            // scv has its own vectors (0x17000 / 0xC…3000 + LEV×0x20), or a Facility Unavailable when FSCR disables it.
            var scv = SystemCallVectoredEntry.Of(new FormSC(insn).LEV, msr, lpcr, s.Nip + 4);
            Add(scv.Nip, scv.Msr, EndPointKind.InterruptHandler);
            AddHandler(InterruptKind.FacilityUnavailable, msr);
            armTrace = false;
        }
        else if ((effects & InstructionEffects.SystemCall) != 0)
        {
            AddHandler(InterruptKind.SystemCall, msr);
            armTrace = false;
        }
        else
        {
            // The Trace is taken with the MSR the instruction installs (mtmsrd may move the handler).
            ulong msrAfter = armed;
            if ((effects & InstructionEffects.WritesMsr) != 0)
            {
                var x = new FormX(insn);
                msrAfter = MsrRules.AfterMtmsr(armed, s.Gpr[x.RS], x.L15, op == Op.Mtmsrd);
            }
            ulong traceHandler = InterruptVectors.HandlerAddress(InterruptKind.Trace, msrAfter, lpcr);
            bool traceAtNip = translate(traceHandler, InterruptVectors.NewMsr(msrAfter, lpcr), out ulong traceRa) && traceRa == nipRa;
            if (traceAtNip)
            {
                // Stepping the Trace handler's own first instruction (§4): a breakpoint there would trap before
                // executing it, so end at the instruction's successors instead, with no Trace.
                armTrace = false;
                foreach (ulong next in Successors(op, insn, s))
                    Add(next, msrAfter & ~Msr.SE, EndPointKind.Successor);
            }
            else
            {
                armTrace = true;
                Add(traceHandler, InterruptVectors.NewMsr(msrAfter, lpcr), EndPointKind.TraceHandler, InterruptKind.Trace);
                // An implementation that decides on the SE after mtmsrd would not trace: cover NIP+4 too (§3 point 2).
                if ((effects & InstructionEffects.WritesMsr) != 0)
                    Add(s.Nip + 4, msrAfter, EndPointKind.Successor);
            }
        }

        if ((effects & InstructionEffects.Storage) != 0)
            foreach (var k in StorageInterrupts) AddHandler(k, msr);
        if ((effects & InstructionEffects.Program) != 0) AddHandler(InterruptKind.Program, msr);
        if ((effects & InstructionEffects.FloatingPoint) != 0) AddHandler(InterruptKind.FloatingPointUnavailable, msr);
        if ((effects & InstructionEffects.Vector) != 0) AddHandler(InterruptKind.VectorUnavailable, msr);
        if ((effects & InstructionEffects.Vsx) != 0) AddHandler(InterruptKind.VsxUnavailable, msr);
        if (allowAsync && (msr & Msr.EE) != 0)
            foreach (var k in AsyncInterrupts) AddHandler(k, msr);

        // A breakpoint at NIP itself would trap before the instruction runs: never plant one there.
        for (int i = ends.Count - 1; i >= 0; i--) if (ends[i].RealAddress == nipRa) ends.RemoveAt(i);
        // RS of mtmsr(d)/mtspr, whose value the undo needs (§3 point 5).
        ulong source = s.Gpr[new FormX(insn).RS];
        return new StepPlan(s.Nip, nipRa, insn, op, effects, armTrace, guestSe, s.Srr0, s.Srr1, source, ends) { Cedes = cedes };
    }

    /// <summary>
    /// The plan of a step that runs an atomic sequence whole through its store-conditional, as gdb's
    /// <c>ppc_deal_with_atomic_sequence</c> does: a trip to the host between the larx and the stcx. (each step of one
    /// instruction is one) loses the reservation on QEMU and on any real host, and the store-conditional would never succeed.
    /// It starts at a load-and-reserve, or inside a sequence whose reservation the vcpu still holds
    /// (<see cref="VcpuState.ReservationHeld"/>: a continue slice that ran out its budget there, the simulator slicing its own
    /// time, keeps it) and runs the rest of it. Null when NIP is neither, when the guest traces itself (its own Trace follows
    /// each instruction), or when no store-conditional closes the sequence within <see cref="AtomicSequences.Window"/>
    /// instructions after NIP: then the instruction is stepped alone. The hardware-step backend uses it too
    /// (<see cref="VcpuEngine"/>): a KVM-PR step is also a host trip.
    /// </summary>
    public static StepPlan? PlanAtomicSequence(VcpuState s, Translate translate, Func<ulong, bool, uint> fetch, bool allowAsync)
    {
        if ((s.Msr & Msr.SE) != 0 || !translate(s.Nip, s.Msr, out ulong nipRa)) return null;
        bool le = (s.Msr & Msr.LE) != 0;
        return AtomicSequencePlan(s, nipRa, fetch(nipRa, le), le, translate, fetch, allowAsync);
    }

    /// <summary>
    /// The plan of a step from <paramref name="first"/>, the instruction at NIP, through the store-conditional: a larx, or
    /// any instruction when the vcpu holds a reservation (null otherwise). Its end points: the instruction after the
    /// store-conditional, the target of each conditional branch in the step that leaves [NIP, stcx.] (a target inside is a
    /// retry within the step; started inside a sequence, a branch back to its larx is an exit, and the step ends there, where
    /// the next step takes the sequence whole), and the handlers of the interrupts its instructions can raise (storage,
    /// program, FP) and of the asynchronous ones when allowed and one is deliverable at NIP. No Trace is armed: the
    /// instructions run freely to an end point.
    /// Not taken whole: a sequence holding what the plan cannot follow (sc, rfid, mtmsr(d), an unconditional or indirect
    /// branch), and, started without a larx, a larx before any store-conditional (NIP is not inside a sequence: its
    /// reservation is one a branch out of a sequence or a failed compare left behind, and the next sequence starts there).
    /// </summary>
    private static StepPlan? AtomicSequencePlan(VcpuState s, ulong nipRa, uint first, bool le, Translate translate,
        Func<ulong, bool, uint> fetch, bool allowAsync)
    {
        bool atLarx = AtomicSequences.IsLoadAndReserve(first);
        if (!atLarx && !s.ReservationHeld) return null;
        ulong msr = s.Msr, lpcr = s.Lpcr;
        var effects = InstructionEffects.None;
        var inside = new List<ulong>(4);
        var exits = new List<ulong>(2);
        ulong? closing = null;
        const InstructionEffects cannotFollow = InstructionEffects.SystemCall | InstructionEffects.Hypercall
                                               | InstructionEffects.ReturnFromInterrupt | InstructionEffects.WritesMsr;
        for (int n = 0; n <= AtomicSequences.Window && closing is null; n++)
        {
            ulong ea = s.Nip + 4UL * (ulong)n, ra = nipRa;
            if (n > 0 && !translate(ea, msr, out ra)) return null;
            uint insn = n == 0 ? first : fetch(ra, le);
            if (n > 0 && !atLarx && AtomicSequences.IsLoadAndReserve(insn)) return null;
            Op op = OpcodeTable.Decode(insn);
            var e = InstructionClassifier.Classify(op, insn, msr);
            if ((e & cannotFollow) != 0 || op is Op.B or Op.Bclr or Op.Bcctr) return null;
            effects |= e;
            if (n > 0) inside.Add(ra);
            if (op == Op.Bc) exits.Add(Branches.Target(op, insn, ea, s.Lr, s.Ctr));
            if (AtomicSequences.IsStoreConditional(insn)) closing = ea;
        }
        if (closing is not ulong stcx) return null;

        var ends = new List<EndPoint>();
        AddEnd(ends, translate, stcx + 4, msr, EndPointKind.Successor);
        foreach (ulong target in exits)
            if (target < s.Nip || target > stcx) AddEnd(ends, translate, target, msr, EndPointKind.Successor);
        if ((effects & InstructionEffects.Storage) != 0)
            foreach (var k in StorageInterrupts) AddHandlerEnd(ends, translate, k, msr, lpcr);
        if ((effects & InstructionEffects.Program) != 0) AddHandlerEnd(ends, translate, InterruptKind.Program, msr, lpcr);
        if ((effects & InstructionEffects.FloatingPoint) != 0) AddHandlerEnd(ends, translate, InterruptKind.FloatingPointUnavailable, msr, lpcr);
        if ((effects & InstructionEffects.Vector) != 0) AddHandlerEnd(ends, translate, InterruptKind.VectorUnavailable, msr, lpcr);
        if ((effects & InstructionEffects.Vsx) != 0) AddHandlerEnd(ends, translate, InterruptKind.VsxUnavailable, msr, lpcr);
        // Only an interrupt deliverable before the first instruction ends the step at its handler. One that falls due inside the
        // sequence, or as it ends, is taken there and its handler runs within the step, which ends when the vcpu next fetches an
        // end point: the undebugged machine's order and time, and no trip to the host in the middle to lose the reservation (a
        // guest whose handler keeps it would see its stcx. fail). Like gdb's atomic step, which runs the sequence freely.
        if (allowAsync && AsyncDeliverable(s))
            foreach (var k in AsyncInterrupts) AddHandlerEnd(ends, translate, k, msr, lpcr);
        for (int i = ends.Count - 1; i >= 0; i--) if (ends[i].RealAddress == nipRa) ends.RemoveAt(i);
        return new StepPlan(s.Nip, nipRa, first, OpcodeTable.Decode(first), effects, ArmTrace: false, GuestSe: false, s.Srr0, s.Srr1, 0,
            ends, new AtomicSequence(stcx, inside.Count + 1, inside));
    }

    /// <summary>
    /// Whether a host step runs with the decrementer and external interrupts held. Held when the request holds them (and the
    /// backend can). Allowed, they are still held for a step that arms no Trace (rfid, sc, a hypercall, the Trace handler's own
    /// first instruction) unless one is deliverable now: its end is a breakpoint at the next fetch, and an interrupt that fell
    /// due as the instruction completed would be taken at that boundary first, two events in one step (§6 invariant 2); the
    /// next step takes it, where the undebugged run does. Not for an atomic sequence: one that falls due inside it is taken
    /// where it falls due (<see cref="PlanAtomicSequence"/>); nor for an H_CEDE, which only an interrupt ends (its handler is then
    /// the step's end). Decided for each step of a count or a range on its own: a hold one step needed must not outlive it, or
    /// an interrupt allowed to fall due in a later step would be taken late.
    /// </summary>
    public static bool HoldsAsyncInterrupts(StepPlan plan, VcpuState s, bool requested, bool backendHolds) =>
        backendHolds && (requested || (!plan.ArmTrace && plan.Sequence is null && !plan.Cedes && !AsyncDeliverable(s)));

    /// <summary>A decrementer interrupt is deliverable now: MSR[EE]=1 and DEC negative (Book III §7.3). A pending external
    /// interrupt is not in the registers: its handler runs within a sequence's step.</summary>
    public static bool AsyncDeliverable(VcpuState s) => (s.Msr & Msr.EE) != 0 && (int)s.Dec < 0;

    private static void AddEnd(List<EndPoint> ends, Translate translate, ulong ea, ulong fetchMsr, EndPointKind kind,
        InterruptKind? interrupt = null)
    {
        if (!translate(ea, fetchMsr, out ulong ra)) return;
        foreach (var e in ends) if (e.RealAddress == ra) return;
        ends.Add(new EndPoint(ea, ra, kind, interrupt));
    }

    private static void AddHandlerEnd(List<EndPoint> ends, Translate translate, InterruptKind kind, ulong msrAtInterrupt, ulong lpcr) =>
        AddEnd(ends, translate, InterruptVectors.HandlerAddress(kind, msrAtInterrupt, lpcr), InterruptVectors.NewMsr(msrAtInterrupt, lpcr),
            kind == InterruptKind.Trace ? EndPointKind.TraceHandler : EndPointKind.InterruptHandler, kind);

    /// <summary>Where control can go after the instruction without an interrupt: NIP+4 and any branch target.</summary>
    public static IEnumerable<ulong> Successors(Op op, uint insn, VcpuState s)
    {
        if (op is Op.B or Op.Bc or Op.Bclr or Op.Bcctr)
            yield return Branches.Target(op, insn, s.Nip, s.Lr, s.Ctr);
        if (op != Op.B) yield return s.Nip + 4;
    }

    /// <summary>How a step ended, after the engine put the state right.</summary>
    public enum Completion
    {
        /// <summary>The instruction completed; state is as if it ran with no debugger.</summary>
        Completed,
        /// <summary>The guest's own Trace interrupt was taken (it single-steps itself): NIP at its Trace handler.</summary>
        GuestTrace,
        /// <summary>An interrupt was taken: NIP at the first instruction of its handler.</summary>
        Interrupted,
        /// <summary>rfid landed on its target, before the target executes.</summary>
        Returned,
    }

    /// <summary>
    /// Puts the registers right after the vcpu exited at end point <paramref name="end"/> (§3 points 5–7).
    /// Mutates and returns <paramref name="s"/>.
    /// </summary>
    public static Completion Complete(StepPlan plan, EndPoint end, VcpuState s)
    {
        switch (end.Kind)
        {
            case EndPointKind.TraceHandler when plan.GuestSe:
                // §3 point 6: the Trace is the guest's own; leave it taken, SRR0/SRR1 as the hardware set them.
                return Completion.GuestTrace;

            case EndPointKind.TraceHandler:
            {
                // §3 point 5: undo the Trace interrupt.
                ulong msr = s.Srr1 & ~Msr.PartialFunctionBits;
                msr = (msr & ~Msr.SE) | (GuestSeAfter(plan) ? Msr.SE : 0);
                s.Nip = s.Srr0;
                s.Msr = msr;
                s.Srr0 = plan.SavedSrr0;
                s.Srr1 = plan.SavedSrr1;
                if (plan.Op == Op.Mtspr)
                {
                    var x = new FormXFX(plan.Instruction);
                    if (x.SPR == Spr.SRR0) s.Srr0 = plan.SourceValue;
                    if (x.SPR == Spr.SRR1) s.Srr1 = plan.SourceValue;
                }
                if (plan.Op == Op.Mfmsr && !plan.GuestSe) s.Gpr[new FormX(plan.Instruction).RT] &= ~Msr.SE;
                return Completion.Completed;
            }

            case EndPointKind.InterruptHandler:
                // §3 point 7: the interrupt captured the host's SE in SRR1; give the guest its own.
                if (plan.ArmTrace) s.Srr1 = (s.Srr1 & ~Msr.SE) | (plan.GuestSe ? Msr.SE : 0);
                return Completion.Interrupted;

            case EndPointKind.ReturnTarget:
                return Completion.Returned;

            default:
                // A successor reached without a Trace (an atomic sequence's end included, which armed nothing): only an
                // armed SE needs undoing.
                if (plan.ArmTrace) s.Msr = (s.Msr & ~Msr.SE) | (GuestSeAfter(plan) ? Msr.SE : 0);
                return Completion.Completed;
        }
    }

    /// <summary>The guest's own SE after the instruction: what mtmsr(d) L=0 wrote, else unchanged.</summary>
    public static bool GuestSeAfter(StepPlan plan)
    {
        if ((plan.Effects & InstructionEffects.WritesMsr) == 0) return plan.GuestSe;
        var x = new FormX(plan.Instruction);
        return x.L15 ? plan.GuestSe : (plan.SourceValue & Msr.SE) != 0;
    }
}
