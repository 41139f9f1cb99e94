using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorStep.Protocol.Gdb;

namespace ActorStep.Tests.Protocol;

/// <summary>An unmodified gdb-multiarch 13 against the session over loopback, with the in-memory target: proves
/// the target description, register layout, thread list and step/continue replies are what gdb accepts.</summary>
public class RealGdbTests
{
    private static async Task<string> RunGdb(FakeGdbTarget target, bool littleEndian, params string[] commands)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            listener.Stop();
            client.NoDelay = true;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await new GdbConnection(client.GetStream(), new GdbSession(target, littleEndian)).RunAsync(cts.Token);
        });

        var psi = new ProcessStartInfo("gdb-multiarch") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-nx", "-batch", "-ex", "set architecture powerpc:common64",
                     "-ex", $"set endian {(littleEndian ? "little" : "big")}", "-ex", $"target remote 127.0.0.1:{port}" })
            psi.ArgumentList.Add(a);
        foreach (var c in commands) { psi.ArgumentList.Add("-ex"); psi.ArgumentList.Add(c); }
        using var gdb = Process.Start(psi)!;
        var stdout = gdb.StandardOutput.ReadToEndAsync();
        var stderr = gdb.StandardError.ReadToEndAsync();
        await gdb.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        await serve.WaitAsync(TimeSpan.FromSeconds(5));
        return await stdout + await stderr;
    }

    private static FakeGdbTarget Target()
    {
        var target = new FakeGdbTarget(vcpus: 2);
        for (ulong a = 0x1000; a < 0x1400; a += 4) // nop = ori 0,0,0 (big-endian bytes)
        {
            target.Memory[a] = 0x60; target.Memory[a + 1] = 0; target.Memory[a + 2] = 0; target.Memory[a + 3] = 0;
        }
        return target;
    }

    [Fact]
    public async Task Gdb_reads_registers_threads_and_steps()
    {
        var target = Target();
        target.Stops.Enqueue(new GdbStopEvent(0, GdbStopReason.StepDone));
        target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Breakpoint));
        var output = await RunGdb(target, littleEndian: false,
            "info registers pc msr cr xer r1", "p/x $tb", "p/x $dsisr", "info threads", "x/i $pc", "stepi",
            "break *0x1100", "continue", "detach");
        Assert.Matches(@"pc\s+0x1000", output);
        Assert.Matches(@"msr\s+0x8000000000001000", output);
        Assert.Matches(@"cr\s+0x42", output);
        Assert.Matches(@"xer\s+0x45", output);
        Assert.Matches(@"r1\s+0x7ff0", output);
        Assert.Contains("= 0x53", output);  // tb, regnum 83
        Assert.Contains("= 0x4e", output);  // dsisr, regnum 78
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(output, @"Thread 1\.2 ""vcpu1"" \(stopped at 0x1100\)"), output);
        Assert.Contains("nop", output);
        Assert.Equal([GdbResumeAction.Step, GdbResumeAction.Continue], target.Resumes[0]); // stepi, locking off
        Assert.Contains("InsertSwBreakpoint 1100", target.Calls);
        Assert.Equal([GdbResumeAction.Continue, GdbResumeAction.Continue], target.Resumes[1]);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(output, @"Thread 2 ""vcpu1"" hit Breakpoint 1, 0x0+1100"), output);
        Assert.Contains("Detach", target.Calls);
        Assert.DoesNotContain("Remote 'g' packet reply is too long", output);
    }

    [Fact]
    public async Task Gdb_sees_the_same_values_for_a_little_endian_image()
    {
        var target = Target();
        var output = await RunGdb(target, littleEndian: true, "info registers pc msr cr", "detach");
        Assert.Matches(@"pc\s+0x1000", output);
        Assert.Matches(@"msr\s+0x8000000000001000", output);
        Assert.Matches(@"cr\s+0x42", output);
    }
}
