using ActorStep.Backends.Qemu;
using ActorStep.Isa;
using ActorStep.Tests.Differential;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// Letting go of a QEMU VM while a resume with a step in it runs (issue #12: MSR[SE] was once left on the stepped vcpu). A vcpu's
/// owner that reads registers while the VM runs stops it (0x03) and waits for the stop; QEMU then selects for <c>g</c>/<c>P</c>
/// the vcpu it names in its stop reply (gdbstub/system.c <c>gdb_set_stop_cpu</c>: after 0x03 the last stop's vcpu, not the
/// stepped one). What the owner reads, and what the engine's abandon writes back, must still be its own vcpu's.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuLetGoMidStepTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void AbandoningAStepWhileTheVmRunsClearsTheSteppedVcpusOwnSeWhenQemuReportsTheStopOnAnother()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var qemu = QemuProcess.Start(guest.Arguments(threads: 2));
        Assert.True(qemu.WaitForGdbStub(Timeout), "QEMU opened no gdbstub");
        // Attached, not launched: letting go detaches and QEMU lives on, to be checked by a client of its own.
        var vm = QemuVm.Attach(qemu.GdbEndpoint, Timeout);
        var stepped = vm.GetVcpu(0);
        // The engine arms a step of vcpu 0: its write-back (SE) is the last before the resume. Vcpu 0 is left out of the resume
        // so that SE stays in QEMU for as long as the test takes (in the race it runs, its Trace not yet taken); QEMU 10 names
        // the last resumed vcpu (vcpu 1) in the stop reply of an interrupt, and selects it.
        var armed = stepped.GetRegisters();
        armed.Msr |= Msr.SE;
        stepped.SetRegisters(armed);

        var resume = Task.Run(() => vm.Resume([1]));
        var until = DateTime.UtcNow + Timeout;
        while (!vm.Stub.IsRunning && !resume.IsCompleted && DateTime.UtcNow < until) Thread.Sleep(1);
        Assert.True(vm.Stub.IsRunning, "the resume did not start");

        // What VcpuEngine.AbandonStep does on the vcpu's own thread while the VM runs (VcpuActor.PostStop): stop the VM, read
        // the registers, give SE back to the guest.
        vm.RequestStop();
        var read = stepped.GetRegisters();
        Assert.True((read.Msr & Msr.SE) != 0, $"vcpu 0's registers read during the resume are not its own: MSR 0x{read.Msr:x} has no SE");
        read.Msr &= ~Msr.SE;
        stepped.SetRegisters(read);
        QemuAsk.Wait(resume);
        vm.Dispose();

        // QEMU runs on: a vcpu left with SE takes a Trace interrupt into the guest's empty vectors; one without stays in its loop.
        Thread.Sleep(200);
        using var check = RspClient.ConnectUnix(qemu.GdbEndpoint[5..], Timeout, () => !qemu.HasExited);
        check.Request("qSupported:xmlRegisters=powerpc");
        Assert.Equal("OK", check.Request("Hg1"));
        var core = CoreRegisters.Parse(check.Request("g"), littleEndian: false);
        Assert.True((core.Msr & Msr.SE) == 0, $"vcpu 0: MSR 0x{core.Msr:x} still has SE");
        Assert.True(core.Pc is >= 0x10 and < 0x28, $"vcpu 0 left the guest's loop: NIP 0x{core.Pc:x}");
        check.Send("D");
    }
}
