using ActorStep.Actors.Engine;
using ActorStep.Actors.Vm;
using ActorStep.Hypervisor;
using Akka.Actor;
using Akka.Event;
using static ActorStep.Actors.Vcpu.VcpuProtocol;
using static ActorStep.Actors.Vm.VmProtocol;

namespace ActorStep.Actors.Vcpu;

/// <summary>
/// Owns one backend vcpu through its <see cref="VcpuEngine"/> (the run loop and the host-step state machine of
/// step-engine.md §3): hands it the slices the coordinator sends, one at a time, and serves the requests that need the
/// vcpu's own translation. Survives a restart by re-reading the backend; never leaves a step breakpoint or the host's SE
/// behind (the engine of a restarted actor drops its predecessor's).
/// </summary>
public sealed class VcpuActor : ReceiveActor
{
    private readonly VcpuEngine _engine;
    private readonly BreakpointTable _table;
    private readonly ulong _memorySize;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    private readonly IAllStopVm? _allStop;

    public VcpuActor(IVirtualMachine vm, int index, BreakpointTable table)
    {
        _engine = new VcpuEngine(vm, index, table);
        _allStop = vm as IAllStopVm;
        _table = table;
        _memorySize = vm.MemorySize;

        if (vm.Capabilities.RunModel == VcpuRunModel.AllStop)
        {
            // The VM runs only as a whole: the engine begins the slice here, the coordinator runs the VM, the exits come back.
            Receive<RunSlice>(m => Slice(() => Reply(_engine.Begin(m.Request))));
            Receive<VcpuExited>(m => Slice(() => Reply(_engine.OnExit(m.Exit))));
            Receive<EndSlice>(_ => Slice(() => SliceEnded.From(_engine.Index, _engine.EndSlice())));
        }
        else Receive<RunSlice>(m =>
        {
            if (m.Ticket is { } ticket && !ticket.TryStart()) return; // taken back by the coordinator, which has ended it
            Slice(() =>
            {
                var ended = SliceEnded.From(_engine.Index, _engine.RunSlice(m.Request));
                // The vcpu is stopped now and nothing else runs: the block reads as a ReadCode after the stop would.
                return m.CodeBytes == 0 ? ended
                    : ended with { Code = new CodeRead(_engine.Index, GuestMemoryRequests.Code(m.CodeBytes, _table, _memorySize, _engine)) };
            });
        });
        Receive<CancelStep>(_ => { _engine.Abandon(); Sender.Tell(new StepCancelled(_engine.Index, _engine.RegistersOrLastKnown)); });
        Receive<GetRegisters>(_ => Answer(() => new Registers(_engine.Index, _engine.Registers)));
        Receive<SetRegisters>(m => Answer(() => new Registers(_engine.Index, _engine.SetRegisters(m.State))));
        Receive<ReadMemory>(m => Answer(() => GuestMemoryRequests.Read(m, _table, _memorySize, _engine)));
        Receive<WriteMemory>(m => Answer(() => GuestMemoryRequests.Write(m, _table, _memorySize, _engine)));
        Receive<InsertBreakpoint>(m => Answer(() => GuestMemoryRequests.Breakpoint(m.Address, insert: true, _table, _memorySize, _engine)));
        Receive<RemoveBreakpoint>(m => Answer(() => GuestMemoryRequests.Breakpoint(m.Address, insert: false, _table, _memorySize, _engine)));
        Receive<ReadCode>(m => Sender.Tell(new CodeRead(_engine.Index, GuestMemoryRequests.Code(m.Bytes, _table, _memorySize, _engine))));
        Receive<CheckKeptBreakpoint>(m => Sender.Tell(new KeptBreakpointChecked(_engine.Index, m.Nip, _engine.AtUserBreakpoint(m.Nip))));
    }

    /// <summary>A request's answer; a backend that is gone (a QEMU that died) makes it a clear failure instead of a restart
    /// and a caller left waiting.</summary>
    private void Answer(Func<object> serve)
    {
        object reply;
        try { reply = serve(); }
        catch (BackendLostException e) { reply = new Failed(FailureCode.FailedPrecondition, $"the VM is lost: {e.Message}"); }
        Sender.Tell(reply);
    }

    /// <summary>A slice's answer; a backend that is gone ends the slice as Faulted, saying so (the step is dropped: a backend that
    /// is gone holds nothing of it).</summary>
    private void Slice(Func<object> run)
    {
        object reply;
        try { reply = run(); }
        catch (BackendLostException e)
        {
            _engine.Abandon();
            reply = new SliceEnded(_engine.Index, SliceOutcome.Faulted, _engine.RegistersOrLastKnown, Detail: $"the VM is lost: {e.Message}");
        }
        Sender.Tell(reply);
    }

    private object Reply(SliceResult? result) =>
        result is { } r ? SliceEnded.From(_engine.Index, r) : new SliceReady(_engine.Index);

    public static Props Props(IVirtualMachine vm, int index, BreakpointTable table) =>
        Akka.Actor.Props.Create(() => new VcpuActor(vm, index, table));

    protected override void PreRestart(Exception reason, object message)
    {
        _log.Warning(reason, "vcpu {Vcpu} restarting; abandoning any step in progress", _engine.Index);
        bool stepping = _engine.Stepping;
        _engine.Abandon();
        // The message in flight gets an answer, so the coordinator never waits for a reply that cannot come.
        if (message is RunSlice or VcpuExited or EndSlice)
            Sender.Tell(new SliceEnded(_engine.Index, SliceOutcome.Faulted, _engine.RegistersOrLastKnown,
                Detail: $"vcpu {_engine.Index} failed{(stepping ? " during a step (abandoned: nothing left in the guest)" : "")}: {reason.Message}"));
        if (message is ReadCode)
            Sender.Tell(new CodeRead(_engine.Index, null));
        if (message is CheckKeptBreakpoint check) // could not tell: the event is reported, as it was met
            Sender.Tell(new KeptBreakpointChecked(_engine.Index, check.Nip, Stands: true));
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        // The VM is going (or this vcpu's actor): a resume in progress on the VM's runner would hold the VM's stop — and with
        // it this VM's shutdown — until the guest happens to stop; it is stopped now, so that the step can be abandoned.
        _allStop?.RequestStop();
        _engine.Abandon();
        base.PostStop();
    }
}
