using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Smp;

/// <summary>
/// One clock per machine: each vcpu's timebase counts its own instructions and the vcpus' threads drift apart by up to the
/// run's skew, but what the guest reads (mftb, mfspr TB) never goes back from one vcpu's read to another's. Linux subtracts
/// one cpu's read from another's in its timekeeping; a negative difference is a huge positive one, and the Debian kernel's
/// catching-up loop (timekeeping_advance, second_overflow) spun in it for good on 4 vcpus, 1 boot in ~50.
/// </summary>
public class TimebaseTests
{
    private const string Program = """
            .globl _start
        _start:
            mftb 5
            mftb 6
            mfspr 7, 268
        done:
            b done
        """;

    [Fact]
    public void A_vcpu_whose_timebase_is_behind_reads_no_earlier_time_than_another_vcpu_read()
    {
        var m = new TestMachine(Program, vcpus: 2);
        var ahead = m.Vm.GetVcpu(1);
        var s = ahead.GetRegisters();
        s.Tb = 1_000_000;
        ahead.SetRegisters(s);
        ahead.Run(3);
        ulong read = ahead.GetRegisters().Gpr[5];
        Assert.Equal(1_000_000UL, read);

        m.Run(4); // vcpu 0, its own count near 0
        var behind = m.State;
        Assert.True(behind.Tb < read, "vcpu 0's own timebase is behind");
        Assert.True(behind.Gpr[5] >= read && behind.Gpr[6] >= behind.Gpr[5] && behind.Gpr[7] >= behind.Gpr[6],
            $"reads {behind.Gpr[5]}, {behind.Gpr[6]}, {behind.Gpr[7]} after vcpu 1 read {read}");
    }

    [Fact]
    public void Each_vcpu_reads_its_own_count_while_it_is_the_latest()
    {
        var m = new TestMachine(Program, vcpus: 2);
        m.Run(4);
        var s = m.State;
        // Nothing read later: the reads are vcpu 0's own count before each of the three instructions.
        Assert.Equal([0UL, 1UL, 2UL], new[] { s.Gpr[5], s.Gpr[6], s.Gpr[7] });
    }
}
