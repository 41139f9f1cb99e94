using System.Text;

namespace ActorStep.Tests.Support;

/// <summary>
/// Writes a cpio archive in the "newc" format (magic 070701), the one the Linux kernel unpacks as an initramfs
/// (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII header of 13 eight-digit
/// hex fields, the NUL-terminated name padded to 4 bytes, the data padded to 4 bytes; a "TRAILER!!!" entry ends it.
/// No external cpio tool. The output is byte-for-byte reproducible: inode numbers count up from 1, owners are root,
/// times are 0.
/// <para>It lives in tests/Support for now: the simulator's future <c>actorstep run --kernel … --initrd …</c> may want
/// it too, and then it moves into a library both can use (not hypervisor/, which is the backend seam).</para>
/// </summary>
public sealed class NewcArchive
{
    private const uint FileType = 0x8000, DirectoryType = 0x4000, CharDeviceType = 0x2000, SymlinkType = 0xA000;

    private readonly MemoryStream _out = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private uint _nextInode = 1;
    private bool _finished;

    /// <summary>A directory (mode: the permission bits, e.g. 0755).</summary>
    public NewcArchive Directory(string path, uint mode = 0x1ED /* 0755 */) =>
        Entry(path, DirectoryType | mode, nlink: 2, ReadOnlySpan<byte>.Empty, 0, 0);

    public NewcArchive File(string path, ReadOnlySpan<byte> data, uint mode = 0x1A4 /* 0644 */) =>
        Entry(path, FileType | mode, nlink: 1, data, 0, 0);

    public NewcArchive File(string path, string text, uint mode = 0x1A4 /* 0644 */) =>
        File(path, Encoding.UTF8.GetBytes(text), mode);

    /// <summary>A character device node, e.g. /dev/console = c 5 1.</summary>
    public NewcArchive CharDevice(string path, uint major, uint minor, uint mode = 0x180 /* 0600 */) =>
        Entry(path, CharDeviceType | mode, nlink: 1, ReadOnlySpan<byte>.Empty, major, minor);

    /// <summary>A symbolic link: the data is the target.</summary>
    public NewcArchive Symlink(string path, string target) =>
        Entry(path, SymlinkType | 0x1FF /* 0777 */, nlink: 1, Encoding.UTF8.GetBytes(target), 0, 0);

    /// <summary>Ends the archive with its trailer and returns its bytes.</summary>
    public byte[] ToArray()
    {
        if (!_finished)
        {
            Header("TRAILER!!!", 0, 0, 0, 0, 0, 0);
            _finished = true;
        }
        return _out.ToArray();
    }

    private NewcArchive Entry(string path, uint mode, uint nlink, ReadOnlySpan<byte> data, uint rdevMajor, uint rdevMinor)
    {
        if (_finished) throw new InvalidOperationException("the archive is finished");
        // Names are relative to the root ("bin/busybox"), as cpio -H newc writes them from "find ."; no "..", no "//".
        string name = path.Trim('/');
        if (name.Length == 0 || name.Split('/').Any(p => p is "" or "." or ".."))
            throw new ArgumentException($"bad archive path '{path}'", nameof(path));
        if (!_names.Add(name)) throw new ArgumentException($"'{name}' is already in the archive", nameof(path));
        Header(name, _nextInode++, mode, nlink, (uint)data.Length, rdevMajor, rdevMinor);
        _out.Write(data);
        Pad();
        return this;
    }

    private void Header(string name, uint inode, uint mode, uint nlink, uint size, uint rdevMajor, uint rdevMinor)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var h = new StringBuilder("070701", 110);
        // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
        foreach (uint field in (uint[])[inode, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, (uint)nameBytes.Length, 0])
            h.Append(field.ToString("X8", System.Globalization.CultureInfo.InvariantCulture));
        _out.Write(Encoding.ASCII.GetBytes(h.ToString()));
        _out.Write(nameBytes);
        Pad();
    }

    private void Pad()
    {
        while (_out.Length % 4 != 0) _out.WriteByte(0);
    }
}
