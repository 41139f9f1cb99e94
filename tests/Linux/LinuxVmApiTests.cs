using ActorStep.Api.V1;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Grpc;
using ActorStep.Tests.Support;
using Grpc.Core;

namespace ActorStep.Tests.Linux;

/// <summary>gRPC CreateVm with a Linux kernel (issue 13 point 1): the VM is halted at the kernel's first instruction, the
/// secondaries exist but are not started, and the kernel runs under the debugger to a breakpoint on its symbols.</summary>
[Collection("linux")]
public sealed class LinuxVmApiTests(GrpcServerFixture server) : IClassFixture<GrpcServerFixture>
{
    /// <summary>Issue 13 point 7 too: stops and the VM's vcpus name their NIP from the vmlinux's symbol table, in real mode at the
    /// entry (real address 0, the kernel's 0xc000000000000000) and at start_kernel's local entry with translation on.</summary>
    [Fact]
    public void A_kernel_VM_halts_at_its_first_instruction_and_continues_to_a_breakpoint_at_start_kernel_named_so()
    {
        var assets = LinuxAssets.Get();
        var vm = server.Vms.CreateVm(new CreateVmRequest
        {
            Linux = new LinuxKernel { KernelPath = assets.Vmlinux, CommandLine = "console=hvc0 actorstep-api" },
            Vcpus = 2,
            VmId = "linux-api",
        }, deadline: GrpcServerFixture.Deadline);
        try
        {
            Assert.Equal(256UL << 20, vm.MemorySize);
            Assert.Equal(0UL, vm.Entry); // the real-mode entry: vmlinux's 0xc000000000000000 with translation off
            var regs = server.Registers.GetVcpuRegisters(new GetVcpuRegistersRequest { VmId = vm.VmId, Vcpu = 0 }, deadline: GrpcServerFixture.Deadline);
            Assert.Equal(0UL, regs.Registers.Single(r => r.Name == "nip").Value);
            var kernel = ElfImage.Load(assets.Vmlinux);
            // readelf: __start is the FUNC at 0xc000000000000000 (size 0: it reaches the next symbol).
            Assert.Equal(kernel.Code.Describe(SymbolIndex.KernelBase, translated: true), GetVm(vm.VmId).Vcpus[0].Symbol);
            Assert.Equal("__start+0x0", GetVm(vm.VmId).Vcpus[0].Symbol);

            // The ELFv2 local entry point (after the two TOC-setup instructions, st_other says 8): start_here_common calls
            // start_kernel+8, as gdb's `break start_kernel` knows.
            var startKernelSymbol = kernel.Code.Named("start_kernel")!;
            Assert.Equal(kernel.Symbol("start_kernel"), startKernelSymbol.Address);
            ulong startKernel = startKernelSymbol.LocalEntry;
            Assert.NotEqual(startKernelSymbol.Address, startKernel);
            server.Breakpoints.InsertBreakpoint(new BreakpointRequest { VmId = vm.VmId, Address = startKernel }, deadline: GrpcServerFixture.Deadline);
            var stop = server.Run.Continue(new ContinueRequest { VmId = vm.VmId }, deadline: DateTime.UtcNow.AddSeconds(120));

            Assert.Equal(StopReason.Breakpoint, stop.Event.Reason);
            Assert.Equal((0u, startKernel), (stop.Event.Vcpu, stop.Event.Nip));
            string named = $"start_kernel+0x{startKernelSymbol.LocalEntryOffset:x}";
            Assert.Equal(named, stop.Event.Symbol);
            Assert.Equal(named, stop.Vcpus.Single(v => v.Vcpu == 0).Symbol);
            Assert.Equal(named, GetVm(vm.VmId).Vcpus[0].Symbol);
        }
        finally
        {
            server.Vms.DeleteVm(new DeleteVmRequest { VmId = vm.VmId }, deadline: GrpcServerFixture.Deadline);
        }
    }

    private Vm GetVm(string vmId) => server.Vms.GetVm(new GetVmRequest { VmId = vmId }, deadline: GrpcServerFixture.Deadline);

    [Fact]
    public void A_kernel_VM_whose_kernel_file_is_missing_is_refused_with_INVALID_ARGUMENT()
    {
        // Inside a served directory (the temporary one): missing is INVALID_ARGUMENT; outside any, PERMISSION_DENIED.
        var e = Assert.Throws<RpcException>(() => server.Vms.CreateVm(new CreateVmRequest
        {
            Linux = new LinuxKernel { KernelPath = Path.Combine(Path.GetTempPath(), $"no-such-vmlinux-{Guid.NewGuid():n}") },
        }, deadline: GrpcServerFixture.Deadline));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        var outside = Assert.Throws<RpcException>(() => server.Vms.CreateVm(new CreateVmRequest
        {
            Linux = new LinuxKernel { KernelPath = "/nonexistent/vmlinux" },
        }, deadline: GrpcServerFixture.Deadline));
        Assert.Equal(StatusCode.PermissionDenied, outside.StatusCode);
    }
}
