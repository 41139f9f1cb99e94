using ActorStep.Api.V1;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Grpc.Net.Client;

namespace ActorStep.Tests.Host;

/// <summary>What <c>actorstep serve</c> logs of the stops it serves (issue 13 point 7: with the image's symbol names).</summary>
public class ServeLogTests
{
    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(60);

    [Fact]
    public async Task A_breakpoint_stop_is_logged_with_its_vm_vcpu_address_and_function_name()
    {
        // The demo guest maps itself at 0xc000000000000000 + its link address once translation is on (README).
        ulong critical = Hypervisor.SymbolIndex.KernelBase | ElfImage.BuiltIn("demo").Symbol("critical_section");
        using var server = ServeCommandProcess.Start("--grpc", "127.0.0.1:0", "--vcpus", "2", "--memory", "4", "--no-auth");
        using var channel = GrpcChannel.ForAddress(await server.GrpcAddressAsync(TimeSpan.FromSeconds(60)));
        var vm = (await new Vms.VmsClient(channel).ListVmsAsync(new ListVmsRequest(), deadline: Deadline)).Vms.Single();
        await new Breakpoints.BreakpointsClient(channel).InsertBreakpointAsync(new BreakpointRequest { VmId = vm.VmId, Address = critical }, deadline: Deadline);

        var stop = (await new RunControl.RunControlClient(channel).ContinueAsync(new ContinueRequest { VmId = vm.VmId }, deadline: Deadline)).Event;

        Assert.Equal((StopReason.Breakpoint, critical), (stop.Reason, stop.Nip));
        Assert.Equal("critical_section+0x0", stop.Symbol);
        string line = $"VM {vm.VmId} stopped: Breakpoint on vcpu {stop.Vcpu} at 0x{critical:x} <critical_section+0x0>";
        await Eventually.HoldsAsync(() => server.Output.Contains(line), $"the log line '{line}' in:\n{server.Output}");
    }
}
