using System.Buffers.Binary;
using System.Text;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Machine.Platform;
using ActorStep.Tests.Machine.Interrupts;

namespace ActorStep.Tests.Machine.Platform;

/// <summary>
/// The pseries platform as a guest reaches it with <c>sc 1</c>: console input, the CPU-characteristics query, XICS
/// inter-processor interrupts as external interrupts (0x500, also out of H_CEDE), and RTAS behind H_RTAS (start-cpu,
/// query-cpu-stopped-state, get-time-of-day, power-off) — the calls Linux's boot makes (shared/reference/linux-pseries).
/// </summary>
public sealed class PseriesPlatformTests
{
    private const ulong SfMe = 0x8000000000001000;

    /// <summary>vcpu 0 runs <paramref name="vcpu0"/>, every other vcpu <paramref name="others"/>; both end at a stop point.</summary>
    private static Guest TwoVcpus(string vcpu0, string others, DateTimeOffset? clock = null) => new($"""
            cmpdi 3, 0
            bne others
        {vcpu0}
        done0:
            {Guest.Bp}
        others:
        {others}
        done1:
            {Guest.Bp}
            .balign 8
        block:
            .space 128
        """, vcpus: 2, clock: clock);

    /// <summary>H_RTAS with r4 = the argument block at <c>block</c>.</summary>
    private static string RtasCall => $"""
        {Asm.La(4, "block")}
            li 3, 0
            ori 3, 3, 0xf000
            sc 1
        """;

    /// <summary>Writes an RTAS argument block (big-endian words: token, nargs, nret, args, rets zeroed).</summary>
    private static void WriteBlock(SimulatedMachine vm, ulong at, uint token, int nret, params uint[] args)
    {
        var words = new uint[3 + args.Length + nret];
        (words[0], words[1], words[2]) = (token, (uint)args.Length, (uint)nret);
        args.CopyTo(words, 3);
        var bytes = new byte[words.Length * 4];
        for (int i = 0; i < words.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(i * 4), words[i]);
        vm.WriteMemory(at, bytes);
    }

    private static int[] Rets(SimulatedMachine vm, ulong at, int nargs, int nret)
    {
        var bytes = new byte[nret * 4];
        vm.ReadMemory(at + 12 + 4 * (ulong)nargs, bytes);
        return Enumerable.Range(0, nret).Select(i => BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i * 4))).ToArray();
    }

    [Fact]
    public void H_GET_TERM_CHAR_returns_queued_console_input_big_endian_in_r5_r6_with_its_count_in_r4()
    {
        var g = new Guest($"""
            {Asm.Hcall(0x54, 0)}
                {Guest.Bp}
            {Asm.Hcall(0x54, 0)}
                {Guest.Bp}
            """);
        g.Vm.WriteConsoleInput(Encoding.ASCII.GetBytes("hello, console!!xy"));

        g.RunToBreak();
        Assert.Equal((0UL, 16UL), (g.State.Gpr[3], g.State.Gpr[4]));
        Assert.Equal("hello, console!!", Encoding.ASCII.GetString(BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(g.State.Gpr[5]))
            .Concat(BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(g.State.Gpr[6]))).ToArray()));

        g.Update(s => s.Nip += 4);
        g.RunToBreak();
        Assert.Equal(2UL, g.State.Gpr[4]);
        Assert.Equal(0x7879000000000000UL, g.State.Gpr[5]); // "xy", first character in the most significant byte
    }

    [Fact]
    public void H_GET_CPU_CHARACTERISTICS_succeeds_with_no_characteristics_and_no_mitigations_asked_for()
    {
        var g = new Guest($"""
                li 4, -1
                li 5, -1
            {Asm.Hcall(0x1C8)}
                {Guest.Bp}
            """);
        g.RunToBreak();
        Assert.Equal((0UL, 0UL, 0UL), (g.State.Gpr[3], g.State.Gpr[4], g.State.Gpr[5]));
    }

    [Fact]
    public void An_unknown_hypercall_returns_H_FUNCTION_and_is_listed_once_however_often_it_is_made()
    {
        var g = new Guest($"""
                li 20, 3
            again:
            {Asm.Hcall(0x1234)}
                addi 20, 20, -1
                cmpdi 20, 0
                bne again
                {Guest.Bp}
            """);
        g.RunToBreak();
        Assert.Equal(unchecked((ulong)Papr.H_FUNCTION), g.State.Gpr[3]);
        Assert.Single(g.Vm.Missing, m => m.Kind == "hypercall" && m.Value == 0x1234);
    }

    [Fact]
    public void A_missing_instruction_is_announced_once_as_it_is_met_with_its_word_and_address()
    {
        var g = new Guest($"""
                li 20, 2
            again:
            missing:
                .long 0x00000001
                addi 20, 20, -1
                cmpdi 20, 0
                bne again
                {Guest.Bp}
            """, handlers: new Dictionary<ulong, string> { [0x700] = "    mfsrr0 21\n    addi 21, 21, 4\n    mtsrr0 21\n    rfid" });
        var met = new List<ActorStep.Machine.MissingFeature>();
        g.Vm.MissingFeatureMet += m => met.Add(m);

        g.RunToBreak();

        var m = Assert.Single(met);
        Assert.Equal(("instruction", 0x1UL, 0, g.Sym("missing")), (m.Kind, m.Value, m.Vcpu, m.Nip));
    }

    [Fact]
    public void H_IPI_presents_an_interrupt_the_target_vcpu_takes_at_0x500_once_its_CPPR_and_MSR_EE_allow_it()
    {
        var g = TwoVcpus(vcpu0: Asm.Hcall(0x6C, 1, 4), others: $"""
            {Asm.Hcall(0x68, 0xFF)}
            {Asm.MsrOr(0x8000)}
            spin:
                b spin
            """);
        var target = g.Vm.GetVcpu(1);
        Assert.Equal(ExitReason.BudgetExpired, target.Run(1_000).Reason); // CPPR open, EE on, spinning

        Assert.Equal(g.Sym("done0"), g.RunToBreak());
        Assert.Equal(0UL, g.State.Gpr[3]);

        Assert.Equal(0x500UL, Guest.RunToBreak(target));
        Assert.Equal(g.Sym("spin"), target.GetRegisters().Srr0);
        Assert.Equal(0UL, target.GetRegisters().Msr & 0x8000); // EE off in the handler
    }

    [Fact]
    public void A_vcpu_in_H_CEDE_is_woken_by_an_IPI_and_takes_it_right_after_the_hypercall()
    {
        var g = TwoVcpus(vcpu0: Asm.Hcall(0x6C, 1, 4), others: $"""
            {Asm.Hcall(0x68, 0xFF)}
            {Asm.Hcall(0xE0)}
            after_cede:
                {Guest.Bp}
            """);
        var target = g.Vm.GetVcpu(1);
        Assert.Equal(ExitReason.Idle, target.Run(1_000).Reason);

        g.RunToBreak();

        Assert.Equal(0x500UL, Guest.RunToBreak(target));
        Assert.Equal(g.Sym("after_cede"), target.GetRegisters().Srr0);
    }

    [Fact]
    public void RTAS_start_cpu_starts_a_held_vcpu_at_the_address_given_with_r3_in_big_endian_real_mode()
    {
        var g = TwoVcpus(vcpu0: RtasCall, others: "");
        var secondary = g.Vm.Vcpu(1);
        secondary.Hold();
        var held = secondary.Run(1_000);
        Assert.Equal(ExitReason.Idle, held.Reason);
        Assert.Contains("start-cpu", held.Detail);

        WriteBlock(g.Vm, g.Sym("block"), Rtas.StartCpu, 1, 1, (uint)g.Sym("done1"), 0x77);
        g.Update(s => s.Tb = 5_000_000); // the starter is far ahead in time
        g.RunToBreak();
        Assert.Equal(0, Rets(g.Vm, g.Sym("block"), 3, 1)[0]);

        Assert.Equal(g.Sym("done1"), Guest.RunToBreak(secondary));
        var s = secondary.GetRegisters();
        Assert.Equal(0x77UL, s.Gpr[3]);
        Assert.Equal(SfMe, s.Msr);
        Assert.True(s.Tb >= 5_000_000, $"the started vcpu's timebase (0x{s.Tb:x}) is not behind its starter's");
    }

    [Fact]
    public void RTAS_query_cpu_stopped_state_says_stopped_for_a_held_vcpu_and_running_once_started()
    {
        var g = TwoVcpus(vcpu0: RtasCall, others: "");
        (g.Vm.Vcpu(1)).Hold();
        int Query()
        {
            WriteBlock(g.Vm, g.Sym("block"), Rtas.QueryCpuStoppedState, 2, 1);
            g.Update(s => s.Nip = g.Sym("_start"));
            g.RunToBreak();
            var rets = Rets(g.Vm, g.Sym("block"), 1, 2);
            Assert.Equal(0, rets[0]);
            return rets[1];
        }

        Assert.Equal(0, Query());
        WriteBlock(g.Vm, g.Sym("block"), Rtas.StartCpu, 1, 1, (uint)g.Sym("done1"), 0);
        g.Update(s => s.Nip = g.Sym("_start"));
        g.RunToBreak();
        Assert.Equal(2, Query());

        // A second start of a running cpu is a hardware error, as in QEMU.
        WriteBlock(g.Vm, g.Sym("block"), Rtas.StartCpu, 1, 1, (uint)g.Sym("done1"), 0);
        g.Update(s => s.Nip = g.Sym("_start"));
        g.RunToBreak();
        Assert.Equal(-1, Rets(g.Vm, g.Sym("block"), 3, 1)[0]);
    }

    [Fact]
    public void RTAS_get_time_of_day_reads_the_machines_clock()
    {
        var clock = new DateTimeOffset(2024, 2, 29, 13, 14, 15, TimeSpan.Zero);
        var g = TwoVcpus(vcpu0: RtasCall, others: "", clock: clock);
        WriteBlock(g.Vm, g.Sym("block"), Rtas.GetTimeOfDay, 8);

        g.RunToBreak();

        var rets = Rets(g.Vm, g.Sym("block"), 0, 8);
        Assert.Equal(new[] { 0, 2024, 2, 29, 13, 14, 15 }, rets[..7]);
        Assert.InRange(rets[7], 0, 999_999_999);
    }

    [Fact]
    public void RTAS_power_off_stops_every_vcpu_for_good_with_status_0()
    {
        var g = TwoVcpus(vcpu0: RtasCall, others: "spin: b spin");
        WriteBlock(g.Vm, g.Sym("block"), Rtas.PowerOff, 1);
        var other = g.Vm.GetVcpu(1);
        Assert.Equal(ExitReason.BudgetExpired, other.Run(1_000).Reason);

        var exit = g.Vcpu.Run(100_000);

        Assert.Equal((ExitReason.Stopped, 0L), (exit.Reason, exit.Status));
        Assert.Contains("powered the machine off", exit.Detail);
        Assert.Equal(ExitReason.Stopped, other.Run(1_000).Reason);
        Assert.True(other.IsStoppedForGood);
        Assert.Equal(MachineHalt.PowerOff, g.Vm.Halt!.Status);
    }

    /// <summary>vcpu 0 starts vcpu 1 (held) with RTAS; vcpu 1 powers the machine off. The secondary starts big-endian, so its
    /// code is assembled big-endian; its power-off block is at a fixed address.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_runner_runs_a_vcpu_once_RTAS_started_it_and_ends_when_the_guest_powers_off(bool deterministic)
    {
        const ulong offBlock = 0x30000;
        var g = TwoVcpus(vcpu0: $"""
            {RtasCall}
            spin0:
                b spin0
            secondary:
            {Guest.ForeignWords("lis 4, 3\nli 3, 0\nori 3, 3, 0xf000\nsc 1\nb .", littleEndian: true)}
            """, others: "");
        (g.Vm.Vcpu(1)).Hold();
        WriteBlock(g.Vm, g.Sym("block"), Rtas.StartCpu, 1, 1, (uint)g.Sym("secondary"), 0);
        WriteBlock(g.Vm, offBlock, Rtas.PowerOff, 1);

        var result = MachineRunner.Run(g.Vm, new RunOptions { Deterministic = deterministic, MaxInstructions = 10_000_000 });

        Assert.All(result.Vcpus, v => Assert.Equal(("stopped", 0L), (v.Reason, v.Status)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_vcpu_nobody_starts_ends_the_run_as_held_once_the_others_are_done(bool deterministic)
    {
        var g = TwoVcpus(vcpu0: Asm.Hcall(0xF080, 5), others: "");
        (g.Vm.Vcpu(1)).Hold();

        var result = MachineRunner.Run(g.Vm, new RunOptions { Deterministic = deterministic, MaxInstructions = 1_000_000 });

        Assert.Equal(("stopped", 5L), (result.Vcpus[0].Reason, result.Vcpus[0].Status));
        Assert.Equal("held", result.Vcpus[1].Reason);
    }
}
