using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Cbp;

namespace Cbp.Samples.QuantizeOnnx;

/// <summary>What the quantize-onnx sample measured.</summary>
/// <param name="FloatAccuracy">Test accuracy of the pretrained float model (TorchSharp, before CBP).</param>
/// <param name="QuantizedAccuracy">Test accuracy of the quantized model (ONNX Runtime, through ML.NET).</param>
/// <param name="FloatBytes">Bytes of the float ONNX model as given.</param>
/// <param name="CompactBytes">Bytes of the compact ONNX model written.</param>
/// <param name="OutputPath">The compact ONNX model.</param>
public sealed record QuantizeOnnxResult(double FloatAccuracy, double QuantizedAccuracy, long FloatBytes, long CompactBytes, string OutputPath);

/// <summary>
/// The paper's use case: post-training CBP of a pretrained float ONNX model (given by path) on data from an IDataView,
/// here the Fashion-MNIST subset; writes the compact ONNX model.
/// </summary>
public static class QuantizeOnnxSample
{
    /// <summary>The pretrained float model that ships with the repository.</summary>
    public static string ShippedModelPath => Path.Combine(AppContext.BaseDirectory, "Data", "pretrained", PretrainedModelMaker.FileName);

    /// <summary>Runs the sample.</summary>
    /// <param name="options">Settings: <see cref="SampleOptions.Input"/> is the float model (default the shipped one).</param>
    /// <param name="log">Receives progress lines.</param>
    public static QuantizeOnnxResult Run(SampleOptions options, Action<string> log)
    {
        string input = options.Input ?? ShippedModelPath;
        if (!File.Exists(input))
        {
            throw new SampleException($"The float ONNX model '{input}' does not exist; give one with --input model.onnx.");
        }
        var mlContext = new MLContext(seed: 1);
        var train = mlContext.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train", options.Quick ? 1000 : int.MaxValue));
        var test = mlContext.Data.LoadFromEnumerable(FashionMnistData.Read(FashionMnistData.SubsetDirectory, "t10k", options.Quick ? 300 : int.MaxValue));
        // A pretrained network's outputs have a fixed class order: the label keys must follow it, not the order in which
        // the classes happen to appear in the data (MapValueToKey's default).
        var classOrder = mlContext.Data.LoadFromEnumerable(FashionMnistData.ClassNames.Select(name => new ClassName { Label = name }));
        var keys = mlContext.Transforms.Conversion.MapValueToKey("Label", keyData: classOrder).Fit(train);
        var estimator = mlContext.Transforms.CbpQuantize(new CbpQuantizeOptions
        {
            PretrainedModelPath = input,
            Constraint = options.ConstraintGiven ? options.Constraint : WeightConstraint.Ternary,
            Epochs = options.Quick ? 4 : options.EpochsGiven ? options.Epochs : 8,
            ValidationData = keys.Transform(test),
            Progress = r =>
            {
                if (r.Epoch is not null && r.EpochNumber % 8 == 0)
                {
                    log("  " + r);
                }
            },
        });
        using var quantized = estimator.Fit(keys.Transform(train));
        var metrics = mlContext.MulticlassClassification.Evaluate(quantized.Transform(keys.Transform(test)));
        Directory.CreateDirectory(options.OutputDirectory);
        string output = Path.Combine(options.OutputDirectory, Path.GetFileNameWithoutExtension(input) + "-" + quantized.TrainingReport!.Constraint.Name.ToLowerInvariant() + ".onnx");
        quantized.SaveOnnx(output);
        var report = quantized.TrainingReport;
        log($"Quantized {input}: {report.Constraint.Name} weights in {string.Join(", ", report.ConstrainedLayers)} (first and last layers float); wrote {output}.");
        return new QuantizeOnnxResult(report.FloatValidationAccuracy ?? double.NaN, metrics.MicroAccuracy, new FileInfo(input).Length, new FileInfo(output).Length, output);
    }

    private sealed class ClassName
    {
        public string Label { get; set; } = "";
    }
}
