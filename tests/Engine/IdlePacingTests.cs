using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Tests.Engine;

/// <summary>
/// Issue 13 point 5, "H_CEDE idle that does not burn a core", on a machine that idles on the host's clock
/// (<see cref="MachineOptions.IdleOnHostClock"/>, what serve's Linux VMs get): under a coordinator, a continuing vcpu ceded in
/// H_CEDE waiting for its decrementer runs no slice until the host's clock reaches the decrementer or something wakes it (an
/// H_PROD from another vcpu); a halt finds nothing to wait for; a step with interrupts allowed takes the decrementer at once.
/// Slices are counted (every IVcpu.Run), never timed.
/// </summary>
public class IdlePacingTests : TestKit
{
    private static readonly TimeSpan Timeout = EngineFixture.Timeout;

    /// <summary>vcpu 0 arms its decrementer with r5 = DEC (set by the test), marks <c>ceding</c> and cedes; woken, it spins at
    /// <c>woken</c>. The decrementer's handler stops the vcpu for good with status 0x90. vcpu 1, when r3 = 1 and the test lets it
    /// run, waits for the mark, counts to 100,000 and H_PRODs vcpu 0, then spins at <c>prodded</c>; with r9 = 1 it never prods
    /// and counts in r10 for ever instead.</summary>
    private const string Source = """
            .org 0x900
        decrementer:
            li 3, 0
            ori 3, 3, 0xF080
            li 4, 0x90
            sc 1
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 1
            beq second
            li 6, 1
            lis 7, ceding@h
            ori 7, 7, ceding@l
            mtdec 5
            std 6, 0(7)
            li 3, 0xE0
            sc 1
            .globl woken
        woken:
            b woken
        second:
            lis 7, ceding@h
            ori 7, 7, ceding@l
        wait:
            ld 6, 0(7)
            cmpdi 6, 0
            beq wait
            lis 8, 1
            ori 8, 8, 0x86a0
        count:
            addi 8, 8, -1
            cmpdi 8, 0
            bne count
            cmpdi 9, 0
            bne busy
            li 3, 0x108
            li 4, 0
            sc 1
            .globl prodded
        prodded:
            b prodded
        busy:
            addi 10, 10, 1
            b busy
            .balign 8
            .globl ceding
        ceding:
            .quad 0
        """;

    /// <summary>The longest decrementer a 32-bit DEC holds: ~4.2 s at 512 MHz.</summary>
    private const ulong FarDec = 0x7FFFFFFF;

    private sealed record Vm(ElfImage Image, SimulatedMachine Machine, CountingVm Counted, IActorRef Coordinator)
    {
        public ulong Symbol(string name) => Image.Symbol(name);
    }

    private Vm Start(int vcpus, ulong dec, bool secondBusy = false)
    {
        var image = GuestAssembler.Build(Source, littleEndian: true, textAddress: 0);
        var machine = SimulatedMachine.Load(image, new MachineOptions(vcpus, 16UL << 20, IdleOnHostClock: true));
        var s = machine.GetVcpu(0).GetRegisters();
        s.Gpr[5] = dec;
        machine.GetVcpu(0).SetRegisters(s);
        if (secondBusy)
        {
            var b = machine.GetVcpu(1).GetRegisters();
            b.Gpr[9] = 1;
            machine.GetVcpu(1).SetRegisters(b);
        }
        var counted = new CountingVm(machine);
        return new Vm(image, machine, counted, Sys.ActorOf(VmCoordinator.Props(counted)));
    }

    private static Task<object> Continue(Vm vm) =>
        vm.Coordinator.Ask<object>(new Resume(ContinueActions(0, vm.Machine.VcpuCount, SchedulerLocking.Off)), Timeout);

    /// <summary>Continues the VM until vcpu 0 has marked its H_CEDE, and a little longer for the H_CEDE to be met.</summary>
    private static async Task<Task<object>> ContinueToCede(Vm vm)
    {
        var continued = Continue(vm);
        ulong mark = vm.Symbol("ceding");
        await Eventually.HoldsAsync(() => ReadU64(vm, mark) == 1, "vcpu 0 reaches its H_CEDE");
        await Task.Delay(200);
        return continued;
    }

    private static ulong ReadU64(Vm vm, ulong ra)
    {
        var b = new byte[8];
        vm.Machine.ReadMemory(ra, b);
        return BitConverter.ToUInt64(b);
    }

    private static async Task<Stopped> Halt(Vm vm) =>
        Assert.IsType<Stopped>(await vm.Coordinator.Ask<object>(new Halt(), Timeout));

    private static async Task<VcpuState> Registers(Vm vm, int vcpu) =>
        (await vm.Coordinator.Ask<Actors.Vcpu.VcpuProtocol.Registers>(new ReadRegisters(vcpu), Timeout)).State;

    [Fact]
    public async Task An_idle_vcpu_runs_no_slices_while_it_waits_for_its_decrementer()
    {
        var vm = Start(vcpus: 1, FarDec);
        var continued = await ContinueToCede(vm);

        long before = vm.Counted.Runs(0);
        await Task.Delay(1000);
        long after = vm.Counted.Runs(0);

        Assert.Equal(before, after);
        Assert.InRange(before, 1, 3); // the slice that ceded (and one more at most, if the H_CEDE ended its first slice)
        await Halt(vm);
        Assert.Equal(StopReason.Halted, Assert.IsType<Stopped>(await continued).Event.Reason);
    }

    [Fact]
    public async Task An_idle_vcpu_wakes_when_its_decrementer_falls_due_on_the_hosts_clock()
    {
        const ulong dec = 0x0100_0000; // ~33 ms at 512 MHz
        var vm = Start(vcpus: 1, dec);

        var stop = Assert.IsType<Stopped>(await Continue(vm));

        Assert.Equal((StopReason.GuestStopped, 0, 0x90L), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Status));
        var s = await Registers(vm, 0);
        Assert.True(s.Tb > dec, $"TB {s.Tb}: the decrementer fell due in the guest's time");
        // Waited for, not sliced through: skipping the idle time 10,000 ticks a slice would have taken over 1,600 slices.
        Assert.InRange(vm.Counted.Runs(0), 1, 6);
    }

    [Fact]
    public async Task An_H_PROD_from_another_vcpu_wakes_an_idle_vcpu_at_once()
    {
        var vm = Start(vcpus: 2, FarDec);
        ulong woken = vm.Symbol("woken");
        await vm.Coordinator.Ask<object>(new InsertBreakpoint(woken), Timeout);

        var stop = Assert.IsType<Stopped>(await Continue(vm));

        Assert.Equal((StopReason.Breakpoint, 0, woken), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Nip));
        // Woken by vcpu 1's H_PROD long before its decrementer (~4.2 s of guest time) could fall due.
        Assert.True(stop.State.Tb < FarDec, $"TB {stop.State.Tb}");
    }

    [Fact]
    public async Task A_halt_of_an_idle_VM_answers_without_waiting_for_the_decrementer()
    {
        var vm = Start(vcpus: 1, FarDec);
        var continued = await ContinueToCede(vm);

        var halted = await Halt(vm);

        Assert.Equal(StopReason.Halted, halted.Event.Reason);
        Assert.Same(halted, Assert.IsType<Stopped>(await continued));
        var s = await Registers(vm, 0);
        // Still in its H_CEDE, the decrementer not taken: the halt did not wait for it.
        Assert.Equal(vm.Symbol("woken"), s.Nip);
        Assert.True(s.Tb < FarDec, $"TB {s.Tb}");
    }

    [Fact]
    public async Task A_step_of_an_idle_vcpu_with_interrupts_allowed_ends_at_the_decrementer_handler_without_waiting_for_it()
    {
        var vm = Start(vcpus: 1, FarDec);
        var continued = await ContinueToCede(vm);
        await Halt(vm);
        await continued;
        long runs = vm.Counted.Runs(0);

        var stop = Assert.IsType<Stopped>(await vm.Coordinator.Ask<object>(
            new Resume(StepActions(0, 1, SchedulerLocking.On), HoldAsyncInterrupts: false), Timeout));

        Assert.Equal((StopReason.StepCompleted, 0x900UL), (stop.Event.Reason, stop.Event.Nip));
        Assert.True(stop.State.Tb > FarDec, $"TB {stop.State.Tb}: the decrementer fell due in the guest's time");
        // The guest time passed at once in the step's slice (not 10,000 ticks a slice, not on the host's clock).
        Assert.InRange(vm.Counted.Runs(0) - runs, 1, 3);
    }

    [Fact]
    public async Task An_idle_vcpus_clock_does_not_run_ahead_of_a_busy_vcpus()
    {
        const ulong dec = 0x0100_0000; // ~33 ms of guest time: far more on the host's clock for a vcpu that runs instructions
        var vm = Start(vcpus: 2, dec, secondBusy: true);

        var stop = Assert.IsType<Stopped>(await Continue(vm));

        Assert.Equal((StopReason.GuestStopped, 0, 0x90L), (stop.Event.Reason, stop.Event.Vcpu, stop.Event.Status));
        ulong idle = (await Registers(vm, 0)).Tb, busy = (await Registers(vm, 1)).Tb;
        // One clock per machine: vcpu 0 woke when vcpu 1's time (its instructions) came within 2 ms of its decrementer, not when
        // the host's clock got there. The handler's few instructions are the slack.
        ulong maxSkew = MachineOptions.TimebaseFrequency / 500;
        Assert.True(idle > dec, $"vcpu 0's TB {idle}");
        Assert.True(idle <= busy + maxSkew + 100, $"vcpu 0's TB {idle}, vcpu 1's {busy}");
    }

    /// <summary>A VM whose vcpus count their <see cref="IVcpu.Run"/> calls: one per slice (or per exit within one).</summary>
    private sealed class CountingVm(SimulatedMachine inner) : IVirtualMachine
    {
        private readonly CountingVcpu[] _vcpus = Enumerable.Range(0, inner.VcpuCount).Select(i => new CountingVcpu(inner.GetVcpu(i))).ToArray();

        public long Runs(int vcpu) => Interlocked.Read(ref _vcpus[vcpu].Runs);

        public HypervisorCapabilities Capabilities => inner.Capabilities;
        public int VcpuCount => inner.VcpuCount;
        public ulong MemorySize => inner.MemorySize;
        public bool ImageIsLittleEndian => inner.ImageIsLittleEndian;
        public IVcpu GetVcpu(int index) => _vcpus[index];
        public void ReadMemory(ulong realAddress, Span<byte> into) => inner.ReadMemory(realAddress, into);
        public void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data) => inner.WriteMemory(realAddress, data);
        public void InsertSoftwareBreakpoint(SoftwareBreakpoint breakpoint) => inner.InsertSoftwareBreakpoint(breakpoint);
        public void RemoveSoftwareBreakpoint(SoftwareBreakpoint breakpoint) => inner.RemoveSoftwareBreakpoint(breakpoint);

        public event ConsoleOutputHandler? ConsoleOutput
        {
            add => inner.ConsoleOutput += value;
            remove => inner.ConsoleOutput -= value;
        }

        public event VcpuWakeHandler? VcpuWakeRequested
        {
            add => inner.VcpuWakeRequested += value;
            remove => inner.VcpuWakeRequested -= value;
        }

        public void Dispose() => inner.Dispose();
    }

    private sealed class CountingVcpu(IVcpu inner) : IVcpu
    {
        public long Runs;

        public int Index => inner.Index;

        public VcpuExit Run(long budget)
        {
            Interlocked.Increment(ref Runs);
            return inner.Run(budget);
        }

        public VcpuState GetRegisters() => inner.GetRegisters();
        public void GetRegisters(VcpuState into) => inner.GetRegisters(into);
        public void SetRegisters(VcpuState state) => inner.SetRegisters(state);
        public ulong GetOneReg(int spr) => inner.GetOneReg(spr);
        public void SetOneReg(int spr, ulong value) => inner.SetOneReg(spr, value);
        public bool TryTranslate(ulong effectiveAddress, ulong msr, AccessKind access, out ulong realAddress) =>
            inner.TryTranslate(effectiveAddress, msr, access, out realAddress);
        public void SetGuestDebug(GuestDebug debug) => inner.SetGuestDebug(debug);
        public bool HoldAsyncInterrupts { get => inner.HoldAsyncInterrupts; set => inner.HoldAsyncInterrupts = value; }
        public void RetireEmulatedInstruction() => inner.RetireEmulatedInstruction();
        public void PassIdleTime(ulong ticks) => inner.PassIdleTime(ticks);
        public void RequestExit() => inner.RequestExit();
        public bool IsStoppedForGood => inner.IsStoppedForGood;
        public long InstructionsRetired => inner.InstructionsRetired;
    }
}
