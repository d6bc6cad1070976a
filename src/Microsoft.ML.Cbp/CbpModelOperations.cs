using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Onnx;
using Onnx;

namespace Microsoft.ML;

/// <summary>Loading saved models that contain <c>CbpQuantize</c> with batched ONNX Runtime scoring.</summary>
public static class CbpModelOperations
{
    private static readonly Regex TransformIndex = new(@"^Transform_(\d+)$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Loads a model saved with <c>mlContext.Model.Save</c> like <see cref="ModelOperationsCatalog.Load(string, out DataViewSchema)"/>,
    /// then gives every CbpQuantize step back its batched scoring (one ONNX Runtime run per <paramref name="batchSize"/>
    /// rows instead of one per row). Scores are bit for bit those of the plain load; every other step is unchanged.
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
        var environment = CbpCatalog.Environment(catalog);
        int? gpu = gpuDeviceId ?? environment?.GetType().GetProperty("GpuDeviceId", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)?.GetValue(environment) as int?;
        var scoringGraphs = ReadScoringGraphs(filePath);
        return Replace(model, Array.Empty<int>(), scoringGraphs, gpu, fallbackToCpu, batchSize);
    }

    /// <summary>The per-row scoring graphs in a model zip, by the position of the chain that holds them.</summary>
    private static Dictionary<string, ModelProto> ReadScoringGraphs(string filePath)
    {
        var graphs = new Dictionary<string, ModelProto>(StringComparer.Ordinal);
        using var zip = ZipFile.OpenRead(filePath);
        foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith("/OnnxModel", StringComparison.Ordinal)))
        {
            using var stream = entry.Open();
            using var reader = new BinaryReader(stream);
            int length = reader.ReadInt32();
            var bytes = reader.ReadBytes(length);
            var onnx = OnnxModelFile.Parse(bytes, entry.FullName);
            if (onnx.MetadataProps.Any(p => p.Key == "cbp.scoring.form" && p.Value == "per_row"))
            {
                var indices = entry.FullName.Split('/').Select(s => TransformIndex.Match(s)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
                // The OnnxTransformer is the first step of the chain CbpQuantize saved; the chain sits one level up.
                graphs[string.Join("/", indices.Take(indices.Length - 1))] = onnx;
            }
        }
        return graphs;
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
