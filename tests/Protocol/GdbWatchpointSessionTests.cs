using ActorStep.Protocol.Gdb;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Tests.Protocol;

/// <summary>The session's watchpoint packets (gdb manual, "Packets": <c>Z2</c>/<c>Z3</c>/<c>Z4</c>, kind = length) and stop
/// replies (<c>watch:</c>, <c>rwatch:</c>, <c>awatch:</c> with the data address), against an in-memory target.</summary>
public class GdbWatchpointSessionTests
{
    private readonly FakeGdbTarget _target = new(vcpus: 2);
    private readonly RecordingWatchpoints _watchpoints = new();
    private readonly GdbSession _session;

    public GdbWatchpointSessionTests()
    {
        _target.WatchpointsCapability = _watchpoints;
        _session = new GdbSession(_target, littleEndianTarget: false);
    }

    private async Task<string?> Ask(string packet) => (await _session.HandlePacketAsync(RspEncoding.Latin1(packet))).Text;

    [Fact]
    public async Task Z2_Z3_Z4_set_and_remove_watchpoints_of_each_kind_with_their_length()
    {
        await Ask(GdbSessionTests.Gdb13Supported);
        Assert.Equal("OK", await Ask("Z2,2000,4"));
        Assert.Equal("OK", await Ask("Z3,2008,8"));
        Assert.Equal("OK", await Ask("Z4,3000,1"));
        Assert.Equal("OK", await Ask("z3,2008,8"));
        Assert.Equal(["+Write 0x2000 4", "+Read 0x2008 8", "+Access 0x3000 1", "-Read 0x2008 8"], _watchpoints.Calls);
    }

    [Fact]
    public async Task A_watchpoint_of_no_bytes_is_an_error()
    {
        Assert.StartsWith("E", await Ask("Z2,2000,0"));
        Assert.Empty(_watchpoints.Calls);
    }

    [Fact]
    public async Task Without_the_capability_gdb_is_told_watchpoints_are_unsupported()
    {
        var plain = new GdbSession(new FakeGdbTarget(vcpus: 1), littleEndianTarget: false);
        Assert.Equal("", (await plain.HandlePacketAsync(RspEncoding.Latin1("Z2,2000,4"))).Text);
    }

    [Theory]
    [InlineData(GdbWatchKind.Write, "watch")]
    [InlineData(GdbWatchKind.Read, "rwatch")]
    [InlineData(GdbWatchKind.Access, "awatch")]
    public async Task A_hit_is_reported_with_its_kind_and_data_address_on_the_vcpu_that_made_the_access(GdbWatchKind kind, string name)
    {
        await Ask(GdbSessionTests.Gdb13Supported);
        _target.Stops.Enqueue(new GdbStopEvent(1, GdbStopReason.Watchpoint, Watch: new GdbWatchHit(kind, 0x2004)));
        Assert.Null(await Ask("vCont;c:p1.-1"));
        string reply = (await _session.WaitForStopAsync()).Text!;
        Assert.StartsWith($"T05thread:p1.2;{name}:2004;40:", reply);
    }

    private sealed class RecordingWatchpoints : IGdbWatchpoints
    {
        public List<string> Calls { get; } = [];

        public Task InsertWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct)
        {
            Calls.Add($"+{kind} 0x{address:x} {length}");
            return Task.CompletedTask;
        }

        public Task RemoveWatchpointAsync(GdbWatchKind kind, ulong address, ulong length, CancellationToken ct)
        {
            Calls.Add($"-{kind} 0x{address:x} {length}");
            return Task.CompletedTask;
        }
    }
}
