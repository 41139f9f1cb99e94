using System.Linq.Expressions;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using ActorStep.Isa;

namespace ActorStep.Machine.Cpu;

public sealed partial class SimulatedVcpu
{
    /// <summary>
    /// Builds a block's code (machine/README.md, "Block compiler"). A block is a run of consecutive words of one page, through
    /// conditional branches, up to an unconditional branch, the first word a block does not contain, the page's end or
    /// <see cref="MaxLength"/>; a relative branch to a word of the block is a jump inside it (a loop runs in the compiled code),
    /// any other target leaves it.
    /// <para>
    /// The GPRs the block names, CR, XER, LR and CTR live in the method's locals: read from the vcpu at the entry and written
    /// back at the one exit, so the JIT keeps them in host registers and compiles a block in a fraction of the time an inlined
    /// call per instruction took. The hot fixed-point instructions, the loads' and stores' address and the branches are IL of
    /// their own (<see cref="Emitter"/>), each checked instruction by instruction against the interpreter
    /// (BlockCompilerTests); any other instruction a block contains calls the interpreter's method with its word as a constant,
    /// around which the block writes the registers the word names (and CR, XER, LR, CTR) to the vcpu and reads them back.
    /// </para>
    /// A load or store calls <see cref="BlockAccess"/> with the EA (the translation cache's common case, else the walk when it
    /// raises nothing) and otherwise leaves; the byte-reversed forms and dcbz call the dispatch table's handler, as do traps and
    /// the branches the block does not emit itself. Before a handler the block sets
    /// what the interpreter sets before any instruction (CIA, NIP = CIA + 4, the timebase and the retired count, which
    /// watchpoints read) and after it leaves when the instruction raised an event; after a store it leaves when the store changed
    /// the block's own page, and a jump back leaves when any store did. No instruction runs past the limit the caller gives (a
    /// block ends where the interpreter would end a batch): the entry and every basic block a jump goes back to test that the
    /// most any path from there retires before the next such test fits (<see cref="Needs"/>), and leave otherwise.
    /// </summary>
    private static partial class BlockCompiler
    {
        /// <summary>The most instructions in a block: a compile costs more as it grows, and a kernel's hot loops are shorter.</summary>
        public const int MaxLength = 64;

        /// <summary>
        /// The JIT inlines some 400 methods into one method and then calls the rest, whatever their attributes; an instruction
        /// left to the interpreter's method is ~10 of them, the add family's ~20. Past this allowance a block calls the table's
        /// handler (one call, its decode and switch folded) instead of leaving the JIT a half-inlined generic method to call.
        /// </summary>
        private const int InlineAllowance = 360;

        private static int InlineCost(Call call) => call.Method?.Name == nameof(AddFamily) ? 40 : 16;

        /// <summary>Plain: reads and writes registers only; Raises: can raise an interrupt or an exit event (a trap); Load, Store: a
        /// fast path, else the handler, which can raise (a store can change code); B, Bc: relative branches; ToRegister: bclr,
        /// bcctr.</summary>
        private enum Role { Plain, Raises, Load, Store, B, Bc, ToRegister }

        private static readonly FieldInfo CiaField = Field(nameof(_cia)), NipField = Field(nameof(Nip)), TbField = Field(nameof(Tb)),
            RetiredField = Field(nameof(_retired)), EventField = Field(nameof(_event)), FetchEaPageField = Field(nameof(_fetchEaPage)),
            GprField = Field(nameof(Gpr)), CrField = Field(nameof(Cr)), XerField = Field(nameof(Xer)), LrField = Field(nameof(Lr)),
            CtrField = Field(nameof(Ctr)), MsrField = Field(nameof(Msr_)), HostTranslationsAtField = Field(nameof(_hostTranslationsAt)),
            VcpuGenerationField = Field(nameof(_tlbGeneration)), MachineField = Field(nameof(_vm)),
            MachineGenerationField = typeof(SimulatedMachine).GetField("_tlbGeneration", BindingFlags.Instance | BindingFlags.NonPublic)
                ?? throw new MissingFieldException(nameof(SimulatedMachine), "_tlbGeneration");

        // A block's arguments: the delegate's target (the machine's CompiledBlocks: a delegate closed over its first argument is
        // called directly, an open static one through a shuffle thunk), the vcpu, the EA of its first word, the limit and the
        // entry (0: its first word; k: the word at CompiledBlock.EntryOffsets[k - 1]).
        private static readonly OpCode LdVcpu = OpCodes.Ldarg_1, LdCia = OpCodes.Ldarg_2, LdLimit = OpCodes.Ldarg_3;
        private const byte EntryArgument = 4;
        private static readonly Type[] Parameters = [typeof(CompiledBlocks), typeof(SimulatedVcpu), typeof(ulong), typeof(long), typeof(int)];

        private static FieldInfo Field(string name) =>
            typeof(SimulatedVcpu).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingFieldException(nameof(SimulatedVcpu), name);

        /// <summary>A method's call: the method and its arguments after the vcpu, each the word (null) or a constant; for an ALU
        /// instruction, <see cref="Alternative"/> is the table's handler, called instead once the block has spent its inlining
        /// (<see cref="InlineAllowance"/>).</summary>
        private sealed record Call(Role Role, MethodInfo? Method, int?[] Constants, Call? Alternative = null);

        /// <summary>The call of every <see cref="Op"/> a block contains, built once: an expression tree costs tens of microseconds.</summary>
        private static readonly Call?[] Calls = Enum.GetValues<Op>().Select(op =>
                Inlined(op) is { } call ? Lower(call, Role.Plain) with { Alternative = new Call(Role.Plain, TableHandler(op), [(int)op, null]) }
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

        /// <summary>Whether a block can start with the word: it can contain it and it is not a branch that always leaves (such a
        /// block would be one instruction long).</summary>
        public static bool CanStart(Op op, uint word) => CallFor(op, word) is { } call && !Unconditional(call.Role, word);

        /// <summary>The call for a word decoded as <paramref name="op"/>; null for what a block does not contain.</summary>
        private static Call? CallFor(Op op, uint word)
        {
            var call = (int)op < Calls.Length ? Calls[(int)op] : null;
            // LR, CTR and XER only: other SPRs are privileged, read time, or change what a block depends on.
            if (op is Op.Mfspr or Op.Mtspr && new FormXFX(word).SPR is not (Spr.LR or Spr.CTR or Spr.XER)) return null;
            return call;
        }

        /// <summary>What the handler table runs for an ALU <paramref name="op"/> (SimulatedVcpu.Dispatch.cs), as a call with
        /// constant arguments that a block inlines where it does not emit the instruction itself.</summary>
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

        /// <summary>A load's or store's form (D: RA|0 + D, DS: RA|0 + DS, X: RA|0 + RB), size, sign extension and update, for the
        /// ones a block gives a fast path (the byte-reversed forms and dcbz always take the handler).</summary>
        private readonly record struct Access(char Form, int Size, bool Signed, bool Update);

        private static Access? AccessOf(Op op) => op switch
        {
            Op.Lbz or Op.Stb => new('D', 1, false, false),
            Op.Lbzu or Op.Stbu => new('D', 1, false, true),
            Op.Lhz or Op.Sth => new('D', 2, false, false),
            Op.Lhzu or Op.Sthu => new('D', 2, false, true),
            Op.Lha => new('D', 2, true, false),
            Op.Lhau => new('D', 2, true, true),
            Op.Lwz or Op.Stw => new('D', 4, false, false),
            Op.Lwzu or Op.Stwu => new('D', 4, false, true),
            Op.Ld or Op.Std => new('S', 8, false, false),
            Op.Ldu or Op.Stdu => new('S', 8, false, true),
            Op.Lwa => new('S', 4, true, false),
            Op.Lbzx or Op.Stbx => new('X', 1, false, false),
            Op.Lbzux or Op.Stbux => new('X', 1, false, true),
            Op.Lhzx or Op.Sthx => new('X', 2, false, false),
            Op.Lhzux or Op.Sthux => new('X', 2, false, true),
            Op.Lhax => new('X', 2, true, false),
            Op.Lhaux => new('X', 2, true, true),
            Op.Lwzx or Op.Stwx => new('X', 4, false, false),
            Op.Lwzux or Op.Stwux => new('X', 4, false, true),
            Op.Lwax => new('X', 4, true, false),
            Op.Lwaux => new('X', 4, true, true),
            Op.Ldx or Op.Stdx => new('X', 8, false, false),
            Op.Ldux or Op.Stdux => new('X', 8, false, true),
            _ => null,
        };

        /// <summary>Whether a block ends after this branch: it always leaves (b, a branch-always bc, bclr or bcctr).</summary>
        private static bool Unconditional(Role role, uint word) =>
            role == Role.B || role is Role.Bc or Role.ToRegister && (new FormB(word).BO & 0x14) == 0x14;

        /// <summary>The offset from the entry of the word a relative branch without link at offset <paramref name="offset"/>
        /// goes to; null for any other word.</summary>
        private static int? RelativeTarget(Role role, uint word, int offset)
        {
            if (role == Role.B) { var b = new FormI(word); return b.AA || b.LK ? null : offset + (int)b.LI; }
            if (role == Role.Bc) { var b = new FormB(word); return b.AA || b.LK ? null : offset + (int)b.BD; }
            return null;
        }

        /// <summary>A block's words: each with its offset from the entry, and whether it ends a run of consecutive words (a
        /// segment), after which the code goes on at the word after it only by a jump or by leaving.</summary>
        private sealed class Layout
        {
            public readonly List<(uint Word, Call Call)> Words = [];
            public readonly List<int> Offsets = [];
            public readonly List<bool> SegmentEnds = [];
            public readonly Dictionary<int, int> IndexOf = [];

            /// <summary>The index of the word at <paramref name="offset"/> when the block contains it, else -1.</summary>
            public int At(int offset) => IndexOf.TryGetValue(offset, out int k) ? k : -1;

            /// <summary>The index of the word after the one at index <paramref name="k"/> in memory when the block contains it,
            /// else -1.</summary>
            public int After(int k) => At(Offsets[k] + 4);
        }

        /// <summary>
        /// The words of the block at <paramref name="ra"/>: the run of consecutive words from the entry (through conditional
        /// branches, up to an unconditional branch, the first word a block does not contain, the page's end), then the runs that
        /// start at the targets of the block's relative branches inside the same page (a loop's head before the entry, the code
        /// after a loop or a jump over cold code) that a vcpu has fetched since a store last changed them, breadth first, each up
        /// to a word the block already holds, until <see cref="MaxLength"/>. So a function's prologue, its loop and its epilogue
        /// are one block, and a loop whose body calls out returns into a block that runs on to the call again; a path never
        /// taken (an error exit) stays out, as compiling it costs more than the leaving it would save (measured on the Linux
        /// boot: with every target, 30 % more compile time for no fewer exits that matter).
        /// </summary>
        private static Layout Lay(GuestMemory memory, ulong ra, BlockMode mode)
        {
            var layout = new Layout();
            int page = (int)(ra & 0xFFF);
            void Run(int from)
            {
                int count = layout.Words.Count;
                for (int offset = from; layout.Words.Count < MaxLength && page + offset is >= 0 and < 0x1000 && layout.At(offset) < 0; offset += 4)
                {
                    uint word = (uint)memory.Load((ulong)((long)ra + offset), 4, mode.LittleEndian);
                    if (CallFor(OpcodeTable.Decode(word), word) is not { } call) break;
                    layout.IndexOf[offset] = layout.Words.Count;
                    layout.Words.Add((word, call));
                    layout.Offsets.Add(offset);
                    layout.SegmentEnds.Add(false);
                    if (Unconditional(call.Role, word)) break;
                }
                if (layout.Words.Count > count) layout.SegmentEnds[^1] = true;
            }
            Run(0);
            for (int k = 0; k < layout.Words.Count && layout.Words.Count < MaxLength; k++)
                if (RelativeTarget(layout.Words[k].Call.Role, layout.Words[k].Word, layout.Offsets[k]) is int to && layout.At(to) < 0
                    && page + to is >= 0 and < 0x1000 && memory.WasFetched((ulong)((long)ra + to)))
                    Run(to);
            return layout;
        }

        /// <summary>The block from real address <paramref name="ra"/> for <paramref name="mode"/>; null when it has fewer than two
        /// instructions.</summary>
        public static unsafe CompiledBlock? Compile(CompiledBlocks blocks, GuestMemory memory, ulong ra, BlockMode mode, bool hostAccess)
        {
            uint* generationAt = memory.CodeGeneration(ra);
            uint generation = Volatile.Read(ref *generationAt); // before the words: a store after this read changes it
            var layout = Lay(memory, ra, mode);
            var words = layout.Words;
            int n = words.Count;
            if (n < 2) return null;

            // Basic blocks start at the entry, at every jump target (a run's first word among them) and after every
            // conditional branch.
            var target = new int[n];
            var starts = new bool[n + 1];
            starts[0] = starts[n] = true;
            for (int k = 0; k < n; k++)
            {
                target[k] = RelativeTarget(words[k].Call.Role, words[k].Word, layout.Offsets[k]) is int to ? layout.At(to) : -1;
                if (target[k] >= 0) starts[target[k]] = true;
                if (words[k].Call.Role is Role.Bc or Role.ToRegister || layout.SegmentEnds[k]) starts[k + 1] = true;
                // A run that ends at a word the block holds goes on there: a jump.
                if (layout.SegmentEnds[k] && layout.After(k) is var next and >= 0) starts[next] = true;
            }
            var ends = new int[n]; // each basic block's last word, by its first
            for (int k = 0; k < n; k++)
            {
                if (!starts[k]) continue;
                int last = k;
                while (!starts[last + 1]) last++;
                ends[k] = last;
            }
            var (need, most) = Needs(layout, target, starts, ends);
            int[] entries = Entries(layout, target, starts);

            // Twice: the first pass learns which registers the block reads and writes (into RegisterScan, which keeps no IL), the
            // second emits with them known from the start (the entry reads them, a handler's call writes back those it names).
            var registers = new RegisterUse();
            Emit(new RegisterScan(), layout, target, starts, ends, need, entries, mode, hostAccess, generationAt, generation, registers);
            var method = new DynamicMethod($"block_{ra:x}_{(mode.LittleEndian ? "le" : "be")}{(mode.Mode64 ? "" : "_32")}", typeof(long),
                Parameters, typeof(SimulatedVcpu), skipVisibility: true);
            // The IL stream sized for the block at once (~70 bytes a word on the kernel), not doubled from 64 bytes up.
            Emit(method.GetILGenerator(Math.Max(256, 96 * n)), layout, target, starts, ends, need, entries, mode, hostAccess,
                generationAt, generation, registers);
            var code = method.CreateDelegate<BlockCode>(blocks);
            RuntimeHelpers.PrepareDelegate(code); // the JIT's compile now, counted as the compile's
            // Leaving at the end of its first run that does not end with a branch that always leaves, into a word it does not
            // hold, falls into that word.
            int continuesAt = CompiledBlock.NoContinuation;
            for (int k = 0; k < n && continuesAt == CompiledBlock.NoContinuation; k++)
                if (layout.SegmentEnds[k] && !Unconditional(words[k].Call.Role, words[k].Word) && layout.After(k) < 0)
                    continuesAt = layout.Offsets[k] + 4;
            return blocks.Add(ra, mode, generationAt, generation, need[0], continuesAt, hostAccess && mode.Mode64, registers.Accesses, code,
                [.. entries.Select(k => layout.Offsets[k])], [.. entries.Select(k => most[k])]);
        }

        /// <summary>
        /// Where the block tests that what follows fits in its limit, and how much must fit: at the entry and at every basic block
        /// a jump goes back to (a loop's head: every cycle has one), the most instructions any path from there retires before it
        /// meets the next such test or leaves (the basic blocks on its way, whole); 0 elsewhere. So straight code and forward
        /// branches run with no test of their own, and a block near its limit leaves at a test for the interpreter to run what
        /// does not fit, as it leaves at a basic block that does not fit. A path's next basic blocks are taken as the word after
        /// its last one in the block's order, its branch's target and the word after it in memory (a superset of where the code
        /// goes: the most is never less than what runs).
        /// </summary>
        private static (int[] Need, int[] Most) Needs(Layout layout, int[] target, bool[] starts, int[] ends)
        {
            int n = layout.Words.Count;
            var test = new bool[n];
            test[0] = true;
            Span<int> next = stackalloc int[3];
            for (int k = 0; k < n; k++)
            {
                if (!starts[k]) continue;
                foreach (int t in next[..NextBlocks(layout, target, ends[k], next)]) if (t <= ends[k]) test[t] = true;
            }
            // Every next basic block a path goes on to without a test is after this one in the block's order: from the last.
            var most = new int[n];
            for (int k = n - 1; k >= 0; k--)
            {
                if (!starts[k]) continue;
                int after = 0;
                foreach (int t in next[..NextBlocks(layout, target, ends[k], next)]) if (!test[t]) after = Math.Max(after, most[t]);
                most[k] = ends[k] - k + 1 + after;
            }
            var need = (int[])most.Clone();
            for (int k = 0; k < n; k++) if (!test[k]) need[k] = 0;
            return (need, most);
        }

        /// <summary>
        /// The block's other entries (CompiledBlock.EntryOffsets): the starts of its basic blocks after the first, but for those
        /// inside a loop's body (between a jump back and its target), so that each loop keeps one way in and the JIT compiles it as
        /// a loop. A head there (a branch's target, the word after a call's return into the middle of a function the block starts,
        /// a resumption) runs this block from it instead of making a block of its own, which would compile the same words again;
        /// what each retires before its next test of the limit is Needs' most from there.
        /// </summary>
        private static int[] Entries(Layout layout, int[] target, bool[] starts)
        {
            int n = layout.Words.Count;
            var inLoop = new bool[n];
            for (int k = 0; k < n; k++)
            {
                // A jump back from word k: to its branch's target, or at a run's end to the word after it in memory.
                int back = target[k] >= 0 && target[k] <= k ? target[k] : k + 1;
                if (layout.SegmentEnds[k] && layout.After(k) is var after and >= 0 && after <= k) back = Math.Min(back, after);
                for (int i = back + 1; i <= k; i++) inLoop[i] = true;
            }
            return [.. Enumerable.Range(1, n - 1).Where(k => starts[k] && !inLoop[k])];
        }

        /// <summary>Where a path may go on from a basic block ending at index <paramref name="last"/> (<see cref="Needs"/>): the
        /// word after it in the block's order, its branch's target, the word after it in memory; their count in
        /// <paramref name="next"/>.</summary>
        private static int NextBlocks(Layout layout, int[] target, int last, Span<int> next)
        {
            int count = 0;
            if (last + 1 < layout.Words.Count) next[count++] = last + 1;
            if (target[last] >= 0) next[count++] = target[last];
            if (layout.After(last) is var after and >= 0) next[count++] = after;
            return count;
        }

        private static unsafe void Emit(ILGenerator il, Layout layout, int[] target, bool[] starts, int[] ends, int[] need, int[] entries,
            BlockMode mode, bool hostAccess, uint* generationAt, uint generation, RegisterUse registers)
        {
            var words = layout.Words;
            var offsets = layout.Offsets;
            int n = words.Count;
            var e = new Emitter(il, mode, hostAccess, generationAt, generation, registers);
            e.Prologue();
            var labels = Enumerable.Range(0, n).Select(k => starts[k] ? il.DefineLabel() : (Label?)null).ToArray();
            if (entries.Length > 0)
            {
                // Entry k > 0 goes to its basic block; entry 0 (k - 1 out of the switch's range) on to the first word.
                il.Emit(OpCodes.Ldarg_S, EntryArgument); il.Emit(OpCodes.Ldc_I4_1); il.Emit(OpCodes.Sub);
                il.Emit(OpCodes.Switch, entries.Select(k => labels[k]!.Value).ToArray());
            }
            // From the word at index k, on to the word at offset `to` (its basic block retired): a jump when the block holds it
            // (back to a word before it in the IL: only when no store changed the page since the compile, as the interpreter
            // would fetch the new word), else out, NIP that word.
            void GoTo(int to, int k)
            {
                int t = layout.At(to);
                if (t < 0) { e.Leave(to, 0); return; }
                if (t <= k)
                {
                    e.IfPageChanged(() => e.Leave(to, 0));
                    e.IfTranslationsChanged(() => e.Leave(to, 0));
                }
                il.Emit(OpCodes.Br, labels[t]!.Value);
            }
            int s = 0, length = 0, inlined = 0;
            for (int k = 0; k < n; k++)
            {
                var (word, call) = words[k];
                int offset = offsets[k];
                bool segmentEnd = layout.SegmentEnds[k];
                if (starts[k])
                {
                    s = k;
                    length = ends[k] - k + 1;
                    il.MarkLabel(labels[k]!.Value);
                    e.Join();
                    if (need[k] > 0)
                    {
                        // if (count + what must fit from here > limit) leave at this word
                        var fits = il.DefineLabel();
                        il.Emit(OpCodes.Ldloc, e.Count); il.Emit(OpCodes.Ldc_I8, (long)need[k]); il.Emit(OpCodes.Add);
                        il.Emit(LdLimit); il.Emit(OpCodes.Ble, fits);
                        e.Leave(offset, 0);
                        il.MarkLabel(fits);
                    }
                }
                int j = k - s;
                bool last = starts[k + 1];
                var op = OpcodeTable.Decode(word);
                switch (call.Role)
                {
                    case Role.Plain:
                        if (e.Instruction(op, word)) break;
                        if (call.Alternative is { } handler && (inlined += InlineCost(call)) > InlineAllowance) e.Call(handler, word);
                        else e.Call(call, word);
                        break;
                    case Role.Raises:
                        e.Handler(call, word, offset, j);
                        break;
                    case Role.Load or Role.Store:
                    {
                        // The common case inline; otherwise the block leaves before the instruction, which the interpreter runs.
                        if (AccessOf(op) is { } access) e.FastAccess(access, call.Role == Role.Store, word, offset, j);
                        else e.Handler(call, word, offset, j);
                        // A store into the block's own page (self-modifying code): the words after it may have changed.
                        if (call.Role == Role.Store) e.IfPageChanged(() => e.Leave(offset + 4, j + 1));
                        break;
                    }
                    case Role.B or Role.Bc when target[k] >= 0:
                    {
                        var notTaken = il.DefineLabel();
                        if (call.Role == Role.Bc) e.Condition(new FormB(word).BO, new FormB(word).BI, notTaken);
                        e.AddCount(length);
                        GoTo(offsets[target[k]], k);
                        if (call.Role == Role.Bc)
                        {
                            il.MarkLabel(notTaken);
                            e.AddCount(length);
                            if (segmentEnd) GoTo(offset + 4, k); // else on to the next word, a basic block's start
                        }
                        break;
                    }
                    default: // a branch that leaves the block when taken
                    {
                        bool always = Unconditional(call.Role, word);
                        // Not taken: on to the next word in the IL, or where the run's next word is.
                        Action? notTaken = always ? () => e.Leave(offset + 4, 0) : segmentEnd ? () => GoTo(offset + 4, k) : null;
                        if (!e.BranchOut(op, word, offset, length, notTaken))
                        {
                            e.Handler(call, word, offset, j);
                            e.FallThrough(length, offset + 4, !segmentEnd && !always);
                        }
                        break;
                    }
                }
                if (last && call.Role is Role.Plain or Role.Raises or Role.Load or Role.Store)
                {
                    e.AddCount(length);
                    if (segmentEnd) GoTo(offset + 4, k);
                }
            }
            e.Epilogue();
        }

        /// <summary>The GPRs a block reads into locals and those it writes in them (bit n: GPR n), and whether it writes CR, XER,
        /// LR, CTR in theirs.</summary>
        private sealed class RegisterUse
        {
            public uint Used, Written;
            public bool Cr, Xer, Lr, Ctr;
            /// <summary>The CR fields a compare (or a record form) writes (bit f: field f), kept in lazy form.</summary>
            public int CompareFields;
            /// <summary>A load or store host translations would serve (64-bit mode).</summary>
            public bool Accesses;
        }
    }
}
