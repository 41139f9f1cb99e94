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
        var block = blocks.Find(ra, le) ?? BlockCompiler.Compile(blocks, _mem, ra, le);
        if (block is null) return;
        Interlocked.CompareExchange(ref slot, (entry & ~CompiledBlocks.SlotMask) | ((ulong)block.Index << CompiledBlocks.SlotShift), entry);
    }

    /// <summary>
    /// Builds a block's code: per word, a call of the instance method its handler calls, with the word and the handler's other
    /// arguments as constants (the JIT inlines it and folds the field extraction), so each instruction's semantics stay in one
    /// place. Before an instruction that can raise (a load, a store, a branch) the block sets what the interpreter sets before
    /// any instruction (CIA, NIP = CIA + 4, the timebase and the retired count, which watchpoints read) and after it leaves when
    /// the instruction raised an event; after a store it leaves when the store changed the block's own page.
    /// </summary>
    private static class BlockCompiler
    {
        /// <summary>The most instructions in a block: a compile costs more as it grows, and a kernel's hot loops are shorter.</summary>
        public const int MaxLength = 64;

        private enum Role { Unsupported, Plain, Load, Store, Branch }

        private static readonly FieldInfo CiaField = Field(nameof(_cia)), NipField = Field(nameof(Nip)), TbField = Field(nameof(Tb)),
            RetiredField = Field(nameof(_retired)), EventField = Field(nameof(_event));

        private static FieldInfo Field(string name) =>
            typeof(SimulatedVcpu).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingFieldException(nameof(SimulatedVcpu), name);

        /// <summary>What the handler table runs for <paramref name="op"/> (SimulatedVcpu.Dispatch.cs), as a call with constant
        /// arguments, and the instruction's role in a block; null for what a block does not contain: anything that can change
        /// the MSR or translation, reservations, FP/VMX/VSX, cache operations, traps, privileged and illegal words.</summary>
        private static (Role, Expression<Action<SimulatedVcpu, uint>>)? Semantics(Op op, uint word) => op switch
        {
            Op.Addi => (Role.Plain, (v, i) => v.Addi(i)),
            Op.Addis => (Role.Plain, (v, i) => v.Addis(i)),
            Op.Addic => (Role.Plain, (v, i) => v.Addic(i, false)),
            Op.AddicRc => (Role.Plain, (v, i) => v.Addic(i, true)),
            Op.Subfic => (Role.Plain, (v, i) => v.Subfic(i)),
            Op.Mulli => (Role.Plain, (v, i) => v.Mulli(i)),
            Op.Add or Op.Addc or Op.Adde or Op.Addme or Op.Addze or Op.Subf or Op.Subfc or Op.Subfe or Op.Subfme or Op.Subfze
                or Op.Neg => (Role.Plain, (v, i) => v.AddFamily(op, i)),
            Op.Mullw => (Role.Plain, (v, i) => v.Mullw(i)),
            Op.Mulld => (Role.Plain, (v, i) => v.Mulld(i)),
            Op.Mulhw => (Role.Plain, (v, i) => v.Mulhw(i, true)),
            Op.Mulhwu => (Role.Plain, (v, i) => v.Mulhw(i, false)),
            Op.Mulhd => (Role.Plain, (v, i) => v.Mulhd(i, true)),
            Op.Mulhdu => (Role.Plain, (v, i) => v.Mulhd(i, false)),
            Op.Divw => (Role.Plain, (v, i) => v.Divw(i, true)),
            Op.Divwu => (Role.Plain, (v, i) => v.Divw(i, false)),
            Op.Divd => (Role.Plain, (v, i) => v.Divd(i, true)),
            Op.Divdu => (Role.Plain, (v, i) => v.Divd(i, false)),
            Op.Cmpi => (Role.Plain, (v, i) => v.Cmpi(i)),
            Op.Cmpli => (Role.Plain, (v, i) => v.Cmpli(i)),
            Op.Cmp => (Role.Plain, (v, i) => v.Cmp(i)),
            Op.Cmpl => (Role.Plain, (v, i) => v.Cmpl(i)),
            Op.Andi => (Role.Plain, (v, i) => v.Andi(i, false)),
            Op.Andis => (Role.Plain, (v, i) => v.Andi(i, true)),
            Op.Ori => (Role.Plain, (v, i) => v.LogicalImmediate(i, 0)),
            Op.Oris => (Role.Plain, (v, i) => v.LogicalImmediate(i, 1)),
            Op.Xori => (Role.Plain, (v, i) => v.LogicalImmediate(i, 2)),
            Op.Xoris => (Role.Plain, (v, i) => v.LogicalImmediate(i, 3)),
            Op.And or Op.Andc or Op.Or or Op.Orc or Op.Xor or Op.Nand or Op.Nor or Op.Eqv or Op.Cmpb => (Role.Plain, (v, i) => v.Logical(op, i)),
            Op.Extsb or Op.Extsh or Op.Extsw or Op.Cntlzw or Op.Cntlzd or Op.Popcntb or Op.Popcntw or Op.Popcntd
                => (Role.Plain, (v, i) => v.Unary(op, i)),
            Op.Rlwinm => (Role.Plain, (v, i) => v.Rlwinm(i)),
            Op.Rlwnm => (Role.Plain, (v, i) => v.Rlwnm(i)),
            Op.Rlwimi => (Role.Plain, (v, i) => v.Rlwimi(i)),
            Op.Rldicl or Op.Rldicr or Op.Rldic or Op.Rldimi => (Role.Plain, (v, i) => v.RotateDoublewordImmediate(op, i)),
            Op.Rldcl or Op.Rldcr => (Role.Plain, (v, i) => v.RotateDoublewordRegister(op, i)),
            Op.Slw or Op.Srw or Op.Sld or Op.Srd => (Role.Plain, (v, i) => v.Shift(op, i)),
            Op.Sraw or Op.Srawi or Op.Srad or Op.Sradi => (Role.Plain, (v, i) => v.ShiftAlgebraic(op, i)),
            Op.Lbz => (Role.Load, (v, i) => v.LoadD(i, 1, false, false)),
            Op.Lbzu => (Role.Load, (v, i) => v.LoadD(i, 1, false, true)),
            Op.Lhz => (Role.Load, (v, i) => v.LoadD(i, 2, false, false)),
            Op.Lhzu => (Role.Load, (v, i) => v.LoadD(i, 2, false, true)),
            Op.Lha => (Role.Load, (v, i) => v.LoadD(i, 2, true, false)),
            Op.Lhau => (Role.Load, (v, i) => v.LoadD(i, 2, true, true)),
            Op.Lwz => (Role.Load, (v, i) => v.LoadD(i, 4, false, false)),
            Op.Lwzu => (Role.Load, (v, i) => v.LoadD(i, 4, false, true)),
            Op.Ld => (Role.Load, (v, i) => v.LoadDS(i, 8, false, false)),
            Op.Ldu => (Role.Load, (v, i) => v.LoadDS(i, 8, false, true)),
            Op.Lwa => (Role.Load, (v, i) => v.LoadDS(i, 4, true, false)),
            Op.Lbzx => (Role.Load, (v, i) => v.LoadX(i, 1, false, false)),
            Op.Lbzux => (Role.Load, (v, i) => v.LoadX(i, 1, false, true)),
            Op.Lhzx => (Role.Load, (v, i) => v.LoadX(i, 2, false, false)),
            Op.Lhzux => (Role.Load, (v, i) => v.LoadX(i, 2, false, true)),
            Op.Lhax => (Role.Load, (v, i) => v.LoadX(i, 2, true, false)),
            Op.Lhaux => (Role.Load, (v, i) => v.LoadX(i, 2, true, true)),
            Op.Lwzx => (Role.Load, (v, i) => v.LoadX(i, 4, false, false)),
            Op.Lwzux => (Role.Load, (v, i) => v.LoadX(i, 4, false, true)),
            Op.Lwax => (Role.Load, (v, i) => v.LoadX(i, 4, true, false)),
            Op.Lwaux => (Role.Load, (v, i) => v.LoadX(i, 4, true, true)),
            Op.Ldx => (Role.Load, (v, i) => v.LoadX(i, 8, false, false)),
            Op.Ldux => (Role.Load, (v, i) => v.LoadX(i, 8, false, true)),
            Op.Stb => (Role.Store, (v, i) => v.StoreD(i, 1, false)),
            Op.Stbu => (Role.Store, (v, i) => v.StoreD(i, 1, true)),
            Op.Sth => (Role.Store, (v, i) => v.StoreD(i, 2, false)),
            Op.Sthu => (Role.Store, (v, i) => v.StoreD(i, 2, true)),
            Op.Stw => (Role.Store, (v, i) => v.StoreD(i, 4, false)),
            Op.Stwu => (Role.Store, (v, i) => v.StoreD(i, 4, true)),
            Op.Std => (Role.Store, (v, i) => v.StoreDS(i, false)),
            Op.Stdu => (Role.Store, (v, i) => v.StoreDS(i, true)),
            Op.Stbx => (Role.Store, (v, i) => v.StoreX(i, 1, false)),
            Op.Stbux => (Role.Store, (v, i) => v.StoreX(i, 1, true)),
            Op.Sthx => (Role.Store, (v, i) => v.StoreX(i, 2, false)),
            Op.Sthux => (Role.Store, (v, i) => v.StoreX(i, 2, true)),
            Op.Stwx => (Role.Store, (v, i) => v.StoreX(i, 4, false)),
            Op.Stwux => (Role.Store, (v, i) => v.StoreX(i, 4, true)),
            Op.Stdx => (Role.Store, (v, i) => v.StoreX(i, 8, false)),
            Op.Stdux => (Role.Store, (v, i) => v.StoreX(i, 8, true)),
            Op.Lhbrx => (Role.Load, (v, i) => v.LoadByteReversed(i, 2)),
            Op.Lwbrx => (Role.Load, (v, i) => v.LoadByteReversed(i, 4)),
            Op.Ldbrx => (Role.Load, (v, i) => v.LoadByteReversed(i, 8)),
            Op.Sthbrx => (Role.Store, (v, i) => v.StoreByteReversed(i, 2)),
            Op.Stwbrx => (Role.Store, (v, i) => v.StoreByteReversed(i, 4)),
            Op.Stdbrx => (Role.Store, (v, i) => v.StoreByteReversed(i, 8)),
            Op.B => (Role.Branch, (v, i) => v.Branch(i)),
            Op.Bc => (Role.Branch, (v, i) => v.BranchConditional(i)),
            Op.Bclr => (Role.Branch, (v, i) => v.BranchConditionalToRegister(i, true)),
            Op.Bcctr => (Role.Branch, (v, i) => v.BranchConditionalToRegister(i, false)),
            Op.Crand or Op.Cror or Op.Crxor or Op.Crnand or Op.Crnor or Op.Creqv or Op.Crandc or Op.Crorc
                => (Role.Plain, (v, i) => v.ConditionRegisterLogical(op, i)),
            Op.Mcrf => (Role.Plain, (v, i) => v.Mcrf(i)),
            Op.Isel => (Role.Plain, (v, i) => v.Isel(i)),
            Op.Mfcr => (Role.Plain, (v, i) => v.Mfcr(i)),
            Op.Mtcrf => (Role.Plain, (v, i) => v.Mtcrf(i)),
            // LR, CTR and XER only: other SPRs are privileged, read time, or change what a block depends on.
            Op.Mfspr when new FormXFX(word).SPR is Spr.LR or Spr.CTR or Spr.XER => (Role.Plain, (v, i) => v.Mfspr(i)),
            Op.Mtspr when new FormXFX(word).SPR is Spr.LR or Spr.CTR or Spr.XER => (Role.Plain, (v, i) => v.Mtspr(i)),
            _ => null,
        };

        /// <summary>The block from real address <paramref name="ra"/> in this byte order: its words up to and including the first
        /// branch, up to the first word a block does not contain, the page's end or <see cref="MaxLength"/>; null when that is
        /// fewer than two instructions.</summary>
        public static unsafe CompiledBlock? Compile(CompiledBlocks blocks, GuestMemory memory, ulong ra, bool le)
        {
            uint* generationAt = memory.CodeGeneration(ra);
            uint generation = Volatile.Read(ref *generationAt); // before the words: a store after this read changes it
            var calls = new List<(Role Role, uint Word, Expression<Action<SimulatedVcpu, uint>> Call)>();
            for (ulong a = ra, end = (ra & ~0xFFFUL) + 0x1000; calls.Count < MaxLength && a < end; a += 4)
            {
                uint word = (uint)memory.Load(a, 4, le);
                if (Semantics(OpcodeTable.Decode(word), word) is not { } semantics) break;
                var (role, call) = semantics;
                calls.Add((role, word, call));
                if (role == Role.Branch) break;
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
        private static void EmitCall(ILGenerator il, Expression<Action<SimulatedVcpu, uint>> call, uint word)
        {
            var body = (MethodCallExpression)call.Body;
            il.Emit(OpCodes.Ldarg_0);
            foreach (var argument in body.Arguments)
            {
                object? value = argument switch
                {
                    ParameterExpression => word,
                    ConstantExpression c => c.Value,
                    MemberExpression { Expression: ConstantExpression closure, Member: FieldInfo f } => f.GetValue(closure.Value),
                    _ => throw new NotSupportedException($"argument {argument} of a block call"),
                };
                int constant = value switch
                {
                    uint u => unchecked((int)u),
                    int n => n,
                    bool b => b ? 1 : 0,
                    Op o => (int)o,
                    _ => throw new NotSupportedException($"constant {value} of a block call"),
                };
                il.Emit(OpCodes.Ldc_I4, constant);
            }
            il.Emit(OpCodes.Call, body.Method);
        }
    }
}
