using System.Diagnostics;
using ActorStep.Hypervisor;

namespace ActorStep.Machine;

/// <summary>How to run a machine with no debugger attached.</summary>
public sealed record RunOptions
{
    /// <summary>Per-vcpu instruction limit; null runs until every vcpu stops or the run is cancelled.</summary>
    public long? MaxInstructions { get; init; }
    /// <summary>One thread, vcpus round-robin in fixed quanta: a reproducible interleaving.</summary>
    public bool Deterministic { get; init; }
    /// <summary>Instructions a vcpu runs before the next one is scheduled (deterministic) or before cancellation is checked.</summary>
    public long Quantum { get; init; } = 10_000;
}

/// <summary>Why one vcpu ended a run.</summary>
public sealed record VcpuOutcome(int Vcpu, string Reason, long? Status, string? Detail, long Instructions);

public sealed record RunResult(IReadOnlyList<VcpuOutcome> Vcpus, TimeSpan Elapsed);

/// <summary>
/// Runs a VM without a debugger: every vcpu on its own thread, or deterministically on one. A vcpu that is not started yet
/// (held for RTAS start-cpu) waits until another vcpu starts it, and ends the run as <c>held</c> once nothing can start it any
/// more (every other vcpu is finished or held). On threads, a ceded vcpu (H_CEDE) does not spin: it blocks until it is woken
/// (an H_PROD, an interrupt raised for it) or until the running vcpus' time has caught up with its own, so that every vcpu's
/// timebase stays close to the others' (one clock per machine, as on hardware) and its decrementer fires when theirs says so.
/// Once a vcpu has finished and every other one is finished, held or ceded, a ceded vcpu whose timebase is a whole guest second
/// (<see cref="MachineOptions.TimebaseFrequency"/> ticks) past the last finish ends as <c>idle</c>: an idle Linux cpu only
/// wakes for its own timers, for ever.
/// </summary>
public static class MachineRunner
{
    public static RunResult Run(IVirtualMachine vm, RunOptions options, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        var outcomes = new VcpuOutcome?[vm.VcpuCount];
        long lastFinishTb = 0;
        void Finished(int i, VcpuOutcome outcome)
        {
            if (vm.GetVcpu(i) is Cpu.SimulatedVcpu v) InterlockedMax(ref lastFinishTb, (long)v.TimeBase);
            Volatile.Write(ref outcomes[i], outcome);
        }
        VcpuOutcome? IdleForGood(int i) =>
            vm.GetVcpu(i) is Cpu.SimulatedVcpu { IsCeded: true } v && Volatile.Read(ref lastFinishTb) > 0 && EveryoneIdle(vm, outcomes)
            && v.TimeBase > (ulong)Volatile.Read(ref lastFinishTb) + MachineOptions.TimebaseFrequency
                ? Outcome(v, "idle", null, $"ceded (H_CEDE) a guest second after every other vcpu finished") : null;
        if (options.Deterministic)
        {
            var running = Enumerable.Range(0, vm.VcpuCount).ToList();
            while (running.Count > 0)
            {
                // Nothing can start a held vcpu once only held vcpus are left.
                if (running.All(i => IsHeld(vm.GetVcpu(i))) && !Halted(vm))
                {
                    foreach (int i in running) Finished(i, Outcome(vm.GetVcpu(i), "held"));
                    break;
                }
                for (int k = 0; k < running.Count; k++)
                {
                    int i = running[k];
                    var done = cancel.IsCancellationRequested ? Outcome(vm.GetVcpu(i), "cancelled") : RunQuantum(vm.GetVcpu(i), options, out _);
                    done ??= IdleForGood(i);
                    if (done is null) continue;
                    Finished(i, done);
                    running.RemoveAt(k--);
                }
            }
        }
        else
        {
            var machine = vm as SimulatedMachine;
            var threads = Enumerable.Range(0, vm.VcpuCount).Select(i => new Thread(() =>
            {
                var vcpu = vm.GetVcpu(i);
                using var reg = cancel.Register(() => { vcpu.RequestExit(); machine?.SignalWakeAll(); });
                try
                {
                    while (true)
                    {
                        if (cancel.IsCancellationRequested) { Finished(i, Outcome(vcpu, "cancelled")); return; }
                        if (IsHeld(vcpu) && !Halted(vm)) // a halted machine stops its held vcpus too (their Run says so)
                        {
                            if (NothingCanStart(vm, outcomes, i)) { Finished(i, Outcome(vcpu, "held")); return; }
                            machine?.WaitForWake(i, TimeSpan.FromMilliseconds(10));
                            continue;
                        }
                        if ((RunQuantum(vcpu, options, out _) ?? IdleForGood(i)) is { } done) { Finished(i, done); return; }
                        // One clock per machine: a vcpu whose thread got ahead waits for the slowest one (ceded vcpus included).
                        while (machine is not null && !cancel.IsCancellationRequested && AheadOfTheSlowest(machine, outcomes, i))
                            machine.WaitForWake(i, TimeSpan.FromMilliseconds(1));
                    }
                }
                finally
                {
                    machine?.SignalWakeAll(); // a held vcpu may now have nobody left to start it
                }
            }) { IsBackground = true, Name = $"vcpu{i}" }).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
        }
        return new RunResult(outcomes.Select(o => o!).ToArray(), sw.Elapsed);
    }

    /// <summary>Raises <paramref name="target"/> to <paramref name="value"/> unless it is already higher, atomically; returns
    /// what it holds after (the larger of the two).</summary>
    internal static long InterlockedMax(ref long target, long value)
    {
        long seen = Volatile.Read(ref target);
        while (value > seen)
        {
            long was = Interlocked.CompareExchange(ref target, value, seen);
            if (was == seen) return value;
            seen = was;
        }
        return seen;
    }

    /// <summary>Every vcpu is finished, held or ceded: nothing runs that could give an idle vcpu work.</summary>
    private static bool EveryoneIdle(IVirtualMachine vm, VcpuOutcome?[] outcomes)
    {
        for (int j = 0; j < vm.VcpuCount; j++)
            if (Volatile.Read(ref outcomes[j]) is null && vm.GetVcpu(j) is Cpu.SimulatedVcpu { IsHeld: false, IsCeded: false }) return false;
        return true;
    }

    private static bool Halted(IVirtualMachine vm) => vm is SimulatedMachine { Halt: not null };

    private static bool IsHeld(IVcpu vcpu) => vcpu is Cpu.SimulatedVcpu { IsHeld: true };

    /// <summary>Every other vcpu is finished or held itself.</summary>
    private static bool NothingCanStart(IVirtualMachine vm, VcpuOutcome?[] outcomes, int self)
    {
        for (int j = 0; j < vm.VcpuCount; j++)
            if (j != self && Volatile.Read(ref outcomes[j]) is null && !IsHeld(vm.GetVcpu(j))) return false;
        return true;
    }

    /// <summary>How far (timebase ticks) a vcpu's thread may run ahead of the slowest unfinished, started vcpu: 2 ms of guest time.</summary>
    public const ulong MaxSkew = MachineOptions.TimebaseFrequency / 500;

    /// <summary>True while vcpu <paramref name="self"/>'s timebase is more than <see cref="MaxSkew"/> ahead of another unfinished,
    /// started vcpu's. The slowest vcpu never waits, so the machine always makes progress.</summary>
    private static bool AheadOfTheSlowest(SimulatedMachine vm, VcpuOutcome?[] outcomes, int self)
    {
        ulong mine = vm.Vcpu(self).TimeBase;
        for (int j = 0; j < vm.VcpuCount; j++)
        {
            var other = vm.Vcpu(j);
            if (j == self || Volatile.Read(ref outcomes[j]) is not null || other.IsHeld) continue;
            if (other.TimeBase + MaxSkew < mine) return true;
        }
        return false;
    }

    /// <summary>Runs one quantum; returns the outcome when this vcpu is finished.</summary>
    private static VcpuOutcome? RunQuantum(IVcpu vcpu, RunOptions options, out VcpuExit exit)
    {
        exit = default;
        long budget = options.Quantum;
        if (options.MaxInstructions is long max)
        {
            long left = max - vcpu.InstructionsRetired;
            if (left <= 0) return Outcome(vcpu, "instruction-limit");
            budget = Math.Min(budget, left);
        }
        exit = vcpu.Run(budget);
        return exit.Reason switch
        {
            ExitReason.Stopped => Outcome(vcpu, "stopped", exit.Status, exit.Detail),
            ExitReason.Checkstop => Outcome(vcpu, "checkstop", null, exit.Detail),
            ExitReason.Debug => Outcome(vcpu, "debug-instruction", null, $"debug instruction at 0x{exit.Address:x}"),
            _ => null,
        };
    }

    private static VcpuOutcome Outcome(IVcpu vcpu, string reason, long? status = null, string? detail = null) =>
        new(vcpu.Index, reason, status, detail, vcpu.InstructionsRetired);
}
