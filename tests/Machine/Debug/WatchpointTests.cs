using ActorStep.Hypervisor;
using ActorStep.Tests.Machine.Instructions;
using ActorStep.Tests.Support;
using IsaMsr = ActorStep.Isa.Msr;

namespace ActorStep.Tests.Machine.Debug;

/// <summary>
/// Data watchpoints on the simulated machine, DAWR-style: an access of any size whose bytes overlap a watched range stops the
/// vcpu before the instruction completes (NIP at it, nothing of it done, nothing retired); running it again performs the
/// access, exactly as without a watchpoint. Each instruction class, both byte orders, every vcpu.
/// </summary>
public class WatchpointTests
{
    private const ulong Base = InstructionBench.Data + 0x100;

    /// <summary>An instruction, the bytes it accesses (offset from <see cref="Base"/>, length) and whether it stores.</summary>
    private sealed record Access(string Insn, ulong Offset, ulong Length, bool Store, bool BigEndianOnly = false, ulong Msr = 0)
    {
        public override string ToString() => Insn;
    }

    // GNU as refuses lmw/stmw in little-endian (which raises alignment there): written as words (RT/RS=29, RA=4, D=8).
    private static readonly Access[] Accesses =
    [
        new("stb 6,8(4)", 8, 1, true), new("sth 6,8(4)", 8, 2, true), new("stw 6,8(4)", 8, 4, true), new("std 6,8(4)", 8, 8, true),
        new("stdu 6,8(4)", 8, 8, true), new("stwx 6,4,5", 8, 4, true), new("stwbrx 6,4,5", 8, 4, true),
        new("lbz 3,8(4)", 8, 1, false), new("lhz 3,8(4)", 8, 2, false), new("lwz 3,8(4)", 8, 4, false), new("ld 3,8(4)", 8, 8, false),
        new("ldu 3,8(4)", 8, 8, false), new("lwbrx 3,4,5", 8, 4, false),
        new("lwarx 3,4,5", 8, 4, false), new("ldarx 3,4,5", 8, 8, false), new("stwcx. 6,4,5", 8, 4, true), new("stdcx. 6,4,5", 8, 8, true),
        new("dcbz 4,5", 0, 128, true),
        new(".long 0xBBA40008 # lmw 29,8(4)", 8, 12, false, BigEndianOnly: true),
        new(".long 0xBFA40008 # stmw 29,8(4)", 8, 12, true, BigEndianOnly: true),
        // The string instructions too (big-endian only, like lmw/stmw): lswi/stswi at RA, lswx/stswx at RA+RB for XER's count.
        new(".long 0x7E846CAA # lswi 20,4,13", 0, 13, false, BigEndianOnly: true),
        new(".long 0x7E846DAA # stswi 20,4,13", 0, 13, true, BigEndianOnly: true),
        new(".long 0x7E842C2A # lswx 20,4,5", 8, 10, false, BigEndianOnly: true),
        new(".long 0x7E842D2A # stswx 20,4,5", 8, 10, true, BigEndianOnly: true),
        new("lfd 1,8(4)", 8, 8, false, Msr: IsaMsr.FP), new("stfd 1,8(4)", 8, 8, true, Msr: IsaMsr.FP),
        new("lvx 0,4,5", 0, 16, false, Msr: IsaMsr.VEC), new("stvx 0,4,5", 0, 16, true, Msr: IsaMsr.VEC),
        new("lxvd2x 0,4,5", 8, 16, false, Msr: IsaMsr.VSX), new("stxvd2x 0,4,5", 8, 16, true, Msr: IsaMsr.VSX),
        new("stxv 0,16(4)", 16, 16, true, Msr: IsaMsr.VSX),
    ];

    private static readonly InstructionBench Bench = new(Accesses.Select(a => a.Insn));

    public static IEnumerable<object[]> Cases() =>
        from a in Accesses from le in new[] { true, false } where !(le && a.BigEndianOnly) select new object[] { a.Insn, le };

    private static Access Find(string insn) => Accesses.Single(a => a.Insn == insn);

    private static void Setup(VcpuState s, Access a)
    {
        s.Gpr[4] = Base;
        s.Gpr[5] = 8;
        s.Gpr[6] = 0x1122334455667788;
        for (int r = 20; r < 32; r++) s.Gpr[r] = 0xA0A0A0A0_00000000UL | (uint)r * 0x01010101;
        s.Xer = 10; // lswx/stswx: 10 bytes
        s.Fpr[1] = 0x400921FB54442D18;
        s.Vr[0] = 0x0102030405060708; s.Vr[1] = 0x1112131415161718;
        s.VsrLow[0] = 0x2122232425262728;
        s.Msr |= a.Msr;
    }

    private static TestMachine Start(Access a, bool le, int vcpus = 1)
    {
        var m = Bench.Start(a.Insn, s => Setup(s, a), le, vcpus);
        // Memory that is not zero, so that a store or a dcbz shows.
        m.Vm.WriteMemory(Base - 16, Enumerable.Range(0, 176).Select(i => (byte)(0x80 | i)).ToArray());
        return m;
    }

    private static byte[] Around(TestMachine m) => InstructionBench.ReadBytes(m, Base - 16, 176);

    [Theory]
    [MemberData(nameof(Cases))]
    public void An_access_overlapping_a_watched_byte_stops_before_the_instruction_and_completes_when_run_again(string insn, bool le)
    {
        var a = Find(insn);
        var m = Start(a, le);
        var before = m.State;
        var memoryBefore = Around(m);
        // Only the last byte of the access is watched: any overlap is a hit.
        var watch = new Watchpoint(Base + a.Offset + a.Length - 1, 1, a.Store ? WatchKind.Write : WatchKind.Read);
        m.Vm.InsertWatchpoint(watch);

        var exit = m.Run(1);

        Assert.Equal(ExitReason.Watchpoint, exit.Reason);
        Assert.Equal(before.Nip, exit.Address);
        Assert.Equal(new WatchpointHit(watch, Base + a.Offset, (int)a.Length, a.Store), exit.Watch);
        Assert.Empty(m.State.Differences(before));
        Assert.Equal(memoryBefore, Around(m));
        Assert.Equal(0, m.Vcpu.InstructionsRetired);

        m.Run(1); // the access the debugger steps over: as if no watchpoint had been set
        var plain = Start(a, le);
        plain.Run(1);
        Assert.Equal(1, m.Vcpu.InstructionsRetired);
        Assert.Empty(m.State.Differences(plain.State));
        Assert.Equal(Around(plain), Around(m));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void An_access_next_to_a_watched_range_or_of_the_other_kind_runs_on(string insn, bool le)
    {
        var a = Find(insn);
        var m = Start(a, le);
        ulong first = Base + a.Offset, end = first + a.Length;
        m.Vm.InsertWatchpoint(new Watchpoint(first - 8, 8, WatchKind.Access));
        m.Vm.InsertWatchpoint(new Watchpoint(end, 8, WatchKind.Access));
        m.Vm.InsertWatchpoint(new Watchpoint(first, a.Length, a.Store ? WatchKind.Read : WatchKind.Write));

        var exit = m.Run(1);

        Assert.NotEqual(ExitReason.Watchpoint, exit.Reason);
        Assert.Equal(1, m.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void An_access_watchpoint_stops_loads_and_stores_and_only_the_resumed_instruction_passes_once()
    {
        var a = Find("stw 6,8(4)");
        var m = Start(a, le: true);
        ulong at = m.State.Nip;
        m.Vm.InsertWatchpoint(new Watchpoint(Base, 64, WatchKind.Access));

        Assert.Equal(ExitReason.Watchpoint, m.Run(1).Reason);
        m.Run(1);
        Assert.Equal(at + 4, m.State.Nip);
        m.Update(s => s.Nip = at); // the same instruction again: it stops again
        Assert.Equal(ExitReason.Watchpoint, m.Run(1).Reason);

        var load = Start(Find("lwz 3,8(4)"), le: false);
        load.Vm.InsertWatchpoint(new Watchpoint(Base, 64, WatchKind.Access));
        Assert.Equal(ExitReason.Watchpoint, load.Run(1).Reason);
    }

    [Fact]
    public void A_watchpoint_stops_every_vcpu_and_removing_it_lets_them_run()
    {
        var a = Find("std 6,8(4)");
        var m = Start(a, le: true, vcpus: 2);
        var vcpu1 = m.Vm.GetVcpu(1);
        vcpu1.SetRegisters(m.State);
        var watch = new Watchpoint(Base + 12, 4, WatchKind.Write);
        m.Vm.InsertWatchpoint(watch);

        var exit = vcpu1.Run(1);
        Assert.Equal(ExitReason.Watchpoint, exit.Reason);
        Assert.Equal(Base + 12, exit.Watch!.WatchedAddress);

        Assert.True(m.Vm.RemoveWatchpoint(watch));
        Assert.False(m.Vm.RemoveWatchpoint(watch));
        Assert.Equal(ExitReason.BudgetExpired, m.Run(1).Reason);
        Assert.Equal(1, m.Vcpu.InstructionsRetired);
    }

    [Fact]
    public void A_watchpoint_set_twice_stays_until_removed_twice()
    {
        var m = Start(Find("stb 6,8(4)"), le: true);
        var watch = new Watchpoint(Base + 8, 1, WatchKind.Write);
        m.Vm.InsertWatchpoint(watch);
        m.Vm.InsertWatchpoint(watch);
        Assert.True(m.Vm.RemoveWatchpoint(watch));
        Assert.Equal(ExitReason.Watchpoint, m.Run(1).Reason);
    }

    [Fact]
    public void An_access_that_wraps_the_address_space_hits_a_watchpoint_on_its_wrapped_bytes()
    {
        var a = Find("std 6,8(4)");
        var m = Start(a, le: true);
        m.Update(s => s.Gpr[4] = 0xFFFFFFFFFFFFFFF4); // EA 0xFFFFFFFFFFFFFFFC: four bytes at the top, four from 0
        m.Vm.InsertWatchpoint(new Watchpoint(0x2, 1, WatchKind.Write));
        m.Vm.InsertWatchpoint(new Watchpoint(0x40000, 8, WatchKind.Write));

        var exit = m.Run(1);

        Assert.Equal(ExitReason.Watchpoint, exit.Reason);
        Assert.Equal(0x2UL, exit.Watch!.Watchpoint.Address);
    }

    [Theory]
    [InlineData(0x100UL, 8UL, 0x0F8UL, 8UL, false)]  // the access ends just before
    [InlineData(0x100UL, 8UL, 0x0F9UL, 8UL, true)]   // its last byte is the first watched
    [InlineData(0x100UL, 8UL, 0x107UL, 1UL, true)]   // the last watched byte
    [InlineData(0x100UL, 8UL, 0x108UL, 4UL, false)]  // just after
    [InlineData(0x100UL, 1UL, 0x080UL, 128UL, false)] // a 128-byte block ending at it
    [InlineData(0x100UL, 1UL, 0x081UL, 128UL, true)]
    [InlineData(0xFFFFFFFFFFFFFFF8UL, 8UL, 0xFFFFFFFFFFFFFFFFUL, 1UL, true)] // at the top of the address space
    [InlineData(0x0UL, 8UL, 0xFFFFFFFFFFFFFFFFUL, 1UL, false)]
    public void Overlap_is_any_shared_byte(ulong address, ulong length, ulong ea, ulong size, bool hits)
    {
        Assert.Equal(hits, new Watchpoint(address, length, WatchKind.Access).Matches(ea, size, store: true));
        Assert.Equal(hits, new Watchpoint(address, length, WatchKind.Read).Matches(ea, size, store: false));
        Assert.False(new Watchpoint(address, length, WatchKind.Read).Matches(ea, size, store: true));
        Assert.False(new Watchpoint(address, length, WatchKind.Write).Matches(ea, size, store: false));
    }

    [Theory]
    [InlineData(0x1000UL, 0UL, WatchKind.Write)]
    [InlineData(0xFFFFFFFFFFFFFFF0UL, 0x20UL, WatchKind.Write)]
    [InlineData(0x1000UL, 4UL, (WatchKind)0)]
    [InlineData(0x1000UL, (1UL << 32) + 1, WatchKind.Read)]
    public void A_watchpoint_that_covers_nothing_or_wraps_is_refused(ulong address, ulong length, WatchKind kind)
    {
        var m = Start(Find("stb 6,8(4)"), le: true);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Vm.InsertWatchpoint(new Watchpoint(address, length, kind)));
    }
}
