namespace ActorStep.Hypervisor;

/// <summary>Which backend runs a VM.</summary>
public enum BackendKind
{
    /// <summary>The simulated POWER SMP machine built into ActorStep (the default).</summary>
    Simulated,
    /// <summary>A stock QEMU driven through its gdbstub (backends/qemu): TCG here, KVM-HV on a POWER host.</summary>
    Qemu,
}

/// <summary>Where a QEMU VM comes from: a running QEMU's gdbstub to attach to (<c>HOST:PORT</c> on loopback or <c>unix:PATH</c>),
/// or the arguments of a <c>qemu-system-ppc64</c> for ActorStep to start. <paramref name="QmpEndpoint"/>: that running QEMU's QMP
/// monitor (same forms), for the guest's lifecycle (power-off, reset, panic); alone, without a gdbstub, ActorStep starts QEMU's
/// gdbstub through it (HMP <c>gdbserver</c>) and stops it again when it lets go.</summary>
public sealed record QemuSource(string? GdbEndpoint, IReadOnlyList<string>? LaunchArguments, string? QmpEndpoint = null)
{
    public override string ToString() => GdbEndpoint is { } e ? $"the gdbstub at {e}{(QmpEndpoint is { } q ? $" (QMP at {q})" : "")}"
        : QmpEndpoint is { } qmp ? $"the QEMU whose QMP is at {qmp}" : $"qemu-system-ppc64 {string.Join(' ', LaunchArguments ?? [])}";
}

/// <summary>A Linux kernel to enter as kexec does (a device tree built by the backend, no firmware): the vmlinux, an optional
/// initrd (both regular files of at most 256 MiB) and the kernel command line (null: the backend's default, <c>console=hvc0</c>).</summary>
public sealed record LinuxKernelImage(string KernelPath, string? InitrdPath = null, string? CommandLine = null);

/// <summary>What a backend is asked to create: a guest image (a file, a built-in guest or a Linux kernel), its vcpus, memory and flavour.</summary>
public sealed record VmImageRequest(string? ElfPath, string? BuiltIn, int Vcpus, ulong MemorySize, HypervisorFlavour Flavour,
    QemuSource? Qemu = null, LinuxKernelImage? Linux = null);

/// <summary>A VM a backend created, loaded and halted at its entry.</summary>
public sealed record CreatedVm(IVirtualMachine Machine, string ImageName, ulong Entry);

/// <summary>The request cannot be served as given (not an ELF, wrong machine, segments outside RAM, too many vcpus): the
/// message says what to change.</summary>
public sealed class InvalidVmRequestException(string message) : Exception(message);

/// <summary>Creates VMs of one backend; the host registers one factory per backend it offers. The VM manager calls
/// <see cref="Create"/> on a task, never on its own thread (loading may read an image of up to 256 MiB), so calls may overlap.</summary>
public interface IBackendFactory
{
    BackendKind Kind { get; }
    int MaxVcpus { get; }
    /// <summary>Creates and loads a VM; throws <see cref="InvalidVmRequestException"/> for bad input.</summary>
    CreatedVm Create(VmImageRequest request);
}
