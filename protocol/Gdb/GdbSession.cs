using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

/// <summary>Where the session is (the gdbstub crate's state machine): gdb only sends packets while the VM is
/// stopped; while a resume runs only the interrupt byte is meaningful.</summary>
public enum GdbSessionState
{
    /// <summary>The VM is stopped; every packet is served.</summary>
    Idle,
    /// <summary>A resume is in flight; gdb waits for its stop reply and may send Ctrl-C.</summary>
    Running,
    /// <summary>Ctrl-C was forwarded; the stop reply is awaited.</summary>
    Interrupting,
    /// <summary>gdb detached, killed the VM or went away; nothing more is served.</summary>
    Disconnected,
}

/// <summary>What to send back for one input: a payload (framed by <see cref="RspChannel"/>), or nothing yet.</summary>
/// <param name="Payload">The reply payload, already escaped where binary; null for none (resumes, <c>k</c>, Ctrl-C).</param>
/// <param name="EnterNoAckMode">Switch the channel to no-ack mode once this reply is queued (QStartNoAckMode).</param>
public sealed record GdbReply(byte[]? Payload, bool EnterNoAckMode = false)
{
    /// <summary>Text for gdb's console, sent before the payload as an <c>O</c> packet ("Stop Reply Packets": gdb prints it
    /// while it waits for the stop reply). Only with a stop reply.</summary>
    public string? ConsoleOutput { get; init; }

    public static readonly GdbReply None = new((byte[]?)null);
    public static readonly GdbReply Empty = new("");
    public static readonly GdbReply Ok = new("OK");

    public GdbReply(string payload, bool enterNoAckMode = false) : this(RspEncoding.Latin1(payload), enterNoAckMode) { }

    /// <summary>The payload as text, for logs and tests.</summary>
    public string? Text => Payload is null ? null : RspEncoding.Latin1(Payload);
    public override string ToString() => Text ?? "(no reply)";
}

/// <summary>
/// Maps gdb's packets (gdb manual, "Packets") to calls on an <see cref="IGdbTarget"/>: one VM, each vcpu a thread
/// (thread id = vcpu index + 1, process 1), all-stop mode. One file per packet family (as the gdbstub crate has).
/// <para><b>Register byte order.</b> Registers travel in the byte order of the guest <i>image</i>
/// (<c>littleEndianTarget</c>, from the ELF header), never in the order of the vcpu's current MSR[LE]: gdb takes
/// its byte order from the ELF too, and a guest that switches MSR[LE] at run time would otherwise show garbage
/// (QEMU does this and gdb shows pc as <c>0x0c50000000000000</c>). A user debugging a guest whose image
/// and run-time endianness differ says <c>set endian big|little</c> in gdb to match the image, not the MSR.
/// Memory is bytes and is never swapped.</para>
/// Not thread-safe: one caller (the connection pump) feeds it in order.
/// </summary>
public sealed partial class GdbSession
{
    private readonly IGdbTarget _target;
    private readonly int _packetSize;

    private bool _multiprocess;
    private bool _swbreak;           // both sides announced swbreak (qSupported)
    private int _generalVcpu;        // Hg: registers, memory, qC
    private int? _continueVcpu;      // Hc: old s/c packets; null = all
    private IReadOnlyList<GdbThreadInfo>? _threads;
    private readonly Dictionary<int, GdbWireRegisters> _registers = [];
    private readonly HashSet<ulong> _swBreakpoints = [];
    private Task<GdbStopEvent>? _resume;
    private GdbStopEvent? _lastStop;
    private int _stepFlags = StepEnable | StepNoIrq | StepNoTimer; // QEMU's qqemu.sstep flags, its default

    /// <param name="littleEndianTarget">The guest image is little-endian: registers go on the wire in that order.</param>
    /// <param name="packetSize">The PacketSize advertised in qSupported (the channel's limit).</param>
    public GdbSession(IGdbTarget target, bool littleEndianTarget, int packetSize = RspChannel.DefaultPacketSize)
    {
        _target = target;
        LittleEndianTarget = littleEndianTarget;
        _packetSize = packetSize;
    }

    public bool LittleEndianTarget { get; }
    public GdbSessionState State { get; private set; } = GdbSessionState.Idle;

    /// <summary>Completes when the resume in flight has stopped (already complete when none is);
    /// then <see cref="WaitForStopAsync"/> returns the stop reply at once.</summary>
    public Task StopReached => _resume ?? Task.CompletedTask;

    /// <summary>Serves one input from the channel: a packet, an oversized packet, or Ctrl-C.</summary>
    public async Task<GdbReply> HandleAsync(RspInput input, CancellationToken ct = default)
    {
        switch (input)
        {
            case RspInput.Packet p:
                return await HandlePacketAsync(p.Payload, ct);
            case RspInput.Oversized:
                return State == GdbSessionState.Disconnected ? GdbReply.None : new GdbReply(RspErrors.PacketTooLong);
            case RspInput.Interrupt:
                await InterruptAsync(ct);
                return GdbReply.None;
            default:
                throw new ArgumentOutOfRangeException(nameof(input));
        }
    }

    /// <summary>Serves one packet while <see cref="GdbSessionState.Idle"/>. Malformed packets get <c>E01</c>,
    /// target failures <c>E05</c>/<c>E0e</c>; neither ends the session.</summary>
    public async Task<GdbReply> HandlePacketAsync(byte[] payload, CancellationToken ct = default)
    {
        if (State == GdbSessionState.Disconnected) return GdbReply.None;
        if (State != GdbSessionState.Idle)
            throw new InvalidOperationException("gdb sends packets only after the stop reply: queue them until StopReached");
        try
        {
            return await DispatchAsync(payload, ct);
        }
        catch (RspFormatException)
        {
            return new GdbReply(RspErrors.Malformed);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            return new GdbReply(RspErrors.TargetFailure);
        }
    }

    // One table, as QEMU's gdbstub.c has: the first character picks the family, the family parses the rest.
    private Task<GdbReply> DispatchAsync(byte[] p, CancellationToken ct)
    {
        if (p.Length == 0) return Task.FromResult(GdbReply.Empty);
        var r = new RspReader(p, 1);
        return (char)p[0] switch
        {
            '?' => _nonStop ? NonStopStatusAsync(ct) : StopStatusAsync(ct),
            'g' => ReadAllRegistersAsync(r, ct),
            'G' => WriteAllRegistersAsync(r, ct),
            'p' => ReadRegisterAsync(r, ct),
            'P' => WriteRegisterAsync(r, ct),
            'm' => ReadMemoryAsync(r, ct),
            'M' => WriteMemoryHexAsync(r, ct),
            'X' => WriteMemoryBinaryAsync(r, ct),
            'Z' => BreakpointAsync(r, insert: true, ct),
            'z' => BreakpointAsync(r, insert: false, ct),
            'c' or 'C' or 's' or 'S' => OldResumeAsync((char)p[0], r, ct),
            'H' => SetThreadAsync(r, ct),
            'T' => ThreadAliveAsync(r, ct),
            'D' => DetachAsync(ct),
            'k' => KillAsync(reply: false, ct),
            'q' => QueryAsync(r, ct),
            'Q' when r.TrySkip("NonStop:") => SetNonStopAsync(r, ct),
            'Q' => Task.FromResult(Set(r)),
            'v' => VPacketAsync(r, ct),
            _ => Task.FromResult(GdbReply.Empty), // "Packets": an unsupported packet gets an empty reply
        };
    }

    private async Task<IReadOnlyList<GdbThreadInfo>> ThreadsAsync(CancellationToken ct, bool refresh = false)
    {
        if (_threads is null || refresh) _threads = await _target.GetThreadsAsync(ct);
        return _threads;
    }

    private async Task<bool> ExistsAsync(int vcpu, CancellationToken ct)
    {
        var threads = await ThreadsAsync(ct);
        return vcpu >= 0 && vcpu < threads.Count && threads[vcpu].Alive;
    }

    private string Tid(int vcpu) => GdbThreadId.Format(vcpu, _multiprocess);
}
