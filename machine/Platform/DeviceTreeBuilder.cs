namespace ActorStep.Machine.Platform;

/// <summary>What the device tree of a pseries guest says (shared/reference/linux-pseries/pseries-radix-xics.dts).</summary>
/// <param name="Vcpus">one thread per core (no doorbells), interrupt server number = the vcpu index</param>
/// <param name="InitrdStart">0 with <paramref name="InitrdEnd"/> 0: no initrd</param>
/// <param name="RtasBase">the RTAS area, reserved in the memory reservation map</param>
/// <param name="AdvertiseVector">the cpus say <c>ibm,vmx = 2</c> (VMX and VSX); false leaves the property out, so that the kernel
/// and userspace keep to their scalar code (for a machine without the vector instructions)</param>
public sealed record PseriesTreeOptions(
    int Vcpus,
    ulong MemorySize,
    string Bootargs,
    ulong InitrdStart,
    ulong InitrdEnd,
    ulong RtasBase,
    uint RtasSize,
    ulong TimebaseFrequency,
    int BootCpu = 0,
    bool AdvertiseVector = true);

/// <summary>
/// Builds the flattened device tree with which a pseries Linux is entered without firmware (kexec style, r3 = the
/// blob): root <c>device_type "chrp"</c>, cpus with their interrupt server numbers and the radix features, memory,
/// /chosen with the CAS answer (radix + GTSE, XICS), /rtas with its tokens and the hypertas functions, a XICS
/// presentation controller and an hvterm1 vty as the console.
/// </summary>
public static class DeviceTreeBuilder
{
    /// <summary>The vty's terminal number (its <c>reg</c>): what H_PUT_TERM_CHAR's r4 carries.</summary>
    public const uint VtyTermno = 0x71000000;
    public const string VtyPath = "/vdevice/vty@71000000";

    /// <summary>POWER9 DD2.0's PVR as <c>cpu-version</c> would carry it (the logical PVR 0x0f000005 = ISA 3.0 mode).</summary>
    public const uint CpuVersion = 0x0F000005;

    // ibm,pa-features as QEMU's spapr gives POWER9 (hw/ppc/spapr.c pa_features_300): byte 40 bit 0 = radix.
    private static readonly byte[] PaFeatures =
    [
        0x42, 0x00, 0xf6, 0x3f, 0xc7, 0xc0, 0x00, 0xf0, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00,
        0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00,
        0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00,
    ];

    /// <summary>Page sizes the radix MMU offers: 4K, 64K, 2M, 1G (AP in the top 3 bits, log2 size below).</summary>
    private static readonly uint[] RadixApEncodings = [0x0000000c, 0xa0000010, 0x20000015, 0x4000001e];

    /// <summary>The RTAS calls this machine answers, by their property names, with their tokens.</summary>
    public static readonly IReadOnlyList<(string Name, uint Token)> RtasTokens =
    [
        ("get-time-of-day", Rtas.GetTimeOfDay),
        ("power-off", Rtas.PowerOff),
        ("system-reboot", Rtas.SystemReboot),
        ("query-cpu-stopped-state", Rtas.QueryCpuStoppedState),
        ("start-cpu", Rtas.StartCpu),
        ("stop-self", Rtas.StopSelf),
        ("ibm,set-xive", Rtas.SetXive),
        ("ibm,get-xive", Rtas.GetXive),
        ("ibm,int-off", Rtas.IntOff),
        ("ibm,int-on", Rtas.IntOn),
        ("display-character", Rtas.DisplayCharacter),
        ("ibm,os-term", Rtas.OsTerm),
    ];

    /// <summary>/chosen/ibm,architecture-vec-5 as CAS would leave it: byte 0 = length-1, 24 = radix, 26 = GTSE, 23 = 0 (XICS).</summary>
    internal static byte[] ArchitectureVec5()
    {
        var v = new byte[27];
        v[0] = 26;
        v[24] = 0x40;
        v[26] = 0x40;
        return v;
    }

    public static byte[] Build(PseriesTreeOptions o)
    {
        if (o.Vcpus < 1) throw new ArgumentOutOfRangeException(nameof(o), o.Vcpus, "at least one vcpu");
        if ((uint)o.BootCpu >= (uint)o.Vcpus) throw new ArgumentOutOfRangeException(nameof(o), o.BootCpu, "the boot cpu is not a vcpu");
        var w = new FdtWriter();
        w.Reserve(o.RtasBase, o.RtasSize);

        w.BeginNode("");
        w.Cells("#address-cells", 2);
        w.Cells("#size-cells", 2);
        w.Property("device_type", "chrp");
        w.Property("model", "ActorStep simulated pSeries");
        w.Property("compatible", "qemu,pseries");

        w.BeginNode("chosen");
        w.Property("bootargs", o.Bootargs);
        w.Property("stdout-path", VtyPath);
        w.Property("linux,stdout-path", VtyPath);
        if (o.InitrdEnd > o.InitrdStart)
        {
            w.Cells64("linux,initrd-start", o.InitrdStart);
            w.Cells64("linux,initrd-end", o.InitrdEnd);
        }
        w.Property("ibm,architecture-vec-5", ArchitectureVec5());
        w.EndNode();

        w.BeginNode("memory@0");
        w.Property("device_type", "memory");
        w.Cells64("reg", 0, o.MemorySize);
        w.EndNode();

        w.BeginNode("cpus");
        w.Cells("#address-cells", 1);
        w.Cells("#size-cells", 0);
        for (int i = 0; i < o.Vcpus; i++)
        {
            w.BeginNode($"PowerPC,POWER9@{i:x}");
            w.Property("device_type", "cpu");
            w.Cells("reg", (uint)i);
            w.Cells("ibm,ppc-interrupt-server#s", (uint)i);
            w.Cells("cpu-version", CpuVersion);
            w.Cells("clock-frequency", 1_000_000_000);
            w.Cells("timebase-frequency", checked((uint)o.TimebaseFrequency));
            // dcbz zeroes 128 bytes here, as on POWER9.
            w.Cells("d-cache-block-size", 128);
            w.Cells("d-cache-line-size", 128);
            w.Cells("i-cache-block-size", 128);
            w.Cells("i-cache-line-size", 128);
            w.Cells("d-cache-size", 0x8000);
            w.Cells("i-cache-size", 0x8000);
            w.Property("64-bit");
            w.Property("status", "okay");
            if (o.AdvertiseVector) w.Cells("ibm,vmx", 2);
            w.Property("ibm,pa-features", PaFeatures);
            w.Cells("ibm,processor-radix-AP-encodings", RadixApEncodings);
            w.EndNode();
        }
        w.EndNode();

        w.BeginNode("interrupt-controller");
        w.Property("device_type", "PowerPC-External-Interrupt-Presentation");
        w.Property("compatible", "IBM,ppc-xicp");
        w.Property("interrupt-controller");
        w.Cells("ibm,interrupt-server-ranges", 0, (uint)o.Vcpus);
        w.Cells("#interrupt-cells", 2);
        w.EndNode();

        w.BeginNode("rtas");
        // Its presence means an LPAR; hcall-set-mode is required (AIL, little-endian interrupts).
        w.Property("ibm,hypertas-functions", "hcall-set-mode", "hcall-splpar");
        w.Cells("linux,rtas-base", (uint)o.RtasBase);
        w.Cells("linux,rtas-entry", (uint)o.RtasBase);
        w.Cells("rtas-size", o.RtasSize);
        foreach (var (name, token) in RtasTokens) w.Cells(name, token);
        // ibm,os-term returns here (the kernel calls it on panic only when this says so); the machine stops at it.
        w.Property("ibm,extended-os-term");
        w.EndNode();

        w.BeginNode("vdevice");
        w.Property("device_type", "vdevice");
        w.Property("compatible", "IBM,vdevice");
        w.Cells("#address-cells", 1);
        w.Cells("#size-cells", 0);
        w.Cells("#interrupt-cells", 2);
        w.Property("interrupt-controller");
        w.BeginNode($"vty@{VtyTermno:x}");
        w.Property("device_type", "serial");
        w.Property("compatible", "hvterm1");
        w.Cells("reg", VtyTermno);
        w.EndNode();
        w.EndNode();

        w.EndNode();
        // boot_cpuid_phys must be a cpu's ibm,ppc-interrupt-server#s or the kernel BUG()s: server number = index here.
        return w.Finish((uint)o.BootCpu);
    }
}

/// <summary>The RTAS tokens this machine hands out (the values QEMU's spapr uses, RTAS_TOKEN_BASE 0x2000 + n).</summary>
public static class Rtas
{
    public const uint GetTimeOfDay = 0x2001;
    public const uint PowerOff = 0x2003;
    public const uint SystemReboot = 0x2004;
    public const uint QueryCpuStoppedState = 0x2005;
    public const uint StartCpu = 0x2006;
    public const uint StopSelf = 0x2007;
    public const uint SetXive = 0x200A;
    public const uint GetXive = 0x200B;
    public const uint IntOff = 0x200C;
    public const uint IntOn = 0x200D;
    public const uint DisplayCharacter = 0x2010;
    public const uint OsTerm = 0x201F;
}
