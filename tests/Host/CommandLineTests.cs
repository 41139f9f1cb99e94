using System.Diagnostics;

namespace ActorStep.Tests.Host;

/// <summary>The <c>actorstep</c> command line as a user meets it (a real process): help everywhere, errors, version, completion.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class CommandLineTests
{
    private static (int Code, string Stdout, string Stderr) Actorstep(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "actorstep.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("actorstep did not exit"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Theory]
    [InlineData("run", "--dump-memory <ADDR:LEN>")]
    [InlineData("serve", "--token-file <PATH>")]
    [InlineData("gdb", "--listen <HOST:PORT>")]
    [InlineData("completion", "<SHELL>")]
    public void Every_command_answers_help_with_its_options_and_exit_code_0(string command, string option)
    {
        foreach (var help in new[] { "--help", "-h" })
        {
            var (code, stdout, _) = Actorstep(command, help);
            Assert.True(code == 0, $"{command} {help}: exit {code}");
            Assert.Contains($"actorstep {command}", stdout);
            Assert.Contains(option, stdout);
        }
    }

    [Fact]
    public void The_top_level_help_lists_the_commands_and_no_command_is_a_usage_error()
    {
        var (code, stdout, _) = Actorstep("--help");
        Assert.Equal(0, code);
        foreach (var command in new[] { "run", "serve", "gdb", "completion" }) Assert.Contains($"  {command}", stdout);

        var (none, _, stderr) = Actorstep();
        Assert.Equal(2, none);
        Assert.Contains("Commands:", stderr);
    }

    [Fact]
    public void An_unknown_option_is_named_with_the_valid_ones_and_exit_code_2()
    {
        var (code, stdout, stderr) = Actorstep("serve", "--grcp", "127.0.0.1:0");
        Assert.Equal(2, code);
        Assert.Equal("", stdout); // nothing started
        Assert.Contains("--grcp", stderr);
        Assert.Contains("--grpc <HOST:PORT>", stderr); // the command's help: every valid option
        Assert.Contains("--no-auth", stderr);

        var (typo, _, typoErr) = Actorstep("run", "--imag", "x.elf");
        Assert.Equal(2, typo);
        Assert.Contains("Did you mean", typoErr);
        Assert.Contains("--image", typoErr);
    }

    [Theory]
    [InlineData("serve --vcpus many", "--vcpus must be a number in 1..256, not 'many'")]
    [InlineData("serve --grpc 10.0.0.1:50051", "loopback only")]
    [InlineData("serve --no-auth --token-file x", "--no-auth turns the token off")]
    [InlineData("serve -- -M pseries", "need --qemu")]
    [InlineData("serve --qemu-qmp 192.0.2.1:4444", "--qemu-qmp: a QMP is reached on loopback only")]
    [InlineData("serve --qemu-qmp unix:/x --qemu -- -M pseries", "give either --qemu-gdb/--qemu-qmp")]
    [InlineData("serve stray", "unexpected argument 'stray'")]
    [InlineData("gdb --server ftp://x", "--server wants the gRPC address as a URL")]
    [InlineData("run --dump-memory 12", "--dump-memory wants ADDR:LEN")]
    [InlineData("completion fish", "bash and zsh")]
    public void A_value_the_command_cannot_use_is_a_usage_error_naming_the_option(string line, string message)
    {
        var (code, _, stderr) = Actorstep(line.Split(' '));
        Assert.True(code == 2, $"exit {code}: {stderr}");
        Assert.Contains(message, stderr);
        Assert.Contains("Options:", stderr);
    }

    [Fact]
    public void Version_prints_the_version()
    {
        var (code, stdout, _) = Actorstep("--version");
        Assert.Equal(0, code);
        string expected = typeof(ActorStep.Host.Cli.CommandLine).Assembly.GetName().Version!.ToString(3);
        Assert.StartsWith(expected, stdout.Trim());
    }

    [Fact]
    public void Completion_suggests_commands_and_each_commands_options()
    {
        var (code, commands, _) = Actorstep("[suggest:1]", "s");
        Assert.Equal(0, code);
        Assert.Contains("serve", commands.Split('\n', StringSplitOptions.TrimEntries));
        var (_, options, _) = Actorstep("[suggest:9]", "serve --i");
        var lines = options.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("--image", lines);
        Assert.Contains("--image-dir", lines);
        Assert.DoesNotContain("--grpc", lines);
    }

    [Fact]
    public void The_bash_completion_script_completes_through_actorstep_itself()
    {
        var (code, script, _) = Actorstep("completion", "bash");
        Assert.Equal(0, code);
        // Run it in a real bash, as the shell would on TAB after "actorstep serve --no-": the program is a stand-in that runs
        // this build.
        string dir = Directory.CreateTempSubdirectory("actorstep-completion-").FullName;
        try
        {
            string shim = Path.Combine(dir, "actorstep");
            File.WriteAllText(shim, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "actorstep.dll")}' \"$@\"\n");
            File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.WriteAllText(Path.Combine(dir, "completion.bash"), script);
            string test = $"""
                PATH='{dir}':$PATH
                source '{dir}/completion.bash'
                COMP_LINE='actorstep serve --no-'; COMP_POINT=${"{#"}COMP_LINE{"}"}
                COMP_WORDS=(actorstep serve --no-); COMP_CWORD=2
                _actorstep_complete
                printf '%s\n' "${"{"}COMPREPLY[@]{"}"}"
                """;
            var psi = new ProcessStartInfo("bash", ["-c", test]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var bash = Process.Start(psi)!;
            string output = bash.StandardOutput.ReadToEnd();
            bash.WaitForExit(60_000);
            Assert.Equal(["--no-auth"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
