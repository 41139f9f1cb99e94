using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Machine.Mmu;

namespace ActorStep.Tests.Machine.Mmu;

/// <summary>
/// The process-scoped radix walk over a tree laid out as Debian's 64K-page kernel lays it out: 52-bit trees, levels of
/// 13/9/9/5 index bits, 64 KiB leaves at the last level and 2 MiB leaves one level up (Book III §6.7.11).
/// </summary>
public sealed class RadixWalkTests : IDisposable
{
    private const ulong ProcessTableBase = 0x10000, KernelRoot = 0x20000, UserRoot = 0x40000;
    private const ulong Pud = 0x60000, Pmd = 0x70000, Pte = 0x80000;
    private const ulong Leaf = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC;
    private const ulong Rwx = RadixWalk.EaaRead | RadixWalk.EaaReadWrite | RadixWalk.EaaExecute;
    private static readonly ProcessTable Table = new(ProcessTableBase, 16);

    private readonly GuestMemory _mem = new(16UL << 20);

    public RadixWalkTests()
    {
        // Process table entry dw0: RTS = 21 (52-bit tree: RTS1 = 0b10, RTS2 = 0b101), root base, RPDS = 13.
        ulong Root(ulong b) => (2UL << 61) | b | (5UL << 5) | 13;
        Put(ProcessTableBase, Root(KernelRoot));        // PID 0: quadrant 3
        Put(ProcessTableBase + 16 * 7, Root(UserRoot)); // PID 7
        // EA 0xc000000000000000: index 0 at every level.
        Put(KernelRoot, RadixWalk.PteValid | Pud | 9);
        Put(Pud, RadixWalk.PteValid | Pmd | 9);
        Put(Pmd, RadixWalk.PteValid | Pte | 5);
        Put(Pte + 1 * 8, Leaf | 0x350000 | Rwx | RadixWalk.EaaPrivileged); // EA …0001_0000 → RA 0x350000 (64K page)
        Put(Pmd + 1 * 8, Leaf | 0x600000 | RadixWalk.EaaRead | RadixWalk.EaaPrivileged); // EA …0020_0000 → RA 0x600000 (2M page)
        Put(Pte + 2 * 8, RadixWalk.PteValid | RadixWalk.PteLeaf | 0x360000 | RadixWalk.EaaReadWrite); // R and C clear
    }

    public void Dispose() => _mem.Release();

    private void Put(ulong ra, ulong value)
    {
        var b = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(b, value);
        _mem.Write(ra, b);
    }

    [Fact]
    public void A64KLeafAtTheLastLevelMapsTheOffsetWithinThePage()
    {
        Assert.Equal(RadixFault.None, RadixWalk.Walk(_mem, Table, 0, 0xc000000000012345, out var leaf));
        Assert.Equal(0x352345UL, leaf.RealAddress);
        Assert.Equal(16, leaf.PageShift);
        Assert.Equal(Pte + 8, leaf.PteAddress);
    }

    [Fact]
    public void A2MLeafOneLevelUpMapsTwentyOneBitsOfOffset()
    {
        Assert.Equal(RadixFault.None, RadixWalk.Walk(_mem, Table, 0, 0xc0000000002abcde, out var leaf));
        Assert.Equal(0x6abcdeUL, leaf.RealAddress);
        Assert.Equal(21, leaf.PageShift);
    }

    [Fact]
    public void AnInvalidEntryOnTheWayIsNoTranslation()
    {
        Assert.Equal(RadixFault.NoTranslation, RadixWalk.Walk(_mem, Table, 0, 0xc000000000030000, out _)); // PTE slot 3 empty
        Assert.Equal(RadixFault.NoTranslation, RadixWalk.Walk(_mem, Table, 0, 0xc000000040000000, out _)); // PUD slot 1 empty
    }

    [Fact]
    public void QuadrantZeroTranslatesWithPidrAndAnUnusedPidHasNoTranslation()
    {
        Put(UserRoot, RadixWalk.PteValid | Pud | 9); // PID 7 shares the lower levels
        Assert.Equal(RadixFault.None, RadixWalk.Walk(_mem, Table, 7, 0x0000000000010008, out var leaf));
        Assert.Equal(0x350008UL, leaf.RealAddress);
        Assert.Equal(RadixFault.NoTranslation, RadixWalk.Walk(_mem, Table, 3, 0x0000000000010008, out _));
    }

    [Theory]
    [InlineData(0x4000000000010000UL)] // quadrant 1
    [InlineData(0x8000000000010000UL)] // quadrant 2
    [InlineData(0xc010000000000000UL)] // beyond the 52-bit tree
    public void QuadrantsOneAndTwoAndAddressesBeyondTheTreeAreSegmentFaults(ulong ea)
    {
        Assert.Equal(RadixFault.Segment, RadixWalk.Walk(_mem, Table, 0, ea, out _));
    }

    [Fact]
    public void APrivilegedLeafRefusesProblemStateAndAReadOnlyLeafRefusesStoresAndFetches()
    {
        RadixWalk.Walk(_mem, Table, 0, 0xc000000000010000, out var rwx);
        Assert.True(RadixWalk.Permits(rwx.Pte, AccessKind.Store, problemState: false));
        Assert.True(RadixWalk.Permits(rwx.Pte, AccessKind.Fetch, problemState: false));
        Assert.False(RadixWalk.Permits(rwx.Pte, AccessKind.Load, problemState: true));

        RadixWalk.Walk(_mem, Table, 0, 0xc000000000200000, out var readOnly);
        Assert.True(RadixWalk.Permits(readOnly.Pte, AccessKind.Load, problemState: false));
        Assert.False(RadixWalk.Permits(readOnly.Pte, AccessKind.Store, problemState: false));
        Assert.False(RadixWalk.Permits(readOnly.Pte, AccessKind.Fetch, problemState: false));
    }

    [Fact]
    public void ALoadSetsReferenceAndAStoreSetsReferenceAndChange()
    {
        Assert.Equal(RadixWalk.PteR, RadixWalk.ReferenceChange(AccessKind.Load));
        Assert.Equal(RadixWalk.PteR | RadixWalk.PteC, RadixWalk.ReferenceChange(AccessKind.Store));
    }
}
