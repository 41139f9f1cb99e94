using ActorStep.Tests.Support;
using System.Net;
using ActorStep.Api.V1;
using ActorStep.Host.Gdb;
using ActorStep.Tests.Gdb;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorStep.Tests.Qemu;

/// <summary>A QEMU VM runs only as a whole (its gdbstub is all-stop): the bridge does not offer gdb's non-stop mode for it.</summary>
[Collection(QemuCollection.Name)]
public sealed class QemuNonStopTests() : ServerTest(QemuLaunchingServer.StartAsync)
{


    [Fact]
    public async Task Gdb_asking_for_non_stop_on_a_QEMU_VM_is_told_the_remote_does_not_support_it()
    {
        using var guest = new PowerNvGuest("count-be.s");
        var launch = new QemuLaunch();
        launch.Arguments.AddRange(guest.Arguments(threads: 2));
        var vms = new Vms.VmsClient(Channel);
        var vm = await vms.CreateVmAsync(new CreateVmRequest { Qemu = new QemuSource { Launch = launch }, VmId = "all-stop" },
            deadline: DateTime.UtcNow.AddSeconds(60));
        Assert.True(vm.Capabilities.AllStop);
        try
        {
            await using var bridge = await GdbBridge.StartAsync(Channel, vm.VmId, new IPEndPoint(IPAddress.Loopback, 0), NullLogger.Instance);
            using var refused = new GdbProcess(bridge.Endpoint, null, littleEndian: false, ["info threads"], beforeConnect: ["set non-stop on"]);
            string output = await refused.OutputAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("Non-stop mode requested, but remote does not support non-stop", output);
            // The same VM in all-stop: gdb connects and sees both vcpus.
            using var allStop = new GdbProcess(bridge.Endpoint, null, littleEndian: false, ["info threads", "detach"]);
            output = await allStop.OutputAsync(TimeSpan.FromSeconds(30));
            Assert.Matches(@"Thread 1\.2 ""vcpu1""", output);
        }
        finally
        {
            await vms.DeleteVmAsync(new DeleteVmRequest { VmId = vm.VmId });
        }
    }
}
