using ActorStep.Api.V1;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb takes every breakpoint out at each stop and puts it back at the next resume. The bridge keeps a breakpoint gdb
/// only took out for the moment, and makes the removals gdb meant before the next resume and at detach: what gdb sees
/// must not change.
/// </summary>
[Collection("gdb")]
public sealed class GdbBreakpointTests(GdbFixture fx)
{
    private const string Source = """
            .org 0x5000
            .globl _start
        _start:
            li 5, 0
        loop:
            addi 5, 5, 1
            cmpwi 5, 3
            blt loop
        after:
            nop
        spin:
            b spin
        """;

    private async Task<(string Output, Vm Vm)> GdbAsync(params string[] commands)
    {
        string elf = GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 1, MemorySize = 16 << 20, VmId = $"bp-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, elf, littleEndian: true, ["set scheduler-locking step", .. commands]);
        return (output, vm);
    }

    [Fact]
    public async Task A_deleted_breakpoint_no_longer_stops_the_next_continue()
    {
        // Stop at loop (r5 = 0), delete it, stop at after: the loop ran its three rounds through the deleted one.
        var (output, vm) = await GdbAsync("break loop", "continue", "p $r5", "delete 1", "break after", "continue", "p $r5", "p/x $pc", "detach");
        Assert.Contains("Breakpoint 1, ", output);
        Assert.Contains("Breakpoint 2, ", output);
        Assert.Contains("$1 = 0", output);
        Assert.Contains("$2 = 3", output);
        Assert.Contains("$3 = 0x5010", output);
        Assert.Equal(0u, fx.GetVm(vm.VmId).BreakpointCount);
    }

    [Fact]
    public async Task Stepping_with_breakpoints_set_reads_the_guests_words_and_detach_leaves_none()
    {
        var (output, vm) = await GdbAsync("break loop", "break after", "stepi", "stepi", "stepi", "x/4xw 0x5004", "p $r5", "detach");
        Assert.Contains("0x5004 <loop>:\t0x38a50001\t0x2c050003\t0x4180fff8\t0x60000000", output); // addi, cmpwi, blt, nop
        Assert.Contains("$1 = 1", output);
        Assert.Equal(0u, fx.GetVm(vm.VmId).BreakpointCount);
    }
}
