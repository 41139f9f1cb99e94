using ActorStep.Tests.Machine.Interrupts;

namespace ActorStep.Tests.Machine.Mmu;

/// <summary>
/// An access whose bytes lie on two pages, with the radix MMU on (Book III §6.7.11): each page is translated on its own, so the
/// bytes come from (and go to) two real pages that need not be adjacent, and a fault on the second page is a DSI before any
/// byte moves. The guest registers a radix process table with H_REGISTER_PROC_TBL and turns data translation on; EA page
/// 0xC000…0001_0000 maps to real 0x50000, the next 64 KiB page to real 0x30000, the one after has no translation.
/// </summary>
public sealed class PageCrossingTests
{
    private const ulong FirstPage = 0x50000, SecondPage = 0x30000;
    private const ulong Across = 0xC00000000001FFFC; // the last 4 bytes of the first page and the first 4 of the second
    private const ulong IntoUnmapped = 0xC00000000002FFFC;

    private static Guest Crossing(string access, bool littleEndian)
    {
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, access.Contains("unmapped") ? IntoUnmapped : Across)}
                li 5, 77
                lis 6, 0x0102
                ori 6, 6, 0x0304
                sldi 6, 6, 32
                oris 6, 6, 0x0506
                ori 6, 6, 0x0708
            faulting:
                {access.Replace(" unmapped", "")}
                {Guest.Bp}
            """, littleEndian, (1, FirstPage, RadixGuest.ReadWrite), (2, SecondPage, RadixGuest.ReadWrite));
        g.Vm.WriteMemory(FirstPage + 0xFFF8, [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8]);
        g.Vm.WriteMemory(SecondPage, [0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8]);
        g.Vm.WriteMemory(SecondPage + 0xFFF8, [0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8]);
        return g;
    }

    private static byte[] Read(Guest g, ulong ra, int length)
    {
        var b = new byte[length];
        g.Vm.ReadMemory(ra, b);
        return b;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_doubleword_load_across_two_pages_takes_each_part_from_its_own_real_page(bool littleEndian)
    {
        var g = Crossing("ld 5, 0(4)", littleEndian);
        g.RunToBreak();
        Assert.Equal(littleEndian ? 0xB4B3B2B1A8A7A6A5UL : 0xA5A6A7A8B1B2B3B4UL, g.State.Gpr[5]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_load_across_two_pages_after_loads_that_cached_the_first_one_still_takes_each_part_from_its_own_page(bool littleEndian)
    {
        // The first page's translation is in the cache (and checked for loads) before the crossing access.
        var g = Crossing("ld 7, -4(4)\n    ld 7, -4(4)\n    ld 5, 0(4)", littleEndian);
        g.RunToBreak();
        Assert.Equal(littleEndian ? 0xA8A7A6A5A4A3A2A1UL : 0xA1A2A3A4A5A6A7A8UL, g.State.Gpr[7]);
        Assert.Equal(littleEndian ? 0xB4B3B2B1A8A7A6A5UL : 0xA5A6A7A8B1B2B3B4UL, g.State.Gpr[5]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_byte_reversed_word_load_across_two_pages_takes_each_part_from_its_own_real_page(bool littleEndian)
    {
        var g = Crossing("addi 4, 4, 2\n    lwbrx 5, 0, 4", littleEndian);
        g.RunToBreak();
        Assert.Equal(littleEndian ? 0xA7A8B1B2UL : 0xB2B1A8A7UL, g.State.Gpr[5]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_doubleword_store_across_two_pages_puts_each_part_in_its_own_real_page(bool littleEndian)
    {
        var g = Crossing("std 6, 0(4)", littleEndian);
        g.RunToBreak();
        byte[] stored = littleEndian ? [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01] : [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        Assert.Equal(stored[..4], Read(g, FirstPage + 0xFFFC, 4));
        Assert.Equal(stored[4..], Read(g, SecondPage, 4));
        Assert.Equal(new byte[] { 0xB5, 0xB6 }, Read(g, SecondPage + 4, 2)); // nothing beyond the doubleword
    }

    [Fact]
    public void A_load_into_a_page_without_translation_is_a_DSI_at_that_page_and_loads_nothing()
    {
        var g = Crossing("ld 5, 0(4) unmapped", littleEndian: true);
        Assert.Equal(0x300UL, g.RunToBreak());
        var s = g.State;
        Assert.Equal(g.Sym("faulting"), s.Srr0);
        Assert.Equal(0xC000000000030000UL, s.Dar); // the first byte of the page that has no translation
        Assert.Equal(0x40000000u, s.Dsisr);
        Assert.Equal(77UL, s.Gpr[5]);
    }

    [Fact]
    public void A_store_into_a_page_without_translation_is_a_DSI_and_stores_nothing_on_the_page_that_has_one()
    {
        var g = Crossing("std 6, 0(4) unmapped", littleEndian: true);
        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(0xC000000000030000UL, g.State.Dar);
        Assert.Equal(0x42000000u, g.State.Dsisr);
        Assert.Equal(new byte[] { 0xC5, 0xC6, 0xC7, 0xC8 }, Read(g, SecondPage + 0xFFFC, 4));
    }
}
