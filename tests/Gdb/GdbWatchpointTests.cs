using ActorStep.Api.V1;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Gdb;

/// <summary>
/// gdb-multiarch's <c>watch</c>, <c>rwatch</c> and <c>awatch</c> through the bridge (<c>Z2</c>–<c>Z4</c>, stop replies
/// <c>watch:ADDR</c>): the machine stops before the access, as POWER's DAWR does, and gdb's powerpc support steps over the
/// access itself and shows the values at the next instruction. The guest has DWARF for its variables (written by hand:
/// no cross C compiler here), so gdb knows <c>counter</c> and <c>shared</c> are ints.
/// </summary>
[Collection("gdb")]
public sealed class GdbWatchpointTests(GdbFixture fx)
{
    // vcpu 0 stores 1..5 to counter (reading it back each time), then waits at done; vcpu 1 keeps storing to shared.
    private const string Source = """
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 0
            bne other
            li 9, 0
        main_loop:
            addi 9, 9, 1
        set_counter:
            stw 9, counter@l(0)
        read_counter:
            lwz 10, counter@l(0)
            cmpwi 9, 5
            blt main_loop
        done:
            b done
        other:
            addi 7, 7, 1
        set_shared:
            stw 7, shared@l(0)
            b other

            .org 0x2000
            .globl counter, shared
            .type counter, @object
            .size counter, 4
        counter:
            .long 0
            .type shared, @object
            .size shared, 4
        shared:
            .long 0

            .section .debug_abbrev,"",@progbits
        abbrev:
            .uleb128 1, 0x11        # DW_TAG_compile_unit, with children
            .byte 1
            .uleb128 0x03, 0x08     # DW_AT_name, DW_FORM_string
            .uleb128 0x13, 0x0b     # DW_AT_language, DW_FORM_data1
            .byte 0, 0
            .uleb128 2, 0x24        # DW_TAG_base_type
            .byte 0
            .uleb128 0x03, 0x08
            .uleb128 0x0b, 0x0b     # DW_AT_byte_size
            .uleb128 0x3e, 0x0b     # DW_AT_encoding
            .byte 0, 0
            .uleb128 3, 0x34        # DW_TAG_variable
            .byte 0
            .uleb128 0x03, 0x08
            .uleb128 0x49, 0x13     # DW_AT_type, DW_FORM_ref4
            .uleb128 0x3f, 0x19     # DW_AT_external, DW_FORM_flag_present
            .uleb128 0x02, 0x18     # DW_AT_location, DW_FORM_exprloc
            .byte 0, 0
            .byte 0

            .section .debug_info,"",@progbits
        info:
            .4byte info_end - info_start
        info_start:
            .2byte 4
            .4byte abbrev
            .byte 8
            .uleb128 1
            .asciz "watch.c"
            .byte 0x0c              # DW_LANG_C99
        int_type:
            .uleb128 2
            .asciz "int"
            .byte 4, 5              # 4 bytes, DW_ATE_signed
            .uleb128 3
            .asciz "counter"
            .4byte int_type - info
            .uleb128 9
            .byte 0x03              # DW_OP_addr
            .8byte counter
            .uleb128 3
            .asciz "shared"
            .4byte int_type - info
            .uleb128 9
            .byte 0x03
            .8byte shared
            .byte 0
        info_end:
        """;

    private static readonly Disassembly Code = Disassembly.Of(Elf, littleEndian: true);

    private static string Elf => GuestAssembler.BuildElf(Source, littleEndian: true, textAddress: 0);

    private async Task<string> GdbAsync(string locking, params string[] commands)
    {
        var vm = fx.Vms.CreateVm(new CreateVmRequest { ElfPath = Elf, Vcpus = 2, MemorySize = 16 << 20, VmId = $"watch-{Guid.NewGuid():N}" },
            deadline: GdbFixture.Deadline);
        await using var bridge = await fx.StartBridgeAsync(vm.VmId);
        return await GdbProcess.RunAsync(bridge.Endpoint, Elf, littleEndian: true, [$"set scheduler-locking {locking}", .. commands]);
    }

    private static string Pc(string symbol, int plus = 0) => $"0x{Code.Symbols[symbol] + (ulong)plus:x}";

    [Fact]
    public async Task Watch_on_a_variable_shows_old_and_new_value_at_the_next_instruction()
    {
        string output = await GdbAsync("on", "watch counter", "continue", "p/x $pc", "continue", "p counter", "p $r9", "detach");
        Assert.Contains("Hardware watchpoint 1: counter", output);
        Assert.Contains("Old value = 0\nNew value = 1", output);
        Assert.Contains("Old value = 1\nNew value = 2", output);
        Assert.Contains($"$1 = {Pc("read_counter")}", output);
        Assert.Contains("$2 = 2", output);
        Assert.Contains("$3 = 2", output);
    }

    [Fact]
    public async Task Rwatch_and_awatch_stop_at_reads_and_at_writes()
    {
        string output = await GdbAsync("on", "rwatch counter", "continue", "p/x $pc", "p $r10", "delete 1",
            "awatch counter", "continue", "p/x $pc", "continue", "p/x $pc", "detach");
        Assert.Contains("Hardware read watchpoint 1: counter", output);
        Assert.Contains("Value = 1", output);
        Assert.Contains($"$1 = {Pc("read_counter", 4)}", output); // after the lwz, which gdb stepped over
        Assert.Contains("$2 = 1", output);
        Assert.Contains("Hardware access (read/write) watchpoint 2: counter", output);
        Assert.Contains($"$3 = {Pc("read_counter")}", output); // the store of 2
        Assert.Contains($"$4 = {Pc("read_counter", 4)}", output); // its read back
    }

    [Fact]
    public async Task A_location_written_by_another_vcpu_stops_that_vcpus_thread()
    {
        string output = await GdbAsync("off", "watch shared", "continue", "info threads", "p/x $pc", "p shared", "detach");
        Assert.Contains("Hardware watchpoint 1: shared", output);
        Assert.Contains("Old value = 0\nNew value = 1", output);
        Assert.Matches(@"\* 2\s+Thread 1\.2", output);
        Assert.Contains($"$1 = {Pc("set_shared", 4)}", output);
        Assert.Contains("$2 = 1", output);
    }

    [Fact]
    public async Task A_deleted_watchpoint_no_longer_stops()
    {
        string output = await GdbAsync("on", "watch counter", "continue", "delete 1", "break done", "continue", "p counter", "p/x $pc", "detach");
        Assert.Contains("Old value = 0\nNew value = 1", output);
        Assert.Contains("Breakpoint 2, ", output);
        Assert.Contains("$1 = 5", output);
        Assert.Contains($"$2 = {Pc("done")}", output);
        Assert.DoesNotContain("New value = 2", output);
    }

    [Fact]
    public async Task A_stepi_of_the_watched_store_reports_the_watchpoint_one_instruction_on()
    {
        string output = await GdbAsync("step", "break set_counter", "continue", "watch counter", "stepi", "p/x $pc", "p counter", "p $r9", "detach");
        Assert.Contains("Breakpoint 1, ", output);
        Assert.Contains("Old value = 0\nNew value = 1", output);
        Assert.Contains($"$1 = {Pc("read_counter")}", output);
        Assert.Contains("$2 = 1", output);
        Assert.Contains("$3 = 1", output);
    }
}
