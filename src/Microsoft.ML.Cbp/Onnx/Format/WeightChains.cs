using System;
using System.Collections.Generic;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>
/// Weights that reach their layer through weight-only ops: PyTorch exports a bias-free <c>nn.Linear</c> as
/// <c>Transpose(weight) -&gt; MatMul</c>, and other exporters reshape, cast or unsqueeze a weight before its Conv. Such a
/// weight is the initializer at the start of the chain; training and the constraint apply to it, and the chain stays.
/// </summary>
internal static class WeightChains
{
    /// <summary>Ops that only rearrange or retype their first input (a weight passes through them unchanged in value).</summary>
    public static readonly IReadOnlySet<string> WeightOnlyOps = new HashSet<string>(StringComparer.Ordinal)
    {
        "Transpose", "Reshape", "Identity", "Cast", "Unsqueeze", "Squeeze",
    };

    /// <summary>The longest chain followed (a guard against cyclic or adversarial graphs).</summary>
    private const int MaxChainLength = 16;

    /// <summary>Each tensor's producing node (the first, when a malformed graph has several).</summary>
    /// <param name="graph">The graph.</param>
    public static Dictionary<string, NodeProto> Producers(GraphProto graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (string output in node.Output)
            {
                producers.TryAdd(output, node);
            }
        }
        return producers;
    }

    /// <summary>
    /// The initializer that <paramref name="tensor"/> is computed from by weight-only ops (through the first input of
    /// each), the tensor itself when it is an initializer, or null.
    /// </summary>
    /// <param name="tensor">A node input.</param>
    /// <param name="producers">From <see cref="Producers"/>.</param>
    /// <param name="isInitializer">Whether a name is an initializer.</param>
    public static string? SourceInitializer(string tensor, IReadOnlyDictionary<string, NodeProto> producers, Func<string, bool> isInitializer)
    {
        ArgumentNullException.ThrowIfNull(producers);
        ArgumentNullException.ThrowIfNull(isInitializer);
        for (int step = 0; step <= MaxChainLength && !string.IsNullOrEmpty(tensor); step++)
        {
            if (isInitializer(tensor))
            {
                return tensor;
            }
            if (!producers.TryGetValue(tensor, out var node) || !WeightOnlyOps.Contains(node.OpType) || node.Input.Count == 0
                || node.Domain is not ("" or "ai.onnx"))
            {
                return null;
            }
            tensor = node.Input[0];
        }
        return null;
    }
}
