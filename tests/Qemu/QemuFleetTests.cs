using ActorStep.Tests.Support;
using System.Net;
using ActorStep.Api.V1;
using Grpc.Core;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// Fleet operations reach QEMU VMs as they reach simulated ones: two QEMUs (four powernv threads each in one lwarx/stwcx. loop)
/// created through gRPC with a label, then a breakpoint in all, a continue of all, a register snapshot of all, a halt of all.
/// </summary>
[Collection(QemuCollection.Name)]
public sealed class QemuFleetTests() : ServerTest(QemuLaunchingServer.StartAsync)
{
    private readonly PowerNvGuest _guest = new("lock-be.s");

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _guest.Dispose();
    }

    [Fact]
    public async Task FleetOperationsBreakContinueSnapshotAndHaltEveryQemuVmTheSelectorNames()
    {
        var vms = new Vms.VmsClient(Channel);
        var fleet = new Api.V1.Fleet.FleetClient(Channel);
        foreach (var id in new[] { "qemu-a", "qemu-b" })
        {
            var launch = new QemuLaunch();
            launch.Arguments.AddRange(_guest.Arguments(threads: 4));
            var request = new CreateVmRequest { Qemu = new QemuSource { Launch = launch }, VmId = id };
            request.Labels["fleet"] = "qemu";
            var vm = await vms.CreateVmAsync(request, deadline: DateTime.UtcNow.AddSeconds(60));
            Assert.Equal(4u, vm.VcpuCount);
        }
        var selector = new FleetRequest { TimeoutMs = 20_000 };
        selector.LabelSelector["fleet"] = "qemu";
        async Task<List<FleetResult>> All(AsyncServerStreamingCall<FleetResult> call)
        {
            var results = new List<FleetResult>();
            await foreach (var r in call.ResponseStream.ReadAllAsync()) results.Add(r);
            call.Dispose();
            return results.OrderBy(r => r.VmId).ToList();
        }

        var planted = await All(fleet.InsertBreakpointAll(new FleetRequest(selector) { Address = 0x20 }));
        Assert.Equal(["qemu-a", "qemu-b"], planted.Select(r => r.VmId));
        Assert.All(planted, r => Assert.True(r.OutcomeCase == FleetResult.OutcomeOneofCase.Breakpoint && r.Breakpoint.Changed, $"{r}"));

        var resumed = await All(fleet.ContinueAll(selector));
        Assert.All(resumed, r => Assert.Equal(FleetResult.OutcomeOneofCase.Resumed, r.OutcomeCase));
        // Each VM stops at the breakpoint (every thread runs through 0x20 in its loop).
        foreach (var id in new[] { "qemu-a", "qemu-b" })
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while ((await vms.GetVmAsync(new GetVmRequest { VmId = id })).Running)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{id} did not stop at its breakpoint");
                await Task.Delay(50);
            }
        }
        var snapshot = new FleetRequest(selector);
        snapshot.Registers.Add(new RegisterRef { Name = "nip" });
        snapshot.Registers.Add(new RegisterRef { Name = "r4" });
        var registers = await All(fleet.SnapshotRegisters(snapshot));
        foreach (var r in registers)
        {
            Assert.Equal(FleetResult.OutcomeOneofCase.Registers, r.OutcomeCase);
            Assert.Equal(4, r.Registers.Vcpus.Count);
            // The stopped thread is at the breakpoint, the others where the stop caught them (0x10..0x24).
            Assert.Contains(r.Registers.Vcpus, v => v.Registers.Single(x => x.Name == "nip").Value == 0x20);
            Assert.All(r.Registers.Vcpus, v => Assert.InRange(v.Registers.Single(x => x.Name == "nip").Value, 0x10UL, 0x24UL));
        }

        var removed = await All(fleet.RemoveBreakpointAll(new FleetRequest(selector) { Address = 0x20 }));
        Assert.All(removed, r => Assert.True(r.OutcomeCase == FleetResult.OutcomeOneofCase.Breakpoint && r.Breakpoint.Changed, $"{r}"));
        Assert.All(await All(fleet.ContinueAll(selector)), r => Assert.Equal(FleetResult.OutcomeOneofCase.Resumed, r.OutcomeCase));
        var halted = await All(fleet.HaltAll(selector));
        Assert.Equal(["qemu-a", "qemu-b"], halted.Select(r => r.VmId));
        Assert.All(halted, r => Assert.True(r.OutcomeCase == FleetResult.OutcomeOneofCase.Halted, $"{r}"));
        foreach (var id in new[] { "qemu-a", "qemu-b" })
        {
            Assert.False((await vms.GetVmAsync(new GetVmRequest { VmId = id })).Running);
            await vms.DeleteVmAsync(new DeleteVmRequest { VmId = id });
        }
    }
}
