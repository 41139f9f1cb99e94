namespace ActorStep.Protocol.Rsp;

/// <summary>The <c>E NN</c> replies this stub sends (gdb manual, "Standard Replies": the numbers are ours to choose;
/// qXfer's <c>E00</c> is fixed by "General Query Packets").</summary>
public static class RspErrors
{
    /// <summary>qXfer: the request was malformed or the annex is unknown.</summary>
    public const string BadAnnex = "E00";
    /// <summary>The packet could not be parsed: bad hex, a missing field, a length that does not match the data.</summary>
    public const string Malformed = "E01";
    /// <summary>The packet was longer than the PacketSize advertised in qSupported.</summary>
    public const string PacketTooLong = "E02";
    /// <summary>The packet names a thread or register that does not exist, or is not allowed now.</summary>
    public const string Invalid = "E16"; // EINVAL = 22
    /// <summary>The target failed the request (gRPC error, vcpu gone, …).</summary>
    public const string TargetFailure = "E05"; // EIO
    /// <summary>The memory at that address cannot be read or written.</summary>
    public const string BadAddress = "E0e"; // EFAULT = 14
}
