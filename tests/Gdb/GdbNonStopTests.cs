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

    private static int Running(string infoThreads) => Regex.Matches(infoThreads, @"\(running\)").Count;

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
}
