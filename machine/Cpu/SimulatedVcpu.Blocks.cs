using System.Linq.Expressions;
using System.Reflection;
using System.Reflection.Emit;
using ActorStep.Isa;

namespace ActorStep.Machine.Cpu;

// The block compiler: hot straight-line blocks of integer code compiled to .NET code (a DynamicMethod per block) and entered
// instead of the per-word loop, with exactly the interpreter's semantics (machine/README.md, "Block compiler").
public sealed partial class SimulatedVcpu
{
    private long _blockRetired;

    /// <summary>Instructions this vcpu retired inside compiled blocks (a part of <see cref="InstructionsRetired"/>).</summary>
    public long InstructionsRetiredInBlocks => _blockRetired;

    private enum BlockRun { NotRun, Ran, EndsBatch }

    /// <summary>
    /// Runs the block whose index the decode slot of <paramref name="cia"/> holds, as ExecuteBatch would run its words: only when
    /// it is still the block of this real address and byte order, its page unchanged since it was compiled, and the whole of it
    /// fits before <paramref name="batchEnd"/> (so budgets, the decrementer's bound and the deterministic mode's counts stay the
    /// interpreter's). The caller runs with MSR[SE] = 0: nothing is traced.
    /// </summary>
    private BlockRun RunBlock(ref ulong slot, ulong entry, ulong cia, bool le, ulong batchEnd)
    {
        var block = _vm.Blocks![(int)((entry & CompiledBlocks.SlotMask) >> CompiledBlocks.SlotShift)];
        if (block is null || block.RealAddress != (_fetchRaPage | (cia & 0xFFF)) || block.LittleEndian != le || !block.IsCurrent)
        {
            // Replaced, or a word of its page changed: interpret, and compile again once hot.
            Interlocked.CompareExchange(ref slot, entry & ~CompiledBlocks.SlotMask, entry);
            return BlockRun.NotRun;
        }
        if (Tb + (ulong)block.Length > batchEnd) return BlockRun.NotRun;
        ulong tb = Tb;
        long retired = _retired;
        int ran = block.Code(this, cia);
        Tb = tb + (ulong)ran;
        _retired = retired + ran;
        _blockRetired += ran;
        if (_event == Event.None) return BlockRun.Ran;
        // The instruction at index `ran` raised the event: what ExecuteBatch does after such an instruction.
        if ((_event & Event.Exit) != 0) return BlockRun.EndsBatch;
        if ((_event & Event.Interrupted) == 0) { Tb++; _retired++; _blockRetired++; }
        _event = Event.None;
        return BlockRun.EndsBatch;
    }

    /// <summary>Compiles the block at <paramref name="cia"/> (or finds the one another vcpu compiled) and marks its first word's
    /// slot with it, unless a store changed the slot meanwhile.</summary>
    private unsafe void CompileBlockAt(ref ulong slot, ulong entry, ulong cia, bool le)
    {
        var blocks = _vm.Blocks!;
        ulong ra = _fetchRaPage | (cia & 0xFFF);
        var block = blocks.Find(ra, le);
        if (block is null)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            block = BlockCompiler.Compile(blocks, _mem, ra, le);
            blocks.NoteCompile(System.Diagnostics.Stopwatch.GetTimestamp() - start);
        }
        if (block is null) return;
        Interlocked.CompareExchange(ref slot, (entry & ~CompiledBlocks.SlotMask) | ((ulong)block.Index << CompiledBlocks.SlotShift), entry);
    }

    /// <summary>
    /// Builds a block's code, each instruction's semantics kept in one place: an ALU instruction is a call of the instance
    /// method its handler calls, with the word and the handler's other arguments as constants, which the JIT inlines and folds
    /// the field extraction of; a load, store, branch or trap calls the dispatch table's own handler (not inlined: inlining the
    /// translation and the branch logic made a block's first compile several times dearer, ~1–8 ms, for little speed). Before
    /// such an instruction the block sets what the interpreter sets before any (CIA, NIP = CIA + 4, the timebase and the
    /// retired count, which watchpoints read) and after it leaves when the instruction raised an event; after a store it leaves
    /// when the store changed the block's own page.
    /// </summary>
    private static class BlockCompiler
    {
        /// <summary>The most instructions in a block: a compile costs more as it grows, and a kernel's hot loops are shorter.</summary>
        public const int MaxLength = 64;

        /// <summary>Plain: reads and writes registers only; Raises: can raise an interrupt or an exit event (a load, a trap);
        /// Store: can raise, and can change code; Branch: can raise, ends the block.</summary>
        private enum Role { Plain, Raises, Store, Branch }

        private static readonly FieldInfo CiaField = Field(nameof(_cia)), NipField = Field(nameof(Nip)), TbField = Field(nameof(Tb)),
            RetiredField = Field(nameof(_retired)), EventField = Field(nameof(_event));

        private static FieldInfo Field(string name) =>
            typeof(SimulatedVcpu).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingFieldException(nameof(SimulatedVcpu), name);

        /// <summary>A handler's call: the method and its arguments after the vcpu, each the word (null) or a constant.</summary>
        private sealed record Call(Role Role, MethodInfo? Method, int?[] Constants);

        /// <summary>The call of every <see cref="Op"/> a block contains, built once: an expression tree costs tens of microseconds.</summary>
        private static readonly Call?[] Calls = Enum.GetValues<Op>().Select(op =>
                Inlined(op) is { } call ? Lower(call)
                : op is Op.Sync or Op.Isync or Op.Eieio or Op.CacheHint ? new Call(Role.Plain, null, []) // nothing to do (Handlers.Nothing)
                : RoleOf(op) is { } role ? new Call(role, TableHandler(op), [(int)op, null])
                : null)
            .ToArray();

        /// <summary>The static handler the dispatch table holds for <paramref name="op"/> (found by its address).</summary>
        private static unsafe MethodInfo TableHandler(Op op)
        {
            nint address = (nint)Handlers.Table[(int)op];
            return typeof(Handlers).GetMethods(BindingFlags.NonPublic | BindingFlags.Static)
                .Single(m => m.GetParameters().Length == 3 && m.MethodHandle.GetFunctionPointer() == address);
        }

        private static Call Lower(Expression<Action<SimulatedVcpu, uint>> call)
        {
            var body = (MethodCallExpression)call.Body;
            var constants = body.Arguments.Select(argument =>
            {
                object? value = argument switch
                {
                    ParameterExpression => null,
                    ConstantExpression c => c.Value,
                    MemberExpression { Expression: ConstantExpression closure, Member: FieldInfo f } => f.GetValue(closure.Value),
                    _ => throw new NotSupportedException($"argument {argument} of a block call"),
                };
                return value switch
                {
                    null => (int?)null,
                    int n => n,
                    bool b => b ? 1 : 0,
                    Op o => (int)o,
                    _ => throw new NotSupportedException($"constant {value} of a block call"),
                };
            }).ToArray();
            return new Call(Role.Plain, body.Method, constants);
        }

        /// <summary>The call for a word decoded as <paramref name="op"/>; null for what a block does not contain.</summary>
        private static Call? CallFor(Op op, uint word)
        {
            var call = (int)op < Calls.Length ? Calls[(int)op] : null;
            // LR, CTR and XER only: other SPRs are privileged, read time, or change what a block depends on.
            if (op is Op.Mfspr or Op.Mtspr && new FormXFX(word).SPR is not (Spr.LR or Spr.CTR or Spr.XER)) return null;
            return call;
        }

        /// <summary>What the handler table runs for an ALU <paramref name="op"/> (SimulatedVcpu.Dispatch.cs), as a call with
        /// constant arguments that a block inlines.</summary>
        private static Expression<Action<SimulatedVcpu, uint>>? Inlined(Op op) => op switch
        {
            Op.Addi => (v, i) => v.Addi(i),
            Op.Addis => (v, i) => v.Addis(i),
            Op.Addic => (v, i) => v.Addic(i, false),
            Op.AddicRc => (v, i) => v.Addic(i, true),
            Op.Subfic => (v, i) => v.Subfic(i),
            Op.Mulli => (v, i) => v.Mulli(i),
            Op.Add or Op.Addc or Op.Adde or Op.Addme or Op.Addze or Op.Subf or Op.Subfc or Op.Subfe or Op.Subfme or Op.Subfze
                or Op.Neg => (v, i) => v.AddFamily(op, i),
            Op.Mullw => (v, i) => v.Mullw(i),
            Op.Mulld => (v, i) => v.Mulld(i),
            Op.Mulhw => (v, i) => v.Mulhw(i, true),
            Op.Mulhwu => (v, i) => v.Mulhw(i, false),
            Op.Mulhd => (v, i) => v.Mulhd(i, true),
            Op.Mulhdu => (v, i) => v.Mulhd(i, false),
            Op.Divw => (v, i) => v.Divw(i, true),
            Op.Divwu => (v, i) => v.Divw(i, false),
            Op.Divd => (v, i) => v.Divd(i, true),
            Op.Divdu => (v, i) => v.Divd(i, false),
            Op.Cmpi => (v, i) => v.Cmpi(i),
            Op.Cmpli => (v, i) => v.Cmpli(i),
            Op.Cmp => (v, i) => v.Cmp(i),
            Op.Cmpl => (v, i) => v.Cmpl(i),
            Op.Andi => (v, i) => v.Andi(i, false),
            Op.Andis => (v, i) => v.Andi(i, true),
            Op.Ori => (v, i) => v.LogicalImmediate(i, 0),
            Op.Oris => (v, i) => v.LogicalImmediate(i, 1),
            Op.Xori => (v, i) => v.LogicalImmediate(i, 2),
            Op.Xoris => (v, i) => v.LogicalImmediate(i, 3),
            Op.And or Op.Andc or Op.Or or Op.Orc or Op.Xor or Op.Nand or Op.Nor or Op.Eqv or Op.Cmpb => (v, i) => v.Logical(op, i),
            Op.Extsb or Op.Extsh or Op.Extsw or Op.Cntlzw or Op.Cntlzd or Op.Popcntb or Op.Popcntw or Op.Popcntd
                => (v, i) => v.Unary(op, i),
            Op.Rlwinm => (v, i) => v.Rlwinm(i),
            Op.Rlwnm => (v, i) => v.Rlwnm(i),
            Op.Rlwimi => (v, i) => v.Rlwimi(i),
            Op.Rldicl or Op.Rldicr or Op.Rldic or Op.Rldimi => (v, i) => v.RotateDoublewordImmediate(op, i),
            Op.Rldcl or Op.Rldcr => (v, i) => v.RotateDoublewordRegister(op, i),
            Op.Slw or Op.Srw or Op.Sld or Op.Srd => (v, i) => v.Shift(op, i),
            Op.Sraw or Op.Srawi or Op.Srad or Op.Sradi => (v, i) => v.ShiftAlgebraic(op, i),
            Op.Crand or Op.Cror or Op.Crxor or Op.Crnand or Op.Crnor or Op.Creqv or Op.Crandc or Op.Crorc
                => (v, i) => v.ConditionRegisterLogical(op, i),
            Op.Mcrf => (v, i) => v.Mcrf(i),
            Op.Isel => (v, i) => v.Isel(i),
            Op.Mfcr => (v, i) => v.Mfcr(i),
            Op.Mtcrf => (v, i) => v.Mtcrf(i),
            Op.Mfspr => (v, i) => v.Mfspr(i), // of LR, CTR and XER only (CallFor)
            Op.Mtspr => (v, i) => v.Mtspr(i),
            _ => null,
        };

        /// <summary>The role of an instruction a block runs through the table's handler; null for what a block does not contain:
        /// anything that can change the MSR or translation, reservations, FP/VMX/VSX, icbi, privileged and illegal words. sync,
        /// isync, eieio and the cache hints do nothing in this machine's memory model: a block counts them and runs on.</summary>
        private static Role? RoleOf(Op op) => op switch
        {
            >= Op.Lbz and <= Op.Stdux or >= Op.Lhbrx and <= Op.Stdbrx => op is >= Op.Stb and <= Op.Stdux or >= Op.Sthbrx and <= Op.Stdbrx
                ? Role.Store : Role.Raises,
            Op.Dcbz => Role.Store,
            Op.Tw or Op.Td or Op.Twi or Op.Tdi => Role.Raises,
            Op.B or Op.Bc or Op.Bclr or Op.Bcctr => Role.Branch,
            _ => null,
        };

        /// <summary>The block from real address <paramref name="ra"/> in this byte order: its words up to and including the first
        /// branch, up to the first word a block does not contain, the page's end or <see cref="MaxLength"/>; null when that is
        /// fewer than two instructions.</summary>
        public static unsafe CompiledBlock? Compile(CompiledBlocks blocks, GuestMemory memory, ulong ra, bool le)
        {
            uint* generationAt = memory.CodeGeneration(ra);
            uint generation = Volatile.Read(ref *generationAt); // before the words: a store after this read changes it
            var calls = new List<(Role Role, uint Word, Call Call)>();
            for (ulong a = ra, end = (ra & ~0xFFFUL) + 0x1000; calls.Count < MaxLength && a < end; a += 4)
            {
                uint word = (uint)memory.Load(a, 4, le);
                if (CallFor(OpcodeTable.Decode(word), word) is not { } call) break;
                calls.Add((call.Role, word, call));
                if (call.Role == Role.Branch) break;
            }
            if (calls.Count < 2) return null;

            var method = new DynamicMethod($"block_{ra:x}_{(le ? "le" : "be")}", typeof(int), [typeof(SimulatedVcpu), typeof(ulong)],
                typeof(SimulatedVcpu), skipVisibility: true);
            var il = method.GetILGenerator();
            var tb = il.DeclareLocal(typeof(ulong));
            var retired = il.DeclareLocal(typeof(long));
            il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, TbField); il.Emit(OpCodes.Stloc, tb);
            il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, RetiredField); il.Emit(OpCodes.Stloc, retired);
            for (int k = 0; k < calls.Count; k++)
            {
                var (role, word, call) = calls[k];
                if (role != Role.Plain)
                {
                    // What ExecuteBatch holds before every instruction (the plain ones do not read it).
                    StoreAddress(il, CiaField, 4 * k);
                    StoreAddress(il, NipField, 4 * k + 4);
                    StoreCount(il, TbField, tb, k);
                    StoreCount(il, RetiredField, retired, k);
                }
                EmitCall(il, call, word);
                if (role != Role.Plain)
                {
                    var next = il.DefineLabel();
                    il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, EventField); il.Emit(OpCodes.Brfalse, next);
                    il.Emit(OpCodes.Ldc_I4, k); il.Emit(OpCodes.Ret);
                    il.MarkLabel(next);
                }
                if (role == Role.Store)
                {
                    // A store into the block's own page (self-modifying code): the words after it may have changed.
                    var unchanged = il.DefineLabel();
                    il.Emit(OpCodes.Ldc_I8, (long)generationAt); il.Emit(OpCodes.Conv_U);
                    il.Emit(OpCodes.Volatile); il.Emit(OpCodes.Ldind_U4);
                    il.Emit(OpCodes.Ldc_I4, unchecked((int)generation)); il.Emit(OpCodes.Beq, unchanged);
                    il.Emit(OpCodes.Ldc_I4, k + 1); il.Emit(OpCodes.Ret);
                    il.MarkLabel(unchanged);
                }
            }
            if (calls[^1].Role != Role.Branch) StoreAddress(il, NipField, 4 * calls.Count);
            il.Emit(OpCodes.Ldc_I4, calls.Count);
            il.Emit(OpCodes.Ret);
            var code = method.CreateDelegate<BlockCode>();
            System.Runtime.CompilerServices.RuntimeHelpers.PrepareDelegate(code); // the JIT's compile now, counted as the compile's
            return blocks.Add(ra, le, generationAt, generation, calls.Count, code);
        }

        /// <summary>vcpu.field = cia + offset.</summary>
        private static void StoreAddress(ILGenerator il, FieldInfo field, int offset)
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldarg_1); il.Emit(OpCodes.Ldc_I8, (long)offset); il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Stfld, field);
        }

        /// <summary>vcpu.field = the field's value at the block's entry + <paramref name="k"/>.</summary>
        private static void StoreCount(ILGenerator il, FieldInfo field, LocalBuilder atEntry, int k)
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldloc, atEntry); il.Emit(OpCodes.Ldc_I8, (long)k); il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Stfld, field);
        }

        /// <summary>The handler's call, its vcpu the block's argument, the word and every other argument constants.</summary>
        private static void EmitCall(ILGenerator il, Call call, uint word)
        {
            if (call.Method is null) return;
            il.Emit(OpCodes.Ldarg_0);
            foreach (int? constant in call.Constants) il.Emit(OpCodes.Ldc_I4, constant ?? unchecked((int)word));
            il.Emit(OpCodes.Call, call.Method);
        }
    }
}
