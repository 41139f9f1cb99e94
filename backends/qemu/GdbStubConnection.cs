using System.Net;
using System.Net.Sockets;
using System.Text;
using ActorStep.Protocol.Rsp;

namespace ActorStep.Backends.Qemu;

/// <summary>QEMU (or its gdbstub connection) is gone: the process exited or the connection closed or stopped answering.
/// The VM cannot be driven any more.</summary>
public sealed class QemuLostException(string message, Exception? inner = null) : Hypervisor.BackendLostException(message, inner);

/// <summary>The gdbstub refused a request (an <c>E</c>nn reply, or an empty one: not supported).</summary>
public sealed class GdbStubRefusedException(string request, string reply)
    : Exception($"QEMU's gdbstub refused '{(request.Length > 40 ? request[..40] + "…" : request)}': " + (reply.Length == 0 ? "not supported" : $"'{reply}'"))
{
    public string Reply { get; } = reply;
}

/// <summary>
/// One connection to QEMU's gdbstub, as its only client (qemu-gdbstub.md): requests and their replies in order, several
/// requests in one write where nothing depends on a reply (QEMU handles the packets in the order received), acks sent with
/// the next request, TCP_NODELAY. A resume (<see cref="Resume"/>) blocks until the stop reply; while it runs nothing but the
/// interrupt byte is sent (<see cref="Interrupt"/>; any other byte would pause the VM and get no reply). Requests are
/// serialised: vcpu owners on several threads may read registers while the VM is stopped.
/// </summary>
public sealed class GdbStubConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly RspClientChannel _channel = new();
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly object _requests = new();
    private readonly object _running = new();
    private bool _isRunning, _interruptSent, _disposed;
    private string? _lost;

    private GdbStubConnection(Socket socket, string endpoint)
    {
        _socket = socket;
        Endpoint = endpoint;
    }

    /// <summary>Where it is connected ("127.0.0.1:1234", "unix:/path").</summary>
    public string Endpoint { get; }

    /// <summary>How long a reply to a request (not a resume) may take before QEMU is declared lost.</summary>
    public TimeSpan ReplyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Round trips made (writes that waited for replies), for benchmarks.</summary>
    public long RoundTrips { get; private set; }

    /// <summary>Connects to <c>HOST:PORT</c> (loopback only) or <c>unix:PATH</c>, retrying until <paramref name="timeout"/> while
    /// nothing listens yet (a QEMU still starting), and checks that a gdbstub answers.</summary>
    public static GdbStubConnection Connect(string endpoint, TimeSpan timeout, Func<bool>? keepTrying = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        EndPoint target = Parse(endpoint);
        while (true)
        {
            var s = target is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (target is not UnixDomainSocketEndPoint) s.NoDelay = true; // each ack-and-request must leave at once
                s.Connect(target);
                var c = new GdbStubConnection(s, endpoint);
                c.Handshake();
                return c;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported
                                                or (SocketError)2 /* ENOENT for a unix path not yet created */ or SocketError.NotConnected or SocketError.ConnectionReset
                                            && DateTime.UtcNow < deadline && (keepTrying?.Invoke() ?? true))
            {
                s.Dispose();
                Thread.Sleep(20);
            }
            catch (SocketException e)
            {
                s.Dispose();
                throw new QemuLostException($"cannot connect to a gdbstub at {endpoint}: {e.Message}", e);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }
    }

    /// <summary>Loopback endpoints only: ActorStep never reaches out of the machine to drive a QEMU.</summary>
    public static EndPoint Parse(string endpoint, string what = "gdbstub")
    {
        if (endpoint.StartsWith("unix:", StringComparison.Ordinal)) return new UnixDomainSocketEndPoint(endpoint[5..]);
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), out int port) || port is <= 0 or > 65535)
            throw new ArgumentException($"a {what} endpoint is HOST:PORT or unix:PATH, not {Hypervisor.ClientText.Quote(endpoint)}");
        string host = endpoint[..colon].Trim('[', ']');
        if (host == "localhost") host = "127.0.0.1";
        if (!IPAddress.TryParse(host, out var ip) || !IPAddress.IsLoopback(ip))
            throw new ArgumentException($"a {what} is reached on loopback only (127.0.0.1 or ::1), not {Hypervisor.ClientText.Quote(host)}");
        return new IPEndPoint(ip, port);
    }

    /// <summary>Something that is not a gdbstub (an HTTP server, a QMP socket) must not be taken for one.</summary>
    private void Handshake()
    {
        var old = ReplyTimeout;
        ReplyTimeout = TimeSpan.FromSeconds(5);
        try
        {
            string reply = Request("qSupported:xmlRegisters=powerpc");
            if (!reply.Contains("PacketSize=", StringComparison.Ordinal))
                throw new QemuLostException($"{Endpoint} answered qSupported with '{Cut(reply)}': not QEMU's gdbstub");
        }
        catch (QemuLostException e) when (_lost is not null)
        {
            throw new QemuLostException($"{Endpoint} is not a gdbstub (no reply to qSupported: {e.Message})", e);
        }
        finally { ReplyTimeout = old; }
    }

    /// <summary>One request, its reply.</summary>
    public string Request(string payload) => RequestAll([payload])[0];

    /// <summary>Several requests in one write, their replies in order (none may be a resume). A thread selection (<c>Hg</c>) of
    /// the thread QEMU has selected already is not sent (its reply is OK).</summary>
    public string[] RequestAll(IReadOnlyList<string> payloads)
    {
        if (payloads.Count == 0) return [];
        EnterRequests();
        try
        {
            CheckUsable();
            var sent = Queue(payloads);
            Write();
            RoundTrips++;
            return ReadReplies(payloads, sent);
        }
        finally { System.Threading.Monitor.Exit(_requests); }
    }

    /// <summary>Takes the request lock. A resume holds it until its stop reply: one that runs, or starts while this waits, is
    /// stopped (all-stop, as gdb does), else a request made as the VM starts would wait for the guest to stop by itself.</summary>
    private void EnterRequests()
    {
        StopRunningVm();
        while (!System.Threading.Monitor.TryEnter(_requests, 20)) StopRunningVm();
    }

    /// <summary>
    /// The thread QEMU's <c>g</c>/<c>p</c>/<c>P</c> apply to (its <c>g_cpu</c>), as far as known (-1: not known). Decided here, at
    /// send time under the request lock, never by the caller when it builds its requests: a stop changes it (gdbstub/system.c
    /// <c>gdb_set_stop_cpu</c> selects the vcpu the stop reply names, after an interrupt QEMU 10's last resumed one), and a
    /// request built while the VM runs is sent only after that stop.
    /// </summary>
    private int _selected = -1;

    private bool[] Queue(IReadOnlyList<string> payloads)
    {
        var sent = new bool[payloads.Count];
        for (int i = 0; i < payloads.Count; i++)
        {
            string p = payloads[i];
            if (p.StartsWith("Hg", StringComparison.Ordinal)
                && int.TryParse(p.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out int thread))
            {
                if (thread == _selected) continue;
                _selected = thread; // until its reply says otherwise
            }
            _channel.Request(p);
            sent[i] = true;
        }
        return sent;
    }

    private string[] ReadReplies(IReadOnlyList<string> payloads, bool[] sent)
    {
        var replies = new string[payloads.Count];
        try
        {
            for (int i = 0; i < replies.Length; i++)
            {
                replies[i] = sent[i] ? ReadReply(ReplyTimeout) : "OK";
                if (sent[i] && replies[i] != "OK" && payloads[i].StartsWith("Hg", StringComparison.Ordinal)) _selected = -1;
            }
        }
        catch
        {
            _selected = -1;
            throw;
        }
        return replies;
    }

    /// <summary>An HMP command through <c>qRcmd</c>: its output (QEMU's <c>O</c> packets) once it answered OK.</summary>
    public string Monitor(string command)
    {
        EnterRequests();
        try
        {
            CheckUsable();
            _channel.Request("qRcmd," + RspEncoding.ToHex(command));
            Write();
            RoundTrips++;
            var output = new StringBuilder();
            while (true)
            {
                string reply = ReadReply(ReplyTimeout);
                if (reply.Length > 1 && reply[0] == 'O' && reply != "OK")
                {
                    if (RspEncoding.TryFromHex(RspEncoding.Latin1(reply.AsSpan(1).ToString()), out var text)) output.Append(Encoding.UTF8.GetString(text));
                    continue;
                }
                if (reply != "OK") throw new GdbStubRefusedException("qRcmd " + command, reply);
                return output.ToString();
            }
        }
        finally { System.Threading.Monitor.Exit(_requests); }
    }

    /// <summary>
    /// Sends <paramref name="before"/> and a resume (<c>vCont;c:…</c>) in one write and waits, with no time limit, for the stop
    /// reply (the replies to <paramref name="before"/> in <paramref name="beforeReplies"/>). Returns null without sending
    /// anything when <paramref name="proceed"/> says no (a stop was requested before the VM started).
    /// </summary>
    public string? Resume(IReadOnlyList<string> before, string payload, Func<bool> proceed, out string[] beforeReplies)
    {
        beforeReplies = [];
        lock (_requests)
        {
            CheckUsable();
            bool[] sent;
            lock (_running)
            {
                if (!proceed()) return null;
                // The requests that must precede the resume go in the same write: QEMU answers them, then runs the VM.
                sent = Queue(before);
                _channel.Request(payload);
                Write();
                _isRunning = true;
                _interruptSent = false;
            }
            try
            {
                RoundTrips++;
                beforeReplies = ReadReplies(before, sent);
                return ReadReply(Timeout.InfiniteTimeSpan);
            }
            finally
            {
                _selected = -1; // QEMU selected the vcpu it stopped on
                lock (_running) _isRunning = false;
            }
        }
    }

    /// <summary>gdb's Ctrl-C: stops a resume in progress (its stop reply says SIGINT). Any thread; nothing is sent when the VM
    /// is not running (QEMU would ignore it, but it must not arrive in the middle of a later packet's bytes).</summary>
    public bool Interrupt()
    {
        lock (_running)
        {
            if (!_isRunning || _interruptSent || _lost is not null) return false;
            _interruptSent = true;
            try { _socket.Send([0x03]); }
            catch (SocketException) { } // the reader sees the loss
            catch (ObjectDisposedException) { }
            return true;
        }
    }

    /// <summary>A request while a resume runs would wait for its stop reply forever (and the bytes would pause the VM with no
    /// reply): like gdb in all-stop, stop the VM first. The resume then returns with SIGINT.</summary>
    public void StopIfRunning() => StopRunningVm();

    private void StopRunningVm()
    {
        lock (_running)
        {
            if (!_isRunning) return;
        }
        Interrupt();
    }

    /// <summary>A resume has been sent and its stop reply not read yet: the VM runs.</summary>
    public bool IsRunning { get { lock (_running) return _isRunning; } }

    /// <summary>Whether the connection still works (QEMU answers).</summary>
    public bool IsLost => _lost is not null;

    /// <summary>Why the connection is unusable, once it is.</summary>
    public string? LostReason => _lost;

    private void CheckUsable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_lost is not null) throw new QemuLostException(_lost);
    }

    /// <summary>ACTORSTEP_RSP_TRACE=1: every write to and reply from QEMU on stderr, timestamped (diagnosing a QEMU's behaviour).</summary>
    private static readonly bool Trace = Environment.GetEnvironmentVariable("ACTORSTEP_RSP_TRACE") == "1";

    private void Write()
    {
        var bytes = _channel.TakeOutput();
        if (Trace) Console.Error.WriteLine($"[rsp {Environment.CurrentManagedThreadId} {DateTime.UtcNow:HH:mm:ss.fff}] -> {Encoding.Latin1.GetString(bytes)[..Math.Min(200, bytes.Length)]}");
        try { _socket.Send(bytes); }
        catch (SocketException e) { throw Lose($"the connection to QEMU's gdbstub at {Endpoint} failed: {e.Message}", e); }
    }

    private string ReadReply(TimeSpan timeout)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? DateTime.MaxValue : DateTime.UtcNow + timeout;
        while (true)
        {
            if (_channel.TryTakeReply(out string reply))
            {
                if (Trace) Console.Error.WriteLine($"[rsp {Environment.CurrentManagedThreadId} {DateTime.UtcNow:HH:mm:ss.fff}] <- {reply[..Math.Min(80, reply.Length)]}");
                if (_channel.HasOutput) Write(); // a NAK (or the ack of a reply read together with this one)
                return reply;
            }
            if (_channel.HasOutput) Write();
            int n;
            try
            {
                if (deadline != DateTime.MaxValue)
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || !_socket.Poll(left, SelectMode.SelectRead))
                        throw Lose($"QEMU's gdbstub at {Endpoint} did not answer within {timeout.TotalSeconds:0.#} s");
                }
                n = _socket.Receive(_buffer);
            }
            catch (SocketException e) { throw Lose($"the connection to QEMU's gdbstub at {Endpoint} failed: {e.Message}", e); }
            catch (ObjectDisposedException e) { throw Lose($"the connection to QEMU's gdbstub at {Endpoint} was closed", e); }
            if (n == 0) throw Lose($"QEMU closed its gdbstub connection ({Endpoint}): it exited or dropped the client");
            try { _channel.Receive(_buffer.AsSpan(0, n)); }
            catch (RspFormatException e) { throw Lose($"QEMU's gdbstub at {Endpoint} sent something unreadable: {e.Message}", e); }
        }
    }

    private QemuLostException Lose(string why, Exception? inner = null)
    {
        _lost ??= why;
        return new QemuLostException(_lost, inner);
    }

    /// <summary>Sends the ack still owed and a last packet that needs no reply (<c>D</c> detaches; a killed QEMU needs nothing).</summary>
    public void Close(string? lastPacket = null)
    {
        lock (_requests)
        {
            if (_disposed) return;
            if (_lost is null)
            {
                try
                {
                    if (lastPacket is not null)
                    {
                        _channel.Request(lastPacket);
                        Write();
                        ReadReply(TimeSpan.FromSeconds(5)); // D answers OK; the VM then runs
                    }
                    _channel.FlushAck();
                    if (_channel.HasOutput) Write();
                }
                catch (QemuLostException) { }
            }
            Dispose();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _lost ??= "the connection to QEMU's gdbstub was closed by ActorStep";
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
    }

    private static string Cut(string s) => s.Length > 60 ? s[..60] + "…" : s;
}
