using System.Diagnostics;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Machine.Interrupts;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Platform;

/// <summary>
/// <see cref="MachineOptions.IdleWaitsForWallClock"/> (what Linux VMs under serve get): a vcpu ceded in H_CEDE whose slice
/// skips guest time waits that long instead of returning at once, so the engine's slice after slice does not spin a core;
/// the host's RequestExit (a halt) ends the wait. The bounds below are an order of magnitude from the figures: they say
/// whether it waits, not how fast anything is.
/// </summary>
public class IdleWaitTests
{
    /// <summary>100 ms of guest time at the tree's 512 MHz.</summary>
    private const long Budget100Ms = 51_200_000;

    /// <summary>One vcpu that sets a far decrementer (~4 s) and cedes.</summary>
    private static IVcpu Ceded(bool wait)
    {
        var image = GuestAssembler.Build($"""
                .globl _start
            _start:
                lis 5, 0x7fff
                mtdec 5
            {Asm.Hcall(0xE0)}
                b _start
            """, littleEndian: true, textAddress: 0x10000);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20, IdleWaitsForWallClock: wait));
        var vcpu = vm.GetVcpu(0);
        Assert.Equal(ExitReason.Idle, vcpu.Run(1000).Reason); // through the H_CEDE: ceded now
        return vcpu;
    }

    [Fact]
    public void A_ceded_vcpus_slice_waits_out_the_guest_time_it_skips()
    {
        var vcpu = Ceded(wait: true);
        var clock = Stopwatch.StartNew();

        var exit = vcpu.Run(Budget100Ms);

        Assert.Equal(ExitReason.Idle, exit.Reason);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(80), $"returned after {clock.Elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public void Without_the_option_a_ceded_vcpus_slice_returns_at_once()
    {
        var vcpu = Ceded(wait: false);
        var clock = Stopwatch.StartNew();

        var exit = vcpu.Run(Budget100Ms * 30);

        Assert.Equal(ExitReason.Idle, exit.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"returned after {clock.Elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task RequestExit_ends_the_wait()
    {
        var vcpu = Ceded(wait: true);
        var clock = Stopwatch.StartNew();
        var run = Task.Run(() => vcpu.Run(Budget100Ms * 30)); // 3 s of guest time, before the decrementer (~4.2 s)
        await Task.Delay(100);

        vcpu.RequestExit();
        var exit = await run;

        Assert.Equal(ExitReason.Idle, exit.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5), $"returned after {clock.Elapsed.TotalMilliseconds:0} ms");
    }
}
