using System.Diagnostics;
using System.Text.Json;

namespace ActorStep.Tests.Host;

/// <summary><c>actorstep run</c> as a user runs it: a real process, its exit code, stdout JSON and stderr console.</summary>
public class RunCommandTests
{
    private static (int Code, string Stdout, string Stderr) Actorstep(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "actorstep.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("actorstep did not exit"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Run_of_the_demo_guest_streams_its_banner_and_prints_the_final_state_as_JSON()
    {
        var (code, stdout, stderr) = Actorstep("run", "--max-instructions", "300000", "--deterministic", "--dump-memory", "0x6080:8");
        Assert.Equal(0, code);
        Assert.Contains("ActorStep demo: vcpu 3 online", stderr);
        using var json = JsonDocument.Parse(stdout);
        var vcpus = json.RootElement.GetProperty("vcpus");
        Assert.Equal(4, vcpus.GetArrayLength());
        var symbols = ActorStep.Machine.ElfImage.BuiltIn("demo").Code;
        foreach (var v in vcpus.EnumerateArray())
        {
            Assert.Equal(32, v.GetProperty("gpr").GetArrayLength());
            Assert.Equal(4, v.GetProperty("sprg").GetArrayLength());
            Assert.StartsWith("0xc0000000", v.GetProperty("nip").GetString()); // relocated by AIL=3
            // nip named by the demo's own symbols (it runs at 0xc000… + its link address, translation on).
            ulong nip = Convert.ToUInt64(v.GetProperty("nip").GetString(), 16), msr = Convert.ToUInt64(v.GetProperty("msr").GetString(), 16);
            Assert.NotNull(symbols.Describe(nip, translated: (msr & 0x20) != 0));
            Assert.Equal(symbols.Describe(nip, translated: (msr & 0x20) != 0), v.GetProperty("symbol").GetString());
            Assert.Contains($"\"symbol\": \"{v.GetProperty("symbol").GetString()}\"", stdout); // `name+0x…` as written, unescaped
            Assert.Equal(300000, v.GetProperty("instructions").GetInt64());
        }
        string counter = json.RootElement.GetProperty("memory")[0].GetProperty("hex").GetString()!;
        Assert.NotEqual("0000000000000000", counter);
    }

    [Fact]
    public void Run_of_a_kernel_streams_the_guest_console_to_stdout_without_the_JSON_state()
    {
        string vmlinux = ActorStep.Tests.Support.LinuxAssets.Get().Vmlinux;
        var (code, stdout, stderr) = Actorstep("run", "--kernel", vmlinux, "--vcpus", "2", "--append", "console=hvc0 actorstep-test",
            "--max-instructions", "25000000");
        Assert.True(code == 0, $"exit code {code}:\n{stderr}");
        Assert.Contains("Linux version ", stdout);
        Assert.Contains("lpar: Using radix MMU under hypervisor", stdout);
        Assert.DoesNotContain("\"vcpus\"", stdout);
    }

    /// <summary>A stand-in "kernel" (a little-endian ELF at 0, entered as Linux is) that makes one RTAS call through H_RTAS with
    /// a ready-made big-endian argument block, or faults at its own Program handler.</summary>
    private static string FakeKernel(string ending) => ActorStep.Tests.Support.GuestAssembler.BuildElf($$"""
            .globl _start
        _start:
            {{ending}}
            b .
            .org 0x100
            .asciz "a test panic"
            .org 0x200
        poweroff:  # token 0x2003, nargs 0, nret 1
            .byte 0,0,0x20,0x03, 0,0,0,0, 0,0,0,1, 0,0,0,0
            .org 0x300
        osterm:    # token 0x201f, nargs 1 (the message at 0x100), nret 1
            .byte 0,0,0x20,0x1f, 0,0,0,1, 0,0,0,1, 0,0,1,0, 0,0,0,0
            .org 0x700
            .long 0  # an illegal instruction at the Program vector: a fault loop, so a checkstop
        """, littleEndian: true, textAddress: 0);

    [Theory]
    [InlineData("li 4, 0x200\n    li 3, 0\n    ori 3, 3, 0xf000\n    sc 1", 0, "powered the machine off")]
    [InlineData("li 4, 0x300\n    li 3, 0\n    ori 3, 3, 0xf000\n    sc 1", 3, "ibm,os-term from vcpu 0): a test panic")]
    [InlineData(".long 0", 3, null)]
    public void Run_of_a_kernel_exits_0_when_the_guest_powers_off_and_3_on_a_panic_or_a_checkstop(string ending, int expected, string? says)
    {
        var (code, stdout, stderr) = Actorstep("run", "--kernel", FakeKernel(ending), "--vcpus", "2", "--max-instructions", "1000000", "--state");

        Assert.True(code == expected, $"exit code {code}:\n{stderr}");
        if (says is not null) Assert.Contains(says, stderr);
        using var json = JsonDocument.Parse(stdout);
        var vcpus = json.RootElement.GetProperty("vcpus");
        Assert.Equal(expected == 0 || says is not null ? "stopped" : "checkstop", vcpus[0].GetProperty("state").GetString());
        // The secondary was never started: it ends with the machine (powered off) or, when vcpu 0 checkstopped, as held.
        Assert.Equal(says is not null ? "stopped" : "held", vcpus[1].GetProperty("state").GetString());
    }

    [Fact]
    public void Run_of_a_kernel_names_on_stderr_each_instruction_the_machine_lacks_when_the_guest_first_meets_it()
    {
        var (code, _, stderr) = Actorstep("run", "--kernel", FakeKernel(".long 0x00000001"), "--vcpus", "1", "--max-instructions", "1000000");

        Assert.Equal(3, code); // the Program vector holds an illegal word too: a checkstop
        // Named from the image's labels (real mode: a kernel's real address; an unsized label reaches the next, or the section's end).
        Assert.Contains("actorstep: missing instruction 0x1 (vcpu 0 at 0x0 <_start+0x0>)", stderr);
        Assert.Contains("actorstep: missing instruction 0x0 (vcpu 0 at 0x700 <osterm+0x400>)", stderr);
    }

    [Fact]
    public void Run_is_deterministic_when_asked()
    {
        var a = Actorstep("run", "--max-instructions", "200000", "--deterministic", "--dump-memory", "0x6080:8");
        var b = Actorstep("run", "--max-instructions", "200000", "--deterministic", "--dump-memory", "0x6080:8");
        // Two identical crashes would also compare equal: each run must have succeeded and printed the whole state.
        foreach (var (code, stdout, stderr) in new[] { a, b })
        {
            Assert.True(code == 0, $"exit code {code}:\n{stderr}");
            Assert.DoesNotContain("   at ", stderr);
            using var json = JsonDocument.Parse(stdout);
            var vcpus = json.RootElement.GetProperty("vcpus");
            Assert.Equal(4, vcpus.GetArrayLength());
            Assert.All(vcpus.EnumerateArray(), v =>
            {
                Assert.Equal(200000, v.GetProperty("instructions").GetInt64());
                Assert.Equal(32, v.GetProperty("gpr").GetArrayLength());
            });
            Assert.NotEqual("0000000000000000", json.RootElement.GetProperty("memory")[0].GetProperty("hex").GetString());
            Assert.True(json.RootElement.GetProperty("elapsed_ms").GetDouble() >= 0);
        }
        static string WithoutTime(string s) => System.Text.RegularExpressions.Regex.Replace(s, "\"elapsed_ms\": [0-9.]+", "");
        Assert.Equal(WithoutTime(a.Stdout), WithoutTime(b.Stdout));
        Assert.Equal(a.Stderr, b.Stderr); // the guests' console too, interleaving included
    }

    [Fact]
    public void A_file_that_is_not_an_ELF_gives_a_clear_error_and_exit_code_1()
    {
        string path = Path.GetTempFileName();
        File.WriteAllText(path, "#!/bin/sh\necho not a guest\n");
        var (code, stdout, stderr) = Actorstep("run", "--image", path);
        Assert.Equal(1, code);
        Assert.Contains("not an ELF file", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void A_missing_image_and_a_bad_option_are_reported_without_a_stack_trace()
    {
        var missing = Actorstep("run", "--image", "/nonexistent/guest.elf");
        Assert.Equal(1, missing.Code);
        Assert.Contains("cannot read the image", missing.Stderr);
        var bad = Actorstep("run", "--vcpus", "zero");
        Assert.Equal(2, bad.Code);
        Assert.Contains("--vcpus must be a number", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }

    [Fact]
    public void A_big_endian_guest_runs_to_its_own_stop()
    {
        string image = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "machine", "guests", "selftest-be.elf");
        var (code, stdout, stderr) = Actorstep("run", "--image", image, "--vcpus", "1");
        Assert.Equal(0, code);
        Assert.Contains("BE guest ok", stderr);
        using var json = JsonDocument.Parse(stdout);
        var v = json.RootElement.GetProperty("vcpus")[0];
        Assert.Equal("stopped", v.GetProperty("state").GetString());
        Assert.Equal(0, v.GetProperty("status").GetInt64());
    }
}
