using System.Text.RegularExpressions;
using ActorStep.Api.V1;

namespace ActorStep.Tests.Gdb;

/// <summary>Vcpus as gdb threads, breakpoints, and gdb's scheduler-locking modes as the vCont packets say them.</summary>
[Collection("gdb")]
public sealed class GdbThreadsTests(GdbFixture fx)
{
    private const ulong Kernel = 0xc000000000000000;
    private static readonly Disassembly Demo = Disassembly.Of(GdbFixture.GuestElf("demo"), littleEndian: true);

    private static List<ulong> Values(string output) =>
        Regex.Matches(output, @"^\$\d+ = (0x[0-9a-f]+)$", RegexOptions.Multiline).Select(m => Convert.ToUInt64(m.Groups[1].Value, 16)).ToList();

    [Fact]
    public async Task Info_threads_lists_every_vcpu_and_thread_N_switches_to_it()
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true, "info threads", "thread 3", "p/x $r3", "thread 4", "p/x $r3");
        for (int vcpu = 0; vcpu < 4; vcpu++) Assert.Matches($@"Thread 1\.{vcpu + 1} ""vcpu{vcpu}"" \(stopped at 0x5000\)", output);
        Assert.Contains("[Switching to thread 3 (Thread 1.3)]", output);
        Assert.Equal([2UL, 3UL], Values(output)); // r3 = the vcpu's index at entry
    }

    [Fact]
    public async Task A_software_breakpoint_stops_continue_there_and_leaves_no_trace()
    {
        var vm = fx.NewVm("demo");
        ulong critical = Kernel + Demo.Symbols["critical_section"];
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            $"break *0x{critical:x}", "continue", "p/x $pc", "x/i $pc", "continue", "p/x $pc", "delete", "detach");
        Assert.Equal(2, Regex.Matches(output, $@"hit Breakpoint 1, 0x{critical:x16}").Count);
        Assert.Equal([critical, critical], Values(output));
        Assert.Matches(@"=> 0x[0-9a-f]+:\s+ld\s+r4,0\(r27\)", output); // the guest's word, not the trap
        Assert.Equal(0u, fx.GetVm(vm.VmId).BreakpointCount);
    }

    [Fact]
    public async Task Scheduler_locking_off_lets_other_vcpus_run_while_one_steps()
    {
        var vm = fx.NewVm("demo");
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "set scheduler-locking off", "stepi", "stepi", "stepi", "p/x $pc", "thread 2", "p/x $pc", "thread 3", "p/x $pc");
        var pcs = Values(output);
        Assert.True(pcs.Count == 3, output);
        Assert.NotEqual(0x5000UL, pcs[1]);
        Assert.NotEqual(0x5000UL, pcs[2]);
    }

    [Fact]
    public async Task Scheduler_locking_step_keeps_other_vcpus_during_a_step_but_not_a_continue()
    {
        var vm = fx.NewVm("demo");
        ulong critical = Kernel + Demo.Symbols["critical_section"];
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "set scheduler-locking step", "stepi", "stepi", "stepi", "thread 2", "p/x $pc", "thread 1",
            $"break *0x{critical:x}", "continue", "delete", "thread 3", "p/x $pc");
        var pcs = Values(output);
        Assert.True(pcs.Count == 2, output);
        Assert.Equal(0x5000UL, pcs[0]);       // vcpu 1 stayed at the entry while vcpu 0 stepped
        Assert.NotEqual(0x5000UL, pcs[1]);    // every vcpu ran during the continue
    }

    [Fact]
    public async Task Scheduler_locking_on_keeps_other_vcpus_during_a_continue()
    {
        var vm = fx.NewVm("demo");
        ulong goVirtual = Demo.Symbols["go_virtual"];
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true,
            "set scheduler-locking on", $"break *0x{goVirtual:x}", "continue", "stepi", "delete", "p/x $pc", "thread 2", "p/x $pc", "thread 4", "p/x $pc");
        Assert.Contains($"hit Breakpoint 1, 0x{goVirtual:x16}", output);
        var pcs = Values(output);
        Assert.True(pcs.Count == 3, output);
        Assert.Equal(goVirtual + 4, pcs[0]);
        Assert.Equal(0x5000UL, pcs[1]);
        Assert.Equal(0x5000UL, pcs[2]);
    }

    [Fact]
    public async Task X_i_at_the_trace_handler_shows_the_guests_instruction_while_another_vcpu_steps()
    {
        var vm = fx.NewVm("demo");
        ulong trace = Kernel + Demo.Symbols["trace_handler"];
        string expected = Demo.Instructions[Demo.Symbols["trace_handler"]];
        // vcpu 1 single-steps traced_function under MSR[SE] every 4 iterations: its Trace interrupts land at trace_handler.
        // A million host steps take about a second now, which a loaded machine can spend starting gdb: an attempt whose
        // step ended before the reads did proves nothing about "in flight", so it is repeated (its reads are still checked).
        for (int attempt = 1; ; attempt++)
        {
            using var cts = new CancellationTokenSource();
            var stepping = fx.Run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 1, StepCount = 1_000_000, SchedulerLocking = SchedulerLocking.Off },
                cancellationToken: cts.Token).ResponseAsync;
            try
            {
                var started = DateTime.UtcNow;
                while (!fx.GetVm(vm.VmId).Running && !stepping.IsCompleted)
                {
                    Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the step never started");
                    await Task.Delay(5);
                }
                if (stepping.IsCompleted)
                {
                    Assert.True(attempt < 5, "the step always ended before gdb could attach");
                    continue;
                }
                await using var bridge = await fx.StartBridgeAsync(vm.VmId);
                var reads = Enumerable.Repeat($"x/i 0x{trace:x}", 10).ToArray();
                string output = await GdbProcess.RunAsync(bridge.Endpoint, null, littleEndian: true, reads);
                var shown = Regex.Matches(output, @"^\s*0x[0-9a-f]+:\s+(.*)$", RegexOptions.Multiline).Select(m => Disassembly.Normalize(m.Groups[1].Value)).ToList();
                Assert.True(shown.Count == 10, output);
                Assert.All(shown, s => Assert.Equal(expected, s));
                if (fx.GetVm(vm.VmId).Running) return; // the step was still in flight during every read
                Assert.True(attempt < 5, "the step always ended before gdb's reads did");
            }
            finally
            {
                cts.Cancel();
                try { await stepping; } catch (global::Grpc.Core.RpcException) { }
            }
        }
    }
}
