using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>
/// Every family of torchvision's classification zoo as PyTorch 1.13 exports it (opsets 13 and 17), at reduced width
/// (test/Microsoft.ML.Cbp.Tests/Models/zoo/README.md says how much per family): each loads, runs in TorchSharp like
/// ONNX Runtime, trains one CBP step, and exports its constrained layers as INT4 codes that ONNX Runtime scores alike.
/// </summary>
[TestClass]
public sealed class TorchvisionZooTests
{
    /// <summary>The families build/make-zoo-models.py writes; a missing file fails its row instead of shrinking the list.</summary>
    public static readonly string[] Families =
    {
        "resnet18", "resnext50_32x4d", "wide_resnet50_2", "vgg11_bn", "alexnet", "squeezenet1_1", "densenet121", "googlenet",
        "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "efficientnet_b0", "regnet_y_400mf",
        "convnext_tiny", "vit_tiny_16",
    };

    public static IEnumerable<object[]> Models => Families.SelectMany(f => new[] { 13, 17 }.Select(o => new object[] { f, o }));

    public static string PathOf(string family, int opset) => Path.Combine(AppContext.BaseDirectory, "models", "zoo", $"{family}-op{opset}.onnx");

    [TestMethod]
    [DynamicData(nameof(Models))]
    public void ImportsMatchesOnnxRuntimeTrainsOneStepAndExportsCompactly(string family, int opset)
    {
        var model = OnnxModelFile.Load(PathOf(family, opset));
        Assert.AreEqual(opset, OnnxModelFile.DefaultOpset(model));
        var dims = model.Graph.Input[0].Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
        long[] shape = new long[] { 2 }.Concat(dims).ToArray();
        var input = OnnxTestHelpers.RandomInput(shape, 11);
        using var module = new OnnxGraphModule(model);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), OrtRunner.Run(model, input, shape), 1e-4, $"{family} opset {opset}");

        // One CBP step on a batch of random images: the latent constrained weights move and the loss is finite.
        var names = ConstrainedInitializerSelection.Select(model);
        Assert.IsTrue(names.Count > 0, $"{family}: no constrained layer found");
        random.manual_seed(5);
        using (var x = randn(new long[] { 4 }.Concat(dims).ToArray()))
        using (var y = tensor(new long[] { 0, 1, 2, 3 }))
        using (var data = new InMemoryBatchSource(x, y, 4, shuffle: false))
        using (var trainer = new CbpTrainer(module, (o, l) => nn.functional.cross_entropy(o, l), names.Select(module.MemberName), WeightConstraint.Ternary,
            new CbpTrainerOptions { Epochs = 1, LearningRate = 1e-3 }))
        {
            // The module holds Q(w); the step moves the latent weights w behind it.
            var latent = trainer.ConstrainedParameters[0].Latent;
            var first = latent.clone();
            var report = trainer.TrainEpoch(data);
            Assert.IsTrue(double.IsFinite(report.TaskLoss), $"{family}: loss {report.TaskLoss}");
            Assert.IsFalse(first.eq(latent).all().item<bool>(), $"{family}: the step did not move the latent weights of '{names[0]}'");
            first.Dispose();
            trainer.ProjectToLevels();
            var constrained = trainer.Scales.Select(s => new QuantizedInitializer(module.InitializerName(s.Key), WeightConstraint.Ternary, s.Value)).ToList();
            var exported = QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Int4);
            OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, shape), OrtRunner.Run(exported, input, shape), 1e-4, $"{family} opset {opset}, INT4 export");

            // Every constrained layer is stored as INT4 codes, two per byte, and no float copy of it is left.
            foreach (string name in names)
            {
                long count = model.Graph.Initializer.Single(t => t.Name == name).Dims.Aggregate(1L, (a, b) => a * b);
                var codes = exported.Graph.Initializer.Single(t => t.Name == name + "_cbp_codes");
                Assert.AreEqual(22, codes.DataType, $"{family}: '{name}' codes");
                Assert.AreEqual((count + 1) / 2, codes.RawData.Length, $"{family}: '{name}' code bytes");
                Assert.IsFalse(exported.Graph.Initializer.Any(t => t.Name == name), $"{family}: '{name}' is still stored in float");
            }
        }
    }
}
