using ActorStep.Api.V1;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb's <c>stepi</c> on a thread whose vcpu ceded (H_CEDE) while the other threads stay stopped (scheduler-locking step) and
/// the step holds interrupts: it comes back at once, SIGTRAP with the pc unchanged, and gdb prints why (QEMU's stub hangs
/// there). With interrupts allowed the decrementer wakes it and the step ends at its handler.
/// </summary>
[Collection("gdb")]
public sealed class GdbCededTests(GdbFixture fx)
{
    [Fact]
    public async Task Stepi_on_a_ceded_thread_comes_back_with_the_pc_unchanged_and_says_why()
    {
        string elf = GuestAssembler.BuildElf(CedingGuest.Source, littleEndian: true, textAddress: 0);
        ulong after = GuestAssembler.Build(CedingGuest.Source, textAddress: 0).Symbol("after");
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 2, MemorySize = 16 << 20, VmId = $"ceded-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);

        string output = await GdbProcess.RunAsync(bridge.Endpoint, elf, littleEndian: true,
            "set scheduler-locking step", "thread 2", $"stepi {CedingGuest.StepsToCede}", "p/x $pc",
            "stepi", "p/x $pc", "p $r6",
            "monitor interrupts allowed", "stepi", "p/x $pc", "detach");

        var printed = output.Replace("\r", "").Split('\n').Where(l => l.StartsWith('$')).ToList();
        Assert.True(printed.Count == 4, output);
        Assert.EndsWith($"= 0x{after:x}", printed[0]);   // ceded: the H_CEDE itself completed as a step
        Assert.EndsWith($"= 0x{after:x}", printed[1]);   // the next stepi came back where it was
        Assert.EndsWith("= 0", printed[2]);              // and executed nothing
        Assert.Contains($"thread 2: vcpu 1 is idle in H_CEDE at 0x{after:x}: an H_PROD from another vcpu, a decrementer or an external interrupt would wake it", output);
        Assert.DoesNotContain("received signal", output); // a plain SIGTRAP, as any stepi
        Assert.EndsWith($"= 0x{CedingGuest.DecrementerHandler:x}", printed[3]); // interrupts allowed: woken by the decrementer
        Assert.Equal(0u, fx.GetVm(vm.VmId).BreakpointCount);
    }
}
