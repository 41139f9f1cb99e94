namespace ActorStep.Hypervisor;

/// <summary>PAPR hypercall numbers and return codes the platform implements (LoPAPR §14.5).</summary>
public static class Papr
{
    public const ulong H_SUCCESS = 0;
    public const long H_FUNCTION = -2;
    public const long H_PARAMETER = -4;
    public const long H_P2 = -55;
    public const long H_P3 = -56;
    public const long H_P4 = -57;
    public const long H_UNSUPPORTED_FLAG = -256;

    public const long H_HARDWARE = -1;
    public const long H_BUSY = 1;

    public const ulong H_CEDE = 0xE0;
    public const ulong H_CONFER = 0xE4;
    public const ulong H_GET_TERM_CHAR = 0x54;
    public const ulong H_PUT_TERM_CHAR = 0x58;
    public const ulong H_EOI = 0x64;
    public const ulong H_CPPR = 0x68;
    public const ulong H_IPI = 0x6C;
    public const ulong H_IPOLL = 0x70;
    public const ulong H_XIRR = 0x74;
    public const ulong H_REGISTER_VPA = 0xDC;
    public const ulong H_PROD = 0x108;
    public const ulong H_GET_CPU_CHARACTERISTICS = 0x1C8;
    public const ulong H_XIRR_X = 0x2FC;
    public const ulong H_RANDOM = 0x300;
    /// <summary>RTAS through the hypervisor (QEMU's KVMPPC_H_RTAS): r4 = the real address of the big-endian argument block.</summary>
    public const ulong H_RTAS = 0xF000;
    public const ulong H_SET_MODE = 0x31C;
    /// <summary>Registers the guest's process table (flags r4, real base r5, page size r6, log2(size)-12 r7).</summary>
    public const ulong H_REGISTER_PROC_TBL = 0x37C;
    /// <summary>ActorStep's own (the platform-specific range 0xF000–0xFFFC): stop the calling vcpu for good, r4 = status.
    /// PAPR since gave 0xF080 to H_GET_PERF_COUNTER_INFO, which Linux calls: a machine booted as a pseries guest does not serve it.</summary>
    public const ulong H_ACTORSTEP_STOP = 0xF080;

    public const ulong H_SET_MODE_RESOURCE_ADDR_TRANS_MODE = 3;
    public const ulong H_SET_MODE_RESOURCE_LE = 4;
}
