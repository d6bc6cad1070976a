using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Cbp.Samples;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The estimator workout: schema propagation, rejected inputs, save/reload, batched reload, prediction engines, other label kinds, progress and cancellation.</summary>
[TestClass]
public sealed class CbpQuantizeEstimatorWorkoutTests
{
    private static CbpQuantizeOptions Tiny() => new()
    {
        Architecture = CbpArchitecture.Mlp(new[] { 32, 32 }),
        PretrainEpochs = 1,
        Epochs = 1,
        Seed = 5,
        TrainingDevice = CbpTrainingDevice.Cpu,
    };

    private static (MLContext Ml, IDataView Train, IDataView Test) Fashion(int rows = 600)
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = CbpQuantizeFashionMnistTests.Data(ml);
        return (ml, ml.Data.TakeRows(train, rows), ml.Data.TakeRows(test, 200));
    }

    [TestMethod]
    public void OutputSchemaBeforeAndAfterFitHasScoreAndAKeyedPredictedLabel()
    {
        var (ml, train, _) = Fashion();
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        var estimator = ml.Transforms.CbpQuantize(Tiny());

        var shape = estimator.GetOutputSchema(ShapeOf(ml, keyed));
        var score = shape.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        var predicted = shape.Last(c => c.Name == "PredictedLabel");
        Assert.IsTrue(predicted.IsKey, "PredictedLabel is a key before Fit");
        Assert.IsTrue(predicted.Annotations.Any(a => a.Name == "KeyValues"), "and carries key values");

        using var transformer = estimator.Fit(keyed);
        var schema = transformer.GetOutputSchema(keyed.Schema);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 10), schema["Score"].Type);
        var key = (VectorDataViewType)schema["PredictedLabel"].Type;
        Assert.AreEqual(1, key.Size);
        Assert.AreEqual(10UL, ((KeyDataViewType)key.ItemType).Count);
        VBuffer<ReadOnlyMemory<char>> labelNames = default, predictedNames = default;
        keyed.Schema["Label"].GetKeyValues(ref labelNames);
        schema["PredictedLabel"].GetKeyValues(ref predictedNames);
        CollectionAssert.AreEqual(labelNames.DenseValues().Select(v => v.ToString()).ToList(), predictedNames.DenseValues().Select(v => v.ToString()).ToList(),
            "the predicted label's key values are the label's");
        CollectionAssert.AreEqual(schema.Select(c => c.Name + c.Type).ToList(), transformer.Transform(keyed).Schema.Select(c => c.Name + c.Type).ToList());
    }

    [TestMethod]
    public void InvalidColumnsAndOptionsAreRejectedWithMessagesThatNameThem()
    {
        var (ml, train, _) = Fashion(100);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);

        var stringLabel = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(Tiny()).Fit(train));
        StringAssert.Contains(stringLabel.Message, "Label column 'Label' is String");
        StringAssert.Contains(stringLabel.Message, "MapValueToKey");

        var missing = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(new CbpQuantizeOptions { FeatureColumnName = "Pixels" }).Fit(keyed));
        StringAssert.Contains(missing.Message, "'Pixels'");

        var shape = Tiny();
        shape.InputShape = new[] { 1, 28, 27 };
        var shapeError = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(shape).Fit(keyed));
        StringAssert.Contains(shapeError.Message, "InputShape [1, 28, 27] holds 756 values but feature column 'Features' has 784");

        var epochs = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(new CbpQuantizeOptions { Epochs = 0 }));
        Assert.AreEqual("Epochs", epochs.ParamName);

        var both = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            Architecture = CbpArchitecture.Mlp(),
            PretrainedModelPath = "model.onnx",
        }));
        StringAssert.Contains(both.Message, "only one of Architecture, PretrainedModelPath and PretrainedModelBytes");

        var scalarFeatures = ml.Data.LoadFromEnumerable(new[] { new { Features = 1f, Label = true } });
        var schemaError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.CbpQuantize(Tiny()).GetOutputSchema(ShapeOf(ml, scalarFeatures)));
        StringAssert.Contains(schemaError.Message, "Feature column 'Features' must be a known-size vector of Single");

        using var transformer = ml.Transforms.CbpQuantize(Tiny()).Fit(keyed);
        var narrow = ml.Data.LoadFromEnumerable(new[] { new NarrowRow() });
        var width = Assert.ThrowsExactly<ArgumentException>(() => transformer.Transform(narrow));
        StringAssert.Contains(width.Message, "has 3 values per row; the model reads 784");
    }

    [TestMethod]
    public void SavedPipelineReloadsPlainAndBatchedWithIdenticalScoresAndPredictionEnginesAgree()
    {
        var (ml, train, test) = Fashion();
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.CbpQuantize(Tiny()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        using var model = pipeline.Fit(train);
        string zip = Path.Combine(Path.GetTempPath(), "cbp-workout-" + Guid.NewGuid().ToString("N") + ".zip");
        try
        {
            ml.Model.Save(model, train.Schema, zip);
            var loaded = ml.Model.Load(zip, out var inputSchema);
            using var batched = (IDisposable)ml.Model.LoadWithBatchedScoring(zip, out _);
            Assert.IsTrue(((TransformerChain<ITransformer>)batched).Any(t => t is CbpQuantizeTransformer), "the CbpQuantize step is batched again");

            var expected = Rows(ml, model.Transform(test));
            CollectionAssert.AreEqual(expected.Select(r => r.Key).ToList(), Rows(ml, loaded.Transform(test)).Select(r => r.Key).ToList(), "plain reload");
            CollectionAssert.AreEqual(expected.Select(r => r.Key).ToList(), Rows(ml, ((ITransformer)batched).Transform(test)).Select(r => r.Key).ToList(), "batched reload");
            Assert.IsTrue(expected.All(r => FashionMnistData.ClassNames.Contains(r.Predicted)), "MapKeyToValue turns the prediction back into a class name");

            // A prediction engine maps rows through the per-row form: the same scores as the batched Transform.
            var engine = ml.Model.CreatePredictionEngine<FashionMnistImage, Prediction>(model);
            var first = ml.Data.CreateEnumerable<FashionMnistImage>(test, reuseRowObject: false).First();
            var single = engine.Predict(first);
            Assert.AreEqual(expected[0].Key, string.Join(",", single.Score.Select(BitConverter.SingleToInt32Bits)) + "|" + single.PredictedLabel[0]);
        }
        finally
        {
            File.Delete(zip);
        }
    }

    [TestMethod]
    public void BooleanLabelsGiveBinaryClassificationAndSingleLabelsRegression()
    {
        var ml = new MLContext(seed: 2);
        var random = new Random(7);
        var rows = Enumerable.Range(0, 800).Select(_ =>
        {
            var x = Enumerable.Range(0, 8).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            return new TabularRow { Features = x, Positive = x[0] + x[1] > 0, Target = (2 * x[0]) - x[2] };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Tiny();
        options.PretrainEpochs = 10;
        options.Epochs = 5;

        options.LabelColumnName = "Positive";
        using var binary = ml.Transforms.CbpQuantize(options).Fit(data);
        var scored = binary.Transform(data);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 2), scored.Schema["Score"].Type);
        Assert.AreEqual(new VectorDataViewType(BooleanDataViewType.Instance, 1), scored.Schema["PredictedLabel"].Type);
        var predicted = scored.GetColumn<bool[]>("PredictedLabel").Select(p => p[0]).ToList();
        var scores = scored.GetColumn<float[]>("Score").ToList();
        double accuracy = predicted.Zip(rows).Count(p => p.First == p.Second.Positive) / (double)rows.Count;
        Assert.IsTrue(accuracy > 0.85, $"binary accuracy {accuracy:P1}");
        Assert.IsTrue(predicted.Zip(scores).All(p => p.First == (p.Second[1] > p.Second[0])), "PredictedLabel is true exactly when the true class has the larger probability");

        options.LabelColumnName = "Target";
        using var regression = ml.Transforms.CbpQuantize(options).Fit(data);
        // Score is a one-slot vector (ML.NET's OnnxTransformer emits vectors); its value against the target:
        var metrics = ml.Regression.Evaluate(ScalarScore(ml, regression.Transform(data)), "Target", "Value");
        Assert.IsTrue(metrics.RSquared > 0.8, $"regression R^2 {metrics.RSquared:F3}");
    }

    [TestMethod]
    public void ProgressArrivesOncePerEpochAndCancellationStopsWithOperationCanceled()
    {
        var (ml, train, _) = Fashion(300);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        var reports = new List<CbpProgressReport>();
        var options = Tiny();
        options.PretrainEpochs = 2;
        options.Epochs = 2;
        options.ScheduleEpochsPerPass = 2;
        options.Progress = reports.Add;
        using (ml.Transforms.CbpQuantize(options).Fit(keyed))
        {
        }
        Assert.AreEqual(2, reports.Count(r => r.Phase == CbpPhase.Pretraining && r.Epoch != null));
        Assert.AreEqual(4, reports.Count(r => r.Phase == CbpPhase.Cbp && r.Epoch != null), "2 passes x 2 schedule epochs");
        Assert.IsTrue(reports.Last(r => r.Epoch != null).ToString().Contains("CFS", StringComparison.Ordinal));

        using var cancellation = new CancellationTokenSource();
        var cancelled = Tiny();
        cancelled.CancellationToken = cancellation.Token;
        cancelled.Progress = r =>
        {
            if (r.Phase == CbpPhase.Pretraining)
            {
                cancellation.Cancel();
            }
        };
        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.CbpQuantize(cancelled).Fit(keyed));
    }

    [TestMethod]
    public void APretrainedOnnxModelIsQuantizedWithoutFloatPretrainingByDefault()
    {
        var (ml, train, test) = Fashion();
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var pretrained = CbpArchitecture.Mlp(new[] { 32, 32 }).Build(new long[] { 784 }, 10, seed: 9);
        var options = new CbpQuantizeOptions
        {
            PretrainedModelBytes = OnnxModelFile.ToBytes(pretrained),
            Epochs = 1,
            Seed = 5,
            TrainingDevice = CbpTrainingDevice.Cpu,
        };
        using var transformer = ml.Transforms.CbpQuantize(options).Fit(keyed.Transform(train));
        Assert.AreEqual("pretrained", transformer.TrainingReport!.Network);
        Assert.AreEqual(0, transformer.TrainingReport.Pretraining.Count);
        Assert.AreEqual(1, transformer.TrainingReport.ConstrainedLayers.Count);
        string path = Path.Combine(Path.GetTempPath(), "cbp-pretrained-" + Guid.NewGuid().ToString("N") + ".onnx");
        try
        {
            transformer.SaveOnnx(path);
            var saved = OnnxModelFile.Load(path);
            Assert.AreEqual("Binary", saved.MetadataProps.Single(p => p.Key == "cbp.constraint").Value);
            Assert.AreEqual("Int4", saved.MetadataProps.Single(p => p.Key == "cbp.weight_storage").Value);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.AreEqual(200, transformer.Transform(keyed.Transform(test)).GetColumn<float[]>("Score").Count());
    }

    [TestMethod]
    public void FitReportsToTheMlContextLogAndTheTransformerSaysWhichProviderScores()
    {
        var (ml, train, _) = Fashion(300);
        var messages = new List<string>();
        ml.Log += (_, e) =>
        {
            lock (messages)
            {
                messages.Add(e.Message);
            }
        };
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        using var transformer = ml.Transforms.CbpQuantize(Tiny()).Fit(keyed);
        Assert.AreEqual("CPU", transformer.ExecutionProvider, "no GPU was asked for");
        lock (messages)
        {
            Assert.IsTrue(messages.Any(m => m.Contains("Pretraining epoch 1/1: loss", StringComparison.Ordinal)), "epoch reports reach MLContext.Log");
            Assert.IsTrue(messages.Any(m => m.Contains("CFS", StringComparison.Ordinal)));
            Assert.IsTrue(messages.Any(m => m.Contains("ONNX Runtime scores on the CPU execution provider", StringComparison.Ordinal)), "the provider is logged");
        }
    }

    [TestMethod]
    public void OnAGpuTheTransformerScoresWithCudaLikeTheCpu()
    {
        using (var probe = new OnnxGraphModuleHolder())
        {
            if (!OnnxScoringSessionTests.CudaAvailable(probe.Bytes))
            {
                Assert.Inconclusive("No CUDA GPU usable by ONNX Runtime on this machine.");
            }
        }
        var (ml, train, test) = Fashion(300);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var gpu = Tiny();
        gpu.GpuDeviceId = 0;
        gpu.FallbackToCpu = false;
        using var onGpu = ml.Transforms.CbpQuantize(gpu).Fit(keyed.Transform(train));
        using var onCpu = ml.Transforms.CbpQuantize(Tiny()).Fit(keyed.Transform(train));
        Assert.AreEqual("CUDA", onGpu.ExecutionProvider);
        var a = onGpu.Transform(keyed.Transform(test)).GetColumn<float[]>("Score").SelectMany(x => x).ToArray();
        var b = onCpu.Transform(keyed.Transform(test)).GetColumn<float[]>("Score").SelectMany(x => x).ToArray();
        Assert.AreEqual(b.Length, a.Length);
        Assert.IsTrue(a.Zip(b).All(p => Math.Abs(p.First - p.Second) < 1e-4), "CUDA and CPU probabilities agree to 1e-4");
    }

    private sealed class OnnxGraphModuleHolder : IDisposable
    {
        private readonly OnnxGraphModule _module;

        public OnnxGraphModuleHolder() => Bytes = OnnxScoringSessionTests.CompactSmallCnn(out _module);

        public byte[] Bytes { get; }

        public void Dispose() => _module.Dispose();
    }

    /// <summary>The SchemaShape ML.NET derives from a data view (SchemaShape.Create is internal): captured by a probe at the end of a chain.</summary>
    private static SchemaShape ShapeOf(MLContext ml, IDataView data)
    {
        var probe = new SchemaShapeProbe();
        Assert.ThrowsExactly<InvalidOperationException>(() => new EstimatorChain<ITransformer>().Append(probe).Fit(data));
        return probe.Captured!;
    }

    private sealed class SchemaShapeProbe : IEstimator<ITransformer>
    {
        public SchemaShape? Captured { get; private set; }

        public ITransformer Fit(IDataView input) => throw new InvalidOperationException("probe");

        public SchemaShape GetOutputSchema(SchemaShape inputSchema) => Captured = inputSchema;
    }

    private static IDataView ScalarScore(MLContext ml, IDataView view) =>
        ml.Data.LoadFromEnumerable(view.GetColumn<float[]>("Score").Zip(view.GetColumn<float>("Target"), (s, t) => new RegressionRow { Value = s[0], Target = t }));

    private static List<(string Key, string Predicted)> Rows(MLContext ml, IDataView scored) =>
        scored.GetColumn<float[]>("Score").Zip(scored.GetColumn<string[]>("PredictedLabel"),
            (s, p) => (string.Join(",", s.Select(BitConverter.SingleToInt32Bits)) + "|" + p[0], p[0])).ToList();

    private sealed class NarrowRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = new float[3];
    }

    private sealed class TabularRow
    {
        [VectorType(8)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Positive { get; set; }

        public float Target { get; set; }
    }

    private sealed class RegressionRow
    {
        public float Value { get; set; }

        public float Target { get; set; }
    }

    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public string[] PredictedLabel { get; set; } = Array.Empty<string>();
    }
}
