namespace ActorStep.Machine.Platform;

/// <summary>
/// The XICS interrupt controller as PAPR presents it to a guest (LoPAPR §C.2; the rules of QEMU's hw/intc/xics.c): one
/// presentation controller (ICP) per interrupt server — here one per vcpu, server number = vcpu index — reached by the
/// hypercalls H_CPPR, H_IPI, H_XIRR, H_EOI, H_IPOLL, and a source controller (ICS) whose sources RTAS set-xive/get-xive/
/// int-on/int-off configure. Priorities: 0 most favoured, 0xFF least (masked). Inter-processor interrupts come from an ICP's
/// MFRR and present source <see cref="IpiSource"/>. No device of this machine raises an ICS source yet, so the sources are
/// configuration only. Thread-safe: every vcpu's hypercalls reach it from that vcpu's thread.
/// </summary>
public sealed class Xics
{
    /// <summary>The XISR of an inter-processor interrupt (Linux's XICS_IPI).</summary>
    public const uint IpiSource = 2;
    /// <summary>The first source number of the ICS and how many it has (QEMU's spapr: 4096 upwards).</summary>
    public const uint FirstSource = 0x1000;
    public const uint SourceCount = 1024;

    private const uint XisrMask = 0x00FFFFFF;

    private readonly object _lock = new();
    private readonly Presentation[] _icp;
    private readonly Source[] _ics = new Source[SourceCount];
    private readonly Action<int, bool> _output;

    private struct Presentation
    {
        /// <summary>CPPR in bits 24:31, XISR below.</summary>
        public uint Xirr;
        public byte PendingPriority;
        public byte Mfrr;
    }

    private struct Source
    {
        public uint Server;
        public byte Priority;
        /// <summary>The priority int-off masked (int-on puts it back).</summary>
        public byte SavedPriority;
    }

    /// <param name="servers">interrupt servers (vcpus)</param>
    /// <param name="output">raises (true) or lowers (false) the external exception of a server's vcpu</param>
    public Xics(int servers, Action<int, bool> output)
    {
        _output = output;
        _icp = new Presentation[servers];
        for (int i = 0; i < servers; i++) _icp[i] = new Presentation { Xirr = 0, PendingPriority = 0xFF, Mfrr = 0xFF };
        for (int i = 0; i < _ics.Length; i++) _ics[i] = new Source { Server = 0, Priority = 0xFF, SavedPriority = 0xFF };
    }

    public int Servers => _icp.Length;

    private static uint Cppr(in Presentation p) => p.Xirr >> 24;
    private static uint Xisr(in Presentation p) => p.Xirr & XisrMask;

    /// <summary>H_CPPR: the server's current processor priority; a pending interrupt it no longer admits is withdrawn.</summary>
    public void SetCppr(int server, byte cppr)
    {
        lock (_lock)
        {
            ref var p = ref _icp[server];
            uint old = Cppr(p);
            p.Xirr = (p.Xirr & XisrMask) | ((uint)cppr << 24);
            if (cppr < old)
            {
                if (Xisr(p) != 0 && cppr <= p.PendingPriority)
                {
                    // Withdrawn: an IPI stays in MFRR and is presented again once CPPR allows it.
                    p.Xirr &= ~XisrMask;
                    p.PendingPriority = 0xFF;
                    _output(server, false);
                }
            }
            else if (Xisr(p) == 0) Resend(server);
        }
    }

    /// <summary>H_IPI: writes the server's MFRR; an IPI more favoured than its CPPR is presented.</summary>
    public void SetMfrr(int server, byte mfrr)
    {
        lock (_lock)
        {
            _icp[server].Mfrr = mfrr;
            if (mfrr < Cppr(_icp[server])) CheckIpi(server);
        }
    }

    /// <summary>H_XIRR: accepts the pending interrupt (CPPR takes its priority) and returns the XIRR as it was.</summary>
    public uint Accept(int server)
    {
        lock (_lock)
        {
            ref var p = ref _icp[server];
            uint xirr = p.Xirr;
            _output(server, false);
            p.Xirr = (uint)p.PendingPriority << 24;
            p.PendingPriority = 0xFF;
            return xirr;
        }
    }

    /// <summary>H_IPOLL: the XIRR and MFRR without accepting anything.</summary>
    public (uint Xirr, byte Mfrr) Poll(int server)
    {
        lock (_lock) return (_icp[server].Xirr, _icp[server].Mfrr);
    }

    /// <summary>H_EOI: CPPR ← the XIRR's priority; the source is done; anything still waiting is presented again.</summary>
    public void EndOfInterrupt(int server, uint xirr)
    {
        lock (_lock)
        {
            ref var p = ref _icp[server];
            p.Xirr = (p.Xirr & XisrMask) | (xirr & ~XisrMask);
            if (Xisr(p) == 0) Resend(server);
        }
    }

    private void Resend(int server)
    {
        if (_icp[server].Mfrr < Cppr(_icp[server])) CheckIpi(server);
    }

    private void CheckIpi(int server)
    {
        ref var p = ref _icp[server];
        if (Xisr(p) != 0 && p.PendingPriority <= p.Mfrr) return;
        p.Xirr = (p.Xirr & ~XisrMask) | IpiSource;
        p.PendingPriority = p.Mfrr;
        _output(server, true);
    }

    private bool IsSource(uint irq) => irq - FirstSource < SourceCount;

    /// <summary>RTAS ibm,set-xive: a source's server and priority. False for a source or server that does not exist.</summary>
    public bool SetXive(uint irq, uint server, uint priority)
    {
        if (!IsSource(irq) || server >= (uint)_icp.Length || priority > 0xFF) return false;
        lock (_lock)
        {
            ref var s = ref _ics[irq - FirstSource];
            s.Server = server;
            s.Priority = s.SavedPriority = (byte)priority;
        }
        return true;
    }

    /// <summary>RTAS ibm,get-xive.</summary>
    public bool GetXive(uint irq, out uint server, out uint priority)
    {
        server = priority = 0;
        if (!IsSource(irq)) return false;
        lock (_lock)
        {
            var s = _ics[irq - FirstSource];
            (server, priority) = (s.Server, s.Priority);
        }
        return true;
    }

    /// <summary>RTAS ibm,int-off (mask, keeping the priority for int-on) and ibm,int-on.</summary>
    public bool SetSourceEnabled(uint irq, bool on)
    {
        if (!IsSource(irq)) return false;
        lock (_lock)
        {
            ref var s = ref _ics[irq - FirstSource];
            if (on) s.Priority = s.SavedPriority;
            else
            {
                if (s.Priority != 0xFF) s.SavedPriority = s.Priority;
                s.Priority = 0xFF;
            }
        }
        return true;
    }
}
