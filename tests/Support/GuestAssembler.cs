using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using ActorStep.Machine;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Support;

/// <summary>
/// Builds guest programs from assembly text with the real GNU binutils (powerpc64le-linux-gnu-as/ld or
/// the big-endian powerpc64-linux-gnu-*), at test time. Results are cached per source text.
/// </summary>
public static class GuestAssembler
{
    private static readonly string CacheDir = Path.Combine(Path.GetTempPath(), "actorstep-test-guests");

    public static string Tool(bool littleEndian, string tool) =>
        (littleEndian ? "powerpc64le-linux-gnu-" : "powerpc64-linux-gnu-") + tool;

    /// <summary>
    /// Assembles and links <paramref name="source"/> (which must define <c>_start</c>) with .text at
    /// <paramref name="textAddress"/>; returns the ELF path. With <paramref name="debugInfo"/>, GNU as adds DWARF (a compile
    /// unit, its functions, and the line table of any <c>.loc</c> directives) for gdb's source-level stepping.
    /// </summary>
    public static string BuildElf(string source, bool littleEndian = true, ulong textAddress = 0x10000, bool debugInfo = false)
    {
        Directory.CreateDirectory(CacheDir);
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{littleEndian}|{textAddress}|{debugInfo}|{source}")))[..24];
        string elf = Path.Combine(CacheDir, key + ".elf");
        if (File.Exists(elf)) return elf;
        string tmp = Path.Combine(CacheDir, key + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..6]);
        File.WriteAllText(tmp + ".s", source.Contains("_start") ? source : "    .globl _start\n_start:\n" + source);
        Run(Tool(littleEndian, "as"), $"-a64 -mpower9 {(littleEndian ? "-mlittle" : "-mbig")}{(debugInfo ? " -g" : "")} -o {tmp}.o {tmp}.s");
        Run(Tool(littleEndian, "ld"), $"-nostdlib -static --build-id=none -N -e _start -Ttext=0x{textAddress:x} -o {tmp}.elf {tmp}.o");
        File.Move(tmp + ".elf", elf, overwrite: true);
        File.Delete(tmp + ".s");
        File.Delete(tmp + ".o");
        return elf;
    }

    public static ElfImage Build(string source, bool littleEndian = true, ulong textAddress = 0x10000) =>
        ElfImage.Load(BuildElf(source, littleEndian, textAddress));

    /// <summary>Assembles one instruction (or a few) and returns the instruction words in program order.</summary>
    public static uint[] Words(string source, bool littleEndian = true)
    {
        var image = Build(source, littleEndian);
        var seg = image.Segments[0];
        var words = new uint[seg.Data.Length / 4];
        for (int i = 0; i < words.Length; i++)
            words[i] = littleEndian
                ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(seg.Data.Span[(i * 4)..])
                : System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(seg.Data.Span[(i * 4)..]);
        return words;
    }

    public static string Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }
}
