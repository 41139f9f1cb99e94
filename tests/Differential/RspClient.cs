using System.Net.Sockets;
using System.Text;

namespace ActorStep.Tests.Differential;

/// <summary>
/// A minimal GDB remote serial protocol client for talking to QEMU's gdbstub in the differential tests:
/// framing ($…#cs, acks, run-length decoding) and request/reply, nothing else. Deliberately independent
/// of the product's codec in <c>protocol/</c>, so a bug there cannot hide a disagreement here.
/// </summary>
internal sealed class RspClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[65536];
    private int _start, _end;

    private RspClient(Socket socket) => _socket = socket;

    /// <summary>Connects to a Unix-domain socket, retrying while QEMU has not created it yet.</summary>
    public static RspClient ConnectUnix(string path, TimeSpan timeout, Func<bool> stillRunning)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                s.Connect(new UnixDomainSocketEndPoint(path));
                s.ReceiveTimeout = (int)TimeSpan.FromSeconds(30).TotalMilliseconds;
                return new RspClient(s);
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && stillRunning())
            {
                s.Dispose();
                Thread.Sleep(10);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }
    }

    /// <summary>How long a reply may take (a continue waits for the target to stop).</summary>
    public TimeSpan ReplyTimeout
    {
        get => TimeSpan.FromMilliseconds(_socket.ReceiveTimeout);
        set => _socket.ReceiveTimeout = (int)value.TotalMilliseconds;
    }

    /// <summary>Sends one packet and returns the payload of the reply packet.</summary>
    public string Request(string payload)
    {
        Send(payload);
        return ReceivePacket();
    }

    /// <summary>Sends one packet without waiting for a reply packet (only for its ack).</summary>
    public void Send(string payload)
    {
        byte sum = 0;
        foreach (char c in payload) sum += (byte)c;
        _socket.Send(Encoding.ASCII.GetBytes($"${payload}#{sum:x2}"));
    }

    /// <summary>Sends the out-of-band interrupt byte (Ctrl-C).</summary>
    public void Interrupt() => _socket.Send([0x03]);

    /// <summary>Reads the next packet (skipping acks), checks its checksum, acks it, and expands run-length encoding.</summary>
    public string ReceivePacket()
    {
        while (true)
        {
            int b = ReadByte();
            if (b == '+' || b == '-') continue;
            if (b != '$') continue;
            var raw = new List<byte>();
            byte sum = 0;
            while ((b = ReadByte()) != '#')
            {
                raw.Add((byte)b);
                sum += (byte)b;
            }
            string cs = $"{(char)ReadByte()}{(char)ReadByte()}";
            if (Convert.ToByte(cs, 16) != sum)
            {
                _socket.Send("-"u8.ToArray());
                continue;
            }
            _socket.Send("+"u8.ToArray());
            return Decode(raw);
        }
    }

    private static string Decode(List<byte> raw)
    {
        var sb = new StringBuilder(raw.Count);
        for (int i = 0; i < raw.Count; i++)
        {
            byte c = raw[i];
            if (c == '}' && i + 1 < raw.Count) sb.Append((char)(raw[++i] ^ 0x20));
            else if (c == '*' && sb.Length > 0 && i + 1 < raw.Count) sb.Append(sb[^1], raw[++i] - 29);
            else sb.Append((char)c);
        }
        return sb.ToString();
    }

    private int ReadByte()
    {
        if (_start == _end)
        {
            _start = 0;
            _end = _socket.Receive(_buffer);
            if (_end == 0) throw new EndOfStreamException("the gdbstub closed the connection");
        }
        return _buffer[_start++];
    }

    public void Dispose() => _socket.Dispose();
}
