using System.Globalization;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;

namespace ActorStep.Tests.Gdb;

/// <summary>An unmodified gdb-multiarch stepping guests through the bridge, checked against binutils' objdump.</summary>
[Collection("gdb")]
public sealed class GdbSteppingTests(GdbFixture fx)
{
    private static readonly Regex Shown = new(@"^(?:\d+: x/i \$pc\n)?=> 0x([0-9a-f]+)(?: <[^>]*>)?:\s+(.*)$", RegexOptions.Multiline);
    private static readonly Regex Before = new(@"^regs lr=([0-9a-f]+) ctr=([0-9a-f]+) cr=([0-9a-f]+) srr0=([0-9a-f]+)$", RegexOptions.Multiline);

    /// <summary>What gdb showed at one stop: the instruction at pc and the registers a branch to LR/CTR or an rfid reads.</summary>
    private sealed record Stop(ulong Pc, string Text, ulong Lr, ulong Ctr, uint Cr, ulong Srr0);

    /// <summary>Steps <paramref name="steps"/> instructions of thread 1; at each stop shows the instruction and the registers.</summary>
    private Task<List<Stop>> StepAsync(string guest, uint vcpus, bool littleEndian, int steps, bool remote = false) =>
        StepAsync(fx.NewVm(guest, vcpus), GdbFixture.GuestElf(guest), littleEndian, steps, remote);

    private async Task<List<Stop>> StepAsync(Vm vm, string elf, bool littleEndian, int steps, bool remote = false)
    {
        await using var bridge = await fx.StartBridgeAsync(vm.VmId, remote);
        string[] show = ["x/i $pc", "printf \"regs lr=%lx ctr=%lx cr=%x srr0=%lx\\n\", $lr, $ctr, $cr, $srr0"];
        var commands = new List<string> { "set scheduler-locking step" };
        commands.AddRange(show);
        for (int i = 0; i < steps; i++) { commands.Add("stepi"); commands.AddRange(show); }
        string output = (await GdbProcess.RunAsync(bridge.Endpoint, elf, littleEndian, commands.ToArray())).Replace("\r", "");
        var shown = Shown.Matches(output).ToList();
        var regs = Before.Matches(output).ToList();
        Assert.True(shown.Count == steps + 1 && regs.Count == steps + 1, $"expected {steps + 1} instructions and register lines shown:\n{output}");
        static ulong Hex(Match m, int g) => ulong.Parse(m.Groups[g].Value, NumberStyles.HexNumber);
        return shown.Zip(regs, (s, r) => new Stop(Hex(s, 1), Disassembly.Normalize(s.Groups[2].Value), Hex(r, 1), Hex(r, 2), (uint)Hex(r, 3), Hex(r, 4)))
            .ToList();
    }

    /// <summary>
    /// Each PC is the one the previous instruction leads to, computed from its encoding and the registers gdb showed before the
    /// step (every branch included: to a target, to LR, to CTR, rfid to SRR0); and gdb shows objdump's text.
    /// </summary>
    private static void AssertFollowsDisassembly(Disassembly dis, List<Stop> shown, ulong systemCallVector)
    {
        static string Plain(string s) => s.Replace("0x", "");
        for (int i = 0; i < shown.Count; i++)
        {
            var stop = shown[i];
            Assert.True(dis.Instructions.TryGetValue(stop.Pc, out var expected), $"step {i}: 0x{stop.Pc:x} is not an instruction in the image");
            Assert.Equal(Plain(expected), Plain(stop.Text));
            if (i == 0) continue;
            var prev = shown[i - 1];
            ulong next = NextPc(dis.Words[prev.Pc], prev, systemCallVector);
            Assert.True(stop.Pc == next, $"step {i}: {dis.Instructions[prev.Pc]} at 0x{prev.Pc:x} went to 0x{stop.Pc:x}, not 0x{next:x}");
        }
    }

    /// <summary>
    /// Where the instruction <paramref name="word"/> at <paramref name="at"/>.Pc goes, in 64-bit mode, with the registers before it:
    /// branches per Power ISA Book I §2.4 (b, bc, bclr, bcctr: BO/BI against CR and CTR), rfid to SRR0 (Book III §4.3.1),
    /// sc to the system call vector, hypercalls (sc 1, answered by the hypervisor) and everything else to the next word.
    /// </summary>
    private static ulong NextPc(uint word, Stop at, ulong systemCallVector)
    {
        ulong pc = at.Pc, next = pc + 4;
        bool aa = (word & 2) != 0;
        uint bo = (word >> 21) & 0x1f, bi = (word >> 16) & 0x1f;
        bool Taken(bool decrementsCtr)
        {
            bool ctrOk = true;
            if (decrementsCtr && (bo & 0b00100) == 0) ctrOk = (at.Ctr - 1 != 0) ^ ((bo & 0b00010) != 0);
            bool condOk = (bo & 0b10000) != 0 || ((at.Cr >> (int)(31 - bi)) & 1) == ((bo & 0b01000) != 0 ? 1u : 0u);
            return ctrOk && condOk;
        }
        switch (word >> 26)
        {
            case 18: // b[l][a]: LI || 0b00, sign-extended
                return (aa ? 0 : pc) + (ulong)((long)((int)(word << 6) >> 6) & ~3L);
            case 16: // bc[l][a]: BD || 0b00, sign-extended
                return Taken(decrementsCtr: true) ? (aa ? 0 : pc) + (ulong)(long)(short)(word & 0xfffc) : next;
            case 17: // sc LEV: LEV=1 is a hypercall, which the hypervisor answers
                return ((word >> 5) & 0x7f) == 0 ? systemCallVector : next;
            case 19:
                switch ((word >> 1) & 0x3ff)
                {
                    case 16: return Taken(decrementsCtr: true) ? at.Lr & ~3UL : next;    // bclr[l]
                    case 528: return Taken(decrementsCtr: false) ? at.Ctr & ~3UL : next; // bcctr[l]
                    case 18: return at.Srr0 & ~3UL;                                       // rfid
                    case 560: throw new Xunit.Sdk.XunitException($"bctar at 0x{pc:x}: TAR is not shown");
                    default: return next;                                                 // CR logical, isync, ...
                }
            default:
                return next;
        }
    }

    [Theory]
    [InlineData(false)] // the bridge inside the server (serve --gdb)
    [InlineData(true)]  // the bridge as a gRPC client (actorstep gdb --server)
    public async Task Stepi_over_the_demo_guest_follows_its_disassembly(bool remote)
    {
        var shown = await StepAsync("demo", 4, littleEndian: true, steps: 28, remote);
        var dis = Disassembly.Of(GdbFixture.GuestElf("demo"), littleEndian: true);
        Assert.Equal(dis.Symbols["_start"], shown[0].Pc);
        AssertFollowsDisassembly(dis, shown, systemCallVector: 0xc00);
        Assert.Contains(shown, s => s.Pc == dis.Symbols["boot_cpu"]); // vcpu 0 took the boot path
    }

    [Fact]
    public async Task Stepi_over_a_big_endian_guest_follows_its_disassembly()
    {
        var shown = await StepAsync("selftest-be", 1, littleEndian: false, steps: 40);
        var dis = Disassembly.Of(GdbFixture.GuestElf("selftest-be"), littleEndian: false);
        Assert.Equal(dis.Symbols["_start"], shown[0].Pc);
        AssertFollowsDisassembly(dis, shown, systemCallVector: 0xc00);
        Assert.True(shown.Count(s => s.Pc == dis.Symbols["loop"]) >= 3, "the loop's backward branch was taken"); // ble loop
    }

    [Fact]
    public async Task Stepi_through_branches_by_LR_and_CTR_lands_where_the_registers_said()
    {
        // Taken and untaken branches to LR and CTR, CTR-decrementing forms, and the mflr/mtctr/mtlr that only sound like them.
        string elf = Support.GuestAssembler.BuildElf("""
                .org 0x5000
                .globl _start
            _start:
                li 3, 2
                mtctr 3
            1:  bdnz 1b
                bl leaf
            after:
                mflr 9
                lis 10, target@h
                ori 10, 10, target@l
                mtctr 10
                bctrl
            back:
                cmpdi 3, 7
                bnelr
                li 4, 2
                mtctr 4
                lis 11, done@h
                ori 11, 11, done@l
                mtlr 11
                bdnzlr
                trap
            done:
                lis 12, spin@h
                ori 12, 12, spin@l
                mtctr 12
                cmpdi 3, 7
                beqctr
                trap
            spin:
                b spin
            leaf:
                li 3, 0
                blr
            target:
                li 3, 7
                blr
            """, littleEndian: true, textAddress: 0);
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 1, MemorySize = 16 << 20 }, deadline: GdbFixture.Deadline);
        var shown = await StepAsync(vm, elf, littleEndian: true, steps: 29);
        var dis = Disassembly.Of(elf, littleEndian: true);
        Assert.Equal(dis.Symbols["_start"], shown[0].Pc);
        AssertFollowsDisassembly(dis, shown, systemCallVector: 0xc00);
        foreach (var label in new[] { "leaf", "after", "target", "back", "done" })
            Assert.Contains(shown, s => s.Pc == dis.Symbols[label]);
        Assert.Equal(dis.Symbols["spin"], shown[^1].Pc);
        Assert.DoesNotContain(shown, s => s.Text.StartsWith("trap", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Info_registers_shows_the_vcpus_registers()
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "thread 2", "info registers r3 pc msr", "thread 1", "set scheduler-locking step", "stepi 5", "echo AFTER-STEPS\\n", "info registers");
        Assert.Matches(@"r3\s+0x1\s", output);                       // vcpu 1 starts with r3 = its index
        Assert.Matches(@"pc\s+0x5000\s", output);                    // the image's entry
        Assert.Matches(@"msr\s+0x8000000000001001\s", output);       // SF|ME|LE
        var regs = fx.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 0 }, deadline: GdbFixture.Deadline);
        var after = output[output.IndexOf("AFTER-STEPS", StringComparison.Ordinal)..];
        foreach (var r in regs.Registers.Where(r => r.GdbNumber < 32 || r.GdbNumber is >= 64 and <= 69))
        {
            string name = r.Name == "nip" ? "pc" : r.Name;
            Assert.Matches(new Regex($@"(?m)^{name}\s+0x{r.Value:x}\s"), after);
        }
    }

    [Fact]
    public async Task Stepping_mfmsr_shows_the_guests_own_msr()
    {
        var vm = fx.NewVm("demo");
        var dis = Disassembly.Of(GdbFixture.GuestElf("demo"), littleEndian: true);
        ulong mfmsr = 0xc000000000000000 + dis.Instructions.Where(i => i.Key > dis.Symbols["relocated"] && i.Value == "mfmsr r3").Min(i => i.Key);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "set scheduler-locking on", $"break *0x{mfmsr:x}", "continue", "x/i $pc", "stepi", "p/x $r3", "p/x $msr", "p/x $r3 == $msr");
        Assert.Contains($"hit Breakpoint 1, 0x{mfmsr:x16}", output);
        Assert.Contains("mfmsr", output);
        var values = Regex.Matches(output, @"^\$\d+ = (0x[0-9a-f]+|\d+)$", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.True(values.Count == 3, output);
        Assert.Equal(values[1], values[0]);                                 // r3 == the MSR gdb reads
        ulong msr = Convert.ToUInt64(values[0], 16);
        Assert.Equal(0x30UL, msr & 0x30);                                   // IR|DR: the guest's relocated mode
        Assert.Equal(0UL, msr & 0x400);                                     // no SE: stepping left no trace in the MSR
    }

    [Fact]
    public async Task Stepping_rfid_lands_on_its_target()
    {
        var vm = fx.NewVm("demo");
        var dis = Disassembly.Of(GdbFixture.GuestElf("demo"), littleEndian: true);
        ulong rfid = dis.Instructions.Where(i => i.Key > dis.Symbols["go_virtual"] && i.Value == "rfid").Min(i => i.Key);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "set scheduler-locking on", $"break *0x{rfid:x}", "continue", "x/i $pc", "stepi", "p/x $pc", "p/x $msr");
        Assert.Contains($"hit Breakpoint 1, 0x{rfid:x16}", output);
        Assert.Contains($"= 0x{0xc000000000000000 + dis.Symbols["relocated"]:x}", output); // SRR0 of go_virtual
    }

    [Fact]
    public async Task Stepping_sc_lands_at_the_system_call_handler()
    {
        var vm = fx.NewVm("demo");
        var dis = Disassembly.Of(GdbFixture.GuestElf("demo"), littleEndian: true);
        ulong sc = 0xc000000000000000 + dis.Instructions.Where(i => i.Key > dis.Symbols["worker_syscall"] && i.Value == "sc").Min(i => i.Key);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            $"break *0x{sc:x}", "continue", "delete", "set scheduler-locking step", "stepi", "p/x $pc", "p/x $srr0");
        Assert.Matches($@"hit Breakpoint 1, 0x{sc:x16}", output);
        Assert.Contains($"= 0x{0xc000000000000000 + dis.Symbols["syscall_handler"]:x}", output); // AIL=3 vector 0xC000…4C00
        Assert.Contains($"= 0x{sc + 4:x}", output);                                            // SRR0: the instruction after sc
    }
}
