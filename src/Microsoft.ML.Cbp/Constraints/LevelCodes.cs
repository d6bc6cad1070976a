using System;
using System.Linq;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>
/// The integer form of a level set: every level is <c>code * Unit</c> with a small integer code, so a constrained
/// weight <c>s * f</c> is stored as the code with scale <c>s * Unit</c>. Binary and ternary: unit 1, codes in {-1, 0, 1};
/// one-bit shift: unit 1/2, codes {0, +-1, +-2}; two-bit shift: unit 1/4, codes {0, +-1, +-2, +-4}.
/// </summary>
/// <param name="Unit">The normalised value of code 1.</param>
/// <param name="Codes">The code of each level, in level order.</param>
internal sealed record LevelCodes(double Unit, int[] Codes)
{
    /// <summary>The smallest and largest code.</summary>
    public (int Min, int Max) Range => (Codes.Min(), Codes.Max());

    /// <summary>Whether every code fits a signed integer of <paramref name="bits"/> bits.</summary>
    /// <param name="bits">Width.</param>
    public bool FitsSigned(int bits) => Range.Min >= -(1 << (bits - 1)) && Range.Max <= (1 << (bits - 1)) - 1;

    /// <summary>
    /// The integer form of <paramref name="constraint"/>: the unit is the smallest non-zero level magnitude divided by a
    /// power of two (up to 2^8) that makes every level an integer multiple; null when there is none.
    /// </summary>
    /// <param name="constraint">The level set.</param>
    public static LevelCodes? For(WeightConstraint constraint)
    {
        ArgumentNullException.ThrowIfNull(constraint);
        var levels = constraint.Levels.ToArray();
        double smallest = levels.Where(l => l != 0).Select(Math.Abs).Min();
        for (int k = 0; k <= 8; k++)
        {
            double unit = smallest / (1 << k);
            var codes = levels.Select(l => l / unit).ToArray();
            if (codes.All(c => Math.Abs(c - Math.Round(c)) <= 1e-9 * Math.Max(1, Math.Abs(c))) && codes.All(c => Math.Abs(c) <= 1 << 15))
            {
                return new LevelCodes(unit, codes.Select(c => (int)Math.Round(c)).ToArray());
            }
        }
        return null;
    }
}
