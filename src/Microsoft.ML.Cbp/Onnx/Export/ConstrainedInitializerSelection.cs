using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Constraints;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>Which weight initializers of an ONNX graph CBP constrains (docs/CBP.md section 1).</summary>
public static class ConstrainedInitializerSelection
{
    /// <summary>
    /// Weight initializers (two or more dimensions) consumed as Conv weights, Gemm's B or a MatMul operand, directly or
    /// through weight-only ops (Transpose, Reshape, Identity, Cast, Unsqueeze, Squeeze), in graph order; the first and the last of them stay float by default (the paper's choice). Lists by initializer name
    /// override the rule.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="keepFirstAndLastFloat">Leave the first and last weight layers unconstrained (default true).</param>
    /// <param name="include">Initializers to constrain even if the rule leaves them out.</param>
    /// <param name="exclude">Initializers to keep float even if the rule picks them.</param>
    /// <exception cref="ArgumentException">A listed name is not a weight initializer of a Conv, Gemm or MatMul.</exception>
    public static IReadOnlyList<string> Select(ModelProto model, bool keepFirstAndLastFloat = true, IEnumerable<string>? include = null, IEnumerable<string>? exclude = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LayerSelectionRule.Apply(Candidates(model), keepFirstAndLastFloat, include, exclude, "a weight initializer of a Conv, Gemm or MatMul");
    }

    /// <summary>Every weight initializer a constraint may apply to, in graph order.</summary>
    /// <param name="model">The model.</param>
    public static IReadOnlyList<string> Candidates(ModelProto model) => CandidateLayers(model).Select(l => l.Initializer).ToList();

    /// <summary>Every weight initializer a constraint may apply to, in graph order, with the op that first reads it.</summary>
    /// <param name="model">The model.</param>
    internal static IReadOnlyList<(string Initializer, string Op)> CandidateLayers(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in model.Graph.Initializer)
        {
            initializers.TryAdd(t.Name, t);
        }
        var producers = WeightChains.Producers(model.Graph);
        var result = new List<(string, string)>();
        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in model.Graph.Node)
        {
            IEnumerable<int> positions = node.OpType switch
            {
                "Conv" => new[] { 1 },
                "Gemm" => new[] { 1 },
                "MatMul" => new[] { 0, 1 },
                _ => Array.Empty<int>(),
            };
            foreach (int p in positions.Where(p => p < node.Input.Count))
            {
                // The weight may reach the layer through weight-only ops (Transpose -> MatMul from PyTorch's bias-free Linear).
                string? name = WeightChains.SourceInitializer(node.Input[p], producers, initializers.ContainsKey);
                if (name is not null && initializers.TryGetValue(name, out var t) && t.Dims.Count >= 2 && t.DataType is OnnxTensorConversion.DataTypes.Float or OnnxTensorConversion.DataTypes.Double
                    && found.Add(name))
                {
                    result.Add((name, node.OpType));
                }
            }
        }
        return result;
    }
}
