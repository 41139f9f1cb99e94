using System.Runtime.CompilerServices;
using ActorStep.Isa;

namespace ActorStep.Machine.Cpu;

public sealed partial class SimulatedVcpu
{
    /// <summary>Dispatch on the decoded <see cref="Op"/>: one indirect call through <see cref="Handlers"/>' table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void Execute(Op op, uint i) => Handlers.Table[(ushort)op](this, op, i);

    /// <summary>Builds the dispatch table now, if it is not built: before ExecuteBatch is compiled (by HotCode, or at its first
    /// call: optimised at once, the host sets TieredCompilationQuickJit=false), so that with the class initialised then the
    /// table's address is a constant in its code; without it, a load and an initialisation check at every instruction. A
    /// vcpu's constructor and HotCode both call it.</summary>
    internal static void BuildDispatchTable() => RuntimeHelpers.RunClassConstructor(typeof(Handlers).TypeHandle);

    /// <summary>
    /// One static handler per opcode (or per family that decodes its opcode itself), reached through a table of function pointers
    /// indexed by <see cref="Op"/>: the dispatch loop makes one indirect call per instruction, with no switch and no frame of its
    /// own between it and the handler. The hottest families (add/subtract-from, logical, unary, rotate, shift, fixed-point loads and
    /// stores) are inlined here with their opcode, size and form constant, so each handler is the family's code with its inner
    /// switch folded away. Opcodes not listed (FP, VMX, VSX beyond the first rows) go to <see cref="Default"/>. Each handler is
    /// compiled fully optimised (AggressiveOptimization), as a process starts (<see cref="HotCode"/>) or else at its first call:
    /// called through a pointer it gathers no profile for the tiered JIT anyway, and a kernel's early boot meets new
    /// instructions for a long while, each of which would otherwise hold every handler at tier 0 until the JIT has been idle
    /// (measured: ~4 % of a boot in tier-0 handlers).
    /// </summary>
    private static unsafe class Handlers
    {
        /// <summary>The wrappers are reached through the table, or called by compiled blocks for loads, stores and branches
        /// (SimulatedVcpu.Blocks.cs), where inlining them would multiply the JIT's work per block for little gain.</summary>
        private const MethodImplOptions Wrapper = MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining;

        /// <summary>The table, indexed by every <see cref="Op"/> value, in native memory the process keeps: a static readonly pointer
        /// is a constant to the optimising JIT, so the dispatch is one load and one call, with no bounds check (the decoder
        /// yields only <see cref="Op"/> values).</summary>
        internal static readonly delegate*<SimulatedVcpu, Op, uint, void>* Table = Build();

        private static delegate*<SimulatedVcpu, Op, uint, void>* Build()
        {
            int length = Enum.GetValues<Op>().Max(o => (int)o) + 1;
            var t = (delegate*<SimulatedVcpu, Op, uint, void>*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)length, (nuint)sizeof(nint));
            for (int k = 0; k < length; k++) t[k] = &Default;
            t[(int)Op.Illegal] = &Illegal;
            // Fixed-point arithmetic (SimulatedVcpu.Integer.cs)
            t[(int)Op.Addi] = &Addi;
            t[(int)Op.Addis] = &Addis;
            t[(int)Op.Addic] = &Addic;
            t[(int)Op.AddicRc] = &AddicRc;
            t[(int)Op.Subfic] = &Subfic;
            t[(int)Op.Mulli] = &Mulli;
            t[(int)Op.Add] = &Add;
            t[(int)Op.Addc] = &Addc;
            t[(int)Op.Adde] = &Adde;
            t[(int)Op.Addme] = &Addme;
            t[(int)Op.Addze] = &Addze;
            t[(int)Op.Subf] = &Subf;
            t[(int)Op.Subfc] = &Subfc;
            t[(int)Op.Subfe] = &Subfe;
            t[(int)Op.Subfme] = &Subfme;
            t[(int)Op.Subfze] = &Subfze;
            t[(int)Op.Neg] = &Neg;
            t[(int)Op.Mullw] = &Mullw;
            t[(int)Op.Mulld] = &Mulld;
            t[(int)Op.Mulhw] = &Mulhw;
            t[(int)Op.Mulhwu] = &Mulhwu;
            t[(int)Op.Mulhd] = &Mulhd;
            t[(int)Op.Mulhdu] = &Mulhdu;
            t[(int)Op.Divw] = &Divw;
            t[(int)Op.Divwu] = &Divwu;
            t[(int)Op.Divd] = &Divd;
            t[(int)Op.Divdu] = &Divdu;
            t[(int)Op.Cmpi] = &Cmpi;
            t[(int)Op.Cmpli] = &Cmpli;
            t[(int)Op.Cmp] = &Cmp;
            t[(int)Op.Cmpl] = &Cmpl;
            t[(int)Op.Andi] = &Andi;
            t[(int)Op.Andis] = &Andis;
            t[(int)Op.Ori] = &Ori;
            t[(int)Op.Oris] = &Oris;
            t[(int)Op.Xori] = &Xori;
            t[(int)Op.Xoris] = &Xoris;
            t[(int)Op.And] = &And;
            t[(int)Op.Andc] = &Andc;
            t[(int)Op.Or] = &Or;
            t[(int)Op.Orc] = &Orc;
            t[(int)Op.Xor] = &Xor;
            t[(int)Op.Nand] = &Nand;
            t[(int)Op.Nor] = &Nor;
            t[(int)Op.Eqv] = &Eqv;
            t[(int)Op.Cmpb] = &Cmpb;
            t[(int)Op.Extsb] = &Extsb;
            t[(int)Op.Extsh] = &Extsh;
            t[(int)Op.Extsw] = &Extsw;
            t[(int)Op.Cntlzw] = &Cntlzw;
            t[(int)Op.Cntlzd] = &Cntlzd;
            t[(int)Op.Popcntb] = &Popcntb;
            t[(int)Op.Popcntw] = &Popcntw;
            t[(int)Op.Popcntd] = &Popcntd;
            t[(int)Op.Rlwinm] = &Rlwinm;
            t[(int)Op.Rlwnm] = &Rlwnm;
            t[(int)Op.Rlwimi] = &Rlwimi;
            t[(int)Op.Rldicl] = &Rldicl;
            t[(int)Op.Rldicr] = &Rldicr;
            t[(int)Op.Rldic] = &Rldic;
            t[(int)Op.Rldimi] = &Rldimi;
            t[(int)Op.Rldcl] = &RotateDoublewordRegister;
            t[(int)Op.Rldcr] = &RotateDoublewordRegister;
            t[(int)Op.Slw] = &Slw;
            t[(int)Op.Srw] = &Srw;
            t[(int)Op.Sld] = &Sld;
            t[(int)Op.Srd] = &Srd;
            t[(int)Op.Sraw] = &ShiftAlgebraic;
            t[(int)Op.Srawi] = &ShiftAlgebraic;
            t[(int)Op.Srad] = &ShiftAlgebraic;
            t[(int)Op.Sradi] = &ShiftAlgebraic;
            // Loads and stores (SimulatedVcpu.LoadStore.cs)
            t[(int)Op.Lbz] = &Lbz;
            t[(int)Op.Lbzu] = &Lbzu;
            t[(int)Op.Lhz] = &Lhz;
            t[(int)Op.Lhzu] = &Lhzu;
            t[(int)Op.Lha] = &Lha;
            t[(int)Op.Lhau] = &Lhau;
            t[(int)Op.Lwz] = &Lwz;
            t[(int)Op.Lwzu] = &Lwzu;
            t[(int)Op.Ld] = &Ld;
            t[(int)Op.Ldu] = &Ldu;
            t[(int)Op.Lwa] = &Lwa;
            t[(int)Op.Lbzx] = &Lbzx;
            t[(int)Op.Lbzux] = &Lbzux;
            t[(int)Op.Lhzx] = &Lhzx;
            t[(int)Op.Lhzux] = &Lhzux;
            t[(int)Op.Lhax] = &Lhax;
            t[(int)Op.Lhaux] = &Lhaux;
            t[(int)Op.Lwzx] = &Lwzx;
            t[(int)Op.Lwzux] = &Lwzux;
            t[(int)Op.Lwax] = &Lwax;
            t[(int)Op.Lwaux] = &Lwaux;
            t[(int)Op.Ldx] = &Ldx;
            t[(int)Op.Ldux] = &Ldux;
            t[(int)Op.Stb] = &Stb;
            t[(int)Op.Stbu] = &Stbu;
            t[(int)Op.Sth] = &Sth;
            t[(int)Op.Sthu] = &Sthu;
            t[(int)Op.Stw] = &Stw;
            t[(int)Op.Stwu] = &Stwu;
            t[(int)Op.Std] = &Std;
            t[(int)Op.Stdu] = &Stdu;
            t[(int)Op.Stbx] = &Stbx;
            t[(int)Op.Stbux] = &Stbux;
            t[(int)Op.Sthx] = &Sthx;
            t[(int)Op.Sthux] = &Sthux;
            t[(int)Op.Stwx] = &Stwx;
            t[(int)Op.Stwux] = &Stwux;
            t[(int)Op.Stdx] = &Stdx;
            t[(int)Op.Stdux] = &Stdux;
            t[(int)Op.Lhbrx] = &Lhbrx;
            t[(int)Op.Lwbrx] = &Lwbrx;
            t[(int)Op.Ldbrx] = &Ldbrx;
            t[(int)Op.Sthbrx] = &Sthbrx;
            t[(int)Op.Stwbrx] = &Stwbrx;
            t[(int)Op.Stdbrx] = &Stdbrx;
            t[(int)Op.Lmw] = &Lmw;
            t[(int)Op.Stmw] = &Stmw;
            t[(int)Op.Lswi] = &Lswi;
            t[(int)Op.Lswx] = &Lswx;
            t[(int)Op.Stswi] = &Stswi;
            t[(int)Op.Stswx] = &Stswx;
            t[(int)Op.Lwarx] = &Lwarx;
            t[(int)Op.Ldarx] = &Ldarx;
            t[(int)Op.Stwcx] = &Stwcx;
            t[(int)Op.Stdcx] = &Stdcx;
            t[(int)Op.Dcbz] = &Dcbz;
            // VMX quadword loads and stores and vperm: memcpy_power7's and copypage_power7's loop (SimulatedVcpu.Vector.cs)
            t[(int)Op.Lvx] = &QuadLoad;
            t[(int)Op.Lvxl] = &QuadLoad;
            t[(int)Op.Stvx] = &QuadStore;
            t[(int)Op.Stvxl] = &QuadStore;
            t[(int)Op.Vperm] = &Vperm;
            t[(int)Op.Icbi] = &Icbi;
            t[(int)Op.Lfs] = &FloatingPoint;
            t[(int)Op.Lfsu] = &FloatingPoint;
            t[(int)Op.Lfd] = &FloatingPoint;
            t[(int)Op.Lfdu] = &FloatingPoint;
            t[(int)Op.Stfs] = &FloatingPoint;
            t[(int)Op.Stfsu] = &FloatingPoint;
            t[(int)Op.Stfd] = &FloatingPoint;
            t[(int)Op.Stfdu] = &FloatingPoint;
            t[(int)Op.Fmr] = &FloatingPoint;
            // Branch and CR (SimulatedVcpu.Branch.cs)
            t[(int)Op.B] = &B;
            t[(int)Op.Bc] = &Bc;
            t[(int)Op.Bclr] = &Bclr;
            t[(int)Op.Bcctr] = &Bcctr;
            t[(int)Op.Crand] = &ConditionRegisterLogical;
            t[(int)Op.Cror] = &ConditionRegisterLogical;
            t[(int)Op.Crxor] = &ConditionRegisterLogical;
            t[(int)Op.Crnand] = &ConditionRegisterLogical;
            t[(int)Op.Crnor] = &ConditionRegisterLogical;
            t[(int)Op.Creqv] = &ConditionRegisterLogical;
            t[(int)Op.Crandc] = &ConditionRegisterLogical;
            t[(int)Op.Crorc] = &ConditionRegisterLogical;
            t[(int)Op.Mcrf] = &Mcrf;
            t[(int)Op.Isel] = &Isel;
            t[(int)Op.Mfcr] = &Mfcr;
            t[(int)Op.Mtcrf] = &Mtcrf;
            // System (SimulatedVcpu.System.cs)
            t[(int)Op.Mfspr] = &Mfspr;
            t[(int)Op.Mtspr] = &Mtspr;
            t[(int)Op.Mftb] = &Mftb;
            t[(int)Op.Mfmsr] = &Mfmsr;
            t[(int)Op.Mtmsr] = &Mtmsr;
            t[(int)Op.Mtmsrd] = &Mtmsrd;
            t[(int)Op.Rfid] = &Rfid;
            t[(int)Op.Hrfid] = &Hrfid;
            t[(int)Op.Sc] = &Sc;
            t[(int)Op.Scv] = &Scv;
            t[(int)Op.Rfscv] = &Rfscv;
            t[(int)Op.Tw] = &Trap;
            t[(int)Op.Td] = &Trap;
            t[(int)Op.Twi] = &Trap;
            t[(int)Op.Tdi] = &Trap;
            t[(int)Op.Sync] = &Nothing;
            t[(int)Op.Isync] = &Nothing;
            t[(int)Op.Eieio] = &Nothing;
            t[(int)Op.CacheHint] = &Nothing;
            // Storage control (SimulatedVcpu.Mmu.cs)
            t[(int)Op.Tlbie] = &Tlbie;
            t[(int)Op.Tlbiel] = &Tlbiel;
            t[(int)Op.Tlbsync] = &PrivilegedNoOp;
            t[(int)Op.Slbia] = &PrivilegedNoOp;
            return t;
        }

        /// <summary>FP, VMX, VSX (SimulatedVcpu.Vector.cs); an opcode below them with no handler is illegal.</summary>
        [MethodImpl(Wrapper)] private static void Default(SimulatedVcpu v, Op op, uint i)
        {
            if (op > Op.Slbia) v.FloatVector(op, i);
            else v.RaiseIllegal(i);
        }

        /// <summary>sync, isync, eieio and the cache hints: nothing to do in this machine's memory model.</summary>
        [MethodImpl(Wrapper)] private static void Nothing(SimulatedVcpu v, Op op, uint i) { }

        [MethodImpl(Wrapper)] private static void Illegal(SimulatedVcpu v, Op op, uint i) => v.RaiseIllegal(i);
        [MethodImpl(Wrapper)] private static void Addi(SimulatedVcpu v, Op op, uint i) => v.Addi(i);
        [MethodImpl(Wrapper)] private static void Addis(SimulatedVcpu v, Op op, uint i) => v.Addis(i);
        [MethodImpl(Wrapper)] private static void Addic(SimulatedVcpu v, Op op, uint i) => v.Addic(i, false);
        [MethodImpl(Wrapper)] private static void AddicRc(SimulatedVcpu v, Op op, uint i) => v.Addic(i, true);
        [MethodImpl(Wrapper)] private static void Subfic(SimulatedVcpu v, Op op, uint i) => v.Subfic(i);
        [MethodImpl(Wrapper)] private static void Mulli(SimulatedVcpu v, Op op, uint i) => v.Mulli(i);
        [MethodImpl(Wrapper)] private static void Add(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Add, i);
        [MethodImpl(Wrapper)] private static void Addc(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Addc, i);
        [MethodImpl(Wrapper)] private static void Adde(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Adde, i);
        [MethodImpl(Wrapper)] private static void Addme(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Addme, i);
        [MethodImpl(Wrapper)] private static void Addze(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Addze, i);
        [MethodImpl(Wrapper)] private static void Subf(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Subf, i);
        [MethodImpl(Wrapper)] private static void Subfc(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Subfc, i);
        [MethodImpl(Wrapper)] private static void Subfe(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Subfe, i);
        [MethodImpl(Wrapper)] private static void Subfme(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Subfme, i);
        [MethodImpl(Wrapper)] private static void Subfze(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Subfze, i);
        [MethodImpl(Wrapper)] private static void Neg(SimulatedVcpu v, Op op, uint i) => v.AddFamily(Op.Neg, i);
        [MethodImpl(Wrapper)] private static void Mullw(SimulatedVcpu v, Op op, uint i) => v.Mullw(i);
        [MethodImpl(Wrapper)] private static void Mulld(SimulatedVcpu v, Op op, uint i) => v.Mulld(i);
        [MethodImpl(Wrapper)] private static void Mulhw(SimulatedVcpu v, Op op, uint i) => v.Mulhw(i, true);
        [MethodImpl(Wrapper)] private static void Mulhwu(SimulatedVcpu v, Op op, uint i) => v.Mulhw(i, false);
        [MethodImpl(Wrapper)] private static void Mulhd(SimulatedVcpu v, Op op, uint i) => v.Mulhd(i, true);
        [MethodImpl(Wrapper)] private static void Mulhdu(SimulatedVcpu v, Op op, uint i) => v.Mulhd(i, false);
        [MethodImpl(Wrapper)] private static void Divw(SimulatedVcpu v, Op op, uint i) => v.Divw(i, true);
        [MethodImpl(Wrapper)] private static void Divwu(SimulatedVcpu v, Op op, uint i) => v.Divw(i, false);
        [MethodImpl(Wrapper)] private static void Divd(SimulatedVcpu v, Op op, uint i) => v.Divd(i, true);
        [MethodImpl(Wrapper)] private static void Divdu(SimulatedVcpu v, Op op, uint i) => v.Divd(i, false);
        [MethodImpl(Wrapper)] private static void Cmpi(SimulatedVcpu v, Op op, uint i) => v.Cmpi(i);
        [MethodImpl(Wrapper)] private static void Cmpli(SimulatedVcpu v, Op op, uint i) => v.Cmpli(i);
        [MethodImpl(Wrapper)] private static void Cmp(SimulatedVcpu v, Op op, uint i) => v.Cmp(i);
        [MethodImpl(Wrapper)] private static void Cmpl(SimulatedVcpu v, Op op, uint i) => v.Cmpl(i);
        [MethodImpl(Wrapper)] private static void Andi(SimulatedVcpu v, Op op, uint i) => v.Andi(i, false);
        [MethodImpl(Wrapper)] private static void Andis(SimulatedVcpu v, Op op, uint i) => v.Andi(i, true);
        [MethodImpl(Wrapper)] private static void Ori(SimulatedVcpu v, Op op, uint i) => v.LogicalImmediate(i, 0);
        [MethodImpl(Wrapper)] private static void Oris(SimulatedVcpu v, Op op, uint i) => v.LogicalImmediate(i, 1);
        [MethodImpl(Wrapper)] private static void Xori(SimulatedVcpu v, Op op, uint i) => v.LogicalImmediate(i, 2);
        [MethodImpl(Wrapper)] private static void Xoris(SimulatedVcpu v, Op op, uint i) => v.LogicalImmediate(i, 3);
        [MethodImpl(Wrapper)] private static void And(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.And, i);
        [MethodImpl(Wrapper)] private static void Andc(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Andc, i);
        [MethodImpl(Wrapper)] private static void Or(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Or, i);
        [MethodImpl(Wrapper)] private static void Orc(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Orc, i);
        [MethodImpl(Wrapper)] private static void Xor(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Xor, i);
        [MethodImpl(Wrapper)] private static void Nand(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Nand, i);
        [MethodImpl(Wrapper)] private static void Nor(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Nor, i);
        [MethodImpl(Wrapper)] private static void Eqv(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Eqv, i);
        [MethodImpl(Wrapper)] private static void Cmpb(SimulatedVcpu v, Op op, uint i) => v.Logical(Op.Cmpb, i);
        [MethodImpl(Wrapper)] private static void Extsb(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Extsb, i);
        [MethodImpl(Wrapper)] private static void Extsh(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Extsh, i);
        [MethodImpl(Wrapper)] private static void Extsw(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Extsw, i);
        [MethodImpl(Wrapper)] private static void Cntlzw(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Cntlzw, i);
        [MethodImpl(Wrapper)] private static void Cntlzd(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Cntlzd, i);
        [MethodImpl(Wrapper)] private static void Popcntb(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Popcntb, i);
        [MethodImpl(Wrapper)] private static void Popcntw(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Popcntw, i);
        [MethodImpl(Wrapper)] private static void Popcntd(SimulatedVcpu v, Op op, uint i) => v.Unary(Op.Popcntd, i);
        [MethodImpl(Wrapper)] private static void Rlwinm(SimulatedVcpu v, Op op, uint i) => v.Rlwinm(i);
        [MethodImpl(Wrapper)] private static void Rlwnm(SimulatedVcpu v, Op op, uint i) => v.Rlwnm(i);
        [MethodImpl(Wrapper)] private static void Rlwimi(SimulatedVcpu v, Op op, uint i) => v.Rlwimi(i);
        [MethodImpl(Wrapper)] private static void Rldicl(SimulatedVcpu v, Op op, uint i) => v.RotateDoublewordImmediate(Op.Rldicl, i);
        [MethodImpl(Wrapper)] private static void Rldicr(SimulatedVcpu v, Op op, uint i) => v.RotateDoublewordImmediate(Op.Rldicr, i);
        [MethodImpl(Wrapper)] private static void Rldic(SimulatedVcpu v, Op op, uint i) => v.RotateDoublewordImmediate(Op.Rldic, i);
        [MethodImpl(Wrapper)] private static void Rldimi(SimulatedVcpu v, Op op, uint i) => v.RotateDoublewordImmediate(Op.Rldimi, i);
        [MethodImpl(Wrapper)] private static void RotateDoublewordRegister(SimulatedVcpu v, Op op, uint i) => v.RotateDoublewordRegister(op, i);
        [MethodImpl(Wrapper)] private static void Slw(SimulatedVcpu v, Op op, uint i) => v.Shift(Op.Slw, i);
        [MethodImpl(Wrapper)] private static void Srw(SimulatedVcpu v, Op op, uint i) => v.Shift(Op.Srw, i);
        [MethodImpl(Wrapper)] private static void Sld(SimulatedVcpu v, Op op, uint i) => v.Shift(Op.Sld, i);
        [MethodImpl(Wrapper)] private static void Srd(SimulatedVcpu v, Op op, uint i) => v.Shift(Op.Srd, i);
        [MethodImpl(Wrapper)] private static void ShiftAlgebraic(SimulatedVcpu v, Op op, uint i) => v.ShiftAlgebraic(op, i);
        [MethodImpl(Wrapper)] private static void Lbz(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 1, false, false);
        [MethodImpl(Wrapper)] private static void Lbzu(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 1, false, true);
        [MethodImpl(Wrapper)] private static void Lhz(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 2, false, false);
        [MethodImpl(Wrapper)] private static void Lhzu(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 2, false, true);
        [MethodImpl(Wrapper)] private static void Lha(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 2, true, false);
        [MethodImpl(Wrapper)] private static void Lhau(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 2, true, true);
        [MethodImpl(Wrapper)] private static void Lwz(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 4, false, false);
        [MethodImpl(Wrapper)] private static void Lwzu(SimulatedVcpu v, Op op, uint i) => v.LoadD(i, 4, false, true);
        [MethodImpl(Wrapper)] private static void Ld(SimulatedVcpu v, Op op, uint i) => v.LoadDS(i, 8, false, false);
        [MethodImpl(Wrapper)] private static void Ldu(SimulatedVcpu v, Op op, uint i) => v.LoadDS(i, 8, false, true);
        [MethodImpl(Wrapper)] private static void Lwa(SimulatedVcpu v, Op op, uint i) => v.LoadDS(i, 4, true, false);
        [MethodImpl(Wrapper)] private static void Lbzx(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 1, false, false);
        [MethodImpl(Wrapper)] private static void Lbzux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 1, false, true);
        [MethodImpl(Wrapper)] private static void Lhzx(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 2, false, false);
        [MethodImpl(Wrapper)] private static void Lhzux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 2, false, true);
        [MethodImpl(Wrapper)] private static void Lhax(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 2, true, false);
        [MethodImpl(Wrapper)] private static void Lhaux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 2, true, true);
        [MethodImpl(Wrapper)] private static void Lwzx(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 4, false, false);
        [MethodImpl(Wrapper)] private static void Lwzux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 4, false, true);
        [MethodImpl(Wrapper)] private static void Lwax(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 4, true, false);
        [MethodImpl(Wrapper)] private static void Lwaux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 4, true, true);
        [MethodImpl(Wrapper)] private static void Ldx(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 8, false, false);
        [MethodImpl(Wrapper)] private static void Ldux(SimulatedVcpu v, Op op, uint i) => v.LoadX(i, 8, false, true);
        [MethodImpl(Wrapper)] private static void Stb(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 1, false);
        [MethodImpl(Wrapper)] private static void Stbu(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 1, true);
        [MethodImpl(Wrapper)] private static void Sth(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 2, false);
        [MethodImpl(Wrapper)] private static void Sthu(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 2, true);
        [MethodImpl(Wrapper)] private static void Stw(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 4, false);
        [MethodImpl(Wrapper)] private static void Stwu(SimulatedVcpu v, Op op, uint i) => v.StoreD(i, 4, true);
        [MethodImpl(Wrapper)] private static void Std(SimulatedVcpu v, Op op, uint i) => v.StoreDS(i, false);
        [MethodImpl(Wrapper)] private static void Stdu(SimulatedVcpu v, Op op, uint i) => v.StoreDS(i, true);
        [MethodImpl(Wrapper)] private static void Stbx(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 1, false);
        [MethodImpl(Wrapper)] private static void Stbux(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 1, true);
        [MethodImpl(Wrapper)] private static void Sthx(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 2, false);
        [MethodImpl(Wrapper)] private static void Sthux(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 2, true);
        [MethodImpl(Wrapper)] private static void Stwx(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 4, false);
        [MethodImpl(Wrapper)] private static void Stwux(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 4, true);
        [MethodImpl(Wrapper)] private static void Stdx(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 8, false);
        [MethodImpl(Wrapper)] private static void Stdux(SimulatedVcpu v, Op op, uint i) => v.StoreX(i, 8, true);
        [MethodImpl(Wrapper)] private static void Lhbrx(SimulatedVcpu v, Op op, uint i) => v.LoadByteReversed(i, 2);
        [MethodImpl(Wrapper)] private static void Lwbrx(SimulatedVcpu v, Op op, uint i) => v.LoadByteReversed(i, 4);
        [MethodImpl(Wrapper)] private static void Ldbrx(SimulatedVcpu v, Op op, uint i) => v.LoadByteReversed(i, 8);
        [MethodImpl(Wrapper)] private static void Sthbrx(SimulatedVcpu v, Op op, uint i) => v.StoreByteReversed(i, 2);
        [MethodImpl(Wrapper)] private static void Stwbrx(SimulatedVcpu v, Op op, uint i) => v.StoreByteReversed(i, 4);
        [MethodImpl(Wrapper)] private static void Stdbrx(SimulatedVcpu v, Op op, uint i) => v.StoreByteReversed(i, 8);
        [MethodImpl(Wrapper)] private static void Lmw(SimulatedVcpu v, Op op, uint i) => v.Lmw(i);
        [MethodImpl(Wrapper)] private static void Stmw(SimulatedVcpu v, Op op, uint i) => v.Stmw(i);
        [MethodImpl(Wrapper)] private static void Lswi(SimulatedVcpu v, Op op, uint i) => v.LoadString(i, immediate: true);
        [MethodImpl(Wrapper)] private static void Lswx(SimulatedVcpu v, Op op, uint i) => v.LoadString(i, immediate: false);
        [MethodImpl(Wrapper)] private static void Stswi(SimulatedVcpu v, Op op, uint i) => v.StoreString(i, immediate: true);
        [MethodImpl(Wrapper)] private static void Stswx(SimulatedVcpu v, Op op, uint i) => v.StoreString(i, immediate: false);
        [MethodImpl(Wrapper)] private static void Lwarx(SimulatedVcpu v, Op op, uint i) => v.LoadReserve(i, 4);
        [MethodImpl(Wrapper)] private static void Ldarx(SimulatedVcpu v, Op op, uint i) => v.LoadReserve(i, 8);
        [MethodImpl(Wrapper)] private static void Stwcx(SimulatedVcpu v, Op op, uint i) => v.StoreConditional(i, 4);
        [MethodImpl(Wrapper)] private static void Stdcx(SimulatedVcpu v, Op op, uint i) => v.StoreConditional(i, 8);
        [MethodImpl(Wrapper)] private static void Dcbz(SimulatedVcpu v, Op op, uint i) => v.Dcbz(i);
        [MethodImpl(Wrapper)] private static void QuadLoad(SimulatedVcpu v, Op op, uint i) { if (!v.CachedQuad(i, store: false)) v.FloatVector(op, i); }
        [MethodImpl(Wrapper)] private static void QuadStore(SimulatedVcpu v, Op op, uint i) { if (!v.CachedQuad(i, store: true)) v.FloatVector(op, i); }
        [MethodImpl(Wrapper)] private static void Vperm(SimulatedVcpu v, Op op, uint i) => v.Vmx(op, i);
        [MethodImpl(Wrapper)] private static void Icbi(SimulatedVcpu v, Op op, uint i) => v.Icbi(i);
        [MethodImpl(Wrapper)] private static void FloatingPoint(SimulatedVcpu v, Op op, uint i) => v.FloatingPoint(op, i);
        [MethodImpl(Wrapper)] private static void B(SimulatedVcpu v, Op op, uint i) => v.Branch(i);
        [MethodImpl(Wrapper)] private static void Bc(SimulatedVcpu v, Op op, uint i) => v.BranchConditional(i);
        [MethodImpl(Wrapper)] private static void Bclr(SimulatedVcpu v, Op op, uint i) => v.BranchConditionalToRegister(i, toLr: true);
        [MethodImpl(Wrapper)] private static void Bcctr(SimulatedVcpu v, Op op, uint i) => v.BranchConditionalToRegister(i, toLr: false);
        [MethodImpl(Wrapper)] private static void ConditionRegisterLogical(SimulatedVcpu v, Op op, uint i) => v.ConditionRegisterLogical(op, i);
        [MethodImpl(Wrapper)] private static void Mcrf(SimulatedVcpu v, Op op, uint i) => v.Mcrf(i);
        [MethodImpl(Wrapper)] private static void Isel(SimulatedVcpu v, Op op, uint i) => v.Isel(i);
        [MethodImpl(Wrapper)] private static void Mfcr(SimulatedVcpu v, Op op, uint i) => v.Mfcr(i);
        [MethodImpl(Wrapper)] private static void Mtcrf(SimulatedVcpu v, Op op, uint i) => v.Mtcrf(i);
        [MethodImpl(Wrapper)] private static void Mfspr(SimulatedVcpu v, Op op, uint i) => v.Mfspr(i);
        [MethodImpl(Wrapper)] private static void Mtspr(SimulatedVcpu v, Op op, uint i) => v.Mtspr(i);
        [MethodImpl(Wrapper)] private static void Mftb(SimulatedVcpu v, Op op, uint i) => v.Mftb(i);
        [MethodImpl(Wrapper)] private static void Mfmsr(SimulatedVcpu v, Op op, uint i) => v.Mfmsr(i);
        [MethodImpl(Wrapper)] private static void Mtmsr(SimulatedVcpu v, Op op, uint i) => v.Mtmsr(i, doubleword: false);
        [MethodImpl(Wrapper)] private static void Mtmsrd(SimulatedVcpu v, Op op, uint i) => v.Mtmsr(i, doubleword: true);
        [MethodImpl(Wrapper)] private static void Rfid(SimulatedVcpu v, Op op, uint i) => v.Rfid();
        [MethodImpl(Wrapper)] private static void Hrfid(SimulatedVcpu v, Op op, uint i) => v.Hrfid();
        [MethodImpl(Wrapper)] private static void Sc(SimulatedVcpu v, Op op, uint i) => v.SystemCall(i);
        [MethodImpl(Wrapper)] private static void Scv(SimulatedVcpu v, Op op, uint i) => v.SystemCallVectored(i);
        [MethodImpl(Wrapper)] private static void Rfscv(SimulatedVcpu v, Op op, uint i) => v.Rfscv();
        [MethodImpl(Wrapper)] private static void Trap(SimulatedVcpu v, Op op, uint i) => v.Trap(op, i);
        [MethodImpl(Wrapper)] private static void Tlbie(SimulatedVcpu v, Op op, uint i) => v.TlbInvalidate(local: false);
        [MethodImpl(Wrapper)] private static void Tlbiel(SimulatedVcpu v, Op op, uint i) => v.TlbInvalidate(local: true);
        [MethodImpl(Wrapper)] private static void PrivilegedNoOp(SimulatedVcpu v, Op op, uint i) => v.PrivilegedNoOp();
    }
}
