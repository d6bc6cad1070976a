using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Microsoft.ML.Cbp;

/// <summary>
/// A precision constraint on a layer's weights: a sorted set of normalised levels <c>F</c>. A constrained
/// layer with scale <c>s</c> may only hold the values <c>s * f</c> for <c>f</c> in <see cref="Levels"/>.
/// </summary>
/// <remarks>
/// The four sets of the CBP paper are <see cref="Binary"/>, <see cref="Ternary"/>, <see cref="OneBitShift"/>
/// and <see cref="TwoBitShift"/>. The same machinery accepts any sorted level set: symmetric uniform grids
/// (<see cref="Uniform"/>), power-of-two grids with more exponents (<see cref="PowerOfTwo"/>) and user
/// lists (<see cref="Custom"/>). Instances are immutable.
/// </remarks>
public sealed class WeightConstraint : IEquatable<WeightConstraint>
{
    private readonly double[] _levels;
    private readonly double[] _thresholds;

    private WeightConstraint(string name, double[] levels)
    {
        Name = name;
        _levels = levels;
        _thresholds = new double[levels.Length - 1];
        for (int i = 0; i < _thresholds.Length; i++)
        {
            _thresholds[i] = 0.5 * (levels[i] + levels[i + 1]);
        }
    }

    /// <summary>Binary weights: <c>F = {-1, +1}</c>.</summary>
    public static WeightConstraint Binary { get; } = new("Binary", new[] { -1.0, 1.0 });

    /// <summary>Ternary weights: <c>F = {-1, 0, +1}</c>.</summary>
    public static WeightConstraint Ternary { get; } = new("Ternary", new[] { -1.0, 0.0, 1.0 });

    /// <summary>One-bit shift: <c>F = {-1, -1/2, 0, +1/2, +1}</c>.</summary>
    public static WeightConstraint OneBitShift { get; } = new("OneBitShift", new[] { -1.0, -0.5, 0.0, 0.5, 1.0 });

    /// <summary>Two-bit shift: <c>F = {-1, -1/2, -1/4, 0, +1/4, +1/2, +1}</c>.</summary>
    public static WeightConstraint TwoBitShift { get; } =
        new("TwoBitShift", new[] { -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0 });

    /// <summary>A readable name, such as <c>Binary</c> or <c>Uniform(3)</c>.</summary>
    public string Name { get; }

    /// <summary>The normalised levels, sorted ascending, distinct and finite (at least two).</summary>
    public IReadOnlyList<double> Levels => _levels;

    /// <summary>Decision thresholds of the quantizer: the midpoints between neighbouring levels.</summary>
    public IReadOnlyList<double> Thresholds => _thresholds;

    /// <summary>
    /// A symmetric uniform grid with <c>2^bits - 1</c> levels <c>{-1, ..., -1/m, 0, 1/m, ..., 1}</c>,
    /// <c>m = 2^(bits-1) - 1</c>, so that it fits a signed <paramref name="bits"/>-bit integer code.
    /// </summary>
    /// <param name="bits">Bits per weight, 2 to 8. <c>Uniform(2)</c> equals <see cref="Ternary"/>.</param>
    public static WeightConstraint Uniform(int bits)
    {
        if (bits < 2 || bits > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits,
                "Uniform(bits) needs 2 to 8 bits (2 gives ternary {-1, 0, 1}; for binary use WeightConstraint.Binary).");
        }
        int m = (1 << (bits - 1)) - 1;
        double[] levels = Enumerable.Range(-m, 2 * m + 1).Select(k => (double)k / m).ToArray();
        return new WeightConstraint($"Uniform({bits})", levels);
    }

    /// <summary>
    /// A power-of-two grid <c>{0, +-2^0, +-2^-1, ..., +-2^-(exponents-1)}</c>.
    /// <c>PowerOfTwo(2)</c> equals <see cref="OneBitShift"/> and <c>PowerOfTwo(3)</c> equals <see cref="TwoBitShift"/>.
    /// </summary>
    /// <param name="exponents">How many magnitudes besides zero, 1 to 8.</param>
    public static WeightConstraint PowerOfTwo(int exponents)
    {
        if (exponents < 1 || exponents > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(exponents), exponents,
                "PowerOfTwo(exponents) needs 1 to 8 exponents (2 gives the one-bit shift set, 3 the two-bit shift set).");
        }
        var magnitudes = Enumerable.Range(0, exponents).Select(e => Math.Pow(2, -e)).ToArray();
        double[] levels = magnitudes.Select(v => -v).Concat(new[] { 0.0 }).Concat(magnitudes).OrderBy(v => v).ToArray();
        return new WeightConstraint($"PowerOfTwo({exponents})", levels);
    }

    /// <summary>A user-given level set, in normalised units (they are multiplied by each layer's scale).</summary>
    /// <param name="levels">At least two finite, distinct levels in ascending order.</param>
    /// <exception cref="ArgumentException">The levels are not sorted, distinct and finite, or fewer than two.</exception>
    public static WeightConstraint Custom(params double[] levels)
    {
        if (levels is null)
        {
            throw new ArgumentNullException(nameof(levels));
        }
        if (levels.Length < 2)
        {
            throw new ArgumentException($"A weight constraint needs at least two levels; got {levels.Length}.", nameof(levels));
        }
        for (int i = 0; i < levels.Length; i++)
        {
            if (!double.IsFinite(levels[i]))
            {
                throw new ArgumentException($"Level {i} is {levels[i]}; every level must be a finite number.", nameof(levels));
            }
            if (i > 0 && !(levels[i] > levels[i - 1]))
            {
                throw new ArgumentException(
                    $"Levels must be distinct and sorted ascending; level {i} ({levels[i]}) is not greater than level {i - 1} ({levels[i - 1]}).",
                    nameof(levels));
            }
        }
        string name = "Custom(" + string.Join(", ", levels.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + ")";
        return new WeightConstraint(name, (double[])levels.Clone());
    }

    /// <inheritdoc />
    public bool Equals(WeightConstraint? other) => other is not null && _levels.SequenceEqual(other._levels);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as WeightConstraint);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (double level in _levels)
        {
            hash.Add(level);
        }
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
