using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Machine;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// Issue 13's gdb test: gdb-multiarch with Debian's vmlinux and its symbols against the bridge <c>serve --gdb</c> starts, on the
/// kernel booting on 4 vcpus under the debugger — through the MMU switch-on in real mode, to start_kernel with a backtrace,
/// to the secondaries' start, and a breakpoint in <c>__schedule</c> hit on every vcpu. One boot, one gdb session.
/// </summary>
[Collection("gdb")]
public sealed class GdbKernelTests(GdbFixture fx)
{
    private static readonly Regex ObjdumpLine = new(@"^\s*([0-9a-f]+):\t(?:[0-9a-f]{2} ){4}\s*\t(.*)$", RegexOptions.Multiline);

    /// <summary>binutils' disassembly of [start, end) of the vmlinux: address → instruction text.</summary>
    private static Dictionary<ulong, string> Objdump(string vmlinux, ulong start, ulong end) =>
        ObjdumpLine.Matches(GuestAssembler.Run(GuestAssembler.Tool(true, "objdump"), $"-d --start-address=0x{start:x} --stop-address=0x{end:x} {vmlinux}"))
            .ToDictionary(m => Convert.ToUInt64(m.Groups[1].Value, 16), m => Disassembly.Normalize(m.Groups[2].Value));

    private static ulong Hex(string output, string pattern)
    {
        var m = Regex.Match(output, pattern, RegexOptions.Multiline);
        Assert.True(m.Success, $"no match for {pattern} in:\n{output}");
        return Convert.ToUInt64(m.Groups[1].Value, 16);
    }

    [Fact]
    public async Task Gdb_with_the_vmlinux_steps_through_the_MMU_switch_on_breaks_at_start_kernel_and_in_schedule_on_every_vcpu()
    {
        const ulong IrDr = 0x30, Hv = 0x1000000000000000;
        var assets = LinuxAssets.Get();
        var kernel = ElfImage.Load(assets.Vmlinux).Code;
        // head_64.S: start_here_multiplatform, still in real mode, ends by rfid to start_here_common with the kernel's MSR
        // (IR and DR on). It runs at its real address: the linear-map address with EA bits 0:3 clear.
        var multiplatform = kernel.Named("start_here_multiplatform")!;
        ulong rfid = Objdump(assets.Vmlinux, multiplatform.Address, multiplatform.End).Single(i => i.Value == "rfid").Key;
        ulong rfidReal = rfid & 0x0FFFFFFFFFFFFFFF;
        var common = kernel.Named("start_here_common")!;
        string commonFirst = Objdump(assets.Vmlinux, common.Address, common.Address + 4)[common.Address];

        var vm = fx.Vms.CreateVm(new CreateVmRequest
        {
            Linux = new LinuxKernel { KernelPath = assets.Vmlinux },
            Vcpus = 4,
            VmId = "gdb-kernel",
        }, deadline: GdbFixture.Deadline);
        try
        {
            await using var bridge = await fx.StartBridgeAsync(vm.VmId);
            var schedule = Enumerable.Range(1, 4).Select(t => $"tbreak __schedule thread {t}");
            using var gdb = new GdbProcess(bridge.Endpoint, assets.Vmlinux, littleEndian: true,
            [
                $"break *0x{rfidReal:x}", "continue", "x/i $pc", "p/x $msr", "p/x $srr0", "p/x $srr1",
                "stepi", "p/x $pc", "p/x $msr", "x/i $pc", "info symbol $pc", "delete",
                "break start_kernel", "continue", "bt", "monitor vm", "delete",
                "break smp_cpus_done", "continue", "info threads", "delete",
                .. schedule, "continue", "continue", "continue", "continue", "delete",
            ]);
            string output = await gdb.OutputAsync(TimeSpan.FromSeconds(240));

            // The MMU switch-on: at the rfid in real mode; one stepi lands where the ISA's rfid says (NIP = SRR0 & ~3, MSR from
            // SRR1 but HV, which a guest's rfid cannot set), and gdb reads the translated code there as the file has it.
            Assert.Matches($@"hit Breakpoint 1, 0x0*{rfidReal:x} in", output);
            Assert.Matches($@"=> 0x0*{rfidReal:x}.*:\s+rfid", output);
            ulong msrBefore = Hex(output, @"^\$1 = (0x[0-9a-f]+)$"), srr0 = Hex(output, @"^\$2 = (0x[0-9a-f]+)$"), srr1 = Hex(output, @"^\$3 = (0x[0-9a-f]+)$");
            Assert.Equal(0UL, msrBefore & IrDr);
            Assert.Equal(IrDr, srr1 & IrDr);
            Assert.Equal(common.Address, srr0 & ~3UL);
            Assert.Equal(srr0 & ~3UL, Hex(output, @"^\$4 = (0x[0-9a-f]+)$"));
            Assert.Equal(srr1 & ~Hv, Hex(output, @"^\$5 = (0x[0-9a-f]+)$"));
            Assert.Matches($@"=> 0x{common.Address:x} <start_here_common>:\s+{Regex.Escape(commonFirst).Replace(@"\ ", @"\s+")}", output);
            Assert.Contains("start_here_common in section .text", output);

            // start_kernel (after its prologue, as gdb places `break start_kernel`), called from start_here_common; the server
            // names the stop as a kernel developer reads it.
            ulong atStartKernel = Hex(output, @"^Breakpoint 2 at (0x[0-9a-f]+)");
            Assert.Matches($@"hit Breakpoint 2, 0x0*{atStartKernel:x} in start_kernel \(\)", output);
            Assert.Matches(@"#0 +0x[0-9a-f]+ in start_kernel \(\)\n#1 +0x[0-9a-f]+ in start_here_common \(\)", output);
            Assert.Contains($"vcpu 0 (thread 1): stopped at 0x{atStartKernel:x} <start_kernel+0x{atStartKernel - kernel.Named("start_kernel")!.Address:x}>", output);

            // smp_cpus_done: every secondary was started by RTAS and runs kernel code (held, a vcpu waits at 0xc000000000000000).
            Assert.Contains("hit Breakpoint 3", output);
            for (int thread = 2; thread <= 4; thread++)
            {
                ulong pc = Hex(output, $@"^\s+{thread}\s+Thread 1\.{thread} ""vcpu{thread - 1}"" \(stopped at (0x[0-9a-f]+)\) 0x[0-9a-f]+ in \w+ \(\)$");
                Assert.True(pc > Hypervisor.SymbolIndex.KernelBase, $"vcpu {thread - 1} never started: {output}");
            }

            // __schedule on every vcpu: a temporary breakpoint per thread, each hit by its own thread.
            for (int thread = 1; thread <= 4; thread++)
                Assert.Matches($@"Thread {thread} ""vcpu{thread - 1}"" hit Temporary breakpoint \d+, 0x[0-9a-f]+ in __schedule \(\)", output);
            Assert.DoesNotContain("SIGTRAP", output);
            Assert.Equal(0u, fx.GetVm(vm.VmId).BreakpointCount);
        }
        finally
        {
            fx.Vms.DeleteVm(new DeleteVmRequest { VmId = vm.VmId }, deadline: GdbFixture.Deadline);
        }
    }
}
