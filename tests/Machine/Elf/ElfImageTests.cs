using System.Buffers.Binary;
using ActorStep.Machine;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Elf;

/// <summary>Loading guest images: bad input is an <see cref="ElfFormatException"/> with a clear message.</summary>
public class ElfImageTests
{
    /// <summary>The image both test classes load: text, a data word, a .bss block.</summary>
    internal const string Source = """
            .globl _start
        _start:
            nop
        marker:
            b marker
            .balign 8
        table:
            .quad 0x1122334455667788
            .section .bss
        zeroed:
            .space 64
        """;

    private static byte[] Bytes(bool littleEndian = true, ulong textAddress = 0x10000) =>
        File.ReadAllBytes(GuestAssembler.BuildElf(Source, littleEndian, textAddress));

    private static ElfFormatException Rejects(byte[] file) =>
        Assert.Throws<ElfFormatException>(() => ElfImage.Parse(file, "bad.elf"));

    // ELF64 little-endian header fields (the LE image).
    private static ulong PhOff(byte[] f) => BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(32));
    private static ulong SegmentOffset(byte[] f) => BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan((int)PhOff(f) + 8));
    private static ulong SegmentFileSize(byte[] f) => BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan((int)PhOff(f) + 32));

    [Fact]
    public void File_shorter_than_an_ELF64_header_is_rejected()
    {
        var e = Rejects(Bytes()[..40]);
        Assert.Contains("bad.elf", e.Message);
        Assert.Contains("too short", e.Message);
    }

    [Fact]
    public void Empty_file_is_rejected() => Assert.Contains("too short", Rejects([]).Message);

    [Fact]
    public void Non_ELF_file_is_rejected_for_its_magic()
    {
        var text = System.Text.Encoding.ASCII.GetBytes(new string('#', 200));
        Assert.Contains("not an ELF file", Rejects(text).Message);
    }

    [Fact]
    public void ELF32_file_is_rejected()
    {
        var f = Bytes();
        f[4] = 1; // ELFCLASS32
        Assert.Contains("not ELF64", Rejects(f).Message);
    }

    [Fact]
    public void Unknown_data_encoding_is_rejected()
    {
        var f = Bytes();
        f[5] = 7;
        Assert.Contains("data encoding 7", Rejects(f).Message);
    }

    [Fact]
    public void Wrong_machine_type_is_rejected_naming_it()
    {
        var f = Bytes();
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(18), 62); // EM_X86_64
        var e = Rejects(f);
        Assert.Contains("machine type 62", e.Message);
        Assert.Contains("PowerPC64", e.Message);
    }

    [Fact]
    public void Wrong_machine_type_is_rejected_in_a_big_endian_image()
    {
        var f = Bytes(littleEndian: false);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(18), 20); // EM_PPC (32-bit)
        Assert.Contains("machine type 20", Rejects(f).Message);
    }

    [Fact]
    public void Truncated_program_headers_are_rejected()
    {
        var f = Bytes();
        Assert.Contains("program headers are truncated", Rejects(f[..((int)PhOff(f) + 20)]).Message);
    }

    [Fact]
    public void File_ending_inside_a_segment_is_rejected()
    {
        var f = Bytes();
        int end = (int)(SegmentOffset(f) + SegmentFileSize(f)) - 1;
        var e = Rejects(f[..end]);
        Assert.Contains("segment 0 is truncated", e.Message);
    }

    [Fact]
    public void Segment_file_size_above_its_memory_size_is_rejected()
    {
        var f = Bytes();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan((int)PhOff(f) + 40), 4); // p_memsz
        Assert.Contains("file size exceeds memory size", Rejects(f).Message);
    }

    [Fact]
    public void Image_without_a_loadable_segment_is_rejected()
    {
        var f = Bytes();
        ushort phnum = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(56));
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(54));
        for (int i = 0; i < phnum; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan((int)PhOff(f) + i * phentsize), 4); // PT_NOTE
        Assert.Contains("no loadable", Rejects(f).Message);
    }

    [Fact]
    public void Segment_linked_beyond_guest_RAM_is_rejected_at_load()
    {
        var image = ElfImage.Parse(Bytes(textAddress: 0x200000), "high.elf");
        var e = Assert.Throws<ElfFormatException>(() => SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20)));
        Assert.Contains("0x200000", e.Message);
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Segment_with_a_physical_address_beyond_guest_RAM_is_rejected_at_load()
    {
        var f = Bytes();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan((int)PhOff(f) + 24), 0xFFFFFFFFFFFFF000); // p_paddr
        var image = ElfImage.Parse(f, "patched.elf");
        var e = Assert.Throws<ElfFormatException>(() => SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20)));
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Segment_running_past_the_end_of_guest_RAM_is_rejected_at_load()
    {
        // .text at 1 MiB - 8: the segment starts inside RAM but does not fit.
        var image = ElfImage.Parse(Bytes(textAddress: (1UL << 20) - 8), "edge.elf");
        Assert.Throws<ElfFormatException>(() => SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20)));
    }

    [Fact]
    public void Missing_file_is_an_ElfFormatException_naming_the_path()
    {
        string path = Path.Combine(Path.GetTempPath(), "actorstep-no-such-image.elf");
        var e = Assert.Throws<ElfFormatException>(() => ElfImage.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Load_refuses_a_directory_and_devices_unread()
    {
        Assert.Contains("a directory", Assert.Throws<ElfFormatException>(() => ElfImage.Load(Path.GetTempPath())).Message);
        foreach (var device in new[] { "/dev/null", "/dev/zero", "/dev/urandom" })
            Assert.Contains("a character device; an image must be a regular file", Assert.Throws<ElfFormatException>(() => ElfImage.Load(device)).Message);
    }

    [Fact]
    public void Load_refuses_a_file_over_256_MiB_from_its_size_alone()
    {
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-big-{Guid.NewGuid():N}.elf");
        using (var f = File.Create(path)) f.SetLength(ElfImage.MaxFileSize + 1); // sparse
        try
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<ElfFormatException>(() => ElfImage.Load(path));
            Assert.Contains($"it has {ElfImage.MaxFileSize + 1} bytes, over the 256 MiB", e.Message);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the file was read");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Load_reads_a_file_the_size_of_a_debian_vmlinux()
    {
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-vmlinux-{Guid.NewGuid():N}.elf");
        var elf = Bytes();
        using (var f = File.Create(path)) { f.Write(elf); f.SetLength(48L << 20); } // an ELF with a long sparse tail
        try { Assert.Equal(ElfImage.Parse(elf, "x").Entry, ElfImage.Load(path).Entry); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void An_image_whose_string_table_leaves_the_file_loads_and_runs_without_names()
    {
        var elf = Bytes();
        // The section headers (ELF64 LE): .symtab's sh_link names its string table, whose sh_offset goes past the file's end.
        int shoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(40));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(58)), shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(60));
        int symtab = Enumerable.Range(0, shnum).Single(i => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(shoff + i * shentsize + 4)) == 2);
        int strtab = (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(shoff + symtab * shentsize + 40));
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(shoff + strtab * shentsize + 24), (ulong)elf.Length + 1);
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-nostrtab-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, elf);
        try
        {
            var image = ElfImage.Load(path);
            Assert.Empty(image.Symbols);
            Assert.Equal(0, image.Code.Count);
            var vm = SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20));
            Assert.Null(vm.Symbols);
            Assert.Equal(0x10000UL, vm.GetVcpu(0).GetRegisters().Nip);
            vm.GetVcpu(0).Run(10);
            Assert.Equal(0x10004UL, vm.GetVcpu(0).GetRegisters().Nip); // nop, then `b marker` forever
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_machine_keeps_an_images_names_and_not_its_file()
    {
        // A segment's bytes are a view of the file; once the image is dropped, a machine that was never asked for names must
        // not hold the file (45 MB for a Debian vmlinux) to read them later.
        var (vm, file) = LoadedAndDropped();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(file.IsAlive);
        Assert.Equal("marker+0x0", vm.Symbols!.Describe(0x10004, translated: true));
        Assert.Equal("_start+0x0", vm.Symbols.Describe(0x10000, translated: true));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static (SimulatedMachine Vm, WeakReference File) LoadedAndDropped()
    {
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-names-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, Bytes());
        try
        {
            var image = ElfImage.Load(path);
            Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(image.Segments[0].Data, out var bytes));
            return (SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20)), new WeakReference(bytes.Array));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Load_names_the_file_in_its_messages()
    {
        string path = Path.Combine(Path.GetTempPath(), $"actorstep-bad-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, new byte[100]);
        try { Assert.Contains(Path.GetFileName(path), Assert.Throws<ElfFormatException>(() => ElfImage.Load(path)).Message); }
        finally { File.Delete(path); }
    }
}

/// <summary>Good images: entry, byte order, symbols and the platform's entry state for every vcpu.</summary>
public class ElfLoadTests
{
    private const string Source = ElfImageTests.Source;

    private static (ElfImage Image, SimulatedMachine Vm) Load(bool littleEndian, int vcpus = 3)
    {
        var image = GuestAssembler.Build(Source, littleEndian);
        return (image, SimulatedMachine.Load(image, new MachineOptions(vcpus, 1UL << 20)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Entry_is_the_address_of_start(bool littleEndian)
    {
        var (image, _) = Load(littleEndian);
        Assert.Equal(0x10000UL, image.Entry);
        Assert.Equal(image.Symbol("_start"), image.Entry);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Byte_order_is_read_from_the_header(bool littleEndian)
    {
        var (image, vm) = Load(littleEndian);
        Assert.Equal(littleEndian, image.LittleEndian);
        Assert.Equal(littleEndian, vm.ImageIsLittleEndian);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Symbols_are_read_from_the_symbol_table(bool littleEndian)
    {
        var (image, _) = Load(littleEndian);
        Assert.Equal(0x10004UL, image.Symbol("marker"));
        Assert.Equal(0x10008UL, image.Symbol("table"));
        Assert.True(image.Symbols.ContainsKey("zeroed"));
        Assert.Throws<KeyNotFoundException>(() => image.Symbol("no_such_symbol"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_vcpu_starts_at_the_entry_with_r3_its_index_and_other_GPRs_0(bool littleEndian)
    {
        var (image, vm) = Load(littleEndian);
        for (int i = 0; i < vm.VcpuCount; i++)
        {
            var s = vm.GetVcpu(i).GetRegisters();
            Assert.Equal(image.Entry, s.Nip);
            var expected = new ulong[32];
            expected[3] = (ulong)i;
            Assert.Equal(expected, s.Gpr);
        }
    }

    [Fact]
    public void Little_endian_image_starts_with_MSR_SF_ME_LE_and_LPCR_ILE()
    {
        var (_, vm) = Load(littleEndian: true);
        for (int i = 0; i < vm.VcpuCount; i++)
            Assert.Equal(0x8000000000001001UL, vm.GetVcpu(i).GetRegisters().Msr);
        Assert.Equal(ActorStep.Isa.Lpcr.ILE, vm.GetVcpu(0).GetRegisters().Lpcr);
    }

    [Fact]
    public void Big_endian_image_starts_with_MSR_SF_ME_and_LPCR_0()
    {
        var (_, vm) = Load(littleEndian: false);
        for (int i = 0; i < vm.VcpuCount; i++)
            Assert.Equal(0x8000000000001000UL, vm.GetVcpu(i).GetRegisters().Msr);
        Assert.Equal(0UL, vm.GetVcpu(0).GetRegisters().Lpcr);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Segment_bytes_are_placed_at_their_physical_address_in_the_image_byte_order(bool littleEndian)
    {
        var (image, vm) = Load(littleEndian);
        var b = new byte[8];
        vm.ReadMemory(image.Symbol("table"), b);
        ulong v = littleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b);
        Assert.Equal(0x1122334455667788UL, v);
    }

    [Fact]
    public void Memory_beyond_the_file_bytes_of_a_segment_is_zero_filled()
    {
        var (image, vm) = Load(littleEndian: true);
        ulong bss = image.Symbol("zeroed");
        vm.WriteMemory(bss, Enumerable.Repeat((byte)0xAA, 64).ToArray());
        vm.LoadImage(image);
        var b = new byte[64];
        vm.ReadMemory(bss, b);
        Assert.All(b, x => Assert.Equal(0, x));
    }

    [Fact]
    public void Loading_an_image_again_restarts_every_vcpu_from_the_entry_state()
    {
        var (image, vm) = Load(littleEndian: true, vcpus: 2);
        var fresh = Enumerable.Range(0, 2).Select(i => vm.GetVcpu(i).GetRegisters()).ToArray();
        foreach (var i in new[] { 0, 1 })
        {
            var v = vm.GetVcpu(i);
            var s = v.GetRegisters();
            s.Lr = 0x1234; s.Ctr = 5; s.Cr = 0x20000000; s.Xer = 0x20000000; s.Srr0 = 7; s.Srr1 = 8; s.Dar = 9; s.Dsisr = 10;
            s.Sprg[1] = 11; s.Fpr[3] = 12; s.Gpr[20] = 13; s.Msr |= 0x8000;
            v.SetRegisters(s);
            v.Run(100);
        }
        vm.LoadImage(image);
        for (int i = 0; i < 2; i++)
        {
            var s = vm.GetVcpu(i).GetRegisters();
            fresh[i].Tb = s.Tb; // the timebase never goes backwards
            fresh[i].Dec = s.Dec;
            Assert.True(fresh[i].Equals(s), $"vcpu {i}: {string.Join(", ", fresh[i].Differences(s))}");
        }
    }

    [Fact]
    public void Loading_an_image_again_revives_a_vcpu_that_stopped_for_good()
    {
        var image = GuestAssembler.Build("""
                li 3, 0
                ori 3, 3, 0xF080
                li 4, 3
                sc 1
            """);
        var vm = SimulatedMachine.Load(image, new MachineOptions(1, 1UL << 20));
        Assert.Equal(ExitReason.Stopped, vm.GetVcpu(0).Run(100).Reason);
        vm.LoadImage(image);
        Assert.False(vm.GetVcpu(0).IsStoppedForGood);
        Assert.Equal(ExitReason.BudgetExpired, vm.GetVcpu(0).Run(2).Reason);
    }

    [Fact]
    public void Built_in_images_load()
    {
        foreach (var name in new[] { "demo", "spin", "selftest-be" })
        {
            var image = ElfImage.BuiltIn(name);
            Assert.Equal(image.Symbol("_start"), image.Entry);
        }
        Assert.Throws<ElfFormatException>(() => ElfImage.BuiltIn("no-such-guest"));
    }
}
