using ActorStep.Machine.Cpu;

namespace ActorStep.Tests.Machine.Instructions;

/// <summary>
/// The machine's one FP rounding (Book I §4.3.6) over exact sums, products, quotients and roots: in round-to-nearest it
/// must agree with the host's IEEE 754 arithmetic everywhere, denormals included; the directed modes, FI, FR and UX
/// (tininess before rounding, §4.4.5) are checked on cases worked out from the ISA's rules.
/// </summary>
public class ExactFloatTests
{
    private const int Nearest = 0, TowardZero = 1, TowardPlus = 2, TowardMinus = 3;
    private static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);
    private static ExactValue X(double d) => ExactValue.FromDouble(Bits(d));
    private static RoundedValue Double(ExactValue v, int mode = Nearest) => ExactFloat.Round(v, FloatFormat.Double, mode);

    /// <summary>Random doubles over the whole finite range, with many denormals and near-equal pairs.</summary>
    private static IEnumerable<(double A, double B, double C)> Operands(int seed, int count)
    {
        var r = new Random(seed);
        double One()
        {
            ulong bits = (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63);
            int kind = r.Next(4);
            if (kind == 0) bits &= 0x800FFFFFFFFFFFFF; // denormal
            else if (kind == 1) bits = (bits & 0x800FFFFFFFFFFFFF) | ((ulong)r.Next(1, 60) << 52); // just above the normal range
            double d = BitConverter.UInt64BitsToDouble(bits);
            return double.IsFinite(d) ? d : 1.5;
        }
        for (int n = 0; n < count; n++)
        {
            double a = One(), b = r.Next(5) == 0 ? -a * (1 + r.Next(-2, 3) * Math.Pow(2, -52)) : One(), c = One();
            yield return (a, b, c);
        }
    }

    [Fact]
    public void Rounded_to_nearest_every_operation_equals_the_hosts_IEEE_result_denormals_included()
    {
        int checkedCount = 0;
        foreach (var (a, b, c) in Operands(1, 20_000))
        {
            void Same(string what, double expected, ExactValue exact)
            {
                if (!double.IsFinite(expected)) return;
                ulong got = Double(exact).Bits;
                Assert.True(Bits(expected) == got, $"{what} a={a:R} b={b:R} c={c:R}: host 0x{Bits(expected):x16} exact 0x{got:x16}");
                checkedCount++;
            }
            Same("a+b", a + b, ExactFloat.Add(X(a), X(b), Nearest));
            Same("a*b", a * b, ExactFloat.Multiply(X(a), X(b)));
            if (b != 0) Same("a/b", a / b, ExactFloat.Divide(X(a), X(b)));
            Same("sqrt|a|", Math.Sqrt(Math.Abs(a)), ExactFloat.SquareRoot(X(Math.Abs(a))));
            Same("a*b+c", Math.FusedMultiplyAdd(a, b, c), ExactFloat.Add(ExactFloat.Multiply(X(a), X(b)), X(c), Nearest));
            float single = (float)a;
            if (float.IsFinite(single))
                Assert.Equal(Bits(single), ExactFloat.Round(X(a), FloatFormat.Single, Nearest).Bits);
        }
        Assert.True(checkedCount > 90_000, $"only {checkedCount} results compared");
    }

    [Fact]
    public void Inexact_is_set_exactly_when_the_rounded_result_differs_from_the_exact_one()
    {
        foreach (var (a, b, _) in Operands(2, 5_000))
        {
            var sum = Double(ExactFloat.Add(X(a), X(b), Nearest));
            double s = BitConverter.UInt64BitsToDouble(sum.Bits);
            if (!double.IsFinite(s)) continue;
            // TwoSum is exact for every finite sum (its error is representable, denormals included).
            double bb = s - a, err = (a - (s - bb)) + (b - bb);
            Assert.Equal(err != 0, sum.Inexact);
        }
    }

    [Fact]
    public void A_product_below_the_smallest_denormal_rounds_up_to_it_toward_plus_infinity_with_FI_XX_UX()
    {
        double tiny = double.Epsilon; // 2^-1074
        var product = ExactFloat.Multiply(X(tiny), X(0.5 * (1 + Math.Pow(2, -40)))); // just above half the smallest denormal
        var up = Double(product, TowardPlus);
        Assert.Equal(Bits(tiny), up.Bits);
        Assert.True(up.Inexact && up.Incremented && up.Tiny);
        var down = Double(product, TowardMinus);
        Assert.Equal(0UL, down.Bits);
        Assert.True(down.Inexact && !down.Incremented && down.Tiny);
        Assert.Equal(Bits(tiny), Double(product, Nearest).Bits); // above the halfway point
        Assert.Equal(0UL, Double(ExactFloat.Multiply(X(tiny), X(0.5)), Nearest).Bits); // exactly halfway: to even, 0
    }

    [Fact]
    public void Tininess_is_detected_before_rounding_a_result_that_rounds_up_to_the_smallest_normal_is_tiny()
    {
        // (2^-1022)(1 − 2^-53) = 2^-1022 − 2^-1075: below the normal range before rounding, halfway between the largest
        // denormal (odd) and 2^-1022 (even), so 2^-1022 after it.
        double minNormal = 2.2250738585072014E-308;
        var exact = ExactFloat.Multiply(X(minNormal), X(Math.BitDecrement(1.0)));
        var r = Double(exact, Nearest);
        Assert.Equal(Bits(minNormal), r.Bits);
        Assert.True(r.Tiny && r.Inexact);
        // An exact denormal is tiny but not inexact: no underflow with UE = 0.
        var exactDenormal = Double(ExactFloat.Multiply(X(minNormal), X(0.25)));
        Assert.True(exactDenormal.Tiny && !exactDenormal.Inexact);
        Assert.Equal(Bits(minNormal / 4), exactDenormal.Bits);
    }

    [Fact]
    public void Directed_roundings_step_by_one_unit_in_the_direction_asked()
    {
        var third = ExactFloat.Divide(X(1), X(3));
        double nearest = 1.0 / 3; // below the exact third (0x3FD5555555555555)
        Assert.Equal(Bits(nearest), Double(third, TowardZero).Bits);
        Assert.Equal(Bits(nearest), Double(third, TowardMinus).Bits);
        Assert.Equal(Bits(Math.BitIncrement(nearest)), Double(third, TowardPlus).Bits);
        var negThird = ExactFloat.Divide(X(-1), X(3));
        Assert.Equal(Bits(-Math.BitIncrement(nearest)), Double(negThird, TowardMinus).Bits);
        Assert.True(Double(negThird, TowardMinus).Incremented);
        Assert.False(Double(negThird, TowardZero).Incremented);
    }

    [Fact]
    public void Overflow_gives_infinity_or_the_largest_number_by_the_rounding_mode()
    {
        var big = ExactFloat.Multiply(X(double.MaxValue), X(2));
        Assert.Equal(Bits(double.PositiveInfinity), Double(big, Nearest).Bits);
        Assert.Equal(Bits(double.MaxValue), Double(big, TowardZero).Bits);
        Assert.Equal(Bits(double.MaxValue), Double(big, TowardMinus).Bits);
        Assert.True(Double(big, TowardZero).Overflow && Double(big, TowardZero).Inexact);
        var bigSingle = ExactFloat.Round(X(4e38), FloatFormat.Single, TowardZero);
        Assert.Equal(Bits(float.MaxValue), bigSingle.Bits);
        Assert.True(bigSingle.Overflow);
    }

    [Fact]
    public void An_exact_zero_sum_of_opposite_signs_is_minus_zero_only_when_rounding_toward_minus_infinity()
    {
        Assert.Equal(0UL, Double(ExactFloat.Add(X(1.5), X(-1.5), Nearest)).Bits);
        Assert.Equal(1UL << 63, Double(ExactFloat.Add(X(1.5), X(-1.5), TowardMinus), TowardMinus).Bits);
        Assert.Equal(1UL << 63, Double(ExactFloat.Add(X(-0.0), X(-0.0), Nearest)).Bits);
        Assert.Equal(Bits(-2.0), Double(ExactFloat.Add(X(-2.0), X(0.0), Nearest)).Bits);
    }

    [Fact]
    public void A_far_smaller_addend_still_decides_directed_rounding_and_inexactness()
    {
        // 1 − 2^-1074: rounds to 1 to nearest, to the double below 1 toward zero and toward −∞.
        var sum = ExactFloat.Add(X(1), X(-double.Epsilon), Nearest);
        Assert.Equal(Bits(1), Double(sum, Nearest).Bits);
        Assert.Equal(Bits(Math.BitDecrement(1.0)), Double(sum, TowardZero).Bits);
        Assert.Equal(Bits(Math.BitDecrement(1.0)), Double(sum, TowardMinus).Bits);
        Assert.True(Double(sum, Nearest).Inexact);
        Assert.Equal(Bits(Math.BitIncrement(1.0)), Double(ExactFloat.Add(X(1), X(double.Epsilon), Nearest), TowardPlus).Bits);
    }
}
