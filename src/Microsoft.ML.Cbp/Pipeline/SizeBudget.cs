using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>A weight layer's precision under a size budget: a level set and its storage, or float (both null).</summary>
/// <param name="Constraint">The level set, or null for float.</param>
/// <param name="Storage">The narrowest storage that holds the level set, or null for float.</param>
internal sealed record LayerPrecision(WeightConstraint? Constraint, WeightStorage? Storage)
{
    /// <summary>Float: the layer is not constrained.</summary>
    public static LayerPrecision Float { get; } = new(null, null);
}

/// <summary>
/// Mixed precision under <see cref="CbpQuantizeOptions.MaxModelBytes"/>: each candidate layer gets one of the
/// <see cref="CbpQuantizeOptions.MixedConstraints"/> (in the narrowest storage that holds it) or float, so that the compact
/// file fits the budget with the least total loss increase. The loss increase of a choice is measured on training batches
/// with that layer alone rounded to the level set (minimum-error scale), the others float; the choice is a multiple-choice
/// knapsack over bytes solved by dynamic programming; the file size of a plan is measured by exporting it (weights rounded
/// on a copy), and the byte capacity shrinks by any excess until the file fits.
/// </summary>
internal static class SizeBudget
{
    /// <summary>Byte buckets of the dynamic programme (the capacity is divided into at most this many).</summary>
    private const int Buckets = 20_000;

    /// <summary>The narrowest storage whose codes hold <paramref name="constraint"/>'s levels: OneBit, Int2, Int4, then Int8.</summary>
    /// <param name="constraint">The level set.</param>
    /// <exception cref="ArgumentException">No integer storage holds it (levels without a common unit).</exception>
    public static WeightStorage StorageFor(WeightConstraint constraint)
    {
        foreach (var storage in new[] { WeightStorage.OneBit, WeightStorage.Int2, WeightStorage.Int4, WeightStorage.Int8 })
        {
            try
            {
                QuantizedOnnxExporter.CheckStorage(constraint, storage, "the level set");
                return storage;
            }
            catch (ArgumentException)
            {
            }
        }
        throw new ArgumentException($"MixedConstraints: {constraint} has no integer storage (its levels are not multiples of a common unit); choose level sets that have.", nameof(CbpQuantizeOptions.MixedConstraints));
    }

    /// <summary>The choices of every layer: each mixed level set with its storage, then float.</summary>
    /// <param name="options">The Fit's options.</param>
    public static IReadOnlyList<LayerPrecision> Choices(CbpQuantizeOptions options) =>
        options.MixedConstraints.Select(c => new LayerPrecision(c, StorageFor(c))).Append(LayerPrecision.Float).ToList();

    /// <summary>
    /// The plan that fits <paramref name="budget"/> with the least total loss increase, or throws naming the smallest
    /// reachable size. <paramref name="compact"/> builds the compact file of a plan (weights rounded on a copy).
    /// </summary>
    /// <param name="layers">The candidate layers (initializer names).</param>
    /// <param name="choices">The choices, float last.</param>
    /// <param name="lossIncrease">Per layer and choice, the measured loss increase (0 for float); null to check the budget only.</param>
    /// <param name="budget">MaxModelBytes.</param>
    /// <param name="compact">The compact file's model under a plan.</param>
    /// <returns>The plan; with no <paramref name="lossIncrease"/>, the smallest plan.</returns>
    public static Dictionary<string, LayerPrecision> Plan(IReadOnlyList<string> layers, IReadOnlyList<LayerPrecision> choices, double[][]? lossIncrease, long budget,
        Func<IReadOnlyDictionary<string, LayerPrecision>, global::Onnx.ModelProto> compact)
    {
        // Bytes of each layer under each choice, read from one file per choice (every layer at that choice).
        var stored = new long[layers.Count][];
        for (int i = 0; i < layers.Count; i++)
        {
            stored[i] = new long[choices.Count];
        }
        for (int k = 0; k < choices.Count; k++)
        {
            var model = compact(layers.ToDictionary(l => l, _ => choices[k]));
            for (int i = 0; i < layers.Count; i++)
            {
                stored[i][k] = StoredBytes.Of(model, layers[i], withFraming: true);
            }
        }
        long Size(IReadOnlyDictionary<string, LayerPrecision> plan) => OnnxModelFile.ToBytes(compact(plan)).LongLength;
        int[] cheapest = stored.Select(row => Array.IndexOf(row, row.Min())).ToArray();
        var smallestPlan = layers.Select((l, i) => (l, choices[cheapest[i]])).ToDictionary(p => p.l, p => p.Item2);
        long smallest = Size(smallestPlan);
        if (smallest > budget)
        {
            throw new ArgumentException(
                $"MaxModelBytes {budget:N0} is below the smallest file these layers can make: {smallest:N0} bytes ({string.Join(", ", smallestPlan.Select(p => $"{p.Key} {Describe(p.Value)}"))}). " +
                "Raise the budget, add a smaller level set to MixedConstraints, or constrain more layers (KeepFirstAndLastLayersFloat = false, fewer FloatLayers).",
                nameof(CbpQuantizeOptions.MaxModelBytes));
        }
        if (lossIncrease is null)
        {
            return smallestPlan;
        }
        var extra = stored.Select((row, i) => row.Select(b => b - row[cheapest[i]]).ToArray()).ToArray();
        long capacity = budget - smallest;
        for (int attempt = 0; attempt < 8 && capacity >= 0; attempt++)
        {
            int[] pick = Knapsack(lossIncrease, extra, capacity);
            var plan = layers.Select((l, i) => (l, choices[pick[i]])).ToDictionary(p => p.l, p => p.Item2);
            long size = Size(plan);
            if (size <= budget)
            {
                return plan;
            }
            // Protobuf framing the per-layer bytes do not count: try again with less room.
            capacity -= size - budget;
        }
        return smallestPlan;
    }

    /// <summary>
    /// Multiple-choice knapsack: one choice per layer, total bytes at most <paramref name="capacity"/> (bytes rounded up to
    /// buckets, so the total never exceeds it), least total loss. Each layer needs a choice of 0 bytes (costs are over its cheapest).
    /// </summary>
    /// <param name="loss">Per layer and choice, the cost to minimise.</param>
    /// <param name="bytes">Per layer and choice, the bytes it adds.</param>
    /// <param name="capacity">Bytes available.</param>
    public static int[] Knapsack(double[][] loss, long[][] bytes, long capacity)
    {
        int n = loss.Length;
        long bucket = Math.Max(1, (capacity + Buckets - 1) / Buckets);
        int size = (int)(Math.Max(0, capacity) / bucket);
        var best = new double[n + 1][];
        var choice = new int[n][];
        best[0] = Enumerable.Repeat(double.PositiveInfinity, size + 1).ToArray();
        best[0][0] = 0;
        for (int i = 0; i < n; i++)
        {
            best[i + 1] = Enumerable.Repeat(double.PositiveInfinity, size + 1).ToArray();
            choice[i] = new int[size + 1];
            for (int k = 0; k < loss[i].Length; k++)
            {
                long cost = (bytes[i][k] + bucket - 1) / bucket;
                for (int used = 0; used + cost <= size; used++)
                {
                    double total = best[i][used] + loss[i][k];
                    if (total < best[i + 1][used + cost])
                    {
                        best[i + 1][used + cost] = total;
                        choice[i][used + cost] = k;
                    }
                }
            }
        }
        int end = Enumerable.Range(0, size + 1).OrderBy(j => best[n][j]).ThenBy(j => j).First();
        if (double.IsPositiveInfinity(best[n][end]))
        {
            throw new InvalidOperationException("No choice of precisions fits the capacity.");
        }
        var result = new int[n];
        for (int i = n - 1; i >= 0; i--)
        {
            result[i] = choice[i][end];
            end -= (int)((bytes[i][result[i]] + bucket - 1) / bucket);
        }
        return result;
    }

    /// <summary>
    /// The loss increase of each layer and choice: the mean loss over <paramref name="batches"/> with that layer alone
    /// rounded to the choice's levels, minus the float network's (evaluation mode; the weights are restored).
    /// </summary>
    /// <param name="module">The network after float pre-training.</param>
    /// <param name="loss">The task loss.</param>
    /// <param name="batches">A few training batches.</param>
    /// <param name="layers">Candidate layers (initializer names).</param>
    /// <param name="choices">The choices, float last.</param>
    /// <param name="scaleMode">How each layer's scale is chosen.</param>
    public static double[][] LossIncrease(OnnxGraphModule module, Func<Tensor, Tensor, Tensor> loss, IReadOnlyList<(Tensor Features, Tensor Labels)> batches,
        IReadOnlyList<string> layers, IReadOnlyList<LayerPrecision> choices, ScaleMode scaleMode)
    {
        double MeanLoss()
        {
            using var noGrad = no_grad();
            double sum = 0;
            foreach (var (features, labels) in batches)
            {
                using var scope = NewDisposeScope();
                sum += loss(module.forward(features), labels).item<float>();
            }
            return sum / batches.Count;
        }
        module.eval();
        try
        {
            double baseline = MeanLoss();
            var result = new double[layers.Count][];
            for (int i = 0; i < layers.Count; i++)
            {
                result[i] = new double[choices.Count];
                var weight = module.InitializerValue(layers[i]);
                using var saved = weight.detach().clone();
                for (int k = 0; k < choices.Count; k++)
                {
                    if (choices[k].Constraint is not { } constraint)
                    {
                        continue;
                    }
                    Baselines.RoundToLevels(module, new[] { module.MemberName(layers[i]) }, constraint, scaleMode);
                    // A loss that is not finite (the layer rounded breaks the network) is the worst choice, not an undefined one.
                    double increase = MeanLoss() - baseline;
                    result[i][k] = double.IsFinite(increase) ? Math.Max(0, increase) : 1e30;
                    using (no_grad())
                    {
                        weight.copy_(saved);
                    }
                }
            }
            return result;
        }
        finally
        {
            module.train();
        }
    }

    /// <summary>"Binary (OneBit)" or "float".</summary>
    /// <param name="choice">A choice.</param>
    public static string Describe(LayerPrecision choice) => choice.Constraint is { } c ? $"{c.Name} ({choice.Storage})" : "float";
}
