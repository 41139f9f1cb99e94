using ActorStep.Machine;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Support;

/// <summary>Builds a small machine from assembly text and runs it, for instruction-level tests.</summary>
public sealed class TestMachine
{
    /// <param name="hostTripKeepsReservation">the reservation survives a return from Run (an idealised host: see MachineOptions)</param>
    /// <param name="options">changes to the machine's options (the block compiler's, say)</param>
    public TestMachine(string source, bool littleEndian = true, int vcpus = 1, HypervisorFlavour flavour = HypervisorFlavour.Hv, ulong memory = 16UL << 20,
        bool hostTripKeepsReservation = false, Func<MachineOptions, MachineOptions>? options = null)
    {
        Image = GuestAssembler.Build(source, littleEndian);
        var chosen = new MachineOptions(vcpus, memory, flavour, hostTripKeepsReservation);
        Vm = SimulatedMachine.Load(Image, options is null ? chosen : options(chosen));
    }

    public ElfImage Image { get; }
    public SimulatedMachine Vm { get; }
    public IVcpu Vcpu => Vm.GetVcpu(0);
    public VcpuState State => Vcpu.GetRegisters();

    public ulong Sym(string name) => Image.Symbol(name);

    /// <summary>Runs vcpu 0 for exactly <paramref name="instructions"/> timebase ticks (or until it exits).</summary>
    public VcpuExit Run(long instructions) => Vcpu.Run(instructions);

    /// <summary>Runs until the vcpu reaches <paramref name="symbol"/> (bounded).</summary>
    public void RunTo(string symbol, long limit = 100_000)
    {
        ulong target = Sym(symbol);
        for (long n = 0; n < limit; n++)
        {
            if (Vcpu.GetRegisters().Nip == target) return;
            var exit = Vcpu.Run(1);
            if (exit.Reason is not (ExitReason.BudgetExpired or ExitReason.SingleStep))
                throw new InvalidOperationException($"vcpu exited with {exit} before reaching {symbol}");
        }
        throw new TimeoutException($"{symbol} not reached within {limit} instructions");
    }

    public void SetGpr(int r, ulong value)
    {
        var s = Vcpu.GetRegisters();
        s.Gpr[r] = value;
        Vcpu.SetRegisters(s);
    }

    public void Update(Action<VcpuState> change)
    {
        var s = Vcpu.GetRegisters();
        change(s);
        Vcpu.SetRegisters(s);
    }

    public ulong ReadU64(ulong ra, bool littleEndian = true)
    {
        Span<byte> b = stackalloc byte[8];
        Vm.ReadMemory(ra, b);
        return littleEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b) : System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b);
    }
}
