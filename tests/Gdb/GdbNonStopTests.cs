using System.Text.RegularExpressions;
using ActorStep.Api.V1;
using ActorStep.Tests.Support;
using Xunit.Abstractions;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb's non-stop mode (<c>set non-stop on</c>) through the bridge, with an unmodified gdb-multiarch driven by its machine
/// interface (so a test can wait for the stops gdb reports while other threads run). The guest: vcpu 0 spins forever counting
/// in r5; the other vcpus count in r6 and pass <c>mark</c> once per round.
/// </summary>
[Collection("gdb")]
public sealed class GdbNonStopTests(GdbFixture fx, ITestOutputHelper log)
{
    private const string Source = """
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 0
            bne worker
            .globl spin
        spin:
            addi 5, 5, 1
            b spin
            .globl worker
        worker:
            addi 6, 6, 1
            .globl mark
        mark:
            addi 7, 7, 1
            b worker
        """;

    private static readonly string Elf = GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);
    private static readonly ulong Spin = GuestAssembler.Build(Source, textAddress: 0).Symbol("spin");
    private static readonly ulong Mark = GuestAssembler.Build(Source, textAddress: 0).Symbol("mark");
    private static readonly ulong Worker = GuestAssembler.Build(Source, textAddress: 0).Symbol("worker");

    private Vm NewVm(uint vcpus = 3) =>
        fx.Vms.CreateVm(new CreateVmRequest { ElfPath = Elf, Vcpus = vcpus, MemorySize = 16 << 20, VmId = $"nonstop-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);

    /// <summary>gdb in non-stop mode connected to the VM's bridge, once it has reported every thread stopped.</summary>
    private static async Task<GdbMi> ConnectNonStopAsync(ActorStep.Host.Gdb.GdbBridge bridge, int threads, bool nonStop = true)
    {
        var gdb = new GdbMi(Elf);
        try
        {
            foreach (var setting in new[] { "set architecture powerpc:common64", "set endian little", "set pagination off", "set confirm off", 
                         $"set non-stop {(nonStop ? "on" : "off")}" })
                await gdb.RunAsync(setting);
            int from = gdb.LineCount;
            await gdb.RunAsync($"-target-select remote {bridge.Endpoint.Address}:{bridge.Endpoint.Port}");
            if (nonStop) await gdb.WaitForStopsAsync(from, [.. Enumerable.Range(1, threads)]);
            return gdb;
        }
        catch
        {
            gdb.Dispose();
            throw;
        }
    }

    private static ulong Value(string printed) =>
        Regex.Match(printed, @"= (0x[0-9a-f]+|\d+)") is { Success: true } m
            ? m.Groups[1].Value.StartsWith("0x") ? Convert.ToUInt64(m.Groups[1].Value, 16) : ulong.Parse(m.Groups[1].Value)
            : throw new FormatException($"no value in '{printed}'");

    private static int Running(string infoThreads) => Regex.Matches(infoThreads, @"\(running\)$", RegexOptions.Multiline).Count;

    [Fact]
    public async Task Continue_all_in_the_background_runs_every_thread_and_interrupt_all_stops_each()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3);
        try
        {
            Assert.Equal(0, Running(await gdb.RunAsync("info threads")));
            await gdb.RunAsync("continue -a &");
            Assert.Equal(3, Running(await gdb.RunAsync("info threads")));
            int from = gdb.LineCount;
            await gdb.RunAsync("interrupt -a");
            await gdb.WaitForStopsAsync(from, 1, 2, 3);
            Assert.Equal(0, Running(await gdb.RunAsync("info threads")));
            Assert.True(Value(await gdb.RunAsync("thread apply 1 p $r5")) > 0, "vcpu 0 spun");
            Assert.True(Value(await gdb.RunAsync("thread apply 2 p $r6")) > 0, "vcpu 1 worked");
        }
        finally { log.WriteLine(gdb.Transcript); }
    }

    [Fact]
    public async Task Interrupt_stops_the_current_thread_while_the_others_keep_running()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3);
        try
        {
            await gdb.RunAsync("continue -a &");
            await gdb.RunAsync("thread 2");
            int from = gdb.LineCount;
            await gdb.RunAsync("interrupt");
            await gdb.WaitForStopsAsync(from, 2);
            var threads = await gdb.RunAsync("info threads");
            Assert.Equal(2, Running(threads));
            // Stopped where it was: in its loop, or still at _start when the interrupt came before its first turn on the vcpu
            // workers (seen once in a full run on a loaded machine).
            Assert.Matches(@"\* 2\s+Thread 1\.2 ""vcpu1"" \(stopped at 0x[0-9a-f]+\) 0x[0-9a-f]+ in (_start|worker|mark) \(\)", threads);
            ulong stoppedCount = Value(await gdb.RunAsync("p $r6"));
            // Thread 3 ran on while thread 2 stood still: it has counted further.
            await Task.Delay(200);
            await gdb.RunAsync("thread 3");
            from = gdb.LineCount;
            await gdb.RunAsync("interrupt");
            await gdb.WaitForStopsAsync(from, 3);
            Assert.True(Value(await gdb.RunAsync("p $r6")) > stoppedCount, "thread 3 kept running");
            Assert.Equal(stoppedCount, Value(await gdb.RunAsync("thread apply 2 p $r6")));
            Assert.Equal(1, Running(await gdb.RunAsync("info threads")));
        }
        finally { log.WriteLine(gdb.Transcript); }
    }

    [Fact]
    public async Task Stepi_on_thread_2_steps_one_instruction_each_while_thread_1_spins()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3);
        try
        {
            await gdb.RunAsync("thread 1");
            await gdb.RunAsync("continue &"); // non-stop: only the current thread
            await gdb.RunAsync("thread 2");
            var pcs = new List<ulong>();
            for (int i = 0; i < 4; i++)
            {
                int from = gdb.LineCount;
                await gdb.RunAsync("stepi");
                await gdb.WaitForStopsAsync(from, 2);
                pcs.Add(Value(await gdb.RunAsync("p/x $pc")));
            }
            // _start: cmpdi, bne worker (taken: r3 = 1), then worker's addi, mark's addi.
            Assert.Equal([0x1004UL, Worker, Mark, Mark + 4], pcs);
            var threads = await gdb.RunAsync("info threads");
            Assert.Matches(@"  1\s+Thread 1\.1 ""vcpu0"" \(running\)\s+\(running\)", threads);
            Assert.Matches(@"  3\s+Thread 1\.3 ""vcpu2"" \(stopped at 0x1000\)", threads);
            await gdb.RunAsync("thread 1");
            int stop = gdb.LineCount;
            await gdb.RunAsync("interrupt");
            await gdb.WaitForStopsAsync(stop, 1);
            Assert.True(Value(await gdb.RunAsync("p $r5")) > 0, "thread 1 spun meanwhile");
            Assert.InRange(Value(await gdb.RunAsync("p/x $pc")), Spin, Spin + 4);
            Assert.Equal(0x1000UL, Value(await gdb.RunAsync("thread apply 3 p/x $pc")));
        }
        finally { log.WriteLine(gdb.Transcript); }
    }

    [Fact]
    public async Task A_breakpoint_hit_by_one_thread_is_reported_while_another_is_stepped()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3);
        try
        {
            await gdb.RunAsync($"break *0x{Mark:x}");
            await gdb.RunAsync("thread 1");
            await StepAsync(gdb, 1); // thread 1 to spin
            await gdb.RunAsync("thread 3");
            int hit = gdb.LineCount;
            await gdb.RunAsync("continue &");
            await gdb.RunAsync("thread 1");
            var pcs = new List<ulong>();
            for (int i = 0; i < 6; i++)
            {
                await StepAsync(gdb, 1);
                pcs.Add(Value(await gdb.RunAsync("p/x $pc")));
            }
            var stop = await gdb.WaitForAsync(new Regex(@"^\*stopped,reason=""breakpoint-hit"".*thread-id=""3"""), hit);
            Assert.Contains($"addr=\"0x{Mark:x16}\"", stop);
            // spin: addi, b spin — stepping alternates between them, exactly one instruction a step.
            Assert.Equal([Spin, Spin + 4, Spin, Spin + 4, Spin, Spin + 4], pcs);
            Assert.Equal(0x1000UL, Value(await gdb.RunAsync("thread apply 2 p/x $pc"))); // never resumed
            Assert.Equal(0, Running(await gdb.RunAsync("info threads")));
        }
        finally { log.WriteLine(gdb.Transcript); }
    }

    private static async Task StepAsync(GdbMi gdb, int thread)
    {
        int from = gdb.LineCount;
        await gdb.RunAsync("stepi");
        await gdb.WaitForStopsAsync(from, thread);
    }

    [Fact]
    public async Task With_non_stop_off_interrupt_stops_every_thread_as_before()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3, nonStop: false);
        try
        {
            // An interrupt right after the continue may come before thread 2 had a turn on the vcpu workers: a few rounds.
            for (int round = 1; ; round++)
            {
                await gdb.RunAsync("continue &");
                int from = gdb.LineCount;
                await gdb.RunAsync("interrupt");
                var stop = await gdb.WaitForAsync(new Regex(@"^\*stopped,"), from);
                Assert.Contains("stopped-threads=\"all\"", stop);
                Assert.Equal(0, Running(await gdb.RunAsync("info threads")));
                if (Value(await gdb.RunAsync("thread apply 2 p $r6")) > 0) break;
                Assert.True(round < 20, "thread 2 did not run in 20 continues");
            }
        }
        finally { log.WriteLine(gdb.Transcript); }
    }

    [Fact]
    public async Task Detach_while_threads_run_leaves_the_VM_halted_as_in_all_stop()
    {
        var vm = NewVm();
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        using var gdb = await ConnectNonStopAsync(bridge, threads: 3);
        try
        {
            await gdb.RunAsync($"break *0x{Spin:x}");
            await gdb.RunAsync("thread 2");
            await gdb.RunAsync("continue &");
            await gdb.RunAsync("thread 3");
            await gdb.RunAsync("continue &");
            Assert.Equal(2, Running(await gdb.RunAsync("info threads")));
            await gdb.RunAsync("detach");
            var after = fx.GetVm(vm.VmId);
            Assert.False(after.Running);
            Assert.All(after.Vcpus, v => Assert.Equal(VcpuState.Stopped, v.State));
            Assert.Equal(0u, after.BreakpointCount); // gdb's breakpoint went with it
        }
        finally { log.WriteLine(gdb.Transcript); }
    }
}
