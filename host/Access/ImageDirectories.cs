using System.Runtime.InteropServices;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Host.Access;

/// <summary>A path a client named that the server will not open: outside the served directories, or leading out of them.</summary>
public sealed class ImagePathException(string message, bool outside) : Exception(message)
{
    /// <summary>Outside the directories (PERMISSION_DENIED), rather than missing or malformed inside them (INVALID_ARGUMENT).</summary>
    public bool Outside { get; } = outside;
}

/// <summary>
/// The directories whose files gRPC clients may name as images (<c>--image-dir DIR</c>, repeatable; by default the directory
/// the server was started in). A relative path is looked up in each directory in turn; an absolute one must lie inside one.
/// Symbolic links are followed only while they stay inside the directories. A path outside is refused before the file system
/// is asked about it, so that the answer says nothing about what exists there, and no message names a host path outside.
/// What the operator names on the server's own command line (<c>serve --image</c>) does not pass through here: it is trusted.
/// </summary>
public sealed class ImageDirectories
{
    private readonly (string Lexical, string Real)[] _roots;

    public ImageDirectories(IEnumerable<string> directories)
    {
        var roots = new List<(string, string)>();
        foreach (var d in directories)
        {
            string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(d));
            if (!Directory.Exists(full)) throw new ArgumentException($"image directory {d}: no such directory");
            roots.Add((full, RealPath(full) ?? full));
        }
        if (roots.Count == 0) throw new ArgumentException("at least one image directory is needed");
        _roots = [.. roots];
    }

    /// <summary>The served directories as given (absolute), for messages and the start banner.</summary>
    public IReadOnlyList<string> Directories => _roots.Select(r => r.Lexical).ToList();

    /// <summary>The real path of the file <paramref name="requested"/> names, inside the directories.</summary>
    /// <exception cref="ImagePathException">it is outside them, leads out of them, or exists in none of them</exception>
    public string Resolve(string requested)
    {
        if (requested.Length == 0) throw new ImagePathException("the image path is empty", outside: false);
        if (requested.Contains('\0')) throw new ImagePathException($"the image path {Quote(requested)} contains a NUL character", outside: false);
        var candidates = Path.IsPathRooted(requested)
            ? [Path.GetFullPath(requested)]
            : _roots.Select(r => Path.GetFullPath(Path.Combine(r.Lexical, requested))).ToArray();
        bool anyInside = false;
        foreach (var candidate in candidates)
        {
            // Lexically first (".." folded): a path outside is refused without a stat, so its existence stays unknown.
            if (!_roots.Any(r => IsUnder(candidate, r.Lexical))) continue;
            anyInside = true;
            string? real = RealPath(candidate);
            if (real is null) continue; // not there (or not reachable): the next directory may have it
            if (!_roots.Any(r => IsUnder(real, r.Real)))
                throw new ImagePathException($"the image path {Quote(requested)} leads out of the image directories (a symbolic link); {Served}", outside: true);
            return real;
        }
        if (!anyInside) throw new ImagePathException($"the image path {Quote(requested)} is outside the image directories; {Served}", outside: true);
        throw new ImagePathException($"{Quote(requested)}: cannot read the image: no such file in the image directories ({string.Join(", ", Directories)})", outside: false);
    }

    private string Served => $"the server reads images a client names only from {string.Join(", ", Directories)} (serve --image-dir)";

    private static bool IsUnder(string path, string dir) =>
        path == dir || path.StartsWith(dir.EndsWith('/') ? dir : dir + "/", StringComparison.Ordinal);

    [DllImport("libc", EntryPoint = "realpath", SetLastError = true, CharSet = CharSet.Ansi)]
    private static extern nint NativeRealPath(string path, byte[] resolved);

    /// <summary>realpath(3): every symbolic link and ".." resolved; null when a component is missing or unreadable.</summary>
    private static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return Path.GetFullPath(path);
        var buffer = new byte[4096]; // PATH_MAX
        if (NativeRealPath(path, buffer) == 0) return null;
        return System.Text.Encoding.UTF8.GetString(buffer, 0, Array.IndexOf(buffer, (byte)0));
    }
}
