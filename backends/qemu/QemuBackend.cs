using ActorStep.Hypervisor;

namespace ActorStep.Backends.Qemu;

/// <summary>
/// Creates QEMU VMs: attaches to a running QEMU's gdbstub (which pauses it) — with its QMP monitor where given, or through that
/// monitor alone (ActorStep then starts the gdbstub) — or starts <c>qemu-system-ppc64</c> with the given arguments and attaches. The vcpus, memory and image are QEMU's: a request's vcpu count and memory size are not used.
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
        string? qmpEndpoint = source.QmpEndpoint is { Length: > 0 } q ? q : null;
        if (qmpEndpoint is not null)
        {
            if (source.LaunchArguments is { Count: > 0 }) throw new InvalidVmRequestException("a QMP endpoint is for attaching to a running QEMU; a QEMU ActorStep starts gets a QMP socket of its own");
            try { GdbStubConnection.Parse(qmpEndpoint, "QMP"); }
            catch (ArgumentException e) { throw new InvalidVmRequestException(e.Message); }
        }
        if (source.GdbEndpoint is { Length: > 0 } endpoint)
        {
            try { GdbStubConnection.Parse(endpoint); }
            catch (ArgumentException e) { throw new InvalidVmRequestException(e.Message); }
            var qmp = qmpEndpoint is null ? null : ConnectQmp(qmpEndpoint, null);
            try { return Created(Attach(endpoint, null, qmp), $"qemu at {endpoint}"); }
            catch { qmp?.Dispose(); throw; }
        }
        if (qmpEndpoint is not null)
        {
            var qmp = ConnectQmp(qmpEndpoint, null);
            try { return Created(AttachThroughQmp(qmp), $"qemu with QMP at {qmpEndpoint}"); }
            catch { qmp.Dispose(); throw; }
        }
        if (source.LaunchArguments is not { Count: > 0 } args) throw new InvalidVmRequestException("a QEMU VM needs a gdbstub to attach to or QEMU arguments to start");
        QemuProcess process;
        try { process = QemuProcess.Start(args); }
        catch (ArgumentException e) { throw new InvalidVmRequestException(e.Message); }
        catch (InvalidOperationException e) { throw new InvalidVmRequestException(e.Message); }
        QmpClient? launchedQmp = null;
        try
        {
            // The private QMP socket exists once the gdbstub listens (QEMU opens its monitors first).
            if (process.QmpEndpoint is { } own && process.WaitForGdbStub(_attachTimeout)) launchedQmp = ConnectQmp(own, process);
            return Created(Attach(process.GdbEndpoint, process, launchedQmp), $"qemu (pid {process.ProcessId})");
        }
        catch
        {
            launchedQmp?.Dispose();
            process.Dispose();
            throw;
        }
    }

    private static QmpClient ConnectQmp(string endpoint, QemuProcess? process)
    {
        try { return QmpClient.Connect(endpoint); }
        catch (QemuLostException e)
        {
            string why = e.Message;
            if (process is { HasExited: true }) why += $"; QEMU exited: {process.ErrorOutput.Trim()}";
            throw new InvalidVmRequestException($"cannot attach to QEMU: {why}");
        }
    }

    private QemuVm AttachThroughQmp(QmpClient qmp)
    {
        try { return QemuVm.AttachThroughQmp(qmp, _attachTimeout); }
        catch (Exception e) when (e is QemuLostException or GdbStubRefusedException or InvalidOperationException or QmpErrorException)
        {
            throw new InvalidVmRequestException($"cannot attach to QEMU through QMP at {qmp.Endpoint}: {e.Message}");
        }
    }

    private QemuVm Attach(string endpoint, QemuProcess? process, QmpClient? qmp)
    {
        try { return QemuVm.Attach(endpoint, _attachTimeout, process, qmp); }
        catch (Exception e) when (e is QemuLostException or GdbStubRefusedException or InvalidOperationException)
        {
            string why = e.Message;
            if (process is { HasExited: true }) why += $"; QEMU exited: {process.ErrorOutput.Trim()}";
            throw new InvalidVmRequestException($"cannot attach to QEMU: {why}");
        }
    }

    private static CreatedVm Created(QemuVm vm, string name) => new(vm, name, vm.GetVcpu(0).GetRegisters().Nip);
}
