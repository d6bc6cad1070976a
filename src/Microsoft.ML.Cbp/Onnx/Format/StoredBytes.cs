using System;
using System.Collections.Generic;
using System.Linq;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// How many bytes a model file spends on one tensor: the initializers and Constant-node values it is computed from
/// through nodes with no graph input upstream (a stored weight, or codes and a scale with their decode).
/// </summary>
internal static class StoredBytes
{
    /// <summary>The data bytes behind <paramref name="tensor"/>; 0 when it depends on a graph input or does not exist.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tensor">An initializer or a node output.</param>
    /// <param name="withFraming">Count what the file spends on the nodes and tensors too (names, op types, attributes, protobuf
    /// framing), not only the data: what a size budget must count.</param>
    public static long Of(ModelProto model, string tensor, bool withFraming = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var initializers = model.Graph.Initializer.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var producers = WeightChains.Producers(model.Graph);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        var pending = new Stack<string>();
        pending.Push(tensor);
        while (pending.Count > 0)
        {
            string name = pending.Pop();
            if (string.IsNullOrEmpty(name) || !seen.Add(name))
            {
                continue;
            }
            if (initializers.TryGetValue(name, out var t))
            {
                total += withFraming ? t.CalculateSize() + 4 : Bytes(t);
            }
            else if (producers.TryGetValue(name, out var node))
            {
                if (withFraming)
                {
                    total += node.CalculateSize() + 4;
                }
                else if (node.OpType == "Constant")
                {
                    total += node.Attribute.Where(a => a.Name == "value" && a.T is not null).Sum(a => Bytes(a.T));
                }
                else if (node.Input.Count == 0)
                {
                    return 0;
                }
                foreach (string input in node.Input)
                {
                    pending.Push(input);
                }
            }
            else
            {
                // A graph input: the tensor is computed from data, not stored.
                return 0;
            }
        }
        return total;
    }

    private static long Bytes(TensorProto t) => t.RawData.Length + 4L * (t.FloatData.Count + t.Int32Data.Count) + 8L * (t.Int64Data.Count + t.DoubleData.Count);
}
