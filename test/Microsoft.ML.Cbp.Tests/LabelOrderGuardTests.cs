using System;
using System.Collections.Generic;
using System.Linq;
using Cbp.Samples;
using Cbp.Samples.QuantizeOnnx;
using Microsoft.ML.Cbp.Data;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// The label-order guard: a pretrained classifier whose outputs are not in the label's key order is refused before
/// training (the case: the shipped Fashion-MNIST MLP after MapValueToKey's default, order of appearance), while
/// the right order, an explicit opt-out and a model that predicts nothing useful pass.
/// </summary>
[TestClass]
public sealed class LabelOrderGuardTests
{
    private static (MLContext Ml, IDataView Train) Fashion(int rows)
    {
        var ml = new MLContext(seed: 1);
        return (ml, ml.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", rows)));
    }

    private static CbpQuantizeOptions Pretrained(List<CbpProgressReport>? reports = null) => new()
    {
        PretrainedModelPath = QuantizeOnnxSample.ShippedModelPath,
        Epochs = 1,
        Seed = 3,
        TrainingDevice = CbpTrainingDevice.Cpu,
        Progress = reports is null ? null : reports.Add,
    };

    [TestMethod]
    public void BestAssignmentMatchesABruteForceSearchOverEveryPermutation()
    {
        static IEnumerable<int[]> Permutations(int[] items) => items.Length <= 1
            ? new[] { items }
            : items.SelectMany((x, i) => Permutations(items.Where((_, j) => j != i).ToArray()).Select(rest => new[] { x }.Concat(rest).ToArray()));
        var random = new Random(7);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = 1 + trial % 6;
            var counts = new long[n, n];
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    counts[i, j] = random.Next(0, trial % 2 == 0 ? 4 : 100);
                }
            }
            long Total(int[] p) => Enumerable.Range(0, n).Sum(i => counts[i, p[i]]);
            var best = BestAssignment.Maximise(counts);
            CollectionAssert.AreEquivalent(Enumerable.Range(0, n).ToArray(), best, "a one-to-one assignment");
            Assert.AreEqual(Permutations(Enumerable.Range(0, n).ToArray()).Max(Total), Total(best), $"trial {trial}, {n} x {n}");
        }
        // By hand: the labels are the predictions shifted by one.
        Assert.AreEqual("1,2,0", string.Join(",", BestAssignment.Maximise(new long[,] { { 0, 9, 1 }, { 1, 0, 8 }, { 7, 2, 0 } })));
    }

    [TestMethod]
    public void ThePretrainedModelAfterKeysInOrderOfAppearanceIsRefusedBeforeTraining()
    {
        var (ml, train) = Fashion(1200);
        var byAppearance = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        // The precondition: the subset's first rows do not come in the model's class order.
        VBuffer<ReadOnlyMemory<char>> keys = default;
        byAppearance.Schema["Label"].GetKeyValues(ref keys);
        CollectionAssert.AreNotEqual(FashionMnistData.ClassNames, keys.DenseValues().Select(k => k.ToString()).ToArray());

        var reports = new List<CbpProgressReport>();
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Pretrained(reports)).Fit(byAppearance));
        StringAssert.Contains(error.Message, "label column 'Label': on 600 of 1,200 rows sampled across the training data");
        StringAssert.Contains(error.Message, "keyOrdinality");
        StringAssert.Contains(error.Message, "keyData");
        StringAssert.Contains(error.Message, "CheckLabelOrder = false");
        StringAssert.Contains(error.Message, "') is mostly predicted as output ");
        Assert.IsFalse(reports.Any(r => r.Phase is CbpPhase.Pretraining or CbpPhase.Cbp), "refused before any training");

        // Sorting the names is not the model's order either (it is "T-shirt/top", "Trouser", ...): also refused.
        var byValue = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(train).Transform(train);
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Pretrained()).Fit(byValue));
    }

    [TestMethod]
    public void TheModelsOwnOrderPassesAndAnExplicitOptOutTrainsAnyOrder()
    {
        var (ml, train) = Fashion(600);
        var classOrder = ml.Data.LoadFromEnumerable(FashionMnistData.ClassNames.Select(name => new ClassName { Label = name }));
        var inModelOrder = ml.Transforms.Conversion.MapValueToKey("Label", keyData: classOrder).Fit(train).Transform(train);
        using (var transformer = ml.Transforms.CbpQuantize(Pretrained()).Fit(inModelOrder))
        {
            Assert.IsTrue(transformer.TrainingReport!.Cbp.Count > 0);
        }

        var byAppearance = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        var optOut = Pretrained();
        optOut.CheckLabelOrder = false;
        using var relearnt = ml.Transforms.CbpQuantize(optOut).Fit(byAppearance);
        Assert.IsTrue(relearnt.TrainingReport!.Cbp.Count > 0, "the permuted order trains when the option says it is intended");
    }

    [TestMethod]
    public void AModelThatPredictsNothingUsefulIsNotMistakenForAPermutation()
    {
        // Random weights: the best relabelling of its predictions fits noise on half the sample, which the other half exposes.
        var (ml, train) = Fashion(1200);
        var byAppearance = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var options = Pretrained();
            options.PretrainedModelPath = null;
            options.PretrainedModelBytes = OnnxModelFile.ToBytes(CbpArchitecture.Mlp(new[] { 16, 16 }).Build(new long[] { 784 }, 10, seed: seed));
            using var transformer = ml.Transforms.CbpQuantize(options).Fit(byAppearance);
            Assert.IsTrue(transformer.TrainingReport!.Cbp.Count > 0);
        }
    }

    [TestMethod]
    public void TheSampleSpreadsAcrossSortedDataAndTakesEveryRowOfSmallData()
    {
        var ml = new MLContext(seed: 1);
        // 5,000 rows sorted by class: a sample of the first rows would see class 0 only.
        var rows = Enumerable.Range(0, 5000).Select(i => new Row { Label = (uint)(i / 500), Features = new[] { (float)i, 1f } }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var features = new List<float>();
        var classes = new List<long>();
        var batches = new List<int>();
        long count = DataViewSampler.SampleClasses(data, "Features", "Label", 5000, 1000, 256, (f, c, n) =>
        {
            features.AddRange(f.Take(2 * n));
            classes.AddRange(c.Take(n));
            batches.Add(n);
        });
        Assert.AreEqual(1000, count, "every 5th row");
        CollectionAssert.AreEqual(new[] { 256, 256, 256, 232 }, batches, "handed over in batches of 256");
        CollectionAssert.AreEqual(Enumerable.Range(0, 10).Select(i => (long)i).ToArray(), classes.Distinct().Order().ToArray());
        CollectionAssert.AreEqual(Enumerable.Range(0, 1000).Select(i => 5f * i).ToArray(), features.Where((_, i) => i % 2 == 0).ToArray(), "rows 0, 5, ..., 4,995");
        Assert.AreEqual(5000, DataViewSampler.SampleClasses(data, "Features", "Label", 5000, 6000, 256, (_, _, _) => { }), "fewer rows than wanted: all of them");

        // A row with NaN features is left out of the sample (never scored as a real class); the others stay.
        rows[5].Features = new[] { float.NaN, 1f };
        long withNaN = DataViewSampler.SampleClasses(ml.Data.LoadFromEnumerable(rows), "Features", "Label", 5000, 1000, 256, (f, _, n) =>
            Assert.IsTrue(f.Take(2 * n).All(float.IsFinite), "no NaN reaches the model"));
        Assert.AreEqual(999, withNaN);
    }

    private sealed class ClassName
    {
        public string Label { get; set; } = "";
    }

    private sealed class Row
    {
        [KeyType(10)]
        public uint Label { get; set; }

        [VectorType(2)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }
}
