using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Onnx;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>The model summary's rows: every weight layer with its op, shape, precision, bytes in float and in the compact file, and how CBP ended on it.</summary>
internal static class WeightLayerSummary
{
    /// <summary>Builds one row per weight layer of <paramref name="model"/>, in graph order.</summary>
    /// <param name="model">The network as trained (its graph and initializer shapes).</param>
    /// <param name="precision">Each selected layer's level set and storage (float when a size budget left it float).</param>
    /// <param name="floatByOption">Initializers kept float by <see cref="CbpQuantizeOptions.FloatLayers"/>.</param>
    /// <param name="compact">The compact file's model (SaveOnnx's form), whose bytes per tensor are counted.</param>
    /// <param name="statistics">CBP's end state per constrained initializer (before the final projection); null without CBP.</param>
    /// <param name="scales">Each constrained initializer's scales.</param>
    public static List<CbpWeightLayer> Rows(ModelProto model, IReadOnlyDictionary<string, LayerPrecision> precision, IEnumerable<string> floatByOption,
        ModelProto? compact, IReadOnlyDictionary<string, ConstraintStatistics>? statistics, IReadOnlyDictionary<string, float[]>? scales)
    {
        var excluded = new HashSet<string>(floatByOption, StringComparer.Ordinal);
        var rows = new List<CbpWeightLayer>();
        foreach (var (name, op) in ConstrainedInitializerSelection.CandidateLayers(model))
        {
            var dims = model.Graph.Initializer.First(t => t.Name == name).Dims.ToArray();
            long weights = dims.Aggregate(1L, (a, b) => a * b);
            var choice = precision.TryGetValue(name, out var c) ? c : null;
            bool constrained = choice?.Constraint is not null;
            var state = constrained ? CbpWeightLayerState.Constrained
                : choice is not null ? CbpWeightLayerState.FloatByBudget
                : excluded.Contains(name) ? CbpWeightLayerState.FloatByOption
                : CbpWeightLayerState.FloatFirstOrLast;
            var stats = constrained && statistics is not null && statistics.TryGetValue(name, out var s) ? s : null;
            rows.Add(new CbpWeightLayer(name, weights, state)
            {
                Op = op,
                Shape = dims,
                Precision = constrained ? choice!.Constraint!.Name : "float",
                BitsPerWeight = constrained ? QuantizedOnnxExporter.Bits(choice!.Storage!.Value) : 32,
                CompactBytes = compact is null ? weights * sizeof(float) : StoredBytes.Of(compact, name),
                NormalizedCfs = stats?.NormalizedCfs,
                FractionOnLevel = stats?.FractionOnLevel,
                Scale = constrained && scales is not null && scales.TryGetValue(name, out var scale) ? scale.Average(v => (double)v) : null,
            });
        }
        return rows;
    }
}
