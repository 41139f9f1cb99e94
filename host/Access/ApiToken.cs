using System.Security.Cryptography;
using System.Text;

namespace ActorStep.Host.Access;

/// <summary>
/// The per-server secret of the gRPC API (and the metrics endpoint): made at start, written to a file only the server's user
/// can read, sent by clients as <c>authorization: Bearer TOKEN</c> (as Jupyter's token and Docker's socket permissions keep a
/// shared machine's other users out). Loopback is not private: any local user can reach a loopback port.
/// </summary>
public sealed class ApiToken
{
    public const string Header = "authorization";
    private const string Scheme = "Bearer ";

    private readonly byte[] _value;

    private ApiToken(string value)
    {
        Value = value;
        _value = Encoding.ASCII.GetBytes(value);
    }

    /// <summary>The secret as clients send it (43 characters of base64url: 256 random bits).</summary>
    public string Value { get; }

    public static ApiToken Generate() =>
        new(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_'));

    /// <summary>A token read from a file written by <see cref="WriteTo"/> (surrounding white space ignored).</summary>
    public static ApiToken ReadFrom(string path)
    {
        string text = File.ReadAllText(path).Trim();
        if (text.Length == 0 || text.Any(c => c <= ' ' || c > '~')) throw new InvalidDataException($"{path} holds no ActorStep token");
        return new ApiToken(text);
    }

    /// <summary>Whether an <c>authorization</c> header value carries this token (compared in constant time).</summary>
    public bool Accepts(string? header)
    {
        if (header is null || !header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.ASCII.GetBytes(header.AsSpan(Scheme.Length).Trim().ToString());
        return CryptographicOperations.FixedTimeEquals(given, _value);
    }

    /// <summary>The header value a client sends.</summary>
    public string HeaderValue => Scheme + Value;

    /// <summary>
    /// Writes the token to <paramref name="path"/> readable and writable by this user only (0600), creating its directory
    /// (0700) if missing: a new file beside it, then renamed over the path, so a file or link planted there is replaced, not
    /// followed or written through.
    /// </summary>
    public void WriteTo(string path)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("a token file readable by its owner only needs Unix file modes");
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}");
        try
        {
            using (var f = new FileStream(temp, new FileStreamOptions
                   {
                       Mode = FileMode.CreateNew, Access = FileAccess.Write,
                       UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                   }))
                f.Write(Encoding.ASCII.GetBytes(Value + "\n"));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// Where a server on <paramref name="port"/> writes its token unless told (<c>--token-file</c>), and where
    /// <c>actorstep gdb</c> looks for it: <c>$XDG_RUNTIME_DIR/actorstep/server-PORT.token</c> (a per-user directory), else
    /// <c>~/.cache/actorstep/run/server-PORT.token</c>.
    /// </summary>
    public static string DefaultFile(int port)
    {
        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        string dir = !string.IsNullOrEmpty(runtime) && Path.IsPathRooted(runtime)
            ? Path.Combine(runtime, "actorstep")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep", "run");
        return Path.Combine(dir, $"server-{port}.token");
    }
}
