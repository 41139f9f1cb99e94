using ActorStep.Tests.Support;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// A bare-metal guest for <c>qemu-system-ppc64 -M powernv9 -bios</c> built from one of tests/Qemu/guests/*.s with GNU binutils:
/// a raw big-endian binary loaded at 0, every thread entering at 0x10 with MSR = SF|HV. Cheap (no firmware, no kernel), so
/// tests that need several vcpus doing something known use it. The directory is deleted on dispose.
/// </summary>
internal sealed class PowerNvGuest : IDisposable
{
    private readonly string _dir;

    public PowerNvGuest(string source)
    {
        _dir = Directory.CreateTempSubdirectory("actorstep-pnv-").FullName;
        GuestAssembler.Run(GuestAssembler.Tool(false, "objcopy"), $"-O binary {BuildElf(source, _dir)} {_dir}/g.bin");
    }

    /// <summary>Assembles and links tests/Qemu/guests/<paramref name="source"/> big-endian at address 0 into
    /// <paramref name="dir"/>/g.elf, and returns that path.</summary>
    public static string BuildElf(string source, string dir)
    {
        string s = Path.Combine(AppContext.BaseDirectory, "Qemu", "guests", source);
        GuestAssembler.Run(GuestAssembler.Tool(false, "as"), $"-a64 -mpower9 -mbig -mregnames -o {dir}/g.o {s}");
        GuestAssembler.Run(GuestAssembler.Tool(false, "ld"), $"-nostdlib -static --build-id=none --no-warn-rwx-segments -N -e _start -Ttext=0 -o {dir}/g.elf {dir}/g.o");
        return Path.Combine(dir, "g.elf");
    }

    public string Binary => Path.Combine(_dir, "g.bin");

    /// <summary>QEMU's arguments for this guest on <paramref name="threads"/> threads.</summary>
    public List<string> Arguments(int threads = 1) =>
        ["-M", "powernv9", "-smp", threads.ToString(System.Globalization.CultureInfo.InvariantCulture), "-bios", Binary, "-nodefaults", "-display", "none"];

    public void Dispose() => Directory.Delete(_dir, true);
}
