using ActorStep.Hypervisor;

namespace ActorStep.Backends.Qemu;

/// <summary>
/// Creates QEMU VMs: attaches to a running QEMU's gdbstub (which pauses it) or starts <c>qemu-system-ppc64</c> with the given
/// arguments and attaches. The vcpus, memory and image are QEMU's: a request's vcpu count and memory size are not used.
/// </summary>
public sealed class QemuBackend(TimeSpan? attachTimeout = null) : IBackendFactory
{
    private readonly TimeSpan _attachTimeout = attachTimeout ?? TimeSpan.FromSeconds(20);

    public BackendKind Kind => BackendKind.Qemu;
    /// <summary>QEMU's pseries limit is far above what one gdb client can drive; the VM says how many it has.</summary>
    public int MaxVcpus => 1024;

    public CreatedVm Create(VmImageRequest request)
    {
        var source = request.Qemu ?? throw new InvalidVmRequestException("a QEMU VM needs a gdbstub to attach to or QEMU arguments to start");
        if (source.GdbEndpoint is { Length: > 0 } endpoint)
        {
            try { GdbStubConnection.Parse(endpoint); }
            catch (ArgumentException e) { throw new InvalidVmRequestException(e.Message); }
            return Created(Attach(endpoint, null), $"qemu at {endpoint}");
        }
        if (source.LaunchArguments is not { Count: > 0 } args) throw new InvalidVmRequestException("a QEMU VM needs a gdbstub to attach to or QEMU arguments to start");
        QemuProcess process;
        try { process = QemuProcess.Start(args); }
        catch (ArgumentException e) { throw new InvalidVmRequestException(e.Message); }
        catch (InvalidOperationException e) { throw new InvalidVmRequestException(e.Message); }
        try
        {
            return Created(Attach(process.GdbEndpoint, process), $"qemu (pid {process.ProcessId})");
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    private QemuVm Attach(string endpoint, QemuProcess? process)
    {
        try { return QemuVm.Attach(endpoint, _attachTimeout, process); }
        catch (Exception e) when (e is QemuLostException or GdbStubRefusedException or InvalidOperationException)
        {
            string why = e.Message;
            if (process is { HasExited: true }) why += $"; QEMU exited: {process.ErrorOutput.Trim()}";
            throw new InvalidVmRequestException($"cannot attach to QEMU: {why}");
        }
    }

    private static CreatedVm Created(QemuVm vm, string name) => new(vm, name, vm.GetVcpu(0).GetRegisters().Nip);
}
