using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb's source-level <c>next</c> and <c>step</c> through the bridge, which offers range stepping (<c>vCont;r</c>): a
/// line of several instructions is one resume. The guest is assembly with a DWARF line table (GNU as, <c>.loc</c>).
/// </summary>
[Collection("gdb")]
public sealed class GdbLineSteppingTests(GdbFixture fx)
{
    /// <summary>_start sets a stack and calls main (gdb does not unwind past the entry function); main's lines 10–12 hold
    /// 3, 2 and 1 instructions, line 11 calls square. Addresses: main 0x500c (line 10 at 0x5018, 11 at 0x5024, 12 at
    /// 0x502c), square 0x5040.</summary>
    private const string Source = """
            .file 1 "lines.c"
            .org 0x5000
            .globl _start
            .type _start, @function
        _start:
            .loc 1 20 0
            lis 1, 0x10
            bl main
            .loc 1 21 0
        spin:
            b spin
            .size _start, .-_start

            .type main, @function
        main:
            .loc 1 9 0
            mflr 0
            std 0, 16(1)
            stdu 1, -32(1)
            .loc 1 10 0
            li 5, 1
            addi 5, 5, 2
            addi 5, 5, 3
            .loc 1 11 0
            mulli 6, 5, 7
            bl square
            .loc 1 12 0
            addi 7, 7, 1
            .loc 1 13 0
            addi 1, 1, 32
            ld 0, 16(1)
            mtlr 0
            blr
            .size main, .-main

            .type square, @function
        square:
            .loc 1 3 0
            mullw 6, 6, 6
            addi 6, 6, 1
            .loc 1 4 0
            blr
            .size square, .-square
        """;

    private static readonly Regex Sent = new(@"Sending packet: \$(vCont;[^#]*)#");

    private async Task<(string Output, List<string> Resumes)> GdbAsync(params string[] commands)
    {
        string elf = GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0, debugInfo: true);
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = elf, Vcpus = 2, MemorySize = 16 << 20, VmId = $"lines-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, elf, littleEndian: true,
            ["set scheduler-locking step", "set debug remote 1", .. commands]);
        var resumes = Sent.Matches(output).Select(m => m.Groups[1].Value).Where(p => p != "vCont?").ToList();
        return (output, resumes);
    }

    /// <summary>Resume packets after the first continue (the ones the stepping commands sent).</summary>
    private static List<string> AfterContinue(List<string> resumes) => resumes.SkipWhile(r => !r.StartsWith("vCont;c", StringComparison.Ordinal)).Skip(1).ToList();

    [Fact]
    public async Task Next_runs_a_line_of_several_instructions_in_one_range_step()
    {
        var (output, resumes) = await GdbAsync("break *0x5018", "continue", "next", "p/x $pc", "p $r5");
        Assert.True(output.Contains("= 0x5024"), output); // line 11
        Assert.Contains("= 6", output);                    // 1 + 2 + 3: every instruction of line 10 ran
        var stepping = AfterContinue(resumes);
        // Three instructions in one vCont;r (gdb may first step off the breakpoint at main with one s).
        Assert.True(stepping.Count <= 2 && stepping[^1].StartsWith("vCont;r", StringComparison.Ordinal) && stepping[^1].Contains(",5024:"),
            $"resumes: {string.Join(" | ", stepping)}\n{output}");
    }

    [Fact]
    public async Task Next_over_a_call_returns_to_the_next_line_and_the_call_ran()
    {
        var (output, resumes) = await GdbAsync("break *0x5018", "continue", "next", "next", "p/x $pc", "p $r6");
        Assert.True(output.Contains("= 0x502c"), output); // line 12
        Assert.Contains($"= {42 * 42 + 1}", output);       // square ran: (6 * 7)^2 + 1
        Assert.Contains(AfterContinue(resumes), r => r.StartsWith("vCont;r5024,502c", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Step_into_a_call_stops_at_the_first_line_of_the_callee()
    {
        var (output, _) = await GdbAsync("break *0x5018", "continue", "next", "step", "p/x $pc", "bt");
        Assert.True(output.Contains("= 0x5040"), output); // square
        Assert.Matches(@"#0\s+square", output);
        Assert.Matches(@"#1\s+0x0*502c in main", output);
    }

    [Fact]
    public async Task A_breakpoint_inside_the_line_stops_the_range_step_there()
    {
        var (output, _) = await GdbAsync("break *0x5018", "continue", "break *0x5020", "next", "p/x $pc", "p $r5");
        Assert.Contains("Breakpoint 2, ", output);
        Assert.True(output.Contains("= 0x5020"), output);
        Assert.Contains("= 3", output);                    // li and the first addi only
    }
}
