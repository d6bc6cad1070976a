using System;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>The training report's histogram of a layer's latent weights divided by its scale (<see cref="WeightHistogram"/>).</summary>
internal static class LatentHistogram
{
    private const double HistogramRange = 1.5;
    private const int HistogramBins = 150;

    /// <summary>Counts of latent / scale in <see cref="HistogramBins"/> bins over [-HistogramRange, HistogramRange] (ends clamped).</summary>
    public static long[] Count(ConstrainedParameter parameter)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var normalized = (parameter.Latent / parameter.Scale).flatten().cpu().to(float64).data<double>().ToArray();
        var counts = new long[HistogramBins];
        foreach (double v in normalized)
        {
            int bin = (int)Math.Floor((v + HistogramRange) / (2 * HistogramRange) * HistogramBins);
            counts[Math.Clamp(bin, 0, HistogramBins - 1)]++;
        }
        return counts;
    }

    /// <summary>The report of counts taken before and after CBP.</summary>
    /// <param name="layer">ONNX name of the weight tensor.</param>
    /// <param name="before">Counts before CBP.</param>
    /// <param name="after">Counts after CBP.</param>
    public static WeightHistogram Report(string layer, long[] before, long[] after) => new(layer, -HistogramRange, HistogramRange, before, after);
}
