using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// Already-quantized models (weight-only QDQ, as ONNX Runtime's quantization tool or a compact export writes them) keep
/// weights as integer initializers behind <c>DequantizeLinear</c>. To train such a model, each DequantizeLinear whose
/// inputs are all initializers is evaluated once (by the interpreter's own op) into a float initializer that takes the
/// node's output name: the latent weight that training starts from and the constraint then applies to, like any float
/// weight. Values are unchanged, so the model computes what it computed before.
/// </summary>
internal static class DequantizedWeights
{
    /// <summary>Integer element types DequantizeLinear reads (ONNX's int8, uint8, int32, int4, uint4, int2, uint2).</summary>
    private static readonly HashSet<int> IntegerTypes = new()
    {
        OnnxTensorConversion.DataTypes.Int8, OnnxTensorConversion.DataTypes.UInt8, OnnxTensorConversion.DataTypes.Int32,
        OnnxTensorConversion.DataTypes.Int4, OnnxTensorConversion.DataTypes.UInt4, OnnxTensorConversion.DataTypes.Int2, OnnxTensorConversion.DataTypes.UInt2,
    };

    /// <summary>
    /// A copy of <paramref name="model"/> with every DequantizeLinear of integer initializers replaced by its float value
    /// (the integer initializers go when nothing else reads them); <paramref name="model"/> itself when there is none.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="folded">The names of the float initializers made.</param>
    public static ModelProto Fold(ModelProto model, out IReadOnlyList<string> folded)
    {
        ArgumentNullException.ThrowIfNull(model);
        var initializers = model.Graph.Initializer.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var foldable = model.Graph.Node.Where(n => n.OpType == "DequantizeLinear" && n.Domain is "" or "ai.onnx" && n.Output.Count == 1 && n.Input.Count >= 2
            && initializers.TryGetValue(n.Input[0], out var x) && IntegerTypes.Contains(x.DataType)
            && n.Input.All(i => string.IsNullOrEmpty(i) || initializers.ContainsKey(i))).ToList();
        if (foldable.Count == 0)
        {
            folded = Array.Empty<string>();
            return model;
        }
        var result = model.Clone();
        var graph = result.Graph;
        var dequantize = OnnxOpRegistry.Find("DequantizeLinear")!;
        int opset = OnnxModelFile.DefaultOpset(model);
        var made = new List<string>();
        foreach (var node in foldable)
        {
            using var scope = NewDisposeScope();
            var inputs = node.Input.Select(i => string.IsNullOrEmpty(i) ? null : TorchTensorConversion.ToTorch(initializers[i])).ToArray();
            Tensor value;
            try
            {
                value = dequantize(new OnnxOpContext(node, inputs, opset, training: false, fixedBatch: null))[0];
            }
            catch (Exception e) when (e is not (InvalidDataException or NotSupportedException))
            {
                string shapes = string.Join("; ", node.Input.Zip(inputs, (n, t) => $"{n}: {(t is null ? "omitted" : "[" + string.Join(", ", t.shape) + "]")}"));
                throw new InvalidDataException($"{OnnxAttributes.Describe(node)} cannot dequantize its initializers ({shapes}): {e.Message}", e);
            }
            graph.Initializer.Add(TorchTensorConversion.FromFloat(node.Output[0], value));
            graph.Node.Remove(graph.Node.First(n => n.Equals(node)));
            made.Add(node.Output[0]);
        }
        // Integer initializers (codes, zero points) and scales that no node reads any more go, with their graph-input entries.
        var read = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        var unused = foldable.SelectMany(n => n.Input).Where(i => !string.IsNullOrEmpty(i) && !read.Contains(i)).ToHashSet(StringComparer.Ordinal);
        foreach (var t in graph.Initializer.Where(t => unused.Contains(t.Name)).ToList())
        {
            graph.Initializer.Remove(t);
        }
        foreach (var input in graph.Input.Where(i => unused.Contains(i.Name)).ToList())
        {
            graph.Input.Remove(input);
        }
        folded = made;
        return result;
    }
}
