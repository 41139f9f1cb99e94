using ActorStep.Protocol.Rsp;

namespace ActorStep.Protocol.Gdb;

// gdb manual, "Packets": g, G, p, P. Registers are in the image's byte order (see the class comment).
public sealed partial class GdbSession
{
    private async Task<GdbWireRegisters> RegistersAsync(int vcpu, CancellationToken ct)
    {
        // Cached until the next resume or register write: a stop reply, g and p after a stop cost one target call (none when
        // the stop brought the registers), and the hex is encoded once.
        if (!_registers.TryGetValue(vcpu, out var regs)) _registers[vcpu] = regs = Wire(await _target.ReadRegistersAsync(vcpu, ct));
        return regs;
    }

    private GdbWireRegisters Wire(IReadOnlyDictionary<int, byte[]> values) => new(values, LittleEndianTarget);

    /// <summary>A value gdb sent (the image's byte order) as the target takes it, MSB first.</summary>
    private byte[] FromWire(byte[] wire)
    {
        var bytes = (byte[])wire.Clone();
        if (LittleEndianTarget) Array.Reverse(bytes);
        return bytes;
    }

    private async Task<GdbReply> ReadAllRegistersAsync(RspReader r, CancellationToken ct)
    {
        r.ExpectEnd();
        return new GdbReply((await RegistersAsync(_generalVcpu, ct)).G);
    }

    /// <summary>G: registers in regnum order, possibly fewer than <c>g</c> has; only those that change are written
    /// (so read-only ones such as PVR and PIR that gdb sends back unchanged are not refused).</summary>
    private async Task<GdbReply> WriteAllRegistersAsync(RspReader r, CancellationToken ct)
    {
        var data = r.HexBytes();
        var current = (await RegistersAsync(_generalVcpu, ct)).Values;
        int offset = 0;
        var writes = new List<(int Regnum, byte[] Value)>();
        foreach (var reg in TargetDescription.Registers)
        {
            if (offset == data.Length) break;
            if (offset + reg.Size > data.Length) throw new RspFormatException("G ends inside a register");
            var value = FromWire(data.AsSpan(offset, reg.Size).ToArray());
            offset += reg.Size;
            if (!current.TryGetValue(reg.Regnum, out var old) || !old.AsSpan().SequenceEqual(value)) writes.Add((reg.Regnum, value));
        }
        if (offset != data.Length) throw new RspFormatException("G longer than the register set");
        _registers.Remove(_generalVcpu);
        foreach (var (regnum, value) in writes) await _target.WriteRegisterAsync(_generalVcpu, regnum, value, ct);
        return GdbReply.Ok;
    }

    private async Task<GdbReply> ReadRegisterAsync(RspReader r, CancellationToken ct)
    {
        int regnum = r.HexInt();
        r.ExpectEnd();
        if (TargetDescription.Find(regnum) is not { } reg) return new GdbReply(RspErrors.Invalid);
        return new GdbReply((await RegistersAsync(_generalVcpu, ct)).Wire(reg.Regnum).ToArray());
    }

    private async Task<GdbReply> WriteRegisterAsync(RspReader r, CancellationToken ct)
    {
        int regnum = r.HexInt();
        r.Expect('=');
        var wire = r.HexBytes();
        if (TargetDescription.Find(regnum) is not { } reg) return new GdbReply(RspErrors.Invalid);
        if (wire.Length != reg.Size) throw new RspFormatException($"{reg.Name} is {reg.Size} bytes");
        _registers.Remove(_generalVcpu);
        await _target.WriteRegisterAsync(_generalVcpu, regnum, FromWire(wire), ct);
        return GdbReply.Ok;
    }
}
