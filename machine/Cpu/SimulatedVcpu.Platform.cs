using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

// What the platform (machine/Platform: RTAS, XICS, power-off) does to a vcpu, often from another vcpu's thread. IVcpu has one
// owner, so each is a request the vcpu's own thread applies at its next Run or batch boundary: never a register written
// from outside.
public sealed partial class SimulatedVcpu
{
    private sealed record StartRequest(ulong Nip, ulong R3, ulong Tb);

    private volatile StartRequest? _startRequest;
    private volatile bool _externalPending;

    /// <summary>Not started yet (or stopped by RTAS stop-self) and no start-cpu pending: RTAS query-cpu-stopped-state's
    /// "stopped". Such a vcpu exists, runs nothing, and its Run returns <see cref="ExitReason.Idle"/> saying why.</summary>
    public bool IsHeld => _held && _startRequest is null;

    /// <summary>Ceded (H_CEDE) and not woken yet.</summary>
    internal bool IsCeded => Volatile.Read(ref _ceded);

    /// <summary>The timebase as another thread may read it (the runner keeps ceded vcpus in step with running ones).</summary>
    internal ulong TimeBase => Volatile.Read(ref Tb);

    /// <summary>
    /// RTAS start-cpu: the held vcpu starts at <paramref name="nip"/> with r3 = <paramref name="r3"/> and MSR = SF|ME (big-endian,
    /// real mode, as QEMU's spapr starts a cpu), its timebase at least the caller's <paramref name="tb"/> (one clock per
    /// machine). False when it is not held (it runs already, or a start is pending).
    /// </summary>
    internal bool RequestStart(ulong nip, ulong r3, ulong tb)
    {
        if (!IsHeld) return false;
        _startRequest = new StartRequest(nip, r3, tb);
        _vm.SignalWake(Index);
        return true;
    }

    /// <summary>Applied by the vcpu's own thread at the start of a Run.</summary>
    private void ApplyStart(StartRequest s)
    {
        ulong tb = Math.Max(Tb, s.Tb);
        Reset(s.Nip, littleEndian: false);
        Gpr[3] = s.R3;
        Tb = tb;
        Dec = 0x7FFFFFFF;
    }

    /// <summary>RTAS stop-self: the calling vcpu goes back to being held (it can be started again).</summary>
    internal void StopSelf()
    {
        _held = true;
        _event |= Event.Rebatch;
    }

    /// <summary>XICS raises or lowers this vcpu's external exception (a level: it stays until the ICP lowers it).</summary>
    internal void SetExternal(bool pending)
    {
        _externalPending = pending;
        if (pending) _vm.SignalWake(Index);
    }

    /// <summary>An external interrupt is pending (the ICP presents one).</summary>
    public bool ExternalPending => _externalPending;

    /// <summary>Why a held vcpu runs nothing, for the engine and the user.</summary>
    private string HeldDetail => $"vcpu {Index} has not been started (it waits for RTAS start-cpu from a running vcpu)";
}
