using ActorStep.Api.V1;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// Stepping into asynchronous interrupt handlers from gdb: by default a step holds the decrementer (it stays pending), and
/// QEMU's step flags (<c>maintenance packet Qqemu.sstep=0x5</c>) or <c>monitor interrupts allowed</c> let a step end at
/// the first instruction of its handler. Also <c>monitor vm</c>.
/// </summary>
[Collection("gdb")]
public sealed class GdbStepFlagsTests(GdbFixture fx)
{
    /// <summary>Enables EE with a decrementer about to expire, then loops; the handler marks r20 and re-arms DEC far away.</summary>
    private const string Source = """
            .org 0x900
        decrementer:
            li 20, 1
            lis 21, 0x7fff
            mtdec 21
            rfid
            .org 0x5000
            .globl _start
        _start:
            li 5, 16
            mtdec 5
            mfmsr 6
            ori 6, 6, 0x8000
            mtmsrd 6, 1
        loop:
            addi 7, 7, 1
            b loop
        """;

    private async Task<string> GdbAsync(params string[] commands)
    {
        string elf = GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 1, MemorySize = 16 << 20, VmId = $"flags-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        return await GdbProcess.RunAsync(bridge.Endpoint, elf, littleEndian: true, ["set scheduler-locking step", .. commands]);
    }

    [Fact]
    public async Task Steps_hold_the_decrementer_until_qemu_step_flags_allow_it_then_a_step_ends_at_its_handler()
    {
        string output = await GdbAsync("stepi 40", "p/x $pc", "p $r20", "maintenance packet qqemu.sstep",
            "maintenance packet Qqemu.sstep=0x5", "stepi", "p/x $pc", "p $r20", "p/x $srr0");
        var printed = output.Split('\n').Where(l => l.StartsWith('$')).ToList();
        Assert.True(printed.Count == 5, output);
        Assert.Matches(@"= 0x50(1[4-9a-f]|20)$", printed[0]);                  // still in the loop: the decrementer was held
        Assert.EndsWith("= 0", printed[1]);                                    // and its handler never ran
        Assert.Contains("received: \"0x7\"", output);                          // the default flags
        Assert.EndsWith("= 0x900", printed[2]);                                // the step ended at the handler's first instruction
        Assert.EndsWith("= 0", printed[3]);                                    // which has not run yet
        Assert.Matches(@"= 0x50(1[4-9a-f]|20)$", printed[4]);                  // SRR0: where the loop was interrupted
    }

    [Fact]
    public async Task Monitor_interrupts_allowed_does_the_same_and_monitor_vm_describes_the_vm()
    {
        string output = await GdbAsync("stepi 40", "monitor interrupts allowed", "stepi", "p/x $pc", "monitor vm", "monitor help");
        Assert.Contains("steps allow asynchronous interrupts", output);
        Assert.Contains("= 0x900", output);
        Assert.Matches(@"VM flags-\w+: .*little-endian image, KVM-HV flavour", output);
        Assert.Contains("vcpu 0 (thread 1): stopped at 0x900", output);
        Assert.Contains("interrupts [held|allowed]", output);
        Assert.Contains("vm ", output);
    }
}
