using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Rows with NaN or infinite features get no prediction, never a real class: Score NaN and PredictedLabel the missing key
/// (multiclass) or false (binary), in the fitted transformer, after a plain ML.NET reload and after a batched reload.
/// </summary>
[TestClass]
public sealed class NonFiniteScoringTests
{
    private static readonly int[] Bad = { 3, 10, 11 };

    private static IDataView WithBadRows(MLContext ml, IDataView data)
    {
        var rows = ml.Data.CreateEnumerable<ImageRow>(data, reuseRowObject: false).Take(40).ToList();
        rows[3].Features[100] = float.NaN;
        rows[10].Features[0] = float.PositiveInfinity;
        rows[11].Features[783] = float.NegativeInfinity;
        return ml.Data.LoadFromEnumerable(rows);
    }

    private static (uint[][] Keys, float[][] Scores) Read(IDataView scored)
    {
        var keys = scored.GetColumn<VBuffer<uint>>("PredictedLabel").Select(v => v.DenseValues().ToArray()).ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        return (keys, scores);
    }

    private static void AssertNoPredictionForBadRows((uint[][] Keys, float[][] Scores) result, string path)
    {
        for (int i = 0; i < result.Keys.Length; i++)
        {
            bool bad = Bad.Contains(i);
            Assert.AreEqual(bad, result.Keys[i][0] == 0, $"{path}: row {i} {(bad ? "has no" : "has a")} predicted class");
            Assert.AreEqual(bad, result.Scores[i].All(float.IsNaN), $"{path}: row {i}'s Score is {(bad ? "" : "not ")}NaN");
        }
    }

    [TestMethod]
    public void MulticlassRowsWithNonFiniteFeaturesGetTheMissingKeyBeforeAndAfterReload()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = CbpQuantizeFashionMnistTests.Data(ml);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 32, 32 }),
            PretrainEpochs = 1,
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }));
        using var model = (TransformerChain<CbpQuantizeTransformer>)pipeline.Fit(ml.Data.TakeRows(train, 300));
        var data = WithBadRows(ml, test);
        var fitted = Read(model.Transform(data));
        AssertNoPredictionForBadRows(fitted, "fitted");

        string path = Path.Combine(Path.GetTempPath(), $"cbp-nonfinite-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var plain = ml.Model.Load(path, out _);
            var reloaded = Read(plain.Transform(data));
            AssertNoPredictionForBadRows(reloaded, "plain reload");
            using var batched = (IDisposable)ml.Model.LoadWithBatchedScoring(path, out _);
            AssertNoPredictionForBadRows(Read(((ITransformer)batched).Transform(data)), "batched reload");
            for (int i = 0; i < fitted.Keys.Length; i++)
            {
                Assert.AreEqual(fitted.Keys[i][0], reloaded.Keys[i][0], $"row {i}: the saved model predicts what the fitted one did");
            }
            (plain as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void BinaryRowsWithNonFiniteFeaturesPredictFalseWithANaNScore()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = CbpQuantizeFashionMnistTests.Data(ml);
        var isShoe = ml.Transforms.CustomMapping<ImageRow, FlagRow>((row, flag) => flag.IsShoe = row.Label is "Sandal" or "Sneaker" or "Ankle boot", "cbp-is-shoe");
        using var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            LabelColumnName = "IsShoe",
            Architecture = CbpArchitecture.Mlp(new[] { 16, 16 }),
            PretrainEpochs = 2,
            Epochs = 1,
            TrainingDevice = CbpTrainingDevice.Cpu,
            ScoringBatchSize = 4,
        }).Fit(isShoe.Fit(train).Transform(ml.Data.TakeRows(train, 300)));
        var data = isShoe.Fit(test).Transform(WithBadRows(ml, test));
        var scored = model.Transform(data);
        var labels = scored.GetColumn<VBuffer<bool>>("PredictedLabel").Select(v => v.GetItemOrDefault(0)).ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var truth = ml.Data.CreateEnumerable<FlagRow>(data, reuseRowObject: false).Select(r => r.IsShoe).ToArray();
        foreach (int i in Bad)
        {
            Assert.IsFalse(labels[i], $"row {i}");
            Assert.IsTrue(scores[i].All(float.IsNaN), $"row {i}");
        }
        Assert.IsTrue(Enumerable.Range(0, labels.Length).Except(Bad).Count(i => labels[i] == truth[i]) > 30, "the other rows are predicted as usual");

        // The per-row graph (Not/And head) that prediction engines and a plain ML.NET reload run agrees row for row.
        string path = Path.Combine(Path.GetTempPath(), $"cbp-nonfinite-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var plain = ml.Model.Load(path, out _);
            var reloaded = plain.Transform(data);
            var plainLabels = reloaded.GetColumn<VBuffer<bool>>("PredictedLabel").Select(v => v.GetItemOrDefault(0)).ToArray();
            var plainScores = reloaded.GetColumn<float[]>("Score").ToArray();
            for (int i = 0; i < labels.Length; i++)
            {
                Assert.AreEqual(labels[i], plainLabels[i], $"row {i}: plain reload");
                Assert.AreEqual(Bad.Contains(i), plainScores[i].All(float.IsNaN), $"row {i}: plain reload Score");
            }
            (plain as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A key label without key values (a <c>[KeyType]</c> uint column) makes PredictedLabel a UInt32 key: the per-row head
    /// must still load in ONNX Runtime and give bad rows key 0. Bad rows sit in several scoring batches, the last one short.
    /// </summary>
    [TestMethod]
    public void KeyLabelWithoutValuesScoresNonFiniteRowsAsMissingInEveryPath()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 600).Select(i => new KeyRow { Features = Synthetic(i), Label = (uint)(i % 3) }).ToList();
        using var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(new[] { 16, 16 }),
            PretrainEpochs = 5,
            Epochs = 2,
            BatchSize = 32,
            ScoringBatchSize = 4,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        int[] bad = { 1, 6, 13, 21 };
        var test = rows.Take(22).Select((r, i) => new KeyRow { Features = bad.Contains(i) ? new[] { float.NaN, 0f, 0f, float.PositiveInfinity } : r.Features, Label = r.Label }).ToList();
        var data = ml.Data.LoadFromEnumerable(test);

        uint[] Keys(IDataView scored) => scored.GetColumn<VBuffer<uint>>("PredictedLabel").Select(v => v.GetItemOrDefault(0)).ToArray();
        var fitted = Keys(model.Transform(data));
        // The keys as ML.NET stores them: 1-based, 0 the missing key (a [KeyType] property holds the 0-based class).
        var truth = data.GetColumn<uint>("Label").ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-nonfinite-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var plain = ml.Model.Load(path, out _);
            var reloaded = Keys(plain.Transform(data));
            using var batched = (IDisposable)ml.Model.LoadWithBatchedScoring(path, out _);
            var batchedKeys = Keys(((ITransformer)batched).Transform(data));
            for (int i = 0; i < test.Count; i++)
            {
                bool isBad = bad.Contains(i);
                foreach (var (name, keys) in new[] { ("fitted", fitted), ("plain reload", reloaded), ("batched reload", batchedKeys) })
                {
                    Assert.AreEqual(isBad, keys[i] == 0, $"{name}: row {i} {(isBad ? "has no" : "has a")} predicted class");
                    Assert.AreEqual(fitted[i], keys[i], $"{name}: row {i} agrees with the fitted transformer");
                }
            }
            Assert.IsTrue(Enumerable.Range(0, test.Count).Except(bad).All(i => fitted[i] == truth[i]), "the other rows are predicted as usual (the classes are one-hot features)");
            (plain as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Regression: a row with a non-finite feature scores NaN, in the fitted transformer, a plain reload and a batched reload.</summary>
    [TestMethod]
    public void RegressionRowsWithNonFiniteFeaturesScoreNaNInEveryPath()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 400).Select(i => new TargetRow { Features = Synthetic(i), Target = (i % 7) / 7f }).ToList();
        using var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            LabelColumnName = "Target",
            Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }),
            PretrainEpochs = 2,
            Epochs = 1,
            ScoringBatchSize = 4,
            TrainingDevice = CbpTrainingDevice.Cpu,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        int[] bad = { 0, 5, 9 };
        var test = rows.Take(10).Select((r, i) => new TargetRow { Features = bad.Contains(i) ? new[] { 0f, float.NegativeInfinity, 0f, 0f } : r.Features }).ToList();
        var data = ml.Data.LoadFromEnumerable(test);
        float[] Scores(IDataView scored) => scored.GetColumn<float[]>("Score").Select(s => s.Single()).ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"cbp-nonfinite-{Guid.NewGuid():N}.zip");
        try
        {
            var fitted = Scores(model.Transform(data));
            ml.Model.Save(model, data.Schema, path);
            var plain = ml.Model.Load(path, out _);
            using var batched = (IDisposable)ml.Model.LoadWithBatchedScoring(path, out _);
            foreach (var (name, scores) in new[] { ("fitted", fitted), ("plain reload", Scores(plain.Transform(data))), ("batched reload", Scores(((ITransformer)batched).Transform(data))) })
            {
                for (int i = 0; i < test.Count; i++)
                {
                    Assert.AreEqual(bad.Contains(i), float.IsNaN(scores[i]), $"{name}: row {i}");
                    Assert.IsTrue(bad.Contains(i) || scores[i] == fitted[i], $"{name}: row {i} agrees with the fitted transformer");
                }
            }
            (plain as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static float[] Synthetic(int i) => new[] { i % 3 == 0 ? 1f : 0f, i % 3 == 1 ? 1f : 0f, i % 3 == 2 ? 1f : 0f, i % 5 / 5f };

    private sealed class KeyRow
    {
        [VectorType(4)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [KeyType(3)]
        public uint Label { get; set; }
    }

    private sealed class TargetRow
    {
        [VectorType(4)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Target { get; set; }
    }

    private sealed class ImageRow
    {
        public string Label { get; set; } = "";

        [VectorType(784)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private sealed class FlagRow
    {
        public bool IsShoe { get; set; }
    }
}
