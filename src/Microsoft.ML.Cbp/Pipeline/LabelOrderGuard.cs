using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// Refuses to post-train a pretrained classifier whose class order is not the label column's key order (ML.NET's
/// default <c>MapValueToKey</c> numbers values in order of appearance): training would silently spend its budget
/// relearning the permutation. The untouched model scores rows sampled across the training data; a relabelling of its
/// predictions is fitted on half of them (the best one-to-one assignment) and measured on the other half, so the test
/// does not reward the assignment for fitting noise.
/// </summary>
internal static class LabelOrderGuard
{
    /// <summary>Rows scored at least (all rows when the data has fewer): 1,000.</summary>
    public const int MinimumSampleRows = 1_000;

    /// <summary>Rows scored at most: 20 per class are scored when that is more than 1,000, up to 10,000 (a 1,000-class model).</summary>
    public const int MaximumSampleRows = 10_000;

    /// <summary>
    /// The accuracy gain at which Fit fails: the relabelling must beat both the key order and the best constant guess
    /// (the held-out half's most frequent class) by 10 points.
    /// </summary>
    public const double MaximumGain = 0.10;

    /// <summary>
    /// The sign test's z on the held-out rows that only one of the two orders gets right, above which the gain is not
    /// chance (about one in a thousand): small samples cannot trigger the guard by luck.
    /// </summary>
    private const double MinimumZ = 3.1;

    private const int ScoringBatchRows = 256;

    /// <summary>Scores the sample with the untouched <paramref name="module"/> and throws when the key order is not the model's class order.</summary>
    /// <param name="module">The pretrained network, before any training, on the training device.</param>
    /// <param name="rowShape">How the network sees one row.</param>
    /// <param name="train">The training data.</param>
    /// <param name="dataRows">Its labelled rows (every shard's together under data-parallel training: every rank samples the same rows).</param>
    /// <param name="classNames">The label's key values in key order (for the message), or null.</param>
    /// <param name="options">The Fit's options (column names, cancellation).</param>
    /// <exception cref="ArgumentException">The best relabelling beats the key order and the best constant guess by <see cref="MaximumGain"/> or more.</exception>
    public static void Check(OnnxGraphModule module, long[] rowShape, TrainingData train, long dataRows, IReadOnlyList<string>? classNames, CbpQuantizeOptions options)
    {
        int classes = train.ClassCount;
        var labels = new List<long>();
        var predictions = new List<long>();
        var device = module.parameters().FirstOrDefault()?.device ?? CPU;
        module.eval();
        try
        {
            using var noGrad = no_grad();
            train.SampleClasses(dataRows, Math.Clamp(20 * classes, MinimumSampleRows, MaximumSampleRows), ScoringBatchRows, (features, batchLabels, count) =>
            {
                using var scope = NewDisposeScope();
                var batch = tensor(features, new long[] { ScoringBatchRows }.Concat(rowShape).ToArray()).narrow(0, 0, count).to(device);
                using var predicted = module.forward(batch).reshape(count, -1).argmax(1).cpu();
                predictions.AddRange(predicted.data<long>().ToArray());
                labels.AddRange(batchLabels.Take(count));
            });
        }
        finally
        {
            module.train();
        }
        int rows = labels.Count;
        if (rows < 2)
        {
            return;
        }
        // Fit the relabelling (label -> predicted class) on the even rows; measure it against the key order on the odd rows.
        var counts = new long[classes, classes];
        for (int i = 0; i < rows; i += 2)
        {
            counts[labels[i], predictions[i]]++;
        }
        int[] assignment = BestAssignment.Maximise(counts);
        int heldOut = 0, keyOrder = 0, relabelled = 0, onlyRelabelled = 0, onlyKeyOrder = 0;
        var frequency = new int[classes];
        for (int i = 1; i < rows; i += 2)
        {
            bool a = predictions[i] == labels[i], b = predictions[i] == assignment[labels[i]];
            heldOut++;
            frequency[labels[i]]++;
            keyOrder += a ? 1 : 0;
            relabelled += b ? 1 : 0;
            onlyRelabelled += b && !a ? 1 : 0;
            onlyKeyOrder += a && !b ? 1 : 0;
        }
        // A model that always predicts one class "gains" from a relabelling onto the most frequent label: not a permutation.
        int baseline = Math.Max(keyOrder, frequency.Max());
        double gain = (relabelled - baseline) / (double)heldOut;
        int discordant = onlyRelabelled + onlyKeyOrder;
        double z = discordant == 0 ? 0 : (onlyRelabelled - onlyKeyOrder) / Math.Sqrt(discordant);
        if (gain < MaximumGain || z < MinimumZ)
        {
            return;
        }
        string Name(int k) => classNames is not null && k < classNames.Count ? $"key {k + 1} ('{classNames[k]}')" : $"key {k + 1}";
        var moved = Enumerable.Range(0, classes).Where(k => assignment[k] != k)
            .OrderByDescending(k => counts[k, assignment[k]]).Take(3)
            .Select(k => $"{Name(k)} is mostly predicted as output {assignment[k]}");
        throw new ArgumentException(
            $"The pretrained model's classes are not in the order of label column '{options.LabelColumnName}': on {heldOut:N0} of {rows:N0} rows sampled across the training data " +
            "(the half the relabelling was not fitted on), " +
            $"its predictions match the labels {keyOrder / (double)heldOut:P1} of the time in key order but {relabelled / (double)heldOut:P1} after relabelling its outputs " +
            $"({string.Join("; ", moved)}). Training would spend its budget relearning the order. ML.NET's MapValueToKey numbers values in order of appearance by default: " +
            "use MapValueToKey(..., keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue) when the model's outputs are the sorted label values, or pass keyData " +
            "with the label values in the model's output order. If the new order is intended (the network is to relearn its classes), set CheckLabelOrder = false.",
            nameof(options));
    }
}
