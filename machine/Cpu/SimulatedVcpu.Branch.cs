using System.Runtime.CompilerServices;
using ActorStep.Isa;
using ActorStep.Hypervisor;

namespace ActorStep.Machine.Cpu;

// Branch and condition-register instructions (Power ISA v3.0 Book I §2.4–2.5).
public sealed partial class SimulatedVcpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Branch(uint i)
    {
        ulong target = Branches.Target(Op.B, i, _cia, Lr, Ctr);
        if (new FormI(i).LK) Lr = _cia + 4;
        Nip = EffectiveAddress(target);
    }

    /// <summary>BO: [0] ignore condition, [1] condition value, [2] don't decrement CTR, [3] branch if CTR=0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool BranchTaken(int bo, int bi, bool decrementCtr)
    {
        bool ctrOk = true;
        if (decrementCtr && (bo & 0x04) == 0)
        {
            Ctr--;
            ulong ctr = Mode64 ? Ctr : Ctr & 0xFFFFFFFF;
            ctrOk = (ctr != 0) ^ ((bo & 0x02) != 0);
        }
        bool condOk = (bo & 0x10) != 0 || CrBit(bi) == ((bo & 0x08) != 0);
        return ctrOk && condOk;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void BranchConditional(uint i)
    {
        var b = new FormB(i);
        ulong target = Branches.Target(Op.Bc, i, _cia, Lr, Ctr);
        bool taken = BranchTaken(b.BO, b.BI, decrementCtr: true);
        if (b.LK) Lr = _cia + 4;
        if (taken) Nip = EffectiveAddress(target);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void BranchConditionalToRegister(uint i, bool toLr)
    {
        var xl = new FormXL(i);
        if (!toLr && (xl.BO & 0x04) == 0) { RaiseIllegal(i); return; } // bcctr with CTR decrement is invalid
        ulong target = Branches.Target(toLr ? Op.Bclr : Op.Bcctr, i, _cia, Lr, Ctr);
        bool taken = BranchTaken(xl.BO, xl.BI, decrementCtr: toLr);
        if (xl.LK) Lr = _cia + 4;
        if (taken) Nip = EffectiveAddress(target);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ConditionRegisterLogical(Op op, uint i)
    {
        var xl = new FormXL(i);
        bool a = CrBit(xl.BA), b = CrBit(xl.BB);
        bool r = op switch
        {
            Op.Crand => a & b,
            Op.Cror => a | b,
            Op.Crxor => a ^ b,
            Op.Crnand => !(a & b),
            Op.Crnor => !(a | b),
            Op.Creqv => a == b,
            Op.Crandc => a & !b,
            _ /* Crorc */ => a | !b,
        };
        uint bit = 1u << (31 - xl.BT);
        Cr = r ? Cr | bit : Cr & ~bit;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mcrf(uint i)
    {
        var xl = new FormXL(i);
        SetCrField(xl.BF, Cr >> (28 - 4 * xl.BFA));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Isel(uint i)
    {
        var a = new FormA(i);
        Gpr[a.RT] = CrBit(a.BC) ? RA0(a.RA) : Gpr[a.RB];
    }

    /// <summary>mfcr; mfocrf puts the one named field and zeroes the rest (as QEMU; others are undefined in the ISA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mfcr(uint i)
    {
        var x = new FormXFX(i);
        if (!x.OneField) { Gpr[x.RT] = Cr; return; }
        Gpr[x.RT] = Cr & FieldMask(x.FXM);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Mtcrf(uint i)
    {
        var x = new FormXFX(i);
        uint mask = FieldMask(x.FXM);
        Cr = (Cr & ~mask) | ((uint)Gpr[x.RS] & mask);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint FieldMask(int fxm)
    {
        uint m = 0;
        for (int f = 0; f < 8; f++) if ((fxm & (0x80 >> f)) != 0) m |= 0xFu << (28 - 4 * f);
        return m;
    }
}
