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
            var image = request.ElfPath is { Length: > 0 } path ? ElfImage.Load(path) : ElfImage.BuiltIn(request.BuiltIn ?? "");
            var machine = SimulatedMachine.Load(image, new MachineOptions(request.Vcpus, request.MemorySize, request.Flavour));
            return new CreatedVm(machine, image.Name, image.Entry);
        }
        catch (ElfFormatException e)
        {
            throw new InvalidVmRequestException(e.Message);
        }
    }
}
