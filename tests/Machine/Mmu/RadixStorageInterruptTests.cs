using ActorStep.Isa;
using ActorStep.Machine.Mmu;
using ActorStep.Tests.Machine.Interrupts;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Mmu;

/// <summary>
/// Storage interrupts and R/C updates of a vcpu with the radix MMU on, as the kernel meets them (Book III §6.5.3, §6.5.5,
/// §6.7.12): the guest registers its process table, turns translation on, and accesses pages whose leaves the test sets. The
/// interrupt vectors hold the debug word (AIL = 0: the real-mode vectors), so a run stops at the handler's first instruction.
/// </summary>
public sealed class RadixStorageInterruptTests
{
    private const ulong DataPage = 0x50000, CodePage = 0x30000;
    private const ulong Execute = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC | RadixWalk.EaaRead
                                  | RadixWalk.EaaExecute | RadixWalk.EaaPrivileged;

    /// <summary>Assembles <paramref name="source"/> (little-endian) into guest memory at real address <paramref name="ra"/>.</summary>
    private static void Place(Guest g, ulong ra, string source)
    {
        var words = GuestAssembler.Words(source);
        var bytes = new byte[words.Length * 4];
        for (int k = 0; k < words.Length; k++) System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * k), words[k]);
        g.Vm.WriteMemory(ra, bytes);
    }

    /// <summary>rfid to <paramref name="target"/> with MSR[IR] and MSR[DR] on, and the <paramref name="msrBits"/> given (r9, r10
    /// clobbered).</summary>
    private static string JumpTranslated(ulong target, int msrBits = 0x30) => $"""
        {RadixGuest.LoadEa(10, target)}
            mtsrr0 10
            mfmsr 9
            ori 9, 9, 0x{msrBits:x}
            mtsrr1 9
            rfid
        """;

    [Fact]
    public void A_fetch_from_a_page_without_execute_authority_is_an_ISI_with_SRR1_bit_35_as_POWER9_sets_it()
    {
        ulong target = RadixGuest.Page(1) + 0x100;
        var g = RadixGuest.Build(JumpTranslated(target), littleEndian: true, (1, DataPage, RadixGuest.ReadWrite));

        Assert.Equal(0x400UL, g.RunToBreak());
        var s = g.State;
        Assert.Equal(target, s.Srr0);
        Assert.Equal(Srr1Bits.Bit35, s.Srr1 & 0x78000000); // bits 33–36: 35 alone
    }

    [Fact]
    public void A_fetch_from_a_page_without_translation_is_an_ISI_with_SRR1_bit_33()
    {
        ulong target = RadixGuest.Page(3) + 0x40;
        var g = RadixGuest.Build(JumpTranslated(target), littleEndian: true, (1, DataPage, RadixGuest.ReadWrite));

        Assert.Equal(0x400UL, g.RunToBreak());
        Assert.Equal(target, g.State.Srr0);
        Assert.Equal(Srr1Bits.Bit33, g.State.Srr1 & 0x78000000);
    }

    [Fact]
    public void Code_on_a_page_with_execute_authority_runs_translated()
    {
        // The page holds `li 5, 42` then the debug word, placed by the test at the real address the leaf names.
        ulong target = RadixGuest.Page(2);
        var g = RadixGuest.Build(JumpTranslated(target), littleEndian: true, (2, CodePage, Execute));
        Place(g, CodePage, $"li 5, 42\n{Guest.Bp}");

        Assert.Equal(target + 4, g.RunToBreak());
        Assert.Equal(42UL, g.State.Gpr[5]);
    }

    [Fact]
    public void A_return_into_a_code_page_remapped_and_invalidated_meanwhile_fetches_through_the_new_leaf()
    {
        // The kernel remaps a code page while a function on another page runs (a new leaf, tlbie, ptesync): the return into
        // the first page fetches its words from the new real page, not from the page the vcpu fetched them from before the call.
        const ulong calleePage = 0x40000, newPage = 0x70000;
        ulong caller = RadixGuest.Page(2), callee = RadixGuest.Page(3);
        var g = RadixGuest.Build(JumpTranslated(caller), littleEndian: true, (2, CodePage, Execute), (3, calleePage, Execute));
        Place(g, CodePage, $"""
                li 5, 1
                bl .+0x{callee - caller - 4:x}
                li 6, 11
                {Guest.Bp}
            """);
        Place(g, newPage, $"""
                nop
                nop
                li 6, 22
                {Guest.Bp}
            """);
        Place(g, calleePage, $"""
                {Guest.Bp}
            {RadixGuest.LoadEa(4, caller)}
                ptesync
                tlbie 4,0,0,0,1
                ptesync
                blr
            """);

        Assert.Equal(callee, g.RunToBreak());
        RadixGuest.Put(g, RadixGuest.PteAddress(2), Execute | newPage);
        g.Update(s => s.Nip += 4);
        Assert.Equal(caller + 12, g.RunToBreak());
        Assert.Equal(22UL, g.State.Gpr[6]);
    }

    [Fact]
    public void A_return_into_quadrant_0_after_a_PIDR_write_fetches_through_the_new_process_tree()
    {
        // A process switch inside a kernel function (quadrant 3): the return to the same quadrant-0 EA fetches the new
        // process's code (PID 2: page 1 → newPage), not the words the vcpu fetched there for PID 1 (page 1 → CodePage).
        const ulong kernelPage = 0x40000, newPage = 0x70000, root2 = 0xB0000, pud2 = 0xC0000, pmd2 = 0xC1000, pte2 = 0xC2000;
        const ulong user = 0x10000;
        ulong kernel = RadixGuest.Page(3) + 0x1000;
        var g = RadixGuest.Build($"""
                li 9, 1
                mtspr 48, 9
                lis 10, {user >> 16}
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x30
                mtsrr1 9
                rfid
            """, littleEndian: true, (1, CodePage, Execute), (3, kernelPage, Execute));
        RadixGuest.Put(g, RadixGuest.ProcessTable + 16, (2UL << 61) | RadixGuest.Root | (5UL << 5) | 13);
        RadixGuest.Put(g, RadixGuest.ProcessTable + 32, (2UL << 61) | root2 | (5UL << 5) | 13);
        RadixGuest.Put(g, root2, RadixWalk.PteValid | pud2 | 9);
        RadixGuest.Put(g, pud2, RadixWalk.PteValid | pmd2 | 9);
        RadixGuest.Put(g, pmd2, RadixWalk.PteValid | pte2 | 5);
        RadixGuest.Put(g, pte2 + 8, Execute | newPage);
        Place(g, CodePage, $"""
                li 6, 11
            {RadixGuest.LoadEa(10, kernel)}
                mtctr 10
                bctrl
                {Guest.Bp}
            """);
        Place(g, newPage, $"""
                {string.Join("\n", Enumerable.Repeat("nop", 7))}
                li 6, 22
                {Guest.Bp}
            """);
        Place(g, kernelPage + 0x1000, """
                li 9, 2
                mtspr 48, 9
                blr
            """);

        Assert.Equal(user + 32, g.RunToBreak());
        Assert.Equal(22UL, g.State.Gpr[6]);
    }

    [Fact]
    public void A_return_to_problem_state_on_the_privileged_code_page_just_run_is_an_ISI_with_SRR1_bit_35()
    {
        // The supervisor runs code on a privileged page and rfids to problem state at another word of the same page: the
        // page's translation for the supervisor's fetches must not serve problem state's.
        ulong code = RadixGuest.Page(2);
        var g = RadixGuest.Build(JumpTranslated(code), littleEndian: true, (2, CodePage, Execute));
        Place(g, CodePage, $"""
                li 5, 1
            {RadixGuest.LoadEa(10, code + 0x80)}
                mtsrr0 10
                mfmsr 9
                ori 9, 9, 0x4000
                mtsrr1 9
                rfid
            """);
        Place(g, CodePage + 0x80, $"""
                li 6, 1
                {Guest.Bp}
            """);

        Assert.Equal(0x400UL, g.RunToBreak());
        Assert.Equal(1UL, g.State.Gpr[5]);
        Assert.Equal(0UL, g.State.Gpr[6]);
        Assert.Equal(code + 0x80, g.State.Srr0);
        Assert.Equal(Srr1Bits.Bit35, g.State.Srr1 & 0x78000000);
    }

    [Fact]
    public void A_store_to_a_read_only_page_is_a_DSI_with_DSISR_bits_36_and_38_and_DAR_the_address()
    {
        const ulong readOnly = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC | RadixWalk.EaaRead
                               | RadixWalk.EaaPrivileged;
        ulong ea = RadixGuest.Page(1) + 0x18;
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, ea)}
                li 5, 1
                std 5, 0(4)
                {Guest.Bp}
            """, littleEndian: true, (1, DataPage, readOnly));

        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(ea, g.State.Dar);
        Assert.Equal(0x0A000000u, g.State.Dsisr);
        Assert.Equal(0UL, g.ReadU64(DataPage + 0x18));
    }

    [Fact]
    public void A_problem_state_load_from_a_privileged_page_is_a_DSI_with_DSISR_bit_36()
    {
        // Problem-state code on a page without the privileged bit: `ld 5, 0(4)` then the debug word, entered by rfid with
        // MSR[PR] (which also sets IR and DR).
        const ulong userCode = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC | RadixWalk.EaaRead
                               | RadixWalk.EaaExecute;
        ulong ea = RadixGuest.Page(1) + 0x20;
        var g = RadixGuest.Build($"""
            {RadixGuest.LoadEa(4, ea)}
            {JumpTranslated(RadixGuest.Page(2), msrBits: 0x4030)}
            """, littleEndian: true, (1, DataPage, RadixGuest.ReadWrite), (2, CodePage, userCode));
        Place(g, CodePage, $"ld 5, 0(4)\n{Guest.Bp}");

        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(RadixGuest.Page(2), g.State.Srr0);
        Assert.Equal(ea, g.State.Dar);
        Assert.Equal(0x08000000u, g.State.Dsisr);
        Assert.NotEqual(0UL, g.State.Srr1 & Msr.PR); // taken from problem state
    }

    [Fact]
    public void A_load_sets_the_leafs_R_bit_and_a_store_sets_R_and_C_in_guest_memory()
    {
        const ulong fresh = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.EaaRead | RadixWalk.EaaReadWrite
                            | RadixWalk.EaaPrivileged; // R and C clear
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, RadixGuest.Page(1))}
            {RadixGuest.LoadEa(6, RadixGuest.Page(2))}
                ld 5, 8(4)
                {Guest.Bp}
                std 5, 8(6)
                {Guest.Bp}
            """, littleEndian: true, (1, DataPage, fresh), (2, CodePage, fresh));

        g.RunToBreak();
        Assert.Equal(RadixWalk.PteR, RadixGuest.Get(g, RadixGuest.PteAddress(1)) & (RadixWalk.PteR | RadixWalk.PteC));
        Assert.Equal(0UL, RadixGuest.Get(g, RadixGuest.PteAddress(2)) & (RadixWalk.PteR | RadixWalk.PteC));

        g.Update(s => s.Nip += 4);
        g.RunToBreak();
        Assert.Equal(RadixWalk.PteR | RadixWalk.PteC, RadixGuest.Get(g, RadixGuest.PteAddress(2)) & (RadixWalk.PteR | RadixWalk.PteC));
    }

    [Fact]
    public void A_supervisor_loads_cached_translation_does_not_let_problem_state_load_the_privileged_page()
    {
        // The supervisor reads the privileged page first (its translation is cached for loads), then problem-state code reads it.
        const ulong userCode = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.PteC | RadixWalk.EaaRead
                               | RadixWalk.EaaExecute;
        ulong ea = RadixGuest.Page(1) + 0x20;
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, ea)}
                ld 6, 0(4)
                ld 6, 0(4)
            {JumpTranslated(RadixGuest.Page(2), msrBits: 0x4030)}
            """, littleEndian: true, (1, DataPage, RadixGuest.ReadWrite), (2, CodePage, userCode));
        Place(g, CodePage, $"ld 5, 0(4)\n{Guest.Bp}");
        g.Vm.WriteMemory(DataPage + 0x20, BitConverter.GetBytes(0x1122334455667788UL));

        Assert.Equal(0x300UL, g.RunToBreak());
        Assert.Equal(0x1122334455667788UL, g.State.Gpr[6]);
        Assert.Equal(RadixGuest.Page(2), g.State.Srr0);
        Assert.Equal(0x08000000u, g.State.Dsisr);
    }

    [Fact]
    public void A_store_after_loads_from_a_page_whose_leaf_lacks_C_sets_C()
    {
        const ulong referenced = RadixWalk.PteValid | RadixWalk.PteLeaf | RadixWalk.PteR | RadixWalk.EaaRead | RadixWalk.EaaReadWrite
                                 | RadixWalk.EaaPrivileged; // R set, C clear
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, RadixGuest.Page(1))}
                ld 5, 8(4)
                ld 5, 8(4)
                std 5, 16(4)
                {Guest.Bp}
            """, littleEndian: true, (1, DataPage, referenced));

        g.RunToBreak();
        Assert.Equal(RadixWalk.PteR | RadixWalk.PteC, RadixGuest.Get(g, RadixGuest.PteAddress(1)) & (RadixWalk.PteR | RadixWalk.PteC));
    }

    [Fact]
    public void After_tlbie_a_load_goes_through_the_leaf_as_it_is_now()
    {
        // The kernel remaps a page: a new leaf in the tree, tlbie, ptesync; the next load reads the new real page.
        const ulong otherPage = 0x60000;
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
            {RadixGuest.LoadEa(4, RadixGuest.Page(1))}
                ld 5, 8(4)
                ld 5, 8(4)
                {Guest.Bp}
                ptesync
                tlbie 4,0,0,0,1
                ptesync
                ld 6, 8(4)
                {Guest.Bp}
            """, littleEndian: true, (1, DataPage, RadixGuest.ReadWrite));
        g.Vm.WriteMemory(DataPage + 8, BitConverter.GetBytes(1UL));
        g.Vm.WriteMemory(otherPage + 8, BitConverter.GetBytes(2UL));

        g.RunToBreak();
        Assert.Equal(1UL, g.State.Gpr[5]);
        RadixGuest.Put(g, RadixGuest.PteAddress(1), RadixGuest.ReadWrite | otherPage);
        g.Update(s => s.Nip += 4);
        g.RunToBreak();
        Assert.Equal(2UL, g.State.Gpr[6]);
    }

    [Fact]
    public void A_PIDR_write_makes_quadrant_0_loads_go_through_the_new_process_tree()
    {
        // PID 1 shares PID 0's tree (page 1 → DataPage); PID 2 has its own (page 1 → OtherPage). A load cached under PID 1 must
        // not serve the same EA under PID 2.
        const ulong otherPage = 0x60000, root2 = 0xB0000, pud2 = 0xC0000, pmd2 = 0xC1000, pte2 = 0xC2000;
        var g = RadixGuest.Build($"""
            {Asm.MsrOr(0x10)}
                li 9, 1
                mtspr 48, 9
                lis 4, 1
                ld 5, 8(4)
                ld 5, 8(4)
                li 9, 2
                mtspr 48, 9
                ld 6, 8(4)
                {Guest.Bp}
            """, littleEndian: true, (1, DataPage, RadixGuest.ReadWrite));
        RadixGuest.Put(g, RadixGuest.ProcessTable + 16, (2UL << 61) | RadixGuest.Root | (5UL << 5) | 13);
        RadixGuest.Put(g, RadixGuest.ProcessTable + 32, (2UL << 61) | root2 | (5UL << 5) | 13);
        RadixGuest.Put(g, root2, RadixWalk.PteValid | pud2 | 9);
        RadixGuest.Put(g, pud2, RadixWalk.PteValid | pmd2 | 9);
        RadixGuest.Put(g, pmd2, RadixWalk.PteValid | pte2 | 5);
        RadixGuest.Put(g, pte2 + 8, RadixGuest.ReadWrite | otherPage);
        g.Vm.WriteMemory(DataPage + 8, BitConverter.GetBytes(1UL));
        g.Vm.WriteMemory(otherPage + 8, BitConverter.GetBytes(2UL));

        g.RunToBreak();
        Assert.Equal(1UL, g.State.Gpr[5]);
        Assert.Equal(2UL, g.State.Gpr[6]);
    }
}
