using System.Linq.Expressions;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using ActorStep.Hypervisor;
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
    /// it is still the block of this real address and byte order, its page unchanged since it was compiled, and its first basic
    /// block fits before <paramref name="batchEnd"/>; inside, each basic block runs only when the whole of it fits (so budgets, the
    /// decrementer's bound and the deterministic mode's counts stay the interpreter's). The caller runs with MSR[SE] = 0: nothing
    /// is traced.
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
        if (Tb + (ulong)block.FirstLength > batchEnd) return BlockRun.NotRun;
        ulong tb = Tb;
        long retired = _retired;
        long ran = block.Code(this, cia, (long)Math.Min(batchEnd - tb, long.MaxValue));
        Tb = tb + (ulong)ran;
        _retired = retired + ran;
        _blockRetired += ran;
        if (_event == Event.None) return BlockRun.Ran;
        // The instruction after the `ran` retired ones raised the event: what ExecuteBatch does after such an instruction.
        if ((_event & Event.Exit) != 0) return BlockRun.EndsBatch;
        if ((_event & Event.Interrupted) == 0) { Tb++; _retired++; _blockRetired++; }
        _event = Event.None;
        return BlockRun.EndsBatch;
    }

    /// <summary>Compiles the block at <paramref name="cia"/> (or finds the one another vcpu compiled) and marks its first word's
    /// slot with it, unless a store changed the slot meanwhile: here, or on the machine's compile worker while this vcpu runs on
    /// (<see cref="CompiledBlocks.Background"/>).</summary>
    private unsafe void CompileBlockAt(ulong* slot, ulong entry, ulong cia, bool le)
    {
        var blocks = _vm.Blocks!;
        ulong ra = _fetchRaPage | (cia & 0xFFF);
        var memory = _mem;
        if (!blocks.Background) CompileAndMark(blocks, memory, ra, le, (nint)slot, entry);
        else blocks.Request(ra, le, () => CompileAndMark(blocks, memory, ra, le, (nint)slot, entry));
    }

    private static unsafe void CompileAndMark(CompiledBlocks blocks, GuestMemory memory, ulong ra, bool le, nint slot, ulong entry)
    {
        var block = blocks.Find(ra, le);
        if (block is null)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                block = BlockCompiler.Compile(blocks, memory, ra, le);
            }
            catch (Exception e)
            {
                // A compiler bug must not take the process (the worker is shared) or the guest down: the words stay interpreted.
                blocks.NoteFailure(ra, e);
            }
            blocks.NoteCompile(System.Diagnostics.Stopwatch.GetTimestamp() - start);
        }
        if (block is null) return;
        Interlocked.CompareExchange(ref *(ulong*)slot, (entry & ~CompiledBlocks.SlotMask) | ((ulong)block.Index << CompiledBlocks.SlotShift), entry);
    }

    /// <summary>
    /// The fast paths of a block's loads and stores, one method per op with the access's size and form as constants: the
    /// dispatch table's handler of that op (SimulatedVcpu.Dispatch.cs) with cachedOnly, so false (nothing done) leaves the
    /// access to the handler. Called, not
    /// inlined: a block's compile stays the JIT's cheap part (inlining them doubled it), and a call with no stores before it is
    /// most of the saving.
    /// </summary>
    private static class FastAccess
    {
        private const MethodImplOptions Fast = MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining;

        [MethodImpl(Fast)] private static bool Lbz(SimulatedVcpu v, uint i) => v.LoadD(i, 1, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lbzu(SimulatedVcpu v, uint i) => v.LoadD(i, 1, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhz(SimulatedVcpu v, uint i) => v.LoadD(i, 2, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhzu(SimulatedVcpu v, uint i) => v.LoadD(i, 2, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lha(SimulatedVcpu v, uint i) => v.LoadD(i, 2, true, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhau(SimulatedVcpu v, uint i) => v.LoadD(i, 2, true, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwz(SimulatedVcpu v, uint i) => v.LoadD(i, 4, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwzu(SimulatedVcpu v, uint i) => v.LoadD(i, 4, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Ld(SimulatedVcpu v, uint i) => v.LoadDS(i, 8, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Ldu(SimulatedVcpu v, uint i) => v.LoadDS(i, 8, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwa(SimulatedVcpu v, uint i) => v.LoadDS(i, 4, true, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lbzx(SimulatedVcpu v, uint i) => v.LoadX(i, 1, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lbzux(SimulatedVcpu v, uint i) => v.LoadX(i, 1, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhzx(SimulatedVcpu v, uint i) => v.LoadX(i, 2, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhzux(SimulatedVcpu v, uint i) => v.LoadX(i, 2, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhax(SimulatedVcpu v, uint i) => v.LoadX(i, 2, true, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lhaux(SimulatedVcpu v, uint i) => v.LoadX(i, 2, true, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwzx(SimulatedVcpu v, uint i) => v.LoadX(i, 4, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwzux(SimulatedVcpu v, uint i) => v.LoadX(i, 4, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwax(SimulatedVcpu v, uint i) => v.LoadX(i, 4, true, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Lwaux(SimulatedVcpu v, uint i) => v.LoadX(i, 4, true, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Ldx(SimulatedVcpu v, uint i) => v.LoadX(i, 8, false, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Ldux(SimulatedVcpu v, uint i) => v.LoadX(i, 8, false, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stb(SimulatedVcpu v, uint i) => v.StoreD(i, 1, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stbu(SimulatedVcpu v, uint i) => v.StoreD(i, 1, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Sth(SimulatedVcpu v, uint i) => v.StoreD(i, 2, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Sthu(SimulatedVcpu v, uint i) => v.StoreD(i, 2, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stw(SimulatedVcpu v, uint i) => v.StoreD(i, 4, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stwu(SimulatedVcpu v, uint i) => v.StoreD(i, 4, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Std(SimulatedVcpu v, uint i) => v.StoreDS(i, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stdu(SimulatedVcpu v, uint i) => v.StoreDS(i, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stbx(SimulatedVcpu v, uint i) => v.StoreX(i, 1, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stbux(SimulatedVcpu v, uint i) => v.StoreX(i, 1, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Sthx(SimulatedVcpu v, uint i) => v.StoreX(i, 2, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Sthux(SimulatedVcpu v, uint i) => v.StoreX(i, 2, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stwx(SimulatedVcpu v, uint i) => v.StoreX(i, 4, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stwux(SimulatedVcpu v, uint i) => v.StoreX(i, 4, true, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stdx(SimulatedVcpu v, uint i) => v.StoreX(i, 8, false, cachedOnly: true);
        [MethodImpl(Fast)] private static bool Stdux(SimulatedVcpu v, uint i) => v.StoreX(i, 8, true, cachedOnly: true);
    }

    /// <summary>
    /// Builds a block's code, each instruction's semantics kept in one place. A block is a run of consecutive words of one page,
    /// through conditional branches, up to an unconditional branch, the first word a block does not contain, the page's end or
    /// <see cref="MaxLength"/>; a relative branch to a word of the block is a jump inside it (a loop runs in the compiled code),
    /// any other target leaves it. An ALU instruction is a call of the instance method its handler calls, with the word and the
    /// handler's other arguments as constants, which the JIT inlines and folds the field extraction of. A load or store takes an
    /// inlined fast path (<see cref="DataCacheHit"/>) and otherwise calls the dispatch table's own handler, as do traps and
    /// branches to a register. Before a handler's call the block sets what the interpreter sets before any instruction (CIA,
    /// NIP = CIA + 4, the timebase and the retired count, which watchpoints read) and after it leaves when the instruction raised
    /// an event; after a store it leaves when the store changed the block's own page, and a jump back leaves when any store did.
    /// Each basic block (from a jump target or the entry to the next one, or to a branch) runs only when all of it fits in the
    /// limit the caller gives: a block ends where the interpreter would end a batch.
    /// </summary>
    private static class BlockCompiler
    {
        /// <summary>The most instructions in a block: a compile costs more as it grows, and a kernel's hot loops are shorter.</summary>
        public const int MaxLength = 48;

        /// <summary>
        /// The JIT inlines some 400 methods into one block and then calls the rest, whatever their attributes; an ALU
        /// instruction's inlined code is ~10 of them (field extraction, register accessors, CR and XER setters), the add family's
        /// ~20. A block counts what it asks for and, past this allowance, calls the table's handler (one call, its decode and
        /// switch folded) instead of leaving the JIT a half-inlined generic method to call.
        /// </summary>
        private const int InlineAllowance = 360;

        private static int InlineCost(Call call) => call.Method?.Name == nameof(AddFamily) ? 40 : 16;

        /// <summary>Plain: reads and writes registers only; Raises: can raise an interrupt or an exit event (a trap); Load, Store: a
        /// fast path, else the handler, which can raise (a store can change code); B, Bc: relative branches, run inline when they
        /// stay in the block; ToRegister: bclr, bcctr.</summary>
        private enum Role { Plain, Raises, Load, Store, B, Bc, ToRegister }

        private static readonly FieldInfo CiaField = Field(nameof(_cia)), NipField = Field(nameof(Nip)), TbField = Field(nameof(Tb)),
            RetiredField = Field(nameof(_retired)), EventField = Field(nameof(_event)), FetchEaPageField = Field(nameof(_fetchEaPage));

        private static readonly MethodInfo BranchTakenMethod =
            typeof(SimulatedVcpu).GetMethod(nameof(BranchTaken), BindingFlags.Instance | BindingFlags.NonPublic)!;

        private static FieldInfo Field(string name) =>
            typeof(SimulatedVcpu).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingFieldException(nameof(SimulatedVcpu), name);

        /// <summary>A method's call: the method and its arguments after the vcpu, each the word (null) or a constant; for a load or
        /// store, <see cref="Alternative"/> is the fast path tried first (returns whether it did the access); for an ALU
        /// instruction, the table's handler, called instead once the block has spent its inlining (<see cref="InlineAllowance"/>).</summary>
        private sealed record Call(Role Role, MethodInfo? Method, int?[] Constants, Call? Alternative = null);

        /// <summary>The call of every <see cref="Op"/> a block contains, built once: an expression tree costs tens of microseconds.</summary>
        private static readonly Call?[] Calls = Enum.GetValues<Op>().Select(op =>
                Inlined(op) is { } call ? Lower(call, Role.Plain) with { Alternative = new Call(Role.Plain, TableHandler(op), [(int)op, null]) }
                : op is Op.Sync or Op.Isync or Op.Eieio or Op.CacheHint ? new Call(Role.Plain, null, []) // nothing to do (Handlers.Nothing)
                : RoleOf(op) is { } role
                    ? new Call(role, TableHandler(op), [(int)op, null], FastPath(op) is { } fast ? new Call(role, fast, [null]) : null)
                : null)
            .ToArray();

        /// <summary>The static handler the dispatch table holds for <paramref name="op"/> (found by its address).</summary>
        private static unsafe MethodInfo TableHandler(Op op)
        {
            nint address = (nint)Handlers.Table[(int)op];
            return typeof(Handlers).GetMethods(BindingFlags.NonPublic | BindingFlags.Static)
                .Single(m => m.GetParameters().Length == 3 && m.MethodHandle.GetFunctionPointer() == address);
        }

        private static Call Lower(LambdaExpression call, Role role)
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
            return new Call(role, body.Method, constants);
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
                ? Role.Store : Role.Load,
            Op.Dcbz => Role.Store,
            Op.Tw or Op.Td or Op.Twi or Op.Tdi => Role.Raises,
            Op.B => Role.B,
            Op.Bc => Role.Bc,
            Op.Bclr or Op.Bcctr => Role.ToRegister,
            _ => null,
        };

        /// <summary>The fast path of a load or store (a method of <see cref="FastAccess"/> of the op's name); null for the
        /// byte-reversed forms and dcbz, which always take the handler.</summary>
        private static MethodInfo? FastPath(Op op) =>
            typeof(FastAccess).GetMethod(op.ToString(), BindingFlags.Static | BindingFlags.NonPublic);

        /// <summary>Whether a block ends after this branch: it always leaves (b, a branch-always bc, bclr or bcctr).</summary>
        private static bool Unconditional(Role role, uint word) =>
            role == Role.B || role is Role.Bc or Role.ToRegister && (new FormB(word).BO & 0x14) == 0x14;

        /// <summary>The index of the word a relative branch (no link) at index <paramref name="k"/> goes to, when it is a word of the
        /// block of <paramref name="count"/> words; -1 for any other target.</summary>
        private static int InternalTarget(Role role, uint word, int k, int count)
        {
            long displacement;
            if (role == Role.B) { var b = new FormI(word); if (b.AA || b.LK) return -1; displacement = b.LI; }
            else if (role == Role.Bc) { var b = new FormB(word); if (b.AA || b.LK) return -1; displacement = b.BD; }
            else return -1;
            long target = k + displacement / 4;
            return target >= 0 && target < count ? (int)target : -1;
        }

        /// <summary>The block from real address <paramref name="ra"/> in this byte order; null when it has fewer than two
        /// instructions.</summary>
        public static unsafe CompiledBlock? Compile(CompiledBlocks blocks, GuestMemory memory, ulong ra, bool le)
        {
            uint* generationAt = memory.CodeGeneration(ra);
            uint generation = Volatile.Read(ref *generationAt); // before the words: a store after this read changes it
            var words = new List<(uint Word, Call Call)>();
            for (ulong a = ra, end = (ra & ~0xFFFUL) + 0x1000; words.Count < MaxLength && a < end; a += 4)
            {
                uint word = (uint)memory.Load(a, 4, le);
                if (CallFor(OpcodeTable.Decode(word), word) is not { } call) break;
                words.Add((word, call));
                if (Unconditional(call.Role, word)) break;
                // A loop's branch back ends the block too: what follows the loop runs once, as a block of its own, and the loop
                // stays within what the JIT inlines (it stops after ~400 inlinees, ~30 instructions).
                int to = InternalTarget(call.Role, word, words.Count - 1, words.Count);
                if (to >= 0 && to < words.Count - 1) break;
            }
            // A loop that starts after the first word (a function's loop after its prologue) is a block of its own: the block
            // ends before its head, so the loop is entered from its head as the next block and stays short (the JIT stops
            // inlining after ~400 inlinees, ~30 instructions: the loop's body would be its calls otherwise).
            int n = words.Count;
            for (int k = 0; k < words.Count; k++)
                if (InternalTarget(words[k].Call.Role, words[k].Word, k, words.Count) is var t and > 0 && t <= k && t < n) n = t;
            if (n < words.Count) words.RemoveRange(n, words.Count - n);
            if (n < 2) return null;

            // Basic blocks start at the entry, at every jump target and after every conditional branch.
            var target = new int[n];
            var starts = new bool[n + 1];
            starts[0] = starts[n] = true;
            for (int k = 0; k < n; k++)
            {
                target[k] = InternalTarget(words[k].Call.Role, words[k].Word, k, n);
                if (target[k] >= 0) starts[target[k]] = true;
                if (words[k].Call.Role is Role.Bc or Role.ToRegister) starts[k + 1] = true;
            }

            var method = new DynamicMethod($"block_{ra:x}_{(le ? "le" : "be")}", typeof(long),
                [typeof(SimulatedVcpu), typeof(ulong), typeof(long)], typeof(SimulatedVcpu), skipVisibility: true);
            var il = method.GetILGenerator();
            var e = new Emitter(il, generationAt, generation);
            il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, TbField); il.Emit(OpCodes.Stloc, e.Tb);
            il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, RetiredField); il.Emit(OpCodes.Stloc, e.Retired);
            var labels = Enumerable.Range(0, n).Select(k => starts[k] ? il.DefineLabel() : (Label?)null).ToArray();
            int first = 1;
            while (!starts[first]) first++;
            int s = 0, length = 0, inlined = 0;
            for (int k = 0; k < n; k++)
            {
                var (word, call) = words[k];
                if (starts[k])
                {
                    s = k;
                    length = 1;
                    while (!starts[k + length]) length++;
                    il.MarkLabel(labels[k]!.Value);
                    // if (count + length > limit) { NIP = this word; return count; }
                    var fits = il.DefineLabel();
                    il.Emit(OpCodes.Ldloc, e.Count); il.Emit(OpCodes.Ldc_I8, (long)length); il.Emit(OpCodes.Add);
                    il.Emit(OpCodes.Ldarg_2); il.Emit(OpCodes.Ble, fits);
                    e.Leave(4 * k, 0);
                    il.MarkLabel(fits);
                }
                int j = k - s;
                bool last = starts[k + 1];
                switch (call.Role)
                {
                    case Role.Plain:
                        if (call.Alternative is { } handler && (inlined += InlineCost(call)) > InlineAllowance)
                            e.Call(handler, word);
                        else e.Call(call, word);
                        break;
                    case Role.Raises:
                        e.Handler(call, word, k, j);
                        break;
                    case Role.Load or Role.Store:
                    {
                        var done = il.DefineLabel();
                        if (call.Alternative is { } fast) { e.Call(fast, word); il.Emit(OpCodes.Brtrue, done); }
                        e.Handler(call, word, k, j);
                        il.MarkLabel(done);
                        // A store into the block's own page (self-modifying code): the words after it may have changed.
                        if (call.Role == Role.Store) e.IfPageChanged(() => e.Leave(4 * k + 4, j + 1));
                        break;
                    }
                    case Role.B or Role.Bc when target[k] >= 0:
                    {
                        var notTaken = il.DefineLabel();
                        if (call.Role == Role.Bc)
                        {
                            var b = new FormB(word);
                            il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldc_I4, b.BO); il.Emit(OpCodes.Ldc_I4, b.BI); il.Emit(OpCodes.Ldc_I4_1);
                            il.Emit(OpCodes.Call, BranchTakenMethod);
                            il.Emit(OpCodes.Brfalse, notTaken);
                        }
                        e.AddCount(length);
                        // A jump back: leave if a store changed the page since the block was compiled (another vcpu's, a
                        // debugger's breakpoint), as the interpreter would fetch the new word.
                        int to = target[k];
                        if (to <= k) e.IfPageChanged(() => e.Leave(4 * to, 0));
                        il.Emit(OpCodes.Br, labels[to]!.Value);
                        if (call.Role == Role.Bc)
                        {
                            il.MarkLabel(notTaken);
                            e.AddCount(length);
                            if (k + 1 == n) e.Leave(4 * n, 0); // else on to the next word, a basic block's start
                        }
                        break;
                    }
                    default: // a branch that leaves the block when taken; bclr, bcctr
                        e.Handler(call, word, k, j);
                        e.FallThrough(length, 4 * k + 4, k + 1 < n && !Unconditional(call.Role, word));
                        break;
                }
                if (last && call.Role is Role.Plain or Role.Raises or Role.Load or Role.Store)
                {
                    e.AddCount(length);
                    if (k + 1 == n) e.Leave(4 * n, 0);
                }
            }
            var code = method.CreateDelegate<BlockCode>();
            RuntimeHelpers.PrepareDelegate(code); // the JIT's compile now, counted as the compile's
            return blocks.Add(ra, le, generationAt, generation, first, code);
        }

        /// <summary>The IL a block's instructions share; <see cref="Count"/> is the instructions the block retired before the
        /// current basic block.</summary>
        private sealed unsafe class Emitter(ILGenerator il, uint* generationAt, uint generation)
        {
            public readonly LocalBuilder Tb = il.DeclareLocal(typeof(ulong)), Retired = il.DeclareLocal(typeof(long)),
                Count = il.DeclareLocal(typeof(long));

            /// <summary>The method's call, its vcpu the block's argument, the word and every other argument constants.</summary>
            public void Call(Call call, uint word)
            {
                if (call.Method is null) return;
                il.Emit(OpCodes.Ldarg_0);
                foreach (int? constant in call.Constants) il.Emit(OpCodes.Ldc_I4, constant ?? unchecked((int)word));
                il.Emit(OpCodes.Call, call.Method);
            }

            /// <summary>The dispatch table's handler of the word at index <paramref name="k"/> (the <paramref name="j"/>th of its
            /// basic block), with what ExecuteBatch holds before it; leaves when it raised an event.</summary>
            public void Handler(Call call, uint word, int k, int j)
            {
                StoreAddress(CiaField, 4 * k);
                StoreAddress(NipField, 4 * k + 4);
                StoreCount(TbField, Tb, j);
                StoreCount(RetiredField, Retired, j);
                il.Emit(OpCodes.Ldarg_0);
                foreach (int? constant in call.Constants) il.Emit(OpCodes.Ldc_I4, constant ?? unchecked((int)word));
                il.Emit(OpCodes.Call, call.Method!);
                var next = il.DefineLabel();
                il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, EventField); il.Emit(OpCodes.Brfalse, next);
                ReturnCount(j);
                il.MarkLabel(next);
                // The handler's translation flushed this vcpu's translation cache (another vcpu's tlbie, say): the interpreter
                // translates its next fetch again (a page remapped or made no-execute), so the block leaves, the instruction
                // retired and NIP what it set.
                var samePage = il.DefineLabel();
                il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, FetchEaPageField);
                il.Emit(OpCodes.Ldarg_1); il.Emit(OpCodes.Ldc_I8, ~0xFFFL); il.Emit(OpCodes.And);
                il.Emit(OpCodes.Beq, samePage);
                ReturnCount(j + 1);
                il.MarkLabel(samePage);
            }

            /// <summary>After a branch not taken inside the block (or one the handler ran): the basic block is retired; on to the
            /// next word when NIP is it and there is one, else leave with the NIP the branch set.</summary>
            public void FallThrough(int length, int next, bool hasNext)
            {
                AddCount(length);
                if (hasNext)
                {
                    var on = il.DefineLabel();
                    il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Ldfld, NipField);
                    il.Emit(OpCodes.Ldarg_1); il.Emit(OpCodes.Ldc_I8, (long)next); il.Emit(OpCodes.Add);
                    il.Emit(OpCodes.Beq, on);
                    ReturnCount(0);
                    il.MarkLabel(on);
                }
                else ReturnCount(0);
            }

            /// <summary>NIP = CIA of the entry + <paramref name="offset"/>; return Count + <paramref name="j"/>.</summary>
            public void Leave(int offset, int j)
            {
                StoreAddress(NipField, offset);
                ReturnCount(j);
            }

            /// <summary>Emits <paramref name="leave"/> behind a test of the page's code generation.</summary>
            public void IfPageChanged(Action leave)
            {
                var unchanged = il.DefineLabel();
                il.Emit(OpCodes.Ldc_I8, (long)generationAt); il.Emit(OpCodes.Conv_U);
                il.Emit(OpCodes.Volatile); il.Emit(OpCodes.Ldind_U4);
                il.Emit(OpCodes.Ldc_I4, unchecked((int)generation)); il.Emit(OpCodes.Beq, unchanged);
                leave();
                il.MarkLabel(unchanged);
            }

            public void AddCount(int length)
            {
                il.Emit(OpCodes.Ldloc, Count); il.Emit(OpCodes.Ldc_I8, (long)length); il.Emit(OpCodes.Add); il.Emit(OpCodes.Stloc, Count);
            }

            private void ReturnCount(int j)
            {
                il.Emit(OpCodes.Ldloc, Count);
                if (j != 0) { il.Emit(OpCodes.Ldc_I8, (long)j); il.Emit(OpCodes.Add); }
                il.Emit(OpCodes.Ret);
            }

            /// <summary>vcpu.field = cia + offset.</summary>
            private void StoreAddress(FieldInfo field, int offset)
            {
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Ldarg_1); il.Emit(OpCodes.Ldc_I8, (long)offset); il.Emit(OpCodes.Add);
                il.Emit(OpCodes.Stfld, field);
            }

            /// <summary>vcpu.field = the field's value at the block's entry + Count + <paramref name="j"/>.</summary>
            private void StoreCount(FieldInfo field, LocalBuilder atEntry, int j)
            {
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Ldloc, atEntry); il.Emit(OpCodes.Ldloc, Count); il.Emit(OpCodes.Add);
                if (j != 0) { il.Emit(OpCodes.Ldc_I8, (long)j); il.Emit(OpCodes.Add); }
                il.Emit(OpCodes.Stfld, field);
            }
        }
    }
}
