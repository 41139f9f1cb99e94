using System.Reflection;
using System.Reflection.Emit;
using ActorStep.Isa;

namespace ActorStep.Machine.Cpu;

public sealed partial class SimulatedVcpu
{
    private static partial class BlockCompiler
    {
        /// <summary>
        /// The IL of a block (<see cref="BlockCompiler"/>): its registers in locals, the instructions it emits itself, the
        /// calls of the interpreter's methods and handlers with the registers they name written to the vcpu before and read
        /// back after, and the one exit that writes back what the block changed. <see cref="Count"/> is the instructions the
        /// block retired before the current basic block; every way out sets <see cref="Ret"/> and NIP and jumps to the exit.
        /// </summary>
        private sealed unsafe class Emitter
        {
            private readonly ILGenerator _il;
            private readonly bool _mode64, _littleEndian, _hostAccess;
            private readonly uint* _generationAt;
            private readonly uint _generation;
            private readonly RegisterUse _use;
            private readonly LocalBuilder?[] _r = new LocalBuilder?[32];
            private readonly Label _exit;

            // Leave's shared tail: a way out at a known word sets _leaveAt to its offset from the entry (bits 8 and up, signed)
            // and the instructions its basic block retired before it (bits 0-7), and jumps there; the tail sets NIP and Ret. Each
            // way out is then three IL instructions instead of ten: the JIT's time follows the IL's size, and a block has a way
            // out at every load and store.
            private readonly LocalBuilder _leaveAt;
            private readonly Label _leave;
            private bool _leaves;

            public readonly LocalBuilder Tb, Retired, Count, Ret, Ea, Value, T0, T1, T2, Res, Cr, Xer, Lr, Ctr;

            // XER[CA] (0 or 1) and XER[CA32] (bit 32 of Ca32, the rest of it any value: a sum's a ^ b ^ result, whose bit 32 is
            // the carry into it, extracted only where XER is written) apart from XER: a carry chain (adde after subfc, as in
            // mpihelp's loops) goes from one add to the next without a merge into XER and a shift out of it; XER's own CA and
            // CA32 bits are stale in the Xer local and are merged in whenever the vcpu's XER is written.
            public readonly LocalBuilder Ca, Ca32;

            // XER[SO] (0 or 1) as every compare ORs it into its CR field, taken from Xer where Xer is read from the vcpu (the
            // block writes XER only through the methods it calls, after which it reads XER back).
            private readonly LocalBuilder _so;

            // The vcpu's host translations (HostTranslation) and the state bits their tags need now (HostKey of the MSR, read at
            // the entry and after each handler), the entry a load or store looks at, and the value the call's path gives back
            // (a local of its own: its address is taken, which would keep Value on the stack).
            private readonly LocalBuilder _hostAt, _key, _entry, _out;

            // Compares in lazy form (CompareInto): a compare into CR field f keeps its operands, biased so that one unsigned
            // compare orders them (a signed compare's sign bits flipped), in _cmpA[f] and _cmpB[f] and sets _lazy[f] = 1
            // instead of building the field in Cr; the field is built from them (Materialize) only where CR goes to the vcpu
            // (the exit, a call) or an instruction reads Cr's bits, and a conditional branch on such a field in the basic block
            // of its compare compares the operands themselves (_known[f]). Locals for the fields the block compares into
            // (RegisterUse.CompareFields, from the first pass: a loop can reach a call with a field made lazy further on).
            private readonly LocalBuilder?[] _cmpA = new LocalBuilder?[8], _cmpB = new LocalBuilder?[8], _lazy = new LocalBuilder?[8];
            private readonly bool[] _known = new bool[8];

            private static readonly MethodInfo HostKeyMethod = typeof(SimulatedVcpu).GetMethod(nameof(HostKey),
                BindingFlags.Static | BindingFlags.NonPublic)!;
            private static readonly MethodInfo[] Reverse = [.. new[] { typeof(ushort), typeof(uint), typeof(ulong) }
                .Select(t => typeof(System.Buffers.Binary.BinaryPrimitives).GetMethod("ReverseEndianness", [t])!)];

            private static readonly MethodInfo[] Loads = Sized("Load"), Stores = Sized("Store");

            private static MethodInfo[] Sized(string name) =>
                [.. new[] { 1, 2, 4, 8 }.Select(n => typeof(BlockAccess).GetMethod($"{name}{n}")!)];

            public Emitter(ILGenerator il, BlockMode mode, bool hostAccess, uint* generationAt, uint generation, RegisterUse use)
            {
                _il = il;
                _mode64 = mode.Mode64;
                _hostAccess = hostAccess && mode.Mode64; // a 32-bit mode block's loads and stores take the call (which leaves)
                _littleEndian = mode.LittleEndian;
                _generationAt = generationAt;
                _generation = generation;
                _use = use;
                Tb = il.DeclareLocal(typeof(ulong));
                Retired = il.DeclareLocal(typeof(long));
                Count = il.DeclareLocal(typeof(long));
                Ret = il.DeclareLocal(typeof(long));
                Ea = il.DeclareLocal(typeof(ulong));
                Value = il.DeclareLocal(typeof(ulong));
                T0 = il.DeclareLocal(typeof(ulong));
                T1 = il.DeclareLocal(typeof(ulong));
                T2 = il.DeclareLocal(typeof(ulong));
                Res = il.DeclareLocal(typeof(ulong));
                Cr = il.DeclareLocal(typeof(uint));
                Xer = il.DeclareLocal(typeof(ulong));
                Ca = il.DeclareLocal(typeof(ulong));
                Ca32 = il.DeclareLocal(typeof(ulong));
                _so = il.DeclareLocal(typeof(uint));
                Lr = il.DeclareLocal(typeof(ulong));
                Ctr = il.DeclareLocal(typeof(ulong));
                _hostAt = il.DeclareLocal(typeof(nint));
                _key = il.DeclareLocal(typeof(ulong));
                _entry = il.DeclareLocal(typeof(nint));
                _out = il.DeclareLocal(typeof(ulong));
                _exit = il.DefineLabel();
                _leaveAt = il.DeclareLocal(typeof(int));
                _leave = il.DefineLabel();
                for (int f = 0; f < 8; f++)
                {
                    if ((use.CompareFields & (1 << f)) == 0) continue;
                    _cmpA[f] = il.DeclareLocal(typeof(ulong));
                    _cmpB[f] = il.DeclareLocal(typeof(ulong));
                    _lazy[f] = il.DeclareLocal(typeof(int));
                }
            }

            // ---- registers --------------------------------------------------------------------------------------------------

            private LocalBuilder R(int n) => _r[n] ??= _il.DeclareLocal(typeof(ulong));

            /// <summary>Pushes GPR n (its local).</summary>
            private void Ld(int n)
            {
                _use.Used |= 1u << n;
                _il.Emit(OpCodes.Ldloc, R(n));
            }

            /// <summary>Pushes (RA|0): 0 for register 0.</summary>
            private void LdRa0(int n)
            {
                if (n == 0) I8(0);
                else Ld(n);
            }

            /// <summary>Pops into GPR n (its local).</summary>
            private void St(int n)
            {
                _use.Used |= 1u << n;
                _use.Written |= 1u << n;
                _il.Emit(OpCodes.Stloc, R(n));
            }

            private void StCr() { _use.Cr = true; _il.Emit(OpCodes.Stloc, Cr); }
            private void StLr() { _use.Lr = true; _il.Emit(OpCodes.Stloc, Lr); }
            private void StCtr() { _use.Ctr = true; _il.Emit(OpCodes.Stloc, Ctr); }

            private void GprAddress(int n)
            {
                _il.Emit(LdVcpu);
                _il.Emit(OpCodes.Ldflda, GprField);
                if (n != 0) { _il.Emit(OpCodes.Ldc_I4, 8 * n); _il.Emit(OpCodes.Add); }
            }

            private void WriteBack(int n)
            {
                GprAddress(n);
                _il.Emit(OpCodes.Ldloc, R(n));
                _il.Emit(OpCodes.Stind_I8);
            }

            private void ReadBack(int n)
            {
                GprAddress(n);
                _il.Emit(OpCodes.Ldind_I8);
                _il.Emit(OpCodes.Stloc, R(n));
            }

            /// <summary>CR and XER, and with <paramref name="all"/> LR and CTR, back to the vcpu where the block changed
            /// them.</summary>
            private void WriteBackSpecials(bool all = true)
            {
                if (_use.Cr) { MaterializeAll(); StoreField(CrField, Cr); }
                if (_use.Xer)
                {
                    _il.Emit(LdVcpu);
                    _il.Emit(OpCodes.Ldloc, Xer); I8(unchecked((long)~(Isa.Xer.CA | Isa.Xer.CA32))); _il.Emit(OpCodes.And);
                    _il.Emit(OpCodes.Ldloc, Ca); _il.Emit(OpCodes.Ldc_I4, 29); _il.Emit(OpCodes.Shl); _il.Emit(OpCodes.Or);
                    _il.Emit(OpCodes.Ldloc, Ca32); _il.Emit(OpCodes.Ldc_I4, 14); _il.Emit(OpCodes.Shr_Un); I8((long)Isa.Xer.CA32);
                    _il.Emit(OpCodes.And); _il.Emit(OpCodes.Or);
                    _il.Emit(OpCodes.Stfld, XerField);
                }
                if (all && _use.Lr) StoreField(LrField, Lr);
                if (all && _use.Ctr) StoreField(CtrField, Ctr);
            }

            private void ReadBackSpecials(bool all = true)
            {
                LoadField(CrField, Cr);
                Array.Clear(_known); // what WriteBackSpecials wrote (no field lazy), or the entry's (none lazy yet)
                LoadField(XerField, Xer);
                _il.Emit(OpCodes.Ldloc, Xer); _il.Emit(OpCodes.Ldc_I4, 29); _il.Emit(OpCodes.Shr_Un); I8(1); _il.Emit(OpCodes.And);
                _il.Emit(OpCodes.Stloc, Ca);
                _il.Emit(OpCodes.Ldloc, Xer); _il.Emit(OpCodes.Ldc_I4, 14); _il.Emit(OpCodes.Shl); _il.Emit(OpCodes.Stloc, Ca32);
                _il.Emit(OpCodes.Ldloc, Xer); _il.Emit(OpCodes.Ldc_I4, 31); _il.Emit(OpCodes.Shr_Un); _il.Emit(OpCodes.Conv_U4);
                _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.And); _il.Emit(OpCodes.Stloc, _so);
                if (!all) return;
                LoadField(LrField, Lr);
                LoadField(CtrField, Ctr);
            }

            private void StoreField(FieldInfo field, LocalBuilder local)
            {
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldloc, local); _il.Emit(OpCodes.Stfld, field);
            }

            private void LoadField(FieldInfo field, LocalBuilder local)
            {
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, field); _il.Emit(OpCodes.Stloc, local);
            }

            /// <summary>The GPR fields an instruction's word can name (bits 6–10, 11–15, 16–20; for a D-form the last is part
            /// of the immediate, which costs a needless write-back at most): every instruction a block leaves to a method names
            /// its GPRs there.</summary>
            private static uint Named(uint word) =>
                (1u << (int)((word >> 21) & 31)) | (1u << (int)((word >> 16) & 31)) | (1u << (int)((word >> 11) & 31));

            /// <summary>Before a method reads the vcpu: the registers the word names that the block changed, and CR, XER (and
            /// LR, CTR for a handler: the interpreter's fixed-point methods a block calls never touch those two).</summary>
            private void WriteBackFor(uint word, bool handler)
            {
                for (uint named = Named(word) & _use.Written; named != 0; named &= named - 1)
                    WriteBack(System.Numerics.BitOperations.TrailingZeroCount(named));
                WriteBackSpecials(all: handler);
            }

            /// <summary>After it: what it may have changed.</summary>
            private void ReadBackFor(uint word, bool handler)
            {
                for (uint named = Named(word); named != 0; named &= named - 1)
                    ReadBack(System.Numerics.BitOperations.TrailingZeroCount(named));
                ReadBackSpecials(all: handler);
            }

            // ---- entry and exit ---------------------------------------------------------------------------------------------

            public void Prologue()
            {
                LoadField(TbField, Tb);
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, RetiredField); _il.Emit(OpCodes.Stloc, Retired);
                for (int n = 0; n < 32; n++)
                    if ((_use.Used & (1u << n)) != 0) ReadBack(n);
                ReadBackSpecials();
                if (!_hostAccess) return;
                LoadField(HostTranslationsAtField, _hostAt);
                ReadKey();
            }

            /// <summary>The tag bits of the host translations that answer in the vcpu's MSR now.</summary>
            private void ReadKey()
            {
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, MsrField); _il.Emit(OpCodes.Call, HostKeyMethod); _il.Emit(OpCodes.Stloc, _key);
            }

            /// <summary>The exit every way out jumps to: the registers the block wrote go back to the vcpu.</summary>
            public void Epilogue()
            {
                if (_leaves)
                {
                    // NIP = CIA + offset; Ret = Count + j; on into the exit.
                    _il.MarkLabel(_leave);
                    _il.Emit(LdVcpu);
                    _il.Emit(LdCia); _il.Emit(OpCodes.Ldloc, _leaveAt); _il.Emit(OpCodes.Ldc_I4_8); _il.Emit(OpCodes.Shr);
                    _il.Emit(OpCodes.Conv_I8); _il.Emit(OpCodes.Add);
                    _il.Emit(OpCodes.Stfld, NipField);
                    _il.Emit(OpCodes.Ldloc, Count);
                    _il.Emit(OpCodes.Ldloc, _leaveAt); _il.Emit(OpCodes.Ldc_I4, 0xFF); _il.Emit(OpCodes.And); _il.Emit(OpCodes.Conv_I8);
                    _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Stloc, Ret);
                }
                _il.MarkLabel(_exit);
                for (int n = 0; n < 32; n++)
                    if ((_use.Written & (1u << n)) != 0) WriteBack(n);
                WriteBackSpecials();
                _il.Emit(OpCodes.Ldloc, Ret);
                _il.Emit(OpCodes.Ret);
            }

            /// <summary>NIP = CIA of the entry + <paramref name="offset"/>; leave with Count + <paramref name="j"/>
            /// retired.</summary>
            public void Leave(int offset, int j)
            {
                // A block's words lie within a page of its entry, and a basic block holds at most MaxLength of them.
                System.Diagnostics.Debug.Assert(offset is >= -0x1000 and <= 0x1000 && j is >= 0 and < 256);
                _il.Emit(OpCodes.Ldc_I4, offset << 8 | j);
                _il.Emit(OpCodes.Stloc, _leaveAt);
                _il.Emit(OpCodes.Br, _leave);
                _leaves = true;
            }

            private void LeaveWith(int j)
            {
                _il.Emit(OpCodes.Ldloc, Count);
                if (j != 0) { _il.Emit(OpCodes.Ldc_I8, (long)j); _il.Emit(OpCodes.Add); }
                _il.Emit(OpCodes.Stloc, Ret);
                _il.Emit(OpCodes.Br, _exit);
            }

            public void AddCount(int length)
            {
                _il.Emit(OpCodes.Ldloc, Count); _il.Emit(OpCodes.Ldc_I8, (long)length); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stloc, Count);
            }

            /// <summary>Emits <paramref name="leave"/> behind a test of the page's code generation.</summary>
            public void IfPageChanged(Action leave)
            {
                var unchanged = _il.DefineLabel();
                _il.Emit(OpCodes.Ldc_I8, (long)_generationAt); _il.Emit(OpCodes.Conv_U);
                _il.Emit(OpCodes.Volatile); _il.Emit(OpCodes.Ldind_U4);
                _il.Emit(OpCodes.Ldc_I4, unchecked((int)_generation)); _il.Emit(OpCodes.Beq, unchanged);
                leave();
                _il.MarkLabel(unchanged);
            }

            /// <summary>Emits <paramref name="leave"/> behind a test of the machine's translation generation against the vcpu's
            /// (a tlbie since the host translations were made: the block's loads and stores would use them).</summary>
            public void IfTranslationsChanged(Action leave)
            {
                if (!_mode64) return; // a 32-bit mode block's loads and stores leave
                var unchanged = _il.DefineLabel();
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, MachineField);
                _il.Emit(OpCodes.Volatile); _il.Emit(OpCodes.Ldfld, MachineGenerationField);
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, VcpuGenerationField);
                _il.Emit(OpCodes.Beq, unchanged);
                leave();
                _il.MarkLabel(unchanged);
            }

            // ---- calls ------------------------------------------------------------------------------------------------------

            /// <summary>The interpreter's method for the word, its vcpu the block's argument, the word and every other argument
            /// constants.</summary>
            public void Call(Call call, uint word)
            {
                if (call.Method is null) return;
                CallAround(call, word, handler: false);
            }

            /// <summary>The method's call with the registers the word names (and CR, XER; LR, CTR too for a handler) written to
            /// the vcpu before and read back after.</summary>
            private void CallAround(Call call, uint word, bool handler)
            {
                WriteBackFor(word, handler);
                _il.Emit(LdVcpu);
                foreach (int? constant in call.Constants) _il.Emit(OpCodes.Ldc_I4, constant ?? unchecked((int)word));
                _il.Emit(OpCodes.Call, call.Method!);
                ReadBackFor(word, handler);
            }

            /// <summary>The dispatch table's handler of the word at <paramref name="offset"/> from the entry (the <paramref
            /// name="j"/>th of its basic block), with what ExecuteBatch holds before it; leaves when it raised an event.</summary>
            public void Handler(Call call, uint word, int offset, int j)
            {
                StoreAddress(CiaField, offset);
                StoreAddress(NipField, offset + 4);
                StoreCount(TbField, Tb, j);
                StoreCount(RetiredField, Retired, j);
                CallAround(call, word, handler: true);
                var next = _il.DefineLabel();
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, EventField); _il.Emit(OpCodes.Brfalse, next);
                LeaveWith(j);
                _il.MarkLabel(next);
                // The handler's translation flushed this vcpu's translation cache (another vcpu's tlbie, say): the interpreter
                // translates its next fetch again (a page remapped or made no-execute), so the block leaves, the instruction
                // retired and NIP what it set.
                var samePage = _il.DefineLabel();
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, FetchEaPageField);
                _il.Emit(LdCia); _il.Emit(OpCodes.Ldc_I8, ~0xFFFL); _il.Emit(OpCodes.And);
                _il.Emit(OpCodes.Beq, samePage);
                LeaveWith(j + 1);
                _il.MarkLabel(samePage);
                // A handler may change the MSR (mtmsrd) or invalidate translations (tlbie, H_REGISTER_PROC_TBL).
                IfTranslationsChanged(() => LeaveWith(j + 1));
                if (_hostAccess) ReadKey();
            }

            /// <summary>After a branch the handler ran: the basic block is retired; on to the next word when NIP is it and
            /// there is one, else leave with the NIP the branch set.</summary>
            public void FallThrough(int length, int next, bool hasNext)
            {
                AddCount(length);
                if (hasNext)
                {
                    var on = _il.DefineLabel();
                    _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldfld, NipField);
                    _il.Emit(LdCia); _il.Emit(OpCodes.Ldc_I8, (long)next); _il.Emit(OpCodes.Add);
                    _il.Emit(OpCodes.Beq, on);
                    LeaveWith(0);
                    _il.MarkLabel(on);
                }
                else LeaveWith(0);
            }

            /// <summary>vcpu.field = cia + offset.</summary>
            private void StoreAddress(FieldInfo field, int offset)
            {
                _il.Emit(LdVcpu);
                _il.Emit(LdCia); _il.Emit(OpCodes.Ldc_I8, (long)offset); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stfld, field);
            }

            /// <summary>vcpu.field = the field's value at the block's entry + Count + <paramref name="j"/>.</summary>
            private void StoreCount(FieldInfo field, LocalBuilder atEntry, int j)
            {
                _il.Emit(LdVcpu);
                _il.Emit(OpCodes.Ldloc, atEntry); _il.Emit(OpCodes.Ldloc, Count); _il.Emit(OpCodes.Add);
                if (j != 0) { _il.Emit(OpCodes.Ldc_I8, (long)j); _il.Emit(OpCodes.Add); }
                _il.Emit(OpCodes.Stfld, field);
            }

            // ---- loads and stores -------------------------------------------------------------------------------------------

            /// <summary>
            /// A load's or store's common case: the EA from the block's registers (as LoadD/LoadDS/LoadX and the stores form
            /// it), the translation cache's hit or the walk (<see cref="BlockAccess"/>), the value to or from the register,
            /// RA = EA for an update form. Otherwise (one across pages, a watchpoint set, 32-bit mode, a fault, a flush) the
            /// block leaves before the instruction (the <paramref name="j"/>th of its basic block, at <paramref name="offset"/>
            /// from the entry): the interpreter runs it, and the word after it may start a block.
            /// </summary>
            public void FastAccess(Access access, bool store, uint word, int offset, int j)
            {
                int rt = (int)(word >> 21) & 31, ra = (int)(word >> 16) & 31, rb = (int)(word >> 11) & 31;
                LdRa0(ra);
                if (access.Form == 'X') Ld(rb);
                else I8(access.Form == 'S' ? (short)(word & 0xFFFC) : (short)word);
                _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stloc, Ea);
                int size = access.Size == 8 ? 3 : access.Size == 4 ? 2 : access.Size - 1;
                var hit = _il.DefineLabel();
                if (_mode64) _use.Accesses = true;
                if (_hostAccess) HostAccess(access.Size, store, rt, hit);
                var called = _il.DefineLabel();
                _il.Emit(LdVcpu);
                _il.Emit(OpCodes.Ldloc, Ea);
                if (store) Ld(rt);
                else _il.Emit(OpCodes.Ldloca, _out);
                _il.Emit(OpCodes.Call, store ? Stores[size] : Loads[size]);
                _il.Emit(OpCodes.Brtrue, called);
                Leave(offset, j);
                _il.MarkLabel(called);
                if (!store) { _il.Emit(OpCodes.Ldloc, _out); _il.Emit(OpCodes.Stloc, Value); }
                _il.MarkLabel(hit);
                if (!store)
                {
                    _il.Emit(OpCodes.Ldloc, Value);
                    if (access.Signed)
                    {
                        _il.Emit(access.Size == 2 ? OpCodes.Conv_I2 : OpCodes.Conv_I4);
                        _il.Emit(OpCodes.Conv_I8);
                    }
                    St(rt);
                }
                if (access.Update) { _il.Emit(OpCodes.Ldloc, Ea); St(ra); }
            }

            /// <summary>
            /// The access through the vcpu's host translation of the EA's page (<see cref="HostTranslation"/>): its tag equal to
            /// the page of the access's last byte with the state bits now (so an access across pages does not match), for a
            /// store the page never executed; then the bytes at EA + the entry's addend, in the block's byte order (a load's
            /// into Value), and on to <paramref name="hit"/>. Otherwise on to the call after it.
            /// </summary>
            private void HostAccess(int size, bool store, int rt, Label hit)
            {
                var miss = _il.DefineLabel();
                // entry = the table + ((EA >> 12) & 255) * its size, in the stores' half for a store (HostEntry)
                const int shift = HostTranslation.SizeShift;
                _il.Emit(OpCodes.Ldloc, _hostAt);
                _il.Emit(OpCodes.Ldloc, Ea); _il.Emit(OpCodes.Ldc_I4, 12 - shift); _il.Emit(OpCodes.Shr_Un);
                I8((HostTranslationCount - 1) << shift); _il.Emit(OpCodes.And);
                if (store) { I8(HostTranslationCount << shift); _il.Emit(OpCodes.Add); }
                _il.Emit(OpCodes.Conv_I); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stloc, _entry);
                _il.Emit(OpCodes.Ldloc, _entry); _il.Emit(OpCodes.Ldind_I8);
                _il.Emit(OpCodes.Ldloc, Ea);
                if (size > 1) { I8(size - 1); _il.Emit(OpCodes.Add); }
                I8(~0xFFFL); _il.Emit(OpCodes.And); _il.Emit(OpCodes.Ldloc, _key); _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Bne_Un, miss);
                if (store)
                {
                    _il.Emit(OpCodes.Ldloc, _entry); _il.Emit(OpCodes.Ldc_I4, HostTranslation.DecodedOffset); _il.Emit(OpCodes.Add);
                    _il.Emit(OpCodes.Ldind_I); _il.Emit(OpCodes.Ldind_U1); _il.Emit(OpCodes.Brtrue, miss);
                }
                // the host address: EA + the addend
                _il.Emit(OpCodes.Ldloc, _entry); _il.Emit(OpCodes.Ldc_I4, HostTranslation.AddendOffset); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Ldind_I8);
                _il.Emit(OpCodes.Ldloc, Ea); _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Conv_U);
                bool swap = !_littleEndian && size > 1;
                if (store)
                {
                    Ld(rt);
                    if (size == 2) _il.Emit(OpCodes.Conv_U2);
                    if (size == 4) _il.Emit(OpCodes.Conv_U4);
                    if (swap) _il.Emit(OpCodes.Call, Reverse[size == 2 ? 0 : size == 4 ? 1 : 2]);
                    _il.Emit(OpCodes.Unaligned, (byte)1);
                    _il.Emit(size switch { 1 => OpCodes.Stind_I1, 2 => OpCodes.Stind_I2, 4 => OpCodes.Stind_I4, _ => OpCodes.Stind_I8 });
                }
                else
                {
                    _il.Emit(OpCodes.Unaligned, (byte)1);
                    _il.Emit(size switch { 1 => OpCodes.Ldind_U1, 2 => OpCodes.Ldind_U2, 4 => OpCodes.Ldind_U4, _ => OpCodes.Ldind_I8 });
                    if (swap) _il.Emit(OpCodes.Call, Reverse[size == 2 ? 0 : size == 4 ? 1 : 2]);
                    if (size != 8) _il.Emit(OpCodes.Conv_U8);
                    _il.Emit(OpCodes.Stloc, Value);
                }
                _il.Emit(OpCodes.Br, hit);
                _il.MarkLabel(miss);
            }

            // ---- branches ---------------------------------------------------------------------------------------------------

            /// <summary>BranchTaken on the block's CTR and CR: jumps to <paramref name="notTaken"/> unless the branch is taken;
            /// CTR decremented when BO says so.</summary>
            public void Condition(int bo, int bi, Label notTaken)
            {
                if ((bo & 0x04) == 0)
                {
                    _il.Emit(OpCodes.Ldloc, Ctr); I8(1); _il.Emit(OpCodes.Sub); StCtr();
                    _il.Emit(OpCodes.Ldloc, Ctr);
                    if (!_mode64) { I8(0xFFFFFFFF); _il.Emit(OpCodes.And); }
                    I8(0);
                    _il.Emit((bo & 0x02) != 0 ? OpCodes.Bne_Un : OpCodes.Beq, notTaken);
                }
                if ((bo & 0x10) == 0)
                {
                    int f = bi >> 2;
                    if (_known[f])
                    {
                        // The field's compare is in this basic block: its bit from the operands (LT, GT, EQ, SO).
                        switch (bi & 3)
                        {
                            case 0: _il.Emit(OpCodes.Ldloc, _cmpA[f]!); _il.Emit(OpCodes.Ldloc, _cmpB[f]!); _il.Emit(OpCodes.Clt_Un); break;
                            case 1: _il.Emit(OpCodes.Ldloc, _cmpA[f]!); _il.Emit(OpCodes.Ldloc, _cmpB[f]!); _il.Emit(OpCodes.Cgt_Un); break;
                            case 2: _il.Emit(OpCodes.Ldloc, _cmpA[f]!); _il.Emit(OpCodes.Ldloc, _cmpB[f]!); _il.Emit(OpCodes.Ceq); break;
                            default: _il.Emit(OpCodes.Ldloc, _so); break;
                        }
                    }
                    else
                    {
                        Materialize(f);
                        _il.Emit(OpCodes.Ldloc, Cr); _il.Emit(OpCodes.Ldc_I4, 31 - bi); _il.Emit(OpCodes.Shr_Un);
                        _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.And);
                    }
                    _il.Emit((bo & 0x08) != 0 ? OpCodes.Brfalse : OpCodes.Brtrue, notTaken);
                }
            }

            /// <summary>A branch that leaves the block when taken (b, bc, bclr, bcctr), as Branch, BranchConditional and
            /// BranchConditionalToRegister: the basic block retired, LR set for a link, NIP the target when taken; not taken,
            /// on to the next word in the IL, or <paramref name="orElse"/> when given (out at the next word, or a jump to it).
            /// False for what the handler must run (bcctr with a CTR decrement: illegal).</summary>
            public bool BranchOut(Op op, uint word, int offset, int length, Action? orElse)
            {
                int bo = (int)(word >> 21) & 31, bi = (int)(word >> 16) & 31;
                if (op == Op.Bcctr && (bo & 0x04) == 0) return false;
                // The target, from LR or CTR before the branch changes them.
                switch (op)
                {
                    case Op.B or Op.Bc:
                    {
                        long displacement = op == Op.B ? new FormI(word).LI : new FormB(word).BD;
                        if ((word & 2) != 0) I8(displacement);
                        else { _il.Emit(LdCia); I8(offset + displacement); _il.Emit(OpCodes.Add); }
                        break;
                    }
                    default:
                        _il.Emit(OpCodes.Ldloc, op == Op.Bclr ? Lr : Ctr); I8(~3L); _il.Emit(OpCodes.And);
                        break;
                }
                if (!_mode64) { I8(0xFFFFFFFF); _il.Emit(OpCodes.And); }
                _il.Emit(OpCodes.Stloc, T2);
                if ((word & 1) != 0) { _il.Emit(LdCia); I8(offset + 4L); _il.Emit(OpCodes.Add); StLr(); }
                AddCount(length);
                var notTaken = _il.DefineLabel();
                bool always = op == Op.B;
                if (!always) Condition(op == Op.Bcctr ? bo | 0x04 : bo, bi, notTaken);
                _il.Emit(LdVcpu); _il.Emit(OpCodes.Ldloc, T2); _il.Emit(OpCodes.Stfld, NipField);
                LeaveWith(0);
                if (!always)
                {
                    _il.MarkLabel(notTaken);
                    orElse?.Invoke();
                }
                return true;
            }

            // ---- fixed-point instructions --------------------------------------------------------------------------------

            private void I8(long value) => _il.Emit(OpCodes.Ldc_I8, value);

            /// <summary>
            /// The instruction in IL of its own, the interpreter's semantics (SimulatedVcpu.Integer.cs, Branch.cs, System.cs)
            /// with the word's fields constants; false for one the block leaves to the interpreter's method (OE = 1, the rarer
            /// ops).
            /// </summary>
            public bool Instruction(Op op, uint word)
            {
                int rt = (int)(word >> 21) & 31, ra = (int)(word >> 16) & 31, rb = (int)(word >> 11) & 31;
                bool rc = (word & 1) != 0, oe = (word & 0x400) != 0;
                long si = (short)word;
                ulong ui = word & 0xFFFF;
                switch (op)
                {
                    case Op.Addi: LdRa0(ra); I8(si); _il.Emit(OpCodes.Add); St(rt); return true;
                    case Op.Addis: LdRa0(ra); I8(si << 16); _il.Emit(OpCodes.Add); St(rt); return true;
                    case Op.Mulli: Ld(ra); I8(si); _il.Emit(OpCodes.Mul); St(rt); return true;
                    case Op.Addic or Op.AddicRc or Op.Subfic:
                        Ld(ra);
                        if (op == Op.Subfic) _il.Emit(OpCodes.Not);
                        _il.Emit(OpCodes.Stloc, T0);
                        I8(si); _il.Emit(OpCodes.Stloc, T1);
                        I8(op == Op.Subfic ? 1 : 0); _il.Emit(OpCodes.Stloc, T2);
                        Sum(rt, setsCa: true, rc: op == Op.AddicRc, carryIn: op == Op.Subfic ? 1 : 0);
                        return true;
                    case Op.Add or Op.Addc or Op.Adde or Op.Addme or Op.Addze or Op.Subf or Op.Subfc or Op.Subfe or Op.Subfme
                        or Op.Subfze or Op.Neg:
                    {
                        if (oe) return false;
                        if (op == Op.Subfe && ra == rb)
                        {
                            // subfe x,y,y (a compiler's "carry as 0 or -1"): ~y + y + CA is CA - 1, and its carry out of bit 0
                            // and of bit 32 is CA itself; the generic sum's carries cost a dozen instructions more.
                            _il.Emit(OpCodes.Ldloc, Ca); I8(1); _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Stloc, Res);
                            _il.Emit(OpCodes.Ldloc, Ca); _il.Emit(OpCodes.Ldc_I4, 32); _il.Emit(OpCodes.Shl); _il.Emit(OpCodes.Stloc, Ca32);
                            _use.Xer = true;
                            _il.Emit(OpCodes.Ldloc, Res);
                            St(rt);
                            if (rc) Cr0();
                            return true;
                        }
                        bool subtract = op is Op.Subf or Op.Subfc or Op.Subfe or Op.Subfme or Op.Subfze or Op.Neg;
                        bool extended = op is Op.Adde or Op.Addme or Op.Addze or Op.Subfe or Op.Subfme or Op.Subfze;
                        Ld(ra);
                        if (subtract) _il.Emit(OpCodes.Not);
                        _il.Emit(OpCodes.Stloc, T0);
                        if (op is Op.Addme or Op.Subfme) I8(-1);
                        else if (op is Op.Addze or Op.Subfze or Op.Neg) I8(0);
                        else Ld(rb);
                        _il.Emit(OpCodes.Stloc, T1);
                        int? carryIn = extended ? null : op is Op.Subf or Op.Subfc or Op.Neg ? 1 : 0;
                        if (carryIn is int c) I8(c);
                        else _il.Emit(OpCodes.Ldloc, Ca);
                        _il.Emit(OpCodes.Stloc, T2);
                        Sum(rt, setsCa: op is not (Op.Add or Op.Subf or Op.Neg), rc, carryIn);
                        return true;
                    }
                    case Op.Mullw or Op.Mulld:
                        if (oe) return false;
                        Ld(ra);
                        if (op == Op.Mullw) { _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); }
                        Ld(rb);
                        if (op == Op.Mullw) { _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); }
                        _il.Emit(OpCodes.Mul);
                        Result(rt, rc);
                        return true;
                    case Op.And or Op.Andc or Op.Or or Op.Orc or Op.Xor or Op.Nand or Op.Nor or Op.Eqv:
                        Ld(rt); // RS
                        Ld(rb);
                        if (op is Op.Andc or Op.Orc) _il.Emit(OpCodes.Not);
                        _il.Emit(op switch
                        {
                            Op.And or Op.Andc or Op.Nand => OpCodes.And,
                            Op.Or or Op.Orc or Op.Nor => OpCodes.Or,
                            _ => OpCodes.Xor,
                        });
                        if (op is Op.Nand or Op.Nor or Op.Eqv) _il.Emit(OpCodes.Not);
                        Result(ra, rc);
                        return true;
                    case Op.Andi or Op.Andis:
                        Ld(rt); I8((long)(op == Op.Andis ? ui << 16 : ui)); _il.Emit(OpCodes.And);
                        Result(ra, rc: true);
                        return true;
                    case Op.Ori or Op.Oris or Op.Xori or Op.Xoris:
                        Ld(rt); I8((long)(op is Op.Oris or Op.Xoris ? ui << 16 : ui));
                        _il.Emit(op is Op.Ori or Op.Oris ? OpCodes.Or : OpCodes.Xor);
                        St(ra);
                        return true;
                    case Op.Extsb or Op.Extsh or Op.Extsw:
                        Ld(rt);
                        _il.Emit(op == Op.Extsb ? OpCodes.Conv_I1 : op == Op.Extsh ? OpCodes.Conv_I2 : OpCodes.Conv_I4);
                        _il.Emit(OpCodes.Conv_I8);
                        Result(ra, rc);
                        return true;
                    case Op.Rlwinm or Op.Rlwimi:
                    {
                        var m = new FormM(word);
                        ulong mask = Bits.Mask(m.MB + 32, m.ME + 32);
                        // ROTL32: the low word in both halves, rotated.
                        Ld(m.RS); I8(0xFFFFFFFF); _il.Emit(OpCodes.And);
                        Ld(m.RS); _il.Emit(OpCodes.Ldc_I4, 32); _il.Emit(OpCodes.Shl);
                        _il.Emit(OpCodes.Or);
                        RotateAndMask(m.SH, mask, insertInto: op == Op.Rlwimi ? m.RA : -1);
                        Result(m.RA, m.Rc);
                        return true;
                    }
                    case Op.Rldicl or Op.Rldicr or Op.Rldic or Op.Rldimi:
                    {
                        var md = new FormMD(word);
                        int sh = md.SH, mb = md.MB;
                        ulong mask = op switch
                        {
                            Op.Rldicl => Bits.Mask(mb, 63),
                            Op.Rldicr => Bits.Mask(0, mb),
                            _ => Bits.Mask(mb, 63 - sh),
                        };
                        Ld(md.RS);
                        RotateAndMask(sh, mask, insertInto: op == Op.Rldimi ? md.RA : -1);
                        Result(md.RA, md.Rc);
                        return true;
                    }
                    case Op.Sld or Op.Srd or Op.Slw or Op.Srw:
                    {
                        bool word32 = op is Op.Slw or Op.Srw;
                        // (n & 0x40, or 0x20 for a word) != 0 ? 0 : the shift by n's low bits
                        Ld(rt);
                        if (op == Op.Srw) { I8(0xFFFFFFFF); _il.Emit(OpCodes.And); }
                        Ld(rb); _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Ldc_I4, word32 ? 31 : 63); _il.Emit(OpCodes.And);
                        _il.Emit(op is Op.Sld or Op.Slw ? OpCodes.Shl : OpCodes.Shr_Un);
                        if (op == Op.Slw) { I8(0xFFFFFFFF); _il.Emit(OpCodes.And); }
                        Ld(rb); _il.Emit(OpCodes.Ldc_I4, word32 ? 5 : 6); _il.Emit(OpCodes.Shr_Un);
                        I8(1); _il.Emit(OpCodes.And);
                        I8(1); _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.And);
                        Result(ra, rc);
                        return true;
                    }
                    case Op.Cmp or Op.Cmpl or Op.Cmpi or Op.Cmpli:
                    {
                        bool wide = ((word >> 21) & 1) != 0, signed = op is Op.Cmp or Op.Cmpi;
                        Ld(ra); Narrow(wide, signed); _il.Emit(OpCodes.Stloc, T0);
                        if (op is Op.Cmp or Op.Cmpl) { Ld(rb); Narrow(wide, signed); }
                        else I8(op == Op.Cmpi ? si : (long)ui);
                        _il.Emit(OpCodes.Stloc, T1);
                        CompareInto((int)(word >> 23) & 7, signed);
                        return true;
                    }
                    case Op.Mfspr or Op.Mtspr:
                    {
                        int spr = new FormXFX(word).SPR;
                        if (spr is not (Spr.LR or Spr.CTR)) return false;
                        if (op == Op.Mfspr) { _il.Emit(OpCodes.Ldloc, spr == Spr.LR ? Lr : Ctr); St(rt); }
                        else { Ld(rt); if (spr == Spr.LR) StLr(); else StCtr(); }
                        return true;
                    }
                    default:
                        return false;
                }
            }

            /// <summary>A 32-bit compare's operand: the low word sign- or zero-extended.</summary>
            private void Narrow(bool wide, bool signed)
            {
                if (wide) return;
                if (signed) { _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); }
                else { I8(0xFFFFFFFF); _il.Emit(OpCodes.And); }
            }

            /// <summary>Rotates the value on the stack left by <paramref name="sh"/> and masks it; with <paramref
            /// name="insertInto"/> ≥ 0, ORs in that register's bits outside the mask (rlwimi, rldimi).</summary>
            private void RotateAndMask(int sh, ulong mask, int insertInto)
            {
                ulong low = sh == 0 ? 0 : ulong.MaxValue >> (64 - sh); // the bits the rotation brings round from the top
                if (sh != 0 && (mask & ~low) == 0)
                {
                    // Only bits that came round (srdi, clrrdi's kin): a right shift, masked unless the mask is all of them.
                    _il.Emit(OpCodes.Ldc_I4, 64 - sh); _il.Emit(OpCodes.Shr_Un);
                    if (mask != low) { I8(unchecked((long)mask)); _il.Emit(OpCodes.And); }
                }
                else if (sh != 0 && (mask & low) == 0)
                {
                    // None that came round (sldi and its kin): a left shift, masked unless the mask is all the rest.
                    _il.Emit(OpCodes.Ldc_I4, sh); _il.Emit(OpCodes.Shl);
                    if (mask != ~low) { I8(unchecked((long)mask)); _il.Emit(OpCodes.And); }
                }
                else
                {
                    if (sh != 0)
                    {
                        _il.Emit(OpCodes.Stloc, T0);
                        _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ldc_I4, sh); _il.Emit(OpCodes.Shl);
                        _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ldc_I4, 64 - sh); _il.Emit(OpCodes.Shr_Un);
                        _il.Emit(OpCodes.Or);
                    }
                    if (mask != ulong.MaxValue) { I8(unchecked((long)mask)); _il.Emit(OpCodes.And); }
                }
                if (insertInto >= 0)
                {
                    Ld(insertInto); I8(unchecked((long)~mask)); _il.Emit(OpCodes.And);
                    _il.Emit(OpCodes.Or);
                }
            }

            /// <summary>AddFamily's a + b + cin with T0 = a (complemented for a subtract), T1 = b, T2 = cin: RT, CA and CA32
            /// when the form sets them (the carry out of bit 0 in 64-bit mode, of bit 32 in 32-bit mode; CA32 of bit 32), CR0
            /// for Rc.</summary>
            private void Sum(int rt, bool setsCa, bool rc, int? carryIn = null)
            {
                _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ldloc, T1); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Ldloc, T2); _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stloc, Res);
                if (setsCa)
                {
                    if (_mode64) Carry64(carryIn); else Carry32();
                    _il.Emit(OpCodes.Conv_U8); _il.Emit(OpCodes.Stloc, Ca);
                    // CA32: bit 32 of a ^ b ^ the sum (Carry32's bit, left in place).
                    _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ldloc, T1); _il.Emit(OpCodes.Xor);
                    _il.Emit(OpCodes.Ldloc, Res); _il.Emit(OpCodes.Xor); _il.Emit(OpCodes.Stloc, Ca32);
                    _use.Xer = true;
                }
                _il.Emit(OpCodes.Ldloc, Res);
                St(rt);
                if (rc) Cr0();
            }

            /// <summary>Pushes the carry out of bit 0 (an int 0 or 1): result &lt; a, or cin and result == a; with the carry in
            /// known, one compare: result &lt; a without it, result &lt;= a with it.</summary>
            private void Carry64(int? carryIn)
            {
                _il.Emit(OpCodes.Ldloc, Res); _il.Emit(OpCodes.Ldloc, T0);
                if (carryIn == 0) { _il.Emit(OpCodes.Clt_Un); return; }
                if (carryIn == 1) { _il.Emit(OpCodes.Cgt_Un); _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.Xor); return; }
                _il.Emit(OpCodes.Clt_Un);
                _il.Emit(OpCodes.Ldloc, T2); _il.Emit(OpCodes.Conv_I4);
                _il.Emit(OpCodes.Ldloc, Res); _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ceq);
                _il.Emit(OpCodes.And); _il.Emit(OpCodes.Or);
            }

            /// <summary>Pushes the carry out of bit 32 (an int 0 or 1): the carry into (little-endian) bit 32 of the 64-bit sum,
            /// which is that bit of a ^ b ^ the sum (each bit of a sum is a ^ b ^ the carry into it).</summary>
            private void Carry32()
            {
                _il.Emit(OpCodes.Ldloc, T0); _il.Emit(OpCodes.Ldloc, T1); _il.Emit(OpCodes.Xor);
                _il.Emit(OpCodes.Ldloc, Res); _il.Emit(OpCodes.Xor);
                _il.Emit(OpCodes.Ldc_I4, 32); _il.Emit(OpCodes.Shr_Un); _il.Emit(OpCodes.Conv_I4);
                _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.And);
            }

            /// <summary>Pops the result into <paramref name="rt"/> and, for Rc, sets CR0 from it.</summary>
            private void Result(int rt, bool rc)
            {
                _il.Emit(OpCodes.Stloc, Res);
                _il.Emit(OpCodes.Ldloc, Res);
                St(rt);
                if (rc) Cr0();
            }

            /// <summary>SetCr0 of <see cref="Res"/>: LT/GT/EQ of the result (the whole register in 64-bit mode, the low word in
            /// 32-bit mode) and XER[SO].</summary>
            private void Cr0()
            {
                _il.Emit(OpCodes.Ldloc, Res);
                if (!_mode64) { _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); }
                _il.Emit(OpCodes.Stloc, T0);
                I8(0); _il.Emit(OpCodes.Stloc, T1);
                CompareInto(0, signed: true);
            }

            /// <summary>CR field <paramref name="bf"/> ← LT/GT/EQ of T0 against T1 || XER[SO] (CompareField), in lazy form: the
            /// operands kept (biased for an unsigned order), the field built only where it is needed (<see cref="Materialize"/>).
            /// XER[SO] is the block's until a call, before which every lazy field is built.</summary>
            private void CompareInto(int bf, bool signed)
            {
                _use.Cr = true;
                _use.CompareFields |= 1 << bf;
                if (_cmpA[bf] is not { } a || _cmpB[bf] is not { } b || _lazy[bf] is not { } lazy)
                    return; // the first pass: the field's locals exist from the second on
                _il.Emit(OpCodes.Ldloc, T0);
                if (signed) { I8(long.MinValue); _il.Emit(OpCodes.Xor); }
                _il.Emit(OpCodes.Stloc, a);
                _il.Emit(OpCodes.Ldloc, T1);
                if (signed) { I8(long.MinValue); _il.Emit(OpCodes.Xor); }
                _il.Emit(OpCodes.Stloc, b);
                _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.Stloc, lazy);
                _known[bf] = true;
            }

            /// <summary>Where a basic block begins (other paths may arrive): no field is known lazy from a compare before it.</summary>
            public void Join() => Array.Clear(_known);

            /// <summary>Builds CR field <paramref name="bf"/> in Cr from its compare's operands when it is lazy: LT/GT/EQ of the
            /// biased operands unsigned || XER[SO].</summary>
            private void Materialize(int bf)
            {
                if (_lazy[bf] is not { } lazy) return;
                var a = _cmpA[bf]!;
                var b = _cmpB[bf]!;
                int shift = 28 - 4 * bf;
                var built = _il.DefineLabel();
                _il.Emit(OpCodes.Ldloc, lazy); _il.Emit(OpCodes.Brfalse, built);
                _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Clt_Un);
                _il.Emit(OpCodes.Ldc_I4_3); _il.Emit(OpCodes.Shl);
                _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Cgt_Un);
                _il.Emit(OpCodes.Ldc_I4_2); _il.Emit(OpCodes.Shl); _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Ceq);
                _il.Emit(OpCodes.Ldc_I4_1); _il.Emit(OpCodes.Shl); _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Ldloc, _so); _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Ldc_I4, shift); _il.Emit(OpCodes.Shl);
                _il.Emit(OpCodes.Ldloc, Cr); _il.Emit(OpCodes.Ldc_I4, unchecked((int)~(0xFu << shift))); _il.Emit(OpCodes.And);
                _il.Emit(OpCodes.Or);
                StCr();
                _il.Emit(OpCodes.Ldc_I4_0); _il.Emit(OpCodes.Stloc, lazy);
                _il.MarkLabel(built);
                _known[bf] = false;
            }

            private void MaterializeAll()
            {
                for (int f = 0; f < 8; f++) Materialize(f);
            }
        }
    }
}
