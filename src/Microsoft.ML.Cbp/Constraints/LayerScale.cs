using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>Computes layer scales (docs/CBP.md section 1).</summary>
internal static class LayerScale
{
    /// <summary>The scale of <paramref name="weight"/> under <paramref name="mode"/>: see <see cref="MeanAbsolute"/> and <see cref="MinimumError"/>.</summary>
    /// <param name="weight">The layer's weights; at least one element.</param>
    /// <param name="constraint">The level set (used by <see cref="ScaleMode.MinimumError"/>).</param>
    /// <param name="mode">How the scale is chosen.</param>
    public static Tensor Compute(Tensor weight, WeightConstraint constraint, ScaleMode mode) =>
        mode == ScaleMode.MinimumError ? MinimumError(weight, constraint) : MeanAbsolute(weight, mode);

    /// <summary>
    /// The per-layer scale <c>s</c> (a scalar tensor) that minimises <c>sum (w - s Q(w / s))^2</c> over the layer: a search
    /// over <c>s = c mean|w|</c> for 97 values of <c>c</c> from 1/4 to 8 (geometric), then alternating refinement (assign
    /// levels, then the least-squares scale <c>sum(w f) / sum(f^2)</c>) while the error falls.
    /// </summary>
    /// <param name="weight">The layer's weights; at least one element.</param>
    /// <param name="constraint">The level set.</param>
    public static Tensor MinimumError(Tensor weight, WeightConstraint constraint)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(constraint);
        if (weight.numel() == 0)
        {
            throw new ArgumentException("Cannot compute the scale of an empty weight tensor.", nameof(weight));
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var quantizer = new Quantizer(constraint, weight.device);
        var w = weight.detach().flatten().to(ScalarType.Float64);
        double mean = w.abs().mean().item<double>();
        if (!(mean > 0))
        {
            return MeanAbsolute(weight, ScaleMode.PerLayer).MoveToOuterDisposeScope();
        }
        double Error(double s)
        {
            using var inner = NewDisposeScope();
            var levels = quantizer.LevelAt(quantizer.NearestIndex(w.DivScalar(s).to(ScalarType.Float32))).to(ScalarType.Float64);
            return (w - levels.MulScalar_(s)).square().sum().item<double>();
        }
        double best = mean, bestError = Error(mean);
        for (int i = 0; i <= 96; i++)
        {
            double s = mean * Math.Pow(2, -2 + (5.0 * i / 96));
            double e = Error(s);
            if (e < bestError)
            {
                (best, bestError) = (s, e);
            }
        }
        for (int iteration = 0; iteration < 20; iteration++)
        {
            using var inner = NewDisposeScope();
            var f = quantizer.LevelAt(quantizer.NearestIndex(w.DivScalar(best).to(ScalarType.Float32))).to(ScalarType.Float64);
            double denominator = f.square().sum().item<double>();
            if (!(denominator > 0))
            {
                break;
            }
            double refined = (w * f).sum().item<double>() / denominator;
            double e = refined > 0 ? Error(refined) : double.PositiveInfinity;
            if (!(e < bestError))
            {
                break;
            }
            (best, bestError) = (refined, e);
        }
        return tensor((float)best, device: weight.device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The scale of <paramref name="weight"/>: a scalar tensor (<see cref="ScaleMode.PerLayer"/>) or a tensor of
    /// shape <c>[out, 1, 1, ...]</c> (<see cref="ScaleMode.PerOutputChannel"/>). Zero means are replaced by a tiny
    /// positive value so the scale stays positive.
    /// </summary>
    /// <param name="weight">The layer's weights; at least one element.</param>
    /// <param name="mode">Per layer or per output channel.</param>
    public static Tensor MeanAbsolute(Tensor weight, ScaleMode mode)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.numel() == 0)
        {
            throw new ArgumentException("Cannot compute the scale of an empty weight tensor.", nameof(weight));
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor scale;
        switch (mode)
        {
            case ScaleMode.PerLayer:
                scale = weight.abs().mean();
                break;
            case ScaleMode.PerOutputChannel:
                if (weight.dim() < 2)
                {
                    throw new ArgumentException("A per-output-channel scale needs a weight with at least two dimensions.", nameof(weight));
                }
                var shape = new long[weight.dim()];
                Array.Fill(shape, 1L);
                shape[0] = weight.shape[0];
                scale = weight.abs().reshape(weight.shape[0], -1).mean(new long[] { 1 }).reshape(shape);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "ScaleMode must be PerLayer or PerOutputChannel.");
        }
        return scale.ClampMinScalar_(1e-12).detach().MoveToOuterDisposeScope();
    }
}
