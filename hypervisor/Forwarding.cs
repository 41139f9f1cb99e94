namespace ActorStep.Hypervisor;

/// <summary>
/// A VM that passes every call to another, for backends and tests that change one aspect of a VM (its capabilities, how
/// it runs, a failure injected) and leave the rest as it is. Override what differs.
/// </summary>
public abstract class ForwardingVirtualMachine(IVirtualMachine inner) : IVirtualMachine
{
    protected IVirtualMachine Inner => inner;
    public virtual HypervisorCapabilities Capabilities => inner.Capabilities;
    public virtual int VcpuCount => inner.VcpuCount;
    public virtual ulong MemorySize => inner.MemorySize;
    public virtual bool ImageIsLittleEndian => inner.ImageIsLittleEndian;
    public virtual IVcpu GetVcpu(int index) => inner.GetVcpu(index);
    public virtual void ReadMemory(ulong realAddress, Span<byte> into) => inner.ReadMemory(realAddress, into);
    public virtual void WriteMemory(ulong realAddress, ReadOnlySpan<byte> data) => inner.WriteMemory(realAddress, data);
    public virtual void InsertSoftwareBreakpoint(SoftwareBreakpoint breakpoint) => inner.InsertSoftwareBreakpoint(breakpoint);
    public virtual void RemoveSoftwareBreakpoint(SoftwareBreakpoint breakpoint) => inner.RemoveSoftwareBreakpoint(breakpoint);
    public virtual void InsertWatchpoint(Watchpoint watchpoint) => inner.InsertWatchpoint(watchpoint);
    public virtual bool RemoveWatchpoint(Watchpoint watchpoint) => inner.RemoveWatchpoint(watchpoint);
    public event ConsoleOutputHandler? ConsoleOutput { add => inner.ConsoleOutput += value; remove => inner.ConsoleOutput -= value; }
    public event GuestLifecycleHandler? GuestLifecycle { add => inner.GuestLifecycle += value; remove => inner.GuestLifecycle -= value; }
    public virtual void Dispose() => inner.Dispose();
}

/// <summary>A vcpu that passes every call to another; override what differs.</summary>
public abstract class ForwardingVcpu(IVcpu inner) : IVcpu
{
    protected IVcpu Inner => inner;
    public virtual int Index => inner.Index;
    public virtual VcpuExit Run(long budget) => inner.Run(budget);
    public virtual VcpuState GetRegisters() => inner.GetRegisters();
    public virtual void GetRegisters(VcpuState into) => inner.GetRegisters(into);
    public virtual void SetRegisters(VcpuState state) => inner.SetRegisters(state);
    public virtual ulong GetOneReg(int spr) => inner.GetOneReg(spr);
    public virtual void SetOneReg(int spr, ulong value) => inner.SetOneReg(spr, value);
    public virtual bool TryTranslate(ulong effectiveAddress, ulong msr, AccessKind access, out ulong realAddress) =>
        inner.TryTranslate(effectiveAddress, msr, access, out realAddress);
    public virtual void SetGuestDebug(GuestDebug debug) => inner.SetGuestDebug(debug);
    public virtual bool HoldAsyncInterrupts { get => inner.HoldAsyncInterrupts; set => inner.HoldAsyncInterrupts = value; }
    public virtual void RetireEmulatedInstruction() => inner.RetireEmulatedInstruction();
    public virtual void RequestExit() => inner.RequestExit();
    public virtual bool IsStoppedForGood => inner.IsStoppedForGood;
    public virtual long InstructionsRetired => inner.InstructionsRetired;
}
