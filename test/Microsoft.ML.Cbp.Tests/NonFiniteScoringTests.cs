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
