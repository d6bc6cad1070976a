using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Cbp;
using Microsoft.ML.Data;

namespace Cbp.Samples.FashionMnist;

/// <summary>What the Fashion-MNIST sample measured.</summary>
/// <param name="FloatAccuracy">Test accuracy of the float network after pre-training (TorchSharp).</param>
/// <param name="QuantizedAccuracy">Test accuracy of the saved, reloaded quantized model (ONNX Runtime through ML.NET).</param>
/// <param name="NormalizedCfs">Scale-normalised CFS before the final projection.</param>
/// <param name="FractionOnLevel">Fraction of latent weights on their level before the final projection.</param>
/// <param name="FloatBytes">Bytes of the network as a float ONNX model.</param>
/// <param name="CompactBytes">Bytes of the compact ONNX model.</param>
/// <param name="BatchedRowsPerSecond">Rows/s scoring the test set with batched scoring (LoadWithBatchedScoring).</param>
/// <param name="PlainRowsPerSecond">Rows/s scoring the test set with the plain ML.NET reload (one ONNX Runtime run per row).</param>
/// <param name="TrainingSeconds">Seconds of Fit.</param>
/// <param name="ModelPath">The saved ML.NET model.</param>
/// <param name="OnnxPath">The saved compact ONNX model.</param>
/// <param name="TrainingCurvePath">PNG: validation accuracy, CFS and g per epoch.</param>
/// <param name="HistogramPath">PNG: a layer's latent weights before and after CBP.</param>
/// <param name="LayersPath">PNG: float and compact bytes and bits per weight of each weight layer.</param>
public sealed record FashionMnistResult(double FloatAccuracy, double QuantizedAccuracy, double NormalizedCfs, double FractionOnLevel, long FloatBytes,
    long CompactBytes, double BatchedRowsPerSecond, double PlainRowsPerSecond, double TrainingSeconds, string ModelPath, string OnnxPath,
    string TrainingCurvePath, string HistogramPath, string LayersPath);

/// <summary>
/// The main job: trains a small CNN with constrained weights on Fashion-MNIST, evaluates it, saves it, reloads it,
/// predicts one image with the Model Builder-style consumption code and batch-scores the test set.
/// </summary>
public static class FashionMnistSample
{
    /// <summary>Runs the sample.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="log">Receives progress lines.</param>
    /// <param name="progress">Receives the training reports; null logs one line per few epochs.</param>
    /// <returns>What it measured; null on the ranks other than 0 of a data-parallel job (mpiexec), which train and stop: rank 0 saves, evaluates and scores.</returns>
    public static FashionMnistResult? Run(SampleOptions options, Action<string> log, Action<CbpProgressReport>? progress = null)
    {
        string dataDirectory = options.Full ? FashionMnistData.FullDataDirectory : FashionMnistData.SubsetDirectory;
        if (options.Full && !Directory.Exists(dataDirectory))
        {
            throw new SampleException($"--full needs the whole Fashion-MNIST in {dataDirectory}: install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu).");
        }
        int limit = options.Quick ? 1000 : int.MaxValue;
        var train = FashionMnistData.Read(dataDirectory, "train", limit);
        var test = FashionMnistData.Read(dataDirectory, "t10k", options.Quick ? 300 : int.MaxValue);
        log($"Fashion-MNIST{(options.Full ? "" : " subset")}: {train.Count:N0} training and {test.Count:N0} test images from {dataDirectory}.");

        var mlContext = new MLContext(seed: 1);
        var trainData = mlContext.Data.LoadFromEnumerable(train.Select(ToInput));
        var testData = mlContext.Data.LoadFromEnumerable(test.Select(ToInput));
        var keyedTest = mlContext.Transforms.Conversion.MapValueToKey("Label", "Label").Fit(trainData).Transform(testData);
        var pipeline = FashionMnistModel.BuildPipeline(mlContext, options.Constraint, options.Quick ? 1 : options.PretrainEpochs, options.Quick ? 2 : options.Epochs,
            keyedTest, progress ?? (report =>
            {
                if (report.Epoch is not null && (report.Phase != CbpPhase.Cbp || report.EpochNumber % 4 == 0 || report.EpochNumber == report.Epochs))
                {
                    log("  " + report);
                }
            }), options.MaxBytes, options.LowBit ? WeightExecution.MatMulNBits : WeightExecution.DecodedFloat);
        var clock = Stopwatch.StartNew();
        var model = FashionMnistModel.RetrainPipeline(mlContext, trainData, pipeline);
        double trainingSeconds = clock.Elapsed.TotalSeconds;
        if (CbpDataParallel.Rank > 0)
        {
            // Under mpiexec every rank trained its share and holds the same model: rank 0 alone writes and scores it.
            (model as IDisposable)?.Dispose();
            return null;
        }
        var cbp = ((IEnumerable<ITransformer>)model).OfType<CbpQuantizeTransformer>().Single();
        var report = cbp.TrainingReport!;

        Directory.CreateDirectory(options.OutputDirectory);
        string modelPath = Path.Combine(options.OutputDirectory, "FashionMnistModel.zip");
        string onnxPath = Path.Combine(options.OutputDirectory, "FashionMnistModel.onnx");
        FashionMnistModel.SaveModel(mlContext, model, trainData.Schema, modelPath);
        cbp.SaveOnnx(onnxPath);
        log($"Saved {modelPath} ({new FileInfo(modelPath).Length:N0} bytes) and the compact ONNX model {onnxPath} ({new FileInfo(onnxPath).Length:N0} bytes).");
        string curvePath = Path.Combine(options.OutputDirectory, "training-curve.png");
        string histogramPath = Path.Combine(options.OutputDirectory, "latent-histogram.png");
        string layersPath = Path.Combine(options.OutputDirectory, "layers.png");
        TrainingPlots.TrainingCurve(report, curvePath);
        TrainingPlots.LatentHistogram(report, histogramPath);
        TrainingPlots.LayerBytes(report, layersPath);
        log("Model summary:");
        log(report.ToString().TrimEnd());
        log($"Plots: {curvePath}, {histogramPath}, {layersPath}.");

        // Consumption, as Model Builder writes it: a prediction engine over the reloaded zip.
        var image = test[0];
        var prediction = FashionMnistModel.Predict(ToInput(image));
        log($"Reloaded and predicted the first test image: '{prediction.Label}' (p = {prediction.Score.Max():F3}); it is a '{image.Label}'.");

        // Batch scoring of the test set: plain ML.NET reload (one run per row) and batched reload, each evaluated.
        var plain = mlContext.Model.Load(modelPath, out _);
        var truth = test.Select(t => t.Label).ToList();
        var (plainAccuracy, plainRate) = Score(mlContext, plain, testData, truth);
        using var batched = (IDisposable)mlContext.Model.LoadWithBatchedScoring(modelPath, out _);
        var reloaded = ((IEnumerable<ITransformer>)batched).OfType<CbpQuantizeTransformer>().Single();
        log($"The reloaded model scores on {reloaded.ExecutionProvider} with its weights as {reloaded.WeightExecution}.");
        var (accuracy, batchedRate) = Score(mlContext, (ITransformer)batched, testData, truth);
        // With --low-bit, MatMulNBits sums one row in another order than a batch: a near-tie may flip one or two rows.
        if (Math.Abs(accuracy - plainAccuracy) > (options.LowBit ? 2.0 / truth.Count : 0))
        {
            throw new InvalidOperationException($"Batched and plain scoring disagree ({accuracy} versus {plainAccuracy}).");
        }
        (model as IDisposable)?.Dispose();
        return new FashionMnistResult(report.FloatValidationAccuracy ?? double.NaN, accuracy, report.FinalNormalizedCfs, report.FractionOnLevel,
            report.FloatModelBytes, report.CompactModelBytes, batchedRate, plainRate, trainingSeconds, modelPath, onnxPath, curvePath, histogramPath, layersPath);
    }

    /// <summary>
    /// Accuracy of a reloaded model on the test set (predicted name against the true one), then its scoring speed: rows/s
    /// reading the Score column of every test row, best of three passes after that first one (JIT and session warm-up excluded).
    /// </summary>
    private static (double Accuracy, double RowsPerSecond) Score(MLContext mlContext, ITransformer model, IDataView data, IReadOnlyList<string> truth)
    {
        var rows = mlContext.Data.CreateEnumerable<Scored>(model.Transform(data), reuseRowObject: true);
        int total = 0, correct = 0;
        foreach (var row in rows)
        {
            correct += row.PredictedLabel[0] == truth[total] ? 1 : 0;
            total++;
        }
        double best = 0;
        for (int pass = 0; pass < 3; pass++)
        {
            var clock = Stopwatch.StartNew();
            long count = ScoreColumn.ReadAll(model.Transform(data));
            best = Math.Max(best, count / clock.Elapsed.TotalSeconds);
        }
        return ((double)correct / total, best);
    }

    private static FashionMnistModel.ModelInput ToInput(FashionMnistImage image) => new() { Label = image.Label, Features = image.Features };

    private sealed class Scored
    {
        [ColumnName("PredictedLabel")]
        public string[] PredictedLabel { get; set; } = Array.Empty<string>();
    }
}
