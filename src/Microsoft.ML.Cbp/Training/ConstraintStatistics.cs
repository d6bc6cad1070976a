using System;
using System.Collections.Generic;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>How far the latent weights are from their levels, over all constrained weight tensors.</summary>
/// <param name="Cfs">Mean <c>c(w)</c> with no window, in weight units (0 exactly when every weight is on a level).</param>
/// <param name="NormalizedCfs">Mean of <c>c(w) / s</c>: CFS in units of each layer's scale.</param>
/// <param name="FractionOnLevel">Fraction of weights within the tolerance (a fraction of the level gap) of their level.</param>
/// <param name="MultiplierMean">Mean multiplier.</param>
/// <param name="MultiplierMax">Largest multiplier.</param>
/// <param name="Count">Number of constrained weights.</param>
public sealed record ConstraintStatistics(double Cfs, double NormalizedCfs, double FractionOnLevel, double MultiplierMean, double MultiplierMax, long Count)
{
    /// <summary>Measures the statistics of <paramref name="parameters"/>.</summary>
    /// <param name="parameters">Constrained weights (their cached nearest levels must be current).</param>
    /// <param name="onLevelTolerance">Fraction of the level gap within which a weight counts as on its level.</param>
    internal static ConstraintStatistics Measure(IReadOnlyList<ConstrainedParameter> parameters, double onLevelTolerance)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        long count = 0;
        double cfs = 0, normalized = 0, onLevel = 0, multiplierSum = 0, multiplierMax = 0;
        foreach (var p in parameters)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var diff = p.NormalizedDiff;
            var absDiff = diff.abs();
            // No window (u = 1): c = 2 |w - Q(w)| = 2 s |x - Q(x)|.
            normalized += 2 * absDiff.sum().ToDouble();
            cfs += 2 * (absDiff * p.Scale).sum().ToDouble();
            var index = p.Quantizer.NearestIndex(p.NormalizedLatent);
            using var zero = 0.0.ToScalar();
            var gap = p.Quantizer.IntervalGap(index, diff.ge(zero));
            var otherGap = p.Quantizer.IntervalGap(index, diff.lt(zero));
            var reference = where(gap.isinf(), otherGap, gap);
            onLevel += absDiff.le(reference.MulScalar_(onLevelTolerance)).sum().ToDouble();
            multiplierSum += p.Multipliers.Multipliers.sum().ToDouble();
            multiplierMax = Math.Max(multiplierMax, p.Multipliers.Multipliers.max().ToDouble());
            count += p.Count;
        }
        if (count == 0)
        {
            return new ConstraintStatistics(0, 0, 1, 0, 0, 0);
        }
        return new ConstraintStatistics(cfs / count, normalized / count, onLevel / count, multiplierSum / count, multiplierMax, count);
    }
}
