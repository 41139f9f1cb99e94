using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

public sealed partial class SimulatedVcpu
{
    /// <summary>Dispatch on the decoded <see cref="Op"/>: a dense switch the JIT turns into a jump table.</summary>
    private void Execute(Op op, uint i)
    {
        switch (op)
        {
            case Op.Illegal: RaiseIllegal(i); break;
            // Fixed-point arithmetic (SimulatedVcpu.Integer.cs)
            case Op.Addi: Addi(i); break;
            case Op.Addis: Addis(i); break;
            case Op.Addic: Addic(i, false); break;
            case Op.AddicRc: Addic(i, true); break;
            case Op.Subfic: Subfic(i); break;
            case Op.Mulli: Mulli(i); break;
            case Op.Add: case Op.Addc: case Op.Adde: case Op.Addme: case Op.Addze:
            case Op.Subf: case Op.Subfc: case Op.Subfe: case Op.Subfme: case Op.Subfze: case Op.Neg:
                AddFamily(op, i); break;
            case Op.Mullw: Mullw(i); break;
            case Op.Mulld: Mulld(i); break;
            case Op.Mulhw: Mulhw(i, true); break;
            case Op.Mulhwu: Mulhw(i, false); break;
            case Op.Mulhd: Mulhd(i, true); break;
            case Op.Mulhdu: Mulhd(i, false); break;
            case Op.Divw: Divw(i, true); break;
            case Op.Divwu: Divw(i, false); break;
            case Op.Divd: Divd(i, true); break;
            case Op.Divdu: Divd(i, false); break;
            case Op.Cmpi: Cmpi(i); break;
            case Op.Cmpli: Cmpli(i); break;
            case Op.Cmp: Cmp(i); break;
            case Op.Cmpl: Cmpl(i); break;
            case Op.Andi: Andi(i, false); break;
            case Op.Andis: Andi(i, true); break;
            case Op.Ori: LogicalImmediate(i, 0); break;
            case Op.Oris: LogicalImmediate(i, 1); break;
            case Op.Xori: LogicalImmediate(i, 2); break;
            case Op.Xoris: LogicalImmediate(i, 3); break;
            case Op.And: case Op.Andc: case Op.Or: case Op.Orc: case Op.Xor: case Op.Nand: case Op.Nor: case Op.Eqv: case Op.Cmpb:
                Logical(op, i); break;
            case Op.Extsb: case Op.Extsh: case Op.Extsw: case Op.Cntlzw: case Op.Cntlzd:
            case Op.Popcntb: case Op.Popcntw: case Op.Popcntd:
                Unary(op, i); break;
            case Op.Rlwinm: Rlwinm(i); break;
            case Op.Rlwnm: Rlwnm(i); break;
            case Op.Rlwimi: Rlwimi(i); break;
            case Op.Rldicl: case Op.Rldicr: case Op.Rldic: case Op.Rldimi: RotateDoublewordImmediate(op, i); break;
            case Op.Rldcl: case Op.Rldcr: RotateDoublewordRegister(op, i); break;
            case Op.Slw: case Op.Srw: case Op.Sld: case Op.Srd: Shift(op, i); break;
            case Op.Sraw: case Op.Srawi: case Op.Srad: case Op.Sradi: ShiftAlgebraic(op, i); break;
            // Loads and stores (SimulatedVcpu.LoadStore.cs)
            case Op.Lbz: LoadD(i, 1, false, false); break;
            case Op.Lbzu: LoadD(i, 1, false, true); break;
            case Op.Lhz: LoadD(i, 2, false, false); break;
            case Op.Lhzu: LoadD(i, 2, false, true); break;
            case Op.Lha: LoadD(i, 2, true, false); break;
            case Op.Lhau: LoadD(i, 2, true, true); break;
            case Op.Lwz: LoadD(i, 4, false, false); break;
            case Op.Lwzu: LoadD(i, 4, false, true); break;
            case Op.Ld: LoadDS(i, 8, false, false); break;
            case Op.Ldu: LoadDS(i, 8, false, true); break;
            case Op.Lwa: LoadDS(i, 4, true, false); break;
            case Op.Lbzx: LoadX(i, 1, false, false); break;
            case Op.Lbzux: LoadX(i, 1, false, true); break;
            case Op.Lhzx: LoadX(i, 2, false, false); break;
            case Op.Lhzux: LoadX(i, 2, false, true); break;
            case Op.Lhax: LoadX(i, 2, true, false); break;
            case Op.Lhaux: LoadX(i, 2, true, true); break;
            case Op.Lwzx: LoadX(i, 4, false, false); break;
            case Op.Lwzux: LoadX(i, 4, false, true); break;
            case Op.Lwax: LoadX(i, 4, true, false); break;
            case Op.Lwaux: LoadX(i, 4, true, true); break;
            case Op.Ldx: LoadX(i, 8, false, false); break;
            case Op.Ldux: LoadX(i, 8, false, true); break;
            case Op.Stb: StoreD(i, 1, false); break;
            case Op.Stbu: StoreD(i, 1, true); break;
            case Op.Sth: StoreD(i, 2, false); break;
            case Op.Sthu: StoreD(i, 2, true); break;
            case Op.Stw: StoreD(i, 4, false); break;
            case Op.Stwu: StoreD(i, 4, true); break;
            case Op.Std: StoreDS(i, false); break;
            case Op.Stdu: StoreDS(i, true); break;
            case Op.Stbx: StoreX(i, 1, false); break;
            case Op.Stbux: StoreX(i, 1, true); break;
            case Op.Sthx: StoreX(i, 2, false); break;
            case Op.Sthux: StoreX(i, 2, true); break;
            case Op.Stwx: StoreX(i, 4, false); break;
            case Op.Stwux: StoreX(i, 4, true); break;
            case Op.Stdx: StoreX(i, 8, false); break;
            case Op.Stdux: StoreX(i, 8, true); break;
            case Op.Lhbrx: LoadByteReversed(i, 2); break;
            case Op.Lwbrx: LoadByteReversed(i, 4); break;
            case Op.Ldbrx: LoadByteReversed(i, 8); break;
            case Op.Sthbrx: StoreByteReversed(i, 2); break;
            case Op.Stwbrx: StoreByteReversed(i, 4); break;
            case Op.Stdbrx: StoreByteReversed(i, 8); break;
            case Op.Lmw: Lmw(i); break;
            case Op.Stmw: Stmw(i); break;
            case Op.Lswi: LoadString(i, immediate: true); break;
            case Op.Lswx: LoadString(i, immediate: false); break;
            case Op.Stswi: StoreString(i, immediate: true); break;
            case Op.Stswx: StoreString(i, immediate: false); break;
            case Op.Lwarx: LoadReserve(i, 4); break;
            case Op.Ldarx: LoadReserve(i, 8); break;
            case Op.Stwcx: StoreConditional(i, 4); break;
            case Op.Stdcx: StoreConditional(i, 8); break;
            case Op.Dcbz: Dcbz(i); break;
            case Op.Icbi: Icbi(i); break;
            case Op.Lfs: case Op.Lfsu: case Op.Lfd: case Op.Lfdu:
            case Op.Stfs: case Op.Stfsu: case Op.Stfd: case Op.Stfdu: case Op.Fmr:
                FloatingPoint(op, i); break;
            // Branch and CR (SimulatedVcpu.Branch.cs)
            case Op.B: Branch(i); break;
            case Op.Bc: BranchConditional(i); break;
            case Op.Bclr: BranchConditionalToRegister(i, toLr: true); break;
            case Op.Bcctr: BranchConditionalToRegister(i, toLr: false); break;
            case Op.Crand: case Op.Cror: case Op.Crxor: case Op.Crnand: case Op.Crnor: case Op.Creqv: case Op.Crandc: case Op.Crorc:
                ConditionRegisterLogical(op, i); break;
            case Op.Mcrf: Mcrf(i); break;
            case Op.Isel: Isel(i); break;
            case Op.Mfcr: Mfcr(i); break;
            case Op.Mtcrf: Mtcrf(i); break;
            // System (SimulatedVcpu.System.cs)
            case Op.Mfspr: Mfspr(i); break;
            case Op.Mtspr: Mtspr(i); break;
            case Op.Mftb: Mftb(i); break;
            case Op.Mfmsr: Mfmsr(i); break;
            case Op.Mtmsr: Mtmsr(i, doubleword: false); break;
            case Op.Mtmsrd: Mtmsr(i, doubleword: true); break;
            case Op.Rfid: Rfid(); break;
            case Op.Hrfid: Hrfid(); break;
            case Op.Sc: SystemCall(i); break;
            case Op.Scv: SystemCallVectored(i); break;
            case Op.Rfscv: Rfscv(); break;
            case Op.Tw: case Op.Td: case Op.Twi: case Op.Tdi: Trap(op, i); break;
            case Op.Sync: case Op.Isync: case Op.Eieio: case Op.CacheHint: break;
            // Storage control (SimulatedVcpu.Mmu.cs)
            case Op.Tlbie: TlbInvalidate(local: false); break;
            case Op.Tlbiel: TlbInvalidate(local: true); break;
            case Op.Tlbsync: case Op.Slbia: PrivilegedNoOp(); break;
            default:
                if (op > Op.Slbia) FloatVector(op, i); // FP, VMX, VSX (SimulatedVcpu.Vector.cs)
                else RaiseIllegal(i);
                break;
        }
    }
}
