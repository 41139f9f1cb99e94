using System.Text.RegularExpressions;
using ActorStep.Tests.Host;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// <c>actorstep serve --gdb</c> as a user starts it, a process of its own whose socket completions run inline (the bridge's
/// packets skip a thread-pool hop), driven by a real gdb-multiarch: stepping, and a Ctrl-C that reaches a running VM.
/// </summary>
public sealed partial class ServeGdbProcessTests
{
    private const string Source = """
            .org 0x1000
            .globl _start
        _start:
            addi 5, 5, 1
            addi 5, 5, 1
            b _start
        """;

    [GeneratedRegex(@"gdb bridge for VM \S+ on 127\.0\.0\.1:(\d+)")]
    private static partial Regex BridgeLine();

    [Fact]
    public async Task Gdb_steps_and_interrupts_a_continue_through_serve_gdb()
    {
        string elf = GuestAssembler.BuildElf(Source, littleEndian: false, textAddress: 0);
        using var server = ServeCommandProcess.Start("--no-auth", "--grpc", "127.0.0.1:0", "--gdb", "127.0.0.1:0",
            "--image", elf, "--vcpus", "2", "--memory", "16");
        await server.GrpcAddressAsync(TimeSpan.FromSeconds(60));
        var until = DateTime.UtcNow.AddSeconds(60);
        Match bridge;
        while (!(bridge = BridgeLine().Match(server.Output)).Success)
        {
            Assert.False(server.HasExited || DateTime.UtcNow > until, $"no gdb bridge:\n{server.Output}");
            await Task.Delay(50);
        }

        using var gdb = new GdbMi(elf);
        foreach (var setting in new[] { "set architecture powerpc:common64", "set endian big", "set pagination off", "set confirm off" })
            await gdb.RunAsync(setting);
        await gdb.RunAsync($"-target-select remote 127.0.0.1:{bridge.Groups[1].Value}");
        var pcs = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            int from = gdb.LineCount;
            await gdb.RunAsync("stepi");
            await gdb.WaitForAsync(new Regex(@"^\*stopped,"), from);
            pcs.Add((await gdb.RunAsync("p/x $pc")).Trim());
        }
        Assert.Equal(["$1 = 0x1004", "$2 = 0x1008", "$3 = 0x1000", "$4 = 0x1004"], pcs);

        await gdb.RunAsync("continue &");
        await Task.Delay(200); // let it run
        int stopFrom = gdb.LineCount;
        await gdb.RunAsync("interrupt");
        Assert.Contains("signal-name=\"SIGINT\"", await gdb.WaitForAsync(new Regex(@"^\*stopped,"), stopFrom));
        var r5 = Regex.Match(await gdb.RunAsync("p $r5"), @"= (\d+)");
        Assert.True(r5.Success && ulong.Parse(r5.Groups[1].Value) > 100, $"the VM ran until the interrupt: {r5.Value}");
        await gdb.RunAsync("detach");
    }
}
