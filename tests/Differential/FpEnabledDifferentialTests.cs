using ActorStep.Machine;
using ActorStep.Hypervisor;
using Xunit.Abstractions;

namespace ActorStep.Tests.Differential;

using LogEntry = PrivilegedDifferentialTests.LogEntry;

/// <summary>
/// FP enabled exceptions (Book I §4.4, Book III §6.5.9) on <c>qemu-system-ppc64 -M powernv9</c> and on the machine:
/// guests/fp-enabled-be.s logs the Program handler's SRR0, SRR1 and FPSCR, and after each case the target FPR, the FPSCR
/// and the CR; the logs must be equal once <see cref="FpEnabledDepartures"/> maps QEMU's.
/// </summary>
public sealed class FpEnabledDifferentialTests(ITestOutputHelper output)
{
    private const ulong Srr1FpEnabled = 0x100000, Srr1Subsequent = 0x10000, FeBoth = 0x900;

    [Fact]
    public void Fp_enabled_exceptions_trap_and_write_results_the_same_on_QEMU_powernv_and_on_the_machine()
    {
        var (elf, bin) = PrivilegedDifferentialTests.Build("fp-enabled-be.s");
        var image = ElfImage.Load(elf);
        var qemu = RunOnQemu(bin, image);
        var machine = RunOnMachine(image);
        for (int i = 0; i < Math.Max(qemu.Count, machine.Count); i++)
            output.WriteLine($"{(i < qemu.Count ? qemu[i].ToString() : ""),-56} | {(i < machine.Count ? machine[i].ToString() : "")}");
        Assert.DoesNotContain(machine, e => e.Tag == 0xBAD);
        Assert.DoesNotContain(qemu, e => e.Tag == 0xBAD);

        int qemuSplit = qemu.FindIndex(e => e.Tag == FpEnabledDepartures.MsrWriteSectionTag);
        int machineSplit = machine.FindIndex(e => e.Tag == FpEnabledDepartures.MsrWriteSectionTag) - 1; // its 0x700 first
        Assert.True(qemuSplit > 0 && machineSplit > 0, "the image did not reach its MSR-write section");
        Assert.Equal(
            qemu[..qemuSplit].Select(FpEnabledDepartures.SuppressedResultWritten).Select(FpEnabledDepartures.WithoutFr),
            machine[..machineSplit].Select(FpEnabledDepartures.WithoutFr));

        // Every precise case trapped at its instruction with SRR1[43] and the FE bits it ran with, on both.
        string[] precise = ["fp_zdiv", "fp_vimz", "fp_vsqrt", "fp_ox", "fp_xx", "fp_mtfsb1", "fp_mtfsfi", "fp_xsdiv"];
        Assert.Equal(precise.Select(image.Symbol), machine[..machineSplit].Where(e => e.Tag == 0x700).Select(e => e.A));
        Assert.All(machine[..machineSplit].Where(e => e.Tag == 0x700),
            e => Assert.Equal(Srr1FpEnabled | FeBoth, e.B & (0x783F0000 | FeBoth)));

        // The MSR writes (the ISA; QEMU's departure): mtmsrd and rfid that set FE0|FE1 while FEX = 1 trap before the next
        // instruction, SRR0 = it, SRR1[43] and [47]; the handler's FPSCR shows ZX, ZE, FEX.
        var tail = machine[machineSplit..];
        Assert.Equal([0x700UL, 0x29, 0x700, 0x2A], tail.Select(e => e.Tag));
        Assert.Equal([image.Symbol("fp_mtmsrd") + 4, image.Symbol("rfid_target")], tail.Where(e => e.Tag == 0x700).Select(e => e.A));
        Assert.All(tail.Where(e => e.Tag == 0x700), e =>
        {
            Assert.Equal(Srr1FpEnabled | Srr1Subsequent | FeBoth, e.B & (0x783F0000 | FeBoth));
            Assert.Equal(0xC4000010UL, e.C);
        });
        Assert.Equal([0x29UL, 0x2A], qemu[qemuSplit..].Select(e => e.Tag));
    }

    private static List<LogEntry> RunOnQemu(string bin, ElfImage image)
    {
        using var qemu = QemuTarget.StartPowerNv(bin, PowerNvDepartures.Power9Machine);
        qemu.InsertBreakpoint(image.Symbol("end"));
        string stop = qemu.Continue(TimeSpan.FromSeconds(30));
        Assert.StartsWith("T05", stop);
        return PrivilegedDifferentialTests.Parse(qemu.ReadMemory(image.Symbol("log"), 0x1000))
            .Select(e => e.Tag == 0x700 ? e with { B = PowerNvDepartures.HypervisorStateMsrImage(e.B) } : e).ToList();
    }

    private static List<LogEntry> RunOnMachine(ElfImage image)
    {
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 16UL << 20));
        var vcpu = vm.GetVcpu(0);
        ulong end = image.Symbol("end");
        for (int n = 0; vcpu.GetRegisters().Nip != end; n++)
        {
            Assert.True(n < 100_000, "the image did not reach end on the machine");
            var exit = vcpu.Run(1);
            Assert.True(exit.Reason == ExitReason.BudgetExpired, $"machine exited with {exit}");
        }
        var log = new byte[0x1000];
        vm.ReadMemory(image.Symbol("log"), log);
        return PrivilegedDifferentialTests.Parse(log);
    }
}
