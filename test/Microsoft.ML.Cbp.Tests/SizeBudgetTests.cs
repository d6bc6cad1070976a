using System;
using System.Collections.Generic;
using System.Linq;
using Cbp.Samples;
using Microsoft.ML.Cbp.Pipeline;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>MaxModelBytes: per-layer precision chosen under a size budget, checked before training, and a file that fits.</summary>
[TestClass]
public sealed class SizeBudgetTests
{
    private static (MLContext Ml, IDataView Train) Fashion()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", 600));
        return (ml, ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data));
    }

    private static CbpQuantizeOptions Options(List<CbpProgressReport>? reports = null) => new()
    {
        Architecture = CbpArchitecture.Mlp(new[] { 128, 64 }),
        KeepFirstAndLastLayersFloat = false,
        PretrainEpochs = 1,
        Epochs = 1,
        Seed = 2,
        TrainingDevice = CbpTrainingDevice.Cpu,
        Progress = reports is null ? null : reports.Add,
    };

    [TestMethod]
    public void TheKnapsackMatchesABruteForceSearch()
    {
        var random = new Random(3);
        for (int trial = 0; trial < 30; trial++)
        {
            int layers = 1 + trial % 4, choices = 2 + trial % 3;
            var loss = Enumerable.Range(0, layers).Select(_ => Enumerable.Range(0, choices).Select(k => k == 0 ? random.NextDouble() * 5 : random.NextDouble() * 3).ToArray()).ToArray();
            // Choice 0 costs nothing extra (the cheapest); the others cost 1..40 bytes.
            var bytes = Enumerable.Range(0, layers).Select(_ => Enumerable.Range(0, choices).Select(k => k == 0 ? 0L : random.Next(1, 40)).ToArray()).ToArray();
            long capacity = random.Next(0, 60);
            var pick = SizeBudget.Knapsack(loss, bytes, capacity);
            Assert.IsTrue(pick.Select((k, i) => bytes[i][k]).Sum() <= capacity, $"trial {trial}: over capacity");
            double best = double.PositiveInfinity;
            foreach (var combination in Enumerable.Range(0, (int)Math.Pow(choices, layers)))
            {
                var ks = Enumerable.Range(0, layers).Select(i => combination / (int)Math.Pow(choices, i) % choices).ToArray();
                if (ks.Select((k, i) => bytes[i][k]).Sum() <= capacity)
                {
                    best = Math.Min(best, ks.Select((k, i) => loss[i][k]).Sum());
                }
            }
            Assert.AreEqual(best, pick.Select((k, i) => loss[i][k]).Sum(), 1e-12, $"trial {trial}");

            // Large capacities use buckets (costs rounded up): still within capacity, and no worse than the exact optimum
            // with one bucket less room per layer.
            var large = bytes.Select(row => row.Select(b => b * 1_000).ToArray()).ToArray();
            long roomy = capacity * 1_000 + 25_000;
            long bucket = (roomy + 19_999) / 20_000;
            var bucketed = SizeBudget.Knapsack(loss, large, roomy);
            Assert.IsTrue(bucketed.Select((k, i) => large[i][k]).Sum() <= roomy, $"trial {trial}: over the large capacity");
            double bestWithLessRoom = double.PositiveInfinity;
            foreach (var combination in Enumerable.Range(0, (int)Math.Pow(choices, layers)))
            {
                var ks = Enumerable.Range(0, layers).Select(i => combination / (int)Math.Pow(choices, i) % choices).ToArray();
                if (ks.Select((k, i) => large[i][k]).Sum() <= roomy - layers * bucket)
                {
                    bestWithLessRoom = Math.Min(bestWithLessRoom, ks.Select((k, i) => loss[i][k]).Sum());
                }
            }
            Assert.IsTrue(bucketed.Select((k, i) => loss[i][k]).Sum() <= bestWithLessRoom + 1e-12, $"trial {trial}: bucketed pick");
        }
    }

    [TestMethod]
    public void ABudgetBelowTheSmallestReachableFileFailsBeforeTrainingAndTheSmallestOneFits()
    {
        var (ml, train) = Fashion();
        // The smallest file with binary as the only level set: every layer binary at one bit, which a uniform Fit also writes.
        var uniform = Options();
        uniform.Constraint = WeightConstraint.Binary;
        uniform.WeightStorage = WeightStorage.OneBit;
        long smallest;
        using (var reference = ml.Transforms.CbpQuantize(uniform).Fit(train))
        {
            smallest = reference.TrainingReport!.CompactModelBytes;
        }
        var reports = new List<CbpProgressReport>();
        var tight = Options(reports);
        tight.MixedConstraints = new List<WeightConstraint> { WeightConstraint.Binary };
        tight.MaxModelBytes = smallest - 1;
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(tight).Fit(train));
        StringAssert.Contains(error.Message, $"below the smallest file these layers can make: {smallest:N0} bytes");
        Assert.AreEqual("MaxModelBytes", error.ParamName);
        Assert.IsFalse(reports.Any(r => r.Phase is CbpPhase.Pretraining or CbpPhase.Cbp), "refused before training");

        var exact = Options();
        exact.MixedConstraints = new List<WeightConstraint> { WeightConstraint.Binary };
        exact.MaxModelBytes = smallest;
        using var fitted = ml.Transforms.CbpQuantize(exact).Fit(train);
        Assert.AreEqual(smallest, fitted.TrainingReport!.CompactModelBytes, "the only plan that fits is every layer binary");
        Assert.IsTrue(fitted.TrainingReport.WeightLayers.All(l => l.Precision == "Binary" && l.BitsPerWeight == 1));

        var roomy = Options();
        roomy.MaxModelBytes = 100_000_000;
        var whole = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(roomy).Fit(train));
        StringAssert.Contains(whole.Message, "holds the whole float network");
    }

    [TestMethod]
    public void ABudgetBetweenUniformChoicesMixesPrecisionsAndTheFileFits()
    {
        var (ml, train) = Fashion();
        long Uniform(WeightConstraint constraint, WeightStorage storage)
        {
            var options = Options();
            options.Constraint = constraint;
            options.WeightStorage = storage;
            using var t = ml.Transforms.CbpQuantize(options).Fit(train);
            return t.TrainingReport!.CompactModelBytes;
        }
        long binary = Uniform(WeightConstraint.Binary, WeightStorage.OneBit), shift = Uniform(WeightConstraint.TwoBitShift, WeightStorage.Int4);
        Assert.IsTrue(binary < shift);
        var budgeted = Options();
        budgeted.MaxModelBytes = (binary + shift) / 2;
        using var transformer = ml.Transforms.CbpQuantize(budgeted).Fit(train);
        var report = transformer.TrainingReport!;
        Assert.IsTrue(report.CompactModelBytes <= budgeted.MaxModelBytes, $"{report.CompactModelBytes:N0} bytes over the budget {budgeted.MaxModelBytes:N0}");
        Assert.IsTrue(report.CompactModelBytes > binary, "the budget's room above all-binary is used");
        Assert.IsTrue(report.WeightLayers.Select(l => l.Precision).Distinct().Count() >= 2, $"mixed: {string.Join(", ", report.WeightLayers.Select(l => l.Precision))}");
        StringAssert.Contains(report.ToString(), $"mixed-precision weights (MaxModelBytes {budgeted.MaxModelBytes:N0})");
        // The mixed model scores, and ML.NET's save and reload keeps its scores.
        var scores = transformer.Transform(train).GetColumn<float[]>("Score").ToArray();
        Assert.AreEqual(600, scores.Count(s => s.Length == 10 && s.All(float.IsFinite)));
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"cbp-budget-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(transformer, train.Schema, path);
            var reloaded = ml.Model.Load(path, out _);
            float[][] again;
            try
            {
                again = reloaded.Transform(train).GetColumn<float[]>("Score").ToArray();
            }
            finally
            {
                (reloaded as IDisposable)?.Dispose();
            }
            for (int r = 0; r < scores.Length; r++)
            {
                for (int k = 0; k < 10; k++)
                {
                    Assert.AreEqual(scores[r][k], again[r][k], 1e-6, $"row {r}, class {k} after reload");
                }
            }
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
