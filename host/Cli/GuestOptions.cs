using System.CommandLine;
using ActorStep.Machine;
using ActorStep.Machine.Platform;

namespace ActorStep.Host.Cli;

/// <summary>
/// The options <c>run</c> and <c>serve</c> share to describe the simulated guest, defined once so that they keep one name,
/// one meaning and one help text in both. (<c>--kernel</c> itself differs: <c>run</c> runs it to power-off, <c>serve</c> halts it
/// at its first instruction; <c>--memory</c>'s range differs with what each can map.)
/// </summary>
public static class GuestOptions
{
    public static Option<string> Initrd() => CommandLine.Value("--initrd", "FILE", "an initramfs for --kernel");

    public static Option<string> Append() =>
        CommandLine.Value("--append", "CMDLINE", $"the kernel command line for --kernel (default: {LinuxBootRequest.DefaultBootargs})");

    public static Option<string> Vcpus() => CommandLine.Value("--vcpus", "N", $"vcpus, 1..{MachineOptions.MaxVcpus} (default 4)");

    /// <summary>The <c>--vcpus</c> value, 4 when not given.</summary>
    public static int ReadVcpus(ArgReader args) => (int)(args.Long("--vcpus", 1, MachineOptions.MaxVcpus) ?? 4);
}
