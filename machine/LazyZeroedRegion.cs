using System.Runtime.InteropServices;

namespace ActorStep.Machine;

/// <summary>
/// Zero-filled native memory that costs physical memory only for the pages written to (a private anonymous mapping on
/// Linux), and gives it all back at once on <see cref="Release"/>. The mapping itself stays until the object is collected,
/// so a stray access after a release reads zeros instead of crashing the process; only the address range waits for the GC.
/// Elsewhere: calloc, freed when collected.
/// </summary>
internal sealed unsafe partial class LazyZeroedRegion
{
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapPrivateAnonymousNoReserve = 0x02 | 0x20 | 0x4000;
    private const int MadvDontNeed = 4;

    private readonly nuint _length;
    private readonly bool _mapped;
    private int _released;

    public LazyZeroedRegion(ulong length)
    {
        _length = (nuint)length;
        if (OperatingSystem.IsLinux())
        {
            void* p = Mmap(null, _length, ProtReadWrite, MapPrivateAnonymousNoReserve, -1, 0);
            if (p == (void*)-1) throw new OutOfMemoryException($"cannot map {length} bytes of guest memory (errno {Marshal.GetLastPInvokeError()})");
            Pointer = (byte*)p;
            _mapped = true;
        }
        else Pointer = (byte*)NativeMemory.AllocZeroed(_length);
    }

    ~LazyZeroedRegion()
    {
        if (_mapped) Munmap(Pointer, _length);
        else NativeMemory.Free(Pointer);
    }

    public byte* Pointer { get; }

    public bool IsReleased => Volatile.Read(ref _released) != 0;

    /// <summary>Gives the physical pages back now (Linux: MADV_DONTNEED, after which the region reads as zeros). Idempotent.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        if (_mapped) Madvise(Pointer, _length, MadvDontNeed);
        GC.KeepAlive(this);
    }

    /// <summary>Bytes of the region in physical memory now (Linux: mincore, by page); elsewhere null.</summary>
    public long? ResidentBytes()
    {
        if (!_mapped) return null;
        const int Page = 4096, Chunk = 1 << 16; // pages asked about per call
        var vec = new byte[Chunk];
        long resident = 0;
        ulong pages = ((ulong)_length + Page - 1) / Page;
        fixed (byte* v = vec)
            for (ulong first = 0; first < pages; first += Chunk)
            {
                ulong n = Math.Min(Chunk, pages - first);
                if (Mincore(Pointer + first * Page, (nuint)(n * Page), v) != 0)
                    throw new InvalidOperationException($"mincore failed (errno {Marshal.GetLastPInvokeError()})");
                for (ulong i = 0; i < n; i++) resident += v[i] & 1;
            }
        GC.KeepAlive(this);
        return resident * Page;
    }

    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static partial int Mincore(void* address, nuint length, byte* vec);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
