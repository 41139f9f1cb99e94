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

/// <summary>Runs a VM without a debugger: every vcpu on its own thread, or deterministically on one.</summary>
public static class MachineRunner
{
    public static RunResult Run(IVirtualMachine vm, RunOptions options, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        var outcomes = new VcpuOutcome[vm.VcpuCount];
        if (options.Deterministic)
        {
            var running = Enumerable.Range(0, vm.VcpuCount).ToList();
            while (running.Count > 0)
            {
                for (int k = 0; k < running.Count; k++)
                {
                    int i = running[k];
                    var done = cancel.IsCancellationRequested ? Outcome(vm.GetVcpu(i), "cancelled") : RunQuantum(vm.GetVcpu(i), options);
                    if (done is null) continue;
                    outcomes[i] = done;
                    running.RemoveAt(k--);
                }
            }
        }
        else
        {
            var threads = Enumerable.Range(0, vm.VcpuCount).Select(i => new Thread(() =>
            {
                var vcpu = vm.GetVcpu(i);
                using var reg = cancel.Register(vcpu.RequestExit);
                while (true)
                {
                    if (cancel.IsCancellationRequested) { outcomes[i] = Outcome(vcpu, "cancelled"); return; }
                    if (RunQuantum(vcpu, options) is { } done) { outcomes[i] = done; return; }
                }
            }) { IsBackground = true, Name = $"vcpu{i}" }).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
        }
        return new RunResult(outcomes, sw.Elapsed);
    }

    /// <summary>Runs one quantum; returns the outcome when this vcpu is finished.</summary>
    private static VcpuOutcome? RunQuantum(IVcpu vcpu, RunOptions options)
    {
        // A secondary waiting for RTAS start-cpu: nothing can start it yet (no RTAS on this machine), so it is done.
        if (vcpu is Cpu.SimulatedVcpu { IsHeld: true }) return Outcome(vcpu, "held");
        long budget = options.Quantum;
        if (options.MaxInstructions is long max)
        {
            long left = max - vcpu.InstructionsRetired;
            if (left <= 0) return Outcome(vcpu, "instruction-limit");
            budget = Math.Min(budget, left);
        }
        var exit = vcpu.Run(budget);
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
