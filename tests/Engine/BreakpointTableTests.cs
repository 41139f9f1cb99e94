using ActorStep.Actors.Engine;
using ActorStep.Machine;

namespace ActorStep.Tests.Engine;

/// <summary>The VM-wide breakpoint table on its own (step-engine.md §4): owners, the saved words, what debugger reads and writes see.</summary>
public class BreakpointTableTests
{
    private const ulong A = 0x1000, B = 0x2000;
    private const uint OriginalA = 0x38A50001, OriginalB = 0x7CA000A6;
    private static readonly BreakpointOwner User = BreakpointOwner.User.Instance;
    private static readonly BreakpointOwner StepOf0 = new BreakpointOwner.Step(0);

    private readonly SimulatedMachine _vm = new(new MachineOptions(1, 1UL << 20));
    private readonly BreakpointTable _table;

    public BreakpointTableTests()
    {
        _vm.Memory.WriteUInt32(A, OriginalA, littleEndian: false);
        _vm.Memory.WriteUInt32(B, OriginalB, littleEndian: false);
        _table = new BreakpointTable(_vm);
    }

    private uint InMemory(ulong ra) => _vm.Memory.ReadUInt32(ra, littleEndian: false);

    private uint AsRead(ulong ra)
    {
        var b = new byte[4];
        _table.Read(ra, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private uint DebugWord => _vm.Capabilities.DebugInstruction;

    [Fact]
    public void Owners_of_one_address_share_one_breakpoint_and_the_last_removal_restores_the_word()
    {
        Assert.True(_table.Insert(A, User, A));
        Assert.True(_table.Insert(A, StepOf0, A));
        Assert.Equal(1, _table.Count);
        Assert.Equal(DebugWord, InMemory(A));

        Assert.True(_table.Remove(A, User));
        Assert.Equal(DebugWord, InMemory(A));
        Assert.Equal(new[] { StepOf0 }, _table.OwnersAt(A));

        Assert.True(_table.Remove(A, StepOf0));
        Assert.Equal(0, _table.Count);
        Assert.Equal(OriginalA, InMemory(A));
    }

    [Fact]
    public void An_owner_inserting_or_removing_twice_changes_nothing_the_second_time()
    {
        Assert.True(_table.Insert(A, User, A));
        Assert.False(_table.Insert(A, User, A));
        Assert.True(_table.Remove(A, User));
        Assert.False(_table.Remove(A, User));
        Assert.Equal(OriginalA, InMemory(A));
    }

    [Fact]
    public void A_debugger_read_sees_the_original_word_never_the_breakpoint()
    {
        _table.Insert(A, User, A);

        Assert.Equal(OriginalA, AsRead(A));
        Assert.Equal(DebugWord, InMemory(A));
    }

    [Fact]
    public void A_debugger_write_under_a_breakpoint_updates_the_saved_word_and_the_breakpoint_stays()
    {
        _table.Insert(A, User, A);

        _table.Write(A, [0x60, 0x00, 0x00, 0x00]);

        Assert.Equal(0x60000000u, AsRead(A));
        Assert.Equal(DebugWord, InMemory(A));
        _table.Remove(A, User);
        Assert.Equal(0x60000000u, InMemory(A));
    }

    [Fact]
    public void RemoveAll_takes_out_every_breakpoint_of_one_owner_and_no_other_owners()
    {
        _table.Insert(A, StepOf0, A);
        _table.Insert(B, StepOf0, B);
        _table.Insert(B, User, B);

        Assert.Equal(2, _table.RemoveAll(StepOf0));

        Assert.Equal(OriginalA, InMemory(A));
        Assert.Equal(DebugWord, InMemory(B));
        Assert.Equal(new[] { B }, _table.Addresses(User));
        Assert.Empty(_table.Addresses(StepOf0));
    }

    [Fact]
    public void Suspend_puts_the_original_word_back_until_Resume()
    {
        _table.Insert(A, User, A);

        Assert.True(_table.Suspend(A));
        Assert.False(_table.IsPlanted(A));
        Assert.Equal(OriginalA, InMemory(A));
        Assert.True(_table.HasUser(A));

        _table.Resume(A);
        Assert.True(_table.IsPlanted(A));
        Assert.Equal(DebugWord, InMemory(A));
    }

    [Fact]
    public void SuspendUserOnly_takes_out_a_breakpoint_only_the_user_owns()
    {
        _table.Insert(A, User, A);
        _table.Insert(B, User, B);
        _table.Insert(B, StepOf0, B);

        Assert.True(_table.SuspendUserOnly(A));
        Assert.Equal(OriginalA, InMemory(A));
        Assert.False(_table.SuspendUserOnly(B)); // a step's end point stays planted
        Assert.Equal(DebugWord, InMemory(B));
        Assert.False(_table.SuspendUserOnly(0x3000)); // no breakpoint there

        _table.Resume(A);
        Assert.Equal(DebugWord, InMemory(A));
    }

    [Fact]
    public void A_breakpoint_must_be_word_aligned_and_inside_guest_memory()
    {
        Assert.Throws<ArgumentException>(() => _table.Insert(A + 2, User, A + 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => _table.Insert(_vm.MemorySize, User, _vm.MemorySize));
        Assert.Equal(0, _table.Count);
    }
}
