using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using ActorStep.Hypervisor;
using ActorStep.Machine.Cpu;
using ActorStep.Machine.Mmu;
using ActorStep.Machine.Platform;

namespace ActorStep.Machine;

/// <summary>Why the whole machine stopped: the guest powered it off, rebooted it or terminated (RTAS).</summary>
/// <param name="Status">0 power-off; 1 system-reboot (this machine stops instead); 2 ibm,os-term (the kernel panicked)</param>
public sealed record MachineHalt(long Status, string Detail)
{
    public const long PowerOff = 0, Reboot = 1, OsTerm = 2;
}

// The platform a PAPR guest sees beyond its vcpus: the hypercalls a KVM host serves (LoPAPR §14.5), RTAS behind H_RTAS,
// XICS, the console, and the machine-wide stop. QEMU's hw/ppc/spapr_hcall.c and spapr_rtas.c serve the same calls.
public sealed partial class SimulatedMachine
{
    private volatile MachineHalt? _halt;
    private readonly WakeSignal[] _wake;
    private readonly ConcurrentQueue<byte> _consoleInput = new();
    private ulong _random = 0x9E3779B97F4A7C15;

    /// <summary>
    /// Booted as a PAPR pseries guest (<see cref="LinuxBoot"/>): only PAPR's hypercalls are served. ActorStep's own stop call
    /// (H_ACTORSTEP_STOP, 0xF080) is H_GET_PERF_COUNTER_INFO in PAPR, which Linux asks for (hv_perf_caps_get): it gets H_FUNCTION.
    /// </summary>
    internal bool IsPseriesPlatform { get; set; }

    /// <summary>The interrupt controller (one presentation server per vcpu).</summary>
    public Xics Xics { get; }

    /// <summary>What RTAS get-time-of-day reports at timebase 0 (<see cref="MachineOptions.RealTimeClock"/>).</summary>
    public DateTimeOffset RealTimeClockAtZero { get; }

    /// <summary>Set once the guest powered the machine off, rebooted or terminated it: every vcpu's next Run stops it for good.</summary>
    public MachineHalt? Halt => _halt;

    /// <summary>Bytes for the guest's console input (H_GET_TERM_CHAR reads them in order).</summary>
    public void WriteConsoleInput(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _consoleInput.Enqueue(b);
    }

    /// <summary>
    /// Waits until something may have made vcpu <paramref name="vcpu"/> runnable (an H_PROD, an interrupt raised for it, RTAS
    /// start-cpu, the machine halted) or <paramref name="timeout"/> passes. For runners that block an idle vcpu's thread instead
    /// of spinning it; true when it was signalled.
    /// </summary>
    public bool WaitForWake(int vcpu, TimeSpan timeout) => _wake[vcpu].Wait(timeout);

    /// <summary>Something may have made <paramref name="vcpu"/> runnable: its runner's wait ends, and an engine pacing its idle
    /// time hears of it (<see cref="VcpuWakeRequested"/>).</summary>
    internal void SignalWake(int vcpu)
    {
        _wake[vcpu].Set();
        VcpuWakeRequested?.Invoke(vcpu);
    }

    /// <summary>The host asked vcpu <paramref name="vcpu"/> to leave its run loop: its runner's wait ends (no guest wake-up).</summary>
    internal void SignalExitRequested(int vcpu) => _wake[vcpu].Set();

    /// <summary>Wakes every vcpu's waiter (a runner whose vcpu finished: held vcpus may now have nothing left to wait for).</summary>
    public void SignalWakeAll()
    {
        for (int i = 0; i < _wake.Length; i++) SignalWake(i);
    }

    private void HaltMachine(MachineHalt halt)
    {
        if (_halt is not null) return;
        _halt = halt;
        foreach (var v in _vcpus) v.RequestExit();
        SignalWakeAll();
    }

    /// <summary>The PAPR hypercalls served by this host: r3 = number, r4.. = arguments; r3 ← status, r4.. ← results.</summary>
    internal void Hypercall(SimulatedVcpu v)
    {
        ulong nr = v.Gpr[3];
        long status = 0;
        switch (nr)
        {
            case Papr.H_PUT_TERM_CHAR:
            {
                ulong len = v.Gpr[5];
                if (len > 16) { status = Papr.H_PARAMETER; break; }
                Span<byte> chars = stackalloc byte[16];
                BinaryPrimitives.WriteUInt64BigEndian(chars, v.Gpr[6]);
                BinaryPrimitives.WriteUInt64BigEndian(chars[8..], v.Gpr[7]);
                ConsoleOutput?.Invoke(v.Index, chars[..(int)len]);
                break;
            }
            case Papr.H_GET_TERM_CHAR:
            {
                // Up to 16 characters, big-endian in r5/r6 (first in the MSB of r5), their count in r4.
                Span<byte> chars = stackalloc byte[16];
                int n = 0;
                while (n < 16 && _consoleInput.TryDequeue(out byte b)) chars[n++] = b;
                v.Gpr[4] = (ulong)n;
                v.Gpr[5] = BinaryPrimitives.ReadUInt64BigEndian(chars);
                v.Gpr[6] = BinaryPrimitives.ReadUInt64BigEndian(chars[8..]);
                break;
            }
            case Papr.H_SET_MODE:
                status = SetMode(v.Gpr[4], v.Gpr[5], v.Gpr[6], v.Gpr[7]);
                break;
            case Papr.H_REGISTER_PROC_TBL:
                status = RegisterProcessTable(v.Gpr[4], v.Gpr[5], v.Gpr[6], v.Gpr[7]);
                break;
            case Papr.H_CEDE:
                v.Cede();
                break;
            case Papr.H_PROD:
                if (v.Gpr[4] >= (ulong)_vcpus.Length) { status = Papr.H_PARAMETER; break; }
                _vcpus[v.Gpr[4]].Prod();
                break;
            case Papr.H_CONFER:
                // Give the rest of this time slice to another vcpu (or all): vcpus here have their own threads or turns.
                break;
            case Papr.H_REGISTER_VPA:
                status = RegisterVpa(v.Gpr[4], v.Gpr[5], v.Gpr[6]);
                break;
            case Papr.H_GET_CPU_CHARACTERISTICS:
                // No speculation side channels to mitigate in an interpreter: no characteristics, no behaviours asked for
                // (so the guest does not flush the L1D on every kernel exit).
                v.Gpr[4] = 0;
                v.Gpr[5] = 0;
                break;
            case Papr.H_RANDOM:
                v.Gpr[4] = NextRandom();
                break;
            case Papr.H_CPPR:
                Xics.SetCppr(v.Index, (byte)v.Gpr[4]);
                break;
            case Papr.H_IPI:
                if (v.Gpr[4] >= (ulong)_vcpus.Length) { status = Papr.H_PARAMETER; break; }
                Xics.SetMfrr((int)v.Gpr[4], (byte)v.Gpr[5]);
                break;
            case Papr.H_XIRR:
                v.Gpr[4] = Xics.Accept(v.Index);
                break;
            case Papr.H_XIRR_X:
                v.Gpr[4] = Xics.Accept(v.Index);
                v.Gpr[5] = TimebaseRead(v.Tb);
                break;
            case Papr.H_EOI:
                Xics.EndOfInterrupt(v.Index, (uint)v.Gpr[4]);
                break;
            case Papr.H_IPOLL:
            {
                if (v.Gpr[4] >= (ulong)_vcpus.Length) { status = Papr.H_PARAMETER; break; }
                var (xirr, mfrr) = Xics.Poll((int)v.Gpr[4]);
                v.Gpr[4] = xirr;
                v.Gpr[5] = mfrr;
                break;
            }
            case Papr.H_RTAS:
                status = RtasCall(v, v.Gpr[4] & 0x0FFFFFFFFFFFFFFF);
                break;
            case Papr.H_ACTORSTEP_STOP when !IsPseriesPlatform:
                v.Gpr[3] = 0;
                v.StopForGood((long)v.Gpr[4]);
                return;
            default:
                NoteMissing("hypercall", nr, v.Index, v.Nip - 4);
                status = Papr.H_FUNCTION;
                break;
        }
        v.Gpr[3] = (ulong)status;
    }

    private ulong NextRandom()
    {
        // xorshift64*: the same sequence every run, so a deterministic run stays deterministic.
        lock (_wake)
        {
            _random ^= _random >> 12;
            _random ^= _random << 25;
            _random ^= _random >> 27;
            return _random * 0x2545F4914F6CDD1D;
        }
    }

    /// <summary>H_REGISTER_VPA (flags r4: subfunction in bits 16:18 of the 64-bit big-endian value; cpu r5; real address r6):
    /// accepted for an existing cpu and an address in RAM; the host never writes into the areas.</summary>
    private long RegisterVpa(ulong flags, ulong cpu, ulong address)
    {
        if (cpu >= (ulong)_vcpus.Length) return Papr.H_PARAMETER;
        ulong subfunction = (flags >> 45) & 7;
        if (subfunction is 1 or 2 or 3 && address >= Memory.Size) return Papr.H_PARAMETER;
        return 0;
    }

    /// <summary>H_REGISTER_PROC_TBL as QEMU's spapr serves it (flags: 0x10 modify, 0x08 register, 0x04 radix, 0x02 hash
    /// process table, 0x01 GTSE). Only radix tables are accepted: this machine has no hash MMU.</summary>
    private long RegisterProcessTable(ulong flags, ulong table, ulong pageSize, ulong tableSize)
    {
        const ulong Modify = 0x10, Register = 0x08, Radix = 0x04, HashTable = 0x02;
        if ((flags & ~0x1FUL) != 0) return Papr.H_PARAMETER;
        if ((flags & Modify) == 0) return 0;
        if ((flags & Register) == 0) _processTable = default;
        else
        {
            if ((flags & Radix) == 0 || (flags & HashTable) != 0) return Papr.H_PARAMETER;
            if ((table & 0xFFF) != 0 || (table >> 60) != 0 || table >= Memory.Size) return Papr.H_P2;
            if (pageSize != 0) return Papr.H_P3;
            if (tableSize > 24) return Papr.H_P4;
            _processTable = new ProcessTable(table, (int)tableSize + 12);
        }
        InvalidateTranslations();
        return 0;
    }

    /// <summary>H_SET_MODE: resource 3 sets LPCR[AIL] (0, 2 or 3: Linux asks for 3, interrupts at 0xC000…4000 with
    /// translation on), resource 4 LPCR[ILE] (little-endian interrupts); other resources (CIABR, DAWR) are H_P2.</summary>
    private long SetMode(ulong mflags, ulong resource, ulong value1, ulong value2)
    {
        switch (resource)
        {
            case Papr.H_SET_MODE_RESOURCE_ADDR_TRANS_MODE:
                if (value1 != 0) return Papr.H_P3;
                if (value2 != 0) return Papr.H_P4;
                if (mflags is not (0 or 2 or 3)) return Papr.H_UNSUPPORTED_FLAG;
                Lpcr = Isa.Lpcr.WithAil(Lpcr, (int)mflags);
                return 0;
            case Papr.H_SET_MODE_RESOURCE_LE:
                if (value1 != 0) return Papr.H_P3;
                if (value2 != 0) return Papr.H_P4;
                if (mflags > 1) return Papr.H_UNSUPPORTED_FLAG;
                Lpcr = mflags == 1 ? Lpcr | Isa.Lpcr.ILE : Lpcr & ~Isa.Lpcr.ILE;
                return 0;
            default:
                return Papr.H_P2;
        }
    }

    // --- RTAS (LoPAPR §7): the guest's stub makes H_RTAS with the argument block's real address. ---

    private const int RtasSuccess = 0, RtasHardwareError = -1, RtasParameterError = -3;

    /// <summary>
    /// One RTAS call: the big-endian block at <paramref name="block"/> is token, nargs, nret, args[nargs], rets[nret]
    /// (32-bit words). The status goes in rets[0]; H_RTAS itself succeeds unless the block is not in RAM.
    /// </summary>
    private long RtasCall(SimulatedVcpu caller, ulong block)
    {
        if (!Memory.Contains(block, 12)) return Papr.H_PARAMETER;
        uint token = ReadBe32(block), nargs = ReadBe32(block + 4), nret = ReadBe32(block + 8);
        if (nargs > 16 || nret > 16 || !Memory.Contains(block, 12 + 4 * (ulong)(nargs + nret))) return Papr.H_PARAMETER;
        var args = new uint[nargs];
        for (int i = 0; i < nargs; i++) args[i] = ReadBe32(block + 12 + 4 * (ulong)i);
        var rets = new int[nret];
        int status = RtasService(caller, token, args, rets);
        if (nret > 0) rets[0] = status;
        for (int i = 0; i < nret; i++) WriteBe32(block + 12 + 4 * (ulong)(nargs + i), (uint)rets[i]);
        return 0;
    }

    private int RtasService(SimulatedVcpu caller, uint token, uint[] args, int[] rets)
    {
        bool Shape(int n, int r) => args.Length == n && rets.Length == r;
        switch (token)
        {
            case Rtas.GetTimeOfDay:
            {
                if (!Shape(0, 8)) return RtasParameterError;
                var t = RealTimeClockAtZero.UtcDateTime.AddTicks((long)((UInt128)caller.Tb * TimeSpan.TicksPerSecond / MachineOptions.TimebaseFrequency));
                (rets[1], rets[2], rets[3], rets[4], rets[5], rets[6]) = (t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second);
                rets[7] = (int)(t.Ticks % TimeSpan.TicksPerSecond * 100);
                return RtasSuccess;
            }
            case Rtas.PowerOff:
                HaltMachine(new MachineHalt(MachineHalt.PowerOff, $"the guest powered the machine off (RTAS power-off from vcpu {caller.Index})"));
                return RtasSuccess;
            case Rtas.SystemReboot:
                HaltMachine(new MachineHalt(MachineHalt.Reboot, $"the guest asked for a reboot (RTAS system-reboot from vcpu {caller.Index}); this machine stops instead"));
                return RtasSuccess;
            case Rtas.OsTerm:
            {
                string text = args.Length > 0 ? ReadGuestString(args[0], 1024) : "";
                HaltMachine(new MachineHalt(MachineHalt.OsTerm, $"the guest terminated (RTAS ibm,os-term from vcpu {caller.Index}): {text.TrimEnd()}"));
                return RtasSuccess;
            }
            case Rtas.QueryCpuStoppedState:
                if (!Shape(1, 2)) return RtasParameterError;
                if (args[0] >= (uint)_vcpus.Length) return RtasParameterError;
                rets[1] = _vcpus[args[0]].IsHeld ? 0 : 2; // 0 stopped, 2 running
                return RtasSuccess;
            case Rtas.StartCpu:
                if (!Shape(3, 1)) return RtasParameterError;
                if (args[0] >= (uint)_vcpus.Length || !Memory.Contains(args[1], 4)) return RtasParameterError;
                return _vcpus[args[0]].RequestStart(args[1], args[2], caller.Tb) ? RtasSuccess : RtasHardwareError;
            case Rtas.StopSelf:
                caller.StopSelf();
                return RtasSuccess;
            case Rtas.SetXive:
                if (!Shape(3, 1)) return RtasParameterError;
                return Xics.SetXive(args[0], args[1], args[2]) ? RtasSuccess : RtasParameterError;
            case Rtas.GetXive:
            {
                if (!Shape(1, 3)) return RtasParameterError;
                if (!Xics.GetXive(args[0], out uint server, out uint priority)) return RtasParameterError;
                (rets[1], rets[2]) = ((int)server, (int)priority);
                return RtasSuccess;
            }
            case Rtas.IntOff or Rtas.IntOn:
                if (!Shape(1, 1)) return RtasParameterError;
                return Xics.SetSourceEnabled(args[0], token == Rtas.IntOn) ? RtasSuccess : RtasParameterError;
            case Rtas.DisplayCharacter:
            {
                if (args.Length != 1) return RtasParameterError;
                Span<byte> c = [(byte)args[0]];
                ConsoleOutput?.Invoke(caller.Index, c);
                return RtasSuccess;
            }
            default:
                NoteMissing("rtas", token, caller.Index, caller.Nip);
                return RtasParameterError;
        }
    }

    private uint ReadBe32(ulong ra)
    {
        Span<byte> b = stackalloc byte[4];
        Memory.Read(ra, b);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private void WriteBe32(ulong ra, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Memory.Write(ra, b);
    }

    private string ReadGuestString(ulong ra, int max)
    {
        var sb = new StringBuilder();
        Span<byte> b = stackalloc byte[1];
        for (int i = 0; i < max && Memory.Contains(ra + (ulong)i, 1); i++)
        {
            Memory.Read(ra + (ulong)i, b);
            if (b[0] == 0) break;
            sb.Append(b[0] is >= 0x20 and < 0x7F or (byte)'\n' ? (char)b[0] : '?');
        }
        return sb.ToString();
    }

    /// <summary>An auto-reset wake-up a runner's thread can block on.</summary>
    private sealed class WakeSignal
    {
        private bool _set;

        public void Set()
        {
            lock (this)
            {
                _set = true;
                Monitor.PulseAll(this);
            }
        }

        public bool Wait(TimeSpan timeout)
        {
            lock (this)
            {
                if (!_set) Monitor.Wait(this, timeout);
                bool was = _set;
                _set = false;
                return was;
            }
        }
    }
}
