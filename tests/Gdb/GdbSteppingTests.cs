using System.Globalization;
using System.Text.RegularExpressions;
using ActorStep.Api.V1;

namespace ActorStep.Tests.Gdb;

/// <summary>An unmodified gdb-multiarch stepping guests through the bridge, checked against binutils' objdump.</summary>
[Collection("gdb")]
public sealed class GdbSteppingTests(GdbFixture fx)
{
    private static readonly Regex Shown = new(@"^(?:\d+: x/i \$pc\n)?=> 0x([0-9a-f]+)(?: <[^>]*>)?:\s+(.*)$", RegexOptions.Multiline);

    /// <summary>Steps <paramref name="steps"/> instructions of thread 1 with <c>display/i $pc</c>; returns (pc, text) per stop.</summary>
    private async Task<List<(ulong Pc, string Text)>> StepAsync(string guest, uint vcpus, bool littleEndian, int steps)
    {
        var vm = fx.NewVm(guest, vcpus);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        var commands = new List<string> { "set scheduler-locking step", "x/i $pc" };
        for (int i = 0; i < steps; i++) commands.AddRange(["stepi", "x/i $pc"]);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, GdbFixture.GuestElf(guest), littleEndian, commands.ToArray());
        var shown = Shown.Matches(output.Replace("\r", ""))
            .Select(m => (ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber), Disassembly.Normalize(m.Groups[2].Value))).ToList();
        Assert.True(shown.Count == steps + 1, $"expected {steps + 1} instructions shown:\n{output}");
        return shown;
    }

    /// <summary>Each PC follows from the previous instruction as objdump decodes it, and gdb shows objdump's text.</summary>
    private static void AssertFollowsDisassembly(Disassembly dis, List<(ulong Pc, string Text)> shown, ulong systemCallVector)
    {
        static string Plain(string s) => s.Replace("0x", "");
        for (int i = 0; i < shown.Count; i++)
        {
            var (pc, text) = shown[i];
            Assert.True(dis.Instructions.TryGetValue(pc, out var expected), $"step {i}: 0x{pc:x} is not an instruction in the image");
            Assert.Equal(Plain(expected), Plain(text));
            if (i == 0) continue;
            ulong prev = shown[i - 1].Pc;
            var prevText = dis.Instructions[prev];
            string mnemonic = prevText.Split(' ')[0];
            if (prevText == "sc") Assert.Equal(systemCallVector, pc);
            else if (mnemonic == "rfid" || mnemonic.EndsWith("lr", StringComparison.Ordinal) || mnemonic.EndsWith("ctr", StringComparison.Ordinal)) continue;
            else if (mnemonic.StartsWith('b'))
            {
                ulong target = ulong.Parse(prevText.Split(' ', ',')[^1], NumberStyles.HexNumber);
                Assert.True(pc == prev + 4 || pc == target, $"step {i}: {prevText} at 0x{prev:x} went to 0x{pc:x}");
            }
            else Assert.True(pc == prev + 4, $"step {i}: {prevText} at 0x{prev:x} went to 0x{pc:x}, not the next instruction");
        }
    }

    [Fact]
    public async Task Stepi_over_the_demo_guest_follows_its_disassembly()
    {
        var shown = await StepAsync("demo", 4, littleEndian: true, steps: 28);
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
