namespace ActorStep.Machine.Cpu;

/// <summary>
/// A finite real number held exactly: (−1)^<see cref="Negative"/> × (<see cref="Significand"/> + s) × 2^<see cref="Exponent"/>,
/// where s = 0 unless <see cref="Sticky"/>, and then 0 &lt; s &lt; 1 (something nonzero below the significand's last bit).
/// Values with <see cref="Sticky"/> keep at least 60 significant bits, so the discarded part always lies below the rounding
/// bit of a double.
/// </summary>
public readonly record struct ExactValue(bool Negative, UInt128 Significand, int Exponent, bool Sticky = false)
{
    public bool IsZero => Significand == 0 && !Sticky;

    /// <summary>A finite double (normal, denormal or zero) as it is.</summary>
    public static ExactValue FromDouble(ulong bits)
    {
        int e = (int)((bits >> 52) & 0x7FF);
        ulong fraction = bits & 0xFFFFFFFFFFFFF;
        return e == 0
            ? new ExactValue((bits >> 63) != 0, fraction, -1074)
            : new ExactValue((bits >> 63) != 0, fraction | (1UL << 52), e - 1075);
    }

    public static ExactValue FromInteger(ulong magnitude, bool negative) => new(negative, magnitude, 0);

    public ExactValue Negate() => this with { Negative = !Negative };
}

/// <summary>A binary floating-point format: bits of precision and the exponent range of normal numbers.</summary>
public readonly record struct FloatFormat(int Precision, int MinExponent, int MaxExponent)
{
    public static readonly FloatFormat Double = new(53, -1022, 1023);
    public static readonly FloatFormat Single = new(24, -126, 127);
}

/// <summary>
/// A rounded result as a double's bits (single-precision results are doubles whose value a single holds), and what the
/// rounding did: <see cref="Inexact"/> (FPSCR[FI], XX), <see cref="Incremented"/> (the fraction was incremented: FR),
/// <see cref="Tiny"/> (the exact value is nonzero and below the format's smallest normal: tininess before rounding, as
/// POWER detects it, Book I §4.4.5) and <see cref="Overflow"/> (the rounded value, with an unbounded exponent, exceeds the
/// format's largest: §4.4.4).
/// </summary>
public readonly record struct RoundedValue(ulong Bits, bool Inexact, bool Incremented, bool Tiny, bool Overflow);

/// <summary>
/// Exact arithmetic on finite binary floating-point values and the one rounding of Power ISA Book I §4.3.6: every FP result
/// is the exact result rounded once, to the target precision and exponent range, by FPSCR[RN] (0 nearest-even, 1 toward
/// zero, 2 toward +∞, 3 toward −∞). Denormalization happens before rounding, so a result below the normal range is rounded
/// at the denormal's last bit, and its inexactness (not the host's) gives FI, XX and UX.
/// </summary>
public static class ExactFloat
{
    private const int Top = 124; // where Add aligns the larger operand's leading bit: room for a carry, below UInt128's 127

    private static int Msb(UInt128 v) => 127 - (int)UInt128.LeadingZeroCount(v);

    /// <summary>
    /// x + y, exactly (up to a sticky bit far below the result's leading bit). An exact zero from operands of opposite signs
    /// is +0, or −0 when rounding toward −∞ (IEEE 754 §6.3); x + (−0) keeps x.
    /// </summary>
    public static ExactValue Add(ExactValue x, ExactValue y, int roundingMode)
    {
        if (x.IsZero && y.IsZero)
            return new ExactValue(x.Negative == y.Negative ? x.Negative : roundingMode == 3, 0, 0);
        if (y.IsZero) return x;
        if (x.IsZero) return y;
        if (y.Exponent + Msb(y.Significand) > x.Exponent + Msb(x.Significand)) (x, y) = (y, x);
        int up = Top - Msb(x.Significand);
        UInt128 big = x.Significand << up;
        int exp = x.Exponent - up;
        int d = y.Exponent - exp;
        UInt128 small;
        bool lost = y.Sticky;
        if (d >= 0) small = y.Significand << d; // y's leading bit is at most x's: still below bit Top + 1
        else if (-d >= 128) { small = 0; lost = true; }
        else
        {
            small = y.Significand >> -d;
            lost |= (y.Significand & ((UInt128.One << -d) - 1)) != 0;
        }
        if (x.Negative == y.Negative) return new ExactValue(x.Negative, big + small, exp, lost);
        // Opposite signs. When bits of y were lost, y lies far below x: big − (small + s) = (big − small − 1) + (1 − s).
        if (lost) return new ExactValue(x.Negative, big - small - 1, exp, true);
        if (big == small) return new ExactValue(roundingMode == 3, 0, 0);
        return big > small ? new ExactValue(x.Negative, big - small, exp) : new ExactValue(y.Negative, small - big, exp);
    }

    /// <summary>x × y of exact (non-sticky) values: at most 106 bits for two doubles.</summary>
    public static ExactValue Multiply(ExactValue x, ExactValue y) =>
        new(x.Negative != y.Negative, x.Significand * y.Significand, x.Exponent + y.Exponent);

    /// <summary>x ÷ y, y nonzero: a quotient of at least 72 bits and the remainder's sticky bit.</summary>
    public static ExactValue Divide(ExactValue x, ExactValue y)
    {
        bool negative = x.Negative != y.Negative;
        if (x.IsZero) return new ExactValue(negative, 0, 0);
        int sx = 52 - Msb(x.Significand), sy = 52 - Msb(y.Significand);
        UInt128 n = x.Significand << (sx + 72), dv = y.Significand << sy;
        UInt128 q = UInt128.DivRem(n, dv).Quotient;
        bool rem = q * dv != n;
        return new ExactValue(negative, q, (x.Exponent - sx - 72) - (y.Exponent - sy), rem);
    }

    /// <summary>√x for x ≥ 0: an integer square root of at least 62 bits and the remainder's sticky bit.</summary>
    public static ExactValue SquareRoot(ExactValue x)
    {
        if (x.IsZero) return x;
        int up = Top - Msb(x.Significand);
        int exp = x.Exponent - up;
        if ((exp & 1) != 0) { up++; exp--; }
        UInt128 n = x.Significand << up;
        UInt128 r = (ulong)Math.Sqrt((double)n);
        r = (r + n / r) >> 1; // one Newton step from a 53-bit estimate: within one of ⌊√n⌋
        while (r * r > n) r--;
        while ((r + 1) * (r + 1) <= n) r++;
        return new ExactValue(false, r, exp / 2, r * r != n);
    }

    /// <summary>Rounds to <paramref name="format"/> by <paramref name="roundingMode"/> (FPSCR[RN]).</summary>
    public static RoundedValue Round(ExactValue x, FloatFormat format, int roundingMode)
    {
        ulong sign = x.Negative ? 1UL << 63 : 0;
        if (x.IsZero) return new RoundedValue(sign, false, false, false, false);
        UInt128 sig = x.Significand;
        int exp = x.Exponent;
        if (sig == 0) throw new ArgumentException("a sticky value keeps its significant bits", nameof(x));
        int msb = Msb(sig);
        if (msb < 125) { sig <<= 125 - msb; exp -= 125 - msb; msb = 125; }
        int top = exp + msb;
        bool tiny = top < format.MinExponent;
        int lsb = Math.Max(top, format.MinExponent) - (format.Precision - 1);
        int shift = lsb - exp; // ≥ 125 − 52
        UInt128 keep;
        bool half, below;
        if (shift >= 128) { keep = 0; half = false; below = true; }
        else
        {
            keep = sig >> shift;
            half = ((sig >> (shift - 1)) & 1) != 0;
            below = x.Sticky || (sig & ((UInt128.One << (shift - 1)) - 1)) != 0;
        }
        bool inexact = half || below;
        bool increment = roundingMode switch
        {
            0 => half && (below || (keep & 1) != 0),
            2 => inexact && !x.Negative,
            3 => inexact && x.Negative,
            _ => false,
        };
        if (increment && ++keep >> format.Precision != 0) { keep >>= 1; lsb++; }
        if (keep == 0) return new RoundedValue(sign, inexact, false, tiny, false);
        int resultTop = lsb + Msb(keep);
        if (resultTop > format.MaxExponent)
        {
            // Overflow: ±∞, or the largest finite number when the rounding mode goes toward zero from there (§4.4.4).
            bool toInfinity = roundingMode == 0 || (roundingMode == 2 && !x.Negative) || (roundingMode == 3 && x.Negative);
            ulong largest = format == FloatFormat.Single ? BitConverter.DoubleToUInt64Bits(float.MaxValue) : 0x7FEFFFFFFFFFFFFF;
            return new RoundedValue(sign | (toInfinity ? 0x7FF0000000000000 : largest), true, toInfinity, tiny, true);
        }
        ulong bits = resultTop < -1022
            ? (ulong)(keep << (lsb + 1074)) // a double denormal: lsb is −1074
            : ((ulong)(resultTop + 1023) << 52) | ((ulong)(keep << (52 - Msb(keep))) & 0xFFFFFFFFFFFFF);
        return new RoundedValue(sign | bits, inexact, increment, tiny, false);
    }
}
