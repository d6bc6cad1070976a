using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Cbp.Scoring;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Onnx;
using Onnx;

namespace Microsoft.ML;

/// <summary>Loading saved models that contain <c>CbpQuantize</c> with batched ONNX Runtime scoring.</summary>
public static class CbpModelOperations
{
    /// <summary>
    /// Loads a model saved with <c>mlContext.Model.Save</c> like <see cref="ModelOperationsCatalog.Load(string, out DataViewSchema)"/>,
    /// then gives every CbpQuantize step back its batched scoring (one ONNX Runtime run per <paramref name="batchSize"/>
    /// rows instead of one per row). Scores are bit for bit those of the plain load (within float rounding for a model fitted with
    /// a <c>MatMulNBits</c> <see cref="WeightExecution"/>, which it keeps); every other step is unchanged.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">The model zip.</param>
    /// <param name="inputSchema">The schema the model expects.</param>
    /// <param name="batchSize">Rows per ONNX Runtime run; default 256.</param>
    /// <param name="gpuDeviceId">GPU to score on; default null: the CPU, or the MLContext's GpuDeviceId.</param>
    /// <param name="fallbackToCpu">Score on the CPU when the GPU cannot be used; default true.</param>
    /// <returns>The model; CbpQuantize steps are <see cref="CbpQuantizeTransformer"/> instances (dispose the model to release them).</returns>
    public static ITransformer LoadWithBatchedScoring(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema,
        int batchSize = 256, int? gpuDeviceId = null, bool fallbackToCpu = true)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var model = catalog.Load(filePath, out inputSchema);
        int? gpu = gpuDeviceId ?? MLNetInternals.GpuDeviceId(MLNetInternals.Environment(catalog));
        var scoringGraphs = new Dictionary<string, ModelProto>(StringComparer.Ordinal);
        foreach (var (position, bytes) in MLNetInternals.OnnxModels(filePath))
        {
            var onnx = OnnxModelFile.Parse(bytes, $"{filePath} ({position})");
            if (ScoringGraph.IsPerRow(onnx))
            {
                scoringGraphs[position] = onnx;
            }
        }
        return Replace(model, Array.Empty<int>(), scoringGraphs, gpu, fallbackToCpu, batchSize);
    }

    private static ITransformer Replace(ITransformer transformer, int[] position, Dictionary<string, ModelProto> graphs, int? gpu, bool fallbackToCpu, int batchSize)
    {
        if (transformer is not TransformerChain<ITransformer> chain)
        {
            return transformer;
        }
        var steps = chain.ToArray();
        if (steps.Length > 0 && steps[0] is OnnxTransformer && graphs.TryGetValue(string.Join("/", position), out var perRow))
        {
            // No compact export travels in the zip: SaveOnnx writes the batched scoring graph instead.
            return CbpQuantizeTransformer.FromPerRow(perRow, chain, perRow.Graph.Input[0].Name, compactOnnx: null, gpu, fallbackToCpu, batchSize, null, null);
        }
        var replaced = steps.Select((step, i) => Replace(step, position.Append(i).ToArray(), graphs, gpu, fallbackToCpu, batchSize)).ToArray();
        return replaced.SequenceEqual(steps) ? chain : new TransformerChain<ITransformer>(replaced);
    }
}
