using System;
using System.Linq;
using System.Threading;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>Single steps of the engine checked against the update rule written out independently.</summary>
[TestClass]
public sealed class TrainerStepTests
{
    private static nn.Module<Tensor, Tensor> Network(long seed)
    {
        random.manual_seed(seed);
        // Weights large enough that some sit beyond the binary levels +-s (so the initial multipliers are non-zero).
        var model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3));
        return model;
    }

    private static (Tensor X, Tensor Y) Data(int rows, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return (randn(rows, 4, generator: generator), randint(3, new long[] { rows }, generator: generator));
    }

    private static Tensor Loss(Tensor output, Tensor labels) => nn.functional.cross_entropy(output, labels);

    private static CbpTrainerOptions OneStep(TrainingMode mode, double clip = 100) => new()
    {
        Mode = mode,
        Epochs = 1,
        BatchesPerEpoch = 1,
        LearningRate = 0.05,
        MultiplierLearningRate = 0.1,
        ScaleMode = ScaleMode.PerLayer,
        Momentum = 0,
        WeightDecay = 0,
        GradientClip = clip,
        FinalAnnealFraction = 0,
    };

    /// <summary>The task gradient of the middle weight evaluated with the middle weight replaced by <paramref name="quantized"/>, by plain autograd.</summary>
    private static float[] TaskGradientAt(nn.Module<Tensor, Tensor> original, float[] quantized, Tensor x, Tensor y)
    {
        using var copy = Network(seed: 99);
        copy.load_state_dict(original.state_dict());
        var middle = copy.named_parameters().Single(p => p.name == "2.weight").parameter;
        using (no_grad())
        {
            middle.copy_(tensor(quantized).reshape(middle.shape));
        }
        using var loss = Loss(copy.forward(x), y);
        loss.backward();
        return middle.grad!.data<float>().ToArray();
    }

    [TestMethod]
    public void StraightThroughStepAppliesTheGradientAtQwToTheLatentWeights()
    {
        using var model = Network(seed: 3);
        var (x, y) = Data(16, seed: 4);
        using var source = new InMemoryBatchSource(x, y, batchSize: 16, shuffle: false);
        var w0 = model.named_parameters().Single(p => p.name == "2.weight").parameter.detach().clone().data<float>().ToArray();
        float s = w0.Select(Math.Abs).Average();
        var q0 = w0.Select(w => (float)(WeightConstraint.Binary.Quantize(w / s) * s)).ToArray();
        var reference = Network(seed: 3);
        var expectedGrad = TaskGradientAt(reference, q0, x, y);

        using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, OneStep(TrainingMode.StraightThrough));
        var p = trainer.ConstrainedParameters[0];
        Assert.AreEqual(s, p.Scale.ToSingle(), 1e-6f, "scale = mean |w|");
        CollectionAssert.AreEqual(q0, p.Parameter.data<float>().ToArray(), "the module holds Q(w) before training");
        trainer.TrainEpoch(source);

        var latent = p.Latent.data<float>().ToArray();
        for (int i = 0; i < w0.Length; i++)
        {
            Assert.AreEqual(w0[i] - 0.05f * expectedGrad[i], latent[i], 1e-6f, $"latent[{i}]");
        }
        var expectedQ = latent.Select(w => (float)(WeightConstraint.Binary.Quantize(w / s) * s)).ToArray();
        CollectionAssert.AreEqual(expectedQ, p.Parameter.data<float>().ToArray(), "the module holds Q(latent) after the step");
    }

    [TestMethod]
    public void CbpStepAddsMultiplierTimesConstraintGradient()
    {
        using var model = Network(seed: 5);
        var (x, y) = Data(16, seed: 6);
        using var source = new InMemoryBatchSource(x, y, batchSize: 16, shuffle: false);
        var w0 = model.named_parameters().Single(p => p.name == "2.weight").parameter.detach().clone().data<float>().ToArray();
        float s = w0.Select(Math.Abs).Average();
        var q0 = w0.Select(w => (float)(WeightConstraint.Binary.Quantize(w / s) * s)).ToArray();
        var expectedGrad = TaskGradientAt(Network(seed: 5), q0, x, y);

        using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, OneStep(TrainingMode.Cbp));
        var p = trainer.ConstrainedParameters[0];
        var lambda = p.Multipliers.Multipliers.data<float>().ToArray();
        // The initial update (g = 1, u = 0) leaves the inside unconstrained: only weights beyond +-s got a multiplier,
        // each by one Adam step of the learning rate (0.1, set in OneStep).
        for (int i = 0; i < w0.Length; i++)
        {
            bool outside = Math.Abs(w0[i] / s) > 1;
            Assert.AreEqual(outside ? 0.1f : 0f, lambda[i], 1e-5f, $"lambda[{i}] (x = {w0[i] / s})");
        }
        Assert.IsTrue(lambda.Count(l => l > 0) > 0, "the test needs some weights beyond the outer levels");
        trainer.TrainEpoch(source);

        var latent = p.Latent.data<float>().ToArray();
        for (int i = 0; i < w0.Length; i++)
        {
            double xi = w0[i] / s;
            bool outside = Math.Abs(xi) > 1;
            double constraintGradient = outside ? 2 * Math.Sign(xi - WeightConstraint.Binary.Quantize(xi)) : 0;
            double expected = w0[i] - 0.05 * (expectedGrad[i] + lambda[i] * constraintGradient);
            Assert.AreEqual(expected, latent[i], 1e-6, $"latent[{i}]");
        }
    }

    [TestMethod]
    public void GradientsAreClippedElementwiseAndLatentWeightsClamped()
    {
        using var model = Network(seed: 7);
        var (x, y) = Data(16, seed: 8);
        using var source = new InMemoryBatchSource(x, y, batchSize: 16, shuffle: false);
        var w0 = model.named_parameters().Single(p => p.name == "2.weight").parameter.detach().clone().data<float>().ToArray();
        float s = w0.Select(Math.Abs).Average();
        var q0 = w0.Select(w => (float)(WeightConstraint.Binary.Quantize(w / s) * s)).ToArray();
        var taskGradient = TaskGradientAt(Network(seed: 7), q0, x, y);
        const double clip = 1e-3;
        var options = OneStep(TrainingMode.StraightThrough, clip);
        using (var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, options))
        {
            trainer.TrainEpoch(source);
            var latent = trainer.ConstrainedParameters[0].Latent.data<float>().ToArray();
            for (int i = 0; i < w0.Length; i++)
            {
                double expected = w0[i] - 0.05 * Math.Clamp(taskGradient[i], -clip, clip);
                Assert.AreEqual(expected, latent[i], 1e-7, $"latent[{i}]");
            }
            Assert.IsTrue(taskGradient.Count(g => Math.Abs(g) > clip) > w0.Length / 2, "most gradients must exceed the clip for the test to mean something");
        }
        options = OneStep(TrainingMode.StraightThrough);
        options.LearningRate = 1e4;
        using (var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, options))
        {
            trainer.TrainEpoch(source);
            var latent = trainer.ConstrainedParameters[0].Latent.data<float>().ToArray();
            Assert.IsTrue(latent.All(v => v >= -1f && v <= 1f), "latent weights are clamped to [-1, 1]");
            Assert.IsTrue(latent.Any(v => Math.Abs(v) == 1f), "the huge step must have hit the clamp");
        }
    }

    [TestMethod]
    public void ProjectionPutsEveryLatentWeightOnItsLevel()
    {
        using var model = Network(seed: 9);
        var (x, y) = Data(32, seed: 10);
        using var source = new InMemoryBatchSource(x, y, batchSize: 8);
        var options = OneStep(TrainingMode.Cbp);
        options.Epochs = 3;
        using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.TwoBitShift, options);
        trainer.Fit(source);
        Assert.IsTrue(trainer.MeasureConstraint().Cfs > 0);
        trainer.ProjectToLevels();
        var stats = trainer.MeasureConstraint();
        Assert.AreEqual(0.0, stats.Cfs);
        Assert.AreEqual(1.0, stats.FractionOnLevel);
        var p = trainer.ConstrainedParameters[0];
        float s = p.Scale.ToSingle();
        foreach (float w in p.Parameter.data<float>().ToArray())
        {
            Assert.IsTrue(WeightConstraint.TwoBitShift.Levels.Any(f => (float)(f * s) == w), $"{w} is not s * f for s = {s}");
        }
    }

    [TestMethod]
    public void SameSeedSameDataGivesIdenticalWeights()
    {
        float[] Run()
        {
            using var model = Network(seed: 11);
            var (x, y) = Data(40, seed: 12);
            using var source = new InMemoryBatchSource(x, y, batchSize: 8, shuffle: true, seed: 5);
            using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Ternary, new CbpTrainerOptions { Epochs = 4 });
            trainer.Fit(source);
            return trainer.ConstrainedParameters[0].Latent.data<float>().ToArray();
        }
        CollectionAssert.AreEqual(Run(), Run());
    }

    [TestMethod]
    public void EpochsOfFixedLengthWrapAroundPassesAndReportTheirBatches()
    {
        using var model = Network(seed: 13);
        var (x, y) = Data(10, seed: 14);
        using var source = new InMemoryBatchSource(x, y, batchSize: 4); // 3 batches per pass
        using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary,
            new CbpTrainerOptions { Epochs = 3, BatchesPerEpoch = 5 });
        var reports = trainer.Fit(source);
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, reports.Select(r => r.Epoch).ToArray());
        Assert.IsTrue(reports.All(r => r.Batches == 5));
        Assert.IsTrue(reports.All(r => r.Seconds > 0 && double.IsFinite(r.TaskLoss) && r.LagrangianSum >= r.TaskLoss * r.Batches - 1e-9));
        using var full = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, new CbpTrainerOptions { Epochs = 1 });
        Assert.AreEqual(3, full.Fit(source)[0].Batches, "without BatchesPerEpoch an epoch is one pass");
    }

    [TestMethod]
    public void CancellationStopsBetweenBatches()
    {
        using var model = Network(seed: 15);
        var (x, y) = Data(10, seed: 16);
        using var source = new InMemoryBatchSource(x, y, batchSize: 2);
        using var trainer = new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, new CbpTrainerOptions { Epochs = 2 });
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsExactly<OperationCanceledException>(() => trainer.Fit(source, cancellationToken: cancelled.Token));
        Assert.AreEqual(0, trainer.History.Count);
    }

    [TestMethod]
    public void InvalidSettingsAndNamesAreRejectedWithTheirNames()
    {
        using var model = Network(seed: 17);
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, new CbpTrainerOptions { LearningRate = 0 }));
        Assert.AreEqual("LearningRate", e.ParamName);
        e = Assert.ThrowsExactly<ArgumentException>(() =>
            new CbpTrainer(model, Loss, new[] { "2.weight" }, WeightConstraint.Binary, new CbpTrainerOptions { BatchesPerEpoch = 0 }));
        Assert.AreEqual("BatchesPerEpoch", e.ParamName);
        e = Assert.ThrowsExactly<ArgumentException>(() =>
            new CbpTrainer(model, Loss, new[] { "9.weight" }, WeightConstraint.Binary));
        StringAssert.Contains(e.Message, "'9.weight' is not a parameter");
        StringAssert.Contains(e.Message, "2.weight");
    }

    [TestMethod]
    public void DefaultSelectionKeepsFirstAndLastWeightTensorsFloat()
    {
        using var model = Network(seed: 19);
        CollectionAssert.AreEqual(new[] { "2.weight" }, ConstrainedLayerSelection.Select(model).ToArray());
        CollectionAssert.AreEqual(new[] { "0.weight", "2.weight" }, ConstrainedLayerSelection.Select(model, include: new[] { "0.weight" }).ToArray());
        Assert.AreEqual(0, ConstrainedLayerSelection.Select(model, exclude: new[] { "2.weight" }).Count);
        Assert.AreEqual(3, ConstrainedLayerSelection.Select(model, keepFirstAndLastFloat: false).Count);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ConstrainedLayerSelection.Select(model, include: new[] { "2.bias" }));
        StringAssert.Contains(e.Message, "not a weight tensor");
    }
}
