using System.Buffers.Binary;
using System.Globalization;
using ActorStep.Hypervisor;
using ActorStep.Isa;

namespace ActorStep.Backends.Qemu;

/// <summary>
/// One vcpu of a <see cref="QemuVm"/> (a gdb thread of QEMU's stub). Registers are read once per stop, in one round trip,
/// and written back as the changed registers only; <see cref="Run"/> is refused (the VM runs only as a whole).
/// </summary>
public sealed class QemuVcpu : IVcpu
{
    private const int CoreBytes = 32 * 8 + 8 + 8 + 4 + 8 + 8 + 4; // r0–r31, pc, msr, cr, lr, ctr, xer
    private static readonly string[] SprNames = ["srr0", "srr1", "lpcr", "dec", "dar", "dsisr", "sprg0", "sprg1", "sprg2", "sprg3", "tb", "pir", "pvr"];

    private readonly QemuVm _vm;
    private VcpuState? _state;
    /// <summary>What QEMU holds, when <see cref="_state"/> has writes not yet sent (<see cref="AppendWriteBack"/>).</summary>
    private VcpuState? _synced;
    private long _stateGeneration = -1;
    private bool _littleEndian;

    internal QemuVcpu(QemuVm vm, int index, int threadId)
    {
        _vm = vm;
        Index = index;
        ThreadId = threadId;
    }

    public int Index { get; }
    /// <summary>QEMU's gdb thread id (cpu index + 1).</summary>
    public int ThreadId { get; }
    internal bool StoppedForGood { get; set; }
    /// <summary>QEMU exited (its last stop reply was <c>W</c>/<c>X</c>: a guest's poweroff without -no-shutdown): the registers
    /// are those of the last stop, which no one can change any more.</summary>
    internal bool Exited { get; set; }

    public VcpuExit Run(long budget) =>
        throw new InvalidOperationException($"vcpu {Index} belongs to a QEMU VM: it runs only with the whole VM (IAllStopVm.Resume)");

    public VcpuState GetRegisters() => Current().Clone();

    public void GetRegisters(VcpuState into)
    {
        var s = Current();
        s.Gpr.CopyTo(into.Gpr, 0);
        s.Fpr.CopyTo(into.Fpr, 0);
        s.Sprg.CopyTo(into.Sprg, 0);
        into.Nip = s.Nip; into.Msr = s.Msr; into.Cr = s.Cr; into.Lr = s.Lr; into.Ctr = s.Ctr; into.Xer = s.Xer;
        into.Fpscr = s.Fpscr; into.Srr0 = s.Srr0; into.Srr1 = s.Srr1; into.Dar = s.Dar; into.Dsisr = s.Dsisr;
        into.Dec = s.Dec; into.Tb = s.Tb; into.Pir = s.Pir; into.Pvr = s.Pvr; into.Lpcr = s.Lpcr; into.ReservationHeld = s.ReservationHeld;
    }

    /// <summary>The state as of this stop, read from QEMU at most once per stop.</summary>
    private VcpuState Current()
    {
        if (Exited && _state is { } last) return last; // a VM that ended is reported as it ended, not as lost
        _vm.Stub.StopIfRunning(); // all-stop: registers are read from a stopped VM
        // A lost VM says so to every call, even one this stop's registers could answer.
        if (_vm.Stub.LostReason is { } lost) throw new QemuLostException(lost);
        lock (_vm.Io)
        {
            if (_state is not null && _stateGeneration == _vm.Generation) return _state;
            var map = _vm.Registers;
            var requests = new List<string>(64);
            QemuVm.SelectThread(requests, ThreadId);
            requests.Add("g");
            foreach (var name in SprNames) requests.Add($"p{map[name]:x}");
            for (int i = 0; i < 32; i++) requests.Add($"p{map[$"f{i}"]:x}");
            requests.Add($"p{map["fpscr"]:x}");
            string[] replies = _vm.Stub.RequestAll(requests);
            if (replies[0] != "OK") throw new GdbStubRefusedException(requests[0], replies[0]);
            const int first = 1;
            var core = Hex(requests[first], replies[first]);
            if (core.Length < CoreBytes) throw new GdbStubRefusedException("g", replies[first]);
            // Every register comes in the byte order of the vcpu's MSR[LE], the MSR included: read it little-endian, and its
            // LE bit says whether that was right (read big-endian, MSR bit 63 would be the top byte's low bit — MSR bit 7,
            // reserved and 0).
            _littleEndian = (BinaryPrimitives.ReadUInt64LittleEndian(core.AsSpan(264)) & Msr.LE) != 0;
            // ReservationHeld stays false: the gdbstub cannot say, and every stop of a QEMU VM is a host trip that drops it.
            var s = new VcpuState();
            for (int i = 0; i < 32; i++) s.Gpr[i] = U64(core, 8 * i);
            s.Nip = U64(core, 256); s.Msr = U64(core, 264); s.Cr = U32(core, 272); s.Lr = U64(core, 276); s.Ctr = U64(core, 284); s.Xer = U32(core, 292);
            int at = first + 1;
            ulong Spr() { var b = Hex(requests[at], replies[at]); at++; return b.Length == 4 ? U32(b, 0) : U64(b, 0); }
            s.Srr0 = Spr(); s.Srr1 = Spr(); s.Lpcr = Spr(); s.Dec = (uint)Spr(); s.Dar = Spr(); s.Dsisr = (uint)Spr();
            for (int i = 0; i < 4; i++) s.Sprg[i] = Spr();
            s.Tb = Spr(); s.Pir = Spr(); s.Pvr = Spr();
            for (int i = 0; i < 32; i++) s.Fpr[i] = Spr();
            s.Fpscr = (uint)Spr();
            _state = s;
            _stateGeneration = _vm.Generation;
            return s;
        }
    }

    /// <summary>
    /// Takes the new state; QEMU gets it before anything depends on it (the VM runs, the monitor translates, the VM is let go):
    /// only what differs, one <c>P</c> per register, all in the write that carries the resume (<see cref="AppendWriteBack"/>).
    /// TB and DEC are written only when the caller changed them (QEMU keeps the clock; a DEC written through the stub is not
    /// reloaded into its timer).
    /// </summary>
    public void SetRegisters(VcpuState state)
    {
        lock (_vm.Io)
        {
            var old = Current();
            _synced ??= old;
            var now = state.Clone();
            now.Pir = old.Pir; now.Pvr = old.Pvr; // read-only
            _state = now;
        }
    }

    /// <summary>Appends the <c>P</c> requests that bring QEMU to this vcpu's state (the MSR last: QEMU decodes each register in
    /// the byte order of the MSR[LE] it has when the packet arrives). Caller holds <see cref="QemuVm.Io"/> and sends them.</summary>
    internal void AppendWriteBack(List<string> requests)
    {
        if (_synced is not { } old || _state is not { } state) return;
        var map = _vm.Registers;
        int first = requests.Count;
        QemuVm.SelectThread(requests, ThreadId);
        bool le = (old.Msr & Msr.LE) != 0;
        void Put(int number, ulong value, int size) => requests.Add($"P{number:x}={Encode(value, size, le)}");
        for (int i = 0; i < 32; i++) if (state.Gpr[i] != old.Gpr[i]) Put(i, state.Gpr[i], 8);
        if (state.Nip != old.Nip) Put(64, state.Nip, 8);
        if (state.Cr != old.Cr) Put(66, state.Cr, 4);
        if (state.Lr != old.Lr) Put(67, state.Lr, 8);
        if (state.Ctr != old.Ctr) Put(68, state.Ctr, 8);
        if (state.Xer != old.Xer) Put(69, state.Xer, 4);
        if (state.Srr0 != old.Srr0) Put(map["srr0"], state.Srr0, 8);
        if (state.Srr1 != old.Srr1) Put(map["srr1"], state.Srr1, 8);
        if (state.Lpcr != old.Lpcr) Put(map["lpcr"], state.Lpcr, 8);
        if (state.Dec != old.Dec) Put(map["dec"], state.Dec, 8);
        if (state.Dar != old.Dar) Put(map["dar"], state.Dar, 8);
        if (state.Dsisr != old.Dsisr) Put(map["dsisr"], state.Dsisr, 8);
        for (int i = 0; i < 4; i++) if (state.Sprg[i] != old.Sprg[i]) Put(map[$"sprg{i}"], state.Sprg[i], 8);
        if (state.Tb != old.Tb) Put(map["tb"], state.Tb, 8);
        for (int i = 0; i < 32; i++) if (state.Fpr[i] != old.Fpr[i]) Put(map[$"f{i}"], state.Fpr[i], 8);
        if (state.Fpscr != old.Fpscr) Put(map["fpscr"], state.Fpscr, 4);
        if (state.Msr != old.Msr) Put(65, state.Msr, 8);
        if (requests.Count == first + 1) requests.RemoveAt(first); // nothing changed: no selection either
        _synced = null;
        _littleEndian = (state.Msr & Msr.LE) != 0;
    }

    /// <summary>The write-back could not be sent: what this vcpu holds is no longer known.</summary>
    internal void ForgetState()
    {
        _state = null;
        _synced = null;
    }

    private readonly Dictionary<int, string> _sprNames = new()
    {
        [Spr.SRR0] = "srr0", [Spr.SRR1] = "srr1", [Spr.LPCR] = "lpcr", [Spr.DEC] = "dec", [Spr.DAR] = "dar", [Spr.DSISR] = "dsisr",
        [Spr.SPRG0] = "sprg0", [Spr.SPRG1] = "sprg1", [Spr.SPRG2] = "sprg2", [Spr.SPRG3] = "sprg3", [Spr.PVR] = "pvr", [Spr.PIR] = "pir",
        [48] = "pidr", [Spr.TBL_READ] = "tb",
    };

    public ulong GetOneReg(int spr)
    {
        if (!_sprNames.TryGetValue(spr, out var name) || _vm.Registers.Find(name) is not int number)
            throw new ArgumentException($"SPR {spr} is not readable through QEMU's gdbstub here");
        lock (_vm.Io)
        {
            Current();
            _vm.WriteBack();
            var requests = new List<string>(2);
            QemuVm.SelectThread(requests, ThreadId);
            requests.Add($"p{number:x}");
            var replies = _vm.Stub.RequestAll(requests);
            var b = Hex(requests[^1], replies[^1]);
            return b.Length == 4 ? U32(b, 0) : U64(b, 0);
        }
    }

    public void SetOneReg(int spr, ulong value)
    {
        var s = GetRegisters();
        switch (spr)
        {
            case Spr.SRR0: s.Srr0 = value; break;
            case Spr.SRR1: s.Srr1 = value; break;
            case Spr.LPCR: s.Lpcr = value; break;
            case Spr.DAR: s.Dar = value; break;
            case Spr.DSISR: s.Dsisr = (uint)value; break;
            case Spr.DEC: s.Dec = (uint)value; break;
            case >= Spr.SPRG0 and <= Spr.SPRG3: s.Sprg[spr - Spr.SPRG0] = value; break;
            default: throw new ArgumentException($"SPR {spr} is not writable through QEMU's gdbstub here");
        }
        SetRegisters(s);
    }

    public bool TryTranslate(ulong effectiveAddress, ulong msr, AccessKind access, out ulong realAddress) =>
        _vm.TryTranslate(this, effectiveAddress, msr, access, out realAddress);

    public void SetGuestDebug(GuestDebug debug)
    {
        // Z0 breakpoints always stop the VM for the stub's client; QEMU's own step is never used (KVM-HV ignores it).
        if ((debug & GuestDebug.SingleStep) != 0)
            throw new NotSupportedException("a QEMU VM is stepped as on KVM-HV: its hardware single-step is never used");
    }

    /// <summary>QEMU delivers every interrupt while the VM runs (its NOIRQ/NOTIMER apply only to its own step).</summary>
    public bool HoldAsyncInterrupts
    {
        get => false;
        set { }
    }

    /// <summary>QEMU keeps the clock: an instruction the engine performed itself moves nothing here.</summary>
    public void RetireEmulatedInstruction() { }

    public void RequestExit() => _vm.RequestStop();

    public bool IsStoppedForGood => StoppedForGood || _vm.Stub.IsLost;

    /// <summary>Not counted: QEMU does not say how many instructions ran (budgets here count traps and stops).</summary>
    public long InstructionsRetired => 0;


    private static string Encode(ulong value, int size, bool littleEndian)
    {
        Span<byte> b = stackalloc byte[8];
        if (size == 4)
        {
            if (littleEndian) BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)value); else BinaryPrimitives.WriteUInt32BigEndian(b, (uint)value);
        }
        else if (littleEndian) BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        else BinaryPrimitives.WriteUInt64BigEndian(b, value);
        return Convert.ToHexStringLower(b[..size]);
    }

    private ulong U64(byte[] b, int at) => _littleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(at));
    private uint U32(byte[] b, int at) => _littleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at));

    private static byte[] Hex(string request, string reply)
    {
        if (reply.Length == 0 || reply.Length % 2 != 0 || (reply[0] == 'E' && reply.Length == 3)) throw new GdbStubRefusedException(request, reply);
        try { return Convert.FromHexString(reply); }
        catch (FormatException) { throw new GdbStubRefusedException(request, reply); }
    }
}
