namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets": D (detach), k (kill), vKill; and what happens when gdb goes away without either.
public sealed partial class GdbSession
{
    private async Task<GdbReply> DetachAsync(CancellationToken ct)
    {
        await LeaveNonStopAsync(ct); // non-stop: every vcpu stops, as the VM is left after an all-stop detach
        await _target.DetachAsync(ct);
        State = GdbSessionState.Disconnected;
        return GdbReply.Ok;
    }

    /// <summary><c>k</c> gets no reply (gdb does not wait for one); <c>vKill;pid</c> gets OK.</summary>
    private async Task<GdbReply> KillAsync(bool reply, CancellationToken ct)
    {
        await LeaveNonStopAsync(ct);
        await _target.KillAsync(ct);
        State = GdbSessionState.Disconnected;
        return reply ? GdbReply.Ok : GdbReply.None;
    }

    /// <summary>The connection dropped without D or k: stop a running VM, take out the breakpoints gdb planted
    /// (gdb cannot any more) and detach, so the guest does not later trap on a breakpoint nobody owns. Best effort.</summary>
    public async Task ConnectionLostAsync(CancellationToken ct = default)
    {
        if (State == GdbSessionState.Disconnected) return;
        try
        {
            try { await LeaveNonStopAsync(ct); } catch (Exception e) when (e is not OperationCanceledException) { }
            if (State is GdbSessionState.Running or GdbSessionState.Interrupting && _resume is not null)
            {
                if (State == GdbSessionState.Running) await _target.InterruptAsync(ct);
                try { await _resume.WaitAsync(ct); } catch (Exception e) when (e is not OperationCanceledException) { }
            }
            foreach (var address in _swBreakpoints.ToList())
            {
                try { await _target.RemoveSwBreakpointAsync(address, ct); } catch (Exception e) when (e is not OperationCanceledException) { }
            }
            _swBreakpoints.Clear();
            await _target.DetachAsync(ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Nothing to report to: gdb is gone.
        }
        finally
        {
            _resume = null;
            State = GdbSessionState.Disconnected;
        }
    }
}
