using System.Diagnostics;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Smp;

/// <summary>
/// Four vcpus increment one 64-bit counter under a lwarx/stwcx. spinlock. On real threads no increment
/// may be lost; round-robin on one thread the run is reproducible to the last bit.
/// </summary>
public class SpinlockCounterTests
{
    private const int Vcpus = 4;

    /// <summary>r3 = vcpu index on entry; each vcpu does <paramref name="n"/> locked increments, then stops with status 0.</summary>
    private static string Program(int n) => $"""
            .globl _start
        _start:
            lis 10, lock@h
            ori 10, 10, lock@l
            lis 11, counter@h
            ori 11, 11, counter@l
            lis 14, per_cpu@h
            ori 14, 14, per_cpu@l
            sldi 15, 3, 3
            add 14, 14, 15          # &per_cpu[r3]
            lis 12, {n >> 16}
            ori 12, 12, {n & 0xFFFF}
            mtctr 12
            addi 13, 3, 1           # lock value: owner + 1
        loop:
        acquire:
            lwarx 5, 0, 10
            cmpwi 5, 0
            bne- acquire
            stwcx. 13, 0, 10
            bne- acquire
            isync
            ld 6, 0(11)             # critical section: counter++, per_cpu[me]++
            addi 6, 6, 1
            std 6, 0(11)
            ld 7, 0(14)
            addi 7, 7, 1
            std 7, 0(14)
            lwsync
            li 5, 0
            stw 5, 0(10)            # unlock
            bdnz loop
            li 3, 0
            ori 3, 3, 0xF080        # H_ACTORSTEP_STOP
            li 4, 0
            sc 1
            .balign 4096
        lock:    .long 0, 0
        counter: .quad 0
        per_cpu: .quad 0, 0, 0, 0
        """;

    private static SimulatedMachine Machine(int n, out ElfImage image)
    {
        image = GuestAssembler.Build(Program(n));
        return SimulatedMachine.Load(image, new MachineOptions(Vcpus, 1UL << 20));
    }

    private static ulong U64(SimulatedMachine vm, ulong ra)
    {
        Span<byte> b = stackalloc byte[8];
        vm.ReadMemory(ra, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    [Fact]
    public void Four_vcpus_on_four_threads_lose_no_increment()
    {
        const int n = 25_000;
        var vm = Machine(n, out var image);
        var deadline = Stopwatch.StartNew();
        var failures = new string?[Vcpus];
        var threads = Enumerable.Range(0, Vcpus).Select(i => new Thread(() =>
        {
            var vcpu = vm.GetVcpu(i);
            while (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                var exit = vcpu.Run(5_000);
                if (exit.Reason == ExitReason.Stopped)
                {
                    if (exit.Status != 0) failures[i] = $"vcpu {i} stopped with status {exit.Status}";
                    return;
                }
                if (exit.Reason != ExitReason.BudgetExpired) { failures[i] = $"vcpu {i}: {exit}"; return; }
            }
            failures[i] = $"vcpu {i} did not finish in time";
        }) { IsBackground = true, Name = $"vcpu{i}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.All(failures, f => Assert.Null(f));
        // per_cpu[i] is private to vcpu i, so it is N even when mutual exclusion fails; the shared counter is not.
        for (int i = 0; i < Vcpus; i++)
            Assert.Equal((ulong)n, U64(vm, image.Symbol("per_cpu") + (ulong)(8 * i)));
        Assert.Equal((ulong)(Vcpus * n), U64(vm, image.Symbol("counter")));
        Assert.Equal(0UL, U64(vm, image.Symbol("lock")));
    }

    /// <summary>Round-robin on this thread with a small budget; returns every vcpu's registers and the data page.</summary>
    private static (VcpuState[] Vcpus, byte[] Data, ulong Counter) RunRoundRobin(int n, long budget)
    {
        var vm = Machine(n, out var image);
        var running = Enumerable.Range(0, Vcpus).ToList();
        for (int rounds = 0; running.Count > 0; rounds++)
        {
            Assert.True(rounds < 10_000_000, "round-robin run did not finish");
            for (int k = 0; k < running.Count; k++)
            {
                var exit = vm.GetVcpu(running[k]).Run(budget);
                if (exit.Reason == ExitReason.BudgetExpired) continue;
                Assert.Equal((ExitReason.Stopped, 0L), (exit.Reason, exit.Status));
                running.RemoveAt(k--);
            }
        }
        var data = new byte[64];
        vm.ReadMemory(image.Symbol("lock"), data);
        return (Enumerable.Range(0, Vcpus).Select(i => vm.GetVcpu(i).GetRegisters()).ToArray(), data, U64(vm, image.Symbol("counter")));
    }

    [Fact]
    public void Round_robin_run_with_small_budgets_loses_no_increment()
    {
        var run = RunRoundRobin(n: 2_000, budget: 37);
        Assert.Equal((ulong)(Vcpus * 2_000), run.Counter);
    }

    [Fact]
    public void Round_robin_run_with_small_budgets_reaches_the_same_final_state_twice()
    {
        var first = RunRoundRobin(n: 2_000, budget: 37);
        var second = RunRoundRobin(n: 2_000, budget: 37);
        for (int i = 0; i < Vcpus; i++)
            Assert.True(first.Vcpus[i].Equals(second.Vcpus[i]),
                $"vcpu {i}: {string.Join(", ", first.Vcpus[i].Differences(second.Vcpus[i]))}");
        Assert.Equal(first.Data, second.Data);
        Assert.Equal(first.Vcpus.Select(v => v.Tb), second.Vcpus.Select(v => v.Tb));
    }
}
