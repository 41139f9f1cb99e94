using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "General Query Packets": qSupported, QStartNoAckMode, qAttached, qRcmd (qOffsets gets the empty reply: gdb then uses the ELF's addresses); qXfer is in
// GdbSession.Xfer.cs and the thread queries in GdbSession.Threads.cs.
public sealed partial class GdbSession
{
    private async Task<GdbReply> QueryAsync(RspReader r, CancellationToken ct)
    {
        if (r.TrySkip("Supported")) return Supported(r);
        if (r.TrySkip("Xfer:")) return await XferAsync(r, ct);
        if (r.TrySkip("fThreadInfo")) return await FirstThreadInfoAsync(ct);
        if (r.TrySkip("sThreadInfo")) return new GdbReply("l");
        if (r.TrySkip("ThreadExtraInfo,")) return await ThreadExtraInfoAsync(r, ct);
        if (r.TrySkip("C") && r.AtEnd) return await CurrentThreadAsync(ct);
        if (r.TrySkip("Attached")) return new GdbReply("1"); // we attached to a running VM: detach, not kill, on quit
        if (r.TrySkip("Rcmd,")) return await MonitorAsync(r, ct);
        if (r.TrySkip("qemu.sstepbits") && r.AtEnd) return new GdbReply($"ENABLE={StepEnable:x},NOIRQ={StepNoIrq:x},NOTIMER={StepNoTimer:x}");
        if (r.TrySkip("qemu.sstep") && r.AtEnd) return new GdbReply($"0x{_stepFlags:x}");
        return GdbReply.Empty;
    }

    // QEMU's single-step flags (its gdbstub's qqemu.sstep packets, a de-facto interface): a user steps into interrupt
    // handlers with `maintenance packet Qqemu.sstep=0x5`. Here NOIRQ is what counts: set, steps hold the decrementer and
    // external interrupts; clear, a step may end at the first instruction of their handler. (NOTIMER cannot be honoured
    // apart from NOIRQ: the timebase and decrementer are the guest's clock.) ENABLE must stay set: stepping is always on.
    private const int StepEnable = 1, StepNoIrq = 2, StepNoTimer = 4;

    private GdbReply SetStepFlags(RspReader r)
    {
        r.TrySkip("0x"); // QEMU parses it with strtoul(…, 16), which takes gdb manual's own example, "Qqemu.sstep=0x5"
        ulong flags = r.Hex();
        r.ExpectEnd();
        if ((flags & ~(ulong)(StepEnable | StepNoIrq | StepNoTimer)) != 0 || (flags & StepEnable) == 0) return new GdbReply(RspErrors.Invalid);
        _stepFlags = (int)flags;
        return GdbReply.Ok;
    }

    /// <summary>qSupported: what gdb offered decides <c>swbreak</c> and <c>multiprocess</c>; the target's optional
    /// capabilities decide <c>hwbreak</c>.</summary>
    private GdbReply Supported(RspReader r)
    {
        var offered = new HashSet<string>();
        if (r.TrySkip(":"))
            foreach (var f in r.RestText.Split(';', StringSplitOptions.RemoveEmptyEntries)) offered.Add(f);
        _swbreak = offered.Contains("swbreak+");
        _multiprocess = offered.Contains("multiprocess+");

        var features = new List<string>
        {
            $"PacketSize={_packetSize:x}",
            "qXfer:features:read+",
            "qXfer:threads:read+",
            "vContSupported+",
            "QStartNoAckMode+",
        };
        if (_multiprocess) features.Add("multiprocess+");
        if (_swbreak) features.Add("swbreak+");
        if (_target.HwBreakpoints is not null && offered.Contains("hwbreak+")) features.Add("hwbreak+");
        if (_target.NonStop is not null) features.Add("QNonStop+");
        return new GdbReply(string.Join(';', features));
    }

    private GdbReply Set(RspReader r)
    {
        // "Packet Acknowledgment": the OK still travels in ack mode; everything after it does not.
        if (r.TrySkip("StartNoAckMode") && r.AtEnd) return new GdbReply("OK", enterNoAckMode: true);
        if (r.TrySkip("qemu.sstep=")) return SetStepFlags(r);
        return GdbReply.Empty;
    }

    /// <summary>qRcmd (gdb's <c>monitor</c>): the command and its output are hex-encoded; no output is <c>OK</c>. The session
    /// serves <c>interrupts</c> itself (the step flags are the session's); anything else goes to the target's monitor,
    /// and <c>help</c> lists both.</summary>
    private async Task<GdbReply> MonitorAsync(RspReader r, CancellationToken ct)
    {
        var command = RspEncoding.Latin1(r.HexBytes()).Trim();
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string output;
        if (words is ["interrupts", ..]) output = Interrupts(words[1..]);
        else if (_target.Monitor is { } monitor) output = await monitor.RunAsync(command, ct);
        else if (words is [] or ["help"]) output = "";
        else return GdbReply.Empty;
        if (words is [] or ["help"]) output = InterruptsHelp + output;
        return output.Length == 0 ? GdbReply.Ok : new GdbReply(RspEncoding.ToHex(output));
    }

    private const string InterruptsHelp =
        "interrupts [held|allowed]  whether steps hold the decrementer and external interrupts (held: the default; allowed:\n" +
        "                           a step may end at the first instruction of their handler; same as Qqemu.sstep NOIRQ)\n";

    private string Interrupts(string[] args)
    {
        switch (args)
        {
            case []: break;
            case ["held"]: _stepFlags |= StepNoIrq | StepNoTimer; break;
            case ["allowed"]: _stepFlags &= ~(StepNoIrq | StepNoTimer); break;
            default: return "usage: monitor interrupts [held|allowed]\n";
        }
        return (_stepFlags & StepNoIrq) != 0
            ? "steps hold asynchronous interrupts\n"
            : "steps allow asynchronous interrupts: a step may end at the first instruction of their handler\n";
    }
}
