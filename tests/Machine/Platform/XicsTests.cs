using ActorStep.Machine.Platform;

namespace ActorStep.Tests.Machine.Platform;

/// <summary>The XICS presentation controller's rules (LoPAPR §C.2; QEMU's hw/intc/xics.c), without vcpus: what each
/// hypercall does to CPPR, XISR, MFRR and the external exception line of a server.</summary>
public sealed class XicsTests
{
    private readonly List<(int Server, bool Raised)> _line = new();
    private readonly Xics _xics;

    public XicsTests() => _xics = new Xics(2, (server, raised) => _line.Add((server, raised)));

    private bool Raised(int server) => _line.LastOrDefault(l => l.Server == server).Raised;

    [Fact]
    public void AtResetCpprIsZeroSoAnIpiWaitsInMfrrUntilTheCpuOpensItsPriority()
    {
        _xics.SetMfrr(1, 4);
        Assert.False(Raised(1));
        Assert.Equal((0u, (byte)4), _xics.Poll(1));

        _xics.SetCppr(1, 0xFF);

        Assert.True(Raised(1));
        Assert.Equal(0xFF000000u | Xics.IpiSource, _xics.Poll(1).Xirr);
    }

    [Fact]
    public void AcceptReturnsTheXirrRaisesCpprToThePendingPriorityAndLowersTheLine()
    {
        _xics.SetCppr(0, 0xFF);
        _xics.SetMfrr(0, 5);

        uint xirr = _xics.Accept(0);

        Assert.Equal(0xFF000000u | Xics.IpiSource, xirr);
        Assert.False(Raised(0));
        Assert.Equal(0x05000000u, _xics.Poll(0).Xirr); // CPPR = 5, nothing pending
    }

    [Fact]
    public void EoiWithTheMfrrClearedPresentsNothingAgain()
    {
        _xics.SetCppr(0, 0xFF);
        _xics.SetMfrr(0, 5);
        uint xirr = _xics.Accept(0);
        _xics.SetMfrr(0, 0xFF); // Linux's IPI handler clears MFRR before the EOI

        _xics.EndOfInterrupt(0, xirr);

        Assert.False(Raised(0));
        Assert.Equal(0xFF000000u, _xics.Poll(0).Xirr);
    }

    [Fact]
    public void EoiWithTheMfrrStillSetPresentsTheIpiAgain()
    {
        _xics.SetCppr(0, 0xFF);
        _xics.SetMfrr(0, 5);
        uint xirr = _xics.Accept(0);

        _xics.EndOfInterrupt(0, xirr);

        Assert.True(Raised(0));
        Assert.Equal(0xFF000000u | Xics.IpiSource, _xics.Poll(0).Xirr);
    }

    [Fact]
    public void LoweringCpprBelowThePendingPriorityWithdrawsTheInterrupt()
    {
        _xics.SetCppr(1, 0xFF);
        _xics.SetMfrr(1, 5);
        Assert.True(Raised(1));

        _xics.SetCppr(1, 5);

        Assert.False(Raised(1));
        Assert.Equal(0x05000000u, _xics.Poll(1).Xirr);
    }

    [Fact]
    public void AnIpiGoesToTheServerNamedOnlyNotToTheOthers()
    {
        _xics.SetCppr(0, 0xFF);
        _xics.SetCppr(1, 0xFF);

        _xics.SetMfrr(1, 4);

        Assert.DoesNotContain(_line, l => l.Server == 0 && l.Raised);
        Assert.True(Raised(1));
    }

    [Fact]
    public void SetXiveGetXiveAndIntOffOnKeepASourcesServerAndPriority()
    {
        uint irq = Xics.FirstSource + 7;
        Assert.True(_xics.SetXive(irq, 1, 5));
        Assert.True(_xics.GetXive(irq, out uint server, out uint priority));
        Assert.Equal((1u, 5u), (server, priority));

        Assert.True(_xics.SetSourceEnabled(irq, on: false));
        _xics.GetXive(irq, out _, out priority);
        Assert.Equal(0xFFu, priority);

        Assert.True(_xics.SetSourceEnabled(irq, on: true));
        _xics.GetXive(irq, out _, out priority);
        Assert.Equal(5u, priority);
    }

    [Fact]
    public void SourcesOutsideTheIcsOrServersThatDoNotExistAreRefused()
    {
        Assert.False(_xics.SetXive(Xics.IpiSource, 0, 5));
        Assert.False(_xics.SetXive(Xics.FirstSource + Xics.SourceCount, 0, 5));
        Assert.False(_xics.SetXive(Xics.FirstSource, 2, 5));
        Assert.False(_xics.GetXive(0, out _, out _));
    }
}
