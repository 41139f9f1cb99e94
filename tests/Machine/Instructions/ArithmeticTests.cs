using ActorStep.Machine;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Fixed-point add/subtract (Power ISA v3.0 Book I §3.3.9): results, CA/CA32, OV/OV32 with sticky SO, and
/// CR0. Expected values are written out by hand from the ISA definitions (RT ← ¬(RA) + (RB) + 1 and so on).
/// </summary>
public class ArithmeticTests
{
    private static readonly string[] XoOps = ["add", "addc", "adde", "addme", "addze", "subf", "subfc", "subfe", "subfme", "subfze", "neg"];
    private static readonly string[] Forms = ["", "o", ".", "o."];

    private static string Xo(string op, string form) =>
        op is "addme" or "addze" or "subfme" or "subfze" or "neg" ? $"{op}{form} 3,4" : $"{op}{form} 3,4,5";

    private static readonly InstructionBench Bench = new(
        XoOps.SelectMany(op => Forms.Select(f => Xo(op, f))).Concat(
        [
            "addi 3,4,-5", "addi 3,0,-5", "addis 3,4,-32768", "addis 3,0,1", "mulli 3,4,-3", "mulli 3,4,7",
            "addic 3,4,-1", "addic 3,4,1", "addic 3,0,1", "addic. 3,4,-1", "subfic 3,4,10", "subfic 3,4,0",
        ]));

    private static ulong Ca(bool on) => on ? Arch.CA | Arch.CA32 : 0;

    [Theory]
    [InlineData("add", 1UL, 2UL, false, 3UL, false, false, false, false)]
    [InlineData("add", 0x7FFFFFFFFFFFFFFFUL, 1UL, true, 0x8000000000000000UL, true, true, true, false)]
    [InlineData("add", 0x7FFFFFFFUL, 1UL, false, 0x80000000UL, false, false, false, true)]
    [InlineData("add", 0x8000000000000000UL, 0x8000000000000000UL, false, 0UL, false, false, true, false)]
    [InlineData("addc", 0xFFFFFFFFFFFFFFFFUL, 1UL, false, 0UL, true, true, false, false)]
    [InlineData("addc", 0xFFFFFFFFUL, 1UL, false, 0x100000000UL, false, true, false, false)]
    [InlineData("addc", 0x8000000000000000UL, 0x8000000000000000UL, false, 0UL, true, false, true, false)]
    [InlineData("addc", 2UL, 3UL, true, 5UL, false, false, false, false)]
    [InlineData("adde", 2UL, 3UL, true, 6UL, false, false, false, false)]
    [InlineData("adde", 0xFFFFFFFFFFFFFFFFUL, 0UL, true, 0UL, true, true, false, false)]
    [InlineData("adde", 0x7FFFFFFFFFFFFFFFUL, 0UL, true, 0x8000000000000000UL, false, true, true, false)]
    [InlineData("addme", 5UL, 0UL, false, 4UL, true, true, false, false)]
    [InlineData("addme", 0UL, 0UL, false, 0xFFFFFFFFFFFFFFFFUL, false, false, false, false)]
    [InlineData("addme", 0UL, 0UL, true, 0UL, true, true, false, false)]
    [InlineData("addme", 0x8000000000000000UL, 0UL, false, 0x7FFFFFFFFFFFFFFFUL, true, false, true, false)]
    [InlineData("addze", 0xFFFFFFFFFFFFFFFFUL, 0UL, true, 0UL, true, true, false, false)]
    [InlineData("addze", 0x7FFFFFFFFFFFFFFFUL, 0UL, true, 0x8000000000000000UL, false, true, true, false)]
    [InlineData("addze", 7UL, 0UL, false, 7UL, false, false, false, false)]
    [InlineData("subf", 3UL, 0xAUL, false, 7UL, false, false, false, false)]
    [InlineData("subf", 0xAUL, 3UL, true, 0xFFFFFFFFFFFFFFF9UL, true, true, false, false)]
    [InlineData("subf", 1UL, 0x8000000000000000UL, false, 0x7FFFFFFFFFFFFFFFUL, false, false, true, false)]
    [InlineData("subf", 1UL, 0x80000000UL, false, 0x7FFFFFFFUL, false, false, false, true)]
    [InlineData("subfc", 3UL, 0xAUL, false, 7UL, true, true, false, false)]
    [InlineData("subfc", 0xAUL, 3UL, true, 0xFFFFFFFFFFFFFFF9UL, false, false, false, false)]
    [InlineData("subfc", 0UL, 0UL, false, 0UL, true, true, false, false)]
    [InlineData("subfc", 0x100000000UL, 1UL, false, 0xFFFFFFFF00000001UL, false, true, false, false)]
    [InlineData("subfe", 3UL, 0xAUL, false, 6UL, true, true, false, false)]
    [InlineData("subfe", 3UL, 0xAUL, true, 7UL, true, true, false, false)]
    [InlineData("subfe", 0UL, 0UL, false, 0xFFFFFFFFFFFFFFFFUL, false, false, false, false)]
    [InlineData("subfme", 0UL, 0UL, false, 0xFFFFFFFFFFFFFFFEUL, true, true, false, false)]
    [InlineData("subfme", 0xFFFFFFFFFFFFFFFFUL, 0UL, false, 0xFFFFFFFFFFFFFFFFUL, false, false, false, false)]
    [InlineData("subfme", 0x7FFFFFFFFFFFFFFFUL, 0UL, false, 0x7FFFFFFFFFFFFFFFUL, true, false, true, false)]
    [InlineData("subfme", 0x7FFFFFFFFFFFFFFFUL, 0UL, true, 0x8000000000000000UL, true, true, false, false)]
    [InlineData("subfze", 0UL, 0UL, true, 0UL, true, true, false, false)]
    [InlineData("subfze", 0UL, 0UL, false, 0xFFFFFFFFFFFFFFFFUL, false, false, false, false)]
    [InlineData("subfze", 0x8000000000000000UL, 0UL, true, 0x8000000000000000UL, false, true, true, false)]
    [InlineData("neg", 5UL, 0UL, false, 0xFFFFFFFFFFFFFFFBUL, false, false, false, false)]
    [InlineData("neg", 0x8000000000000000UL, 0UL, true, 0x8000000000000000UL, true, true, true, false)]
    [InlineData("neg", 0x80000000UL, 0UL, false, 0xFFFFFFFF80000000UL, false, false, false, true)]
    [InlineData("neg", 0UL, 0UL, false, 0UL, false, false, false, false)]
    public void Xo_arithmetic_with_OE_computes_result_carry_and_overflow(string op, ulong a, ulong b, bool caIn, ulong rt, bool ca, bool ca32, bool ov, bool ov32)
    {
        var r = Bench.Execute(Xo(op, "o"), s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = Ca(caIn); s.Cr = 0x12345678; });

        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(ca, r.Xer(Arch.CA));
        Assert.Equal(ca32, r.Xer(Arch.CA32));
        Assert.Equal(ov, r.Xer(Arch.OV));
        Assert.Equal(ov32, r.Xer(Arch.OV32));
        Assert.Equal(ov, r.Xer(Arch.SO));
        Assert.Equal(0x12345678u, r.After.Cr); // no Rc: CR untouched
        Assert.Equal(r.Address + 4, r.After.Nip);
    }

    [Theory]
    [InlineData("add")] [InlineData("addc")] [InlineData("adde")] [InlineData("addme")] [InlineData("addze")]
    [InlineData("subf")] [InlineData("subfc")] [InlineData("subfe")] [InlineData("subfme")] [InlineData("subfze")] [InlineData("neg")]
    public void Xo_arithmetic_without_OE_leaves_OV_OV32_and_SO_alone(string op)
    {
        // OE=0 writes none of OV, OV32, SO: a set OV32 survives and a clear OV/SO stays clear (add overflows here).
        var r = Bench.Execute(Xo(op, ""), s => { s.Gpr[4] = 0x8000000080000000; s.Gpr[5] = 0x8000000080000000; s.Xer = Arch.OV32; });
        Assert.False(r.Xer(Arch.OV));
        Assert.False(r.Xer(Arch.SO));
        Assert.True(r.Xer(Arch.OV32));
    }

    [Fact]
    public void Addo_without_overflow_clears_OV_and_OV32_but_SO_stays_sticky()
    {
        var r = Bench.Execute("addo 3,4,5", s => { s.Gpr[4] = 1; s.Gpr[5] = 2; s.Xer = Arch.SO | Arch.OV | Arch.OV32; });
        Assert.Equal(3UL, r.Gpr(3));
        Assert.False(r.Xer(Arch.OV));
        Assert.False(r.Xer(Arch.OV32));
        Assert.True(r.Xer(Arch.SO));
    }

    [Theory]
    [InlineData("add. 3,4,5", 1UL, 0xFFFFFFFFFFFFFFFEUL, false, Arch.LT)]
    [InlineData("add. 3,4,5", 1UL, 1UL, false, Arch.GT)]
    [InlineData("add. 3,4,5", 1UL, 0xFFFFFFFFFFFFFFFFUL, false, Arch.EQ)]
    [InlineData("add. 3,4,5", 1UL, 1UL, true, Arch.GT | Arch.SOf)]
    [InlineData("add. 3,4,5", 0x7FFFFFFFUL, 1UL, false, Arch.GT)] // 0x80000000 is positive as a doubleword
    [InlineData("addo. 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 1UL, false, Arch.LT | Arch.SOf)] // SO just set by this overflow
    [InlineData("addo. 3,4,5", 1UL, 1UL, true, Arch.GT | Arch.SOf)]
    [InlineData("addc. 3,4,5", 0xFFFFFFFFFFFFFFFFUL, 1UL, false, Arch.EQ)]
    [InlineData("adde. 3,4,5", 0xFFFFFFFFFFFFFFFEUL, 0UL, false, Arch.LT)]
    [InlineData("subf. 3,4,5", 5UL, 5UL, false, Arch.EQ)]
    [InlineData("subfc. 3,4,5", 3UL, 10UL, false, Arch.GT)]
    [InlineData("subfe. 3,4,5", 0UL, 0UL, false, Arch.LT)]
    [InlineData("neg. 3,4", 1UL, 0UL, false, Arch.LT)]
    [InlineData("nego. 3,4", 0x8000000000000000UL, 0UL, false, Arch.LT | Arch.SOf)]
    [InlineData("addme. 3,4", 1UL, 0UL, false, Arch.EQ)]
    [InlineData("addze. 3,4", 1UL, 0UL, false, Arch.GT)]
    [InlineData("subfme. 3,4", 0UL, 0UL, false, Arch.LT)]
    [InlineData("subfze. 3,4", 0xFFFFFFFFFFFFFFFFUL, 0UL, false, Arch.EQ)]
    public void Rc_forms_set_CR0_LT_GT_EQ_from_the_result_and_copy_SO(string insn, ulong a, ulong b, bool so, uint cr0)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = so ? Arch.SO : 0; s.Cr = 0xF2345678; });
        Assert.Equal(cr0, r.Cr0);
        Assert.Equal(0x02345678u, r.After.Cr & 0x0FFFFFFF);
    }

    [Theory]
    [InlineData("addi 3,4,-5", 3UL, 0xFFFFFFFFFFFFFFFEUL)]
    [InlineData("addi 3,0,-5", 100UL, 0xFFFFFFFFFFFFFFFBUL)] // RA=0 means the value 0, not r0
    [InlineData("addis 3,4,-32768", 0x10UL, 0xFFFFFFFF80000010UL)]
    [InlineData("addis 3,0,1", 100UL, 0x10000UL)]
    [InlineData("mulli 3,4,-3", 0x4000000000000001UL, 0x3FFFFFFFFFFFFFFDUL)] // low 64 bits of the 128-bit product
    [InlineData("mulli 3,4,7", 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFF9UL)]
    public void Immediate_add_and_multiply_compute_RT_and_leave_XER_and_CR_alone(string insn, ulong value, ulong rt)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = value; s.Gpr[0] = value; s.Xer = Arch.CA; s.Cr = 0x80000000; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(Arch.CA, r.After.Xer);
        Assert.Equal(0x80000000u, r.After.Cr);
    }

    [Theory]
    [InlineData("addic 3,4,-1", 1UL, 0UL, true, true)]
    [InlineData("addic 3,4,-1", 0UL, 0xFFFFFFFFFFFFFFFFUL, false, false)]
    [InlineData("addic 3,4,1", 0xFFFFFFFFUL, 0x100000000UL, false, true)]
    [InlineData("addic 3,0,1", 5UL, 6UL, false, false)] // addic reads r0 itself when RA=0
    [InlineData("subfic 3,4,10", 3UL, 7UL, true, true)]
    [InlineData("subfic 3,4,10", 11UL, 0xFFFFFFFFFFFFFFFFUL, false, false)]
    [InlineData("subfic 3,4,0", 0UL, 0UL, true, true)]
    [InlineData("subfic 3,4,0", 0x100000000UL, 0xFFFFFFFF00000000UL, false, true)]
    public void Addic_and_subfic_set_CA_and_CA32_but_not_OV(string insn, ulong value, ulong rt, bool ca, bool ca32)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = value; s.Gpr[0] = value; s.Xer = Arch.OV | Arch.SO; s.Cr = 0; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(ca, r.Xer(Arch.CA));
        Assert.Equal(ca32, r.Xer(Arch.CA32));
        Assert.True(r.Xer(Arch.OV) && r.Xer(Arch.SO));
        Assert.Equal(0u, r.After.Cr);
    }

    [Theory]
    [InlineData(0UL, 0xFFFFFFFFFFFFFFFFUL, false, Arch.LT | Arch.SOf)]
    [InlineData(1UL, 0UL, true, Arch.EQ | Arch.SOf)]
    [InlineData(2UL, 1UL, true, Arch.GT | Arch.SOf)]
    public void Addic_record_sets_CA_and_CR0(ulong value, ulong rt, bool ca, uint cr0)
    {
        var r = Bench.Execute("addic. 3,4,-1", s => { s.Gpr[4] = value; s.Xer = Arch.SO; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(ca, r.Xer(Arch.CA));
        Assert.Equal(cr0, r.Cr0);
    }

    // --- 32-bit mode (MSR[SF]=0): CA and OV come from bit 32, the whole 64-bit sum is still written. ---

    private static void Mode32(VcpuState s) => s.Msr &= ~Arch.MsrSF;

    [Theory]
    [InlineData("addc 3,4,5", 0xFFFFFFFFUL, 1UL, 0x100000000UL, true)]
    [InlineData("addc 3,4,5", 0xFFFFFFFF00000000UL, 0x100000000UL, 0UL, false)]
    [InlineData("subfc 3,4,5", 1UL, 0x100000000UL, 0xFFFFFFFFUL, false)]
    [InlineData("addic 3,4,1", 0xFFFFFFFFUL, 0UL, 0x100000000UL, true)]
    [InlineData("subfic 3,4,0", 0x100000000UL, 0UL, 0xFFFFFFFF00000000UL, true)]
    [InlineData("adde 3,4,5", 0xFFFFFFFF00000000UL, 0x100000000UL, 0UL, false)]
    public void In_32_bit_mode_CA_is_the_carry_out_of_bit_32(string insn, ulong a, ulong b, ulong rt, bool ca)
    {
        var r = Bench.Execute(insn, s => { Mode32(s); s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = 0; });
        Assert.Equal(rt, r.Gpr(3));
        Assert.Equal(ca, r.Xer(Arch.CA));
        Assert.Equal(ca, r.Xer(Arch.CA32));
    }

    [Theory]
    [InlineData("addo 3,4,5", 0x7FFFFFFFUL, 1UL, true)]
    [InlineData("addo 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 1UL, false)]
    [InlineData("subfo 3,4,5", 1UL, 0x80000000UL, true)]
    [InlineData("nego 3,4", 0x80000000UL, 0UL, true)]
    [InlineData("nego 3,4", 0x8000000000000000UL, 0UL, false)]
    public void In_32_bit_mode_OV_and_SO_record_overflow_of_the_low_word(string insn, ulong a, ulong b, bool ov)
    {
        var r = Bench.Execute(insn, s => { Mode32(s); s.Gpr[4] = a; s.Gpr[5] = b; s.Xer = 0; });
        Assert.Equal(ov, r.Xer(Arch.OV));
        Assert.Equal(ov, r.Xer(Arch.OV32));
        Assert.Equal(ov, r.Xer(Arch.SO));
    }

    [Fact]
    public void In_32_bit_mode_CR0_compares_the_low_word()
    {
        var r = Bench.Execute("add. 3,4,5", s => { Mode32(s); s.Gpr[4] = 0x7FFFFFFF; s.Gpr[5] = 1; });
        Assert.Equal(0x80000000UL, r.Gpr(3));
        Assert.Equal(Arch.LT, r.Cr0);
    }
}
