using System;
using System.Linq;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using static TorchSharp.torch;

namespace Cbp.Samples.QuantizeOnnx;

/// <summary>
/// Makes the small pretrained float ONNX model that ships with the repository for the quantize-onnx sample
/// (<c>dotnet run --project src/Cbp.Samples -c Release -- make-pretrained --output src/Cbp.Samples/Data/pretrained</c>):
/// a 784-256-256-10 MLP with batch norm trained in float for 15 epochs on the Fashion-MNIST subset.
/// </summary>
public static class PretrainedModelMaker
{
    /// <summary>The file name of the shipped model.</summary>
    public const string FileName = "fashion-mlp-float.onnx";

    /// <summary>Trains and writes the model; returns its path.</summary>
    /// <param name="outputDirectory">Where to write <see cref="FileName"/>.</param>
    /// <param name="log">Receives progress lines.</param>
    public static string Make(string outputDirectory, Action<string> log)
    {
        var images = FashionMnistData.Read(FashionMnistData.SubsetDirectory, "train");
        var model = CbpArchitecture.Mlp(new[] { 256, 256 }).Build(new long[] { 784 }, 10, seed: 11);
        using var module = new OnnxGraphModule(model);
        random.manual_seed(11);
        using var features = tensor(images.SelectMany(i => i.Features).ToArray()).reshape(images.Count, 784);
        using var labels = tensor(images.Select(i => (long)Array.IndexOf(FashionMnistData.ClassNames, i.Label)).ToArray());
        using var data = new InMemoryBatchSource(features, labels, 64, shuffle: true, seed: 11);
        using (var trainer = new CbpTrainer(module, (o, y) => nn.functional.cross_entropy(o, y), Array.Empty<string>(), WeightConstraint.Binary,
            new CbpTrainerOptions { Mode = TrainingMode.Float, Epochs = 15, LearningRate = 0.05 }))
        {
            trainer.Fit(data, progress: new Progress(r => log($"  float epoch {r.Epoch}: loss {r.TaskLoss:F4}")));
        }
        var exported = QuantizedOnnxExporter.Export(module, Array.Empty<QuantizedInitializer>(), WeightStorage.Float32);
        exported.DocString = "A float 784-256-256-10 MLP trained on the Fashion-MNIST subset of Microsoft.ML.Cbp (the quantize-onnx sample's input).";
        string path = System.IO.Path.Combine(outputDirectory, FileName);
        System.IO.Directory.CreateDirectory(outputDirectory);
        OnnxModelFile.Save(exported, path);
        return path;
    }

    private sealed class Progress(Action<EpochReport> report) : IProgress<EpochReport>
    {
        public void Report(EpochReport value) => report(value);
    }
}
