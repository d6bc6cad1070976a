using System;
using System.Linq;
using Microsoft.ML.Cbp.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class BaselineTests
{
    [TestMethod]
    public void NaiveRoundingPutsEveryWeightOnScaleTimesALevel()
    {
        random.manual_seed(21);
        using var model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2));
        var weight = model.named_parameters().Single(p => p.name == "2.weight").parameter;
        var before = weight.detach().clone().data<float>().ToArray();
        double scale = before.Select(v => Math.Abs((double)v)).Average();
        var scales = Baselines.RoundToLevels(model, new[] { "2.weight" }, WeightConstraint.Ternary);
        Assert.AreEqual(scale, scales["2.weight"][0], 1e-6);
        var after = weight.data<float>().ToArray();
        for (int i = 0; i < before.Length; i++)
        {
            double expected = WeightConstraint.Ternary.Quantize(before[i] / scales["2.weight"][0]) * scales["2.weight"][0];
            Assert.AreEqual((float)expected, after[i], $"weight {i}");
        }
    }

    [TestMethod]
    public void BatchNormReestimationAveragesStatisticsOverTheData()
    {
        random.manual_seed(22);
        using var model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2));
        using var x = randn(12, 3);
        using var y = zeros(12, dtype: int64);
        using var source = new InMemoryBatchSource(x, y, batchSize: 4, shuffle: false);
        Assert.AreEqual(1, Baselines.ReestimateBatchNorm(model, source));

        // Independently: the linear layer's outputs, per batch mean and unbiased variance, averaged over the 3 batches.
        var linear = (Linear)model.children().First();
        float[] h;
        using (no_grad())
        {
            h = linear.forward(x).data<float>().ToArray();
        }
        var bn = (BatchNorm1d)model.children().Last();
        var runningMean = bn.running_mean!.data<float>().ToArray();
        var runningVar = bn.running_var!.data<float>().ToArray();
        for (int c = 0; c < 2; c++)
        {
            double meanSum = 0, varSum = 0;
            for (int b = 0; b < 3; b++)
            {
                var values = Enumerable.Range(b * 4, 4).Select(r => (double)h[r * 2 + c]).ToArray();
                double mean = values.Average();
                meanSum += mean;
                varSum += values.Sum(v => (v - mean) * (v - mean)) / 3;
            }
            Assert.AreEqual(meanSum / 3, runningMean[c], 1e-5, $"running mean {c}");
            Assert.AreEqual(varSum / 3, runningVar[c], 1e-5, $"running variance {c}");
        }
        Assert.AreEqual(0.1, bn.momentum!.Value, 1e-12, "the layer's momentum is restored");
        Assert.IsFalse(model.training, "the model is left in evaluation mode");
    }

    [TestMethod]
    public void BatchNormReEstimationOfAnOnnxGraphIsTheCumulativeAverageOfBatchStatistics()
    {
        // A graph that is a single BatchNormalization on the input: its running statistics after re-estimation are the
        // mean of the four batches' channel means and of their unbiased channel variances, computed here by hand.
        var model = OnnxTestHelpers.Model(new long[] { 3, 2, 2 }, (b, x) => b.BatchNorm(x, 3));
        using var module = new Onnx.OnnxGraphModule(model);
        using var g = new Generator(5);
        using var x = randn(new long[] { 32, 3, 2, 2 }, generator: g).mul_(3).add_(1);
        using var y = zeros(32, dtype: int64);
        using var data = new InMemoryBatchSource(x, y, 8, shuffle: false);
        Assert.AreEqual(1, module.ReestimateBatchNorm(data.Pass(0).Select(b => b.Features)));
        var values = x.data<float>().ToArray();
        var (mean, variance) = module.BatchNormStatistics().Single();
        for (int c = 0; c < 3; c++)
        {
            double meanSum = 0, varianceSum = 0;
            for (int batch = 0; batch < 4; batch++)
            {
                var v = Enumerable.Range(batch * 8, 8).SelectMany(row => Enumerable.Range(0, 4).Select(p => (double)values[(row * 12) + (c * 4) + p])).ToList();
                double m = v.Average();
                meanSum += m;
                varianceSum += v.Sum(e => (e - m) * (e - m)) / (v.Count - 1);
            }
            Assert.AreEqual(meanSum / 4, mean.data<float>()[c], 1e-5, $"running mean of channel {c}");
            Assert.AreEqual(varianceSum / 4, variance.data<float>()[c], 1e-4, $"running variance of channel {c}");
        }
        Assert.IsNull(module.BatchNormMomentumOverride, "the model's own momentum is back");
    }

    [TestMethod]
    public void TheGenericReEstimationRefusesAGraphInsteadOfSilentlyDoingNothing()
    {
        // An ONNX graph keeps its statistics as graph buffers, not TorchSharp BatchNorm layers: the generic baseline cannot
        // re-estimate them and says which method can, rather than reporting a baseline that never ran.
        var model = OnnxTestHelpers.Model(new long[] { 3, 2, 2 }, (b, x) => b.BatchNorm(x, 3));
        using var module = new Onnx.OnnxGraphModule(model);
        using var x = ones(new long[] { 4, 3, 2, 2 });
        using var y = zeros(4, dtype: int64);
        using var data = new InMemoryBatchSource(x, y, 2, shuffle: false);
        var e = Assert.ThrowsExactly<ArgumentException>(() => Baselines.ReestimateBatchNorm(module, data));
        StringAssert.Contains(e.Message, "OnnxGraphModule.ReestimateBatchNorm");
    }
}
