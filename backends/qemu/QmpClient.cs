using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ActorStep.Backends.Qemu;

/// <summary>QEMU's QMP answered a command with an error (<c>{"error": {"class", "desc"}}</c>).</summary>
public sealed class QmpErrorException(string command, string errorClass, string description)
    : Exception($"QEMU's QMP refused '{command}': {description} ({errorClass})")
{
    public string ErrorClass { get; } = errorClass;
}

/// <summary>An asynchronous QMP event (<c>{"event": NAME, "data": {…}}</c>), e.g. SHUTDOWN, RESET, GUEST_PANICKED, STOP.</summary>
public sealed record QmpEvent(string Name, JsonElement Data)
{
    /// <summary>A string member of the event's data, or null.</summary>
    public string? Text(string member) => Data.ValueKind == JsonValueKind.Object && Data.TryGetProperty(member, out var v) ? v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Object when v.TryGetProperty("type", out var t) => t.GetString(), // GUEST_PANICKED's info
        _ => v.ToString(),
    } : null;
}

/// <summary>
/// A client of QEMU's QMP (the JSON machine protocol, docs/interop/qmp-spec): on a loopback TCP port or a Unix socket, the
/// greeting read and capabilities negotiated (<c>qmp_capabilities</c>), commands sent with ids and their replies matched by
/// id, asynchronous events handed to <see cref="EventReceived"/> on the reader thread as they come.
/// </summary>
public sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly object _write = new();
    private readonly Dictionary<long, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly Thread _reader;
    private long _nextId;
    private volatile string? _lost;
    private readonly List<QmpEvent> _early = new();
    private Action<QmpEvent>? _eventReceived;

    private QmpClient(Socket socket, string endpoint)
    {
        _socket = socket;
        Endpoint = endpoint;
        _reader = new Thread(Read) { IsBackground = true, Name = "qmp-reader" };
    }

    /// <summary>Where it is connected ("127.0.0.1:4444", "unix:/path").</summary>
    public string Endpoint { get; }

    /// <summary>QEMU's version as its greeting says it ("10.0.2").</summary>
    public string Version { get; private set; } = "";

    /// <summary>How long a command's reply may take.</summary>
    public TimeSpan ReplyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The connection ended (QEMU exited or closed it), and why; null while it works.</summary>
    public string? LostReason => _lost;

    /// <summary>Each event, on the reader thread. Events that came before the first handler was added are handed to it then.</summary>
    public event Action<QmpEvent> EventReceived
    {
        add
        {
            QmpEvent[] early;
            lock (_early)
            {
                _eventReceived += value;
                early = _early.ToArray();
                _early.Clear();
            }
            foreach (var e in early) value(e);
        }
        remove { lock (_early) _eventReceived -= value; }
    }

    /// <summary>Connects to <c>HOST:PORT</c> (loopback only) or <c>unix:PATH</c>, reads the greeting and negotiates capabilities.
    /// Something that is not QMP (no greeting within <paramref name="greetingTimeout"/>, or another one) is refused, saying so.</summary>
    public static QmpClient Connect(string endpoint, TimeSpan? greetingTimeout = null)
    {
        var target = GdbStubConnection.Parse(endpoint, "QMP");
        var s = target is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try { s.Connect(target); }
        catch (SocketException e)
        {
            s.Dispose();
            throw new QemuLostException($"cannot connect to QMP at {endpoint}: {e.Message}", e);
        }
        var c = new QmpClient(s, endpoint);
        try
        {
            c.Greet(greetingTimeout ?? TimeSpan.FromSeconds(5));
            c._reader.Start();
            c.Execute("qmp_capabilities");
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    // ---- reading: one JSON object per line (QEMU ends each with CRLF) ----

    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly MemoryStream _line = new();
    private readonly Queue<string> _lines = new();

    /// <summary>The next line, or null when the connection ended; <paramref name="timeout"/> bounds the wait (infinite: none).</summary>
    private string? NextLine(TimeSpan timeout)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? DateTime.MaxValue : DateTime.UtcNow + timeout;
        while (_lines.Count == 0)
        {
            if (deadline != DateTime.MaxValue)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !_socket.Poll(left, SelectMode.SelectRead)) throw new TimeoutException();
            }
            int n;
            try { n = _socket.Receive(_buffer); }
            catch (SocketException) { return null; }
            catch (ObjectDisposedException) { return null; }
            if (n == 0) return null;
            for (int i = 0; i < n; i++)
            {
                if (_buffer[i] == (byte)'\n')
                {
                    string line = Encoding.UTF8.GetString(_line.GetBuffer(), 0, (int)_line.Length).TrimEnd('\r');
                    _line.SetLength(0);
                    if (line.Length > 0) _lines.Enqueue(line);
                }
                else _line.WriteByte(_buffer[i]);
            }
            if (_line.Length > 1 << 20) throw new InvalidDataException("a line of more than 1 MiB");
        }
        return _lines.Dequeue();
    }

    private void Greet(TimeSpan timeout)
    {
        string? line;
        try { line = NextLine(timeout); }
        catch (Exception e) when (e is TimeoutException or InvalidDataException)
        {
            throw new QemuLostException($"{Endpoint} sent no QMP greeting within {timeout.TotalSeconds:0.#} s: not QEMU's QMP");
        }
        if (line is null) throw new QemuLostException($"{Endpoint} closed the connection without a QMP greeting: not QEMU's QMP (or its one client is connected already)");
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("QMP", out var qmp))
                throw new JsonException();
            if (qmp.TryGetProperty("version", out var v) && v.TryGetProperty("qemu", out var q))
                Version = $"{q.GetProperty("major").GetInt32()}.{q.GetProperty("minor").GetInt32()}.{q.GetProperty("micro").GetInt32()}";
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new QemuLostException($"{Endpoint} greeted with '{(line.Length > 60 ? line[..60] + "…" : line)}': not QEMU's QMP");
        }
    }

    private void Read()
    {
        string why = $"QEMU closed its QMP connection ({Endpoint})";
        try
        {
            while (NextLine(Timeout.InfiniteTimeSpan) is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.TryGetProperty("event", out var name))
                {
                    var e = new QmpEvent(name.GetString() ?? "", root.TryGetProperty("data", out var data) ? data.Clone() : default);
                    Action<QmpEvent>? handler;
                    lock (_early)
                    {
                        handler = _eventReceived;
                        if (handler is null) _early.Add(e);
                    }
                    handler?.Invoke(e);
                    continue;
                }
                if (!root.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.Number) continue;
                TaskCompletionSource<JsonElement>? waiter;
                lock (_pending) _pending.Remove(id.GetInt64(), out waiter);
                waiter?.TrySetResult(root.Clone());
            }
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            why = $"QEMU's QMP at {Endpoint} sent something unreadable: {e.Message}";
        }
        _lost ??= why;
        lock (_pending)
        {
            foreach (var w in _pending.Values) w.TrySetException(new QemuLostException(_lost));
            _pending.Clear();
        }
    }

    // ---- commands ----

    /// <summary>Runs a command and returns its <c>return</c> value; a QMP error is a <see cref="QmpErrorException"/>.</summary>
    public JsonElement Execute(string command, IReadOnlyDictionary<string, object?>? arguments = null)
    {
        if (_lost is { } lost) throw new QemuLostException(lost);
        long id = Interlocked.Increment(ref _nextId);
        var waiter = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending) _pending[id] = waiter;
        var request = new Dictionary<string, object?> { ["execute"] = command, ["id"] = id };
        if (arguments is not null) request["arguments"] = arguments;
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(request);
        try
        {
            lock (_write)
            {
                _socket.Send(bytes);
                _socket.Send("\r\n"u8);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            lock (_pending) _pending.Remove(id);
            throw new QemuLostException($"the connection to QMP at {Endpoint} failed: {e.Message}", e);
        }
        bool answered;
        try { answered = waiter.Task.Wait(ReplyTimeout); }
        catch (AggregateException e) when (e.InnerException is QemuLostException gone) { throw new QemuLostException(gone.Message, gone); }
        if (!answered)
        {
            lock (_pending) _pending.Remove(id);
            throw new QemuLostException($"QEMU's QMP at {Endpoint} did not answer '{command}' within {ReplyTimeout.TotalSeconds:0.#} s");
        }
        var reply = waiter.Task.GetAwaiter().GetResult();
        if (reply.TryGetProperty("error", out var error))
            throw new QmpErrorException(command, error.TryGetProperty("class", out var c) ? c.GetString() ?? "" : "",
                error.TryGetProperty("desc", out var d) ? d.GetString() ?? "" : error.ToString());
        return reply.TryGetProperty("return", out var r) ? r : default;
    }

    /// <summary>An HMP command through <c>human-monitor-command</c>: its output.</summary>
    public string HumanMonitor(string commandLine) =>
        Execute("human-monitor-command", new Dictionary<string, object?> { ["command-line"] = commandLine }).GetString() ?? "";

    /// <summary>The VM's run state (<c>query-status</c>): "running", "paused", "shutdown", "guest-panicked", "debug", …</summary>
    public string RunState() => Execute("query-status").GetProperty("status").GetString() ?? "";

    /// <summary>Waits up to <paramref name="timeout"/> for the connection to end (every event QEMU sent before closing handed on).</summary>
    public bool WaitUntilClosed(TimeSpan timeout) => !_reader.IsAlive || _reader.Join(timeout);

    public void Dispose()
    {
        _lost ??= "the QMP connection was closed by ActorStep";
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
        if (_reader.IsAlive && _reader != Thread.CurrentThread) _reader.Join(TimeSpan.FromSeconds(5));
    }
}
