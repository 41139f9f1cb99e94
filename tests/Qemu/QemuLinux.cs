using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using ActorStep.Backends.Qemu;
using ActorStep.Tests.Differential;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Qemu;

/// <summary>
/// Debian's own ppc64le kernel (fetched and cached by <c>scripts/fetch-linux</c>) as a QEMU pseries TCG guest, for the QEMU
/// backend's tests: the command line, the cached files, the kernel's symbols.
/// </summary>
internal static class QemuLinux
{
    /// <summary>The cached vmlinux (<see cref="LinuxAssets"/>: fails, never skips, when scripts/fetch-linux has not run).</summary>
    public static string Vmlinux => LinuxAssets.Get().Vmlinux;

    /// <summary>An initramfs with busybox and the default /init (<see cref="LinuxInitramfs"/>), in a file deleted on dispose.</summary>
    public sealed class Initramfs : IDisposable
    {
        public Initramfs(string init = LinuxInitramfs.DefaultInit)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"actorstep-initrd-{Guid.NewGuid():n}.cpio");
            File.WriteAllBytes(Path, LinuxInitramfs.Build(LinuxAssets.Get().Busybox, init));
        }

        public string Path { get; }
        public void Dispose() => File.Delete(Path);
    }

    /// <summary>
    /// QEMU pseries TCG on the Debian kernel with VOF (QEMU's minimal firmware), <paramref name="vcpus"/> vcpus, 1 GiB; with
    /// <paramref name="deterministic"/> the options that make two runs instruction for instruction identical (qemu-gdbstub.md).
    /// </summary>
    public static List<string> Arguments(int vcpus, bool deterministic, string append = "console=hvc0", string? initrd = null)
    {
        var a = new List<string>
        {
            "-M", "pseries,x-vof=on", "-cpu", "power9", "-smp", vcpus.ToString(CultureInfo.InvariantCulture), "-m", "1G",
            "-nodefaults", "-kernel", Vmlinux, "-append", append,
        };
        if (initrd is not null) a.AddRange(["-initrd", initrd]);
        if (deterministic) a.AddRange(["-icount", "shift=0,sleep=off,align=off", "-rtc", "clock=vm,base=2020-01-01T00:00:00", "-seed", "1"]);
        return a;
    }

    private static readonly Lazy<Dictionary<string, (ulong Address, int LocalEntry)>> Symbols = new(() =>
    {
        // readelf, not nm: an ELFv2 function's local entry offset is in st_other ("[<localentry>: 8]").
        var result = new Dictionary<string, (ulong, int)>(StringComparer.Ordinal);
        string output = GuestAssembler.Run(GuestAssembler.Tool(true, "readelf"), $"-sW {Vmlinux}");
        foreach (Match m in Regex.Matches(output, @"^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+\w+\s+\w+\s+\w+(?:\s+\[<localentry>: (\d+)\])?\s+\S+\s+(\S+)$", RegexOptions.Multiline))
            result.TryAdd(m.Groups[3].Value, (ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                m.Groups[2].Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : 0));
        return result;
    });

    /// <summary>A kernel symbol's address (the global entry point for a function).</summary>
    public static ulong Symbol(string name) => Symbols.Value.TryGetValue(name, out var s) ? s.Address
        : throw new KeyNotFoundException($"vmlinux has no symbol {name}");

    /// <summary>Where a call from within the kernel enters an ELFv2 function (what gdb's <c>break FUNC</c> uses): the global
    /// entry plus the local entry offset of the symbol (the TOC setup it skips).</summary>
    public static ulong LocalEntry(string name) => Symbols.Value.TryGetValue(name, out var s) ? s.Address + (ulong)s.LocalEntry
        : throw new KeyNotFoundException($"vmlinux has no symbol {name}");
}

/// <summary>How the QEMU tests let a VM go.</summary>
internal static class QemuVmRelease
{
    /// <summary>What the VM manager does when a VM is deleted: the coordinator (and its vcpus, abandoning their steps) stops,
    /// then the machine is let go.</summary>
    public static void Release(this Akka.TestKit.TestKitBase kit, Akka.Actor.IActorRef coordinator, Hypervisor.IVirtualMachine vm)
    {
        kit.Watch(coordinator);
        kit.Sys.Stop(coordinator);
        kit.ExpectTerminated(coordinator, TimeSpan.FromSeconds(30));
        vm.Dispose();
    }
}

/// <summary>How the QEMU tests ask a VM's coordinator and wait for its answers: a bound generous enough for a loaded machine,
/// and a <see cref="TimeoutException"/> (not a hang) when no answer comes.</summary>
internal static class QemuAsk
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static object Call(Akka.Actor.IActorRef coordinator, object message) =>
        Wait(Akka.Actor.Futures.Ask<object>(coordinator, message, Timeout));

    public static object Wait(Task<object> reply) => reply.Wait(Timeout) ? reply.Result : throw new TimeoutException("no reply");

    public static void Wait(Task task)
    {
        if (!task.Wait(Timeout)) throw new TimeoutException("not done");
    }

    /// <summary>Whether <paramref name="reply"/> came within the bound.</summary>
    public static bool Ended(Task<object> reply) => reply.Wait(Timeout);
}
