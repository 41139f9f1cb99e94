using System.Buffers.Binary;
using System.Globalization;
using ActorStep.Hypervisor;
using ActorStep.Isa;

namespace ActorStep.Backends.Qemu;

/// <summary>
/// A VM run by a stock QEMU, driven through its gdbstub under the rules of KVM-HV (qemu-gdbstub.md): QEMU's own step is
/// never used (the capability says no hardware single-step), breakpoints are planted only with <c>Z0</c>/<c>z0</c> at the
/// effective address (on KVM a memory write of the debug word is not a breakpoint), guest memory is read and written by
/// real address (<c>qqemu.PhyMemMode</c>), and the VM runs only as a whole in all-stop (<see cref="IAllStopVm"/>). On TCG the
/// Trace interrupt stays in the guest exactly as on KVM-HV, so the engine steps it the same way.
/// Register state is read once per stop and per vcpu (one write of pipelined requests: <c>Hg</c>, <c>g</c>, the SPRs and FPRs
/// by the numbers of QEMU's own target description), and only what changed is written back (<c>P</c>, MSR last: QEMU reads
/// every register in the byte order of the MSR[LE] it has when the packet arrives).
/// </summary>
public sealed class QemuVm : IAllStopVm, IDisposable
{
    /// <summary>The debug instruction KVM-HV uses (KVM_REG_PPC_DEBUG_INST), which QEMU's <c>Z0</c> writes on KVM.</summary>
    public const uint KvmHvDebugInstruction = 0x00dddd00;
    private const int MemoryChunk = 0x800; // QEMU 10: an 'm' reply is at most 4096 hex characters

    private readonly GdbStubConnection _stub;
    private readonly QemuVcpu[] _vcpus;
    private readonly QemuProcess? _process;
    private readonly object _plantedLock = new();
    private readonly HashSet<ulong> _planted = [];
    private readonly HashSet<ulong> _removals = [];
    private readonly Dictionary<(ulong Page, int Context), ulong> _stopTranslations = new();
    private readonly Dictionary<ulong, (ulong Ra, long Generation)> _kernelTranslations = new();
    /// <summary>How many resumes a kernel-quadrant translation is trusted for without asking QEMU again.</summary>
    public const int KernelTranslationLifetime = 256;
    private readonly object _translationLock = new();
    private volatile bool _stopRequested, _idleTimedOut;

    /// <summary>How long a resume in which every running vcpu is being stepped may go without a stop before it is taken for
    /// one whose vcpus do not execute (<see cref="ExitReason.Idle"/>). A step is one instruction: QEMU runs it in microseconds.</summary>
    public TimeSpan IdleStepTimeout { get; set; } = TimeSpan.FromSeconds(2);
    private int _monitorCpu = -1;
    private readonly QmpClient? _qmp;
    /// <summary>The gdbstub was started by ActorStep through QMP (<see cref="AttachThroughQmp"/>): stopped again on letting go.</summary>
    private readonly bool _ownsGdbServer;
    private readonly object _lifecycleLock = new();
    private readonly List<QemuLifecycleEvent> _lifecycle = new();
    private long _generation;
    private bool _disposed;
    /// <summary>Held around a vcpu's selection (<c>Hg</c>) and the requests that depend on it.</summary>
    internal readonly object Io = new();

    internal QemuRegisterMap Registers { get; }
    /// <summary>The gdbstub connection (its round-trip counters, whether it is lost).</summary>
    public GdbStubConnection Stub => _stub;
    internal long Generation => Interlocked.Read(ref _generation);

    private QemuVm(GdbStubConnection stub, QemuRegisterMap registers, int[] threadIds, ulong memorySize, bool kvm, QemuProcess? process,
        QmpClient? qmp, bool ownsGdbServer, string? finalState)
    {
        _stub = stub;
        _qmp = qmp;
        _ownsGdbServer = ownsGdbServer;
        Registers = registers;
        MemorySize = memorySize;
        IsKvm = kvm;
        _process = process;
        _vcpus = threadIds.Select((id, i) => new QemuVcpu(this, i, id)).ToArray();
        Capabilities = new HypervisorCapabilities(
            HardwareSingleStep: false, DebugInstruction: KvmHvDebugInstruction, Flavour: HypervisorFlavour.Hv,
            // With a continue QEMU delivers every interrupt; only its own (never used) step can hold them.
            HoldsAsyncInterrupts: false, RunModel: VcpuRunModel.AllStop,
            // Z0 on TCG is matched against the fetch address; on KVM it writes the debug word into guest memory.
            BreakpointsInMemory: kvm,
            // Z2–Z4: QEMU's own watchpoints on TCG, DAWR under KVM (one per vcpu on POWER9, so QEMU may refuse a second).
            Watchpoints: true);
        ImageIsLittleEndian = KernelByteOrder(process) ?? (_vcpus[0].GetRegisters().Msr & Msr.LE) != 0;
        if (process is not null) process.ConsoleOutput += OnConsole;
        if (finalState is not null)
        {
            // A VM QEMU will not run again until it is reset (runstate_needs_reset: a vCont would get no reply, ever).
            FinalState = finalState;
            foreach (var v in _vcpus) v.StoppedForGood = true;
        }
        if (qmp is not null) qmp.EventReceived += OnQmpEvent;
    }

    /// <summary>Why QEMU will not run this VM again, when it was so as ActorStep attached (its run state: shutdown, guest-panicked…).</summary>
    public string? FinalState { get; }

    /// <summary>The QMP client, when ActorStep has QEMU's QMP: the guest's lifecycle (SHUTDOWN, RESET, GUEST_PANICKED) comes from it.</summary>
    public QmpClient? Qmp => _qmp;

    /// <summary>The guest's lifecycle events QMP reported (oldest first), when ActorStep has QEMU's QMP.</summary>
    public IReadOnlyList<QemuLifecycleEvent> LifecycleEvents { get { lock (_lifecycleLock) return _lifecycle.ToArray(); } }

    /// <summary>Each lifecycle event QMP reports (on QMP's reader thread: nothing here may wait for QMP).</summary>
    public event GuestLifecycleHandler? GuestLifecycle;

    private void OnQmpEvent(QmpEvent e)
    {
        if (QemuLifecycleEvent.From(e) is not { } lifecycle) return;
        lock (_lifecycleLock) _lifecycle.Add(lifecycle);
        GuestLifecycle?.Invoke(lifecycle.Kind switch
        {
            QemuLifecycleKind.Reset => "reset",
            QemuLifecycleKind.Panicked => "panicked",
            _ => "shutdown",
        }, lifecycle.Describe());
    }

    /// <summary>The last SHUTDOWN or GUEST_PANICKED QMP reported, once every event QEMU sent before now has been read (a QMP
    /// reply comes after the events sent before it; a QEMU that exited has sent all of its events before closing).</summary>
    private QemuLifecycleEvent? LastShutdown()
    {
        if (_qmp is null) return null;
        try { _qmp.RunState(); }
        catch (QemuLostException) { _qmp.WaitUntilClosed(TimeSpan.FromSeconds(2)); }
        catch (QmpErrorException) { }
        lock (_lifecycleLock) return _lifecycle.LastOrDefault(l => l.Kind is QemuLifecycleKind.Shutdown or QemuLifecycleKind.Panicked);
    }

    /// <summary>Attaches to the gdbstub at <paramref name="endpoint"/> (which pauses the VM): reads the target description, the
    /// vcpus and the memory size. <paramref name="process"/> is the QEMU ActorStep started, killed when the VM is disposed;
    /// <paramref name="qmp"/>, when given, is QEMU's QMP client (the guest's lifecycle events; disposed with the VM).</summary>
    public static QemuVm Attach(string endpoint, TimeSpan timeout, QemuProcess? process = null, QmpClient? qmp = null) =>
        Attach(endpoint, timeout, process, qmp, ownsGdbServer: false);

    /// <summary>
    /// Attaches to a QEMU that has only a QMP monitor (libvirt's case): starts QEMU's gdbstub on a free loopback port through
    /// HMP <c>gdbserver tcp:127.0.0.1:PORT</c>, attaches to it, and on letting go stops it again (<c>gdbserver none</c>).
    /// A QEMU with a gdbstub of its own is refused (replacing it would take it from whoever uses it): attach to that one.
    /// </summary>
    public static QemuVm AttachThroughQmp(QmpClient qmp, TimeSpan timeout)
    {
        string chardevs = qmp.HumanMonitor("info chardev");
        foreach (var line in chardevs.Split('\n'))
            if (line.StartsWith("gdb:", StringComparison.Ordinal))
                throw new InvalidOperationException($"this QEMU has a gdbstub already ({line.Trim()}): attach to it (--qemu-gdb) rather than through QMP");
        for (int attempt = 0; ; attempt++)
        {
            int port;
            using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                probe.Start();
                port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            }
            string output = qmp.HumanMonitor($"gdbserver tcp:127.0.0.1:{port}").Trim();
            if (!output.StartsWith("Waiting for gdb connection", StringComparison.Ordinal))
            {
                // The port was taken between the probe and QEMU's bind: another one.
                if (attempt < 3) continue;
                throw new InvalidOperationException($"QEMU could not start its gdbstub on 127.0.0.1:{port}: {output}");
            }
            try { return Attach($"127.0.0.1:{port}", timeout, null, qmp, ownsGdbServer: true); }
            catch
            {
                try { qmp.HumanMonitor("gdbserver none"); } catch (QemuLostException) { } catch (QmpErrorException) { }
                throw;
            }
        }
    }

    private static QemuVm Attach(string endpoint, TimeSpan timeout, QemuProcess? process, QmpClient? qmp, bool ownsGdbServer)
    {
        // A QEMU just started may not listen yet: wait for it while it lives. An endpoint to attach to listens or not.
        var stub = GdbStubConnection.Connect(endpoint, timeout, () => process is not null && !process.HasExited);
        try
        {
            var map = QemuRegisterMap.Read(annex => ReadAnnex(stub, annex));
            if (map.Find("srr0") is null || map.Find("srr1") is null || map.Find("lpcr") is null)
                throw new InvalidOperationException("QEMU's target description has no SRR0, SRR1 or LPCR (power-spr.xml): this QEMU cannot be stepped");
            stub.Request("?");
            var threads = new List<int>();
            for (string r = stub.Request("qfThreadInfo"); r.StartsWith('m'); r = stub.Request("qsThreadInfo"))
                foreach (var id in r[1..].Split(',', StringSplitOptions.RemoveEmptyEntries)) threads.Add(int.Parse(id, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            if (threads.Count == 0) throw new InvalidOperationException("QEMU's gdbstub reports no vcpus");
            threads.Sort();
            string phy = stub.Request("Qqemu.PhyMemMode:1");
            if (phy != "OK") throw new GdbStubRefusedException("Qqemu.PhyMemMode:1", phy);
            ulong memory = ParseMemorySize(stub.Monitor("info memory_size_summary"));
            bool kvm = stub.Monitor("info kvm").Contains("enabled", StringComparison.Ordinal);
            return new QemuVm(stub, map, threads.ToArray(), memory, kvm, process, qmp, ownsGdbServer, FinalRunState(stub.Monitor("info status")));
        }
        catch
        {
            stub.Dispose();
            throw;
        }
    }

    /// <summary>The byte order of the <c>-kernel</c> ELF a launched QEMU was given (EI_DATA): a VM paused at its firmware's first
    /// instruction (VOF, SLOF: big-endian) runs a little-endian kernel later, which is what a debugger of it assumes.</summary>
    private static bool? KernelByteOrder(QemuProcess? process)
    {
        if (process?.KernelPath is not { } path) return null;
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> ident = stackalloc byte[6];
            if (f.Read(ident) < 6 || ident[0] != 0x7f || ident[1] != (byte)'E' || ident[2] != (byte)'L' || ident[3] != (byte)'F') return null;
            return ident[5] == 1; // ELFDATA2LSB
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>HMP <c>info status</c> ("VM status: paused (shutdown)"): a run state QEMU leaves only by a reset, described; else null.</summary>
    internal static string? FinalRunState(string status)
    {
        int open = status.IndexOf('('), close = status.IndexOf(')');
        string state = open >= 0 && close > open ? status[(open + 1)..close] : "";
        return state switch
        {
            "shutdown" => "the guest powered off before ActorStep attached (QEMU's run state: shutdown; it runs again only after a reset)",
            "guest-panicked" => "the guest panicked before ActorStep attached (QEMU's run state: guest-panicked)",
            "internal-error" => "QEMU stopped the VM for an internal error before ActorStep attached",
            _ => null,
        };
    }

    private static string ReadAnnex(GdbStubConnection stub, string annex)
    {
        var text = new System.Text.StringBuilder();
        while (true)
        {
            string reply = stub.Request($"qXfer:features:read:{annex}:{text.Length:x},7f0");
            if (reply.Length == 0 || (reply[0] != 'm' && reply[0] != 'l')) throw new GdbStubRefusedException($"qXfer:features:read:{annex}", reply);
            text.Append(reply, 1, reply.Length - 1);
            if (reply[0] == 'l' || reply.Length == 1) return text.ToString();
        }
    }

    private static ulong ParseMemorySize(string summary)
    {
        foreach (var line in summary.Split('\n'))
        {
            var t = line.Trim();
            if (t.StartsWith("base memory:", StringComparison.Ordinal) && ulong.TryParse(t[12..].Trim(), out ulong size)) return size;
        }
        throw new InvalidOperationException($"QEMU's 'info memory_size_summary' did not say the memory size: '{summary.Trim()}'");
    }

    public HypervisorCapabilities Capabilities { get; }
    public int VcpuCount => _vcpus.Length;
    public ulong MemorySize { get; }
    public bool ImageIsLittleEndian { get; }
    /// <summary>QEMU runs the guest with KVM (else TCG).</summary>
    public bool IsKvm { get; }
    /// <summary>The QEMU process ActorStep started, if it did.</summary>
    public QemuProcess? Process => _process;
    public string Endpoint => _stub.Endpoint;

    public IVcpu GetVcpu(int index) => (uint)index < (uint)_vcpus.Length ? _vcpus[index]
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"this VM has vcpus 0..{_vcpus.Length - 1}");

    public event ConsoleOutputHandler? ConsoleOutput;
    private void OnConsole(ReadOnlySpan<byte> bytes) => ConsoleOutput?.Invoke(-1, bytes);

    // ---- memory, by real address ----

    public void ReadMemory(ulong realAddress, Span<byte> into)
    {
        CheckRange(realAddress, (ulong)into.Length);
        var requests = new List<string>();
        for (int done = 0; done < into.Length; done += MemoryChunk)
            requests.Add($"m{realAddress + (ulong)done:x},{Math.Min(MemoryChunk, into.Length - done):x}");
        var replies = _stub.RequestAll(requests);
        for (int i = 0, done = 0; i < replies.Length; i++, done += MemoryChunk)
        {
            int n = Math.Min(MemoryChunk, into.Length - done);
            if (replies[i].Length != 2 * n || !Protocol.Rsp.RspEncoding.TryFromHex(Protocol.Rsp.RspEncoding.Latin1(replies[i]), out var bytes))
                throw new GdbStubRefusedException(requests[i], replies[i]);
            bytes.CopyTo(into[done..]);
        }
    }

    public void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data)
    {
        CheckRange(realAddress, (ulong)data.Length);
        var requests = new List<string>();
        for (int done = 0; done < data.Length; done += MemoryChunk / 2)
        {
            var part = data.Slice(done, Math.Min(MemoryChunk / 2, data.Length - done));
            requests.Add($"M{realAddress + (ulong)done:x},{part.Length:x}:{Convert.ToHexStringLower(part)}");
        }
        var replies = _stub.RequestAll(requests);
        for (int i = 0; i < replies.Length; i++) if (replies[i] != "OK") throw new GdbStubRefusedException(requests[i][..Math.Min(24, requests[i].Length)], replies[i]);
        InvalidateTranslations(); // page tables may have changed
    }

    private void CheckRange(ulong address, ulong length)
    {
        if (address >= MemorySize || MemorySize - address < length)
            throw new ArgumentOutOfRangeException(nameof(address), $"real address range 0x{address:x}+{length} is outside guest memory (0x{MemorySize:x} bytes)");
    }

    // ---- breakpoints: Z0 at the effective address ----

    /// <summary>Plants a breakpoint (<c>Z0</c>, sent at once so that a refusal reaches the caller). One taken out since the VM
    /// last ran is simply kept: a step's Trace-handler breakpoint stays planted across consecutive steps.</summary>
    public void InsertSoftwareBreakpoint(SoftwareBreakpoint breakpoint)
    {
        ulong ea = breakpoint.EffectiveAddress;
        lock (_plantedLock)
        {
            if (_removals.Remove(ea) || _planted.Contains(ea)) return;
        }
        string request = $"Z0,{ea:x},4";
        string reply = _stub.Request(request);
        if (reply != "OK") throw new GdbStubRefusedException(request, reply);
        lock (_plantedLock) _planted.Add(ea);
    }

    /// <summary>Takes a breakpoint out: on TCG (breakpoints outside memory) only when the VM next runs, unless planted again
    /// by then; on KVM (a word in guest memory, which reads would show) at once.</summary>
    public void RemoveSoftwareBreakpoint(SoftwareBreakpoint breakpoint)
    {
        ulong ea = breakpoint.EffectiveAddress;
        if (_stub.IsLost)
        {
            // A QEMU that is gone holds no breakpoint.
            lock (_plantedLock) { _planted.Clear(); _removals.Clear(); }
            return;
        }
        lock (_plantedLock)
        {
            if (!_planted.Contains(ea)) return;
            if (!Capabilities.BreakpointsInMemory) { _removals.Add(ea); return; }
        }
        string request = $"z0,{ea:x},4";
        string reply = _stub.Request(request);
        lock (_plantedLock) _planted.Remove(ea);
        if (reply != "OK") throw new GdbStubRefusedException(request, reply);
    }

    /// <summary>Breakpoints planted now as the engine sees them (effective addresses), for tests and cleanup.</summary>
    public IReadOnlyCollection<ulong> PlantedBreakpoints { get { lock (_plantedLock) return _planted.Except(_removals).ToArray(); } }

    /// <summary>
    /// The requests that bring QEMU to what ActorStep holds: breakpoints taken out since the VM last ran (<c>z0</c>) and every
    /// vcpu's register writes (<c>P</c>). Sent before the VM runs (in the resume's own write), before the monitor is asked
    /// something that depends on a vcpu's state, and before QEMU is let go. Caller holds <see cref="Io"/>.
    /// </summary>
    private List<string> PendingWrites()
    {
        var requests = new List<string>();
        lock (_plantedLock)
        {
            foreach (ulong ea in _removals) requests.Add($"z0,{ea:x},4");
            _planted.ExceptWith(_removals);
            _removals.Clear();
        }
        foreach (var v in _vcpus) v.AppendWriteBack(requests);
        return requests;
    }

    /// <summary>Sends what <see cref="PendingWrites"/> holds, now.</summary>
    internal void WriteBack()
    {
        lock (Io)
        {
            var requests = PendingWrites();
            if (requests.Count == 0) return;
            string[] replies;
            try { replies = _stub.RequestAll(requests); }
            catch { ForgetWrites(); throw; }
            Check(requests, replies);
        }
    }

    private void Check(List<string> requests, string[] replies)
    {
        for (int i = 0; i < replies.Length; i++)
            if (replies[i] != "OK")
            {
                ForgetWrites();
                throw new GdbStubRefusedException(requests[i], replies[i]);
            }
    }

    private void ForgetWrites()
    {
        foreach (var v in _vcpus) v.ForgetState();
    }

    // ---- run control ----

    public (int Vcpu, VcpuExit Exit) Resume(IReadOnlyCollection<int> running)
    {
        if (running.Count == 0) throw new ArgumentException("an all-stop resume needs at least one running vcpu", nameof(running));
        var payload = new System.Text.StringBuilder("vCont");
        int first = -1;
        foreach (int v in running)
        {
            var vcpu = (QemuVcpu)GetVcpu(v);
            if (first < 0) first = v;
            payload.Append(";c:").Append(vcpu.ThreadId.ToString("x", CultureInfo.InvariantCulture));
        }
        // Every vcpu to run is being stepped (MSR[SE] armed): each stops after one instruction, unless it does not execute at
        // all — QEMU holds it halted (a pseries secondary not yet started by RTAS start-cpu, a ceded vcpu with nothing due to
        // wake it) and cannot say so. Such a resume is stopped after IdleStepTimeout and reported Idle.
        bool stepsOnly = running.All(v => (_vcpus[v].GetRegisters().Msr & Msr.SE) != 0);
        using var idleTimer = stepsOnly ? new Timer(_ => { _idleTimedOut = true; RequestStop(); }, null, IdleStepTimeout, Timeout.InfiniteTimeSpan) : null;
        _idleTimedOut = false;
        // The writes ActorStep holds go in the resume's own write. Io is not held while the VM runs: a vcpu owner that asks for
        // something meanwhile stops the VM first (GdbStubConnection), as gdb must in all-stop.
        List<string> pending;
        lock (Io) pending = PendingWrites();
        string? reply;
        string[] written = [];
        try
        {
            reply = _stub.Resume(pending, payload.ToString(), () =>
            {
                if (_stopRequested) { _stopRequested = false; return false; }
                Interlocked.Increment(ref _generation);
                return true;
            }, out written);
        }
        catch { lock (Io) ForgetWrites(); throw; }
        lock (Io)
        {
            if (reply is null && pending.Count > 0) WriteBackNow(pending);
            else Check(pending, written);
        }
        idleTimer?.Dispose();
        if (reply is null) return (first, new VcpuExit(ExitReason.BudgetExpired, _vcpus[first].GetRegisters().Nip));
        _stopRequested = false;
        if (_idleTimedOut && reply.StartsWith("T02", StringComparison.Ordinal))
        {
            InvalidateStopTranslations();
            return (first, new VcpuExit(ExitReason.Idle, _vcpus[first].GetRegisters().Nip, 0,
                $"it executed nothing for {IdleStepTimeout.TotalSeconds:0.#} s: QEMU holds it halted (a secondary vcpu the guest has not started yet, or ceded with nothing due to wake it)"));
        }
        InvalidateStopTranslations();
        return Stopped(reply, running, first);
    }

    private void WriteBackNow(List<string> requests) => Check(requests, _stub.RequestAll(requests));

    private (int, VcpuExit) Stopped(string reply, IReadOnlyCollection<int> running, int first)
    {
        switch (reply[0])
        {
            case 'W':
            case 'X':
            {
                foreach (var v in _vcpus) v.StoppedForGood = v.Exited = true;
                string exited = reply[0] == 'W' ? $"QEMU exited with status {ParseHexByte(reply, 1)}" : $"QEMU was killed by signal {ParseHexByte(reply, 1)}";
                // Without -no-shutdown a guest's poweroff ends QEMU: QMP says that it was the guest's (its SHUTDOWN event).
                ulong lastNip;
                try { lastNip = _vcpus[first].GetRegisters().Nip; } // as of the last stop
                catch (QemuLostException) { lastNip = 0; }
                return (first, new VcpuExit(ExitReason.Stopped, lastNip, ParseHexByte(reply, 1),
                    LastShutdown() is { } why ? $"{why.Describe()}: {exited}" : _qmp is null && reply[0] == 'W'
                        ? $"{exited} (the guest powered off, or QEMU was told to quit: QMP would say which)" : exited));
            }
            case 'T':
            case 'S':
            {
                int signal = ParseHexByte(reply, 1);
                int vcpu = ThreadOf(reply) is int id && Array.FindIndex(_vcpus, v => v.ThreadId == id) is int i and >= 0 ? i : first;
                ulong nip = _vcpus[vcpu].GetRegisters().Nip;
                switch (signal)
                {
                    case 5 when (WatchHit(reply) ?? UnnamedWatchHit(nip)) is { } hit: // SIGTRAP with watch:/rwatch:/awatch:, or none
                        return (vcpu, new VcpuExit(ExitReason.Watchpoint, nip, 0,
                            $"{hit.Watchpoint} hit by an access at 0x{hit.DataAddress:x} (QEMU's stop reply {reply})", hit));
                    case 5: // SIGTRAP: a breakpoint (ours or the guest's debug word under KVM)
                        return (vcpu, new VcpuExit(ExitReason.Debug, nip));
                    case 2: // SIGINT: our interrupt
                        if (!running.Contains(vcpu)) vcpu = first;
                        return (vcpu, new VcpuExit(ExitReason.BudgetExpired, _vcpus[vcpu].GetRegisters().Nip));
                    case 3: // SIGQUIT: RUN_STATE_SHUTDOWN, a shutdown request under -no-shutdown (gdbstub/system.c gdb_vm_state_change)
                        foreach (var v in _vcpus) v.StoppedForGood = true;
                        return (vcpu, new VcpuExit(ExitReason.Stopped, nip, 0, LastShutdown() is { } shutdown
                            ? $"{shutdown.Describe()}; QEMU holds the VM paused (-no-shutdown)"
                            : "the guest powered off (or, under -no-reboot, reset); QEMU holds the VM paused (-no-shutdown)"));
                    default:
                    {
                        // Another run state (guest-panicked, internal-error, io-error, a watchdog): QEMU's monitor names it.
                        string status;
                        try { status = _stub.Monitor("info status").Trim(); }
                        catch (GdbStubRefusedException) { status = "?"; }
                        foreach (var v in _vcpus) v.StoppedForGood = true;
                        string qmpSays = LastShutdown() is { Kind: QemuLifecycleKind.Panicked } panic ? $"{panic.Describe()}; " : "";
                        return (vcpu, new VcpuExit(ExitReason.Checkstop, nip, 0, $"{qmpSays}QEMU stopped the VM: {status} (stop reply {reply})"));
                    }
                }
            }
            default:
                throw new QemuLostException($"QEMU's gdbstub answered a resume with '{reply}'");
        }
    }

    // ---- watchpoints: Z2 (write), Z3 (read), Z4 (access) at the effective address ----

    private readonly Dictionary<Watchpoint, int> _watchpoints = new();

    private static int WatchType(WatchKind kind) => kind switch { WatchKind.Write => 2, WatchKind.Read => 3, _ => 4 };

    /// <summary>Sets a watchpoint in QEMU (<c>Z2</c>–<c>Z4</c>, sent at once so that a refusal reaches the caller); an equal one set
    /// again is counted, not sent twice.</summary>
    public void InsertWatchpoint(Watchpoint watchpoint)
    {
        if (watchpoint.Invalid() is { } why) throw new ArgumentOutOfRangeException(nameof(watchpoint), why);
        lock (_plantedLock)
            if (_watchpoints.TryGetValue(watchpoint, out int n)) { _watchpoints[watchpoint] = n + 1; return; }
        string request = $"Z{WatchType(watchpoint.Kind)},{watchpoint.Address:x},{watchpoint.Length:x}";
        string reply = _stub.Request(request);
        if (reply != "OK") throw new GdbStubRefusedException(request, reply);
        lock (_plantedLock) _watchpoints[watchpoint] = 1;
    }

    public bool RemoveWatchpoint(Watchpoint watchpoint)
    {
        lock (_plantedLock)
        {
            if (!_watchpoints.TryGetValue(watchpoint, out int n)) return false;
            if (n > 1 || _stub.IsLost) { if (n > 1) _watchpoints[watchpoint] = n - 1; else _watchpoints.Remove(watchpoint); return true; }
            _watchpoints.Remove(watchpoint);
        }
        string request = $"z{WatchType(watchpoint.Kind)},{watchpoint.Address:x},{watchpoint.Length:x}";
        string reply = _stub.Request(request);
        if (reply != "OK") throw new GdbStubRefusedException(request, reply);
        return true;
    }

    /// <summary>The watchpoint a stop reply names (<c>watch:ADDR</c>, <c>rwatch:</c>, <c>awatch:</c>): the first set one of that
    /// kind that covers the data address. QEMU does not say the access's size or direction: 1 byte, a store for <c>watch</c>.</summary>
    private WatchpointHit? WatchHit(string reply)
    {
        foreach (var (name, kind) in new[] { ("rwatch:", WatchKind.Read), ("awatch:", WatchKind.Access), ("watch:", WatchKind.Write) })
        {
            int i = reply.IndexOf(name, StringComparison.Ordinal);
            if (i < 0 || (name == "watch:" && i > 0 && reply[i - 1] is 'r' or 'a')) continue;
            int end = reply.IndexOf(';', i);
            if (!ulong.TryParse(reply.AsSpan(i + name.Length, (end < 0 ? reply.Length : end) - i - name.Length), NumberStyles.HexNumber,
                    CultureInfo.InvariantCulture, out ulong address)) return null;
            Watchpoint? found = null;
            lock (_plantedLock)
                foreach (var w in _watchpoints.Keys)
                    if (w.Kind == kind && w.Matches(address, 1, kind == WatchKind.Write)) { found = w; break; }
            return new WatchpointHit(found ?? new Watchpoint(address, 1, kind), address, 1, kind == WatchKind.Write);
        }
        return null;
    }

    /// <summary>
    /// QEMU 10's TCG reports a watchpoint as a bare <c>T05</c> (measured: no <c>watch:</c>, the pc after the access). A SIGTRAP
    /// while watchpoints are set, at an address with no breakpoint of ours, is taken for one: the first one set, its own
    /// address as the data address (QEMU does not say which, or where).
    /// </summary>
    private WatchpointHit? UnnamedWatchHit(ulong nip)
    {
        lock (_plantedLock)
        {
            if (_watchpoints.Count == 0 || _planted.Contains(nip)) return null;
            var w = _watchpoints.Keys.First();
            return new WatchpointHit(w, w.Address, 1, w.Kind != WatchKind.Read);
        }
    }

    private static int ParseHexByte(string s, int at) =>
        s.Length >= at + 2 && int.TryParse(s.AsSpan(at, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v) ? v : 0;

    private static int? ThreadOf(string reply)
    {
        int i = reply.IndexOf("thread:", StringComparison.Ordinal);
        if (i < 0) return null;
        int end = reply.IndexOf(';', i);
        var id = reply.AsSpan(i + 7, (end < 0 ? reply.Length : end) - i - 7);
        if (id.Length > 0 && id[0] == 'p') id = id[(id.IndexOf('.') + 1)..];
        return int.TryParse(id, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int t) ? t : null;
    }

    public void RequestStop()
    {
        _stopRequested = true;
        if (_stub.Interrupt()) _stopRequested = false; // the running resume ends with SIGINT
    }

    // ---- per-vcpu plumbing for QemuVcpu ----

    /// <summary>Selects the vcpu for the <c>g</c>/<c>p</c>/<c>P</c> that follow (a prefix to pipeline before them). Always added:
    /// the connection leaves it out at send time when QEMU has that vcpu selected (a stop may change it meanwhile).</summary>
    internal static void SelectThread(List<string> requests, int threadId) => requests.Add($"Hg{threadId:x}");

    // ---- translation: QEMU's own MMU, through the monitor ----

    /// <summary>
    /// EA → RA with the relocation of <paramref name="msr"/>. Relocation off: the real address (EA bits 0:3 ignored). On: QEMU's
    /// own translation (HMP <c>gva2gpa</c>, which uses a vcpu's current state) asked of a vcpu whose state has that relocation
    /// and privilege — this vcpu, or for the kernel's quadrant (EA bits 0:1 = 0b11, the same for every vcpu of the partition)
    /// any vcpu; answers are kept until the VM runs again, kernel-quadrant ones beyond that when no vcpu can be asked.
    /// </summary>
    internal bool TryTranslate(QemuVcpu vcpu, ulong ea, ulong msr, AccessKind access, out ulong ra)
    {
        ulong relocation = access == AccessKind.Fetch ? Msr.IR : Msr.DR;
        if ((msr & relocation) == 0)
        {
            ra = ea & 0x0FFF_FFFF_FFFF_FFFFUL;
            return ra < MemorySize;
        }
        const ulong pageMask = 0xFFFUL;
        ulong page = ea & ~pageMask;
        bool kernelQuadrant = ea >> 62 == 3;
        int context = kernelQuadrant ? -1 : vcpu.Index;
        lock (_translationLock)
        {
            if (_stopTranslations.TryGetValue((page, context), out ulong known))
            {
                ra = known == ulong.MaxValue ? 0 : known | (ea & pageMask);
                return known != ulong.MaxValue;
            }
            if (kernelQuadrant && _kernelTranslations.TryGetValue(page, out var kept) && Generation - kept.Generation < KernelTranslationLifetime)
            {
                ra = kept.Ra | (ea & pageMask);
                return ra < MemorySize;
            }
            QemuVcpu? asked = null;
            ulong wanted = msr & (Msr.PR | Msr.HV);
            bool Suits(QemuVcpu v)
            {
                ulong m = v.GetRegisters().Msr;
                return (m & (Msr.IR | Msr.DR)) == (Msr.IR | Msr.DR) && (m & (Msr.PR | Msr.HV)) == wanted;
            }
            if (Suits(vcpu)) asked = vcpu;
            else if (kernelQuadrant) asked = _vcpus.FirstOrDefault(Suits);
            if (asked is null)
            {
                if (kernelQuadrant && _kernelTranslations.TryGetValue(page, out var old)) { ra = old.Ra | (ea & pageMask); return ra < MemorySize; }
                ra = 0;
                return false;
            }
            ulong? got = AskTranslation(asked.Index, page);
            _stopTranslations[(page, context)] = got ?? ulong.MaxValue;
            if (got is null) { ra = 0; return false; }
            if (kernelQuadrant) _kernelTranslations[page] = (got.Value, Generation);
            ra = got.Value | (ea & pageMask);
            return ra < MemorySize;
        }
    }

    private ulong? AskTranslation(int cpu, ulong page)
    {
        WriteBack(); // the monitor translates with the state QEMU holds
        if (_monitorCpu != cpu)
        {
            _stub.Monitor($"cpu {cpu}");
            _monitorCpu = cpu;
        }
        string output = _stub.Monitor($"gva2gpa 0x{page:x}").Trim();
        // "gpa: 0x4d00", or "Unmapped" / an error for an address with no translation
        if (output.StartsWith("gpa: 0x", StringComparison.Ordinal)
            && ulong.TryParse(output.AsSpan(7), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong gpa)) return gpa & ~0xFFFUL;
        return null;
    }

    private void InvalidateStopTranslations()
    {
        lock (_translationLock) _stopTranslations.Clear();
    }

    internal void InvalidateTranslations()
    {
        lock (_translationLock)
        {
            _stopTranslations.Clear();
            _kernelTranslations.Clear();
        }
    }

    /// <summary>
    /// Leaves QEMU as ActorStep found it: every <c>Z0</c> and watchpoint removed, then detached (<c>D</c>: QEMU resumes the VM); a QEMU that
    /// ActorStep started is stopped. The engine has already taken its step breakpoints and SE out (abandoned steps).
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        RequestStop();
        if (!_stub.IsLost)
        {
            try
            {
                WriteBack(); // the engine's last writes (SE given back) and removals
                var z = PlantedBreakpoints.Select(ea => $"z0,{ea:x},4").ToList();
                lock (_plantedLock) z.AddRange(_watchpoints.Keys.Select(w => $"z{WatchType(w.Kind)},{w.Address:x},{w.Length:x}"));
                if (z.Count > 0) _stub.RequestAll(z);
            }
            catch (QemuLostException) { }
            catch (GdbStubRefusedException) { }
        }
        if (_qmp is not null) _qmp.EventReceived -= OnQmpEvent;
        if (_process is not null)
        {
            _process.ConsoleOutput -= OnConsole;
            _stub.Close();
            _process.Qmp = _qmp; // asked to quit
            _process.Dispose();
            return;
        }
        _stub.Close("D");
        if (_qmp is null) return;
        if (_ownsGdbServer)
        {
            // The gdbstub ActorStep started goes too: nothing of ActorStep stays in that QEMU.
            try { _qmp.HumanMonitor("gdbserver none"); }
            catch (QemuLostException) { }
            catch (QmpErrorException) { }
        }
        _qmp.Dispose();
    }
}
