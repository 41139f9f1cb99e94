using ActorStep.Hypervisor;

namespace ActorStep.Machine;

/// <summary>Creates simulated VMs: an ELF image (a file or a built-in guest) loaded into a <see cref="SimulatedMachine"/>.</summary>
public sealed class SimulatedBackend : IBackendFactory
{
    public static readonly SimulatedBackend Instance = new();

    public BackendKind Kind => BackendKind.Simulated;
    public int MaxVcpus => MachineOptions.MaxVcpus;

    public CreatedVm Create(VmImageRequest request)
    {
        try
        {
            if (request.Linux is { } linux) return CreateLinux(request, linux);
            var image = request.ElfPath is { Length: > 0 } path ? ElfImage.Load(path) : ElfImage.BuiltIn(request.BuiltIn ?? "");
            var machine = SimulatedMachine.Load(image, new MachineOptions(request.Vcpus, request.MemorySize, request.Flavour));
            return new CreatedVm(machine, image.Name, image.Entry);
        }
        catch (ElfFormatException e)
        {
            throw new InvalidVmRequestException(e.Message);
        }
    }

    /// <summary>A pseries machine with the kernel entered as kexec enters it: vcpu 0 at the real-mode entry (the VM's entry), the
    /// others held until RTAS start-cpu.</summary>
    private static CreatedVm CreateLinux(VmImageRequest request, LinuxKernelImage linux)
    {
        var kernel = ElfImage.Load(linux.KernelPath);
        byte[]? initrd = linux.InitrdPath is { Length: > 0 } initrdPath ? Platform.LinuxBootRequest.ReadInitrd(initrdPath) : null;
        // Linux idles in H_CEDE most of the time: under the engine its idle vcpus wait on the host's clock (no thread, no core).
        var machine = new SimulatedMachine(new MachineOptions(request.Vcpus, request.MemorySize, request.Flavour, IdleOnHostClock: true));
        try
        {
            Platform.LinuxBoot.Load(machine, new Platform.LinuxBootRequest(kernel, initrd, linux.CommandLine ?? Platform.LinuxBootRequest.DefaultBootargs),
                MachineOptions.TimebaseFrequency);
        }
        catch
        {
            machine.Dispose();
            throw;
        }
        return new CreatedVm(machine, kernel.Name, machine.Vcpu(0).GetRegisters().Nip);
    }
}
