using ActorStep.Hypervisor;

namespace ActorStep.Machine;

/// <summary>
/// A simulated VM that runs only as a whole, in all-stop, as QEMU's gdbstub does (<see cref="VcpuRunModel.AllStop"/>):
/// one <see cref="Resume"/> runs the named vcpus until the first exit worth telling, then every vcpu is stopped. The
/// vcpus take turns on the calling thread in short quanta (so a vcpu spinning on a lock another holds still gets it).
/// It lets the engine's all-stop path be tested without QEMU; a vcpu's own <see cref="IVcpu.Run"/> is refused.
/// Where QEMU would run on forever, a resume whose running vcpus are all ceded with nothing that can wake them (each holds
/// its asynchronous interrupts or has MSR[EE]=0, and none runs to H_PROD another) returns an <see cref="ExitReason.Idle"/>
/// exit instead, of a vcpu that holds interrupts (a stepping one) when there is one.
/// </summary>
public sealed class AllStopMachine : ForwardingVirtualMachine, IAllStopVm
{
    /// <summary>Timebase ticks a vcpu runs before the next one's turn.</summary>
    public const long Quantum = 1000;

    private readonly SimulatedMachine _inner;
    private readonly IVcpu[] _vcpus;
    private volatile bool _stopRequested;
    /// <summary>Where the rotation goes on: the vcpu after the one that stopped the VM last, as TCG's round-robin does.</summary>
    private int _next;

    public AllStopMachine(SimulatedMachine inner) : base(inner)
    {
        _inner = inner;
        Capabilities = inner.Capabilities with { RunModel = VcpuRunModel.AllStop };
        _vcpus = Enumerable.Range(0, inner.VcpuCount).Select(i => (IVcpu)new Vcpu(inner.GetVcpu(i))).ToArray();
    }

    public override HypervisorCapabilities Capabilities { get; }
    public override IVcpu GetVcpu(int index) => (uint)index < (uint)_vcpus.Length ? _vcpus[index] : _inner.GetVcpu(index);

    public (int Vcpu, VcpuExit Exit) Resume(IReadOnlyCollection<int> running)
    {
        if (running.Count == 0) throw new ArgumentException("an all-stop resume needs at least one running vcpu", nameof(running));
        foreach (int v in running)
            if ((uint)v >= (uint)_vcpus.Length) throw new ArgumentOutOfRangeException(nameof(running), v, $"this VM has vcpus 0..{_vcpus.Length - 1}");
        // Turns go on from where the last resume stopped: the vcpu that stopped the VM does not always run first (it would
        // starve the others whenever it stops again within its first turn).
        int next = _next;
        var order = running.OrderBy(v => (v - next + _vcpus.Length) % _vcpus.Length).ToArray();
        while (true)
        {
            // A turn in which every running vcpu is ceded, runs nothing and cannot wake by itself: nothing can ever change.
            int stuck = -1;
            foreach (int v in order)
            {
                if (_stopRequested)
                {
                    _stopRequested = false;
                    return (order[0], new VcpuExit(ExitReason.BudgetExpired, _inner.GetVcpu(order[0]).GetRegisters().Nip));
                }
                var vcpu = _inner.GetVcpu(v);
                long retired = vcpu.InstructionsRetired;
                var exit = vcpu.Run(Quantum);
                if (exit.Reason is ExitReason.Debug or ExitReason.SingleStep or ExitReason.Stopped or ExitReason.Checkstop or ExitReason.Watchpoint)
                {
                    _next = (v + 1) % _vcpus.Length;
                    return (v, exit);
                }
                if (stuck == -2) continue;
                if (exit.Reason != ExitReason.Idle || vcpu.InstructionsRetired != retired || WakesItself(vcpu)) stuck = -2;
                else if (stuck < 0 || (vcpu.HoldAsyncInterrupts && !_inner.GetVcpu(stuck).HoldAsyncInterrupts)) stuck = v;
            }
            if (stuck >= 0)
            {
                _next = (stuck + 1) % _vcpus.Length;
                return (stuck, new VcpuExit(ExitReason.Idle, _inner.GetVcpu(stuck).GetRegisters().Nip));
            }
        }
    }

    /// <summary>A ceded vcpu that takes the decrementer (interrupts not held, MSR[EE]=1): time wakes it.</summary>
    private static bool WakesItself(IVcpu vcpu) => !vcpu.HoldAsyncInterrupts && (vcpu.GetRegisters().Msr & Isa.Msr.EE) != 0;

    public void RequestStop()
    {
        _stopRequested = true;
        foreach (var v in _vcpus) ((Vcpu)v).Inner.RequestExit();
    }

    /// <summary>One vcpu of the all-stop VM: everything but running it on its own.</summary>
    private sealed class Vcpu(IVcpu inner) : ForwardingVcpu(inner)
    {
        public new IVcpu Inner => base.Inner;
        public override VcpuExit Run(long budget) =>
            throw new InvalidOperationException($"vcpu {Index} belongs to an all-stop VM: it runs only with the whole VM (IAllStopVm.Resume)");
    }
}
