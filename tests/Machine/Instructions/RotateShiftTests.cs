namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// Rotates and shifts (Power ISA v3.0 Book I §3.3.14): ROTL32 rotates the low word replicated in both
/// halves, MASK(mb, me) wraps when mb &gt; me, shift amounts come from RB[58:63] (word) or RB[57:63]
/// (doubleword), algebraic shifts set CA and CA32 when a negative value loses 1-bits.
/// </summary>
public class RotateShiftTests
{
    private static readonly InstructionBench Bench = new(
    [
        "rldcl 3,4,5,0",
        "rldcl 3,4,5,33",
        "rldcl 3,4,5,48",
        "rldcr 3,4,5,15",
        "rldcr 3,4,5,31",
        "rldcr 3,4,5,63",
        "rldic 3,4,0,0",
        "rldic 3,4,36,4",
        "rldic 3,4,60,50",
        "rldic 3,4,8,48",
        "rldicl 3,4,0,32",
        "rldicl 3,4,0,33",
        "rldicl 3,4,40,0",
        "rldicl 3,4,63,1",
        "rldicl 3,4,8,56",
        "rldicr 3,4,0,40",
        "rldicr 3,4,1,62",
        "rldicr 3,4,4,59",
        "rldicr 3,4,48,15",
        "rldimi 3,4,0,60",
        "rldimi 3,4,16,32",
        "rldimi 3,4,40,8",
        "rldimi 3,4,60,50",
        "rlwimi 3,4,16,24,7",
        "rlwimi 3,4,8,16,23",
        "rlwinm 3,4,0,16,31",
        "rlwinm 3,4,0,31,0",
        "rlwinm 3,4,16,8,4",
        "rlwinm 3,4,31,0,31",
        "rlwinm 3,4,4,0,27",
        "rlwinm 3,4,8,24,31",
        "rlwnm 3,4,5,0,31",
        "rlwnm 3,4,5,28,3",
        "sld 3,4,5",
        "slw 3,4,5",
        "srad 3,4,5",
        "sradi 3,4,0",
        "sradi 3,4,32",
        "sradi 3,4,33",
        "sradi 3,4,4",
        "sradi 3,4,63",
        "sraw 3,4,5",
        "srawi 3,4,0",
        "srawi 3,4,31",
        "srawi 3,4,4",
        "srd 3,4,5",
        "srw 3,4,5",
        "rlwinm. 3,4,0,0,0",
        "rlwnm. 3,4,5,0,31",
        "rlwimi. 3,4,0,0,31",
        "rldicl. 3,4,0,0",
        "rldicr. 3,4,0,63",
        "rldic. 3,4,0,0",
        "rldimi. 3,4,0,0",
        "rldcl. 3,4,5,0",
        "rldcr. 3,4,5,63",
        "slw. 3,4,5",
        "srw. 3,4,5",
        "sld. 3,4,5",
        "srd. 3,4,5",
        "sraw. 3,4,5",
        "srawi. 3,4,4",
        "srad. 3,4,5",
        "sradi. 3,4,63",
    ]);

    [Theory]
    [InlineData("rlwinm 3,4,8,24,31", 0x123456789ABCDEFUL, 0UL, 0UL, 0x89UL)]
    [InlineData("rlwinm 3,4,0,16,31", 0x123456789ABCDEFUL, 0UL, 0UL, 0xCDEFUL)]
    [InlineData("rlwinm 3,4,4,0,27", 0x123456789ABCDEFUL, 0UL, 0UL, 0x9ABCDEF0UL)]
    [InlineData("rlwinm 3,4,31,0,31", 0x123456789ABCDEFUL, 0UL, 0UL, 0xC4D5E6F7UL)]
    [InlineData("rlwinm 3,4,0,31,0", 0x123456789ABCDEFUL, 0UL, 0UL, 0x89ABCDEF80000001UL)]
    [InlineData("rlwinm 3,4,16,8,4", 0x123456789ABCDEFUL, 0UL, 0UL, 0xCDEF89ABC8EF89ABUL)]
    [InlineData("rlwinm 3,4,0,31,0", 0x80000001UL, 0UL, 0UL, 0x8000000180000001UL)]
    [InlineData("rlwnm 3,4,5,0,31", 0x123456789ABCDEFUL, 8UL, 0UL, 0xABCDEF89UL)]
    [InlineData("rlwnm 3,4,5,0,31", 0x123456789ABCDEFUL, 0x28UL, 0UL, 0xABCDEF89UL)]
    [InlineData("rlwnm 3,4,5,0,31", 0x123456789ABCDEFUL, 0x3FUL, 0UL, 0xC4D5E6F7UL)]
    [InlineData("rlwnm 3,4,5,28,3", 0x123456789ABCDEFUL, 0x24UL, 0UL, 0x9ABCDEF890000008UL)]
    [InlineData("rlwimi 3,4,8,16,23", 0x123456789ABCDEFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFEFFFUL)]
    [InlineData("rlwimi 3,4,16,24,7", 0x123456789ABCDEFUL, 0UL, 0xAAAAAAAA55555555UL, 0xCDEF89ABCD5555ABUL)]
    [InlineData("rldicl 3,4,8,56", 0x123456789ABCDEFUL, 0UL, 0UL, 1UL)]
    [InlineData("rldicl 3,4,0,32", 0x123456789ABCDEFUL, 0UL, 0UL, 0x89ABCDEFUL)]
    [InlineData("rldicl 3,4,40,0", 0x123456789ABCDEFUL, 0UL, 0UL, 0xABCDEF0123456789UL)]
    [InlineData("rldicl 3,4,0,33", 0x123456789ABCDEFUL, 0UL, 0UL, 0x9ABCDEFUL)]
    [InlineData("rldicl 3,4,63,1", 0x123456789ABCDEFUL, 0UL, 0UL, 0x91A2B3C4D5E6F7UL)]
    [InlineData("rldicr 3,4,4,59", 0x123456789ABCDEFUL, 0UL, 0UL, 0x123456789ABCDEF0UL)]
    [InlineData("rldicr 3,4,0,40", 0x123456789ABCDEFUL, 0UL, 0UL, 0x123456789800000UL)]
    [InlineData("rldicr 3,4,48,15", 0x123456789ABCDEFUL, 0UL, 0UL, 0xCDEF000000000000UL)]
    [InlineData("rldicr 3,4,1,62", 0x123456789ABCDEFUL, 0UL, 0UL, 0x2468ACF13579BDEUL)]
    [InlineData("rldic 3,4,8,48", 0x123456789ABCDEFUL, 0UL, 0UL, 0xEF00UL)]
    [InlineData("rldic 3,4,36,4", 0x123456789ABCDEFUL, 0UL, 0UL, 0xABCDEF000000000UL)]
    [InlineData("rldic 3,4,0,0", 0x123456789ABCDEFUL, 0UL, 0UL, 0x123456789ABCDEFUL)]
    [InlineData("rldic 3,4,60,50", 0x123456789ABCDEFUL, 0UL, 0UL, 0xF000000000003CDEUL)]
    [InlineData("rldimi 3,4,16,32", 0x123456789ABCDEFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFCDEFFFFFUL)]
    [InlineData("rldimi 3,4,40,8", 0x123456789ABCDEFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFCDEFFFFFFFFFFFUL)]
    [InlineData("rldimi 3,4,0,60", 0x123456789ABCDEFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFFUL)]
    [InlineData("rldimi 3,4,60,50", 0x123456789ABCDEFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFCDEUL)]
    [InlineData("rldcl 3,4,5,48", 0x123456789ABCDEFUL, 8UL, 0UL, 0xEF01UL)]
    [InlineData("rldcl 3,4,5,0", 0x123456789ABCDEFUL, 0x48UL, 0UL, 0x23456789ABCDEF01UL)]
    [InlineData("rldcl 3,4,5,33", 0x123456789ABCDEFUL, 0x3FUL, 0UL, 0x44D5E6F7UL)]
    [InlineData("rldcr 3,4,5,15", 0x123456789ABCDEFUL, 8UL, 0UL, 0x2345000000000000UL)]
    [InlineData("rldcr 3,4,5,63", 0x123456789ABCDEFUL, 0x44UL, 0UL, 0x123456789ABCDEF0UL)]
    [InlineData("rldcr 3,4,5,31", 0x123456789ABCDEFUL, 0x20UL, 0UL, 0x89ABCDEF00000000UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0UL, 0UL, 0x87654321UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0UL, 0UL, 0x87654321UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 4UL, 0UL, 0x76543210UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 4UL, 0UL, 0x8765432UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0x1FUL, 0UL, 0x80000000UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0x1FUL, 0UL, 1UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0x20UL, 0UL, 0UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0x20UL, 0UL, 0UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0x3FUL, 0UL, 0UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0x3FUL, 0UL, 0UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0x44UL, 0UL, 0x76543210UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0x44UL, 0UL, 0x8765432UL)]
    [InlineData("slw 3,4,5", 0xFEDCBA9887654321UL, 0xFFFFFFFFFFFFFF04UL, 0UL, 0x76543210UL)]
    [InlineData("srw 3,4,5", 0xFEDCBA9887654321UL, 0xFFFFFFFFFFFFFF04UL, 0UL, 0x8765432UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 0UL, 0UL, 0xFEDCBA9887654321UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 0UL, 0UL, 0xFEDCBA9887654321UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 4UL, 0UL, 0xEDCBA98876543210UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 4UL, 0UL, 0xFEDCBA988765432UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 0x3FUL, 0UL, 0x8000000000000000UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 0x3FUL, 0UL, 1UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 0x40UL, 0UL, 0UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 0x40UL, 0UL, 0UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 0x7FUL, 0UL, 0UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 0x7FUL, 0UL, 0UL)]
    [InlineData("sld 3,4,5", 0xFEDCBA9887654321UL, 0x84UL, 0UL, 0xEDCBA98876543210UL)]
    [InlineData("srd 3,4,5", 0xFEDCBA9887654321UL, 0x84UL, 0UL, 0xFEDCBA988765432UL)]
    public void Rotate_and_logical_shift_compute_RA_and_leave_CR_and_XER_alone(string insn, ulong rs, ulong rb, ulong raIn, ulong ra)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Gpr[5] = rb; s.Gpr[3] = raIn; s.Cr = 0x12345678; s.Xer = Arch.CA | Arch.CA32; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(0x12345678u, r.After.Cr);
        Assert.Equal(Arch.CA | Arch.CA32, r.After.Xer);
    }

    [Theory]
    [InlineData("sraw 3,4,5", 0x80000010UL, 0UL, 0xFFFFFFFF80000010UL, false)]
    [InlineData("sraw 3,4,5", 0x80000010UL, 4UL, 0xFFFFFFFFF8000001UL, false)]
    [InlineData("sraw 3,4,5", 0x80000010UL, 0x1FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x80000010UL, 0x20UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x80000010UL, 0x3FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x80000011UL, 0UL, 0xFFFFFFFF80000011UL, false)]
    [InlineData("sraw 3,4,5", 0x80000011UL, 4UL, 0xFFFFFFFFF8000001UL, true)]
    [InlineData("sraw 3,4,5", 0x80000011UL, 0x1FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x80000011UL, 0x20UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x80000011UL, 0x3FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0xFFFFFFFF7FFFFFFFUL, 0UL, 0x7FFFFFFFUL, false)]
    [InlineData("sraw 3,4,5", 0xFFFFFFFF7FFFFFFFUL, 4UL, 0x7FFFFFFUL, false)]
    [InlineData("sraw 3,4,5", 0xFFFFFFFF7FFFFFFFUL, 0x1FUL, 0UL, false)]
    [InlineData("sraw 3,4,5", 0xFFFFFFFF7FFFFFFFUL, 0x20UL, 0UL, false)]
    [InlineData("sraw 3,4,5", 0xFFFFFFFF7FFFFFFFUL, 0x3FUL, 0UL, false)]
    [InlineData("sraw 3,4,5", 0x12345678FFFFFFFFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, false)]
    [InlineData("sraw 3,4,5", 0x12345678FFFFFFFFUL, 4UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x12345678FFFFFFFFUL, 0x1FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x12345678FFFFFFFFUL, 0x20UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("sraw 3,4,5", 0x12345678FFFFFFFFUL, 0x3FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srawi 3,4,4", 0x80000010UL, 0UL, 0xFFFFFFFFF8000001UL, false)]
    [InlineData("srawi 3,4,4", 0x80000011UL, 0UL, 0xFFFFFFFFF8000001UL, true)]
    [InlineData("srawi 3,4,4", 0xFFFFFFFF7FFFFFFFUL, 0UL, 0x7FFFFFFUL, false)]
    [InlineData("srawi 3,4,31", 0xFFFFFFFFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srawi 3,4,0", 0x80000000UL, 0UL, 0xFFFFFFFF80000000UL, false)]
    [InlineData("srawi 3,4,31", 0x80000000UL, 0UL, 0xFFFFFFFFFFFFFFFFUL, false)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 0UL, 0x8000000000000010UL, false)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 4UL, 0xF800000000000001UL, false)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 0x3FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 0x40UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 0x7FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000010UL, 0x80UL, 0x8000000000000010UL, false)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 0UL, 0x8000000000000011UL, false)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 4UL, 0xF800000000000001UL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 0x3FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 0x40UL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 0x7FUL, 0xFFFFFFFFFFFFFFFFUL, true)]
    [InlineData("srad 3,4,5", 0x8000000000000011UL, 0x80UL, 0x8000000000000011UL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 0UL, 0x7FFFFFFFFFFFFFFFUL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 4UL, 0x7FFFFFFFFFFFFFFUL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 0x3FUL, 0UL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 0x40UL, 0UL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 0x7FUL, 0UL, false)]
    [InlineData("srad 3,4,5", 0x7FFFFFFFFFFFFFFFUL, 0x80UL, 0x7FFFFFFFFFFFFFFFUL, false)]
    [InlineData("sradi 3,4,4", 0x8000000000000010UL, 0UL, 0xF800000000000001UL, false)]
    [InlineData("sradi 3,4,4", 0x8000000000000011UL, 0UL, 0xF800000000000001UL, true)]
    [InlineData("sradi 3,4,33", 0x8000000100000000UL, 0UL, 0xFFFFFFFFC0000000UL, true)]
    [InlineData("sradi 3,4,32", 0x8000000000000000UL, 0UL, 0xFFFFFFFF80000000UL, false)]
    [InlineData("sradi 3,4,63", 0x7FFFFFFFFFFFFFFFUL, 0UL, 0UL, false)]
    [InlineData("sradi 3,4,0", 0xFFFFFFFFFFFFFFFFUL, 0UL, 0xFFFFFFFFFFFFFFFFUL, false)]
    public void Algebraic_shifts_sign_extend_and_set_CA_CA32_when_a_negative_value_loses_one_bits(string insn, ulong rs, ulong rb, ulong ra, bool ca)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Gpr[5] = rb; s.Xer = ca ? 0 : Arch.CA | Arch.CA32; s.Cr = 0x12345678; });
        Assert.Equal(ra, r.Gpr(3));
        Assert.Equal(ca, r.Xer(Arch.CA));
        Assert.Equal(ca, r.Xer(Arch.CA32));
        Assert.Equal(0x12345678u, r.After.Cr);
    }

    [Theory]
    [InlineData("rlwinm. 3,4,0,0,0", 0x80000000UL, 0UL, Arch.GT)] // 0x80000000 is positive as a doubleword
    [InlineData("rlwnm. 3,4,5,0,31", 0x100000000UL, 0UL, Arch.EQ)]
    [InlineData("rlwimi. 3,4,0,0,31", 0xFFFFFFFFUL, 0UL, Arch.GT)]
    [InlineData("rldicl. 3,4,0,0", 0x8000000000000000UL, 0UL, Arch.LT)]
    [InlineData("rldicr. 3,4,0,63", 0UL, 0UL, Arch.EQ)]
    [InlineData("rldic. 3,4,0,0", 1UL, 0UL, Arch.GT)]
    [InlineData("rldimi. 3,4,0,0", 0xFFFFFFFFFFFFFFFFUL, 0UL, Arch.LT)]
    [InlineData("rldcl. 3,4,5,0", 1UL, 63UL, Arch.LT)]
    [InlineData("rldcr. 3,4,5,63", 2UL, 63UL, Arch.GT)]
    [InlineData("slw. 3,4,5", 1UL, 31UL, Arch.GT)]
    [InlineData("srw. 3,4,5", 0xFFFFFFFFUL, 32UL, Arch.EQ)]
    [InlineData("sld. 3,4,5", 1UL, 63UL, Arch.LT)]
    [InlineData("srd. 3,4,5", 0x8000000000000000UL, 64UL, Arch.EQ)]
    [InlineData("sraw. 3,4,5", 0x80000000UL, 4UL, Arch.LT)]
    [InlineData("srawi. 3,4,4", 0x7FFFFFFFUL, 0UL, Arch.GT)]
    [InlineData("srad. 3,4,5", 0x8000000000000000UL, 64UL, Arch.LT)]
    [InlineData("sradi. 3,4,63", 0x7FFFFFFFFFFFFFFFUL, 0UL, Arch.EQ)]
    public void Rotate_and_shift_record_forms_set_CR0_from_the_64_bit_result(string insn, ulong rs, ulong rb, uint cr0)
    {
        var r = Bench.Execute(insn, s => { s.Gpr[4] = rs; s.Gpr[5] = rb; s.Gpr[3] = 0; s.Xer = Arch.SO; });
        Assert.Equal(cr0 | Arch.SOf, r.Cr0);
    }
}
