using ActorStep.Hypervisor;
using ActorStep.Machine.Cpu;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// lwarx/ldarx and stwcx./stdcx. (Power ISA v3.0 Book II §4.6.2): a store-conditional stores and sets
/// CR0 = 0b001 || SO only while this vcpu's reservation holds; another vcpu's store to the reserved
/// location ends it; an unaligned EA takes an alignment interrupt (0x600, SRR0 = the instruction, DAR = EA).
/// </summary>
public class ReservationTests
{
    private const ulong Word = InstructionBench.Data;
    private const string WordPair = "lwarx 3,0,4\n    stwcx. 6,0,4\n    stwcx. 7,0,4";
    private const string DoublewordPair = "ldarx 3,0,4\n    stdcx. 6,0,4\n    stdcx. 7,0,4";
    private const string OtherStoresWord = "stwx 8,0,5";
    private const ulong NewValue = 0xAAAAAAAA12345678;
    private const ulong OtherValue = 0x5555555566666666;

    private static readonly byte[] Pattern = [0x81, 0x92, 0xA3, 0xB4, 0xC5, 0xD6, 0xE7, 0xF8];

    /// <summary>Each instruction runs in its own Run(1): these machines keep the reservation across a return to the host,
    /// a debug exit included (which a real host does not: see <see cref="A_return_to_the_host_loses_the_reservation"/>).</summary>
    private static readonly InstructionBench Bench = new(
        [WordPair, DoublewordPair, OtherStoresWord, "stwcx. 6,0,4", "stdcx. 6,0,4", "lwarx 3,0,4", "ldarx 3,0,4"], hostTripKeepsReservation: true);

    private static readonly InstructionBench RealHost = new([WordPair, DoublewordPair]);

    private static ulong Value(ReadOnlySpan<byte> b, int size, bool le)
    {
        ulong v = 0;
        for (int i = 0; i < size; i++) v = (v << 8) | b[le ? size - 1 - i : i];
        return v;
    }

    private static TestMachine Start(string insn, bool le, int vcpus = 1, bool so = false, InstructionBench? bench = null)
    {
        var m = (bench ?? Bench).Start(insn, s => { s.Gpr[3] = 0x33; s.Gpr[4] = Word; s.Gpr[6] = NewValue; s.Gpr[7] = 0x77; s.Xer = so ? Arch.SO : 0; s.Cr = 0; }, le, vcpus);
        m.Vm.WriteMemory(Word, Pattern);
        return m;
    }

    private static void PointVcpu1AtOtherStore(TestMachine m, ulong ea)
    {
        var v1 = m.Vm.GetVcpu(1);
        var s = v1.GetRegisters();
        s.Nip = m.Sym(Bench.Label(OtherStoresWord));
        s.Gpr[5] = ea;
        s.Gpr[8] = OtherValue;
        v1.SetRegisters(s);
    }

    [Theory]
    [InlineData(4, true)] [InlineData(4, false)]
    [InlineData(8, true)] [InlineData(8, false)]
    public void Load_reserve_then_store_conditional_stores_and_sets_CR0_EQ(int size, bool le)
    {
        var m = Start(size == 4 ? WordPair : DoublewordPair, le);
        m.Run(1);
        Assert.Equal(Value(Pattern, size, le), m.State.Gpr[3]);

        m.Run(1);
        Assert.Equal(Arch.EQ, m.State.Cr >> 28);
        var b = InstructionBench.ReadBytes(m, Word, 8);
        Assert.Equal(size == 4 ? NewValue & 0xFFFFFFFF : NewValue, Value(b, size, le));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void A_return_to_the_host_loses_the_reservation(int size)
    {
        var m = Start(size == 4 ? WordPair : DoublewordPair, le: true, bench: RealHost);
        ulong stcx = m.State.Nip + 4;
        var original = InstructionBench.ReadBytes(m, stcx, 4);
        m.Vcpu.SetGuestDebug(GuestDebug.SoftwareBreakpoints);
        m.Vm.WriteMemory(stcx, BitConverter.GetBytes(SimulatedVcpu.DebugInstruction));
        Assert.Equal(ExitReason.Debug, m.Run(10).Reason); // the load-reserve, then a debug exit: back to the host
        Assert.False(m.State.ReservationHeld);
        m.Vm.WriteMemory(stcx, original);
        m.Run(1); // the store-conditional

        Assert.Equal(0u, m.State.Cr >> 28);
        Assert.Equal(Pattern, InstructionBench.ReadBytes(m, Word, 8));
    }

    [Fact]
    public void The_registers_report_a_reservation_from_the_load_reserve_to_the_store_conditional_that_consumes_it()
    {
        var m = Start(WordPair, le: true, bench: RealHost);
        Assert.False(m.State.ReservationHeld);

        m.Run(1); // the load-reserve; the budget running out is the simulator slicing its time, no trip to the host
        Assert.True(m.State.ReservationHeld);

        m.Run(1); // the store-conditional
        Assert.False(m.State.ReservationHeld);
    }

    [Fact]
    public void Writing_the_registers_neither_makes_nor_drops_a_reservation()
    {
        var m = Start(WordPair, le: true, bench: RealHost);
        var s = m.State;
        s.ReservationHeld = true;
        m.Vcpu.SetRegisters(s);
        Assert.False(m.State.ReservationHeld);

        m.Run(1); // the load-reserve
        s = m.State;
        s.ReservationHeld = false;
        m.Vcpu.SetRegisters(s);
        m.Run(1); // the store-conditional

        Assert.Equal(Arch.EQ, m.State.Cr >> 28);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void A_pair_run_in_one_entry_into_the_guest_succeeds_on_a_real_host(int size)
    {
        var m = Start(size == 4 ? WordPair : DoublewordPair, le: true, bench: RealHost);
        m.Run(2);

        Assert.Equal(Arch.EQ, m.State.Cr >> 28);
        Assert.Equal(size == 4 ? NewValue & 0xFFFFFFFF : NewValue, Value(InstructionBench.ReadBytes(m, Word, 8), size, true));
    }

    [Theory]
    [InlineData("stwcx. 6,0,4", false)] [InlineData("stwcx. 6,0,4", true)]
    [InlineData("stdcx. 6,0,4", false)] [InlineData("stdcx. 6,0,4", true)]
    public void Store_conditional_fails_without_a_reservation(string insn, bool so)
    {
        var m = Start(insn, le: true, so: so);
        m.Run(1);
        Assert.Equal(so ? Arch.SOf : 0u, m.State.Cr >> 28);
        Assert.Equal(Pattern, InstructionBench.ReadBytes(m, Word, 8));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void A_store_conditional_consumes_the_reservation(int size)
    {
        var m = Start(size == 4 ? WordPair : DoublewordPair, le: true);
        m.Run(3);
        Assert.Equal(0u, m.State.Cr >> 28);
        Assert.Equal(size == 4 ? NewValue & 0xFFFFFFFF : NewValue, Value(InstructionBench.ReadBytes(m, Word, 8), size, true));
    }

    [Theory]
    [InlineData(4, 0UL, true)] [InlineData(4, 0UL, false)]
    [InlineData(8, 4UL, true)] [InlineData(8, 4UL, false)]
    public void Store_conditional_fails_after_another_vcpu_stores_to_the_reserved_location(int size, ulong offset, bool le)
    {
        var m = Start(size == 4 ? WordPair : DoublewordPair, le, vcpus: 2);
        PointVcpu1AtOtherStore(m, Word + offset);

        m.Run(1);                         // vcpu 0: load reserve
        m.Vm.GetVcpu(1).Run(1);           // vcpu 1: stwx into the reserved bytes
        m.Run(1);                         // vcpu 0: store conditional

        Assert.Equal(0u, m.State.Cr >> 28);
        Assert.Equal(OtherValue & 0xFFFFFFFF, Value(InstructionBench.ReadBytes(m, Word + offset, 4), 4, le));
    }

    [Fact]
    public void Store_conditional_succeeds_when_another_vcpu_stores_outside_the_reservation_granule()
    {
        var m = Start(WordPair, le: true, vcpus: 2);
        PointVcpu1AtOtherStore(m, Word + 0x80);

        m.Run(1);
        m.Vm.GetVcpu(1).Run(1);
        m.Run(1);

        Assert.Equal(Arch.EQ, m.State.Cr >> 28);
        Assert.Equal(NewValue & 0xFFFFFFFF, Value(InstructionBench.ReadBytes(m, Word, 4), 4, true));
    }

    [Theory]
    [InlineData("lwarx 3,0,4", 2UL)]
    [InlineData("stwcx. 6,0,4", 2UL)]
    [InlineData("ldarx 3,0,4", 4UL)]
    [InlineData("stdcx. 6,0,4", 4UL)]
    public void Unaligned_load_reserve_and_store_conditional_take_an_alignment_interrupt(string insn, ulong offset)
    {
        var m = Start(insn, le: true);
        InstructionBench.PlantBranchToSelf(m, 0x600, littleEndian: true);
        m.SetGpr(4, Word + offset);
        ulong at = m.State.Nip;

        m.Run(1);

        var s = m.State;
        Assert.Equal(0x600UL, s.Nip);
        Assert.Equal(at, s.Srr0);
        Assert.Equal(Word + offset, s.Dar);
        Assert.Equal(0x33UL, s.Gpr[3]);
        Assert.Equal(0u, s.Cr);
        Assert.Equal(Pattern, InstructionBench.ReadBytes(m, Word, 8));
    }
}
