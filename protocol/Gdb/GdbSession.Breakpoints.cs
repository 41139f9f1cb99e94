using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets": Z/z type,addr,kind. Z0 is gdb's software breakpoint (kind 4: one instruction word);
// Z1 a hardware breakpoint when the target has them; Z2–Z4 watchpoints (kind = length in bytes) when it has them. What the
// target lacks is an empty reply (gdb then knows the packet is unsupported).
public sealed partial class GdbSession
{
    private const int PowerBreakpointKind = 4;

    private async Task<GdbReply> BreakpointAsync(RspReader r, bool insert, CancellationToken ct)
    {
        int type = r.HexInt();
        r.Expect(',');
        var address = r.Hex();
        r.Expect(',');
        int kind = r.HexInt();
        // Conditions and commands (";X…") are only sent when qSupported announced them; we did not.
        if (!r.AtEnd && r.Peek != (byte)';') throw new RspFormatException("trailing data");

        switch (type)
        {
            case 0:
                if (kind != PowerBreakpointKind) return new GdbReply(RspErrors.Invalid);
                if (insert)
                {
                    await _target.InsertSwBreakpointAsync(address, ct);
                    _swBreakpoints.Add(address);
                }
                else
                {
                    await _target.RemoveSwBreakpointAsync(address, ct);
                    _swBreakpoints.Remove(address);
                }
                return GdbReply.Ok;
            case 1 when _target.HwBreakpoints is { } hw:
                if (kind != PowerBreakpointKind) return new GdbReply(RspErrors.Invalid);
                if (insert) await hw.InsertHwBreakpointAsync(address, ct);
                else await hw.RemoveHwBreakpointAsync(address, ct);
                return GdbReply.Ok;
            case 2 or 3 or 4 when _target.Watchpoints is { } watch:
                if (kind <= 0) return new GdbReply(RspErrors.Invalid);
                if (insert) await watch.InsertWatchpointAsync((GdbWatchKind)type, address, (ulong)kind, ct);
                else await watch.RemoveWatchpointAsync((GdbWatchKind)type, address, (ulong)kind, ct);
                return GdbReply.Ok;
            default:
                return GdbReply.Empty;
        }
    }
}
