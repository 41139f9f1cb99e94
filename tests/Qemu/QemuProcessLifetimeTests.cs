using ActorStep.Tests.Host;

namespace ActorStep.Tests.Qemu;

/// <summary>A QEMU that ActorStep started is ActorStep's: it must not outlive the server, however the server ends.</summary>
[Collection(QemuCollection.Name)]
public sealed class QemuProcessLifetimeTests
{
    /// <summary>The pids of the processes whose parent is <paramref name="pid"/>, with their command names.</summary>
    private static List<(int Pid, string Name)> Children(int pid)
    {
        var children = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int child)) continue;
            try
            {
                // /proc/PID/stat: pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int close = stat.LastIndexOf(')');
                var fields = stat[(close + 2)..].Split(' ');
                if (int.Parse(fields[1]) == pid && fields[0] != "Z") children.Add((child, stat[(stat.IndexOf('(') + 1)..close]));
            }
            catch (IOException) { }
        }
        return children;
    }

    private static bool Alive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException) { return false; }
    }

    [Fact]
    public async Task A_QEMU_started_by_serve_dies_when_the_server_is_killed()
    {
        using var guest = new PowerNvGuest("lock-be.s");
        using var serve = ServeCommandProcess.Start(["--no-auth", "--grpc", "127.0.0.1:0", "--qemu", "--", .. guest.Arguments(threads: 2)]);
        await serve.GrpcAddressAsync(TimeSpan.FromSeconds(60));
        var qemu = Children(serve.Pid).Where(c => c.Name.StartsWith("qemu-system", StringComparison.Ordinal)).ToList();
        Assert.True(qemu.Count == 1, $"expected one QEMU under the server, found: {string.Join(", ", Children(serve.Pid))}\n{serve.Output}");

        serve.Kill(); // SIGKILL: no cleanup code of the server runs
        var until = DateTime.UtcNow.AddSeconds(10);
        while (Alive(qemu[0].Pid) && DateTime.UtcNow < until) await Task.Delay(50);
        Assert.False(Alive(qemu[0].Pid), $"QEMU (pid {qemu[0].Pid}) outlived the SIGKILLed server");
    }
}
