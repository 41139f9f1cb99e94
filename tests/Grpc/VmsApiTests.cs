using System.Diagnostics;
using ActorStep.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Grpc;

/// <summary>actorstep.v1.Vms through real Kestrel: create, list by labels, describe, delete.</summary>
public class VmsApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    [Fact]
    public void Serve_starts_the_demo_guest_halted_at_its_entry()
    {
        var initial = server.Server.InitialVm!;
        var vm = server.Vms.GetVm(new GetVmRequest { VmId = initial.VmId }, deadline: Deadline);
        Assert.Equal("demo.elf", vm.Image);
        Assert.Equal(4u, vm.VcpuCount);
        Assert.False(vm.Running);
        Assert.All(vm.Vcpus, v => Assert.Equal((VcpuState.Stopped, vm.Entry), (v.State, v.Nip)));
    }

    [Fact]
    public void Created_vm_is_described_with_its_vcpus_capabilities_and_labels()
    {
        var vm = server.Vms.CreateVm(new CreateVmRequest
        {
            BuiltIn = "demo", Vcpus = 4, MemorySize = 16 << 20, Flavour = Flavour.Pr, Labels = { ["team"] = "kernel" },
        }, deadline: Deadline);
        Assert.Matches("^vm-[0-9]+$", vm.VmId);
        Assert.Equal(4, vm.Vcpus.Count);
        Assert.Equal(new uint[] { 0, 1, 2, 3 }, vm.Vcpus.Select(v => v.Vcpu));
        Assert.True(vm.Capabilities.HardwareSingleStep);
        Assert.Equal("kvm-pr", vm.Capabilities.Flavour);
        Assert.Equal(0x00dddd00u, vm.Capabilities.DebugInstruction);
        Assert.True(vm.Capabilities.HoldsAsyncInterrupts);
        Assert.False(vm.Capabilities.AllStop);
        Assert.Equal(16UL << 20, vm.MemorySize);
        Assert.Equal("kernel", vm.Labels["team"]);
        Assert.True(vm.ImageLittleEndian);
    }

    [Fact]
    public void List_returns_only_vms_whose_labels_include_every_selector_pair()
    {
        string tag = Guid.NewGuid().ToString("N")[..8];
        server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20, VmId = $"a-{tag}", Labels = { ["t"] = tag, ["role"] = "db" } }, deadline: Deadline);
        server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20, VmId = $"b-{tag}", Labels = { ["t"] = tag, ["role"] = "web" } }, deadline: Deadline);

        var both = server.Vms.ListVms(new ListVmsRequest { LabelSelector = { ["t"] = tag } }, deadline: Deadline);
        var web = server.Vms.ListVms(new ListVmsRequest { LabelSelector = { ["t"] = tag, ["role"] = "web" } }, deadline: Deadline);
        var all = server.Vms.ListVms(new ListVmsRequest(), deadline: Deadline);

        Assert.Equal(new[] { $"a-{tag}", $"b-{tag}" }, both.Vms.Select(v => v.VmId));
        Assert.Equal($"b-{tag}", Assert.Single(web.Vms).VmId);
        Assert.Contains(all.Vms, v => v.VmId == server.Server.InitialVm!.VmId);
    }

    [Fact]
    public void Created_vm_can_load_an_elf_file_from_the_server_file_system()
    {
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, File.ReadAllBytes(FindGuest("spin.elf")));
        try
        {
            var vm = server.Vms.CreateVm(new CreateVmRequest { ElfPath = path, Vcpus = 2, MemorySize = 1 << 20 }, deadline: Deadline);
            Assert.Equal(Path.GetFileName(path), vm.Image);
            Assert.Equal(2, vm.Vcpus.Count);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Deleted_vm_is_gone_and_leaves_no_breakpoint_in_its_guest()
    {
        var vm = server.NewDemoVm();
        var info = server.Info(vm.VmId);
        server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = vm.Entry + 8 }, deadline: Deadline);
        Assert.Equal(1, BreakpointWords(info));

        server.Vms.DeleteVm(new DeleteVmRequest { VmId = vm.VmId }, deadline: Deadline);

        Assert.Equal(0, BreakpointWords(info));
        Fails(StatusCode.NotFound, () => server.Vms.GetVm(new GetVmRequest { VmId = vm.VmId }, deadline: Deadline));
        Assert.DoesNotContain(server.Vms.ListVms(new ListVmsRequest(), deadline: Deadline).Vms, v => v.VmId == vm.VmId);
    }

    [Fact]
    public void Create_refuses_bad_requests_with_invalid_argument_and_a_taken_id_with_already_exists()
    {
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { Vcpus = 1 }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "no-such-guest" }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { ElfPath = Path.Combine(Path.GetTempPath(), "no-such-file.elf") }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", Vcpus = 257 }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", MemorySize = 12345 }, deadline: Deadline));
        Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", VmId = "Bad Id" }, deadline: Deadline));
        var vm = server.NewDemoVm();
        Fails(StatusCode.AlreadyExists, () => server.Vms.CreateVm(new CreateVmRequest { BuiltIn = "spin", VmId = vm.VmId }, deadline: Deadline));
    }

    // An elf_path that would never end (a FIFO without a writer) or never stop (/dev/zero): refused unread, while every other
    // client's calls go on. Each image used to be read whole, unbounded, inside the VM manager that every call goes through.

    [Fact]
    public async Task A_fifo_without_a_writer_as_elf_path_is_invalid_argument_and_other_clients_are_answered_meanwhile()
    {
        var vm = server.NewDemoVm();
        string fifo = Path.Combine(Path.GetTempPath(), $"actorstep-fifo-{Guid.NewGuid():N}");
        using (var mkfifo = Process.Start("mkfifo", fifo)) mkfifo.WaitForExit();
        Assert.True(File.Exists(fifo), "mkfifo made no FIFO");
        var bad = server.Vms.CreateVmAsync(new CreateVmRequest { ElfPath = fifo, Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline).ResponseAsync;
        try
        {
            await OtherClientIsAnswered(vm);
            var e = await Assert.ThrowsAsync<RpcException>(() => bad);
            Assert.True(e.StatusCode == StatusCode.InvalidArgument, $"expected InvalidArgument, got {e.StatusCode}: {e.Status.Detail}");
            Assert.Contains("FIFO", e.Status.Detail);
            Assert.Contains(fifo, e.Status.Detail);
        }
        finally
        {
            // A server that did block in open(2) is let go: a read-write open of a FIFO never blocks and counts as its writer.
            if (!bad.IsCompleted) File.OpenHandle(fifo, FileMode.Open, FileAccess.ReadWrite).Dispose();
            File.Delete(fifo);
        }
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public async Task A_device_as_elf_path_is_invalid_argument_read_no_further_and_other_clients_are_answered_meanwhile(string device)
    {
        var vm = server.NewDemoVm();
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var bad = server.Vms.CreateVmAsync(new CreateVmRequest { ElfPath = device, Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline).ResponseAsync;
        await OtherClientIsAnswered(vm);
        var e = await Assert.ThrowsAsync<RpcException>(() => bad);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        Assert.True(e.StatusCode == StatusCode.InvalidArgument, $"expected InvalidArgument, got {e.StatusCode}: {e.Status.Detail}");
        Assert.Contains("character device", e.Status.Detail);
        Assert.Contains("regular file", e.Status.Detail);
        // The whole process (other test classes run meanwhile) allocated less than one image may have: nothing of the
        // device was read. Reading /dev/zero whole took the process past 2 GiB.
        Assert.True(allocated < ActorStep.Machine.ElfImage.MaxFileSize, $"the process allocated {allocated >> 20} MiB while the device was refused");
    }

    [Fact]
    public void A_directory_or_a_file_over_256_MiB_as_elf_path_is_invalid_argument()
    {
        var dir = Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { ElfPath = Path.GetTempPath(), Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline));
        Assert.Contains("directory", dir.Status.Detail);

        string big = Path.Combine(Path.GetTempPath(), $"actorstep-big-{Guid.NewGuid():N}.elf");
        using (var f = File.Create(big)) f.SetLength(ActorStep.Machine.ElfImage.MaxFileSize + 1); // sparse: no disk used
        try
        {
            var e = Fails(StatusCode.InvalidArgument, () => server.Vms.CreateVm(new CreateVmRequest { ElfPath = big, Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline));
            Assert.Contains("256 MiB", e.Status.Detail);
        }
        finally { File.Delete(big); }
    }

    /// <summary>Another client (its own channel) gets its GetVm, Step and CreateVm answered, each within its deadline.</summary>
    private async Task OtherClientIsAnswered(Vm vm)
    {
        using var channel = GrpcChannel.ForAddress(server.Server.Address);
        var vms = new Vms.VmsClient(channel);
        var run = new RunControl.RunControlClient(channel);
        var prompt = DateTime.UtcNow.AddSeconds(10);
        Assert.Equal(vm.VmId, (await vms.GetVmAsync(new GetVmRequest { VmId = vm.VmId }, deadline: prompt)).VmId);
        var step = await run.StepAsync(new StepRequest { VmId = vm.VmId, Vcpu = 0, SchedulerLocking = SchedulerLocking.On }, deadline: prompt);
        Assert.Equal(StopReason.StepCompleted, step.Event.Reason);
        var created = await vms.CreateVmAsync(new CreateVmRequest { BuiltIn = "spin", Vcpus = 1, MemorySize = 1 << 20 }, deadline: prompt);
        await vms.DeleteVmAsync(new DeleteVmRequest { VmId = created.VmId }, deadline: prompt);
    }

    private static string FindGuest(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "machine", "guests", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"machine/guests/{name} not found above {AppContext.BaseDirectory}");
    }
}
