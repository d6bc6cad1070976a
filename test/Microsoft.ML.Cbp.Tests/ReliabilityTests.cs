using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Inputs that used to give a silent NaN or chance-level model: a final batch of one row through batch normalisation,
/// a diverging learning rate, NaN or infinite features, options changed after CbpQuantize(...).
/// </summary>
[TestClass]
public sealed class ReliabilityTests
{
    private sealed class Row
    {
        [VectorType(6)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }

    /// <summary>A separable task: the label is whether the first two features sum above 1; optional NaN or infinite rows.</summary>
    private static IEnumerable<Row> Rows(int count, ISet<int>? nonFinite = null)
    {
        var random = new Random(3);
        for (int i = 0; i < count; i++)
        {
            var features = Enumerable.Range(0, 6).Select(_ => (float)random.NextDouble()).ToArray();
            bool label = features[0] + features[1] > 1;
            if (nonFinite?.Contains(i) == true)
            {
                features[4] = i % 2 == 0 ? float.NaN : float.PositiveInfinity;
            }
            yield return new Row { Features = features, Label = label };
        }
    }

    private static CbpQuantizeOptions Options(int batchSize = 64) => new()
    {
        Architecture = CbpArchitecture.Mlp(new[] { 16, 16 }),
        PretrainEpochs = 2,
        Epochs = 2,
        BatchSize = batchSize,
        Seed = 1,
        TrainingDevice = CbpTrainingDevice.Cpu,
    };

    [TestMethod]
    public void AFinalBatchOfOneRowThroughBatchNormGivesAFiniteModel()
    {
        // 577 = 9 x 64 + 1: the last batch of every pass has one row, which made the running variance NaN and every score NaN.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(577).ToList());
        using var model = ml.Transforms.CbpQuantize(Options()).Fit(data);
        Assert.IsTrue(model.TrainingReport!.Pretraining.All(e => e.Batches == 9), "the one-row batch is left out of each pass");
        var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), reuseRowObject: false).ToList();
        Assert.IsTrue(scores.All(s => s.Score.All(float.IsFinite)), "every score is finite");
        double accuracy = scores.Zip(Rows(577)).Average(p => p.First.PredictedLabel[0] == p.Second.Label ? 1.0 : 0.0);
        Assert.IsTrue(accuracy > 0.75, $"and the model learned the task ({accuracy:P1})");

        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Options(batchSize: 1)).Fit(data));
        StringAssert.Contains(e.Message, "BatchSize 1");
        StringAssert.Contains(e.Message, "batch normalisation");

        // A single row is not enough data for batch statistics at all.
        var one = ml.Data.LoadFromEnumerable(Rows(1).ToList());
        e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Options()).Fit(one));
        StringAssert.Contains(e.Message, "has 1 labelled row(s)");
    }

    [TestMethod]
    public void ADivergingLearningRateStopsTrainingAtOnceNamingWhereAndWhat()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(577).ToList());
        var options = Options();
        options.PretrainLearningRate = 1e4;
        var e = Assert.ThrowsExactly<CbpTrainingDivergedException>(() => ml.Transforms.CbpQuantize(options).Fit(data));
        Assert.AreEqual(TrainingMode.Float, e.Mode, "in float pre-training");
        Assert.AreEqual(1, e.Epoch);
        Assert.IsTrue(e.Batch >= 1 && e.Batch <= 9, $"within the first epoch's batches (batch {e.Batch})");
        Assert.IsTrue(!double.IsFinite(e.Loss) || e.Loss > 1e5, $"the loss that stopped it: {e.Loss}");
        StringAssert.Contains(e.Message, "Lower the learning rate");
        StringAssert.Contains(e.Message, "try 1E+03");
    }

    [TestMethod]
    public void OneOutlierBatchIsNotDivergence()
    {
        // One row whose squared error is ~1e12 times the first batch's, in a batch of its own, with a learning rate too
        // small to move the weights: a single batch over the limit is an outlier, not divergence (three in a row are).
        var ml = new MLContext(seed: 1);
        var rows = Rows(60).Select((r, i) => new TargetRow { Features = r.Features, Target = i == 37 ? 1e6f : r.Features[0] }).ToList();
        var options = Options(batchSize: 1);
        options.Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }, batchNorm: false);
        options.LabelColumnName = "Target";
        options.PretrainLearningRate = 1e-12;
        options.LearningRate = 1e-12;
        options.PretrainEpochs = 1;
        options.Epochs = 1;
        using var model = ml.Transforms.CbpQuantize(options).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual(60L, model.TrainingReport!.TrainingRows);
        Assert.IsTrue(model.TrainingReport.Pretraining[0].TaskLoss > 1e9, $"the outlier's loss is in the epoch's sum ({model.TrainingReport.Pretraining[0].TaskLoss:G3})");
    }

    [TestMethod]
    public void NonFiniteFeaturesFailBeforeTrainingOrAreSkippedAndCounted()
    {
        var ml = new MLContext(seed: 1);
        var bad = new HashSet<int> { 30, 71, 200 };
        var data = ml.Data.LoadFromEnumerable(Rows(400, bad).ToList());

        // Cached: every bad row is counted and the first is named, before any training.
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Options()).Fit(data));
        StringAssert.Contains(e.Message, "Feature column 'Features' has NaN or infinite values in 3 row(s)");
        StringAssert.Contains(e.Message, "first: row 30, slot 4, NaN");
        StringAssert.Contains(e.Message, "SkipRowsWithNonFiniteFeatures");

        // Streamed: the first bad row stops the reader.
        var streamed = Options();
        streamed.DataCacheBudgetBytes = 0;
        var s = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(streamed).Fit(data));
        StringAssert.Contains(s.Message, "row 30 of pass 1");

        foreach (long budget in new[] { 2L << 30, 0L })
        {
            var skipping = Options();
            skipping.DataCacheBudgetBytes = budget;
            skipping.SkipRowsWithNonFiniteFeatures = true;
            using var model = ml.Transforms.CbpQuantize(skipping).Fit(data);
            Assert.AreEqual(3L, model.TrainingReport!.SkippedNonFiniteRows, $"budget {budget}");
            Assert.AreEqual(397L, model.TrainingReport.TrainingRows, $"budget {budget}");
        }
    }

    [TestMethod]
    public void AnInfiniteRegressionTargetNamesTheLabelColumnBeforeTraining()
    {
        // NaN marks a missing target (skipped); an infinite one would make the loss infinite and read as divergence.
        var ml = new MLContext(seed: 1);
        var rows = Rows(100).Select((r, i) => new TargetRow { Features = r.Features, Target = i == 42 ? float.NegativeInfinity : r.Features[0] }).ToList();
        foreach (long budget in new[] { 2L << 30, 0L })
        {
            var options = Options();
            options.LabelColumnName = "Target";
            options.DataCacheBudgetBytes = budget;
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(options).Fit(ml.Data.LoadFromEnumerable(rows)));
            StringAssert.Contains(e.Message, "row 42", $"budget {budget}");
            StringAssert.Contains(e.Message, "Label column 'Target' has the target -Infinity", $"budget {budget}");
        }
    }

    private sealed class TargetRow
    {
        [VectorType(6)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Target { get; set; }
    }

    [TestMethod]
    public void ASingleClassLabelSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(50).Select(r => new TextRow { Features = r.Features, Label = "cat" }).ToList());
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Options()).Fit(keyed));
        StringAssert.Contains(e.Message, "Label column 'Label' is a key with 1 class; classification needs at least 2");
    }

    private sealed class TextRow
    {
        [VectorType(6)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    [TestMethod]
    public void OptionsChangedAfterCbpQuantizeAreValidatedAgainAtFit()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        var estimator = ml.Transforms.CbpQuantize(options);
        options.LearningRate = -1;
        var e = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Rows(100).ToList())));
        Assert.AreEqual("LearningRate", e.ParamName);
    }

    [TestMethod]
    public void WhatIsKnowableBeforeTrainingFailsBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(200).ToList());
        var epochs = new List<CbpProgressReport>();

        // A level set the storage cannot hold (8-bit codes in Int4).
        var storage = Options();
        storage.Constraint = WeightConstraint.Uniform(8);
        storage.WeightStorage = WeightStorage.Int4;
        storage.Progress = r => epochs.Add(r);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(storage).Fit(data));
        Assert.AreEqual("WeightStorage", e.ParamName);
        StringAssert.Contains(e.Message, "do not fit 4-bit integers");
        Assert.IsFalse(epochs.Any(r => r.Epoch is not null), "no epoch was trained");

        // Scoring must run on a GPU (FallbackToCpu off) and none is usable.
        try
        {
            Scoring.OnnxScoringSession.RequireCuda(0);
            Assert.Inconclusive("This machine has a usable CUDA GPU; the GPU-less case cannot be shown here.");
        }
        catch (InvalidOperationException)
        {
        }
        var gpu = Options();
        gpu.GpuDeviceId = 0;
        gpu.FallbackToCpu = false;
        gpu.Progress = r => epochs.Add(r);
        var g = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CbpQuantize(gpu).Fit(data));
        StringAssert.Contains(g.Message, "set FallbackToCpu to score on the CPU");
        Assert.IsFalse(epochs.Any(r => r.Epoch is not null), "no epoch was trained");
    }

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public bool[] PredictedLabel { get; set; } = Array.Empty<bool>();
    }
}
