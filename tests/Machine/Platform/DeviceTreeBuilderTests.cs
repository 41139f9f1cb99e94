using System.Buffers.Binary;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Machine.Platform;

/// <summary>The pseries device tree, read back by Debian's dtc (device-tree-compiler, installed by scripts/setup).</summary>
public sealed class DeviceTreeBuilderTests
{
    private static readonly PseriesTreeOptions Options = new(Vcpus: 2, MemorySize: 256UL << 20, Bootargs: "console=hvc0 quiet",
        InitrdStart: 0x3000000, InitrdEnd: 0x31222b9, RtasBase: 0x2900000, RtasSize: 0x1000, TimebaseFrequency: 512_000_000);

    private static string Dts(byte[] blob)
    {
        string file = Path.Combine(Path.GetTempPath(), $"actorstep-fdt-{Environment.ProcessId}-{Guid.NewGuid():N}.dtb");
        File.WriteAllBytes(file, blob);
        try { return GuestAssembler.Run("dtc", $"-I dtb -O dts -q {file}"); }
        finally { File.Delete(file); }
    }

    [Fact]
    public void DtcParsesTheTreeAndReadsBackTheChosenNode()
    {
        string dts = Dts(DeviceTreeBuilder.Build(Options));

        Assert.Contains("device_type = \"chrp\";", dts);
        Assert.Contains("bootargs = \"console=hvc0 quiet\";", dts);
        Assert.Contains("stdout-path = \"/vdevice/vty@71000000\";", dts);
        Assert.Contains("linux,initrd-start = <0x00 0x3000000>;", dts);
        Assert.Contains("linux,initrd-end = <0x00 0x31222b9>;", dts);
        Assert.Contains("ibm,architecture-vec-5 = [1a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 40 00 40];", dts);
    }

    [Fact]
    public void DtcReadsEveryCpuWithItsInterruptServerAndTheRadixFeatures()
    {
        string dts = Dts(DeviceTreeBuilder.Build(Options));

        Assert.Contains("PowerPC,POWER9@0 {", dts);
        Assert.Contains("PowerPC,POWER9@1 {", dts);
        Assert.Contains("ibm,ppc-interrupt-server#s = <0x01>;", dts);
        Assert.Contains("timebase-frequency = <0x1e848000>;", dts); // 512 MHz
        Assert.Contains("ibm,processor-radix-AP-encodings = <0x0c 0xa0000010 0x20000015 0x4000001e>;", dts);
        Assert.Contains("ibm,pa-features = [42 00 f6 3f", dts);
        Assert.Contains("reg = <0x00 0x00 0x00 0x10000000>;", dts); // memory@0: 256 MiB
    }

    [Fact]
    public void DtcReadsRtasWithItsTokensHypertasFunctionsAndTheReservedArea()
    {
        string dts = Dts(DeviceTreeBuilder.Build(Options));

        Assert.Contains("/memreserve/\t0x0000000002900000 0x0000000000001000;", dts);
        Assert.Contains("ibm,hypertas-functions = \"hcall-set-mode\\0hcall-splpar\";", dts);
        Assert.Contains("linux,rtas-base = <0x2900000>;", dts);
        Assert.Contains("rtas-size = <0x1000>;", dts);
        Assert.Contains("start-cpu = <0x2006>;", dts);
        Assert.Contains("compatible = \"IBM,ppc-xicp\";", dts);
        Assert.Contains("ibm,interrupt-server-ranges = <0x00 0x02>;", dts);
        Assert.Contains("compatible = \"hvterm1\";", dts);
    }

    [Fact]
    public void HeaderIsVersion17CompatibleWith16AndBootCpuIsThatCpusInterruptServer()
    {
        byte[] blob = DeviceTreeBuilder.Build(Options with { BootCpu = 1 });

        Assert.Equal(0xD00DFEEDu, BinaryPrimitives.ReadUInt32BigEndian(blob));
        Assert.Equal((uint)blob.Length, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(4)));
        Assert.Equal(17u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(20)));
        Assert.Equal(16u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(24)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(28)));
        Assert.Contains("// boot_cpuid_phys:\t0x1\n", FdtDump(blob));
    }

    [Fact]
    public void EveryCpuAdvertisesVmxAndVsxUnlessTheOptionLeavesThemOut()
    {
        string with = Dts(DeviceTreeBuilder.Build(Options));
        string without = Dts(DeviceTreeBuilder.Build(Options with { AdvertiseVector = false }));

        Assert.Equal(2, with.Split("ibm,vmx = <0x02>;").Length - 1);
        Assert.DoesNotContain("ibm,vmx", without);
        Assert.Contains("ibm,pa-features = [42 00 f6 3f", without); // the rest of the cpu node stays
    }

    [Fact]
    public void RtasSaysOsTermReturnsSoThatThePanickingKernelCallsIt()
    {
        string dts = Dts(DeviceTreeBuilder.Build(Options));

        Assert.Contains("ibm,os-term = <0x201f>;", dts);
        Assert.Contains("ibm,extended-os-term;", dts);
    }

    private static string FdtDump(byte[] blob)
    {
        string file = Path.Combine(Path.GetTempPath(), $"actorstep-fdt-{Environment.ProcessId}-{Guid.NewGuid():N}.dtb");
        File.WriteAllBytes(file, blob);
        try { return GuestAssembler.Run("fdtdump", file); }
        finally { File.Delete(file); }
    }
}
