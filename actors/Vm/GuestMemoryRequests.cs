using ActorStep.Actors.Engine;
using ActorStep.Hypervisor;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Actors.Vm;

/// <summary>
/// A debugger's memory, breakpoint and code requests, served against the VM-wide breakpoint table, with the replies and
/// error texts of the protocol. The coordinator serves requests by real address; a request by effective address is
/// served by the named vcpu's actor, which alone translates, with the vcpu's current state (a real backend's MMU walks
/// the guest's page tables: only the vcpu's owner may ask it).
/// </summary>
internal static class GuestMemoryRequests
{
    public const int MaxLength = 1 << 20;

    /// <summary>What the coordinator checks before it forwards a request to vcpu <paramref name="vcpu"/>'s actor: the length,
    /// then the vcpu. Null when the request may go on.</summary>
    public static Failed? CheckForVcpu(int length, int vcpu, int vcpuCount)
    {
        var code = vcpu >= vcpuCount ? FailureCode.NotFound : FailureCode.InvalidArgument;
        if (length < 0 || length > MaxLength) return new Failed(code, LengthError(length));
        if ((uint)vcpu >= (uint)vcpuCount) return new Failed(code, $"no vcpu {vcpu}");
        return null;
    }

    /// <summary>Reads guest memory, breakpoints hidden: by EA with <paramref name="vcpu"/>'s translation, or by RA when it is null.
    /// Reply: <see cref="MemoryRead"/> or <see cref="Failed"/>.</summary>
    public static object Read(ReadMemory m, BreakpointTable table, ulong memorySize, VcpuEngine? vcpu)
    {
        if (!TryReal(m.Address, m.Length, vcpu, memorySize, out ulong ra, out string error)) return new Failed(FailureCode.InvalidArgument, error);
        var data = new byte[m.Length];
        table.Read(ra, data);
        return new MemoryRead(m.Address, data);
    }

    /// <summary>Writes guest memory (a word under a breakpoint updates its saved original). Reply: <see cref="MemoryWritten"/> or <see cref="Failed"/>.</summary>
    public static object Write(WriteMemory m, BreakpointTable table, ulong memorySize, VcpuEngine? vcpu)
    {
        if (!TryReal(m.Address, m.Data.Length, vcpu, memorySize, out ulong ra, out string error)) return new Failed(FailureCode.InvalidArgument, error);
        table.Write(ra, m.Data);
        return new MemoryWritten(m.Address, m.Data.Length);
    }

    /// <summary>Inserts or removes the user's breakpoint at an EA, translated for a fetch by <paramref name="vcpu"/>.
    /// Reply: <see cref="BreakpointChanged"/> or <see cref="Failed"/>.</summary>
    public static object Breakpoint(ulong address, bool insert, BreakpointTable table, ulong memorySize, VcpuEngine vcpu)
    {
        if ((address & 3) != 0) return new Failed(FailureCode.InvalidArgument, $"breakpoint address 0x{address:x} is not word-aligned");
        if (!vcpu.TryTranslate(address, AccessKind.Fetch, out ulong ra) || memorySize - ra < 4)
            return new Failed(FailureCode.InvalidArgument,
                $"breakpoint address 0x{address:x} has no translation into guest memory for vcpu {vcpu.Index} (MSR 0x{vcpu.Registers.Msr:x})");
        bool changed = insert ? table.Insert(ra, BreakpointOwner.User.Instance, address) : table.Remove(ra, BreakpointOwner.User.Instance);
        return new BreakpointChanged(address, ra, changed);
    }

    /// <summary>The aligned block of <paramref name="size"/> bytes holding <paramref name="vcpu"/>'s NIP and the one before it (just
    /// NIP's when that one has no translation), breakpoints hidden; or null.</summary>
    public static CodeBlock? Code(int size, BreakpointTable table, ulong memorySize, VcpuEngine vcpu)
    {
        ulong block = vcpu.Registers.Nip & ~((ulong)size - 1);
        foreach (ulong start in block >= (ulong)size ? new[] { block - (ulong)size, block } : [block])
        {
            int length = (int)(block + (ulong)size - start);
            if (!TryReal(start, length, vcpu, memorySize, out ulong ra, out _)) continue;
            var data = new byte[length];
            table.Read(ra, data);
            return new CodeBlock(start, data);
        }
        return null;
    }

    private static string LengthError(int length) => $"length {length} is not in 0..{MaxLength}";

    /// <summary>EA → RA for a debugger access, every byte contiguously, with the vcpu's current translation; or the address
    /// itself when it is real (no vcpu). Then: inside guest memory.</summary>
    private static bool TryReal(ulong address, int length, VcpuEngine? vcpu, ulong memorySize, out ulong ra, out string error)
    {
        ra = address;
        error = "";
        if (length < 0 || length > MaxLength) { error = LengthError(length); return false; }
        if (vcpu is not null)
        {
            if (!vcpu.TryTranslate(address, AccessKind.Load, out ra)
                || (length > 0 && (!vcpu.TryTranslate(address + (ulong)length - 1, AccessKind.Load, out ulong last) || last - ra != (ulong)length - 1)))
            {
                error = $"effective address 0x{address:x} (+{length}) has no translation for vcpu {vcpu.Index} (MSR 0x{vcpu.Registers.Msr:x})";
                return false;
            }
        }
        if (ra >= memorySize || (ulong)length > memorySize - ra)
        {
            error = $"address 0x{address:x} (+{length}) is outside guest memory (0x{memorySize:x} bytes)";
            return false;
        }
        return true;
    }
}
