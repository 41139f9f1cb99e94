using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using static ActorStep.Hypervisor.ClientText;

namespace ActorStep.Machine;

/// <summary>
/// Reads a guest image file whole, bounded: only a regular file of at most <see cref="ElfImage.MaxFileSize"/> bytes. A FIFO,
/// a device (/dev/zero, /dev/urandom), a socket or a directory is refused without blocking and without reading a byte; a
/// larger file is refused from its size alone.
/// </summary>
internal static partial class ImageFile
{
    public static byte[] Read(string path, long maxBytes) =>
        OperatingSystem.IsLinux() ? ReadOnLinux(path, maxBytes) : ReadPortably(path, maxBytes);

    private static ElfFormatException Refused(string path, string why) => new($"{Quote(path)}: cannot read the image: {why}");

    // ---- Linux: statx(2), whose struct is the same on every architecture, and open(2) with O_NONBLOCK ----

    private const int O_RDONLY = 0, O_NOCTTY = 0x100, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    private const int AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1, STATX_SIZE = 0x200;
    private const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFSOCK = 0xC000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* statx);

    private static byte[] ReadOnLinux(string path, long maxBytes)
    {
        if (path.Contains('\0')) throw Refused(path, "the path contains a NUL character");
        // The path first, so that a device is never even opened; then the opened file, in case the path changed meanwhile.
        Check(path, Stat(AT_FDCWD, path, 0, path), maxBytes);
        int fd = Open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); // a FIFO that has no writer does not block the open
        if (fd < 0) throw Refused(path, Marshal.GetLastPInvokeErrorMessage());
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        long size = Check(path, Stat(fd, "", AT_EMPTY_PATH, path), maxBytes);
        var bytes = new byte[size];
        int read = 0;
        while (read < bytes.Length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(read), read);
            if (n == 0) return bytes[..read]; // shrunk since: what is there
            read += n;
        }
        return bytes; // grown since: what it held when opened
    }

    private static unsafe (int Mode, long Size) Stat(int dirfd, string path, int flags, string forMessage)
    {
        byte* buffer = stackalloc byte[256];
        if (Statx(dirfd, path, flags, STATX_TYPE | STATX_SIZE, buffer) != 0) throw Refused(forMessage, Marshal.GetLastPInvokeErrorMessage());
        var s = new ReadOnlySpan<byte>(buffer, 256);
        // struct statx: stx_mode (u16) at 28, stx_size (u64) at 40, in the machine's byte order.
        return (BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(s[28..]) : BinaryPrimitives.ReadUInt16BigEndian(s[28..]),
            (long)(BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(s[40..]) : BinaryPrimitives.ReadUInt64BigEndian(s[40..])));
    }

    private static long Check(string path, (int Mode, long Size) stat, long maxBytes)
    {
        string? kind = (stat.Mode & S_IFMT) switch
        {
            S_IFREG => null,
            S_IFDIR => "a directory",
            S_IFIFO => "a FIFO (named pipe)",
            S_IFCHR => "a character device",
            S_IFBLK => "a block device",
            S_IFSOCK => "a socket",
            _ => "not a file",
        };
        if (kind is not null) throw Refused(path, $"it is {kind}; an image must be a regular file");
        if (stat.Size > maxBytes) throw Refused(path, TooLarge(stat.Size, maxBytes));
        return stat.Size;
    }

    private static string TooLarge(long size, long maxBytes) => $"it has {size} bytes, over the {maxBytes >> 20} MiB an image may have";

    // ---- elsewhere: what .NET offers (no file types: a FIFO would block the open there) ----

    private static byte[] ReadPortably(string path, long maxBytes)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw Refused(path, Directory.Exists(path) ? "it is a directory; an image must be a regular file" : "no such file");
            if (info.Length > maxBytes) throw Refused(path, TooLarge(info.Length, maxBytes));
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
            var buffer = new byte[Math.Min(info.Length, maxBytes) + 1];
            int read = 0, n;
            while (read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0) read += n;
            if (read > maxBytes) throw Refused(path, $"it has over the {maxBytes >> 20} MiB an image may have");
            return buffer[..read];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw Refused(path, e.Message.Replace(path, "the file", StringComparison.Ordinal));
        }
    }
}
