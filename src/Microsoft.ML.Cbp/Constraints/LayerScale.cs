using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Constraints;

/// <summary>Computes layer scales (CBP.md section 1).</summary>
public static class LayerScale
{
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
