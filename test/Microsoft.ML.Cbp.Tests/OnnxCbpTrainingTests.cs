using System;
using System.Linq;
using Microsoft.ML.Cbp.Onnx;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>The engine trains an ONNX graph: CBP on an <see cref="OnnxGraphModule"/>, then a compact export that ONNX Runtime scores alike.</summary>
[TestClass]
public sealed class OnnxCbpTrainingTests
{
    [TestMethod]
    public void CbpTrainsAnOnnxGraphAndTheInt4ExportScoresLikeTheTrainedModule()
    {
        random.manual_seed(1);
        var model = CbpArchitecture.Mlp(new[] { 32, 32, 32 }).Build(new long[] { 16 }, 4, seed: 2);
        using var module = new OnnxGraphModule(model);
        // A learnable task: the class is the argmax of a fixed random projection of the input.
        using var g = new Generator(4);
        using var x = randn(new long[] { 512, 16 }, generator: g);
        using var projection = randn(new long[] { 16, 4 }, generator: g);
        using var y = x.matmul(projection).argmax(1);
        using var data = new InMemoryBatchSource(x, y, 64, shuffle: true, seed: 3);
        Func<Tensor, Tensor, Tensor> loss = (o, l) => nn.functional.cross_entropy(o, l);
        using (var pretrain = new CbpTrainer(module, loss, Array.Empty<string>(), WeightConstraint.Binary,
            new CbpTrainerOptions { Mode = TrainingMode.Float, Epochs = 15, LearningRate = 0.05 }))
        {
            pretrain.Fit(data);
        }
        var names = ConstrainedInitializerSelection.Select(model);
        Assert.AreEqual(2, names.Count, "four dense layers: the middle two are constrained");
        using var trainer = new CbpTrainer(module, loss, names.Select(module.MemberName), WeightConstraint.Binary,
            new CbpTrainerOptions { Epochs = 60, BatchesPerEpoch = 4, LearningRate = 1e-3, MultiplierLearningRate = 0.1, ScaleMode = ScaleMode.PerLayer });
        trainer.Fit(data);
        trainer.ProjectToLevels();
        Assert.AreEqual(0.0, trainer.MeasureConstraint().Cfs, "after the projection every latent weight is on its level");
        var accuracy = trainer.Evaluate(data).Accuracy!.Value;
        Assert.IsTrue(accuracy > 0.6, $"the binary network still solves the task (accuracy {accuracy:P1})");

        var constrained = trainer.ConstrainedParameters.Select(p =>
            new QuantizedInitializer(module.InitializerName(p.Name), WeightConstraint.Binary, p.Scale.data<float>().ToArray())).ToList();
        var exported = QuantizedOnnxExporter.Export(module, constrained, WeightStorage.Int4);
        var input = OnnxTestHelpers.RandomInput(new long[] { 8, 16 }, 6);
        OnnxTestHelpers.AssertClose(OnnxTestHelpers.Forward(module, input, new long[] { 8, 16 }),
            OrtRunner.Run(exported, input, new long[] { 8, 16 }), 1e-5, "trained binary MLP, INT4 export");
    }
}
