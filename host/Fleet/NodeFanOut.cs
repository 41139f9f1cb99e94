using ActorStep.Actors.Fleet.Wire;
using ActorStep.Host.Services;
using Google.Protobuf;
using Grpc.Core;
using ActorStep.Actors.Node;
using static ActorStep.Actors.Node.VmManagerProtocol;

namespace ActorStep.Host.Fleet;

/// <summary>
/// This node's share of a fleet-wide call (<see cref="FleetFanOut"/>): selects its own VMs, runs the method on each of them at
/// once, and hands the replies on in <see cref="FleetBatch"/>es as they come — one every <see cref="BatchInterval"/> or when
/// <see cref="MaxBatchBytes"/> are waiting — the last marked done. A VM that has not answered shortly before the deadline gets a
/// DEADLINE_EXCEEDED reply here, so that the calling node receives every VM's entry by its deadline.
/// </summary>
public static class NodeFanOut
{
    public static readonly TimeSpan BatchInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Far under Akka.Remote's 128,000-byte frame (a 4-vcpu register snapshot is ~6 KB).</summary>
    public const int MaxBatchBytes = 48 * 1024;

    /// <summary>How long before the caller's deadline this node gives up on its VMs and reports them late.</summary>
    public static TimeSpan Margin(TimeSpan left) => TimeSpan.FromTicks(Math.Min(TimeSpan.FromMilliseconds(250).Ticks, left.Ticks / 10));

    public static async Task RunAsync(VmApi api, string nodeName, FleetFanOut m, Action<FleetBatch> send, CancellationToken cancellation)
    {
        var method = api.Find(m.Method);
        var deadline = m.DeadlineUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(m.DeadlineUnixMs).UtcDateTime : DateTime.MaxValue;
        if (deadline < DateTime.MaxValue) deadline -= Margin(deadline - DateTime.UtcNow);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation, api.Backend.Stopping);
        if (deadline < DateTime.MaxValue) cts.CancelAfter(TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)));
        var scope = new CallScope(deadline, cts.Token);
        if (method is null)
        {
            send(new FleetBatch { NodeName = nodeName, Done = true });
            return;
        }

        IReadOnlyList<VmInfo> vms;
        try { vms = (await api.Backend.AskAsync<VmList>(new ListVms(new Dictionary<string, string>(m.LabelSelector)), scope)).Vms; }
        catch (Exception) { vms = []; } // the caller's deadline entries say what this node did not answer for

        var batch = new FleetBatch { NodeName = nodeName };
        int bytes = 0;
        var gate = new object();
        int left = vms.Count;
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (left == 0) finished.TrySetResult();
        var answered = new HashSet<string>();

        void Add(FleetReply reply)
        {
            lock (gate)
            {
                if (left < 0 || !answered.Add(reply.VmId)) return; // after the deadline: its entry has gone
                batch.Replies.Add(reply);
                bytes += reply.CalculateSize();
                if (bytes >= MaxBatchBytes) FlushLocked(done: false);
                if (--left == 0) finished.TrySetResult();
            }
        }

        void FlushLocked(bool done)
        {
            if (batch.Replies.Count == 0 && !done) return;
            batch.Done = done;
            send(batch);
            batch = new FleetBatch { NodeName = nodeName };
            bytes = 0;
        }

        async Task RunOne(VmInfo vm)
        {
            try
            {
                var request = method.RequestParser.ParseFrom(m.Request);
                request.Descriptor.FindFieldByName("vm_id").Accessor.SetValue(request, vm.VmId);
                var response = await method.InvokeLocal(request, scope);
                Add(new FleetReply { VmId = vm.VmId, Response = response.ToByteString() });
            }
            catch (RpcException e)
            {
                var code = e.StatusCode == StatusCode.Cancelled && !cancellation.IsCancellationRequested ? StatusCode.DeadlineExceeded : e.StatusCode;
                Add(new FleetReply { VmId = vm.VmId, StatusCode = (int)code, StatusMessage = e.Status.Detail });
            }
            catch (OperationCanceledException)
            {
                Add(new FleetReply { VmId = vm.VmId, StatusCode = (int)StatusCode.DeadlineExceeded, StatusMessage = $"VM {vm.VmId} did not answer by the deadline" });
            }
            catch (Exception e)
            {
                Add(new FleetReply { VmId = vm.VmId, StatusCode = (int)StatusCode.Internal, StatusMessage = e.Message });
            }
        }

        foreach (var vm in vms) _ = RunOne(vm);
        using (var timer = new PeriodicTimer(BatchInterval))
        {
            var tick = timer.WaitForNextTickAsync().AsTask();
            var ended = Task.Delay(Timeout.Infinite, cts.Token);
            while (!finished.Task.IsCompleted && !cts.IsCancellationRequested)
            {
                await Task.WhenAny(finished.Task, tick, ended);
                if (tick.IsCompleted) { lock (gate) FlushLocked(done: false); tick = timer.WaitForNextTickAsync().AsTask(); }
            }
        }
        lock (gate)
        {
            foreach (var vm in vms)
                if (!answered.Contains(vm.VmId))
                {
                    answered.Add(vm.VmId);
                    batch.Replies.Add(new FleetReply { VmId = vm.VmId, StatusCode = (int)StatusCode.DeadlineExceeded, StatusMessage = $"VM {vm.VmId} did not answer by the deadline" });
                    if (batch.CalculateSize() >= MaxBatchBytes) FlushLocked(done: false);
                }
            left = -1; // late answers are dropped: their VMs have their entries
            FlushLocked(done: true);
        }
    }
}
