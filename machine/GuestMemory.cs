using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ActorStep.Hypervisor;

namespace ActorStep.Machine;

/// <summary>
/// Guest RAM from real address 0, shared by every vcpu of a VM. Byte address a holds byte a; the
/// accessors apply the byte order the caller asks for. Also owns the decode cache, since a store
/// anywhere (guest or host) must invalidate the decoded copy of that word.
/// </summary>
public sealed unsafe class GuestMemory
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;

    // Native, zero-filled and lazily backed by the OS (one private anonymous mapping): a VM costs physical memory only for
    // the pages its guest touches, so a fleet of idle VMs with 128 MiB each fits in a few GiB; and it is all given back when
    // the VM is destroyed (Release), not when a collection happens to run. The decode cache lives in the same mapping: one
    // slot per word, backed only for pages that were executed, and a byte per page that says whether it ever was.
    private readonly LazyZeroedRegion _region;
    private readonly byte* _ram;
    private readonly ulong* _decoded;
    private readonly uint* _codeGenerations;
    private readonly byte* _decodedPages;
    private readonly ulong _size;

    public GuestMemory(ulong size)
    {
        if (size == 0 || size % PageSize != 0 || size > (1UL << 34))
            throw new ArgumentOutOfRangeException(nameof(size), size, "guest memory must be a non-zero multiple of 4 KiB, at most 16 GiB");
        // RAM, then a decode slot (8 bytes) per word (4 bytes): twice RAM, then a code generation (4 bytes) and a byte per page.
        _region = new LazyZeroedRegion(size + 2 * size + 5 * (size >> PageShift));
        _ram = _region.Pointer;
        _decoded = (ulong*)(_ram + size);
        _codeGenerations = (uint*)(_ram + 3 * size);
        _decodedPages = _ram + 3 * size + 4 * (size >> PageShift);
        _size = size;
    }

    /// <summary>Gives guest RAM and the decode cache back to the OS now. Only once nothing runs the VM (its vcpus and
    /// debuggers are gone): afterwards the memory reads as zeros and host access throws.</summary>
    public void Release() => _region.Release();

    public bool IsReleased => _region.IsReleased;

    /// <summary>Bytes of guest RAM and decode cache in physical memory now (what the VM costs beyond its objects); null when
    /// the OS cannot tell (not Linux).</summary>
    public long? ResidentBytes() => _region.ResidentBytes();

    public ulong Size => _size;

    public bool Contains(ulong ra, ulong length) => ra < Size && length <= Size - ra;

    private Span<byte> Bytes(ulong ra, int length) => new(_ram + ra, length);

    // --- Host (debugger/loader) access: bounds-checked, invalidates decoded instructions. ---

    public void Read(ulong ra, Span<byte> into)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        if (!Contains(ra, (ulong)into.Length)) throw new GuestAddressException(ra, into.Length);
        Bytes(ra, into.Length).CopyTo(into);
        GC.KeepAlive(this);
    }

    public void Write(ulong ra, ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        if (!Contains(ra, (ulong)data.Length)) throw new GuestAddressException(ra, data.Length);
        data.CopyTo(Bytes(ra, data.Length));
        // A fence between the write and the look for decode pages: a vcpu creating the page meanwhile (compare-and-swap,
        // then its memory read) either is seen here and invalidated, or reads the new bytes (the store-buffering pattern
        // needs a fence on both sides). The host's writes (breakpoints) are rare; as KVM's flush after planting one.
        Interlocked.MemoryBarrier();
        InvalidateRange(ra, (ulong)data.Length);
        GC.KeepAlive(this);
    }

    /// <summary>Zeros [ra, ra + length) (an image's .bss), writing only the pages that are not zero already: fresh guest RAM
    /// stays unbacked (reading an untouched page costs no memory).</summary>
    public void Zero(ulong ra, ulong length)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        if (!Contains(ra, length)) throw new GuestAddressException(ra, (int)Math.Min(length, int.MaxValue));
        for (ulong a = ra; a < ra + length;)
        {
            int n = (int)Math.Min(PageSize - (a & (PageSize - 1)), ra + length - a);
            var bytes = Bytes(a, n);
            if (bytes.ContainsAnyExcept((byte)0))
            {
                bytes.Clear();
                Interlocked.MemoryBarrier(); // as Write: the store, then the look for decoded pages
                InvalidateRange(a, (ulong)n);
            }
            a += (ulong)n;
        }
        GC.KeepAlive(this);
    }

    public uint ReadUInt32(ulong ra, bool littleEndian)
    {
        Span<byte> b = stackalloc byte[4];
        Read(ra, b);
        return littleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public void WriteUInt32(ulong ra, uint value, bool littleEndian)
    {
        Span<byte> b = stackalloc byte[4];
        if (littleEndian) BinaryPrimitives.WriteUInt32LittleEndian(b, value); else BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Write(ra, b);
    }

    // --- Guest access: the caller has translated and bounds-checked. ---

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte At(ulong ra) => ref Unsafe.AsRef<byte>(_ram + ra);

    /// <summary>The host address of the real page <paramref name="raPage"/> (translated and inside RAM): a compiled block's
    /// translation of a page it loads from or stores to (SimulatedVcpu's host translations).</summary>
    internal byte* HostPage(ulong raPage) => _ram + raPage;

    /// <summary>The byte that says whether the real page of <paramref name="ra"/> was ever executed (<see cref="DecodedPage"/>):
    /// a store into such a page goes through <see cref="Store"/>, which invalidates the words it changes.</summary>
    internal byte* DecodedFlag(ulong ra) => _decodedPages + (ra >> PageShift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Load(ulong ra, int size, bool le) => Read(ref At(ra), size, le);

    /// <summary>The <paramref name="size"/> bytes at <paramref name="p"/> as a value in the guest's byte order (a load's
    /// bytes, found through <see cref="At"/> or a compiled block's host translation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Read(ref byte p, int size, bool le)
    {
        switch (size)
        {
            case 1: return p;
            case 2: { ushort v = Unsafe.ReadUnaligned<ushort>(ref p); return le ? v : BinaryPrimitives.ReverseEndianness(v); }
            case 4: { uint v = Unsafe.ReadUnaligned<uint>(ref p); return le ? v : BinaryPrimitives.ReverseEndianness(v); }
            default: { ulong v = Unsafe.ReadUnaligned<ulong>(ref p); return le ? v : BinaryPrimitives.ReverseEndianness(v); }
        }
    }

    /// <summary><paramref name="value"/>'s low <paramref name="size"/> bytes at <paramref name="p"/> in the guest's byte order,
    /// and nothing else: the caller invalidates decoded words (<see cref="Store"/>) or knows there are none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Write(ref byte p, int size, ulong value, bool le)
    {
        switch (size)
        {
            case 1: p = (byte)value; break;
            case 2: { ushort v = (ushort)value; Unsafe.WriteUnaligned(ref p, le ? v : BinaryPrimitives.ReverseEndianness(v)); break; }
            case 4: { uint v = (uint)value; Unsafe.WriteUnaligned(ref p, le ? v : BinaryPrimitives.ReverseEndianness(v)); break; }
            default: { Unsafe.WriteUnaligned(ref p, le ? value : BinaryPrimitives.ReverseEndianness(value)); break; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Store(ulong ra, int size, ulong value, bool le)
    {
        Write(ref At(ra), size, value, le);
        if ((ra & (PageSize - 1)) + (ulong)size > PageSize) InvalidateRange(ra, (ulong)size); // unaligned, into the next page
        else if (_decodedPages[ra >> PageShift] != 0) InvalidateWords(ra, (ulong)size);
    }

    /// <summary>16 bytes in storage order at a 16-byte aligned <paramref name="ra"/> (a VMX quadword: lvx).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal System.Runtime.Intrinsics.Vector128<byte> LoadQuad(ulong ra) =>
        Unsafe.ReadUnaligned<System.Runtime.Intrinsics.Vector128<byte>>(ref At(ra));

    /// <summary>Stores 16 bytes in storage order at a 16-byte aligned <paramref name="ra"/> (stvx), as <see cref="Store"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void StoreQuad(ulong ra, System.Runtime.Intrinsics.Vector128<byte> bytes)
    {
        Unsafe.WriteUnaligned(ref At(ra), bytes);
        if (_decodedPages[ra >> PageShift] != 0) InvalidateWords(ra, 16);
    }

    /// <summary>Zeroes <paramref name="length"/> bytes at <paramref name="ra"/>, inside one page (dcbz's block), as <see cref="Store"/>.</summary>
    internal void ZeroInPage(ulong ra, int length)
    {
        new Span<byte>(_ram + ra, length).Clear();
        if (_decodedPages[ra >> PageShift] != 0) InvalidateWords(ra, (ulong)length);
    }

    /// <summary>Store-conditional: compare-and-swap against the value the reservation saw (as QEMU does).</summary>
    internal bool CompareExchange(ulong ra, int size, ulong expectedRaw, ulong newValue, bool le)
    {
        ref byte p = ref At(ra);
        bool ok;
        if (size == 4)
        {
            uint nv = le ? (uint)newValue : BinaryPrimitives.ReverseEndianness((uint)newValue);
            ok = Interlocked.CompareExchange(ref Unsafe.As<byte, uint>(ref p), nv, (uint)expectedRaw) == (uint)expectedRaw;
        }
        else
        {
            ulong nv = le ? newValue : BinaryPrimitives.ReverseEndianness(newValue);
            ok = Interlocked.CompareExchange(ref Unsafe.As<byte, ulong>(ref p), nv, expectedRaw) == expectedRaw;
        }
        if (ok && _decodedPages[ra >> PageShift] != 0) InvalidateWords(ra, (ulong)size);
        return ok;
    }

    /// <summary>The raw bytes at an aligned address, read atomically, for a load-reserve.</summary>
    internal ulong LoadRaw(ulong ra, int size) => size == 4
        ? Volatile.Read(ref Unsafe.As<byte, uint>(ref At(ra)))
        : Volatile.Read(ref Unsafe.As<byte, ulong>(ref At(ra)));

    /// <summary>The value of raw bytes (as held in host memory) in the guest's byte order.</summary>
    internal static ulong FromRaw(ulong raw, int size, bool le) => size == 4
        ? le ? (uint)raw : BinaryPrimitives.ReverseEndianness((uint)raw)
        : le ? raw : BinaryPrimitives.ReverseEndianness(raw);

    /// <summary>
    /// The decode cache slots of a real page (one per word), marked as used on first use, then a full fence before the fill
    /// reads memory. A host write fences before it looks for used pages (<see cref="Write"/>); a guest store racing another
    /// vcpu's first fetch of the page may leave that vcpu the old word, as the ISA allows until the guest's icbi (<c>Icbi</c>).
    /// </summary>
    internal ulong* DecodedPage(ulong ra)
    {
        ulong pn = ra >> PageShift;
        if (Volatile.Read(ref _decodedPages[pn]) == 0)
        {
            Volatile.Write(ref _decodedPages[pn], 1);
            Interlocked.MemoryBarrier();
        }
        return _decoded + (pn << (PageShift - 2));
    }

    /// <summary>Whether the word at <paramref name="ra"/>, on a page <see cref="DecodedPage"/> gave, was fetched since a store
    /// last changed it (its slot holds a decoded word).</summary>
    internal bool WasFetched(ulong ra) => (long)Volatile.Read(ref _decoded[ra >> 2]) < 0;

    /// <summary>Drops the decoded instructions of [ra, ra + length), on as many pages as it spans (stores, icbi).</summary>
    internal void InvalidateRange(ulong ra, ulong length)
    {
        for (ulong a = ra & ~(ulong)(PageSize - 1); a < ra + length; a += PageSize)
            if (_decodedPages[a >> PageShift] != 0) InvalidateWords(Math.Max(a, ra), Math.Min(a + PageSize, ra + length) - Math.Max(a, ra));
    }

    /// <summary>Bit 63 of a decode-cache slot: the slot holds a decoded word. A slot without it is invalid and holds
    /// a value no slot has held before (<see cref="NextInvalid"/>), so a fill can publish with a compare-and-swap that
    /// fails if any store invalidated the slot after the fill looked at it. A per-slot counter is not enough: it
    /// restarts from the decoded entry, so a slot can come back to a value a stalled fill saw (ABA) and let the fill
    /// publish a word memory no longer holds — a removed breakpoint that traps forever, or a planted one missed.</summary>
    internal const ulong DecodedValid = 1UL << 63;

    private long _invalidations;

    /// <summary>An invalid slot value never used before (bit 63 clear for 2^63 invalidations).</summary>
    internal ulong NextInvalid() => (ulong)Interlocked.Increment(ref _invalidations);

    /// <summary>Invalidates the words of one page that [ra, ra + length) touches (the range stays inside the page), then
    /// advances the page's code generation (<see cref="CodeGeneration"/>).</summary>
    private void InvalidateWords(ulong ra, ulong length)
    {
        ulong first = ra >> 2;
        ulong last = (ra + length - 1) >> 2;
        ulong fresh = NextInvalid();
        for (ulong i = first; i <= last; i++) Volatile.Write(ref _decoded[i], fresh);
        Interlocked.Increment(ref _codeGenerations[ra >> PageShift]);
    }

    /// <summary>The code generation of a real page that was executed (<see cref="DecodedPage"/>): it advances after every
    /// invalidation of a word of the page (a store, a host write, an icbi), so code compiled from the page's words is still
    /// what memory holds while the generation it read before them is current. A store racing the read may leave the old
    /// words running, as the decode cache allows until the guest's icbi.</summary>
    internal uint* CodeGeneration(ulong ra) => _codeGenerations + (ra >> PageShift);
}

/// <summary>A real address outside guest RAM.</summary>
public sealed class GuestAddressException(ulong address, int length)
    : ArgumentOutOfRangeException(nameof(address), $"real address 0x{address:x} (+{length}) is outside guest memory")
{
    public ulong Address { get; } = address;
}
