using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.ML.Cbp.Training;

namespace Microsoft.ML.Cbp;

/// <summary>What <see cref="CbpQuantizeEstimator.Fit"/> did and what it produced.</summary>
public sealed record CbpTrainingReport
{
    /// <summary>The network trained ("SmallCnn", "Mlp(256-256)", or "pretrained").</summary>
    public required string Network { get; init; }

    /// <summary>The level set (with <see cref="MaxModelBytes"/>, each layer's is in <see cref="WeightLayers"/> and this is the unused option).</summary>
    public required WeightConstraint Constraint { get; init; }

    /// <summary>"CPU" or "CUDA": where TorchSharp trained.</summary>
    public required string TrainingDevice { get; init; }

    /// <summary>Training rows per pass (rows with a missing label are skipped and counted in <see cref="SkippedRows"/>); under data-parallel training every rank's rows together.</summary>
    public required long TrainingRows { get; init; }

    /// <summary>Rows skipped per pass for a missing label.</summary>
    public required long SkippedRows { get; init; }

    /// <summary>Rows left out per pass for NaN or infinite features (<see cref="CbpQuantizeOptions.SkipRowsWithNonFiniteFeatures"/>).</summary>
    public long SkippedNonFiniteRows { get; init; }

    /// <summary>
    /// How the training data was read: cached in memory as a tensor (data within
    /// <see cref="CbpQuantizeOptions.DataCacheBudgetBytes"/>), or streamed from the IDataView a batch at a time with background
    /// prefetch, and how it was shuffled.
    /// </summary>
    public string DataPath { get; init; } = "";

    /// <summary>Seconds the trainer waited for streamed batches (reading and transforming rows that prefetch did not hide); 0 for cached data.</summary>
    public double DataWaitSeconds { get; init; }

    /// <summary>TorchSharp intra-op threads during training (see <see cref="CbpQuantizeOptions.TrainingThreads"/>).</summary>
    public int TrainingThreads { get; init; }

    /// <summary>ONNX names of the constrained weight tensors.</summary>
    public required IReadOnlyList<string> ConstrainedLayers { get; init; }

    /// <summary>
    /// Every weight layer of the network in graph order, with its size and whether it was constrained or kept float (and
    /// why), so no layer is left float silently. Empty for a report made before this property existed.
    /// </summary>
    public IReadOnlyList<CbpWeightLayer> WeightLayers { get; init; } = System.Array.Empty<CbpWeightLayer>();

    /// <summary>One report per float pre-training epoch.</summary>
    public required IReadOnlyList<EpochReport> Pretraining { get; init; }

    /// <summary>One report per CBP schedule epoch (<see cref="CbpQuantizeOptions.ScheduleEpochsPerPass"/> per pass over the data).</summary>
    public required IReadOnlyList<EpochReport> Cbp { get; init; }

    /// <summary>Validation accuracy of the float network before CBP (classification with validation data), else null.</summary>
    public double? FloatValidationAccuracy { get; init; }

    /// <summary>Validation accuracy of the constrained network after the final projection, else null.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>CFS before the final projection (mean distance of a latent weight to its level, in weight units).</summary>
    public required double FinalCfs { get; init; }

    /// <summary>Scale-normalised CFS before the final projection.</summary>
    public required double FinalNormalizedCfs { get; init; }

    /// <summary>Fraction of latent weights on their level before the final projection.</summary>
    public required double FractionOnLevel { get; init; }

    /// <summary>Bytes of the network as a float ONNX model.</summary>
    public required long FloatModelBytes { get; init; }

    /// <summary>Bytes of the compact ONNX model that <see cref="CbpQuantizeTransformer.SaveOnnx(string)"/> writes.</summary>
    public required long CompactModelBytes { get; init; }

    /// <summary>Histogram of the largest constrained layer's latent weights divided by its scale, before and after CBP.</summary>
    public WeightHistogram? LatentHistogram { get; init; }

    /// <summary>Wall-clock seconds of the whole Fit.</summary>
    public required double Seconds { get; init; }

    /// <summary>The size budget the per-layer precisions were chosen under (<see cref="CbpQuantizeOptions.MaxModelBytes"/>), or null.</summary>
    public long? MaxModelBytes { get; init; }

    /// <summary>
    /// The model summary as Markdown: what was trained and how it ended, then one row per weight layer (op, shape, weights,
    /// precision and why, bits per weight, float and compact bytes, final CFS / s, fraction on level, scale) and the totals.
    /// </summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        var culture = CultureInfo.InvariantCulture;
        string accuracy = ValidationAccuracy is double a
            ? string.Create(culture, $"; validation accuracy {a:P2}") + (FloatValidationAccuracy is double f ? string.Create(culture, $" (float {f:P2})") : "")
            : "";
        string weights = MaxModelBytes is long budget ? string.Create(culture, $"mixed-precision weights (MaxModelBytes {budget:N0})") : $"{Constraint.Name} weights";
        text.AppendLine(culture, $"{Network}, {weights}, trained on {TrainingDevice} ({TrainingRows:N0} rows) in {Seconds:F1} s; " +
            $"compact file {CompactModelBytes:N0} bytes, {CompactModelBytes / (double)Math.Max(1, FloatModelBytes):F3} of float ({FloatModelBytes:N0}){accuracy}.");
        text.AppendLine();
        text.AppendLine("| layer | op | shape | weights | precision | bits/weight | float bytes | compact bytes | CFS / s | on level | scale |");
        text.AppendLine("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|");
        foreach (var layer in WeightLayers)
        {
            string precision = layer.State switch
            {
                CbpWeightLayerState.Constrained => layer.Precision,
                CbpWeightLayerState.FloatByOption => "float (FloatLayers)",
                CbpWeightLayerState.FloatByBudget => "float (size budget)",
                _ => "float (first or last layer)",
            };
            text.AppendLine(culture, $"| {layer.Name} | {layer.Op} | {string.Join("x", layer.Shape)} | {layer.Weights:N0} | {precision} | {layer.BitsPerWeight} | " +
                $"{layer.FloatBytes:N0} | {layer.CompactBytes:N0} | {(layer.NormalizedCfs is double cfs ? cfs.ToString("F4", culture) : "")} | " +
                $"{(layer.FractionOnLevel is double on ? on.ToString("P1", culture) : "")} | {(layer.Scale is double scale ? scale.ToString("G4", culture) : "")} |");
        }
        long totalWeights = WeightLayers.Sum(l => l.Weights), floatBytes = WeightLayers.Sum(l => l.FloatBytes), compactBytes = WeightLayers.Sum(l => l.CompactBytes);
        text.AppendLine(culture, $"| total ({WeightLayers.Count} layers) | | | {totalWeights:N0} | {WeightLayers.Count(l => l.State == CbpWeightLayerState.Constrained)} constrained | " +
            $"{8.0 * compactBytes / Math.Max(1, totalWeights):F2} | {floatBytes:N0} | {compactBytes:N0} | {FinalNormalizedCfs:F4} | {FractionOnLevel:P1} | |");
        return text.ToString();
    }
}

/// <summary>
/// A histogram of one layer's latent weights divided by the layer scale (so the levels are the level set's values),
/// before CBP (the float weights it started from) and after it (before the final projection).
/// </summary>
/// <param name="Layer">ONNX name of the weight tensor.</param>
/// <param name="Min">Lower edge of the first bin.</param>
/// <param name="Max">Upper edge of the last bin; values outside [Min, Max] count in the end bins.</param>
/// <param name="Before">Counts per bin before CBP.</param>
/// <param name="After">Counts per bin after CBP.</param>
public sealed record WeightHistogram(string Layer, double Min, double Max, long[] Before, long[] After)
{
    /// <summary>Number of bins.</summary>
    public int Bins => Before.Length;

    /// <summary>Centre of bin <paramref name="bin"/>.</summary>
    /// <param name="bin">0-based bin.</param>
    public double Centre(int bin) => Min + ((bin + 0.5) * (Max - Min) / Bins);
}
