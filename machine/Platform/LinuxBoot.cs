namespace ActorStep.Machine.Platform;

/// <summary>What a Linux boot brings: the kernel, an optional initrd, the command line.</summary>
/// <param name="AdvertiseVector">the device tree offers VMX and VSX (<c>ibm,vmx</c>); false boots the kernel on its scalar paths</param>
public sealed record LinuxBootRequest(ElfImage Kernel, byte[]? Initrd = null, string Bootargs = LinuxBootRequest.DefaultBootargs,
    bool AdvertiseVector = true)
{
    public const string DefaultBootargs = "console=hvc0";

    /// <summary>Reads an initrd file bounded as an image file is (a regular file of at most 256 MiB).</summary>
    public static byte[] ReadInitrd(string path) => ImageFile.Read(path, ElfImage.MaxFileSize);
}

/// <summary>Where the pieces go in guest real memory (all above the kernel's end, as shared/reference/linux-pseries says).</summary>
public sealed record LinuxLayout(ulong KernelEnd, ulong RtasBase, uint RtasSize, ulong InitrdStart, ulong InitrdEnd, ulong FdtAddress, ulong FdtSize)
{
    private const ulong Align = 0x10000;

    /// <summary>
    /// RTAS first (reserved in the tree's reservation map), then the initrd, then the FDT (the kernel reserves the FDT
    /// and the initrd itself); each 64 KiB aligned, above the highest byte any PT_LOAD segment occupies.
    /// </summary>
    public static LinuxLayout Plan(ElfImage kernel, ulong initrdLength, ulong fdtLength, ulong memorySize, uint rtasSize = 0x1000)
    {
        ulong kernelEnd = kernel.Segments.Max(s => s.PhysicalAddress + s.MemorySize);
        ulong rtas = Up(kernelEnd);
        ulong initrd = Up(rtas + rtasSize);
        ulong fdt = Up(initrd + initrdLength);
        if (fdt + fdtLength > memorySize)
            throw new ElfFormatException($"the kernel, RTAS, initrd and device tree need 0x{fdt + fdtLength:x} bytes: more than the guest's 0x{memorySize:x} bytes of RAM");
        return new LinuxLayout(kernelEnd, rtas, rtasSize, initrd, initrdLength == 0 ? initrd : initrd + initrdLength, fdt, fdtLength);
    }

    private static ulong Up(ulong a) => (a + Align - 1) & ~(Align - 1);
}

/// <summary>
/// Enters Linux as kexec and petitboot do, without firmware: the ELF loaded at its physical addresses, vcpu 0 at the
/// real-mode entry with r3 = the device tree's real address, r4 = 0, r5 = 0 (no Open Firmware client interface) and
/// MSR = SF|ME|LE; every other vcpu held until RTAS start-cpu.
/// </summary>
public static class LinuxBoot
{
    /// <summary>The 32-bit big-endian RTAS entry stub (QEMU's spapr_rtas.c): <c>mr r4,r3; lis r3,0; ori r3,r3,H_RTAS; sc 1; blr</c>
    /// (H_RTAS = 0xF000 does not fit <c>li</c>'s signed immediate).</summary>
    internal static readonly uint[] RtasStub = [0x7c641b78, 0x3c600000, 0x6063f000, 0x44000022, 0x4e800020];

    public static LinuxLayout Load(SimulatedMachine vm, LinuxBootRequest request, ulong timebaseFrequency)
    {
        var kernel = request.Kernel;
        if (!kernel.LittleEndian) throw new ElfFormatException($"{kernel.Name}: a big-endian kernel is not supported (ppc64le only)");
        ulong initrdLength = (ulong)(request.Initrd?.Length ?? 0);
        // The tree's size does not depend on where things go: build it once to measure, once for real.
        byte[] Tree(LinuxLayout l) => DeviceTreeBuilder.Build(new PseriesTreeOptions(vm.VcpuCount, vm.MemorySize, request.Bootargs,
            l.InitrdStart, l.InitrdEnd, l.RtasBase, l.RtasSize, timebaseFrequency, AdvertiseVector: request.AdvertiseVector));
        var probe = LinuxLayout.Plan(kernel, initrdLength, 0, vm.MemorySize);
        byte[] fdt = Tree(probe);
        var layout = LinuxLayout.Plan(kernel, initrdLength, (ulong)fdt.Length, vm.MemorySize);
        fdt = Tree(layout);

        vm.LoadImage(kernel);
        vm.IsPseriesPlatform = true;
        Span<byte> word = stackalloc byte[4];
        for (int i = 0; i < RtasStub.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(word, RtasStub[i]);
            vm.WriteMemory(layout.RtasBase + (ulong)i * 4, word);
        }
        if (request.Initrd is { } initrd) vm.WriteMemory(layout.InitrdStart, initrd);
        vm.WriteMemory(layout.FdtAddress, fdt);

        // The real-mode entry: real mode ignores EA bits 0:3, so 0xC000000000000000 is real address 0.
        vm.Vcpu(0).EnterLinux(kernel.Entry & 0x0FFFFFFFFFFFFFFF, layout.FdtAddress);
        for (int i = 1; i < vm.VcpuCount; i++) vm.Vcpu(i).Hold();
        return layout;
    }
}
