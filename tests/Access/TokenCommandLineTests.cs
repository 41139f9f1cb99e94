using System.Diagnostics;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Tests.Host;
using Grpc.Core;
using Grpc.Net.Client;

namespace ActorStep.Tests.Access;

/// <summary>The token as an operator meets it: <c>actorstep serve --token-file</c>, its own gdb bridge, and <c>actorstep gdb</c>.</summary>
public sealed class TokenCommandLineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorstep-token-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Serve_writes_its_token_file_its_gdb_bridge_uses_it_and_actorstep_gdb_needs_it()
    {
        string file = Path.Combine(_dir, "api.token");
        using var server = ServeCommandProcess.Start("--grpc", "127.0.0.1:0", "--gdb", "127.0.0.1:0", "--vcpus", "1", "--memory", "2", "--token-file", file);
        string address = await server.GrpcAddressAsync(TimeSpan.FromSeconds(60));
        // The bridge that serve starts talks to the API like any client: it starts only if it passes the token.
        await Until(() => server.Output.Contains("gdb bridge for VM"), server);
        Assert.Contains($"API token in {file}", server.Output);
        Assert.Contains($"-H \"authorization: Bearer $(cat {file})\"", server.Output);

        using (var bare = GrpcChannel.ForAddress(address))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => new Vms.VmsClient(bare).ListVmsAsync(new ListVmsRequest()).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        }

        var (refusedCode, refused) = await RunGdbCommandAsync(address, tokenFile: null);
        Assert.True(refusedCode == 1, $"exit {refusedCode}: {refused}");
        Assert.Contains("--token-file", refused);

        var (code, output) = await RunGdbCommandAsync(address, tokenFile: file);
        Assert.True(code == 0, $"exit {code}: {output}");
        Assert.Contains("gdb bridge for VM", output);

        server.Terminate();
        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), server.Output);
        Assert.False(File.Exists(file), "the token file outlived the server");
    }

    [Fact]
    public async Task Serve_with_no_auth_says_so_and_answers_a_client_without_a_token()
    {
        using var server = ServeCommandProcess.Start("--grpc", "127.0.0.1:0", "--vcpus", "1", "--memory", "2", "--no-auth");
        string address = await server.GrpcAddressAsync(TimeSpan.FromSeconds(60));
        await Until(() => server.Output.Contains("Try:"), server);
        Assert.Contains("no API token (--no-auth)", server.Output);
        using var bare = GrpcChannel.ForAddress(address);
        Assert.Single((await new Vms.VmsClient(bare).ListVmsAsync(new ListVmsRequest())).Vms);
    }

    /// <summary><c>actorstep gdb</c> against the server: run until it has started its bridge (then stopped with SIGTERM) or exits.</summary>
    private static async Task<(int Code, string Output)> RunGdbCommandAsync(string server, string? tokenFile)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "actorstep.dll"), "gdb", "--server", server, "--listen", "127.0.0.1:0" })
            psi.ArgumentList.Add(a);
        if (tokenFile is not null) { psi.ArgumentList.Add("--token-file"); psi.ArgumentList.Add(tokenFile); }
        using var p = new Process { StartInfo = psi };
        var lines = new List<string>();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Received(string? line)
        {
            if (line is null) return;
            lock (lines) lines.Add(line);
            if (line.StartsWith("gdb bridge for VM", StringComparison.Ordinal)) started.TrySetResult();
        }
        p.OutputDataReceived += (_, e) => Received(e.Data);
        p.ErrorDataReceived += (_, e) => Received(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await Task.WhenAny(started.Task, p.WaitForExitAsync()).WaitAsync(TimeSpan.FromSeconds(60));
            if (!p.HasExited) p.Kill(); // started: SIGKILL is enough, the bridge has no gdb attached
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        lock (lines) return (started.Task.IsCompleted ? 0 : p.ExitCode, string.Join("\n", lines));
    }

    private static async Task Until(Func<bool> condition, ServeCommandProcess server)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > until || server.HasExited) throw new TimeoutException($"not reached:\n{server.Output}");
            await Task.Delay(50);
        }
    }
}
