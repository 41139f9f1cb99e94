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

    public const ulong H_CEDE = 0xE0;
    public const ulong H_PUT_TERM_CHAR = 0x58;
    public const ulong H_PROD = 0x108;
    public const ulong H_SET_MODE = 0x31C;
    /// <summary>Registers the guest's process table (flags r4, real base r5, page size r6, log2(size)-12 r7).</summary>
    public const ulong H_REGISTER_PROC_TBL = 0x37C;
    /// <summary>ActorStep's own (the platform-specific range 0xF000–0xFFFC): stop the calling vcpu for good, r4 = status.</summary>
    public const ulong H_ACTORSTEP_STOP = 0xF080;

    public const ulong H_SET_MODE_RESOURCE_ADDR_TRANS_MODE = 3;
    public const ulong H_SET_MODE_RESOURCE_LE = 4;
}
