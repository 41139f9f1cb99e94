using System.Security.Cryptography;

namespace ActorStep.Tests.Support;

/// <summary>
/// The Linux guest assets <c>scripts/fetch-linux</c> caches outside the repository, in
/// <c>${ACTORSTEP_CACHE:-$HOME/.cache/actorstep}/linux/</c>: Debian's ppc64el vmlinux (an ELF with symbols), a static
/// busybox (ppc64el), VERSION (key=value: kernel_package, kernel_version, kernel_release, busybox_version) and
/// SHA256SUMS. Missing or damaged assets are an error, never a skip: the message says to run scripts/fetch-linux.
/// </summary>
public sealed record LinuxAssets(string Directory, string Vmlinux, string Busybox, IReadOnlyDictionary<string, string> Version)
{
    private static readonly Lazy<LinuxAssets> Cached = new(Load);

    /// <summary>What <c>uname -r</c> prints in the guest (e.g. 6.1.0-54-powerpc64le).</summary>
    public string KernelRelease => Version["kernel_release"];

    /// <summary>The Debian package the kernel came from, with its version (for messages).</summary>
    public string KernelPackage => $"{Version["kernel_package"]} {Version["kernel_version"]}";

    public static string CacheDirectory
    {
        get
        {
            string? root = Environment.GetEnvironmentVariable("ACTORSTEP_CACHE");
            if (string.IsNullOrEmpty(root))
                root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "actorstep");
            return Path.Combine(root, "linux");
        }
    }

    /// <summary>The cached assets, checked once per test run (sha256 of every file against SHA256SUMS).</summary>
    public static LinuxAssets Get() => Cached.Value;

    private static LinuxAssets Load()
    {
        string dir = CacheDirectory;
        string Fail(string what) => throw new InvalidOperationException(
            $"the Linux guest assets in {dir} are {what}: run scripts/fetch-linux (scripts/setup and .ci/run do) to fetch them");
        string sums = Path.Combine(dir, "SHA256SUMS");
        if (!File.Exists(sums)) Fail("missing");
        foreach (string line in File.ReadAllLines(sums))
        {
            string[] parts = line.Split("  ", 2);
            if (parts.Length != 2) Fail($"damaged (SHA256SUMS line '{line}')");
            string file = Path.Combine(dir, parts[1]);
            if (!File.Exists(file)) Fail($"incomplete ({parts[1]} missing)");
            using var stream = File.OpenRead(file);
            string actual = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
            if (actual != parts[0]) Fail($"damaged ({parts[1]}: sha256 {actual}, SHA256SUMS says {parts[0]})");
        }
        var version = File.ReadAllLines(Path.Combine(dir, "VERSION"))
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        foreach (string key in (string[])["kernel_package", "kernel_version", "kernel_release", "busybox_version"])
            if (!version.ContainsKey(key)) Fail($"from an older fetch-linux (VERSION has no {key})");
        return new LinuxAssets(dir, Path.Combine(dir, "vmlinux"), Path.Combine(dir, "busybox"), version);
    }
}
