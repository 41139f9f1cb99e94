using ActorStep.Actors.Fleet.Wire;
using ActorStep.Actors.Node;
using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Host.Fleet;
using Grpc.Core;
using static ActorStep.Actors.Node.VmManagerProtocol;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Host.Services;

/// <summary>actorstep.v1.Vms: creates on this node, lists from the cluster-wide directory, routes the rest to the VM's node.</summary>
public sealed class VmsService(VmRouter router, ApiAccess access, ILogger<VmsService> log) : Vms.VmsBase
{
    private ActorStepBackend Backend => router.Api.Backend;

    public override async Task<Vm> CreateVm(CreateVmRequest r, ServerCallContext context)
    {
        var call = CallScope.From(context);
        if (router.Fleet is { } fleet && r.VmId.Length > 0 && await fleet.LocateAsync(r.VmId, call) is { } elsewhere && !fleet.IsSelf(elsewhere.Record))
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"a VM named {Quote(r.VmId)} exists already, on node {FleetNode.Name(elsewhere.Record)}"));
        bool qemu = r.ImageCase == CreateVmRequest.ImageOneofCase.Qemu;
        bool linux = r.ImageCase == CreateVmRequest.ImageOneofCase.Linux;
        var spec = new VmSpec(
            r.ImageCase == CreateVmRequest.ImageOneofCase.ElfPath ? ClientFile(r.ElfPath) : null,
            r.ImageCase == CreateVmRequest.ImageOneofCase.BuiltIn ? r.BuiltIn : null,
            r.Vcpus switch
            {
                0 => 4,
                <= int.MaxValue => (int)r.Vcpus,
                // The API's VMs run on the simulator (VmSpec.Backend's default); the manager checks the rest.
                _ => throw ApiMapping.Invalid($"vcpus must be 1..{Machine.SimulatedBackend.Instance.MaxVcpus}, not {r.Vcpus}"),
            },
            r.MemorySize != 0 ? r.MemorySize : linux ? 256UL << 20 : 128UL << 20,
            new Dictionary<string, string>(r.Labels),
            ApiMapping.Flavour(r.Flavour),
            r.VmId,
            qemu ? Hypervisor.BackendKind.Qemu : Hypervisor.BackendKind.Simulated,
            qemu ? r.Qemu.SourceCase switch
            {
                QemuSource.SourceOneofCase.GdbEndpoint => new Hypervisor.QemuSource(ClientGdbEndpoint(r.Qemu.GdbEndpoint), null, ClientQmpEndpoint(r.Qemu.QmpEndpoint)),
                QemuSource.SourceOneofCase.None when r.Qemu.QmpEndpoint.Length > 0 => new Hypervisor.QemuSource(null, null, ClientQmpEndpoint(r.Qemu.QmpEndpoint)),
                QemuSource.SourceOneofCase.Launch when r.Qemu.QmpEndpoint.Length > 0 =>
                    throw ApiMapping.Invalid("qemu.qmp_endpoint is for attaching to a running QEMU: one the server starts gets a private QMP socket of its own"),
                QemuSource.SourceOneofCase.Launch => access.ClientsMayLaunchQemu
                    ? new Hypervisor.QemuSource(null, r.Qemu.Launch.Arguments.ToList())
                    : throw new RpcException(new Status(StatusCode.PermissionDenied,
                        "this server does not start a QEMU for a client (its arguments can read and write any file the server's user can): " +
                        "the operator allows it with serve --allow-qemu-launch, or attach to a running QEMU with qemu.gdb_endpoint")),
                _ => throw ApiMapping.Invalid("qemu: give gdb_endpoint (a running QEMU's gdbstub), qmp_endpoint (its QMP monitor) or launch (QEMU's arguments)"),
            } : null,
            linux ? new Hypervisor.LinuxKernelImage(ClientFile(r.Linux.KernelPath),
                r.Linux.InitrdPath.Length == 0 ? null : ClientFile(r.Linux.InitrdPath), NullIfEmpty(r.Linux.CommandLine)) : null);
        var created = await Backend.AskAsync<VmCreated>(new CreateVm(spec), call);
        log.LogInformation("VM {VmId} created from {Image} with {Vcpus} vcpus", created.Vm.VmId, created.Vm.Image, created.Vm.Vcpus);
        return await router.Api.GetVm(new GetVmRequest { VmId = created.Vm.VmId }, call);
    }

    /// <summary>An image path a client named: a real path inside the served directories, else PERMISSION_DENIED or INVALID_ARGUMENT.</summary>
    private string ClientFile(string path)
    {
        try { return access.Images.Resolve(path); }
        catch (ImagePathException e) { throw new RpcException(new Status(e.Outside ? StatusCode.PermissionDenied : StatusCode.InvalidArgument, e.Message)); }
    }

    /// <summary>
    /// A gdbstub a client named: a loopback TCP port as given (any local user can reach it without the server), a Unix socket
    /// only inside the served directories (the server's user may reach sockets the client cannot).
    /// </summary>
    private string ClientGdbEndpoint(string endpoint) =>
        endpoint.StartsWith("unix:", StringComparison.Ordinal) ? "unix:" + ClientFile(endpoint[5..]) : endpoint;

    /// <summary>A QMP monitor a client named, as a gdbstub (<see cref="ClientGdbEndpoint"/>); null when none.</summary>
    private string? ClientQmpEndpoint(string endpoint) => endpoint.Length == 0 ? null : ClientGdbEndpoint(endpoint);

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    public override async Task<ListVmsResponse> ListVms(ListVmsRequest r, ServerCallContext context)
    {
        var call = CallScope.From(context);
        var selector = new Dictionary<string, string>(r.LabelSelector);
        var local = await Backend.AskAsync<VmList>(new VmManagerProtocol.ListVms(selector), call);
        var response = new ListVmsResponse();
        if (router.Fleet is not { } fleet)
        {
            response.Vms.AddRange(local.Vms.Select(v => ApiMapping.Vm(v)));
            return response;
        }
        var mine = local.Vms.ToDictionary(v => v.VmId);
        foreach (var entry in await fleet.FindAsync(selector, call))
            response.Vms.Add(fleet.IsSelf(entry.Record) && mine.TryGetValue(entry.Record.VmId, out var info)
                ? router.Api.Mine(ApiMapping.Vm(info))
                : FromRecord(entry.Record, entry.Lost));
        return response;
    }

    /// <summary>A VM of another node as the directory records it (ListVms leaves vcpus empty anyway).</summary>
    private static Vm FromRecord(VmRecord r, bool lost)
    {
        bool pr = r.Flavour == "kvm-pr";
        var vm = new Vm
        {
            VmId = r.VmId, Image = r.Image, Flavour = pr ? Flavour.Pr : Flavour.Hv, VcpuCount = (uint)r.Vcpus, MemorySize = r.MemorySize,
            Entry = r.Entry, ImageLittleEndian = r.ImageLittleEndian, Node = r.NodeName, Lost = lost,
            Capabilities = new Capabilities
            {
                HardwareSingleStep = r.HardwareSingleStep, DebugInstruction = r.DebugInstruction, Flavour = r.Flavour,
                HoldsAsyncInterrupts = r.HoldsAsyncInterrupts, AllStop = r.AllStop,
            },
        };
        vm.Labels.Add(r.Labels);
        return vm;
    }

    public override Task<Vm> GetVm(GetVmRequest r, ServerCallContext context) => router.CallAsync<Vm>(VmMethods.GetVm, r.VmId, r, context);

    public override async Task<DeleteVmResponse> DeleteVm(DeleteVmRequest r, ServerCallContext context)
    {
        var d = await router.CallAsync<DeleteVmResponse>(VmMethods.DeleteVm, r.VmId, r, context);
        log.LogInformation("VM {VmId} deleted", d.VmId);
        return d;
    }
}
