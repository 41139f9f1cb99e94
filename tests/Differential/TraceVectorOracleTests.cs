using System.Buffers.Binary;
using ActorStep.Actors.Engine;
using ActorStep.Hypervisor;
using ActorStep.Isa;
using ActorStep.Machine;
using ActorStep.Tests.Engine;
using Akka.TestKit.Xunit2;
using Xunit.Abstractions;
using LogEntry = ActorStep.Tests.Differential.PrivilegedDifferentialTests.LogEntry;

namespace ActorStep.Tests.Differential;

/// <summary>
/// An oracle for the step engine's Trace facts that shares no code with it. The planner (<see cref="TraceStep.Plan"/>)
/// and the simulated CPU call the same decode, <see cref="MsrRules"/> and <see cref="InterruptVectors"/> functions, so a
/// wrong rule there cancels out in every in-process test. Here <c>guests/trace-vectors-be.s</c> single-steps itself
/// (MSR[SE]) on QEMU's <c>-M powernv9</c> TCG, which implements the Trace interrupt itself, through LPCR[AIL]=0, 2 and 3,
/// mtmsrd that changes IR/DR, rfid into real and relocated code and a self-traced mfmsr; each Trace interrupt logs the
/// vector it reached, SRR0, SRR1 and the handler's MSR. Three things are compared with QEMU's log, fact by fact:
/// the machine's log of the same image; a table of the vectors and SRR1 bits the ISA gives, written by hand here; and,
/// for every instruction the machine executes with SE=1, the Trace end point TraceStep.Plan plans for it. A second test
/// host-steps the image through the engine and requires QEMU's log again. QEMU's known departures are mapped in
/// <see cref="PowerNvDepartures"/> (version-dependent: measured on 7.2 and 10.0; 8.2 fixed two and brought one).
/// </summary>
public sealed class TraceVectorOracleTests(ITestOutputHelper output) : TestKit
{
    private const string Source = "trace-vectors-be.s";
    private const ulong High = 0xC000000000000000;
    private const ulong Ail0 = 0xD00, Ail2 = 0x18D00, Ail3 = 0xC000000000004D00;
    private const ulong SE = Msr.SE, IR = Msr.IR, DR = Msr.DR;
    private static readonly (ulong Ra, int Length) LogArea = (0x19000, 0x2000);

    /// <summary>
    /// Written by hand from Book III §6.5 (interrupt vectors, AIL applies only with IR=DR=1 at the interrupt), §6.5.15
    /// (Trace: SRR0 = the next instruction, SRR1 = the MSR, taken after mtmsrd with the MSR it installs when SE was 1
    /// before it) — not from InterruptVectors: the instruction at each label is traced; its Trace interrupt reaches
    /// this vector with these of SE/IR/DR in SRR1. Labels of section 3 run at their 0xC000… alias.
    /// </summary>
    private static readonly (string Label, bool High, ulong Vector, ulong Srr1Bits)[] Traced =
    [
        ("s1_traced", false, Ail0, SE),
        ("s1_mfmsr", false, Ail0, SE),
        ("s1_se_off", false, Ail0, 0),                  // mtmsrd clearing SE: traced (SE was 1 before it)
        ("s2_traced", false, Ail2, SE | IR | DR),
        ("s2_mfmsr", false, Ail2, SE | IR | DR),
        ("s2_to_real", false, Ail0, SE),                // mtmsrd IR=DR=0: the Trace is taken in real mode
        ("s2_to_ir", false, Ail0, SE | IR),             // IR without DR: AIL does not apply
        ("s2_to_reloc", false, Ail2, SE | IR | DR),
        ("s2_se_off1", false, Ail2, IR | DR),
        ("s2_target_real", false, Ail0, SE),            // the first instruction after an rfid into real mode
        ("s2_se_off2", false, Ail0, 0),
        ("s2_target_reloc", false, Ail2, SE | IR | DR), // … after an rfid into relocated code
        ("s2_se_off3", false, Ail2, IR | DR),
        ("s3_traced", true, Ail3, SE | IR | DR),
        ("s3_mfmsr", true, Ail3, SE | IR | DR),
        ("s3_to_ir", true, Ail0, SE | IR),
        ("s3_to_real", true, Ail0, SE),
        ("s3_to_dr", true, Ail0, SE | DR),
        ("s3_to_reloc", true, Ail3, SE | IR | DR),
        ("s3_se_off1", true, Ail3, IR | DR),
        ("s3_target", true, Ail3, SE | IR | DR),
        ("s3_se_off2", true, Ail3, IR | DR),
    ];

    /// <summary>mtmsrd that sets SE when it was 0: no Trace follows (the SE before the instruction decides).</summary>
    private static readonly (string Label, bool High)[] NotTraced =
        [("s1_se_on", false), ("s2_se_on1", false), ("s2_se_on2", false), ("s3_se_on", true)];

    /// <summary>
    /// rfid executed with SE=1 and its target: never traced (QEMU before 8.2 does: <see cref="PowerNvDepartures.TracesRfid"/>;
    /// from 8.2 QEMU loops on them: <see cref="PowerNvDepartures.StallsOnTracedRfid"/>), in the order the image runs them.
    /// </summary>
    private static readonly (string Rfid, string Target, bool High)[] TracedRfids =
        [("s2_rfid_real", "s2_target_real", false), ("s2_rfid_reloc", "s2_target_reloc", false), ("s3_rfid", "s3_target", true)];

    /// <summary>QEMU's log, departures mapped: one QEMU run per test process.</summary>
    private static readonly Lazy<(ElfImage Image, List<LogEntry> Log)> Qemu = new(RunOnQemu);

    [Fact]
    public void Trace_vectors_SRR0_and_SRR1_on_QEMU_powernv_match_the_machine_the_ISA_and_the_planner()
    {
        var (image, qemu) = Qemu.Value;
        output.WriteLine($"QEMU {PowerNvDepartures.QemuVersion.Value}, -M {PowerNvDepartures.Power9Machine}: {qemu.Count(e => e.Tag == 0xD00)} Trace interrupts");
        var (machine, planned) = RunOnMachine(image);

        // 1. The machine, fact by fact: vector, SRR0, SRR1 and the handler's MSR of every Trace interrupt, and the
        //    self-traced mfmsr results, in order.
        AssertSameLog(qemu, machine);

        // 2. The ISA, written by hand: QEMU's log (and so the machine's) has each traced instruction's Trace at the
        //    vector and with the SRR1 bits the ISA gives, and no Trace where there must be none.
        AssertIsaFacts(image, qemu);

        // 3. The planner: for each instruction the machine executed with SE=1, in order, TraceStep.Plan's Trace end
        //    point is the vector QEMU's Trace reached, and it plans no Trace exactly where QEMU took none.
        var traces = qemu.Where(e => e.Tag == 0xD00).ToList();
        var predicted = planned.Where(p => p.Vector is not null).ToList();
        Assert.True(predicted.Count == traces.Count,
            $"the planner predicts {predicted.Count} Trace interrupts, QEMU took {traces.Count}:\n" + Side(predicted, traces));
        for (int i = 0; i < traces.Count; i++)
            Assert.True(predicted[i].Vector == traces[i].A,
                $"Trace {i}: the planner puts the Trace after 0x{predicted[i].Nip:x} ({predicted[i].Text}) at 0x{predicted[i].Vector:x}, "
                + $"QEMU reached 0x{traces[i].A:x} (SRR0 0x{traces[i].B:x})\n" + Side(predicted, traces));
        Assert.Equal(TracedRfids.Length, planned.Count(p => p.Vector is null));
        Assert.All(planned.Where(p => p.Vector is null), p => Assert.StartsWith("rfid", p.Text));
    }

    [Fact]
    public void Host_stepping_the_image_on_the_HV_backend_leaves_the_log_QEMU_leaves()
    {
        var (image, qemu) = Qemu.Value;
        var outcome = HostStepLockstep.Run(Sys, image, Source, [HypervisorFlavour.Hv], allowInterrupts: true, LogArea);
        var engine = PrivilegedDifferentialTests.Parse(outcome.Final[HypervisorFlavour.Hv].Memory);
        output.WriteLine($"{outcome.Steps} host steps; completions {string.Join(", ", outcome.Completions.Select(c => $"{c.Key} {c.Value}"))}");
        AssertSameLog(qemu, engine);
        // The guest's own Traces, the rfids and the ordinary steps each ended the way their plans said.
        Assert.Equal(qemu.Count(e => e.Tag == 0xD00), outcome.Completions[TraceStep.Completion.GuestTrace]);
        Assert.True(outcome.Completions[TraceStep.Completion.Returned] >= TracedRfids.Length);
        Assert.True(outcome.Completions[TraceStep.Completion.Completed] > 100);
    }

    private static void AssertIsaFacts(ElfImage image, List<LogEntry> log)
    {
        ulong Ea(string label, bool high) => image.Symbol(label) | (high ? High : 0);
        var traces = log.Select((e, i) => (e, i)).Where(x => x.e.Tag == 0xD00).ToList();
        foreach (var (label, high, vector, bits) in Traced)
        {
            ulong next = Ea(label, high) + 4;
            var hits = traces.Where(t => t.e.B == next).ToList();
            Assert.True(hits.Count == 1, $"{label}: {hits.Count} Trace interrupts with SRR0 0x{next:x}, expected one");
            var (trace, at) = hits[0];
            Assert.True(trace.A == vector, $"{label}: the Trace reached 0x{trace.A:x}, the ISA gives 0x{vector:x}");
            Assert.True((trace.C & (SE | IR | DR)) == bits, $"{label}: SRR1 0x{trace.C:x}, the ISA gives SE/IR/DR = 0x{bits:x}");
            Assert.True((trace.C & 0x40000000) != 0, $"{label}: SRR1[33] is not set (Book III §6.5.15)");
            // The handler runs with SE, EE and PR off, and with IR=DR=1 exactly when AIL applied.
            var handler = log[at + 1];
            Assert.Equal(0xD01UL, handler.Tag);
            ulong expectedMsr = vector == Ail0 ? 0 : IR | DR;
            Assert.True((handler.A & (SE | Msr.EE | Msr.PR | IR | DR)) == expectedMsr, $"{label}: the handler's MSR is 0x{handler.A:x}");
        }
        foreach (var (label, high) in NotTraced)
            Assert.DoesNotContain(traces, t => t.e.B == Ea(label, high) + 4);
        foreach (var (_, target, high) in TracedRfids)
            Assert.DoesNotContain(traces, t => t.e.B == Ea(target, high));
        // The self-traced mfmsr sees the SE it runs with (and IR/DR in sections 2 and 3).
        Assert.Equal([SE, SE | IR | DR, SE | IR | DR], log.Where(e => e.Tag is 0x101 or 0x201 or 0x301).Select(e => e.B & (SE | IR | DR)));
        // Every other Trace of the log (the traced li, andc, ori …) follows the same rule by hand: the section's AIL
        // offset when SRR1 (the MSR at the interrupt) has IR and DR, else the real-mode vector.
        int ail = -1;
        foreach (var e in log)
        {
            if (e.Tag is 0x100 or 0x200 or 0x300) ail = (int)e.B;
            if (e.Tag != 0xD00) continue;
            ulong vector = (e.C & (IR | DR)) == (IR | DR) && ail is 2 or 3 ? (ail == 2 ? Ail2 : Ail3) : Ail0;
            Assert.True(e.A == vector, $"the Trace with SRR0 0x{e.B:x}, SRR1 0x{e.C:x} under AIL={ail} reached 0x{e.A:x}, not 0x{vector:x}");
        }
        Assert.Equal(0xE0FUL, log[^1].Tag);
    }

    /// <summary>Equal logs, or a failure that shows both in full with the differing entries marked.</summary>
    private static void AssertSameLog(List<LogEntry> qemu, List<LogEntry> machine)
    {
        Assert.DoesNotContain(machine, e => e.Tag == 0xBAD);
        if (qemu.SequenceEqual(machine)) return;
        var lines = new List<string> { "      QEMU powernv9 (departures mapped)                       | ActorStep" };
        for (int i = 0; i < Math.Max(qemu.Count, machine.Count); i++)
        {
            string q = i < qemu.Count ? qemu[i].ToString() : "", m = i < machine.Count ? machine[i].ToString() : "";
            lines.Add($"{(q == m ? "  " : "! ")}{i,3} {q,-56} | {m}");
        }
        Assert.Fail("the logs differ:\n" + string.Join("\n", lines));
    }

    private sealed record PlannedStep(ulong Nip, string Text, ulong? Vector);

    private static string Side(List<PlannedStep> predicted, List<LogEntry> traces) =>
        string.Join("\n", Enumerable.Range(0, Math.Max(predicted.Count, traces.Count)).Select(i =>
            $"{i,3} {(i < predicted.Count ? $"0x{predicted[i].Nip:x} {predicted[i].Text,-22} -> 0x{predicted[i].Vector:x}" : ""),-60} | "
            + (i < traces.Count ? $"QEMU 0x{traces[i].A:x} SRR0 0x{traces[i].B:x}" : "")));

    private static (ElfImage Image, List<LogEntry> Log) RunOnQemu()
    {
        // Fails loudly when QEMU is missing, as every differential test does (scripts/setup installs it).
        Assert.True(QemuTarget.Available("qemu-system-ppc64"), "qemu-system-ppc64 is not installed: run scripts/setup");
        var version = PowerNvDepartures.QemuVersion.Value;
        var (elf, bin) = PrivilegedDifferentialTests.Build(Source);
        var image = ElfImage.Load(elf);
        Assert.Equal(PowerNvDepartures.ResetAddress, image.Entry);
        var (from, to) = PowerNvDepartures.TraceSkipsVectorArea;
        foreach (var label in Traced.Select(t => t.Label).Concat(NotTraced.Select(t => t.Label)))
            Assert.True(image.Symbol(label) >= to || image.Symbol(label) + 4 < from, $"{label} lies where QEMU 7.2 does not trace");

        List<LogEntry> raw;
        using (var qemu = QemuTarget.StartPowerNv(bin, PowerNvDepartures.Power9Machine))
        {
            ulong end = image.Symbol("end");
            qemu.InsertBreakpoint(end);
            // From 8.2 QEMU loops on an rfid executed with SE=1 (PowerNvDepartures.StallsOnTracedRfid): stop at each, in the
            // order the image runs them, and complete it there.
            var stalls = PowerNvDepartures.StallsOnTracedRfid(version)
                ? TracedRfids.Select(r => image.Symbol(r.Rfid) | (r.High ? High : 0)).ToList() : [];
            foreach (ulong rfid in stalls) qemu.InsertBreakpoint(rfid);
            foreach (ulong expected in stalls.Append(end))
            {
                var (stop, interrupted) = qemu.ContinueOrInterrupt(TimeSpan.FromSeconds(30));
                ulong pc = qemu.ReadCore().Pc;
                Assert.False(interrupted, $"QEMU {version} did not reach 0x{expected:x} in 30 s: stopped at 0x{pc:x}"
                    + (TracedRfids.Any(r => (image.Symbol(r.Rfid) | (r.High ? High : 0)) == pc) ? " (an rfid run with SE=1: PowerNvDepartures.StallsOnTracedRfid)" : ""));
                Assert.StartsWith("T05", stop);
                Assert.True(pc == expected, $"QEMU stopped at 0x{pc:x}, expected 0x{expected:x}");
                if (pc == end) break;
                qemu.RemoveBreakpoint(pc);
                PowerNvDepartures.CompleteStalledRfid(qemu, pc, version);
            }
            raw = PrivilegedDifferentialTests.Parse(qemu.ReadMemory(LogArea.Ra, LogArea.Length));
        }
        Assert.DoesNotContain(raw, e => e.Tag == 0xBAD);
        return (image, Normalize(raw, image, version));
    }

    /// <summary>
    /// QEMU's log as the machine's platform would write it: HV cleared from the MSR images (the image is the
    /// hypervisor on powernv: <see cref="PowerNvDepartures.HypervisorStateMsrImage"/>), the Trace SRR1 and the rfid
    /// Traces mapped by QEMU version (<see cref="PowerNvDepartures.TraceSrr1"/>, <see cref="PowerNvDepartures.TracesRfid"/>).
    /// </summary>
    private static List<LogEntry> Normalize(List<LogEntry> raw, ElfImage image, Version version)
    {
        static ulong Hv(ulong v) => PowerNvDepartures.HypervisorStateMsrImage(v);
        var log = raw.Select(e => e.Tag switch
        {
            0xD00 => e with { C = PowerNvDepartures.TraceSrr1(Hv(e.C), version) },
            0xD01 => e with { A = Hv(e.A) },
            0x101 or 0x201 or 0x301 => e with { B = Hv(e.B) },
            _ => e,
        }).ToList();
        if (PowerNvDepartures.TracesRfid(version))
        {
            foreach (var (rfid, target, high) in TracedRfids)
            {
                ulong ea = image.Symbol(target) | (high ? High : 0);
                int at = log.FindIndex(e => e.Tag == 0xD00 && e.B == ea);
                Assert.True(at >= 0, $"QEMU {version} took no Trace after {rfid}: PowerNvDepartures.TracesRfid is wrong for it");
                Assert.Equal(0xD01UL, log[at + 1].Tag);
                log.RemoveRange(at, 2);
            }
        }
        return log;
    }

    /// <summary>
    /// Runs the image on the machine (no debugger) until <c>end</c>, one instruction at a time; for each instruction
    /// executed with MSR[SE]=1, records where TraceStep.Plan, given the state before it, puts the Trace (null: no Trace).
    /// </summary>
    private static (List<LogEntry> Log, List<PlannedStep> Planned) RunOnMachine(ElfImage image)
    {
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vcpu = vm.GetVcpu(0);
        TraceStep.Translate translate = (ulong ea, ulong msr, out ulong ra) => vcpu.TryTranslate(ea, msr, AccessKind.Fetch, out ra);
        uint Fetch(ulong ra, bool le)
        {
            var b = new byte[4];
            vm.ReadMemory(ra, b);
            return le ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
        }
        var planned = new List<PlannedStep>();
        ulong end = image.Symbol("end");
        for (int n = 0; ; n++)
        {
            var s = vcpu.GetRegisters();
            if (s.Nip == end) break;
            Assert.True(n < 100_000, "the image did not reach end on the machine");
            if ((s.Msr & Msr.SE) != 0)
            {
                var plan = TraceStep.Plan(s, translate, Fetch, allowAsync: false);
                var trace = plan.ArmTrace ? plan.EndPoints.SingleOrDefault(e => e.Kind == EndPointKind.TraceHandler) : null;
                Assert.True(!plan.ArmTrace || trace is not null, $"0x{s.Nip:x}: a Trace is armed but no Trace end point planned");
                planned.Add(new PlannedStep(s.Nip, Disassembler.Format(plan.Instruction, s.Nip), trace?.EffectiveAddress));
            }
            var exit = vcpu.Run(1);
            Assert.True(exit.Reason == ExitReason.BudgetExpired, $"the machine exited with {exit} at 0x{s.Nip:x}");
        }
        var log = new byte[LogArea.Length];
        vm.ReadMemory(LogArea.Ra, log);
        return (PrivilegedDifferentialTests.Parse(log), planned);
    }
}
