using ActorStep.Protocol.Gdb;

namespace ActorStep.Tests.Protocol;

/// <summary>An in-memory VM for session tests: registers and memory as dictionaries, resumes answered from a
/// script (<see cref="Stops"/>) or, when the script is empty, held until <see cref="InterruptAsync"/>.</summary>
public sealed class FakeGdbTarget : IGdbTarget
{
    public const ulong Msr64 = 0x8000_0000_0000_1000; // SF | ME

    public List<GdbThreadInfo> Threads { get; } = [];
    public List<Dictionary<int, byte[]>> Registers { get; } = [];
    public Dictionary<ulong, byte> Memory { get; } = [];
    public HashSet<ulong> SwBreakpoints { get; } = [];
    public Queue<GdbStopEvent> Stops { get; } = new();
    public List<GdbResumeAction[]> Resumes { get; } = [];
    /// <summary>The step ranges of each resume (empty when none), in the order of <see cref="Resumes"/>.</summary>
    public List<Dictionary<int, GdbStepRange>> ResumeRanges { get; } = [];
    /// <summary>Whether each resume's steps hold asynchronous interrupts.</summary>
    public List<bool> ResumeHoldsInterrupts { get; } = [];
    public List<string> Calls { get; } = [];
    public int RegisterReads { get; private set; }
    public IGdbHwBreakpoints? HwBreakpointsCapability { get; set; }
    public IGdbMonitor? MonitorCapability { get; set; }
    public IGdbWatchpoints? WatchpointsCapability { get; set; }
    public IGdbNonStop? NonStopCapability { get; set; }
    public bool FailEverything { get; set; }

    private TaskCompletionSource<GdbStopEvent>? _running;

    public FakeGdbTarget(int vcpus = 2)
    {
        for (int v = 0; v < vcpus; v++)
        {
            Threads.Add(new GdbThreadInfo(v, true, $"stopped at 0x{Pc(v):x}"));
            var regs = new Dictionary<int, byte[]>();
            foreach (var reg in TargetDescription.Registers)
                regs[reg.Regnum] = GdbRegisterValue.FromUInt64((ulong)(v << 8 | reg.Regnum), reg.Size);
            regs[TargetDescription.Pc] = GdbRegisterValue.FromUInt64(Pc(v), 8);
            regs[TargetDescription.Msr] = GdbRegisterValue.FromUInt64(Msr64, 8);
            regs[TargetDescription.R1] = GdbRegisterValue.FromUInt64(0x7ff0 + (ulong)v * 0x1000, 8);
            Registers.Add(regs);
        }
    }

    public static ulong Pc(int vcpu) => 0x1000 + (ulong)vcpu * 0x100;

    public ulong Reg(int vcpu, int regnum) => GdbRegisterValue.ToUInt64(Registers[vcpu][regnum]);

    public IGdbHwBreakpoints? HwBreakpoints => HwBreakpointsCapability;
    public IGdbMonitor? Monitor => MonitorCapability;
    public IGdbWatchpoints? Watchpoints => WatchpointsCapability;
    public IGdbNonStop? NonStop => NonStopCapability;

    private void Check(string call)
    {
        Calls.Add(call);
        if (FailEverything) throw new InvalidOperationException("target failure");
    }

    public Task<IReadOnlyList<GdbThreadInfo>> GetThreadsAsync(CancellationToken ct)
    {
        Check("GetThreads");
        return Task.FromResult<IReadOnlyList<GdbThreadInfo>>(Threads.ToList());
    }

    public Task<IReadOnlyDictionary<int, byte[]>> ReadRegistersAsync(int vcpu, CancellationToken ct)
    {
        Check($"ReadRegisters {vcpu}");
        RegisterReads++;
        return Task.FromResult<IReadOnlyDictionary<int, byte[]>>(new Dictionary<int, byte[]>(Registers[vcpu]));
    }

    public Task WriteRegisterAsync(int vcpu, int regnum, byte[] value, CancellationToken ct)
    {
        Check($"WriteRegister {vcpu} {regnum} {Convert.ToHexStringLower(value)}");
        Registers[vcpu][regnum] = value;
        return Task.CompletedTask;
    }

    public Task<byte[]> ReadMemoryAsync(int vcpu, ulong address, int length, CancellationToken ct)
    {
        Check($"ReadMemory {vcpu} {address:x} {length}");
        var data = new List<byte>();
        for (ulong a = address; a < address + (ulong)length && Memory.TryGetValue(a, out var b); a++) data.Add(b);
        return Task.FromResult(data.ToArray());
    }

    public Task WriteMemoryAsync(int vcpu, ulong address, byte[] data, CancellationToken ct)
    {
        Check($"WriteMemory {vcpu} {address:x} {Convert.ToHexStringLower(data)}");
        for (int i = 0; i < data.Length; i++) Memory[address + (ulong)i] = data[i];
        return Task.CompletedTask;
    }

    public Task InsertSwBreakpointAsync(ulong address, CancellationToken ct)
    {
        Check($"InsertSwBreakpoint {address:x}");
        SwBreakpoints.Add(address);
        return Task.CompletedTask;
    }

    public Task RemoveSwBreakpointAsync(ulong address, CancellationToken ct)
    {
        Check($"RemoveSwBreakpoint {address:x}");
        SwBreakpoints.Remove(address);
        return Task.CompletedTask;
    }

    public Task<GdbStopEvent> ResumeAsync(GdbResume resume, CancellationToken ct)
    {
        Check($"Resume {string.Join(",", resume.Actions)}");
        Resumes.Add([.. resume.Actions]);
        ResumeRanges.Add(resume.Ranges is null ? new Dictionary<int, GdbStepRange>() : new Dictionary<int, GdbStepRange>(resume.Ranges));
        ResumeHoldsInterrupts.Add(resume.HoldInterrupts);
        if (Stops.TryDequeue(out var stop)) return Task.FromResult(stop);
        _running = new TaskCompletionSource<GdbStopEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        return _running.Task;
    }

    /// <summary>Ends a held resume as if the VM stopped by itself.</summary>
    public void Stop(GdbStopEvent stop) => _running!.SetResult(stop);

    public Task InterruptAsync(CancellationToken ct)
    {
        Check("Interrupt");
        _running?.TrySetResult(new GdbStopEvent(0, GdbStopReason.Halted));
        return Task.CompletedTask;
    }

    public Task DetachAsync(CancellationToken ct) { Check("Detach"); return Task.CompletedTask; }
    public Task KillAsync(CancellationToken ct) { Check("Kill"); return Task.CompletedTask; }
}
